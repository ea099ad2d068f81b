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
    let mut args: Vec<String> = [
        "-hide_banner",
        "-loglevel",
        "error",
        "-nostdin",
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
    for run in 0u64.. {
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
        tokio::time::sleep(Duration::from_millis(300)).await;
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
