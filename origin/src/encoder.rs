//! Runs ffmpeg on the synthetic source, cuts its fragmented MP4 output into parts, and
//! restarts it (as a discontinuity) if it dies.

use std::io::ErrorKind;
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use liveshop::core::mp4::{self, InitSegment};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, ChildStdout, Command};
use tokio::sync::watch;

use crate::packager::{self, Stream};
use crate::source::{self, Format, Timeline};

#[derive(Debug, Clone)]
pub struct EncoderConfig {
    pub ffmpeg: String,
    pub format: Format,
    pub part_ms: u32,
    /// CMAF chunk length: ffmpeg flushes a fragment this often (one frame by default).
    pub chunk_ms: u32,
    pub gop_ms: u32,
    pub video_kbps: u32,
    /// Without audio the show is video only (for measuring what audio costs a player).
    pub audio: bool,
}

/// The stream being packaged, shared with the HTTP handlers.
pub struct Live {
    pub stream: Mutex<Stream>,
    /// Signals every change to the stream (new part, new init).
    pub changed: watch::Sender<u64>,
    /// Process id of the running ffmpeg, for tests that kill it.
    pub ffmpeg_pid: Mutex<Option<u32>>,
}

impl Live {
    pub fn new(stream: Stream) -> Arc<Self> {
        Arc::new(Live { stream: Mutex::new(stream), changed: watch::channel(0).0, ffmpeg_pid: Mutex::new(None) })
    }

    fn update(&self, f: impl FnOnce(&mut Stream)) {
        let version = match self.stream.lock() {
            Ok(mut s) => {
                f(&mut s);
                s.version
            }
            Err(_) => return,
        };
        self.changed.send_replace(version);
    }
}

