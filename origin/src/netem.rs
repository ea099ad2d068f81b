//! Network emulator: everything under `/net/<profile>/<client>/…` is the origin's own
//! response, delayed and paced as if it crossed the named network. Each `(profile, client)`
//! pair is one link with its own queue, so players compared side by side each get the same
//! network rather than sharing one.
//!
//! Profiles: `jitter` (40 ms one way plus 0–80 ms per packet, order kept), `loss` (40 ms, 2 %
//! of packets retransmitted a round trip later), `outage` (40 ms, 3 s without delivery every
//! 30 s), `cap<N>k` or `cap<N>m` (40 ms, N kbit/s or Mbit/s: `cap600k`, `cap2m`), and one per trace file in `--traces` (40 ms plus the
//! trace's delivery opportunities: one 1500-byte packet per line, repeating).

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use bytes::BytesMut;
use futures_util::StreamExt;
use tokio::sync::Notify;
use tokio::time::Instant;
use tower::ServiceExt;

const PACKET: usize = 1500;

#[derive(Debug, Clone, Default)]
pub struct Profile {
    pub one_way_ms: f64,
    pub jitter_ms: f64,
    pub loss: f64,
    pub kbps: Option<f64>,
    /// Delivery opportunities (ms from the trace start), one packet each.
    pub trace: Option<Arc<Vec<u32>>>,
    /// (period, length) in ms: no delivery for `length` at the start of each `period`, after
    /// the first period.
    pub outage: Option<(f64, f64)>,
}

impl Profile {
    pub fn named(name: &str, traces: &std::path::Path) -> Option<Profile> {
        let base = Profile { one_way_ms: 40.0, ..Default::default() };
        Some(match name {
            "clean" => Profile::default(),
            "jitter" => Profile { jitter_ms: 80.0, ..base },
            "loss" => Profile { loss: 0.02, ..base },
            "outage" => Profile { outage: Some((30_000.0, 3000.0)), ..base },
            cap if cap_kbps(cap).is_some() => Profile { kbps: cap_kbps(cap), ..base },
            trace if !trace.contains('/') && !trace.starts_with('.') => {
                Profile { trace: Some(Arc::new(load_trace(&traces.join(trace))?)), ..base }
            }
            _ => return None,
        })
    }
}

/// `cap600k` → 600, `cap2m` → 2000.
fn cap_kbps(name: &str) -> Option<f64> {
    let n = name.strip_prefix("cap")?;
    let (digits, scale) = match n.strip_suffix('k') {
        Some(d) => (d, 1.0),
        None => (n.strip_suffix('m')?, 1000.0),
    };
    digits.parse::<u32>().ok().filter(|&v| v > 0).map(|v| v as f64 * scale)
}

/// A Mahimahi-style trace: one integer per line, ms from the start.
pub fn load_trace(path: &std::path::Path) -> Option<Vec<u32>> {
    let text = std::fs::read_to_string(path).ok()?;
    let v: Vec<u32> = text.lines().filter_map(|l| l.trim().parse().ok()).collect();
    (!v.is_empty()).then_some(v)
}

/// One emulated link's queue state. Times are ms since the link was created.
#[derive(Debug)]
pub struct Link {
    profile: Profile,
    born: Instant,
    /// Next departure may not be before this (serialisation on a capped link).
    next_free: f64,
    trace_pos: usize,
    trace_cycle: u64,
    last_arrival: f64,
    rng: u64,
}

impl Link {
    pub fn new(profile: Profile, seed: u64) -> Self {
        Link {
            profile,
            born: Instant::now(),
            next_free: 0.0,
            trace_pos: 0,
            trace_cycle: 0,
            last_arrival: 0.0,
            rng: seed | 1,
        }
    }

    fn uniform(&mut self) -> f64 {
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        (self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }

    fn now_ms(&self) -> f64 {
        self.born.elapsed().as_secs_f64() * 1000.0
    }

    fn in_outage(&self, t: f64) -> Option<f64> {
        let (period, length) = self.profile.outage?;
        let cycle = (t / period).floor();
        let start = cycle * period;
        (cycle >= 1.0 && t < start + length).then_some(start + length)
    }

    /// When a packet that is ready to leave at `ready` (ms) arrives at the client.
    pub fn schedule(&mut self, ready: f64) -> f64 {
        self.schedule_packet(ready).1
    }

    /// When a packet ready at `ready` (ms) leaves and when it arrives.
    fn schedule_packet(&mut self, ready: f64) -> (f64, f64) {
        let mut depart = ready.max(self.next_free);
        if let Some(end) = self.in_outage(depart) {
            depart = end;
        }
        if let Some(trace) = self.profile.trace.clone() {
            let period = *trace.last().unwrap_or(&1) as f64 + 1.0;
            // Use the first opportunity at or after `depart`; missed ones are lost capacity.
            loop {
                let at = self.trace_cycle as f64 * period + trace[self.trace_pos] as f64;
                self.trace_pos += 1;
                if self.trace_pos == trace.len() {
                    self.trace_pos = 0;
                    self.trace_cycle += 1;
                }
                if at >= depart {
                    depart = at;
                    break;
                }
            }
            self.next_free = depart;
        } else if let Some(kbps) = self.profile.kbps {
            self.next_free = depart + PACKET as f64 * 8.0 / kbps;
        }
        let mut arrive = depart + self.profile.one_way_ms + self.uniform() * self.profile.jitter_ms;
        if self.profile.loss > 0.0 && self.uniform() < self.profile.loss {
            // Lost and retransmitted: about one more round trip.
            arrive += 2.0 * self.profile.one_way_ms + 20.0;
        }
        // Order is preserved (a TCP stream delivers in order).
        arrive = arrive.max(self.last_arrival);
        self.last_arrival = arrive;
        (depart, arrive)
    }
}

/// Links by (profile, client).
type Links = HashMap<(String, String), Arc<Mutex<Link>>>;

#[derive(Clone)]
pub struct Emulator {
    pub inner: Router,
    pub traces: PathBuf,
    links: Arc<Mutex<Links>>,
}

impl Emulator {
    pub fn new(inner: Router, traces: PathBuf) -> Self {
        Emulator { inner, traces, links: Arc::default() }
    }

