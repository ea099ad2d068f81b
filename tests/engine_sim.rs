//! The live engine against a simulated LL-HLS origin and network, seeded and faster than real
//! time. Bounds are set to catch regressions, with room for honest noise.
//!
//! Each scenario runs [`RUNS`] times and every bound holds in every run: run `k` joins `k` ×
//! 125 ms later, eight phases over a segment against the origin's parts and a trace's packets,
//! and seeds the network's jitter with `k` added. The figures move with the phase; one run
//! says little about where they lie.

mod sim;

use liveshop::core::LiveConfig;
use sim::{Network, Origin};

const RUNS: u64 = 8;

/// When run `k` joins, given when the first run joins.
fn join_ms(first_ms: f64, k: u64) -> f64 {
    first_ms + k as f64 * 125.0
}

/// The index of the latency sample at `t_ms`: they are 200 ms apart from the first frame.
fn sample_at(r: &sim::Report, join_ms: f64, t_ms: f64) -> usize {
    ((t_ms - join_ms - r.ttff_ms.unwrap_or(0.0)) / 200.0) as usize
}

/// The latency model (src/core/latency.rs): the target is the 95th percentile of arrival lags,
/// read at the upper edge of its 10 ms histogram bucket, plus a 120 ms pipeline margin. Written
/// out here, not read from the engine, so that a change to the model fails the tests built on
/// it until they are brought into line.
fn model_target_ms(lag_p95_ms: f64) -> f64 {
    const BUCKET_MS: f64 = 10.0;
    const MARGIN_MS: f64 = 120.0;
    ((lag_p95_ms / BUCKET_MS).floor() + 1.0) * BUCKET_MS + MARGIN_MS
}

/// How long after its capture a part's first frame arrives on a steady link: the part, the
/// encoder's delay and the way from the origin.
fn part_lag_ms(origin: &Origin, one_way_ms: f64) -> f64 {
    origin.part_ms as f64 + origin.encode_ms + one_way_ms
}

/// Latency is read from the frame shown, so it moves in steps of a frame (33 ms at 30 fps):
/// how far the median may sit from the target, a frame and a little more.
const FRAME_SLACK_MS: f64 = 50.0;

/// How long after `from_ms` latency came within `level_ms` and stayed there for 5 s.
fn settled_after(r: &sim::Report, join_ms: f64, from_ms: f64, level_ms: f64) -> Option<f64> {
    let first = sample_at(r, join_ms, from_ms);
    (first..r.latencies.len().saturating_sub(25))
        .find(|&i| r.latencies[i..i + 25].iter().all(|&l| l <= level_ms))
        .map(|i| (i - first) as f64 * 200.0)
}

fn config() -> LiveConfig {
    LiveConfig::new("http://origin.test/live/show.m3u8")
}

fn summary(name: &str, r: &sim::Report) {
    println!(
        "{name}: ttff {:?} ms, latency p50 {:.0} p95 {:.0} ms, target {:.0} ms, converged after {:?} s, stalls {} ({:.0} ms, ratio {:.4}), rate changes {}, seeks {}, errors {:?}",
        r.ttff_ms, r.quantile(0.5), r.quantile(0.95), r.final_target_ms, r.convergence_s(), r.stall_count, r.stall_ms, r.stall_ratio(), r.rate_changes, r.seeks, r.errors
    );
}

/// What a trace run must keep to, in each of its runs: the worst the engine does over the runs
/// plus a stated tolerance (a later loosening says why in its commit). The traces pace packets
/// without randomness, so the spread over the runs is the spread over join phases.
struct Bounds {
    p50_ms: f64,
    p95_ms: f64,
    stall_ratio: f64,
    rate_changes: u32,
    converge_s: f64,
}

