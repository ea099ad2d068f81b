//! The live engine against a simulated LL-HLS origin and network, seeded and faster than real
//! time. Bounds are set to catch regressions, with room for honest noise.

mod sim;

use liveshop::core::LiveConfig;
use sim::{Network, Origin};

fn config() -> LiveConfig {
    LiveConfig::new("http://origin.test/live/show.m3u8")
}

fn summary(name: &str, r: &sim::Report) {
    println!(
        "{name}: ttff {:?} ms, latency p50 {:.0} p95 {:.0} ms, target {:.0} ms, stalls {} ({:.0} ms, ratio {:.4}), rate changes {}, seeks {}, errors {:?}",
        r.ttff_ms, r.quantile(0.5), r.quantile(0.95), r.final_target_ms, r.stall_count, r.stall_ms, r.stall_ratio(), r.rate_changes, r.seeks, r.errors
    );
}

#[test]
fn clean_network_joins_fast_and_holds_low_latency() {
    let origin = Origin::default();
    let r = sim::run(&origin, &mut Network::new(5.0, 0.0, 1), config(), 10_000.0, 60_000.0);
    summary("clean", &r);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert!(r.ttff_ms.unwrap() < 500.0);
    assert_eq!(r.stall_count, 0);
    // Whole 200 ms parts: the lag is a part plus encode; the rest is the pipeline margin.
    assert!(r.quantile(0.5) < 800.0, "p50 {}", r.quantile(0.5));
    assert!(r.quantile(0.5) < r.final_target_ms + 80.0, "p50 {} vs target {}", r.quantile(0.5), r.final_target_ms);
    assert!(r.quantile(0.95) < r.final_target_ms + 150.0, "p95 {}", r.quantile(0.95));
    assert!(r.rate_changes <= 20, "rate changed {} times a minute", r.rate_changes);
}

#[test]
fn reported_latency_matches_the_truth() {
    let origin = Origin::default();
    let r = sim::run(&origin, &mut Network::new(20.0, 10.0, 7), config(), 3_000.0, 20_000.0);
    assert!(!r.reported.is_empty());
    // Samples are taken in the same instants; the engine's figure is at most a tick stale.
    let n = r.reported.len().min(r.latencies.len());
    let off = r.latencies[r.latencies.len() - n..]
        .iter()
        .zip(&r.reported[r.reported.len() - n..])
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(off < 120.0, "reported latency off by up to {off} ms");
}

#[test]
fn jitter_raises_the_target_and_avoids_stalls() {
    let origin = Origin::default();
    let r = sim::run(&origin, &mut Network::new(40.0, 80.0, 42), config(), 10_000.0, 60_000.0);
    summary("jitter", &r);
    assert!(r.stall_ratio() < 0.01, "stall ratio {}", r.stall_ratio());
    assert!(r.quantile(0.5) < 1000.0, "p50 {}", r.quantile(0.5));
}

#[test]
fn fixed_target_is_held() {
    let origin = Origin::default();
    let mut c = config();
    c.target_latency_ms = Some(1500.0);
    let r = sim::run(&origin, &mut Network::new(10.0, 5.0, 3), c, 10_000.0, 40_000.0);
    summary("fixed 1500", &r);
    let p50 = r.quantile(0.5);
    assert!((1400.0..1600.0).contains(&p50), "p50 {p50}");
}

#[test]
fn an_outage_is_ridden_out_and_latency_recovers() {
    let origin = Origin::default();
    let mut net = Network::new(20.0, 10.0, 9);
    net.outages.push((30_000.0, 33_000.0));
    let r = sim::run(&origin, &mut net, config(), 10_000.0, 60_000.0);
    summary("outage", &r);
    assert!(r.stall_count >= 1, "a 3 s outage must stall");
    // The last 15 s are back near the clean figure.
    let tail = &r.latencies[r.latencies.len() - 75..];
    let worst = tail.iter().cloned().fold(0.0, f64::max);
    assert!(worst < r.final_target_ms + 500.0, "still {worst} ms behind 27 s after the outage (target {})", r.final_target_ms);
}
