//! The reference origin: a synthetic live show encoded by ffmpeg as a bitrate ladder, packaged
//! as LL-HLS, with a clock endpoint and the demo pages, all on one port.
//!
//! `origin --listen 127.0.0.1:8080 [--width 640 --height 360 --fps 30 --part-ms 200
//! --chunk-ms 33 --gop-ms 1000 --video-kbps 800,150 --name show --window-segments 8 --www www
//! --pkg pkg --vendor node_modules --traces ../shared/traces --ffmpeg ffmpeg --no-audio
//! --clock-offset-ms 0 --admin-token TOKEN --target-latency-ms N --script-cues SECONDS
//! --token-secret SECRET --order-rate 200 --fair-window-ms 3000 --order-seed N
//! --ledger target/ledger/orders.sqlite --fault-drop-requests P --fault-drop-responses P
//! --fault-delay-ms N --fault-5xx P --record DIR --record-only SECONDS]`
//!
//! Every show is recorded under `--record` (default `target/recordings`; see `record`) and
//! served for replay under `/vod/` (see `vod`), with thumbnails drawn by ffmpeg (see `thumbs`);
//! the shows recorded by earlier starts stay served.
//!
//! `--record-only SECONDS` records a show of that length ahead of time and exits, serving
//! nothing: the source stamps its frames with the instants they stand for (from now on, ahead
//! of the wall clock) and writes them as fast as ffmpeg encodes them (`source::Pace::Ahead`),
//! `--script-cues` raises its products on the show's own clock (`cues::AheadScript`), and the
//! recording (top rendition only), thumbnails included, is what a live show of that length
//! would have left under `--record`. It prints the show's id on stdout.
//!
//! Flash-sale orders (see `orders`): `POST /demo/login` signs a demo user token (with
//! `--token-secret`, or a secret random per start); `POST /orders` takes it and an
//! `Idempotency-Key`, admits `--order-rate` new intents a second, and draws the winners among
//! the attempts of the first `--fair-window-ms` after a cue was shown (`--order-seed` fixes the
//! draw, for tests). Orders, sales and draws are kept in the SQLite ledger at `--ledger`
//! (`:memory:` for one that dies with the process), so a restart mid-sale loses nothing;
//! `--fault-*` drop, delay or fail `/orders*` requests (see `faults`). The host's
//! `GET /admin/sales`, `GET|POST /admin/faults` and `POST /admin/orders/restart` take the admin
//! token.
//!
//! `POST /admin/cues` publishes a product cue (see `cues`); it takes
//! `Authorization: Bearer <token>`, the `--admin-token` given or one generated at start and
//! printed to stderr (`/admin/ffmpeg-pid`, a hook for the restart test, does not).
//! `--target-latency-ms` asks every viewer to hold that latency: the multivariant playlist
//! carries it as EXT-X-SESSION-DATA `com.liveshop.target-latency` and every cue as
//! X-TARGET-LATENCY-MS. `--script-cues SECONDS` raises a demo product every SECONDS, with a
//! 3 s countdown, for the demo and the bench.
//!
//! `--clock-offset-ms` shifts every timestamp the origin hands out (`/clock`, capture times and
//! with them the frame code, `prft` and PROGRAM-DATE-TIME, cue times), so a viewer's clock error
//! shows in what is measured.
//!
//! `--video-kbps` lists the renditions, top first (one value: one rendition). The top one is
//! `/live/<name>.m3u8` with media under `/live/<name>/`; each other one is
//! `/live/<name>-<kbps>k.m3u8` (e.g. `/live/show-150k.m3u8`); `/live/<name>-abr.m3u8` is the
//! multivariant playlist listing them all. Every route is also served through the network
//! emulator under `/net/<profile>/<client>/`.

mod cues;
mod encoder;
mod faults;
mod font;
mod http;
mod ledger;
mod load;
mod netem;
mod orders;
mod packager;
mod record;
mod source;
mod thumbs;
mod vod;