/// A real cellular trace (40 ms one way added) for `duration_ms`, in each of the runs,
/// checked against `bounds`. Returns each run's join time and report.
fn trace_run(file: &str, offset_ms: f64, duration_ms: f64, bounds: Bounds) -> Vec<(f64, sim::Report)> {
    let origin = Origin::default();
    (0..RUNS)
        .map(|k| {
            let join = join_ms(10_000.0, k);
            let mut net = Network::from_trace(file, 40.0, offset_ms);
            let r = sim::run(&origin, &mut net, config(), join, duration_ms);
            summary(&format!("{file} run {k}"), &r);
            let Bounds { p50_ms, p95_ms, stall_ratio, rate_changes, converge_s } = bounds;
            assert!(r.errors.is_empty(), "run {k}: {:?}", r.errors);
            assert!(r.quantile(0.5) <= p50_ms, "run {k}: p50 {} > {p50_ms}", r.quantile(0.5));
            assert!(r.quantile(0.95) <= p95_ms, "run {k}: p95 {} > {p95_ms}", r.quantile(0.95));
            assert!(r.stall_ratio() <= stall_ratio, "run {k}: stall ratio {} > {stall_ratio}", r.stall_ratio());
            assert!(r.rate_changes <= rate_changes, "run {k}: {} rate changes > {rate_changes}", r.rate_changes);
            let c = r.convergence_s().unwrap_or_else(|| panic!("run {k}: never converged"));
            assert!(c <= converge_s, "run {k}: converged after {c} s > {converge_s}");
            (join, r)
        })
        .collect()
}

#[test]
fn verizon_lte_trace() {
    // Over the runs: p50 717-900 ms, p95 1767-1792 ms, stall ratio 0.0195-0.0223, 40-62 rate
    // changes, converged after 1.6-2.0 s. Tolerance: +10 % on latency, +12 % on stalls, +15 %
    // on rate changes, +2 s on convergence.
    let bounds = Bounds { p50_ms: 1000.0, p95_ms: 2000.0, stall_ratio: 0.025, rate_changes: 72, converge_s: 4.0 };
    trace_run("Verizon-LTE-short.down", 0.0, 60_000.0, bounds);
}

#[test]
fn att_lte_driving_trace() {
    // Over the runs: p50 1817-2008 ms, p95 2100-2308 ms, stall ratio 0.0139-0.0173, 25-50 rate
    // changes, converged after 1.6-2.6 s. Tolerance: +10 % on latency, +15 % on stalls and
    // rate changes, +2 s on convergence.
    let bounds = Bounds { p50_ms: 2250.0, p95_ms: 2550.0, stall_ratio: 0.02, rate_changes: 58, converge_s: 5.0 };
    trace_run("ATT-LTE-driving-2016.down", 0.0, 60_000.0, bounds);
}

#[test]
fn tmobile_umts_trace_with_outages() {
    // 70 s in: bursts of 1-3 Mbit/s, then 124-140 s of the trace deliver almost nothing.
    // No single-bitrate player can play through that; what matters is coming back after it.
    // Over the runs: p50 2408-2492 ms, p95 13 925-14 100 ms (the outage's own backlog), stall
    // ratio 0.2174-0.2212 (the trace's gap is most of it), 51-74 rate changes (50-61 while the
    // simulation woke the engine only on its 100 ms tick; the browser driver has always woken
    // it at its deadlines too, and so does the simulation now), converged after 1.8-5.6 s.
    // Tolerance: +10 % on latency and stalls, +15 % on rate changes, +2 s on convergence. A
    // player slow to come back after it would take the p95 to 16 s and more.
    let bounds = Bounds { p50_ms: 2750.0, p95_ms: 15_500.0, stall_ratio: 0.245, rate_changes: 85, converge_s: 8.0 };
    for (k, (join, r)) in trace_run("TMobile-UMTS-driving.down", 70_000.0, 75_000.0, bounds).iter().enumerate() {
        // Capacity returns at 140 s of the trace (70 s of simulated time). 10 s later the target
        // is within the stall penalty's cap (1.5 s) of the target before the outage, as lags
        // beyond 3 s are outages, not the network's jitter, and latency is on the target. Over
        // the runs: the target 620-790 ms above the one before, latency 80-238 ms above the
        // target (bound 300). (At 75 s, where this was checked before, the target is still at its
        // 15 s ceiling, which any latency under 15 s passed; before aedc93d it was 3.7 s there.)
        let before = r.targets[sample_at(r, *join, 53_000.0)];
        let i = sample_at(r, *join, 80_000.0);
        let (l, t) = (r.latencies[i], r.targets[i]);
        assert!(t <= before + 1500.0, "run {k}: target {t} ms 10 s after the outage, {before} before it");
        assert!(l < t + 300.0, "run {k}: {l} ms latency 10 s after the outage, target {t}");
    }
}

