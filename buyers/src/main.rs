//! `buyers`: a flash sale's crowd. Thousands of viewers, each the player's own sans-IO
//! [`OrderClient`] (the code every browser runs), driven over real loopback HTTP against the
//! real origin, tap "buy" on one cue; the harness reports what the sale did.
//!
//! The model of a viewer: its stream runs `latency` behind the host (spread uniformly over
//! `--latency-ms MIN,MAX`), so the pop-up reaches it at the cue's start + `latency` on the
//! server's clock; it taps within `--reaction-ms` after that (uniform). Its client writes the
//! intent down (an in-memory outbox here, IndexedDB in the browser), takes the product's lock
//! (granted at once: one tab per viewer) and sends, retries and follows exactly as in a page.
//!
//! Afterwards every viewer's order is read back from the server by its Idempotency-Key with
//! the viewer's token, and the sale's ledger (`GET /admin/sales`) is compared with the
//! clients' intents (each viewer is one user with one intent):
//! - `lost`: a viewer whose final state is not what the server holds under its key (an order
//!   it does not know of, another status or order id, none at all), or who got no final
//!   answer;
//! - `duplicated`: orders the server holds for the sale beyond one per viewer.
//!
//! Printed as one JSON object on stdout (see `Summary`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use liveshop::core::io::{
    Method, Outbox, Output, Request, RequestId, ResponseHead, StorageOp, StorageResult, TabEvent, TabOp,
};
use liveshop::core::orders::retry::Rng;
use liveshop::core::orders::{Intent, OrderClient, OrderStatus};
use liveshop::core::{Instant, PlayerError, ServerTime};
use serde_json::{json, Value};
use tokio::sync::{mpsc, Semaphore};

/// A tap no answer came for within this long is counted as lost (a client gives up sooner
/// and says so: see `GIVE_UP_AFTER_MS` in the order client).
const SALE_TIMEOUT: Duration = Duration::from_secs(330);

struct Args {
    origin: String,
    admin_token: String,
    cue: String,
    product: String,
    /// The cue's START-DATE, ms since the epoch on the server's clock.
    start_ms: f64,
    viewers: usize,
    latency_ms: (f64, f64),
    reaction_ms: f64,
    seed: u64,
    connections: usize,
}

fn usage() -> ! {
    eprintln!(
        "usage: buyers --origin URL --admin-token T --cue ID --product ID --start-ms MS \
         [--viewers 10000] [--latency-ms 500,4000] [--reaction-ms 2000] [--seed 1] [--connections 512]"
    );
    std::process::exit(2)
}

fn args() -> Args {
    let mut a = Args {
        origin: String::new(),
        admin_token: String::new(),
        cue: String::new(),
        product: String::new(),
        start_ms: f64::NAN,
        viewers: 10_000,
        latency_ms: (500.0, 4000.0),
        reaction_ms: 2000.0,
        seed: 1,
        connections: 512,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_else(|| usage());
        let num = |v: &str| v.parse::<f64>().unwrap_or_else(|_| usage());
        match flag.as_str() {
            "--origin" => a.origin = value.trim_end_matches('/').to_string(),
            "--admin-token" => a.admin_token = value,
            "--cue" => a.cue = value,
            "--product" => a.product = value,
            "--start-ms" => a.start_ms = num(&value),
            "--viewers" => a.viewers = num(&value) as usize,
            "--latency-ms" => {
                let (lo, hi) = value.split_once(',').unwrap_or_else(|| usage());
                a.latency_ms = (num(lo), num(hi));
            }
            "--reaction-ms" => a.reaction_ms = num(&value),
            "--seed" => a.seed = num(&value) as u64,
            "--connections" => a.connections = num(&value) as usize,
            _ => usage(),
        }
    }
    if a.origin.is_empty() || a.cue.is_empty() || a.product.is_empty() || !a.start_ms.is_finite() {
        usage();
    }
    a
}

/// HTTP for every viewer: one connection pool, at most `connections` requests at a time (the
/// machine's file descriptors, not the viewers, are the limit on loopback).
#[derive(Clone)]
struct Http {
    client: Client<HttpConnector, Full<Bytes>>,
    slots: Arc<Semaphore>,
    posts: Arc<AtomicU64>,
    gets: Arc<AtomicU64>,
}