use std::io::Write;
use std::path::PathBuf;

use encoder::{EncoderConfig, Live, Rendition, Settings};
use packager::Stream;
use source::Format;
use tokio::sync::watch;

struct Args {
    listen: String,
    format: Format,
    part_ms: u32,
    chunk_ms: u32,
    gop_ms: u32,
    /// One per rendition, top first.
    video_kbps: Vec<u32>,
    name: String,
    window: usize,
    www: PathBuf,
    pkg: PathBuf,
    vendor: PathBuf,
    traces: PathBuf,
    ffmpeg: String,
    audio: bool,
    clock_offset_ms: f64,
    admin_token: Option<String>,
    target_latency_ms: Option<u32>,
    script_cues_s: Option<f64>,
    orders: orders::OrderSettings,
    record: PathBuf,
    record_only_s: Option<f64>,
}

/// Where the order ledger is kept without `--ledger`: with the build products, out of git.
const DEFAULT_LEDGER: &str = "target/ledger/orders.sqlite";

fn probability(flag: &str, value: &str) -> Result<f64, String> {
    let p = value.parse::<f64>().map_err(|_| format!("{flag}: `{value}` is not a number"))?;
    faults::FaultSettings::probability(flag, p)
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        listen: "127.0.0.1:8080".into(),
        format: Format { width: 640, height: 360, fps: 30 },
        part_ms: 200,
        chunk_ms: 0,
        gop_ms: 1000,
        video_kbps: vec![800, 150],
        name: "show".into(),
        window: 8,
        www: "www".into(),
        pkg: "pkg".into(),
        vendor: "node_modules".into(),
        traces: "../shared/traces".into(),
        ffmpeg: "ffmpeg".into(),
        audio: true,
        clock_offset_ms: 0.0,
        admin_token: None,
        target_latency_ms: None,
        script_cues_s: None,
        orders: orders::OrderSettings { ledger: ledger::LedgerPath::File(DEFAULT_LEDGER.into()), ..Default::default() },
        record: record::DEFAULT_DIR.into(),
        record_only_s: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--help" || flag == "-h" {
            return Err(String::new());
        }
        if flag == "--no-audio" {
            a.audio = false;
            continue;
        }
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let num = |v: &str| v.parse::<u32>().map_err(|_| format!("{flag}: `{v}` is not a number"));
        match flag.as_str() {
            "--listen" => a.listen = value,
            "--width" => a.format.width = num(&value)? as usize,
            "--height" => a.format.height = num(&value)? as usize,
            "--fps" => a.format.fps = num(&value)?,
            "--part-ms" => a.part_ms = num(&value)?,
            "--gop-ms" => a.gop_ms = num(&value)?,
            "--chunk-ms" => a.chunk_ms = num(&value)?,
            "--video-kbps" => a.video_kbps = value.split(',').map(|v| num(v.trim())).collect::<Result<_, _>>()?,
            "--name" => a.name = value,
            "--window-segments" => a.window = num(&value)? as usize,
            "--www" => a.www = value.into(),
            "--pkg" => a.pkg = value.into(),
            "--vendor" => a.vendor = value.into(),
            "--traces" => a.traces = value.into(),
            "--ffmpeg" => a.ffmpeg = value,
            "--clock-offset-ms" => {
                a.clock_offset_ms = value
                    .parse::<f64>()
                    .ok()
                    .filter(|ms| ms.is_finite() && ms.abs() <= 86_400_000.0)
                    .ok_or_else(|| format!("{flag}: `{value}` is not a number of ms within a day"))?
            }
            "--admin-token" => {
                if value.is_empty() || value.len() > 256 || !value.bytes().all(|b| b.is_ascii_graphic()) {
                    return Err(format!("{flag}: 1-256 printable ASCII characters, no spaces"));
                }
                a.admin_token = Some(value);
            }
            "--target-latency-ms" => {
                let ms = num(&value)?;
                if !(1..=cues::MAX_TARGET_LATENCY_MS).contains(&ms) {
                    return Err(format!("{flag}: between 1 and {}", cues::MAX_TARGET_LATENCY_MS));
                }
                a.target_latency_ms = Some(ms);
            }
            "--script-cues" => {
                let every = value.parse::<f64>().ok().filter(|s| (1.0..=86_400.0).contains(s));
                a.script_cues_s = Some(every.ok_or_else(|| format!("{flag}: seconds, from 1 to 86400"))?);
            }
            "--token-secret" => {
                if value.is_empty() || value.len() > 256 {
                    return Err(format!("{flag}: 1-256 bytes"));
                }
                a.orders.token_secret = Some(value.into_bytes());
            }
            "--order-rate" => {
                let n = num(&value)?;
                if !(1..=1_000_000).contains(&n) {
                    return Err(format!("{flag}: orders a second, from 1 to 1000000"));
                }
                a.orders.rate = n;
            }
            "--fair-window-ms" => {
                let ms = num(&value)?;
                if ms > 600_000 {
                    return Err(format!("{flag}: at most 600000"));
                }
                a.orders.fair_window_ms = ms;
            }
            "--ledger" => a.orders.ledger = ledger::LedgerPath::parse(&value).map_err(|e| format!("{flag}: {e}"))?,
            "--fault-drop-requests" => a.orders.faults.drop_requests = probability(&flag, &value)?,
            "--fault-drop-responses" => a.orders.faults.drop_responses = probability(&flag, &value)?,
            "--fault-5xx" => a.orders.faults.error_5xx = probability(&flag, &value)?,
            "--fault-delay-ms" => {
                a.orders.faults.delay_ms = faults::FaultSettings::delay(&flag, u64::from(num(&value)?))?
            }
            "--record" => {
                if value.is_empty() {
                    return Err(format!("{flag}: a directory"));
                }
                a.record = value.into();
            }
            "--record-only" => {
                let s = value.parse::<f64>().ok().filter(|s| (1.0..=86_400.0).contains(s));
                a.record_only_s = Some(s.ok_or_else(|| format!("{flag}: seconds, from 1 to 86400"))?);
            }
            "--order-seed" => {
                a.orders.seed = Some(value.parse().map_err(|_| format!("{flag}: `{value}` is not a 64-bit number"))?)
            }
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    let f = a.format;
    if a.chunk_ms == 0 {
        a.chunk_ms = 1000 / f.fps.max(1); // one frame per chunk
    }
    if f.width < 96 || f.height < 48 || !f.width.is_multiple_of(2) || !f.height.is_multiple_of(2) {
        return Err("--width/--height must be even and at least 96x48".into());
    }
    if !(1..=120).contains(&f.fps) || a.part_ms < 20 || a.gop_ms < a.part_ms {
        return Err("need 1 <= fps <= 120, part-ms >= 20 and gop-ms >= part-ms".into());
    }
    // The lower renditions are named after their bitrate.
    let lower = a.video_kbps.get(1..).unwrap_or_default();
    if a.video_kbps.contains(&0) || lower.iter().enumerate().any(|(i, k)| lower[..i].contains(k)) {
        return Err("--video-kbps needs non-zero bitrates, the lower ones all different".into());
    }
    Ok(a)
}