#[test]
fn clean_network_joins_fast_and_holds_low_latency() {
    let origin = Origin::default();
    for k in 0..RUNS {
        let r = sim::run(&origin, &mut Network::new(5.0, 0.0, 1 + k), config(), join_ms(10_000.0, k), 60_000.0);
        summary(&format!("clean run {k}"), &r);
        assert!(r.errors.is_empty(), "run {k}: {:?}", r.errors);
        // The join waits up to 0.4 s for the media at its target point, so the first frame
        // comes a round trip, that wait, a 100 ms tick and the 80 ms seek (about 590 ms) after
        // the join at worst: 180-580 ms over the runs (500 held at the first run's phase only).
        assert!(r.ttff_ms.unwrap() < 650.0, "run {k}: first frame after {:?} ms", r.ttff_ms);
        assert_eq!(r.stall_count, 0, "run {k}");
        // Re-appending media makes Chromium drop to a few frames a second: fetch each part once.
        let twice: Vec<_> = r.media_requests.iter().filter(|(_, &n)| n > 1).collect();
        assert!(twice.is_empty(), "run {k}: fetched more than once: {twice:?}");
        // Parts are predicted, so the playlist is reloaded once a segment (60 a minute), not
        // once a part: 62-63 over the runs with the join's; +7.
        assert!(r.playlist_requests <= 70, "run {k}: {} playlist requests in a minute", r.playlist_requests);
        // Whole 200 ms parts: every lag is a part plus encode plus 5 ms, so the target is the
        // model's (390 ms in every run; one 10 ms bucket either way), and latency sits on it:
        // p50 350-417 ms, p95 383-417 ms over the runs.
        let model = model_target_ms(part_lag_ms(&origin, 5.0));
        let (p50, p95, target) = (r.quantile(0.5), r.quantile(0.95), r.final_target_ms);
        assert!((target - model).abs() <= 10.0, "run {k}: target {target} ms, the model's {model}");
        assert!((p50 - model).abs() <= FRAME_SLACK_MS, "run {k}: p50 {p50} vs the model's target {model}");
        assert!(p95 <= model + FRAME_SLACK_MS, "run {k}: p95 {p95} vs the model's target {model}");
        // 0-4 over the runs (the join's catch-up); +2.
        assert!(r.rate_changes <= 6, "run {k}: rate changed {} times a minute", r.rate_changes);
    }
}

#[test]
fn reported_latency_matches_the_truth() {
    let origin = Origin::default();
    for k in 0..RUNS {
        let r = sim::run(&origin, &mut Network::new(20.0, 10.0, 7 + k), config(), join_ms(3_000.0, k), 20_000.0);
        assert!(!r.reported.is_empty(), "run {k}");
        // Samples are taken in the same instants; the engine's figure is at most a tick stale,
        // and the truth steps by a frame (33 ms): off by 30-36 ms at most over the runs; +14.
        let n = r.reported.len().min(r.latencies.len());
        let off = r.latencies[r.latencies.len() - n..]
            .iter()
            .zip(&r.reported[r.reported.len() - n..])
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        println!("reported run {k}: off by up to {off:.0} ms");
        assert!(off < 50.0, "run {k}: reported latency off by up to {off} ms");
    }
}

#[test]
fn jitter_raises_the_target_and_avoids_stalls() {
    let origin = Origin::default();
    for k in 0..RUNS {
        let join = join_ms(10_000.0, k);
        // 40 ms one way plus 0-80 ms, uniform; and the same link without the jitter.
        let r = sim::run(&origin, &mut Network::new(40.0, 80.0, 42 + k), config(), join, 60_000.0);
        let steady = sim::run(&origin, &mut Network::new(40.0, 0.0, 42 + k), config(), join, 60_000.0);
        summary(&format!("jitter run {k}"), &r);
        summary(&format!("no jitter run {k}"), &steady);
        let (target, steady_target) = (r.final_target_ms, steady.final_target_ms);
        // Without jitter the target is the model's for a part's lag (430 ms in every run).
        let steady_model = model_target_ms(part_lag_ms(&origin, 40.0));
        assert!((steady_target - steady_model).abs() <= 10.0, "run {k}: target {steady_target}, model {steady_model}");
        // The jitter's 95th percentile, 76 ms, is added to the lags: the model's target is 500
        // ms. The engine's is 490-500 over the runs (its quantile weighs recent samples more);
        // two 10 ms buckets either way.
        let model = model_target_ms(part_lag_ms(&origin, 40.0) + 0.95 * 80.0);
        assert!((target - model).abs() <= 20.0, "run {k}: target {target} ms, the model's {model}");
        // It rose 60-70 ms above the jitter-free link's over the runs; at least 50.
        assert!(target >= steady_target + 50.0, "run {k}: target {target} ms with jitter, {steady_target} without");
        // p50 483-517 ms over the runs.
        let p50 = r.quantile(0.5);
        assert!((p50 - model).abs() <= FRAME_SLACK_MS, "run {k}: p50 {p50} vs the model's target {model}");
        // 0-2 short stalls, stall ratio 0-0.0007, over the runs; about 3 times that.
        assert!(r.stall_ratio() < 0.002, "run {k}: stall ratio {}", r.stall_ratio());
    }
}