/// A response as the order client takes it.
type Answer = Result<(ResponseHead, Bytes), PlayerError>;

impl Http {
    fn new(connections: usize) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new()).pool_max_idle_per_host(connections).build(connector);
        Http { client, slots: Arc::new(Semaphore::new(connections)), posts: Arc::default(), gets: Arc::default() }
    }

    async fn send(&self, req: &Request) -> Answer {
        let network = |reason: String| PlayerError::Network { url: req.url.clone(), reason };
        let _slot = self.slots.acquire().await.map_err(|e| network(e.to_string()))?;
        let method = match req.method {
            Method::Get => hyper::Method::GET,
            Method::Post => hyper::Method::POST,
            Method::Delete => hyper::Method::DELETE,
        };
        let counter = if req.method == Method::Post { &self.posts } else { &self.gets };
        counter.fetch_add(1, Ordering::Relaxed);
        let mut builder = hyper::Request::builder().method(method).uri(&req.url);
        for (name, value) in &req.headers {
            builder = builder.header(name, value);
        }
        let body = Full::new(Bytes::from(req.body.clone().unwrap_or_default()));
        let request = builder.body(body).map_err(|e| network(e.to_string()))?;
        let response = self.client.request(request).await.map_err(|e| network(format!("{e:?}")))?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
            .collect();
        let body = response.into_body().collect().await.map_err(|e| network(e.to_string()))?.to_bytes();
        Ok((ResponseHead { status, headers }, body))
    }

    /// A GET or POST outside the order client (login, read-back), retried on network errors and
    /// 5xx: the faults hit these too.
    async fn call(&self, method: Method, url: &str, headers: Vec<(String, String)>, body: Option<Vec<u8>>) -> Value {
        let req = Request {
            id: 0,
            kind: liveshop::core::RequestKind::Api,
            method,
            url: url.into(),
            headers,
            body,
            range: None,
        };
        for attempt in 0..50u64 {
            if let Ok((head, body)) = self.send(&req).await {
                if head.status < 500 {
                    return serde_json::from_slice(&body).unwrap_or(Value::Null);
                }
            }
            tokio::time::sleep(Duration::from_millis(20 + 20 * attempt.min(10))).await;
        }
        Value::Null
    }
}

fn wall_ms() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

/// One viewer's sale, as it saw it.
#[derive(Debug, Clone)]
struct Outcome {
    latency_ms: f64,
    token: String,
    key: String,
    status: Option<OrderStatus>,
    order_id: Option<String>,
    /// Tap to final answer.
    decision_ms: Option<f64>,
}

struct Viewer {
    index: usize,
    token: String,
    latency_ms: f64,
    /// When it taps, ms since the epoch on the server's clock.
    tap_at: f64,
    key: String,
}

