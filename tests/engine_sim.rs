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
        "{name}: ttff {:?} ms, latency p50 {:.0} p95 {:.0} ms, target {:.0} ms, converged after {:?} s, stalls {} ({:.0} ms, ratio {:.4}), rate changes {}, seeks {}, errors {:?}",
        r.ttff_ms, r.quantile(0.5), r.quantile(0.95), r.final_target_ms, r.convergence_s(), r.stall_count, r.stall_ms, r.stall_ratio(), r.rate_changes, r.seeks, r.errors
    );
}

/// One minute on a real cellular trace (40 ms one way added), checked against bounds that
/// catch regressions: (p50, p95, stall ratio, rate changes a minute, convergence seconds).
fn trace_run(file: &str, offset_ms: f64, duration_ms: f64, bounds: (f64, f64, f64, u32, f64)) -> sim::Report {
    let origin = Origin::default();
    let mut net = Network::from_trace(file, 40.0, offset_ms);
    let r = sim::run(&origin, &mut net, config(), 10_000.0, duration_ms);
    summary(file, &r);
    let (p50, p95, stall_ratio, rate_changes, converge_s) = bounds;
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert!(r.quantile(0.5) <= p50, "p50 {} > {p50}", r.quantile(0.5));
    assert!(r.quantile(0.95) <= p95, "p95 {} > {p95}", r.quantile(0.95));
    assert!(r.stall_ratio() <= stall_ratio, "stall ratio {} > {stall_ratio}", r.stall_ratio());
    assert!(r.rate_changes <= rate_changes, "{} rate changes > {rate_changes}", r.rate_changes);
    let c = r.convergence_s().expect("never converged");
    assert!(c <= converge_s, "converged after {c} s > {converge_s}");
    r
}

#[test]
fn verizon_lte_trace() {
    trace_run("Verizon-LTE-short.down", 0.0, 60_000.0, (1300.0, 2500.0, 0.025, 60, 15.0));
}

#[test]
fn att_lte_driving_trace() {
    trace_run("ATT-LTE-driving-2016.down", 0.0, 60_000.0, (2300.0, 3000.0, 0.03, 60, 20.0));
}

#[test]
fn tmobile_umts_trace_with_outages() {
    // 70 s in: bursts of 1-3 Mbit/s, then 124-140 s of the trace deliver almost nothing.
    // No single-bitrate player can play through that; what matters is coming back after it.
    let r = trace_run("TMobile-UMTS-driving.down", 70_000.0, 75_000.0, (3300.0, 17_000.0, 0.30, 75, 20.0));
    // Capacity returns at 140 s of the trace (70 s of simulated time): 5 s later the player
    // must be back at its target. Samples are 200 ms apart from the first frame.
    let at = |t_ms: f64| ((t_ms - 10_000.0 - r.ttff_ms.unwrap_or(0.0)) / 200.0) as usize;
    let (l, t) = (r.latencies[at(75_000.0)], r.targets[at(75_000.0)]);
    assert!(l < t + 300.0, "{l} ms latency 5 s after the outage, target {t}");
}

#[test]
fn clean_network_joins_fast_and_holds_low_latency() {
    let origin = Origin::default();
    let r = sim::run(&origin, &mut Network::new(5.0, 0.0, 1), config(), 10_000.0, 60_000.0);
    summary("clean", &r);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert!(r.ttff_ms.unwrap() < 500.0);
    assert_eq!(r.stall_count, 0);
    // Re-appending media makes Chromium drop to a few frames a second: fetch each part once.
    let twice: Vec<_> = r.media_requests.iter().filter(|(_, &n)| n > 1).collect();
    assert!(twice.is_empty(), "fetched more than once: {twice:?}");
    // Parts are predicted, so the playlist is reloaded about once a segment, not once a part.
    assert!(r.playlist_requests <= 90, "{} playlist requests in a minute", r.playlist_requests);
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
    assert!(r.quantile(0.5) < 1200.0, "p50 {}", r.quantile(0.5));
}