/// A tab frozen from 25 s to 35 s (no timers, no playback, nothing delivered to the page), in
/// each run: how long after the thaw latency was back within 150 ms of the target it had before
/// the freeze, to stay.
fn frozen_tab_recoveries() -> Vec<f64> {
    let origin = Origin::default();
    (0..RUNS)
        .map(|k| {
            let join = join_ms(10_000.0, k);
            let freeze = Some((25_000.0, 35_000.0));
            let mut net = Network::new(20.0, 10.0, 5 + k);
            let r = sim::run_with_freeze(&origin, &mut net, config(), join, 40_000.0, freeze);
            summary(&format!("frozen tab run {k}"), &r);
            let frozen_lag = r.latencies[sample_at(&r, join, 34_800.0)];
            assert!(frozen_lag > 9000.0, "run {k}: the freeze did not put the player behind ({frozen_lag} ms)");
            let before = r.targets[sample_at(&r, join, 24_800.0)];
            let back = settled_after(&r, join, 35_000.0, before + 150.0).unwrap_or_else(|| {
                panic!("run {k}: never back within 150 ms of the {before} ms target after the thaw")
            });
            println!("frozen tab run {k}: back within 150 ms of the {before} ms target {back} ms after the thaw");
            back
        })
        .collect()
}

#[test]
fn back_at_the_earlier_target_within_two_and_a_half_seconds_of_a_frozen_tab() {
    // 800-2400 ms over the runs: a jump once the thaw's backlog is in, landing 250 ms before the
    // end of the buffer (so the browser need not wait for more media to resume), then the rest
    // by rate; +100 ms. Arrivals just after the thaw were queued while the tab slept: when they
    // were learnt as network lag, the target jumped to about 10 s and held there, and this took
    // 5-6 s.
    for (k, back) in frozen_tab_recoveries().into_iter().enumerate() {
        assert!(back <= 2500.0, "run {k}: back at the target only {back} ms after the tab came back");
    }
}

#[test]
fn fixed_target_is_held() {
    let origin = Origin::default();
    for k in 0..RUNS {
        let mut c = config();
        c.target_latency_ms = Some(1500.0);
        let r = sim::run(&origin, &mut Network::new(10.0, 5.0, 3 + k), c, join_ms(10_000.0, k), 40_000.0);
        summary(&format!("fixed 1500 run {k}"), &r);
        // 1508-1533 ms over the runs: on the target but for the frame steps.
        let p50 = r.quantile(0.5);
        assert!((p50 - 1500.0).abs() < FRAME_SLACK_MS, "run {k}: p50 {p50}");
    }
}

#[test]
fn an_outage_is_ridden_out_and_latency_recovers() {
    let origin = Origin::default();
    for k in 0..RUNS {
        let mut net = Network::new(20.0, 10.0, 9 + k);
        net.outages.push((30_000.0, 33_000.0));
        let r = sim::run(&origin, &mut net, config(), join_ms(10_000.0, k), 60_000.0);
        summary(&format!("outage run {k}"), &r);
        assert!(r.stall_count >= 1, "run {k}: a 3 s outage must stall");
        // The last 15 s are back near the target: 115-144 ms above it at worst over the runs;
        // +25 %.
        let tail = &r.latencies[r.latencies.len() - 75..];
        let worst = tail.iter().cloned().fold(0.0, f64::max);
        let target = r.final_target_ms;
        assert!(worst < target + 180.0, "run {k}: still {worst} ms behind 27 s after the outage (target {target})");
    }
}

fn abr_config() -> LiveConfig {
    LiveConfig::new("http://origin.test/live/show-abr.m3u8")
}

/// Checks that the first variant switch of `r` went down the origin's ladder, to the variant
/// whose BANDWIDTH is `bandwidth`, and that media came from that variant. The multivariant
/// playlist lists the ladder in order, so a switch's index is a rung of it.
fn first_switch_is_down_to(origin: &Origin, r: &sim::Report, k: u64, bandwidth: u64) -> f64 {
    let &(at, index) = r.switches.first().unwrap_or_else(|| panic!("run {k}: never switched down"));
    let (name, _, to) = origin.renditions[index];
    let top = origin.renditions[0].2;
    assert!(to < top, "run {k}: switched to {name} ({to} bit/s) from the top variant ({top} bit/s)");
    assert_eq!(to, bandwidth, "run {k}: switched to {name} ({to} bit/s), not to the {bandwidth} bit/s variant");
    let dir = format!("/live/{name}/");
    assert!(
        r.media_requests.keys().any(|u| u.contains(&dir)),
        "run {k}: switched to {name} but fetched none of its media"
    );
    at
}

