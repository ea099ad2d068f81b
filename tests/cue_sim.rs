//! Product cues through the live engine against the simulated origin and network: each source
//! alone and all together, across a stall, a jump to live and a frozen tab. What is checked is
//! what a viewer sees: the pop-up on the frame the host showed the link, once.

mod sim;

use liveshop::core::live::latency::SharedTarget;
use liveshop::core::LiveConfig;
use sim::{Network, Origin, SimCue};

/// A frame at 30 fps: a cue fired on its frame shows a capture instant at most this past its
/// start.
const FRAME_MS: f64 = 1000.0 / 30.0;

fn config() -> LiveConfig {
    let mut c = LiveConfig::new("http://origin.test/live/show.m3u8");
    c.cues_url = Some("http://origin.test/cues".into());
    c.link_allowlist = vec!["shop.example".into()];
    c
}

/// Cues every 4 s from 10 s, each announced 4 s ahead with a 3 s countdown.
fn cues(n: usize, each: impl Fn(SimCue) -> SimCue) -> Vec<SimCue> {
    (0..n).map(|i| each(SimCue::new(&format!("c{i}"), 10_000.0 + 4000.0 * i as f64, 3))).collect()
}

fn run(origin: &Origin, net: &mut Network, frozen: Option<(f64, f64)>) -> sim::Report {
    let r = sim::run_with_freeze(origin, net, config(), 2000.0, 40_000.0, frozen);
    println!("cues {:?}\ncountdowns {:?}\nends {:?}\nerrors {:?}", r.cues, r.countdowns, r.cue_ends, r.errors);
    r
}

/// Every cue popped up once, on its own frame (not late).
fn assert_on_frame(r: &sim::Report, origin: &Origin) {
    assert_eq!(r.cues.len(), origin.cues.len(), "{:?}", r.cues);
    for cue in &origin.cues {
        let shown: Vec<_> = r.cues.iter().filter(|c| c.1 == cue.id).collect();
        assert_eq!(shown.len(), 1, "{} shown {} times", cue.id, shown.len());
        let (_, _, on_screen, late) = shown[0];
        let off = on_screen - cue.start_ms;
        assert!(
            (0.0..FRAME_MS + 1.0).contains(&off),
            "{}: the frame on screen was captured {off} ms from the start",
            cue.id
        );
        assert_eq!(*late, 0.0, "{} late", cue.id);
    }
}

#[test]
fn in_band_cues_alone_pop_up_on_their_frame_once_with_a_countdown() {
    let origin =
        Origin { cues: cues(6, |c| SimCue { in_playlist: false, on_channel: false, ..c }), ..Origin::default() };
    let r = run(&origin, &mut Network::new(20.0, 10.0, 1), None);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_on_frame(&r, &origin);
    for cue in &origin.cues {
        let counts: Vec<u32> = r.countdowns.iter().filter(|c| c.1 == cue.id).map(|c| c.2).collect();
        assert_eq!(counts, [3, 2, 1], "{}", cue.id);
        for (_, _, n, on_screen) in r.countdowns.iter().filter(|c| c.1 == cue.id) {
            let due = cue.start_ms - f64::from(*n) * 1000.0;
            assert!((0.0..FRAME_MS + 1.0).contains(&(on_screen - due)), "{} {n}: {on_screen} vs {due}", cue.id);
        }
        assert_eq!(r.cue_ends.iter().filter(|e| e.1 == cue.id).count(), 1);
    }
}

#[test]
fn playlist_cues_alone_pop_up_on_their_frame_once() {
    let origin = Origin { cues: cues(6, |c| SimCue { in_band: false, on_channel: false, ..c }), ..Origin::default() };
    let r = run(&origin, &mut Network::new(20.0, 10.0, 2), None);
    assert_on_frame(&r, &origin);
}

#[test]
fn channel_cues_alone_pop_up_on_their_frame_once() {
    let origin = Origin { cues: cues(6, |c| SimCue { in_band: false, in_playlist: false, ..c }), ..Origin::default() };
    let r = run(&origin, &mut Network::new(20.0, 10.0, 3), None);
    assert_on_frame(&r, &origin);
}

#[test]
fn the_same_cues_from_all_three_sources_pop_up_once_each() {
    let origin = Origin { cues: cues(6, |c| c), ..Origin::default() };
    let r = run(&origin, &mut Network::new(20.0, 40.0, 4), None);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_on_frame(&r, &origin);
}