#[tokio::main]
async fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(msg) => {
            if !msg.is_empty() {
                eprintln!("origin: {msg}");
            }
            eprintln!("usage: origin --listen ADDR [--width W --height H --fps N --part-ms MS --chunk-ms MS --gop-ms MS --video-kbps K[,K...] --name NAME --window-segments N --www DIR --pkg DIR --vendor DIR --traces DIR --ffmpeg PATH --no-audio --clock-offset-ms MS --admin-token TOKEN --target-latency-ms MS --script-cues SECONDS --token-secret SECRET --order-rate N --fair-window-ms MS --order-seed N --ledger PATH|:memory: --fault-drop-requests P --fault-drop-responses P --fault-delay-ms MS --fault-5xx P --record DIR --record-only SECONDS]");
            std::process::exit(if msg.is_empty() { 0 } else { 64 });
        }
    };
    if let Some(seconds) = args.record_only_s {
        match record_ahead(args, seconds).await {
            Ok(()) => return,
            Err(e) => {
                eprintln!("origin: {e}");
                std::process::exit(1);
            }
        }
    }
    let parts_per_segment = (args.gop_ms as f64 / args.part_ms as f64).round() as usize;
    let renditions = args
        .video_kbps
        .iter()
        .enumerate()
        .map(|(i, &kbps)| {
            // The top rendition keeps the show's own name, as before there was a ladder.
            let name = if i == 0 { args.name.clone() } else { format!("{}-{kbps}k", args.name) };
            Rendition::new(Stream::new(&name, args.part_ms as f64 / 1000.0, parts_per_segment, args.window))
        })
        .collect();
    let settings = Settings {
        clock: source::Clock { offset_ms: args.clock_offset_ms },
        target_latency_ms: args.target_latency_ms,
        orders: args.orders,
    };
    let live = Live::new(renditions, args.format, settings);
    if let Err(e) = live.orders.health() {
        eprintln!("origin: {e}");
        std::process::exit(1);
    }
    eprintln!("origin: order ledger at {}", live.orders.ledger_path());
    tokio::spawn(orders::settle_loop(live.orders.clone()));

    let library = match record::Library::open(&args.record) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("origin: cannot open the recordings directory {}: {e}", args.record.display());
            std::process::exit(1);
        }
    };
    let thumbnails = thumbs::Thumbs::start(args.ffmpeg.clone());
    // Shows recorded by earlier starts get the thumbnails they lack.
    for show in library.list() {
        thumbnails.wake(&show);
    }
    let recorder = match record::Recorder::start(library, live.clock, args.format, live.cues.clone(), thumbnails) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("origin: cannot start recording in {}: {e}", args.record.display());
            std::process::exit(1);
        }
    };
    eprintln!("origin: recording this show to {}", recorder.show.dir.display());
    let _ = live.recorder.set(recorder.clone());

    let listener = match tokio::net::TcpListener::bind(&args.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("origin: cannot listen on {}: {e}", args.listen);
            std::process::exit(1);
        }
    };
    let (stop_tx, stop_rx) = watch::channel(false);
    let config = EncoderConfig {
        ffmpeg: args.ffmpeg.clone(),
        format: args.format,
        part_ms: args.part_ms,
        chunk_ms: args.chunk_ms,
        gop_ms: args.gop_ms,
        video_kbps: args.video_kbps,
        audio: args.audio,
    };
    let encoder = tokio::spawn(encoder::supervise(live.clone(), config, stop_rx));
    if let Some(every) = args.script_cues_s {
        tokio::spawn(cues::script(live.cues.clone(), every));
    }

    let addr = listener.local_addr().map_or(args.listen.clone(), |a| a.to_string());
    println!("origin listening on http://{addr}");
    let _ = std::io::stdout().flush();

    let admin_token = match args.admin_token {
        Some(t) => t,
        None => {
            let t = random_token();
            eprintln!("origin: admin token (Authorization: Bearer ... on /admin/...): {t}");
            t
        }
    };
    let dirs = http::Dirs { www: args.www, pkg: args.pkg, vendor: args.vendor, traces: args.traces };
    let app = http::router(live, dirs, &admin_token);
    let serve = axum::serve(listener, app).with_graceful_shutdown(shutdown_signal());
    if let Err(e) = serve.await {
        eprintln!("origin: server error: {e}");
    }
    // Stop ffmpeg cleanly before exiting.
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), encoder).await;
    recorder.end();
}

