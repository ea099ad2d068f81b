//! Runs ffmpeg on the synthetic source, one output per rendition of the bitrate ladder, cuts
//! each fragmented MP4 output into parts, and restarts it (as a discontinuity) if it dies.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use liveshop::core::format::mp4::{self, InitSegment};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};
use tokio::net::unix::pipe;
use tokio::process::{Child, Command};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::cues::Cues;
use crate::packager::{self, Stream};
use crate::source::{self, Clock, Format, Timeline};

#[derive(Debug, Clone)]
pub struct EncoderConfig {
    pub ffmpeg: String,
    pub format: Format,
    pub part_ms: u32,
    /// CMAF chunk length: ffmpeg flushes a fragment this often (one frame by default).
    pub chunk_ms: u32,
    pub gop_ms: u32,
    /// Video bitrate of each rendition, top first.
    pub video_kbps: Vec<u32>,
    /// Without audio the show is video only (for measuring what audio costs a player).
    pub audio: bool,
}

/// The bitrate ladder being packaged, shared with the HTTP handlers.
pub struct Live {
    /// Top rendition first; every one has the same picture size, frame rate and GOP.
    pub renditions: Vec<Rendition>,
    pub format: Format,
    /// Process id of the running ffmpeg, for tests that kill it.
    pub ffmpeg_pid: Mutex<Option<u32>>,
    /// Every timestamp the origin hands out comes from this clock.
    pub clock: Clock,
    /// The latency every viewer is asked to hold (`--target-latency-ms`), if any.
    pub target_latency_ms: Option<u32>,
    /// The product cues the host published.
    pub cues: Arc<Cues>,
    /// Flash-sale orders on the cues.
    pub orders: Arc<crate::orders::Orders>,
    /// Records the top rendition to disk (`record`), once set.
    pub recorder: std::sync::OnceLock<Arc<crate::record::Recorder>>,
}

/// How the show is run, beyond its renditions and picture.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub clock: Clock,
    pub target_latency_ms: Option<u32>,
    pub orders: crate::orders::OrderSettings,
}

impl Live {
    pub fn new(renditions: Vec<Rendition>, format: Format, settings: Settings) -> Arc<Self> {
        let cues = Arc::new(Cues::new(settings.clock, settings.target_latency_ms));
        let orders = Arc::new(crate::orders::Orders::new(settings.orders, settings.clock, cues.clone()));
        Arc::new(Live {
            renditions,
            format,
            ffmpeg_pid: Mutex::new(None),
            clock: settings.clock,
            target_latency_ms: settings.target_latency_ms,
            cues,
            orders,
            recorder: std::sync::OnceLock::new(),
        })
    }

    /// The rendition whose stream is called `name`.
    pub fn find(&self, name: &str) -> Option<(usize, &Rendition)> {
        self.renditions.iter().enumerate().find(|(_, r)| r.stream.lock().is_ok_and(|s| s.name == name))
    }

    /// A new encoder run begins: a discontinuity in every rendition, at the same MSN. If ffmpeg
    /// stopped between writing its outputs, a rendition that missed the newest segments lists
    /// them as gaps.
    fn restart(&self) {
        let next_msn = |r: &Rendition| r.stream.lock().map_or(0, |s| s.next_msn());
        let Some(leader) = self.renditions.iter().max_by_key(|r| next_msn(r)) else { return };
        let end = next_msn(leader);
        for r in &self.renditions {
            let missing: Vec<(f64, f64)> =
                (next_msn(r)..end).filter_map(|msn| leader.stream.lock().ok()?.timing(msn)).collect();
            r.update(|s| {
                for (pdt_ms, duration) in missing {
                    s.add_gap(pdt_ms, duration);
                }
                s.restart();
            });
        }
    }
}

/// One rendition of the ladder.
pub struct Rendition {
    pub stream: Mutex<Stream>,
    /// Signals every change to the stream (new part, new init).
    pub changed: watch::Sender<u64>,
    /// The newest cue this rendition's media has carried in-band.
    cues_sent: AtomicU32,
}