#[test]
fn a_clean_link_stays_on_the_top_variant() {
    let origin = Origin::default();
    for k in 0..RUNS {
        let r = sim::run(&origin, &mut Network::new(5.0, 0.0, 1 + k), abr_config(), join_ms(10_000.0, k), 60_000.0);
        summary(&format!("clean, multivariant, run {k}"), &r);
        assert!(r.errors.is_empty(), "run {k}: {:?}", r.errors);
        assert!(r.switches.is_empty(), "run {k}: switched: {:?}", r.switches);
        assert!(r.media_requests.keys().all(|u| u.contains("/show/")), "run {k}: fetched another variant");
        assert_eq!(r.stall_count, 0, "run {k}");
    }
}

#[test]
fn a_link_below_the_top_bitrate_moves_down_and_stays_smooth() {
    // 450 kbit/s: the top variant (500 kbit/s of media) cannot keep up; the 200 kbit/s one can.
    let origin = Origin::default();
    // The variant to move to: the highest the link carries by the ladder's BANDWIDTH.
    let fits = origin.renditions.iter().map(|r| r.2).find(|&b| b <= 450_000).expect("a variant under 450 kbit/s");
    for k in 0..RUNS {
        let join = join_ms(10_000.0, k);
        let r = sim::run(&origin, &mut Network::capped(40.0, 450.0), abr_config(), join, 60_000.0);
        summary(&format!("450 kbit/s, multivariant, run {k}"), &r);
        println!("switches (ms, variant): {:?}", r.switches);
        assert!(r.errors.is_empty(), "run {k}: {:?}", r.errors);
        let down_at = first_switch_is_down_to(&origin, &r, k, fits) - join;
        // 3320-4300 ms after the join over the runs; +15 %.
        assert!(down_at < 5000.0, "run {k}: switched down only {down_at} ms after the join");
        // Probes up fail and back off: a handful of switches, not one every few seconds (5 in
        // every run; +1).
        assert!(r.switches.len() <= 6, "run {k}: {} switches: {:?}", r.switches.len(), r.switches);
        // Each part is fetched once, whichever variant it came from.
        let twice: Vec<_> = r.media_requests.iter().filter(|(_, &n)| n > 1).collect();
        assert!(twice.is_empty(), "run {k}: fetched more than once: {twice:?}");
        // Each probe up that fails costs a few short stalls: stall ratio 0.0133-0.0204 over the
        // runs, +15 %; p50 742-1050 ms, +10 %.
        assert!(r.stall_ratio() < 0.024, "run {k}: stall ratio {}", r.stall_ratio());
        assert!(r.quantile(0.5) < 1150.0, "run {k}: p50 {}", r.quantile(0.5));
    }
}

#[test]
fn att_lte_trace_with_a_lower_variant() {
    // The same minute as `att_lte_driving_trace`: the lower variant carries the slow stretches.
    let origin = Origin::default();
    let lowest = origin.renditions.iter().map(|r| r.2).min().expect("a ladder");
    for k in 0..RUNS {
        let mut net = Network::from_trace("ATT-LTE-driving-2016.down", 40.0, 0.0);
        let r = sim::run(&origin, &mut net, abr_config(), join_ms(10_000.0, k), 60_000.0);
        summary(&format!("ATT, multivariant, run {k}"), &r);
        println!("switches (ms, variant): {:?}", r.switches);
        assert!(r.errors.is_empty(), "run {k}: {:?}", r.errors);
        first_switch_is_down_to(&origin, &r, k, lowest);
        // Lower latency than on the single variant, which learns the overload's queueing as lag;
        // the stalls left are the trace's sub-second gaps without a packet. Over the runs: stall
        // ratio 0.0173-0.0179, +15 %; p50 1550-1575 ms, +10 %.
        assert!(r.stall_ratio() < 0.021, "run {k}: stall ratio {}", r.stall_ratio());
        assert!(r.quantile(0.5) < 1750.0, "run {k}: p50 {}", r.quantile(0.5));
    }
}
