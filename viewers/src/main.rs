//! `viewers`: N native viewers of one live show, each the real liveshop live engine (the
//! sans-IO core the browser runs) over real HTTP with a simulated media element, all on one
//! tokio runtime, so a thousand fit on a small machine. Built for the `scale` benchmark
//! (`bench/scale.mjs`), which puts an edge cache between them and the origin.
//!
//! ```text
//! viewers --src http://127.0.0.1:8080/live/show.m3u8 --viewers 1000 --seconds 60
//!         [--ramp-s 10] [--settle-s 10] [--origin-stats http://127.0.0.1:8081/stats]
//!         [--watch edge=PID ...] [--threads 1]
//! ```
//!
//! The viewers join evenly over `--ramp-s` (a crowd arriving, not one instant), play
//! `--settle-s` more, then are measured for `--seconds`. It prints one JSON object (see
//! [`summary`]): per-viewer latency (server-clock now minus the capture time of the frame
//! shown, 5 samples a second), the p50/p95 over viewers of their medians, stalls, requests
//! and bytes per viewer, the origin's requests and bytes per second over the window (read from
//! its `/stats` at both ends), the CPU share of each watched process (and its children), and
//! the harness's own lag (how late viewers woke up): if that grows, the machine did not keep
//! up with real time and the figures say so.

mod clock;
mod element;
mod viewer;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};

use clock::Clock;
use viewer::{HttpClient, Record, Totals, Viewer};

struct Args {
    src: String,
    viewers: usize,
    seconds: f64,
    ramp_s: f64,
    settle_s: f64,
    origin_stats: Option<String>,
    watch: Vec<(String, u32)>,
    threads: usize,
}

const USAGE: &str = "usage: viewers --src URL [--viewers N] [--seconds S] [--ramp-s S] [--settle-s S] [--origin-stats URL] [--watch NAME=PID]... [--threads N]";

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        src: String::new(),
        viewers: 1,
        seconds: 60.0,
        ramp_s: 10.0,
        settle_s: 10.0,
        origin_stats: None,
        watch: Vec::new(),
        threads: 1,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        let number = |v: &str| v.parse::<f64>().map_err(|_| format!("{flag}: not a number: {v}"));
        match flag.as_str() {
            "--src" => a.src = value,
            "--viewers" => a.viewers = number(&value)? as usize,
            "--seconds" => a.seconds = number(&value)?,
            "--ramp-s" => a.ramp_s = number(&value)?,
            "--settle-s" => a.settle_s = number(&value)?,
            "--origin-stats" => a.origin_stats = Some(value),
            "--threads" => a.threads = (number(&value)? as usize).max(1),
            "--watch" => {
                let (name, pid) = value.split_once('=').ok_or("--watch takes NAME=PID")?;
                a.watch.push((name.to_string(), pid.parse().map_err(|_| format!("--watch: not a pid: {pid}"))?));
            }
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    if a.src.is_empty() || a.viewers == 0 || a.seconds <= 0.0 {
        return Err("--src is required; --viewers and --seconds must be positive".into());
    }
    Ok(a)
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("viewers: {e}\n{USAGE}");
            std::process::exit(2);
        }
    };
    // One runtime for every viewer and request; by default one thread, leaving the other core
    // to the edge, the origin and its encoder.
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(args.threads).enable_all().build();
    let runtime = match runtime {
        Ok(r) => r,
        Err(e) => {
            eprintln!("viewers: cannot start the runtime: {e}");
            std::process::exit(1);
        }
    };
    match runtime.block_on(run(args)) {
        Ok(summary) => println!("{summary}"),
        Err(e) => {
            eprintln!("viewers: {e}");
            std::process::exit(1);
        }
    }
}

/// CPU seconds (user + system) of `pid` and its direct children, from /proc.
fn cpu_seconds(pid: u32) -> f64 {
    // USER_HZ on Linux.
    const TICKS_PER_S: f64 = 100.0;
    let stat = |p: &str| -> Option<(u32, f64)> {
        let s = std::fs::read_to_string(format!("/proc/{p}/stat")).ok()?;
        let f: Vec<&str> = s[s.rfind(')')? + 2..].split(' ').collect();
        let ticks = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
        Some((f.get(1)?.parse().ok()?, ticks / TICKS_PER_S))
    };
    let mut total = stat(&pid.to_string()).map_or(0.0, |s| s.1);
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.flatten() {
            let name = e.file_name();
            let name = name.to_string_lossy();
            if name.bytes().all(|b| b.is_ascii_digit()) {
                if let Some((ppid, cpu)) = stat(&name) {
                    if ppid == pid {
                        total += cpu;
                    }
                }
            }
        }
    }
    total
}