/// `--record-only`: records `seconds` of show ahead of time into `--record`, then draws its
/// thumbnails; serves nothing.
async fn record_ahead(args: Args, seconds: f64) -> Result<(), String> {
    let began = std::time::Instant::now();
    let f = args.format;
    let parts_per_segment = (args.gop_ms as f64 / args.part_ms as f64).round() as usize;
    let top = args.video_kbps[0];
    let stream = Stream::new(&args.name, args.part_ms as f64 / 1000.0, parts_per_segment, args.window);
    let settings = Settings {
        clock: source::Clock { offset_ms: args.clock_offset_ms },
        target_latency_ms: args.target_latency_ms,
        // No one can order from a show nobody watches.
        orders: orders::OrderSettings { ledger: ledger::LedgerPath::Memory, ..Default::default() },
    };
    let live = Live::new(vec![Rendition::new(stream)], f, settings);
    let dir = args.record.display().to_string();
    let library = record::Library::open(&args.record).map_err(|e| format!("cannot open {dir}: {e}"))?;
    let recorder = record::Recorder::start(library, live.clock, f, live.cues.clone(), thumbs::Thumbs::none())
        .map_err(|e| format!("cannot start recording in {dir}: {e}"))?;
    let _ = live.recorder.set(recorder.clone());
    let start_ms = recorder.show.with(|m| m.created_at_ms);
    // Whole groups of pictures, and the keyframe after the last: it completes the last segment.
    let gop = (u64::from(args.gop_ms) * u64::from(f.fps) / 1000).max(1);
    let frames = (seconds * f64::from(f.fps) / gop as f64).ceil() as u64 * gop + 1;
    let mut script = args.script_cues_s.map(|every| cues::AheadScript::new(live.cues.clone(), every, start_ms, f.fps));
    let before_frame = Box::new(move |capture_ms: f64| {
        if let Some(s) = &mut script {
            s.before_frame(capture_ms);
        }
    });
    let config = EncoderConfig {
        ffmpeg: args.ffmpeg.clone(),
        format: f,
        part_ms: args.part_ms,
        chunk_ms: args.chunk_ms,
        gop_ms: args.gop_ms,
        video_kbps: vec![top],
        audio: args.audio,
    };
    let pace = source::Pace::Ahead { start_ms, frames, before_frame };
    encoder::encode_ahead(live.clone(), config, pace).await?;
    let show = recorder.show.clone();
    let end_ms = show.with(|m| m.started_at_ms() + m.duration_s() * 1000.0).round();
    recorder.end_at(end_ms, std::time::Duration::from_secs(120));
    let encoded_s = began.elapsed().as_secs_f64();
    let ffmpeg = args.ffmpeg.clone();
    let thumbs = {
        let show = show.clone();
        tokio::task::spawn_blocking(move || thumbs::catch_up(&show, &ffmpeg)).await
    };
    match thumbs {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(format!("thumbnails of {}: {e}", show.id)),
        Err(e) => return Err(format!("thumbnails of {}: {e}", show.id)),
    }
    let (duration_s, segments, tiles) = show.with(|m| (m.duration_s(), m.segments.len(), m.thumbs.tiles));
    let nodes = show.with(|m| vod::nodes(m).len());
    eprintln!(
        "origin: recorded {} ahead of time: {duration_s:.1} s in {segments} segments, {nodes} nodes, {tiles} \
         thumbnails; encoded in {encoded_s:.1} s, {:.1} s in all",
        show.dir.display(),
        began.elapsed().as_secs_f64()
    );
    println!("{}", show.id);
    Ok(())
}

/// 128 random bits, in hex.
fn random_token() -> String {
    use std::io::Read;
    let mut bytes = [0u8; 16];
    if let Err(e) = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes)) {
        eprintln!("origin: cannot read /dev/urandom for an admin token ({e}); pass --admin-token");
        std::process::exit(1);
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