async fn run_viewer(v: Viewer, args: Arc<Args>, http: Http, clock_offset: f64) -> Outcome {
    let started = tokio::time::Instant::now();
    let now = move || Instant::new(started.elapsed().as_secs_f64() * 1000.0);
    let server_now = move || wall_ms() + clock_offset;
    let wait = (v.tap_at - server_now()).max(0.0);
    tokio::time::sleep(Duration::from_secs_f64(wait / 1000.0)).await;

    let mut outcome = Outcome {
        latency_ms: v.latency_ms,
        token: v.token.clone(),
        key: v.key.clone(),
        status: None,
        order_id: None,
        decision_ms: None,
    };
    let mut client = OrderClient::new(args.origin.clone(), args.seed.wrapping_mul(1_000_003) ^ v.index as u64);
    let mut out = Outbox::<()>::default();
    let tapped = now();
    let intent = Intent {
        cue_id: args.cue.clone(),
        product_id: args.product.clone(),
        quantity: 1,
        shown_at: ServerTime::new(args.start_ms + v.latency_ms),
        tapped_at: ServerTime::new(server_now()),
        latency_ms: v.latency_ms,
        user_token: v.token,
        key: v.key,
    };
    if client.buy(&mut out, tapped, intent).is_err() {
        return outcome;
    }
    let (tx, mut rx) = mpsc::unbounded_channel::<(RequestId, Answer)>();
    let mut in_flight: HashMap<RequestId, tokio::task::JoinHandle<()>> = HashMap::new();
    // The page's outbox: what was written down, answered at once.
    let mut stored: HashMap<String, Vec<u8>> = HashMap::new();
    let deadline = tokio::time::Instant::now() + SALE_TIMEOUT;
    loop {
        while let Some(update) = client.poll_event() {
            outcome.order_id = update.result.order_id.clone().or(outcome.order_id.take());
            if update.result.status.is_final() {
                outcome.status = Some(update.result.status);
                outcome.decision_ms = Some(now() - tapped);
                for (_, task) in in_flight.drain() {
                    task.abort();
                }
                return outcome;
            }
        }
        if let Some(output) = out.pop() {
            match output {
                Output::Fetch(req) => {
                    let (http, tx) = (http.clone(), tx.clone());
                    let id = req.id;
                    in_flight.insert(
                        id,
                        tokio::spawn(async move {
                            tx.send((id, http.send(&req).await)).ok();
                        }),
                    );
                }
                Output::CancelFetch(id) => {
                    if let Some(task) = in_flight.remove(&id) {
                        task.abort();
                    }
                }
                Output::Storage(op) => {
                    let result = match op {
                        StorageOp::Put { key, value } => {
                            stored.insert(key.clone(), value);
                            StorageResult::Stored { key }
                        }
                        StorageOp::Delete { key } => {
                            stored.remove(&key);
                            StorageResult::Deleted { key }
                        }
                        StorageOp::List { prefix } => {
                            let entries = stored.iter().filter(|(k, _)| k.starts_with(&prefix));
                            let entries = entries.map(|(k, v)| (k.clone(), v.clone())).collect();
                            StorageResult::Listed { prefix, entries }
                        }
                    };
                    client.handle_storage(&mut out, now(), result);
                }
                Output::Tab(TabOp::Acquire { lock }) => client.handle_tab(&mut out, now(), TabEvent::Acquired { lock }),
                _ => {}
            }
            continue;
        }
        let wake = client.poll_timeout().map(|d| started + Duration::from_secs_f64(d.at.get().max(0.0) / 1000.0));
        tokio::select! {
            Some((id, answer)) = rx.recv() => {
                in_flight.remove(&id);
                let t = now();
                match answer {
                    Ok((head, body)) => {
                        client.handle_head(t, id, head);
                        client.handle_chunk(id, &body);
                        client.handle_end(&mut out, t, id, Ok(()));
                    }
                    Err(e) => client.handle_end(&mut out, t, id, Err(e)),
                }
            }
            _ = tokio::time::sleep_until(wake.unwrap_or(deadline)) => client.handle_timeout(&mut out, now()),
            _ = tokio::time::sleep_until(deadline) => return outcome,
        }
    }
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

#[tokio::main]
async fn main() {
    let args = Arc::new(args());
    let http = Http::new(args.connections);
    let mut rng = Rng::new(args.seed);

    // Sign everyone in before the sale (the storefront would have).
    let mut logins = tokio::task::JoinSet::new();
    for i in 0..args.viewers {
        let (http, url) = (http.clone(), format!("{}/demo/login", args.origin));
        let body = json!({ "userId": format!("buyer-{}-{i}", args.seed) }).to_string().into_bytes();
        logins.spawn(async move { (i, http.call(Method::Post, &url, Vec::new(), Some(body)).await) });
    }
    let mut tokens = vec![String::new(); args.viewers];
    while let Some(Ok((i, v))) = logins.join_next().await {
        tokens[i] = v["token"].as_str().unwrap_or_default().to_string();
    }
    if tokens.iter().any(String::is_empty) {
        eprintln!("buyers: some logins failed");
        std::process::exit(1);
    }
    // The server's clock: loopback, so one exchange is within a millisecond.
    let before = wall_ms();
    let clock = http.call(Method::Get, &format!("{}/clock", args.origin), Vec::new(), None).await;
    let clock_offset = clock["t1"].as_f64().map_or(0.0, |t| t - (before + wall_ms()) / 2.0);
    let (posts0, gets0) = (http.posts.load(Ordering::Relaxed), http.gets.load(Ordering::Relaxed));

    let mut viewers = tokio::task::JoinSet::new();
    for (index, token) in tokens.into_iter().enumerate() {
        let (lo, hi) = args.latency_ms;
        let latency_ms = lo + (hi - lo) * rng.next_f64();
        let tap_at = args.start_ms + latency_ms + args.reaction_ms * rng.next_f64();
        let key = format!("{:016x}{:016x}", rng.next_u64(), rng.next_u64());
        let v = Viewer { index, token, latency_ms, tap_at, key };
        viewers.spawn(run_viewer(v, args.clone(), http.clone(), clock_offset));
    }
    let mut outcomes = Vec::with_capacity(args.viewers);
    while let Some(Ok(o)) = viewers.join_next().await {
        outcomes.push(o);
    }
    let posts = http.posts.load(Ordering::Relaxed) - posts0;
    let gets = http.gets.load(Ordering::Relaxed) - gets0;

    // Read every viewer's order back by its key, with its owner's token.
    let mut reads = tokio::task::JoinSet::new();
    for (i, o) in outcomes.iter().enumerate() {
        let url = format!("{}/orders?key={}", args.origin, o.key);
        let http = http.clone();
        let auth = vec![("Authorization".to_string(), format!("Bearer {}", o.token))];
        reads.spawn(async move { (i, http.call(Method::Get, &url, auth, None).await) });
    }
    // Viewer → (status, order id) on the server.
    let mut on_server: HashMap<usize, (String, String)> = HashMap::new();
    while let Some(Ok((i, v))) = reads.join_next().await {
        if let (Some(status), Some(id)) = (v["status"].as_str(), v["orderId"].as_str()) {
            on_server.insert(i, (status.to_string(), id.to_string()));
        }
    }
    let auth = vec![("Authorization".to_string(), format!("Bearer {}", args.admin_token))];
    let sales = http.call(Method::Get, &format!("{}/admin/sales", args.origin), auth, None).await;

    let wire = |s: Option<OrderStatus>| s.map_or("none", OrderStatus::to_wire);
    let mut lost = 0;
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for (i, o) in outcomes.iter().enumerate() {
        *counts.entry(wire(o.status)).or_default() += 1;
        let agreed = on_server
            .get(&i)
            .is_some_and(|(status, id)| status == wire(o.status) && o.order_id.as_deref() == Some(id.as_str()));
        if !agreed {
            lost += 1;
        }
    }
    let sale = sales["sales"].as_array().and_then(|s| s.iter().find(|s| s["cueId"] == args.cue.as_str()));
    let server_intents = sale.and_then(|s| s["intents"].as_u64()).map(|n| n as usize);
    let duplicated = server_intents.map(|n| n.saturating_sub(on_server.len()));

    // Win rate by latency: the slowest fifth against the fastest.
    outcomes.sort_by(|a, b| a.latency_ms.total_cmp(&b.latency_ms));
    let fifth = (outcomes.len() / 5).max(1);
    let wins = |part: &[Outcome]| part.iter().filter(|o| o.status == Some(OrderStatus::Won)).count();
    let (fast_wins, slow_wins) = (wins(&outcomes[..fifth]), wins(&outcomes[outcomes.len() - fifth..]));
    let (fast, slow) = (fast_wins as f64 / fifth as f64, slow_wins as f64 / fifth as f64);
    let mut decisions: Vec<f64> = outcomes.iter().filter_map(|o| o.decision_ms).collect();
    decisions.sort_by(f64::total_cmp);

    let summary = json!({
        "intents": outcomes.len(),
        "posts": posts,
        "gets": gets,
        "amplification": posts as f64 / outcomes.len().max(1) as f64,
        "lost": lost,
        "duplicated": duplicated,
        "statuses": counts,
        "win_rate": { "fastest_fifth": fast, "slowest_fifth": slow },
        "wins": { "fastest_fifth": fast_wins, "slowest_fifth": slow_wins, "fifth": fifth },
        "latency_neutrality": if fast > 0.0 { slow / fast } else { 0.0 },
        "decision_ms": { "p50": quantile(&decisions, 0.5), "p95": quantile(&decisions, 0.95) },
        "decisions_ms": decisions.iter().map(|d| d.round()).collect::<Vec<f64>>(),
        "server": sale.cloned().unwrap_or(Value::Null),
        "server_requests": sales["requests"].clone(),
    });
    println!("{summary}");
}
