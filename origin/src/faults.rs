//! The traffic of the `/orders*` routes: counters for the load harness and fault knobs to test
//! clients against (`--fault-*`, `GET|POST /admin/faults`).
//!
//! Each request is counted, then delayed by `delayMs`, then, with the given probabilities:
//! dropped before it is processed (`dropRequests`: nothing happens, the connection is closed
//! without an answer), answered 503 without being processed (`error5xx`), or processed and
//! stored and then dropped (`dropResponses`: the client cannot tell whether it happened, which
//! is what idempotency keys are for). The rolls come from a generator seeded by
//! `--order-seed`, so a single client's run replays; concurrent requests take them in arrival
//! order.
//!
//! A drop must look like a network failure to the client, not like an answer: the response is
//! given a body whose first frame is an error, and hyper then closes the connection before it
//! has written a byte of the status line. A browser's `fetch` rejects with a `TypeError` and a
//! native client gets a connection error (see the test that checks it with hyper's own client).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::orders::{error, Orders, Rng};

/// The longest delay a knob may add: longer than any client's timeout is of no use.
pub const MAX_DELAY_MS: u32 = 60_000;
/// Mixed into the order seed, so the fault rolls are not the draw's numbers.
const FAULT_SEED_SALT: u64 = 0x00fa_0175_eed5_a175;

/// The knobs, each 0 (off) by default.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct FaultSettings {
    /// Probability (0..1) that a request is dropped unprocessed.
    pub drop_requests: f64,
    /// Probability that a response is dropped after the request was processed.
    pub drop_responses: f64,
    /// Added to every request before it is processed.
    pub delay_ms: u32,
    /// Probability of a 503 without processing.
    pub error_5xx: f64,
}

impl FaultSettings {
    /// A probability knob from a flag or a field: a number from 0 to 1.
    pub fn probability(name: &str, v: f64) -> Result<f64, String> {
        if (0.0..=1.0).contains(&v) {
            Ok(v)
        } else {
            Err(format!("{name}: a probability from 0 to 1, not {v}"))
        }
    }

    pub fn delay(name: &str, v: u64) -> Result<u32, String> {
        u32::try_from(v)
            .ok()
            .filter(|&ms| ms <= MAX_DELAY_MS)
            .ok_or_else(|| format!("{name}: ms from 0 to {MAX_DELAY_MS}"))
    }

    fn to_json(self) -> Value {
        json!({
            "dropRequests": self.drop_requests,
            "dropResponses": self.drop_responses,
            "delayMs": self.delay_ms,
            "error5xx": self.error_5xx,
        })
    }
}

/// The body of `POST /admin/faults`: any of the knobs; those left out keep their value.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct FaultPatch {
    drop_requests: Option<f64>,
    drop_responses: Option<f64>,
    delay_ms: Option<u64>,
    error_5xx: Option<f64>,
}

/// Requests in the current second and the busiest one so far.
struct Rate {
    second: i64,
    count: u64,
    peak: u64,
    peak_second: i64,
}

/// The counters and knobs of the `/orders*` routes.
pub struct Traffic {
    knobs: Mutex<FaultSettings>,
    rng: Mutex<Rng>,
    posts: AtomicU64,
    gets: AtomicU64,
    deletes: AtomicU64,
    dropped_requests: AtomicU64,
    dropped_responses: AtomicU64,
    injected_5xx: AtomicU64,
    rate: Mutex<Rate>,
}

impl Traffic {
    pub fn new(knobs: FaultSettings, seed: u64) -> Traffic {
        Traffic {
            knobs: Mutex::new(knobs),
            rng: Mutex::new(Rng(seed ^ FAULT_SEED_SALT)),
            posts: AtomicU64::new(0),
            gets: AtomicU64::new(0),
            deletes: AtomicU64::new(0),
            dropped_requests: AtomicU64::new(0),
            dropped_responses: AtomicU64::new(0),
            injected_5xx: AtomicU64::new(0),
            rate: Mutex::new(Rate { second: i64::MIN, count: 0, peak: 0, peak_second: 0 }),
        }
    }

    pub fn faults(&self) -> Value {
        self.knobs.lock().map(|k| k.to_json()).unwrap_or(Value::Null)
    }