impl Rendition {
    pub fn new(stream: Stream) -> Self {
        Rendition { stream: Mutex::new(stream), changed: watch::channel(0).0, cues_sent: AtomicU32::new(0) }
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

/// One ffmpeg, one output per rendition (`outputs[i]`), so that all start, stop and place
/// keyframes together: the same GOP on the same source frames, only the bitrate differs.
fn ffmpeg_args(c: &EncoderConfig, video: &Path, audio: &Path, outputs: &[String]) -> Vec<String> {
    let f = c.format;
    let gop = (c.gop_ms as u64 * f.fps as u64 / 1000).max(1).to_string();
    let mut args: Vec<String> = [
        "-hide_banner",
        "-loglevel",
        "error",
        "-nostdin",
        // The output FIFOs already exist.
        "-y",
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
    // Per-output options come before the output they apply to.
    for (kbps, url) in c.video_kbps.iter().zip(outputs) {
        args.extend(
            [
                "-map",
                "0:v",
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-tune",
                "zerolatency",
                "-pix_fmt",
                "yuv420p",
                "-g",
                &gop,
                "-keyint_min",
                &gop,
                "-sc_threshold",
                "0",
                "-b:v",
                &format!("{kbps}k"),
                "-maxrate",
                &format!("{kbps}k"),
                "-bufsize",
                &format!("{}k", kbps / 2),
            ]
            .map(String::from),
        );
        if c.audio {
            args.extend(["-map", "1:a", "-c:a", "aac", "-b:a", "64k"].map(String::from));
        }
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
                url,
            ]
            .map(String::from),
        );
    }
    args
}

/// A new directory of its own under the temp dir, named `prefix` and a random suffix (`mkdtemp`).
/// Never a fixed name: an origin killed before it cleaned up leaves its directory behind, and a
/// later process can be given the same pid.
pub(crate) fn private_dir(prefix: &str) -> std::io::Result<PathBuf> {
    use std::os::unix::ffi::{OsStrExt, OsStringExt};
    let template = std::env::temp_dir().join(format!("{prefix}XXXXXX"));
    let mut bytes = std::ffi::CString::new(template.as_os_str().as_bytes())
        .map_err(|e| std::io::Error::new(ErrorKind::InvalidInput, e))?
        .into_bytes_with_nul();
    // SAFETY: `bytes` is a writable NUL-terminated template that outlives the call.
    if unsafe { libc::mkdtemp(bytes.as_mut_ptr().cast()) }.is_null() {
        return Err(std::io::Error::last_os_error());
    }
    bytes.pop();
    Ok(PathBuf::from(std::ffi::OsString::from_vec(bytes)))
}

pub(crate) fn mkfifo(path: &Path) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|e| std::io::Error::new(ErrorKind::InvalidInput, e))?;
    // SAFETY: `c` is a valid NUL-terminated path for the duration of the call.
    if unsafe { libc::mkfifo(c.as_ptr(), 0o600) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// One ffmpeg run on the source: its process, the tasks packaging its outputs, the source thread.
struct EncoderRun {
    child: Child,
    readers: JoinSet<()>,
    source: std::thread::JoinHandle<()>,
    stop: Arc<AtomicBool>,
    dir: PathBuf,
    stderr_tail: Arc<Mutex<Vec<String>>>,
}

impl EncoderRun {
    /// Starts ffmpeg (run number `run`) and the source feeding it at `pace`.
    fn start(live: &Arc<Live>, config: &EncoderConfig, run: u64, pace: source::Pace) -> EncoderRun {
        let dir = match private_dir(&format!("liveshop-origin-{run}-")) {
            Ok(dir) => dir,
            Err(e) => {
                eprintln!(
                    "origin: cannot create a directory for ffmpeg's FIFOs in {}: {e}",
                    std::env::temp_dir().display()
                );
                std::process::exit(1);
            }
        };
        let (video, audio) = (dir.join("video.yuv"), dir.join("audio.pcm"));
        // Rendition 0 comes on stdout, the others through FIFOs.
        let fifos: Vec<PathBuf> = (1..live.renditions.len()).map(|i| dir.join(format!("out{i}.mp4"))).collect();
        let made = [&video, &audio].into_iter().chain(&fifos).try_for_each(|p| mkfifo(p));
        // Opened before ffmpeg starts, so that it never waits for a reader.
        let receivers = made.and_then(|_| {
            fifos.iter().map(|p| pipe::OpenOptions::new().open_receiver(p)).collect::<std::io::Result<Vec<_>>>()
        });
        let receivers = match receivers {
            Ok(r) => r,
            Err(e) => {
                eprintln!("origin: cannot create FIFOs in {}: {e}", dir.display());
                std::process::exit(1);
            }
        };
        let outputs: Vec<String> =
            std::iter::once("pipe:1".to_string()).chain(fifos.iter().map(|p| p.to_string_lossy().into())).collect();
        let mut child = match Command::new(&config.ffmpeg)
            .args(ffmpeg_args(config, &video, &audio, &outputs))
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
            let (timeline, stop, f, clock) = (timeline.clone(), stop.clone(), config.format, live.clock);
            let (video, audio) = (video.clone(), audio.clone());
            std::thread::spawn(move || source::run(f, clock, (&video, &audio), timeline, stop, pace))
        };
        let stderr_tail = collect_stderr(&mut child);
        let mut readers = JoinSet::new();
        let fps = config.format.fps;
        if let Some(out) = child.stdout.take() {
            readers.spawn(package(out, live.clone(), 0, timeline.clone(), fps));
        }
        for (i, rx) in receivers.into_iter().enumerate() {
            readers.spawn(package(rx, live.clone(), i + 1, timeline.clone(), fps));
        }
        EncoderRun { child, readers, source, stop, dir, stderr_tail }
    }

    /// ffmpeg's last lines on stderr.
    fn tail(&self) -> String {
        self.stderr_tail.lock().map(|t| t.join("\n")).unwrap_or_default()
    }

    /// Stops the source, waits for the packaging of what ffmpeg wrote (up to `drain`), cleans up.
    async fn finish(mut self, drain: Duration) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.child.kill().await;
        let readers = &mut self.readers;
        let _ = tokio::time::timeout(drain, async { while readers.join_next().await.is_some() {} }).await;
        self.readers.shutdown().await;
        let source = self.source;
        let _ = tokio::task::spawn_blocking(move || source.join()).await;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Keeps ffmpeg running until `shutdown` turns true.
pub async fn supervise(live: Arc<Live>, config: EncoderConfig, mut shutdown: watch::Receiver<bool>) {
    for run in 0u64.. {
        if run > 0 {
            live.restart();
        }
        let mut r = EncoderRun::start(&live, &config, run, source::Pace::RealTime);
        let restart = tokio::select! {
            _ = r.child.wait() => true,
            _ = r.readers.join_next() => true,
            _ = shutdown.wait_for(|stop| *stop) => false,
        };
        r.stop.store(true, Ordering::Relaxed);
        // An output that ended means ffmpeg is exiting (give it a moment to say how), or has to
        // be stopped (it wrote something unreadable).
        let status =
            if restart { tokio::time::timeout(Duration::from_millis(500), r.child.wait()).await.ok() } else { None };
        let tail = r.tail();
        // Package what ffmpeg wrote before it stopped, so the renditions end the run together.
        r.finish(Duration::from_secs(1)).await;
        if !restart {
            return;
        }
        let why = match status {
            Some(Ok(s)) => format!("ffmpeg exited ({s})"),
            Some(Err(e)) => format!("ffmpeg: {e}"),
            None => "an output of ffmpeg ended".into(),
        };
        eprintln!("origin: {why}; restarting. Its last output:\n{tail}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Encodes a show made ahead of time (`pace` is [`source::Pace::Ahead`]) in one ffmpeg run, as
/// fast as ffmpeg goes: returns once every frame is encoded and packaged.
pub async fn encode_ahead(live: Arc<Live>, config: EncoderConfig, pace: source::Pace) -> Result<(), String> {
    let mut r = EncoderRun::start(&live, &config, 0, pace);
    // ffmpeg ends at the end of its inputs; its outputs end with it.
    let status = r.child.wait().await;
    let readers = &mut r.readers;
    while readers.join_next().await.is_some() {}
    let tail = r.tail();
    r.finish(Duration::ZERO).await;
    match status {
        Ok(s) if s.success() => Ok(()),
        Ok(s) => Err(format!("ffmpeg exited ({s}); its last output:\n{tail}")),
        Err(e) => Err(format!("ffmpeg: {e}")),
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

/// Splits one of ffmpeg's outputs into the init segment and fragments (`prft`? `moof` `mdat`)
/// of rendition `rendition`, adding the cues due in each (`emsg`, before the `moof`).
pub(crate) async fn package(
    mut out: impl AsyncRead + Unpin,
    live: Arc<Live>,
    rendition: usize,
    timeline: Arc<Mutex<Timeline>>,
    fps: u32,
) {
    let Some(r) = live.renditions.get(rendition) else { return };
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
                            r.update(|s| s.new_init(bytes));
                        }
                        Err(e) => eprintln!("origin: unreadable init segment from ffmpeg: {e}"),
                    }
                }
                b"mdat" => {
                    fragment.extend_from_slice(bx);
                    let Some(init) = &init else { continue };
                    let bytes = std::mem::take(&mut fragment);
                    let capture = |frame| timeline.lock().ok().and_then(|t| t.capture_ms(frame, fps));
                    let mut p = match packager::prepare_fragment(bytes, init, capture, fps, live.clock) {
                        Ok(p) => p,
                        Err(e) => {
                            eprintln!("origin: skipping an unreadable fragment: {e}");
                            continue;
                        }
                    };
                    // Cues ride in the chunk, on the video track's timeline.
                    let events =
                        live.cues.emsg_for_chunk(&r.cues_sent, p.keyframe, (p.timescale, p.capture_ms, p.media_time));
                    if !events.is_empty() {
                        if let Err(e) = packager::insert_before_moof(&mut p.bytes, &events) {
                            eprintln!("origin: cannot add cues to a fragment: {e}");
                        }
                    }
                    // A keyframe completes the segment before it: the recorder takes it from here.
                    let recorder = live.recorder.get().filter(|_| rendition == 0 && p.keyframe);
                    r.update(|s| {
                        s.add_chunk(p.bytes, p.duration, p.keyframe, p.capture_ms);
                        if let Some(rec) = recorder {
                            rec.offer(s);
                        }
                    });
                }
                b"mfra" => {}
                _ => fragment.extend_from_slice(bx),
            }
        }
        buf.drain(..pos);
    }
}