#[test]
fn a_cue_whose_frame_goes_by_in_an_outage_pops_up_once_late_or_on_its_frame() {
    // The link of c1 (14 s) goes up in the middle of a 3 s outage.
    let origin = Origin { cues: cues(4, |c| c), ..Origin::default() };
    let mut net = Network::new(20.0, 10.0, 5);
    net.outages.push((13_000.0, 16_000.0));
    let r = run(&origin, &mut net, None);
    for cue in &origin.cues {
        assert_eq!(r.cues.iter().filter(|c| c.1 == cue.id).count(), 1, "{}", cue.id);
    }
    let (_, _, on_screen, late) = r.cues.iter().find(|c| c.1 == "c1").unwrap();
    // Either the stall held the frame and it showed when playback went on, or the player jumped
    // past it and said how late.
    let off = on_screen - 14_000.0;
    assert!(off < FRAME_MS + 1.0 || (*late > 0.0 && (late - off).abs() < 1.0), "off {off}, late {late}");
}

#[test]
fn cues_that_go_by_while_the_tab_is_frozen_are_late_or_missed_never_twice() {
    // Frozen from 13 s to 25 s: c1 (14 s) and c2 (18 s) span 5 s each, so c1 is over and c2
    // nearly so when the page runs again; c3 (22 s) is mid-span.
    let origin = Origin { cues: cues(6, |c| c), ..Origin::default() };
    let r = run(&origin, &mut Network::new(20.0, 10.0, 6), Some((13_000.0, 25_000.0)));
    for cue in &origin.cues {
        let shown = r.cues.iter().filter(|c| c.1 == cue.id).count();
        let missed = r.errors.iter().filter(|e| e.contains(&format!("\"{}\"", cue.id))).count();
        assert_eq!(shown + missed, 1, "{}: shown {shown}, missed {missed}", cue.id);
    }
    assert!(r.cues.iter().filter(|c| c.3 > 0.0).count() + r.errors.len() >= 1, "nothing was late or missed");
}

/// The frame on screen's latency at simulated time `t`: the sample taken then.
fn latency_at(r: &sim::Report, join_ms: f64, t: f64) -> f64 {
    // Samples every 200 ms from the first frame.
    let first = join_ms + r.ttff_ms.unwrap_or(0.0);
    r.latencies[(((t - first) / 200.0).max(0.0) as usize).min(r.latencies.len() - 1)]
}

#[test]
fn a_sale_with_a_shared_target_has_every_viewer_on_it_before_the_countdown_ends() {
    // Announced at 18 s with a 3 s countdown and a 1500 ms shared target; the link is up at 22 s.
    let sale = SimCue { target_latency_ms: Some(1500.0), ..SimCue::new("sale", 22_000.0, 3) };
    let origin = Origin { cues: vec![sale], ..Origin::default() };
    for seed in 0..4 {
        let r = run(&origin, &mut Network::new(20.0, 10.0, 10 + seed), None);
        assert_eq!(r.shared.first().map(|s| s.1), Some(SharedTarget::Held), "{:?}", r.shared);
        // Before the first "3" is on screen the viewer is on 1500 ms within a frame or two, and
        // stays there through the pop-up.
        let three = r.countdowns.iter().find(|c| c.2 == 3).expect("a countdown").0;
        let shown = r.cues[0].0;
        for t in [three, shown, shown + 3000.0] {
            let l = latency_at(&r, 2000.0, t);
            assert!((l - 1500.0).abs() <= 70.0, "seed {seed}: latency {l} ms at {t} ms");
        }
    }
}

#[test]
fn a_shared_target_the_network_cannot_hold_is_said_and_the_viewer_keeps_its_own() {
    // 150 ms shared, on a jittery link that needs about 500 ms.
    let sale = SimCue { target_latency_ms: Some(150.0), ..SimCue::new("sale", 22_000.0, 3) };
    let origin = Origin { cues: vec![sale], ..Origin::default() };
    let r = run(&origin, &mut Network::new(40.0, 80.0, 20), None);
    assert_eq!(r.shared.last().map(|s| s.1), Some(SharedTarget::Unreachable), "{:?}", r.shared);
    let target = *r.targets.last().unwrap();
    assert!(target > 300.0, "target {target}");
    assert_eq!(r.stall_count, 0, "it tried to hold what it could not");
}