fn ffmpeg_args(c: &EncoderConfig, video: &Path, audio: &Path) -> Vec<String> {
    let f = c.format;
    let gop = (c.gop_ms as u64 * f.fps as u64 / 1000).max(1);
    // Both inputs are fully described by their flags, so ffmpeg need not probe them. Probing
    // them holds the video reader for about a second at startup, which bunches up the capture
    // times of the first frames (drawn late, then in a hurry).
    let mut args: Vec<String> = [
        "-hide_banner",
        "-loglevel",
        "error",
        "-nostdin",
        "-probesize",
        "32",
        "-analyzeduration",
        "0",
        "-f",
        "rawvideo",
        "-pix_fmt",
        "yuv420p",
        "-s",
        &format!("{}x{}", f.width, f.height),
        "-r",
        &f.fps.to_string(),
        "-i",
        &video.to_string_lossy(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if c.audio {
        let rate = source::AUDIO_RATE.to_string();
        args.extend(["-probesize", "32", "-analyzeduration", "0"].map(String::from));
        args.extend(["-f", "s16le", "-ar", &rate, "-ac", "1", "-i", &audio.to_string_lossy()].map(String::from));
    }
    args.extend(
        [
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-tune",
            "zerolatency",
            "-pix_fmt",
            "yuv420p",
            "-g",
            &gop.to_string(),
            "-keyint_min",
            &gop.to_string(),
            "-sc_threshold",
            "0",
            "-b:v",
            &format!("{}k", c.video_kbps),
            "-maxrate",
            &format!("{}k", c.video_kbps),
            "-bufsize",
            &format!("{}k", c.video_kbps / 2),
        ]
        .map(String::from),
    );
    args.extend(if c.audio { ["-c:a", "aac", "-b:a", "64k"].map(String::from).to_vec() } else { vec!["-an".into()] });
    args.extend(
        [
            "-f",
            "mp4",
            "-movflags",
            "empty_moov+default_base_moof+frag_keyframe+cmaf",
            "-frag_duration",
            &(c.chunk_ms.min(c.part_ms) as u64 * 1000).to_string(),
            "-write_prft",
            "wallclock",
            "-flush_packets",
            "1",
            "pipe:1",
        ]
        .map(String::from),
    );
    args
}

fn mkfifo(path: &Path) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|e| std::io::Error::new(ErrorKind::InvalidInput, e))?;
    // SAFETY: `c` is a valid NUL-terminated path for the duration of the call.
    if unsafe { libc::mkfifo(c.as_ptr(), 0o600) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Keeps ffmpeg running until `shutdown` turns true.
pub async fn supervise(live: Arc<Live>, config: EncoderConfig, mut shutdown: watch::Receiver<bool>) {
    let mut backoff = Duration::from_millis(300);
    for run in 0u64.. {
        let began = tokio::time::Instant::now();
        let dir = std::env::temp_dir().join(format!("liveshop-origin-{}-{run}", std::process::id()));
        let (video, audio) = (dir.join("video.yuv"), dir.join("audio.pcm"));
        if let Err(e) = std::fs::create_dir_all(&dir).and_then(|_| mkfifo(&video)).and_then(|_| mkfifo(&audio)) {
            eprintln!("origin: cannot create FIFOs in {}: {e}", dir.display());
            std::process::exit(1);
        }
        let mut child = match Command::new(&config.ffmpeg)
            .args(ffmpeg_args(&config, &video, &audio))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
        {
            Ok(c) => c,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                eprintln!(
                    "origin: ffmpeg not found (`{}`). The live source needs it: install it with \
                     `apt-get install ffmpeg`, or pass --ffmpeg /path/to/ffmpeg.",
                    config.ffmpeg
                );
                std::process::exit(2);
            }
            Err(e) => {
                eprintln!("origin: cannot start ffmpeg (`{}`): {e}", config.ffmpeg);
                std::process::exit(2);
            }
        };
        if let Ok(mut pid) = live.ffmpeg_pid.lock() {
            *pid = child.id();
        }

        let timeline = Arc::new(Mutex::new(Timeline::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let source = {
            let (timeline, stop, f) = (timeline.clone(), stop.clone(), config.format);
            let (video, audio) = (video.clone(), audio.clone());
            std::thread::spawn(move || source::run(f, &video, &audio, timeline, stop))
        };
        let stderr_tail = collect_stderr(&mut child);
        let reader = child
            .stdout
            .take()
            .map(|out| tokio::spawn(package(out, live.clone(), timeline.clone(), config.format.fps)));

        let status = tokio::select! {
            status = child.wait() => Some(status),
            _ = shutdown.wait_for(|stop| *stop) => None,
        };
        stop.store(true, Ordering::Relaxed);
        if status.is_none() {
            let _ = child.kill().await;
        }
        if let Some(r) = reader {
            r.abort();
        }
        let _ = tokio::task::spawn_blocking(move || source.join()).await;
        let _ = std::fs::remove_dir_all(&dir);
        let Some(status) = status else { return };
        let tail = stderr_tail.lock().map(|t| t.join("\n")).unwrap_or_default();
        eprintln!(
            "origin: ffmpeg exited ({}); restarting. Its last output:\n{tail}",
            status.map_or_else(|e| e.to_string(), |s| s.to_string())
        );
        // An ffmpeg that keeps dying at once is retried less and less often (up to every 5 s).
        backoff = if began.elapsed() < Duration::from_secs(3) {
            (backoff * 2).min(Duration::from_secs(5))
        } else {
            Duration::from_millis(300)
        };
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
    }
}

fn collect_stderr(child: &mut Child) -> Arc<Mutex<Vec<String>>> {
    let tail = Arc::new(Mutex::new(Vec::new()));
    if let Some(err) = child.stderr.take() {
        let tail = tail.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(err).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if let Ok(mut t) = tail.lock() {
                    if t.len() == 20 {
                        t.remove(0);
                    }
                    t.push(line);
                }
            }
        });
    }
    tail
}