/// Real media for tests: the fixture's init segment and its five 200 ms fragments (30 fps,
/// one keyframe at the start), as ffmpeg would write them.
#[cfg(test)]
pub(crate) mod fixture {
    pub fn init() -> Vec<u8> {
        include_bytes!("../../tests/fixtures/media/init.mp4").to_vec()
    }

    pub fn fragments() -> Vec<Vec<u8>> {
        let data = include_bytes!("../../tests/fixtures/media/fragments.m4s");
        let mut out: Vec<Vec<u8>> = Vec::new();
        for b in liveshop::core::format::mp4::boxes(data) {
            let b = b.expect("the fixture reads");
            if b.is(b"moof") || out.is_empty() {
                out.push(Vec::new());
            }
            if let Some(f) = out.last_mut() {
                f.extend_from_slice(b.whole);
            }
        }
        out
    }

    /// The init segment followed by `fragments`, as one ffmpeg output.
    pub fn output(fragments: &[Vec<u8>]) -> Vec<u8> {
        let mut out = init();
        fragments.iter().for_each(|f| out.extend_from_slice(f));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packager::Lookup;
    use liveshop::core::format::mp4::FragmentInfo;
    use liveshop::core::format::playlist::{self, Playlist};
    use std::io::Read;

    /// (msn, program date-time, duration, discontinuity sequence) of every listed segment.
    fn timeline_of(r: &Rendition) -> Vec<(u64, Option<f64>, f64, u64)> {
        let text = r.stream.lock().unwrap().render(&[]);
        let Ok(Playlist::Media(m)) = playlist::parse(text.as_bytes()) else { panic!("{text}") };
        m.segments.iter().map(|s| (s.msn, s.program_date_time_ms, s.duration, s.discontinuity_sequence)).collect()
    }

    #[test]
    fn a_restart_realigns_renditions_that_ffmpeg_left_apart() {
        let format = Format { width: 640, height: 360, fps: 30 };
        let live = Live::new(
            vec![Rendition::new(Stream::new("show", 0.2, 5, 4)), Rendition::new(Stream::new("show-300k", 0.2, 5, 4))],
            format,
            Settings::default(),
        );
        // ffmpeg died after writing the keyframe that starts segment 1 to output 0 only.
        for (r, frames) in live.renditions.iter().zip([6, 5]) {
            r.update(|s| {
                s.new_init(vec![0]);
                for f in 0..frames {
                    s.add_chunk(vec![0], 0.2, f % 5 == 0, 1000.0 + f as f64 * 200.0);
                }
            });
        }
        live.restart();
        for r in &live.renditions {
            r.update(|s| {
                s.new_init(vec![1]);
                s.add_chunk(vec![1], 0.2, true, 9000.0);
            });
        }
        let (top, low) = (timeline_of(&live.renditions[0]), timeline_of(&live.renditions[1]));
        assert_eq!(top, low);
        assert_eq!(top[1..], [(1, Some(2000.0), 0.2, 0), (2, Some(9000.0), 0.2, 1)]);
        assert!(live.renditions[1].stream.lock().unwrap().render(&[]).contains("#EXT-X-GAP"));
    }

    #[test]
    fn each_run_gets_its_own_fifo_directory_even_beside_a_leftover_one() {
        let prefix = format!("liveshop-origin-test-dir-{}-", std::process::id());
        // What an origin killed mid-run leaves behind, under the name a fixed scheme would pick.
        let leftover = std::env::temp_dir().join(format!("{prefix}XXXXXX"));
        std::fs::create_dir_all(&leftover).unwrap();
        let (a, b) = (private_dir(&prefix).unwrap(), private_dir(&prefix).unwrap());
        assert!(a != b && a != leftover && b != leftover, "{a:?} {b:?}");
        assert!(a.is_dir() && b.is_dir());
        assert!(a.file_name().unwrap().to_string_lossy().starts_with(&prefix));
        mkfifo(&a.join("video.yuv")).unwrap();
        for d in [a, b, leftover] {
            std::fs::remove_dir_all(d).unwrap();
        }
    }

    #[tokio::test]
    async fn the_clock_offset_shifts_the_frame_code_the_prft_and_the_program_date_time() {
        let offset_ms = -3_600_000.0;
        let clock = Clock { offset_ms };
        let dir = private_dir("liveshop-origin-test-clock-").unwrap();
        let (video, audio) = (dir.join("video.yuv"), dir.join("audio.pcm"));
        mkfifo(&video).unwrap();
        mkfifo(&audio).unwrap();
        let format = Format { width: 96, height: 48, fps: 30 };
        let timeline = Arc::new(Mutex::new(Timeline::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let source = {
            let (timeline, stop, video, audio) = (timeline.clone(), stop.clone(), video.clone(), audio.clone());
            std::thread::spawn(move || {
                source::run(format, clock, (&video, &audio), timeline, stop, source::Pace::RealTime)
            })
        };
        // The source writes its first frame as soon as the FIFO has a reader.
        let mut frame = vec![0u8; format.width * format.height * 3 / 2];
        std::fs::File::open(&video).unwrap().read_exact(&mut frame).unwrap();
        let read_at = source::wall_clock_ms();
        stop.store(true, Ordering::Relaxed);
        source.join().unwrap();
        let _ = std::fs::remove_dir_all(&dir);

        let code = source::decode(&frame[..format.width * format.height], format.width).unwrap() as f64;
        assert!((read_at + offset_ms - 1000.0..=read_at + offset_ms).contains(&code), "{code} vs {read_at}");
        let first = timeline.lock().unwrap().capture_ms(0, 30);
        assert_eq!(first, Some(code));

        // Packaged, the first frame's capture time is the segment's date and its prft.
        let settings = Settings { clock, ..Settings::default() };
        let live = Live::new(vec![Rendition::new(Stream::new("show", 0.2, 5, 4))], format, settings);
        package(&fixture::output(&fixture::fragments())[..], live.clone(), 0, timeline, 30).await;
        let r = &live.renditions[0];
        assert_eq!(timeline_of(r)[0].1, Some(code));
        let Lookup::Ready(part) = r.stream.lock().unwrap().part(0, 0) else { panic!("no part 0.0") };
        let prft = FragmentInfo::parse(&part.chunks[0]).unwrap().producer_times[0];
        assert!((prft.wall_clock_ms - code).abs() < 0.01, "{prft:?}");
    }
}