    /// Applies a `POST /admin/faults` body; the knobs as they now are, or what is wrong.
    pub fn set_faults(&self, body: &[u8]) -> Result<Value, String> {
        let patch: FaultPatch = serde_json::from_slice(body).map_err(|e| {
            format!("not a fault setting ({{\"dropRequests\", \"dropResponses\", \"delayMs\", \"error5xx\"}}): {e}")
        })?;
        let mut next = *self.knobs.lock().map_err(|_| "the fault knobs are poisoned".to_string())?;
        if let Some(p) = patch.drop_requests {
            next.drop_requests = FaultSettings::probability("dropRequests", p)?;
        }
        if let Some(p) = patch.drop_responses {
            next.drop_responses = FaultSettings::probability("dropResponses", p)?;
        }
        if let Some(ms) = patch.delay_ms {
            next.delay_ms = FaultSettings::delay("delayMs", ms)?;
        }
        if let Some(p) = patch.error_5xx {
            next.error_5xx = FaultSettings::probability("error5xx", p)?;
        }
        let mut knobs = self.knobs.lock().map_err(|_| "the fault knobs are poisoned".to_string())?;
        *knobs = next;
        eprintln!("origin: order faults now {}", next.to_json());
        Ok(next.to_json())
    }

    /// The counters, as `GET /admin/sales` shows them under `requests`.
    pub fn counters(&self) -> Value {
        let (peak, peak_second) = self.rate.lock().map(|r| (r.peak, r.peak_second)).unwrap_or((0, 0));
        let (posts, gets, deletes) = (
            self.posts.load(Ordering::Relaxed),
            self.gets.load(Ordering::Relaxed),
            self.deletes.load(Ordering::Relaxed),
        );
        json!({
            "posts": posts,
            "gets": gets,
            "deletes": deletes,
            "total": posts + gets + deletes,
            "peakPerSecond": peak,
            "peakSecondMs": peak_second * 1000,
            "droppedRequests": self.dropped_requests.load(Ordering::Relaxed),
            "droppedResponses": self.dropped_responses.load(Ordering::Relaxed),
            "injected5xx": self.injected_5xx.load(Ordering::Relaxed),
        })
    }

    fn count(&self, method: &Method, now_ms: f64) {
        let counter = match *method {
            Method::POST => &self.posts,
            Method::GET => &self.gets,
            Method::DELETE => &self.deletes,
            _ => return,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut r) = self.rate.lock() {
            let second = (now_ms / 1000.0).floor() as i64;
            if second != r.second {
                *r = Rate { second, count: 0, ..*r };
            }
            r.count += 1;
            if r.count > r.peak {
                r.peak = r.count;
                r.peak_second = second;
            }
        }
    }

    /// True with probability `p`.
    fn roll(&self, p: f64) -> bool {
        if p <= 0.0 {
            return false;
        }
        // 53 random bits: uniform in [0, 1).
        let u = self.rng.lock().map(|mut r| (r.next() >> 11) as f64 / (1u64 << 53) as f64).unwrap_or(1.0);
        u < p
    }
}

/// The middleware of the `/orders*` routes: counts, then applies the knobs.
pub async fn knobs(State(orders): State<Arc<Orders>>, req: Request, next: Next) -> Response {
    let t = &orders.traffic;
    t.count(req.method(), orders.now_ms());
    let knobs = t.knobs.lock().map(|k| *k).unwrap_or_default();
    if knobs.delay_ms > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(u64::from(knobs.delay_ms))).await;
    }
    if t.roll(knobs.drop_requests) {
        t.dropped_requests.fetch_add(1, Ordering::Relaxed);
        return hang_up();
    }
    if t.roll(knobs.error_5xx) {
        t.injected_5xx.fetch_add(1, Ordering::Relaxed);
        let mut res = error(StatusCode::SERVICE_UNAVAILABLE, "injected fault: try again");
        res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return res;
    }
    let res = next.run(req).await;
    if t.roll(knobs.drop_responses) {
        t.dropped_responses.fetch_add(1, Ordering::Relaxed);
        return hang_up();
    }
    res
}

/// A response that is never sent: its body fails at once, so hyper aborts the connection
/// before the status line (an answer that merely never comes would hang the client instead).
fn hang_up() -> Response {
    let failing = futures_util::stream::once(async {
        Err::<axum::body::Bytes, _>(std::io::Error::new(std::io::ErrorKind::ConnectionAborted, "injected drop"))
    });
    Response::new(Body::from_stream(failing))
}