#[test]
fn back_at_target_within_two_seconds_of_a_frozen_tab() {
    let origin = Origin::default();
    let r = sim::run_with_freeze(
        &origin,
        &mut Network::new(20.0, 10.0, 5),
        config(),
        10_000.0,
        40_000.0,
        Some((25_000.0, 35_000.0)),
    );
    summary("frozen tab", &r);
    // Samples are 200 ms apart from the first frame; 2 s after the thaw, latency is on target.
    let at = |t_ms: f64| ((t_ms - 10_000.0 - r.ttff_ms.unwrap_or(0.0)) / 200.0) as usize;
    let frozen_lag = r.latencies[at(34_800.0)];
    assert!(frozen_lag > 9000.0, "the freeze did not put the player behind ({frozen_lag} ms)");
    let (l, t) = (r.latencies[at(37_000.0)], r.targets[at(37_000.0)]);
    assert!(l < t + 150.0, "{l} ms latency 2 s after the tab came back, target {t}");
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
    assert!(
        worst < r.final_target_ms + 500.0,
        "still {worst} ms behind 27 s after the outage (target {})",
        r.final_target_ms
    );
}

fn abr_config() -> LiveConfig {
    LiveConfig::new("http://origin.test/live/show-abr.m3u8")
}

#[test]
fn a_clean_link_stays_on_the_top_variant() {
    let origin = Origin::default();
    let r = sim::run(&origin, &mut Network::new(5.0, 0.0, 1), abr_config(), 10_000.0, 60_000.0);
    summary("clean, multivariant", &r);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert!(r.switches.is_empty(), "switched: {:?}", r.switches);
    assert!(r.media_requests.keys().all(|u| u.contains("/show/")), "fetched another variant");
    assert_eq!(r.stall_count, 0);
}

#[test]
fn a_link_below_the_top_bitrate_moves_down_and_stays_smooth() {
    // 450 kbit/s: the top variant (500 kbit/s of media) cannot keep up; the 200 kbit/s one can.
    let origin = Origin::default();
    let r = sim::run(&origin, &mut Network::capped(40.0, 450.0), abr_config(), 10_000.0, 60_000.0);
    summary("450 kbit/s, multivariant", &r);
    println!("switches (ms, variant): {:?}", r.switches);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    let first_down = r.switches.first().expect("never switched down");
    assert_eq!(first_down.1, 1);
    assert!(first_down.0 < 10_000.0 + 6000.0, "switched down only at {} ms", first_down.0);
    // Probes up fail and back off: a handful of switches, not one every few seconds.
    assert!(r.switches.len() <= 7, "{} switches: {:?}", r.switches.len(), r.switches);
    // Each part is fetched once, whichever variant it came from.
    let twice: Vec<_> = r.media_requests.iter().filter(|(_, &n)| n > 1).collect();
    assert!(twice.is_empty(), "fetched more than once: {twice:?}");
    // Each probe up that fails costs a few short stalls.
    assert!(r.stall_ratio() < 0.03, "stall ratio {}", r.stall_ratio());
    assert!(r.quantile(0.5) < 1200.0, "p50 {}", r.quantile(0.5));
}

#[test]
fn att_lte_trace_with_a_lower_variant() {
    // The same minute as `att_lte_driving_trace`: the lower variant carries the slow stretches.
    let origin = Origin::default();
    let mut net = Network::from_trace("ATT-LTE-driving-2016.down", 40.0, 0.0);
    let r = sim::run(&origin, &mut net, abr_config(), 10_000.0, 60_000.0);
    summary("ATT, multivariant", &r);
    println!("switches (ms, variant): {:?}", r.switches);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert!(!r.switches.is_empty());
    // Lower latency than on the single variant, which learns the overload's queueing as lag;
    // the stalls left are the trace's sub-second gaps without a packet.
    assert!(r.stall_ratio() < 0.03, "stall ratio {}", r.stall_ratio());
    assert!(r.quantile(0.5) < 1800.0, "p50 {}", r.quantile(0.5));
}