    fn link(&self, profile: &str, client: &str) -> Option<Arc<Mutex<Link>>> {
        let mut links = self.links.lock().ok()?;
        let key = (profile.to_string(), client.to_string());
        if let Some(l) = links.get(&key) {
            return Some(l.clone());
        }
        let p = Profile::named(profile, &self.traces)?;
        // Same seed for every client: each player meets the same jitter sequence.
        let link = Arc::new(Mutex::new(Link::new(p, 0x5eed)));
        links.insert(key, link.clone());
        Some(link)
    }
}

async fn sleep_until_ms(link: &Arc<Mutex<Link>>, at_ms: f64) {
    let born = match link.lock() {
        Ok(l) => l.born,
        Err(_) => return,
    };
    tokio::time::sleep_until(born + Duration::from_secs_f64(at_ms.max(0.0) / 1000.0)).await;
}

fn schedule(link: &Arc<Mutex<Link>>) -> f64 {
    link.lock().map_or(0.0, |mut l| {
        let now = l.now_ms();
        l.schedule(now)
    })
}

/// A response's packets waiting on the link, in order: (departure, arrival, bytes).
#[derive(Default)]
struct Outbox {
    packets: VecDeque<(f64, f64, BytesMut)>,
    error: Option<axum::Error>,
    done: bool,
}

impl Outbox {
    /// Queues bytes the origin just produced. Bytes that find the previous packet still
    /// waiting to leave join it, up to a full packet: TCP coalesces writes queued behind a
    /// bottleneck, and a Mahimahi delivery opportunity carries up to a full packet of them.
    fn push(&mut self, link: &Arc<Mutex<Link>>, mut bytes: Bytes) {
        let Ok(mut l) = link.lock() else { return };
        let now = l.now_ms();
        if let Some((depart, _, packet)) = self.packets.back_mut() {
            if *depart > now && packet.len() < PACKET {
                let take = (PACKET - packet.len()).min(bytes.len());
                packet.extend_from_slice(&bytes.split_to(take));
            }
        }
        while !bytes.is_empty() {
            let piece = bytes.split_to(PACKET.min(bytes.len()));
            let (depart, arrive) = l.schedule_packet(now);
            self.packets.push_back((depart, arrive, BytesMut::from(&piece[..])));
        }
    }
}

/// `/net/{profile}/{client}/{*rest}`: the inner response, shaped by the link.
pub async fn shaped(
    State(emu): State<Emulator>,
    Path((profile, client, rest)): Path<(String, String, String)>,
    req: Request,
) -> Response {
    let Some(link) = emu.link(&profile, &client) else {
        return (StatusCode::NOT_FOUND, format!("unknown network profile `{profile}`")).into_response();
    };
    let one_way = link.lock().map_or(0.0, |l| l.profile.one_way_ms);
    // The request crosses the network first.
    tokio::time::sleep(Duration::from_secs_f64(one_way / 1000.0)).await;

    let (mut parts, body) = req.into_parts();
    // A fresh request for the inner router: this route's path parameters must not leak in.
    parts.extensions = Default::default();
    let query = parts.uri.query().map(|q| format!("?{q}")).unwrap_or_default();
    parts.uri = match format!("/{rest}{query}").parse::<Uri>() {
        Ok(u) => u,
        Err(_) => return StatusCode::BAD_REQUEST.into_response(),
    };
    let response = match emu.inner.clone().oneshot(Request::from_parts(parts, body)).await {
        Ok(r) => r,
        Err(never) => match never {},
    };
    // Headers travel in the first packet.
    let at = schedule(&link);
    sleep_until_ms(&link, at).await;

    // Packets are queued on the link the moment the origin produces them (a reader task),
    // and handed to the client at their arrival times.
    let (parts, body) = response.into_parts();
    let outbox = Arc::new(Mutex::new(Outbox::default()));
    let wake = Arc::new(Notify::new());
    let (queue_link, queue, queue_wake) = (link.clone(), outbox.clone(), wake.clone());
    tokio::spawn(async move {
        let mut chunks = body.into_data_stream();
        while let Some(chunk) = chunks.next().await {
            if Arc::strong_count(&queue) == 1 {
                return; // the client went away
            }
            let Ok(mut q) = queue.lock() else { return };
            match chunk {
                Ok(bytes) => q.push(&queue_link, bytes),
                Err(e) => {
                    q.error = Some(e);
                    break;
                }
            }
            drop(q);
            queue_wake.notify_one();
        }
        if let Ok(mut q) = queue.lock() {
            q.done = true;
        }
        queue_wake.notify_one();
    });
    let paced = futures_util::stream::unfold((outbox, wake, link), |(outbox, wake, link)| async move {
        loop {
            let next = {
                let mut q = outbox.lock().ok()?;
                match q.packets.front() {
                    Some(&(_, arrive, _)) => Some(arrive),
                    None if q.done => {
                        return q.error.take().map(|e| (Err(e), (outbox.clone(), wake.clone(), link.clone())))
                    }
                    None => None,
                }
            };
            match next {
                Some(arrive) => {
                    sleep_until_ms(&link, arrive).await;
                    // Popped only now: bytes may have joined the packet while it waited.
                    let packet = outbox.lock().ok()?.packets.pop_front()?.2.freeze();
                    return Some((Ok(packet), (outbox, wake, link)));
                }
                None => wake.notified().await,
            }
        }
    });
    Response::from_parts(parts, Body::from_stream(paced))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_keeps_order_and_bounds() {
        let mut l = Link::new(Profile { one_way_ms: 40.0, jitter_ms: 80.0, ..Default::default() }, 7);
        let mut last = 0.0;
        for i in 0..1000 {
            let t = i as f64;
            let a = l.schedule(t);
            assert!(a >= last && a >= t + 40.0 && a <= t.max(last) + 120.0 + 1e-9, "{a}");
            last = a;
        }
    }

    #[test]
    fn a_trace_paces_packets_and_repeats() {
        let trace = Arc::new(vec![0, 0, 10, 20, 20, 20]);
        let mut l = Link::new(Profile { trace: Some(trace), ..Default::default() }, 1);
        let arrivals: Vec<f64> = (0..8).map(|_| l.schedule(0.0)).collect();
        // Period is 21 ms: the 7th and 8th packets use the next cycle's 0 ms opportunities.
        assert_eq!(arrivals, vec![0.0, 0.0, 10.0, 20.0, 20.0, 20.0, 21.0, 21.0]);
        // A packet ready late skips the opportunities it missed.
        assert_eq!(l.schedule(40.0), 41.0);
    }

    #[test]
    fn bytes_waiting_behind_the_bottleneck_share_packets() {
        // The first opportunity is 10 s away: everything queues behind it.
        let trace = Arc::new(vec![10_000, 10_001, 10_002, 10_003]);
        let link = Arc::new(Mutex::new(Link::new(Profile { trace: Some(trace), ..Default::default() }, 1)));
        let mut out = Outbox::default();
        for _ in 0..3 {
            out.push(&link, Bytes::from(vec![7u8; 400]));
        }
        out.push(&link, Bytes::from(vec![8u8; 1000]));
        let sizes: Vec<usize> = out.packets.iter().map(|p| p.2.len()).collect();
        assert_eq!(sizes, vec![1500, 700]);
        let departures: Vec<f64> = out.packets.iter().map(|p| p.0).collect();
        assert_eq!(departures, vec![10_000.0, 10_001.0]);
    }

    #[test]
    fn capped_link_serialises() {
        let mut l = Link::new(Profile { kbps: Some(1200.0), ..Default::default() }, 1);
        let a: Vec<f64> = (0..3).map(|_| l.schedule(0.0)).collect();
        assert_eq!(a, vec![0.0, 10.0, 20.0]); // 1500 B at 1.2 Mbit/s = 10 ms
    }

    #[test]
    fn caps_are_named_by_their_rate() {
        assert_eq!((cap_kbps("cap600k"), cap_kbps("cap2m")), (Some(600.0), Some(2000.0)));
        for bad in ["cap", "capk", "cap0k", "cap-5k", "cap5g", "cap5"] {
            assert_eq!(cap_kbps(bad), None, "{bad}");
        }
    }

    #[test]
    fn outages_hold_delivery() {
        let mut l = Link::new(Profile { outage: Some((1000.0, 300.0)), ..Default::default() }, 1);
        assert_eq!(l.schedule(500.0), 500.0);
        assert_eq!(l.schedule(1100.0), 1300.0);
        assert_eq!(l.schedule(1400.0), 1400.0);
    }

    #[test]
    fn named_profiles_and_real_traces() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/traces");
        assert!(Profile::named("jitter", &dir).is_some());
        assert!(Profile::named("../etc/passwd", &dir).is_none());
        assert!(Profile::named("nope", &dir).is_none());
        assert!(dir.is_dir(), "the network traces are expected in {} (shared/ beside the checkout)", dir.display());
        let p = Profile::named("Verizon-LTE-short.down", &dir).unwrap();
        let n = p.trace.unwrap().len();
        assert!(n > 50_000, "{n} opportunities");
    }
}