async fn get_json(client: &HttpClient, url: &str) -> Result<Value, String> {
    let req = hyper::Request::get(url).body(Empty::<Bytes>::new()).map_err(|e| e.to_string())?;
    let res = client.request(req).await.map_err(|e| format!("{url}: {e}"))?;
    let body = res.into_body().collect().await.map_err(|e| format!("{url}: {e}"))?.to_bytes();
    serde_json::from_slice(&body).map_err(|e| format!("{url}: {e}"))
}

/// What is read at both ends of the window.
struct Reading {
    wall_ms: f64,
    origin: Option<Value>,
    cpu: Vec<f64>,
    own_cpu: f64,
    requests: u64,
    bytes: u64,
}

async fn read(args: &Args, client: &HttpClient, clock: &Clock, totals: &Totals) -> Result<Reading, String> {
    let origin = match &args.origin_stats {
        Some(url) => Some(get_json(client, url).await?),
        None => None,
    };
    Ok(Reading {
        wall_ms: clock.wall_ms(),
        origin,
        cpu: args.watch.iter().map(|(_, pid)| cpu_seconds(*pid)).collect(),
        own_cpu: cpu_seconds(std::process::id()),
        requests: totals.requests.load(Ordering::Relaxed),
        bytes: totals.bytes.load(Ordering::Relaxed),
    })
}

async fn run(args: Args) -> Result<Value, String> {
    let clock = Arc::new(Clock::new());
    let totals = Arc::new(Totals::default());
    // One connection pool for all: a viewer's requests reuse whichever idle connection there
    // is, as a browser's do (per viewer, two to three are in flight at the live edge).
    let client: HttpClient = Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(4))
        .pool_max_idle_per_host(args.viewers * 4)
        .build_http();
    let t0 = clock.wall_ms();
    let window_start = t0 + (args.ramp_s + args.settle_s) * 1000.0;
    let window_end = window_start + args.seconds * 1000.0;
    let mut handles = Vec::with_capacity(args.viewers);
    eprintln!(
        "viewers: {} joining over {} s, measured for {} s after {} s more",
        args.viewers, args.ramp_s, args.seconds, args.settle_s
    );
    for i in 0..args.viewers {
        let join_at = t0 + args.ramp_s * 1000.0 * i as f64 / args.viewers as f64;
        let wait = join_at - clock.wall_ms();
        if wait > 0.0 {
            tokio::time::sleep(Duration::from_secs_f64(wait / 1000.0)).await;
        }
        let v = Viewer::new(&args.src, client.clone(), clock.clone(), totals.clone()).map_err(|e| e.to_string())?;
        handles.push(tokio::spawn(v.run(window_end)));
    }
    tokio::time::sleep(Duration::from_secs_f64(((window_start - clock.wall_ms()) / 1000.0).max(0.0))).await;
    let start = read(&args, &client, &clock, &totals).await?;
    eprintln!("viewers: measuring");
    tokio::time::sleep(Duration::from_secs_f64(((window_end - clock.wall_ms()) / 1000.0).max(0.0))).await;
    let end = read(&args, &client, &clock, &totals).await?;
    let mut records = Vec::with_capacity(handles.len());
    for h in handles {
        records.push(h.await.map_err(|e| format!("a viewer failed: {e}"))?);
    }
    Ok(summary(&args, &records, &start, &end))
}

fn percentile(values: &[f64], q: f64) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some(v[((v.len() as f64 * q) as usize).min(v.len() - 1)])
}

fn round(x: Option<f64>) -> Value {
    x.map_or(Value::Null, |x| json!((x * 10.0).round() / 10.0))
}