#[test]
fn cues_on_both_sides_of_an_encoder_restart_pop_up_once_on_their_frame() {
    // The encoder restarts at segment 14 (14 s of capture): decode times start again from 0.
    let origin = Origin { cues: cues(6, |c| c), restart_at_segment: Some(14), ..Origin::default() };
    let r = run(&origin, &mut Network::new(20.0, 10.0, 30), None);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_on_frame(&r, &origin);
}

#[test]
fn a_tap_is_refused_before_the_pop_up_and_goes_out_once_written_down_and_locked_after_it() {
    use liveshop::core::live::Purchase;
    use liveshop::core::orders::{OrderError, OrderStatus};

    let origin = Origin { cues: cues(1, |c| c), ..Origin::default() };
    let mut c = config();
    c.orders_url = Some("http://shop.test/api".into());
    let tap = |key: &str| Purchase { cue_id: "c0".into(), quantity: 1, user_token: "tok".into(), key: key.into() };
    let (mut early, mut after, mut unknown) = (None, None, None);
    let mut script = |engine: &mut liveshop::core::LiveEngine, t: f64, _: &mut sim::Report| {
        let now = liveshop::core::Instant::new(sim::EPOCH_MS + t);
        let shown = engine.cues().iter().any(|e| e.cue.id == "c0" && e.shown_at.is_some());
        if early.is_none() && engine.cues().iter().any(|e| e.cue.id == "c0") && !shown {
            early = Some(engine.buy(now, tap("k-early")));
        }
        if shown && after.is_none() {
            after = Some((t, engine.buy(now, tap("k-1")), engine.buy(now, tap("k-2"))));
            unknown = Some(engine.buy(now, Purchase { cue_id: "nope".into(), ..tap("k-3") }));
        }
    };
    let r = sim::run_scripted(&origin, &mut Network::new(20.0, 10.0, 1), c, 2000.0, 20_000.0, None, &mut script);

    assert_eq!(early, Some(Err(OrderError::NotShown("c0".into()))), "a tap before the pop-up");
    assert_eq!(unknown, Some(Err(OrderError::UnknownCue("nope".into()))));
    let (tapped_at, first, second) = after.expect("the cue popped up");
    let first = first.expect("taken");
    assert_eq!(second, Ok(first), "a second tap joins the open order");
    // Orders a previous page left are asked for at the start; a tap is written down and
    // locked, then announced to the other tabs and sent: one POST with the first tap's key.
    let ops: Vec<&str> = r.storage_and_tabs.iter().map(|(_, op)| op.split_whitespace().next().unwrap_or("")).collect();
    assert_eq!(ops, ["List", "Put", "Acquire", "Broadcast"], "{:?}", r.storage_and_tabs);
    // This origin never answers: after the answer timeout the client asks by key, never POSTs twice.
    let posts = r.api_requests.iter().filter(|(_, q)| q.method == liveshop::core::io::Method::Post).count();
    assert_eq!(posts, 1, "{:?}", r.api_requests);
    let (_, post) = &r.api_requests[0];
    assert!(post.headers.iter().any(|(k, v)| k == "Idempotency-Key" && v == "k-1"), "{:?}", post.headers);
    let body = String::from_utf8(post.body.clone().unwrap_or_default()).unwrap_or_default();
    assert!(body.contains("\"cueId\":\"c0\"") && body.contains("\"productId\":\"sku-c0\""), "{body}");
    // The pop-up's instant and the tap's are on the server's clock, the tap not before the pop-up.
    let field = |name: &str| -> f64 {
        let rest = &body[body.find(&format!("\"{name}\":")).expect(name) + name.len() + 3..];
        rest.split([',', '}']).next().and_then(|v| v.parse().ok()).expect(name)
    };
    let (shown, tapped) = (field("shownAtMs"), field("tappedAtMs"));
    assert!(shown <= tapped, "shown {shown} tapped {tapped}");
    assert!((tapped - (sim::EPOCH_MS + tapped_at)).abs() < 50.0, "the tap on the server's clock: {tapped}");
    assert!((300.0..3000.0).contains(&field("latencyMs")), "{body}");
    assert_eq!(r.orders.first().map(|(_, u)| u.result.status), Some(OrderStatus::Pending));
}