/// Splits ffmpeg's output into the init segment and fragments (`prft`? `moof` `mdat`).
async fn package(mut out: ChildStdout, live: Arc<Live>, timeline: Arc<Mutex<Timeline>>, fps: u32) {
    let mut buf: Vec<u8> = Vec::with_capacity(1 << 20);
    let mut init_bytes = Vec::new();
    let mut init: Option<InitSegment> = None;
    let mut fragment = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = match out.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        let mut pos = 0;
        loop {
            let len = match mp4::complete_box_len(&buf[pos..]) {
                Ok(Some(len)) => len,
                Ok(None) => break,
                Err(e) => {
                    eprintln!("origin: ffmpeg wrote an invalid box ({e}); dropping the rest of this run");
                    return;
                }
            };
            let bx = &buf[pos..pos + len];
            pos += len;
            match &bx[4..8] {
                b"ftyp" => init_bytes = bx.to_vec(),
                b"moov" => {
                    init_bytes.extend_from_slice(bx);
                    match InitSegment::parse(&init_bytes) {
                        Ok(parsed) => {
                            init = Some(parsed);
                            let bytes = std::mem::take(&mut init_bytes);
                            live.update(|s| s.new_init(bytes));
                        }
                        Err(e) => eprintln!("origin: unreadable init segment from ffmpeg: {e}"),
                    }
                }
                b"mdat" => {
                    fragment.extend_from_slice(bx);
                    let Some(init) = &init else { continue };
                    let bytes = std::mem::take(&mut fragment);
                    let capture = |frame| timeline.lock().ok().and_then(|t| t.capture_ms(frame, fps));
                    match packager::prepare_fragment(bytes, init, capture, fps) {
                        Ok(p) => live.update(|s| s.add_chunk(p.bytes, p.duration, p.keyframe, p.capture_ms)),
                        Err(e) => eprintln!("origin: skipping an unreadable fragment: {e}"),
                    }
                }
                b"mfra" => {}
                _ => fragment.extend_from_slice(bx),
            }
        }
        buf.drain(..pos);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use liveshop::core::mp4::FragmentInfo;
    use liveshop::core::playlist::{self, Playlist};

    fn ffmpeg_available() -> bool {
        std::process::Command::new("ffmpeg")
            .arg("-version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// Waits (in real time) until `check` holds for the stream, or panics after `secs`.
    async fn until(live: &Live, secs: u64, what: &str, check: impl Fn(&Stream) -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        let mut changes = live.changed.subscribe();
        loop {
            if check(&live.stream.lock().unwrap()) {
                return;
            }
            if tokio::time::timeout_at(deadline, changes.changed()).await.is_err() {
                panic!("timed out waiting for {what}:\n{}", live.stream.lock().unwrap().render());
            }
        }
    }

    fn bytes_of(view: packager::Lookup<packager::PartView>) -> Vec<u8> {
        match view {
            packager::Lookup::Ready(v) => v.chunks.iter().flat_map(|c| c.iter().copied()).collect(),
            other => panic!("part not ready: {other:?}"),
        }
    }

    /// Decodes the first video frame of `init` + `media` with ffmpeg and reads its frame code.
    fn first_frame_code(init: &[u8], media: &[u8], f: Format) -> Option<u64> {
        use std::io::Write as _;
        let mut child = std::process::Command::new("ffmpeg")
            .args(["-v", "error", "-f", "mp4", "-i", "pipe:0", "-frames:v", "1", "-f", "rawvideo"])
            .args(["-pix_fmt", "gray", "pipe:1"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .ok()?;
        let mut stdin = child.stdin.take()?;
        let input = [init, media].concat();
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
        let out = child.wait_with_output().ok()?;
        let _ = writer.join();
        (out.stdout.len() >= f.width * f.height).then(|| crate::source::tests::decode(&out.stdout, f.width))?
    }

    /// Runs the real ffmpeg for a few seconds: parts and segments appear with sane durations,
    /// every chunk's `prft` carries its first frame's capture time, the frame code survives
    /// H.264, and killing ffmpeg continues the show after a discontinuity with a new init.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn real_ffmpeg_live_show() {
        if !ffmpeg_available() {
            eprintln!("SKIPPED real_ffmpeg_live_show: ffmpeg is not installed (apt-get install ffmpeg)");
            return;
        }
        let format = Format { width: 320, height: 180, fps: 30 };
        let live = Live::new(Stream::new("show", 0.2, 5, 8));
        let config = EncoderConfig {
            ffmpeg: "ffmpeg".into(),
            format,
            part_ms: 200,
            chunk_ms: 33,
            gop_ms: 1000,
            video_kbps: 400,
            audio: true,
        };
        let (stop_tx, stop_rx) = watch::channel(false);
        let started = crate::source::wall_clock_ms();
        let task = tokio::spawn(supervise(live.clone(), config, stop_rx));

        until(&live, 15, "three complete segments", |s| s.has_reached(2, None)).await;
        let text = live.stream.lock().unwrap().render_with(false);
        let Ok(Playlist::Media(m)) = playlist::parse(text.as_bytes()) else { panic!("{text}") };
        let complete: Vec<_> = m.segments.iter().filter(|s| s.uri.is_some()).collect();
        assert!(complete.len() >= 3, "{text}");
        for s in &complete {
            assert!((s.duration - 1.0).abs() < 0.02, "segment {} lasts {} s:\n{text}", s.msn, s.duration);
        }
        for (a, b) in complete.iter().zip(&complete[1..]) {
            let gap = b.program_date_time_ms.unwrap() - a.program_date_time_ms.unwrap();
            assert!((gap - 1000.0).abs() < 150.0, "PDT {} -> {}: {gap} ms apart", a.msn, b.msn);
        }
        let parts: Vec<_> = m.segments.iter().flat_map(|s| &s.parts).collect();
        assert!(parts.len() >= 5, "{text}");
        for p in &parts {
            assert!((p.duration - 0.2).abs() < 0.02, "part {} lasts {} s", p.uri, p.duration);
        }
        assert!(m.segments.iter().filter(|s| !s.parts.is_empty()).all(|s| s.parts[0].independent));

        // The second complete segment, checked byte by byte.
        let seg = complete[1];
        let pdt = seg.program_date_time_ms.unwrap();
        assert!(pdt > started && pdt < crate::source::wall_clock_ms(), "PDT {pdt} is not a capture time");
        let (init, part0, whole) = {
            let s = live.stream.lock().unwrap();
            let packager::Lookup::Ready(whole) = s.full_segment(seg.msn) else { panic!("segment {} gone", seg.msn) };
            (s.init(0).unwrap(), bytes_of(s.part(seg.msn, 0)), whole)
        };
        assert!(whole.starts_with(&part0));
        let init_info = InitSegment::parse(&init).unwrap();
        let video = init_info.video().unwrap();
        assert!(init_info.tracks.len() == 2, "video and audio tracks");
        let mut pos = 0;
        let mut chunks = 0;
        let mut media_times = Vec::new();
        while pos < whole.len() {
            // Each chunk: prft, moof, mdat.
            let mut end = pos;
            for expected in [b"prft", b"moof", b"mdat"] {
                let len = mp4::complete_box_len(&whole[end..]).unwrap().unwrap();
                assert_eq!(&whole[end + 4..end + 8], expected, "chunk {chunks}");
                end += len;
            }
            let info = FragmentInfo::parse(&whole[pos..end]).unwrap();
            let run = info.run(video.id).unwrap();
            let prft = info.producer_times[0];
            assert_eq!((prft.track_id, prft.media_time), (video.id, run.base_decode_time));
            assert_eq!(run.starts_with_sync, chunks == 0, "only the first chunk starts with a keyframe");
            if chunks == 0 {
                assert!((prft.wall_clock_ms - pdt).abs() < 0.01, "prft {} vs PDT {pdt}", prft.wall_clock_ms);
            }
            media_times.push((run.base_decode_time, prft.wall_clock_ms));
            chunks += 1;
            pos = end;
        }
        assert_eq!(chunks, 30, "one chunk per frame");
        // Capture times follow the media timeline (frames drawn on schedule).
        let scale = video.timescale as f64;
        for w in media_times.windows(2) {
            let media_ms = (w[1].0 - w[0].0) as f64 / scale * 1000.0;
            assert!((w[1].1 - w[0].1 - media_ms).abs() < 25.0, "capture step {} ms", w[1].1 - w[0].1);
        }
        // The code drawn into the frame survives H.264 and matches the capture time.
        assert_eq!(first_frame_code(&init, &whole, format), Some(pdt as u64));

        // Kill ffmpeg: the show goes on after a discontinuity, with a new init.
        let before = live.stream.lock().unwrap().last_msn().unwrap();
        let pid = live.ffmpeg_pid.lock().unwrap().unwrap();
        // SAFETY: plain kill(2) of the child this test started.
        assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGKILL) }, 0);
        until(&live, 15, "a segment from the restarted encoder", |s| {
            s.init(1).is_some() && s.last_msn().is_some_and(|m| m > before + 1) && s.has_reached(before + 2, None)
        })
        .await;
        let text = live.stream.lock().unwrap().render_with(false);
        let Ok(Playlist::Media(m)) = playlist::parse(text.as_bytes()) else { panic!("{text}") };
        let disc: Vec<_> = m.segments.iter().filter(|s| s.discontinuity).collect();
        assert_eq!(disc.len(), 1, "{text}");
        assert!(disc[0].msn > before && disc[0].discontinuity_sequence == 1, "{text}");
        assert!(text.contains("#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"show/init-1.mp4\""), "{text}");
        let second = live.ffmpeg_pid.lock().unwrap().unwrap();
        assert_ne!(second, pid);

        stop_tx.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(5), task).await.expect("supervisor stops").unwrap();
        // SAFETY: signal 0 only checks whether the process still exists.
        assert_ne!(unsafe { libc::kill(second as i32, 0) }, 0, "ffmpeg is gone after stop");
    }
}