/// The figures of one run (see the module doc).
fn summary(args: &Args, records: &[Record], start: &Reading, end: &Reading) -> Value {
    let (w0, w1) = (start.wall_ms, end.wall_ms);
    let secs = ((w1 - w0) / 1000.0).max(1e-3);
    let mut medians = Vec::new();
    let mut p95s = Vec::new();
    let mut all = Vec::new();
    let mut reported_gap = Vec::new();
    let (mut stall_ms, mut playing_ms, mut stall_count, mut never) = (0.0, 0.0, 0u64, 0usize);
    let mut wake_late: Vec<f64> = Vec::new();
    let mut errors: Vec<String> = Vec::new();
    let mut ttffs = Vec::new();
    for r in records {
        let lat: Vec<f64> = r.latency.iter().filter(|(t, _)| (w0..w1).contains(t)).map(|s| s.1).collect();
        for (s, rep) in r.latency.iter().zip(&r.reported).filter(|(s, _)| (w0..w1).contains(&s.0)) {
            reported_gap.push(rep - s.1);
        }
        all.extend_from_slice(&lat);
        match r.ttff_ms {
            Some(t) => ttffs.push(t),
            None => never += 1,
        }
        if let (Some(m), Some(p)) = (percentile(&lat, 0.5), percentile(&lat, 0.95)) {
            medians.push(m);
            p95s.push(p);
        }
        let first = r.ttff_ms.map(|t| r.join_wall_ms + t);
        let stalled: f64 = r.stalls.iter().map(|&(s, e)| (e.min(w1) - s.max(w0)).max(0.0)).sum();
        stall_count += r.stalls.iter().filter(|&&(s, e)| e > w0 && s < w1).count() as u64;
        if let Some(f) = first.filter(|f| *f < w1) {
            let shown_from = f.max(w0);
            stall_ms += stalled;
            playing_ms += (w1 - shown_from - stalled).max(0.0);
        }
        wake_late.extend(r.wake_late_ms.iter().map(|&x| f64::from(x)));
        for e in &r.errors {
            if errors.len() < 10 && !errors.contains(e) {
                errors.push(e.clone());
            }
        }
    }
    let n = records.len() as f64;
    let requests_by_kind: Vec<u64> = (0..5).map(|k| records.iter().map(|r| r.requests[k]).sum()).collect();
    let origin = match (&start.origin, &end.origin) {
        (Some(a), Some(b)) => {
            let d = |k: &str| b[k].as_f64().unwrap_or(0.0) - a[k].as_f64().unwrap_or(0.0);
            let ms = b["now_ms"].as_f64().unwrap_or(w1) - a["now_ms"].as_f64().unwrap_or(w0);
            let kinds: serde_json::Map<String, Value> = b["kinds"]
                .as_object()
                .map(|m| {
                    m.keys()
                        .map(|k| {
                            let v = b["kinds"][k].as_f64().unwrap_or(0.0) - a["kinds"][k].as_f64().unwrap_or(0.0);
                            (k.clone(), round(Some(v * 1000.0 / ms.max(1.0))))
                        })
                        .collect()
                })
                .unwrap_or_default();
            json!({ "rps": round(Some(d("requests") * 1000.0 / ms.max(1.0))),
                    "bytes_per_s": (d("bytes") * 1000.0 / ms.max(1.0)).round(),
                    "rps_by_kind": kinds })
        }
        _ => Value::Null,
    };
    let cpu: serde_json::Map<String, Value> = args
        .watch
        .iter()
        .enumerate()
        .map(|(i, (name, _))| (name.clone(), round(Some((end.cpu[i] - start.cpu[i]) / secs * 100.0))))
        .collect();
    json!({
        "viewers": records.len(),
        "seconds": round(Some(secs)),
        "src": args.src,
        "latency_ms": { "p50": round(percentile(&medians, 0.5)), "p95": round(percentile(&medians, 0.95)),
                        "viewer_p95_p50": round(percentile(&p95s, 0.5)), "all_samples_p95": round(percentile(&all, 0.95)),
                        "samples": all.len() },
        "engine_latency_minus_true_ms": { "p50": round(percentile(&reported_gap, 0.5)), "p95": round(percentile(&reported_gap, 0.95)) },
        "stall_ratio": (stall_ms / (stall_ms + playing_ms).max(1.0) * 1e5).round() / 1e5,
        "stall_count": stall_count,
        "stall_ms": stall_ms.round(),
        "viewers_stalled_or_never_playing": never,
        "ttff_ms": { "p50": round(percentile(&ttffs, 0.5)), "p95": round(percentile(&ttffs, 0.95)) },
        "viewer_requests_per_s": round(Some((end.requests - start.requests) as f64 / secs)),
        "viewer_bytes_per_s": ((end.bytes - start.bytes) as f64 / secs).round(),
        "requests_per_viewer_by_kind": { "playlist": requests_by_kind[0] as f64 / n, "media": requests_by_kind[1] as f64 / n,
            "init": requests_by_kind[2] as f64 / n, "clock": requests_by_kind[3] as f64 / n, "other": requests_by_kind[4] as f64 / n },
        "origin": origin,
        "cpu_pct": cpu,
        "harness_cpu_pct": round(Some((end.own_cpu - start.own_cpu) / secs * 100.0)),
        "harness_wake_late_ms": { "p50": round(percentile(&wake_late, 0.5)), "p99": round(percentile(&wake_late, 0.99)),
                                  "max": round(percentile(&wake_late, 1.0)) },
        "errors": errors,
    })
}
