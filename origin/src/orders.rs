//! Flash-sale orders on product cues: `POST /demo/login`, `POST /orders`, `GET /orders/<id>`,
//! `DELETE /orders/<id>`, and for the host `GET /admin/sales`, `GET|POST /admin/faults` and
//! `POST /admin/orders/restart`.
//!
//! - A user token is what a storefront would issue; the origin signs demo ones:
//!   `base64url(payload).base64url(hmac_sha256(secret, payload))`, the payload being the JSON
//!   `{"sub":"<user>","exp":<ms since the epoch>}` (base64url without padding; the MAC is over
//!   the payload's JSON bytes). The secret is random per origin start, or `--token-secret`.
//! - `POST /orders` carries an `Idempotency-Key`: the first final answer for a user's key is
//!   stored and every repeat gets it again (the same status and body), so a retried tap never
//!   makes two orders; the same key with another intent is refused (422), and a repeat while the
//!   first is still being processed is told so (409). New intents are admitted at
//!   `--order-rate` a second (token bucket; 429 with `Retry-After` above it).
//! - Fairness: every attempt received from the cue's START-DATE (the link is up at the host;
//!   nobody can have seen it before) until `--fair-window-ms` after its shared display instant
//!   (START-DATE + the shared target latency, or + [`DEFAULT_DISPLAY_DELAY_MS`]) is equal, so
//!   a viewer whose stream runs ahead of the shared target gains nothing by it: when the window closes the winners are drawn uniformly at random among them (the
//!   arrival order plays no part; a user with several entrants has one ticket, their others
//!   come after everyone's first); later attempts win first come, first served while the
//!   cue's stock lasts, then are `sold_out`. One win per user and product. The times a client
//!   reports (`shownAtMs`, `tappedAtMs`, `latencyMs`) are kept as diagnostics only and never
//!   used to order anyone.
//! - Durability: every order, sale, decision and draw is stored in the [`Ledger`] (SQLite at
//!   `--ledger`) before the answer leaves, so a crash loses nothing: after a restart, stored
//!   answers are replayed to retries and the sales whose window was open are drawn when it
//!   closes. What stays in memory is a cache (the sales' windows), the keys being processed
//!   right now, and the admission bucket; [`Orders::restart`] drops all three.
//! - Every answer carries `X-Server-Time` (ms since the epoch on the origin's clock); the
//!   `/orders*` routes go through the fault knobs of [`crate::faults`].

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};
use tower_http::cors::{AllowHeaders, Any, CorsLayer};

use crate::cues::Cues;
use crate::faults::{FaultSettings, Traffic};
use crate::ledger::{
    Answer, Decide, DrawRecord, Keyed, Ledger, LedgerError, LedgerPath, NewOrder, OrderRow, Placed, SaleRow,
    SqliteLedger,
};
pub use crate::ledger::{CancelError, Status};
use crate::source::Clock;

pub const DEFAULT_ORDER_RATE: u32 = 200;
pub const DEFAULT_FAIR_WINDOW_MS: u32 = 3000;
/// Without a shared target latency, a cue counts as shown this long after its START-DATE.
pub const DEFAULT_DISPLAY_DELAY_MS: f64 = 1500.0;
/// How long a demo token holds.
pub const TOKEN_LIFETIME_MS: f64 = 12.0 * 3600.0 * 1000.0;
pub const MAX_QUANTITY: u32 = 10;
const MAX_KEY: usize = 255;
const MAX_USER_ID: usize = 128;
const MAX_FIELD: usize = 64;
/// Decided orders (and their keys) are forgotten this long after they were received.
const KEEP_MS: f64 = 6.0 * 3600.0 * 1000.0;
/// Forgetting is housekeeping: once a minute (of order time) keeps it off most POSTs.
const FORGET_EVERY_MS: f64 = 60_000.0;
/// How often due draws are made without waiting for a request (see [`settle_loop`]).
pub const SETTLE_EVERY: std::time::Duration = std::time::Duration::from_millis(100);
pub const SERVER_TIME: &str = "x-server-time";
/// Mixed into the seed for order IDs, so they are not the draw's numbers.
const ID_SEED_SALT: u64 = 0x0005_eed1_d50f_0de5;

/// `--token-secret`, `--order-rate`, `--fair-window-ms`, `--order-seed`, `--ledger`, `--fault-*`.
#[derive(Debug, Clone)]
pub struct OrderSettings {
    /// Default: 32 random bytes.
    pub token_secret: Option<Vec<u8>>,
    /// New intents admitted a second.
    pub rate: u32,
    pub fair_window_ms: u32,
    /// Seeds the draw, order IDs and the fault knobs, for tests; default random.
    pub seed: Option<u64>,
    /// Default here `:memory:` (tests); the binary's default is a file, see `main`.
    pub ledger: LedgerPath,
    pub faults: FaultSettings,
}

impl Default for OrderSettings {
    fn default() -> Self {
        OrderSettings {
            token_secret: None,
            rate: DEFAULT_ORDER_RATE,
            fair_window_ms: DEFAULT_FAIR_WINDOW_MS,
            seed: None,
            ledger: LedgerPath::Memory,
            faults: FaultSettings::default(),
        }
    }
}

/// The body of `POST /orders`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Intent {
    pub cue_id: String,
    pub product_id: String,
    pub quantity: u32,
    /// Diagnostics only.
    pub shown_at_ms: Option<f64>,
    pub tapped_at_ms: Option<f64>,
    pub latency_ms: Option<f64>,
}

impl Intent {
    fn check(&self) -> Result<(), String> {
        for (name, v) in [("cueId", &self.cue_id), ("productId", &self.product_id)] {
            if v.is_empty() || v.chars().count() > MAX_FIELD || v.chars().any(char::is_control) {
                return Err(format!("{name} must be 1-{MAX_FIELD} characters without control characters"));
            }
        }
        if !(1..=MAX_QUANTITY).contains(&self.quantity) {
            return Err(format!("quantity must be 1-{MAX_QUANTITY}"));
        }
        for (name, v) in
            [("shownAtMs", self.shown_at_ms), ("tappedAtMs", self.tapped_at_ms), ("latencyMs", self.latency_ms)]
        {
            if v.is_some_and(|v| !v.is_finite()) {
                return Err(format!("{name} must be a number"));
            }
        }
        Ok(())
    }

    /// The canonical payload: what makes two requests the same intent (the diagnostics may
    /// differ between retries). JSON with its keys in a fixed order.
    fn fingerprint(&self) -> String {
        json!({"cueId": self.cue_id, "productId": self.product_id, "quantity": self.quantity}).to_string()
    }
}

struct Bucket {
    tokens: f64,
    last_ms: f64,
}

/// The order service's state between requests: the ledger and what may be lost with the
/// process.
struct Book {
    /// The open ledger, or why it could not be opened (every request then gets 503).
    ledger: Result<Box<dyn Ledger>, String>,
    /// A cache of the ledger's sales, for their product and window; `left` is not kept up to
    /// date here (the ledger takes stock).
    sales: HashMap<String, SaleRow>,
    /// Keys whose first request is being processed.
    in_flight: HashSet<(String, String)>,
    ids: Rng,
    bucket: Bucket,
    last_forget_ms: f64,
}

/// What a `POST /orders` finds under its key.
#[derive(Debug, PartialEq)]
pub enum Begin {
    /// A new intent: the key is now held as processing.
    New,
    /// The stored answer.
    Replay(StatusCode, String),
    /// 409: the first request with this key is still being processed.
    InFlight,
    /// 422: the key was used for another intent.
    Mismatch,
    /// 503: the ledger failed.
    Unavailable(String),
}

/// The orders and the sales, with the token secret, the admission bucket and the traffic knobs.
pub struct Orders {
    clock: Clock,
    cues: Arc<Cues>,
    secret: Vec<u8>,
    rate: f64,
    fair_window_ms: f64,
    seed: u64,
    ledger_path: LedgerPath,
    book: Mutex<Book>,
    /// Request counters and fault knobs of the `/orders*` routes: the HTTP front, which a
    /// restart of the order service leaves as it is.
    pub traffic: Traffic,
}

/// What [`Orders::restart`] found in the reopened ledger.
#[derive(Debug, PartialEq)]
pub struct Restarted {
    /// Sales not drawn yet, which will be drawn when their window closes.
    pub resumed_sales: usize,
    pub orders_ever: u64,
}

fn unavailable(e: impl std::fmt::Display) -> String {
    let msg = format!("order ledger unavailable: {e}");
    eprintln!("origin: {msg}");
    msg
}

impl Orders {
    pub fn new(settings: OrderSettings, clock: Clock, cues: Arc<Cues>) -> Self {
        let secret = settings.token_secret.unwrap_or_else(|| random_bytes::<32>().to_vec());
        let seed = settings.seed.unwrap_or_else(|| u64::from_le_bytes(random_bytes::<8>()));
        let rate = f64::from(settings.rate.max(1));
        let book = Book::open(&settings.ledger, seed, rate);
        Orders {
            clock,
            cues,
            secret,
            rate,
            fair_window_ms: f64::from(settings.fair_window_ms),
            seed,
            ledger_path: settings.ledger,
            book: Mutex::new(book),
            traffic: Traffic::new(settings.faults, seed),
        }
    }

    pub fn now_ms(&self) -> f64 {
        self.clock.now_ms()
    }

    /// Whether the ledger is open; why not otherwise.
    pub fn health(&self) -> Result<(), String> {
        let book = self.book.lock().map_err(|_| "the order book is poisoned".to_string())?;
        book.ledger.as_ref().map(|_| ()).map_err(Clone::clone)
    }

    pub fn ledger_path(&self) -> &LedgerPath {
        &self.ledger_path
    }

    /// Behaves as after a crash and a start: drops every in-memory state (the cache of sales,
    /// the keys being processed, the admission bucket) and the connection, then reopens the
    /// ledger from disk. Refused for an in-memory ledger, which a restart would lose.
    pub fn restart(&self) -> Result<Restarted, String> {
        if self.ledger_path == LedgerPath::Memory {
            return Err(
                "the ledger is :memory:, which a restart would lose; start the origin with --ledger PATH".into()
            );
        }
        let mut book = self.book.lock().map_err(|_| "the order book is poisoned".to_string())?;
        // Close the old connection before the new one opens, as a dead process would have.
        book.ledger = Err("restarting".into());
        *book = Book::open(&self.ledger_path, self.seed, self.rate);
        let ledger = book.ledger.as_mut().map_err(|e| e.clone())?;
        let orders_ever = ledger.high_water().map_err(unavailable)?;
        Ok(Restarted { resumed_sales: book.sales.values().filter(|s| !s.drawn).count(), orders_ever })
    }

    /// A signed demo token for `user`, valid [`TOKEN_LIFETIME_MS`] from `now`.
    pub fn login(&self, user: &str, now: f64) -> String {
        let payload = json!({ "sub": user, "exp": (now + TOKEN_LIFETIME_MS).round() as u64 }).to_string();
        let mac = hmac_sha256(&self.secret, payload.as_bytes());
        format!("{}.{}", b64url(payload.as_bytes()), b64url(&mac))
    }

    /// The user a token names, if its signature holds and it has not expired at `now`.
    pub fn verify(&self, token: &str, now: f64) -> Option<String> {
        let (payload, mac) = token.split_once('.')?;
        let (payload, mac) = (unb64url(payload)?, unb64url(mac)?);
        if !same_bytes(&mac, &hmac_sha256(&self.secret, &payload)) {
            return None;
        }
        let claims: Value = serde_json::from_slice(&payload).ok()?;
        let sub = claims.get("sub")?.as_str().filter(|s| !s.is_empty())?;
        let exp = claims.get("exp")?.as_f64()?;
        (now < exp).then(|| sub.to_string())
    }

    /// Looks `user`'s `key` up; holds it as processing if it is new.
    pub fn begin(&self, user: &str, key: &str, intent: &Intent) -> Begin {
        let Ok(mut book) = self.book.lock() else { return Begin::Unavailable("the order book is poisoned".into()) };
        let book = &mut *book;
        let k = (user.to_string(), key.to_string());
        let ledger = match book.ledger.as_mut() {
            Ok(l) => l,
            Err(e) => return Begin::Unavailable(e.clone()),
        };
        match ledger.lookup(user, key, &intent.fingerprint()) {
            Err(e) => Begin::Unavailable(unavailable(e)),
            Ok(Some(Keyed::Answer(a))) => {
                Begin::Replay(StatusCode::from_u16(a.status).unwrap_or(StatusCode::OK), a.body)
            }
            Ok(Some(Keyed::Conflict)) => Begin::Mismatch,
            // The first request's payload is not known until it is stored: a repeat while it
            // is processed is told to retry, whatever its payload.
            Ok(None) if book.in_flight.contains(&k) => Begin::InFlight,
            Ok(None) => {
                book.in_flight.insert(k);
                Begin::New
            }
        }
    }

    /// Lets go of a key held by [`Orders::begin`] without an answer (e.g. not admitted).
    pub fn abandon(&self, user: &str, key: &str) {
        if let Ok(mut book) = self.book.lock() {
            book.in_flight.remove(&(user.to_string(), key.to_string()));
        }
    }

    /// Takes a token from the admission bucket, or says in how many seconds to retry.
    pub fn admit(&self, now: f64) -> Result<(), u64> {
        let Ok(mut book) = self.book.lock() else { return Err(1) };
        let b = &mut book.bucket;
        let elapsed_s = ((now - b.last_ms) / 1000.0).max(0.0);
        b.tokens = (b.tokens + elapsed_s * self.rate).min(self.rate);
        b.last_ms = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            return Ok(());
        }
        Err((((1.0 - b.tokens) / self.rate).ceil() as u64).max(1))
    }

    /// Places a new intent held by [`Orders::begin`] and stores the answer under its key:
    /// 202 with where to follow it, or 422 if it was rejected; 503 if the ledger failed
    /// (nothing is stored then, and the key stays free).
    pub fn place(&self, user: &str, key: &str, intent: Intent, now: f64) -> (StatusCode, String) {
        let Ok(mut book) = self.book.lock() else {
            return (StatusCode::SERVICE_UNAVAILABLE, json!({"error": "order book unavailable"}).to_string());
        };
        let book = &mut *book;
        book.in_flight.remove(&(user.to_string(), key.to_string()));
        match self.place_in(book, user, key, intent, now) {
            Ok(answer) => answer,
            Err(e) => (StatusCode::SERVICE_UNAVAILABLE, json!({ "error": unavailable(e) }).to_string()),
        }
    }

    fn place_in(
        &self,
        book: &mut Book,
        user: &str,
        key: &str,
        intent: Intent,
        now: f64,
    ) -> Result<(StatusCode, String), LedgerError> {
        if now - book.last_forget_ms >= FORGET_EVERY_MS {
            book.last_forget_ms = now;
            book.ledger()?.forget(now - KEEP_MS)?;
        }
        let id = format!("o-{:016x}", book.ids.next());
        let sale = self.sale_for(book, &intent, now)?;
        let (decide, retry_ms) = match &sale {
            Err(reason) => (Decide::Reject(reason.to_string()), 0.0),
            Ok(sale) => {
                self.settle(book, &sale.sale_id, now)?;
                if now < sale.close_ms {
                    (Decide::Enter, (sale.close_ms - now).ceil())
                } else {
                    (Decide::Buy, 0.0)
                }
            }
        };
        let order = NewOrder {
            id: id.clone(),
            user: user.into(),
            key: key.into(),
            payload: intent.fingerprint(),
            sale_id: sale.as_ref().ok().map(|s| s.sale_id.clone()),
            cue_id: intent.cue_id,
            product_id: intent.product_id,
            quantity: intent.quantity,
            received_ms: now,
            shown_at_ms: intent.shown_at_ms,
            tapped_at_ms: intent.tapped_at_ms,
            latency_ms: intent.latency_ms,
        };
        let answer = |o: &crate::ledger::Outcome| {
            if o.status == Status::Rejected {
                let body = json!({"orderId": id, "status": "rejected", "reason": o.reason});
                Answer { status: StatusCode::UNPROCESSABLE_ENTITY.as_u16(), body: body.to_string() }
            } else {
                let body =
                    json!({"orderId": id, "attemptUrl": format!("/orders/{id}"), "retryAfterMs": retry_ms as u64});
                Answer { status: StatusCode::ACCEPTED.as_u16(), body: body.to_string() }
            }
        };
        let answer = match book.ledger()?.place(&order, &decide, &answer)? {
            Placed::New { answer, .. } | Placed::Existing(Keyed::Answer(answer)) => answer,
            Placed::Existing(Keyed::Conflict) => {
                let body = json!({"error": "this Idempotency-Key was used for another order"}).to_string();
                Answer { status: StatusCode::UNPROCESSABLE_ENTITY.as_u16(), body }
            }
        };
        Ok((StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK), answer.body))
    }

    /// The sale an intent is for (opened on the cue's first order), or why it is rejected.
    fn sale_for(
        &self,
        book: &mut Book,
        intent: &Intent,
        now: f64,
    ) -> Result<Result<SaleRow, &'static str>, LedgerError> {
        let sale = match self.cues.find(&intent.cue_id) {
            Some(c) => {
                let open_ms = c.capture_ms;
                let display_ms = c.capture_ms + c.target_latency_ms.map_or(DEFAULT_DISPLAY_DELAY_MS, f64::from);
                match book.sale(&sale_key(&c.id, open_ms))? {
                    Some(s) => s,
                    None => {
                        if c.product_id != intent.product_id {
                            return Ok(Err("productId is not the cue's product"));
                        }
                        if now < open_ms {
                            return Ok(Err("the cue was not shown yet"));
                        }
                        let new = SaleRow {
                            sale_id: sale_key(&c.id, open_ms),
                            cue_id: c.id.clone(),
                            product_id: c.product_id.clone(),
                            stock: c.stock,
                            left: c.stock,
                            open_ms,
                            close_ms: display_ms + self.fair_window_ms,
                            drawn: false,
                        };
                        let stored = book.ledger()?.open_sale(&new)?;
                        book.sales.insert(stored.sale_id.clone(), stored.clone());
                        stored
                    }
                }
            }
            // Cues are not kept: after the origin started again, a sale goes on from the
            // ledger alone.
            None => match book.latest_sale(&intent.cue_id)? {
                Some(s) => s,
                None => return Ok(Err("unknown cue")),
            },
        };
        if sale.product_id != intent.product_id {
            return Ok(Err("productId is not the cue's product"));
        }
        if now < sale.open_ms {
            return Ok(Err("the cue was not shown yet"));
        }
        Ok(Ok(sale))
    }

    /// Once the window of the sale `sale_id` has closed, draws the winners among its pending
    /// entrants: one ticket per user (their first entrant), shuffled uniformly, then the
    /// users' other entrants in arrival order; logs the draw to stderr as one line.
    fn settle(&self, book: &mut Book, sale_id: &str, now: f64) -> Result<(), LedgerError> {
        let Some(sale) = book.sale(sale_id)? else { return Ok(()) };
        if sale.drawn || now < sale.close_ms {
            return Ok(());
        }
        let entrants = book.ledger()?.entrants(sale_id)?;
        let mut seen = HashSet::new();
        let (mut tickets, mut others) = (Vec::new(), Vec::new());
        for e in &entrants {
            if seen.insert(e.user.as_str()) {
                tickets.push(e.order_id.clone());
            } else {
                others.push(e.order_id.clone());
            }
        }
        let seed = draw_seed(self.seed, &sale.cue_id);
        Rng(seed).shuffle(&mut tickets);
        tickets.extend(others);
        let record = DrawRecord {
            sale_id: sale_id.into(),
            seed,
            at_ms: now,
            entrants: entrants.into_iter().map(|e| e.order_id).collect(),
            drawn: tickets,
            winners: Vec::new(),
        };
        let record = book.ledger()?.draw(&record)?;
        if let Some(s) = book.sales.get_mut(sale_id) {
            s.drawn = true;
        }
        eprintln!("origin: {}", draw_line(&sale, &record));
        Ok(())
    }

    /// Makes every draw that is due (see [`settle_loop`]).
    pub fn settle_due(&self, now: f64) {
        let Ok(mut book) = self.book.lock() else { return };
        let due: Vec<String> =
            book.sales.values().filter(|s| !s.drawn && now >= s.close_ms).map(|s| s.sale_id.clone()).collect();
        for cue in due {
            if let Err(e) = self.settle(&mut book, &cue, now) {
                unavailable(e);
            }
        }
    }

    /// `user`'s order `id` as JSON (its sale settled first), and while it is pending, in how
    /// many ms to ask again; `Ok(None)` if there is no such order of theirs.
    pub fn view(&self, user: &str, id: &str, now: f64) -> Result<Option<(Value, Option<f64>)>, String> {
        let mut book = self.book.lock().map_err(|_| "the order book is poisoned".to_string())?;
        let book = &mut *book;
        let found = (|| {
            let Some(o) = book.ledger()?.order(id)?.filter(|o| o.user == user) else { return Ok(None) };
            if o.status != Status::Pending {
                return Ok(Some((describe(&o, None), None)));
            }
            let Some(sale_id) = o.sale_id.clone() else { return Ok(Some((describe(&o, None), None))) };
            self.settle(book, &sale_id, now)?;
            let o = book.ledger()?.order(id)?.unwrap_or(o);
            let sale = book.sale(&sale_id)?;
            let retry = sale.map(|s| (s.close_ms - now).max(0.0).ceil()).filter(|_| o.status == Status::Pending);
            Ok(Some((describe(&o, retry), retry)))
        })();
        found.map_err(|e: LedgerError| unavailable(e))
    }

    /// `user`'s order under the Idempotency-Key `key`, as [`view`](Self::view) shows it.
    pub fn view_by_key(&self, user: &str, key: &str, now: f64) -> Result<Option<(Value, Option<f64>)>, String> {
        let id = {
            let mut book = self.book.lock().map_err(|_| "the order book is poisoned".to_string())?;
            let found = book.ledger().and_then(|l| l.order_by_key(user, key));
            found.map_err(unavailable)?.map(|o| o.id)
        };
        match id {
            Some(id) => self.view(user, &id, now),
            None => Ok(None),
        }
    }

    /// Cancels `user`'s pending or won order (a won order's units go back on sale).
    pub fn cancel(&self, user: &str, id: &str, now: f64) -> Result<Result<Value, CancelError>, String> {
        let mut book = self.book.lock().map_err(|_| "the order book is poisoned".to_string())?;
        let book = &mut *book;
        let done = (|| {
            let Some(o) = book.ledger()?.order(id)?.filter(|o| o.user == user) else {
                return Ok(Err(CancelError::NotFound));
            };
            if let Some(sale_id) = &o.sale_id {
                self.settle(book, sale_id, now)?;
            }
            Ok(book.ledger()?.cancel(user, id, now)?.map(|o| describe(&o, None)))
        })();
        done.map_err(|e: LedgerError| unavailable(e))
    }

    /// `GET /admin/sales`: every sale with its counts, window and draw (the lists of order IDs
    /// only if `lists`), and the traffic counters. Due draws are made first.
    pub fn summary(&self, now: f64, lists: bool) -> Result<Value, String> {
        self.settle_due(now);
        let mut book = self.book.lock().map_err(|_| "the order book is poisoned".to_string())?;
        let sales = book.ledger().and_then(|l| l.summary()).map_err(unavailable)?;
        let ids = |v: &[String]| if lists { json!(v) } else { Value::Null };
        let sales: Vec<Value> = sales
            .iter()
            .map(|s| {
                let draw = s.draw.as_ref().map(|d| {
                    json!({
                        "seed": d.seed.to_string(),
                        "atMs": d.at_ms.round() as u64,
                        "entrantCount": d.entrants.len(),
                        "winnerCount": d.winners.len(),
                        "entrants": ids(&d.entrants),
                        "drawn": ids(&d.drawn),
                        "winners": ids(&d.winners),
                    })
                });
                json!({
                    "saleId": s.sale.sale_id,
                    "cueId": s.sale.cue_id,
                    "productId": s.sale.product_id,
                    "stock": s.sale.stock,
                    "left": s.sale.left,
                    "attempts": s.attempts,
                    "intents": s.intents,
                    "pending": s.pending,
                    "won": s.won,
                    "lost": s.lost,
                    "soldOut": s.sold_out,
                    "rejected": s.rejected,
                    "cancelled": s.cancelled,
                    "window": {"openMs": s.sale.open_ms.round() as u64, "closeMs": s.sale.close_ms.round() as u64},
                    "drawn": s.sale.drawn,
                    "draw": draw,
                })
            })
            .collect();
        Ok(json!({
            "nowMs": now.round() as u64,
            "ledger": self.ledger_path.to_string(),
            "sales": sales,
            "requests": self.traffic.counters(),
            "faults": self.traffic.faults(),
        }))
    }
}

impl Book {
    fn open(path: &LedgerPath, seed: u64, rate: f64) -> Book {
        let mut book = Book {
            ledger: Err("not open".into()),
            sales: HashMap::new(),
            in_flight: HashSet::new(),
            ids: Rng(seed ^ ID_SEED_SALT),
            bucket: Bucket { tokens: rate, last_ms: f64::NEG_INFINITY },
            last_forget_ms: f64::NEG_INFINITY,
        };
        let opened = SqliteLedger::open(path).map(|l| Box::new(l) as Box<dyn Ledger>).and_then(|mut l| {
            // The sales still to draw: their windows are what the draw loop watches.
            for s in l.undrawn_sales()? {
                book.sales.insert(s.sale_id.clone(), s);
            }
            // Order IDs go on from where the ledger is, not from the seed's first numbers
            // again (the same --order-seed after a restart would repeat them).
            book.ids = Rng(seed ^ ID_SEED_SALT ^ l.high_water()?.wrapping_mul(0x9e37_79b9_7f4a_7c15));
            Ok(l)
        });
        book.ledger = opened.map_err(|e| format!("cannot open the order ledger {path}: {e}"));
        book
    }

    fn ledger(&mut self) -> Result<&mut Box<dyn Ledger>, LedgerError> {
        self.ledger.as_mut().map_err(|e| LedgerError::Corrupt(e.clone()))
    }

    /// The sale `sale_id`, from the cache or the ledger.
    fn sale(&mut self, sale_id: &str) -> Result<Option<SaleRow>, LedgerError> {
        if let Some(s) = self.sales.get(sale_id) {
            return Ok(Some(s.clone()));
        }
        let found = self.ledger()?.sale(sale_id)?;
        if let Some(s) = &found {
            self.sales.insert(sale_id.into(), s.clone());
        }
        Ok(found)
    }

    /// The latest sale on the cue `cue_id`, from the ledger (the cache is by sale).
    fn latest_sale(&mut self, cue_id: &str) -> Result<Option<SaleRow>, LedgerError> {
        let found = self.ledger()?.latest_sale(cue_id)?;
        if let Some(s) = &found {
            if let Some(cached) = self.sales.get(&s.sale_id) {
                return Ok(Some(cached.clone()));
            }
            self.sales.insert(s.sale_id.clone(), s.clone());
        }
        Ok(found)
    }
}

/// The key of the sale on a cue: its ID and START-DATE, since an origin started afresh
/// numbers its cues from `cue-1` again.
fn sale_key(cue_id: &str, open_ms: f64) -> String {
    format!("{cue_id}@{}", open_ms.round() as i64)
}

/// The seed of the draw on `cue_id`: fixed by the order seed and the cue ID (not by when the
/// cue was shown, so a rerun with `--order-seed` replays it), and a draw made after a restart
/// is the one that would have been made without it.
fn draw_seed(seed: u64, cue_id: &str) -> u64 {
    // FNV-1a over the cue ID, then one splitmix step.
    let h = cue_id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    Rng(seed ^ h).next()
}

/// The audit line of a draw: everything needed to redo it.
fn draw_line(sale: &SaleRow, d: &DrawRecord) -> String {
    format!(
        "draw sale={} cue={} product={} stock={} window={}..{} seed={} entrants={} drawn={} winners={}",
        d.sale_id,
        sale.cue_id,
        sale.product_id,
        sale.stock,
        sale.open_ms.round() as u64,
        sale.close_ms.round() as u64,
        d.seed,
        d.entrants.join(","),
        d.drawn.join(","),
        d.winners.join(",")
    )
}

/// Makes due draws every [`SETTLE_EVERY`], so a sale is drawn (and its draw logged) when its
/// window closes even if nobody asks.
pub async fn settle_loop(orders: Arc<Orders>) {
    let mut tick = tokio::time::interval(SETTLE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        orders.settle_due(orders.now_ms());
    }
}

fn describe(o: &OrderRow, retry_ms: Option<f64>) -> Value {
    let mut v = json!({
        "orderId": o.id,
        "status": o.status.as_str(),
        "cueId": o.cue_id,
        "productId": o.product_id,
        "quantity": o.quantity,
        "attempts": o.attempts,
        "receivedAtMs": o.received_ms.round() as u64,
    });
    let extra = [
        ("decidedAtMs", o.decided_ms.map(|ms| Value::from(ms.round() as u64))),
        ("reason", o.reason.clone().map(Value::from)),
        ("retryAfterMs", retry_ms.map(|ms| Value::from(ms as u64))),
        ("shownAtMs", o.shown_at_ms.map(Value::from)),
        ("tappedAtMs", o.tapped_at_ms.map(Value::from)),
        ("latencyMs", o.latency_ms.map(Value::from)),
    ];
    if let Some(map) = v.as_object_mut() {
        for (name, value) in extra {
            if let Some(value) = value {
                map.insert(name.into(), value);
            }
        }
    }
    v
}

// ---- HTTP ----

/// The order routes, every answer stamped with `X-Server-Time`, the `/orders*` ones counted and
/// through the fault knobs.
pub fn routes(orders: Arc<Orders>) -> Router {
    let stamp = middleware::from_fn_with_state(orders.clone(), server_time);
    let traffic = middleware::from_fn_with_state(orders.clone(), crate::faults::knobs);
    // A storefront on another origin sends Authorization and Idempotency-Key, which a wildcard
    // does not allow, and reads X-Server-Time and Retry-After, which it must be allowed to.
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::GET, Method::POST, Method::DELETE])
        .allow_headers(AllowHeaders::mirror_request())
        .expose_headers([HeaderName::from_static(SERVER_TIME), header::RETRY_AFTER])
        .max_age(std::time::Duration::from_secs(600));
    let orders_only = Router::new()
        .route("/orders", post(post_order).get(find_order))
        .route("/orders/{id}", get(get_order).delete(delete_order))
        .route_layer(traffic);
    Router::new()
        .route("/demo/login", post(login))
        .merge(orders_only)
        .layer(DefaultBodyLimit::max(16 * 1024))
        .layer(cors)
        .layer(stamp)
        .with_state(orders)
}

/// The host's routes (`http` puts them behind the admin token): `GET /admin/sales`,
/// `GET|POST /admin/faults`, `POST /admin/orders/restart`.
pub fn admin_routes(orders: Arc<Orders>) -> Router {
    Router::new()
        .route("/admin/sales", get(get_sales))
        .route("/admin/faults", get(get_faults).post(post_faults))
        .route("/admin/orders/restart", post(restart))
        .layer(DefaultBodyLimit::max(4 * 1024))
        .with_state(orders)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SalesQuery {
    /// `false` leaves out the draws' lists of order IDs (the counts stay).
    lists: Option<bool>,
}

/// `GET /admin/sales[?lists=false]`: see [`Orders::summary`].
async fn get_sales(
    State(orders): State<Arc<Orders>>,
    query: Result<Query<SalesQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let lists = match query {
        Ok(Query(q)) => q.lists.unwrap_or(true),
        Err(e) => return error(StatusCode::BAD_REQUEST, &format!("query: {e}")),
    };
    match orders.summary(orders.now_ms(), lists) {
        Ok(v) => answer(StatusCode::OK, v.to_string()),
        Err(msg) => error(StatusCode::SERVICE_UNAVAILABLE, &msg),
    }
}

/// `GET /admin/faults`: the knobs now.
async fn get_faults(State(orders): State<Arc<Orders>>) -> Response {
    answer(StatusCode::OK, orders.traffic.faults().to_string())
}

/// `POST /admin/faults`: sets the knobs given (the others keep their value); 200 with them all.
async fn post_faults(State(orders): State<Arc<Orders>>, body: Bytes) -> Response {
    match orders.traffic.set_faults(&body) {
        Ok(v) => answer(StatusCode::OK, v.to_string()),
        Err(msg) => error(StatusCode::BAD_REQUEST, &msg),
    }
}

/// `POST /admin/orders/restart`: see [`Orders::restart`]; 200
/// `{"restarted": true, "resumedSales", "ordersEver", "ledger"}`, 409 for a `:memory:` ledger,
/// 503 if it cannot be reopened.
async fn restart(State(orders): State<Arc<Orders>>) -> Response {
    if *orders.ledger_path() == LedgerPath::Memory {
        return error(
            StatusCode::CONFLICT,
            "the ledger is :memory:, which a restart would lose; start the origin with --ledger PATH",
        );
    }
    match orders.restart() {
        Ok(r) => {
            eprintln!("origin: order service restarted on {}: {} sales to draw", orders.ledger_path(), r.resumed_sales);
            let body = json!({"restarted": true, "resumedSales": r.resumed_sales, "ordersEver": r.orders_ever,
                "ledger": orders.ledger_path().to_string()});
            answer(StatusCode::OK, body.to_string())
        }
        Err(msg) => error(StatusCode::SERVICE_UNAVAILABLE, &msg),
    }
}

async fn server_time(State(orders): State<Arc<Orders>>, req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let now = format!("{}", orders.now_ms().round() as i64);
    if let Ok(v) = HeaderValue::from_str(&now) {
        res.headers_mut().insert(HeaderName::from_static(SERVER_TIME), v);
    }
    res
}

pub(crate) fn answer(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json"), (header::CACHE_CONTROL, "no-store")], body).into_response()
}

pub(crate) fn error(status: StatusCode, msg: &str) -> Response {
    answer(status, json!({ "error": msg }).to_string())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Login {
    user_id: String,
}

/// `POST /demo/login` `{"userId":"..."}`: 200 `{"token","userId","expiresAtMs"}`.
async fn login(State(orders): State<Arc<Orders>>, body: Bytes) -> Response {
    let req: Login = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, &format!("not a login: {e}")),
    };
    let user = req.user_id;
    if user.is_empty() || user.chars().count() > MAX_USER_ID || user.chars().any(char::is_control) {
        return error(StatusCode::BAD_REQUEST, &format!("userId must be 1-{MAX_USER_ID} characters"));
    }
    let now = orders.now_ms();
    let token = orders.login(&user, now);
    let body = json!({"token": token, "userId": user, "expiresAtMs": (now + TOKEN_LIFETIME_MS).round() as u64});
    answer(StatusCode::OK, body.to_string())
}

/// The user of a valid `Authorization: Bearer <token>`, or the 401 answer.
fn user_of(orders: &Orders, headers: &HeaderMap) -> Result<String, Box<Response>> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim());
    match token.and_then(|t| orders.verify(t, orders.now_ms())) {
        Some(user) => Ok(user),
        None => {
            let mut res = error(StatusCode::UNAUTHORIZED, "orders need Authorization: Bearer <a valid user token>");
            res.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            Err(Box::new(res))
        }
    }
}

/// 1-255 printable ASCII characters.
fn idempotency_key(headers: &HeaderMap) -> Option<String> {
    let key = headers.get("idempotency-key")?.to_str().ok()?;
    let ok = !key.is_empty() && key.len() <= MAX_KEY && key.bytes().all(|b| (0x20..0x7f).contains(&b));
    ok.then(|| key.to_string())
}

async fn post_order(State(orders): State<Arc<Orders>>, headers: HeaderMap, body: Bytes) -> Response {
    let user = match user_of(&orders, &headers) {
        Ok(u) => u,
        Err(res) => return *res,
    };
    let Some(key) = idempotency_key(&headers) else {
        return error(
            StatusCode::BAD_REQUEST,
            "an Idempotency-Key header of 1-255 printable ASCII characters is needed",
        );
    };
    let intent: Intent = match serde_json::from_slice(&body) {
        Ok(i) => i,
        Err(e) => return error(StatusCode::BAD_REQUEST, &format!("not an order: {e}")),
    };
    if let Err(msg) = intent.check() {
        return error(StatusCode::BAD_REQUEST, &msg);
    }
    match orders.begin(&user, &key, &intent) {
        Begin::New => {}
        Begin::Replay(status, body) => return answer(status, body),
        Begin::InFlight => {
            return error(StatusCode::CONFLICT, "a request with this Idempotency-Key is still being processed")
        }
        Begin::Mismatch => {
            return error(StatusCode::UNPROCESSABLE_ENTITY, "this Idempotency-Key was used for another order")
        }
        Begin::Unavailable(msg) => return error(StatusCode::SERVICE_UNAVAILABLE, &msg),
    }
    let now = orders.now_ms();
    if let Err(retry_s) = orders.admit(now) {
        orders.abandon(&user, &key);
        let mut res = error(StatusCode::TOO_MANY_REQUESTS, "too many orders: retry after Retry-After seconds");
        res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_s));
        return res;
    }
    let (status, body) = orders.place(&user, &key, intent, now);
    answer(status, body)
}

async fn get_order(State(orders): State<Arc<Orders>>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let user = match user_of(&orders, &headers) {
        Ok(u) => u,
        Err(res) => return *res,
    };
    show(orders.view(&user, &id, orders.now_ms()), "no such order")
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ByKey {
    key: String,
}

/// `GET /orders?key=<Idempotency-Key>`: the caller's order under that key, for a client whose
/// POST went unanswered (404: the server never took it, POST again).
async fn find_order(
    State(orders): State<Arc<Orders>>,
    headers: HeaderMap,
    query: Result<Query<ByKey>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let user = match user_of(&orders, &headers) {
        Ok(u) => u,
        Err(res) => return *res,
    };
    let Some(Query(ByKey { key })) = query.ok().filter(|q| !q.key.is_empty() && q.key.len() <= MAX_KEY) else {
        return error(StatusCode::BAD_REQUEST, "GET /orders needs ?key=<Idempotency-Key>");
    };
    show(orders.view_by_key(&user, &key, orders.now_ms()), "no order under this key")
}

/// An order as `GET` shows it, `Retry-After` while it is pending.
fn show(found: Result<Option<(Value, Option<f64>)>, String>, missing: &str) -> Response {
    let (view, retry_ms) = match found {
        Ok(Some(found)) => found,
        Ok(None) => return error(StatusCode::NOT_FOUND, missing),
        Err(msg) => return error(StatusCode::SERVICE_UNAVAILABLE, &msg),
    };
    let mut res = answer(StatusCode::OK, view.to_string());
    if let Some(ms) = retry_ms {
        let s = ((ms / 1000.0).ceil() as u64).max(1);
        res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(s));
    }
    res
}

async fn delete_order(State(orders): State<Arc<Orders>>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let user = match user_of(&orders, &headers) {
        Ok(u) => u,
        Err(res) => return *res,
    };
    match orders.cancel(&user, &id, orders.now_ms()) {
        Ok(Ok(view)) => answer(StatusCode::OK, view.to_string()),
        Err(msg) => error(StatusCode::SERVICE_UNAVAILABLE, &msg),
        Ok(Err(CancelError::NotFound)) => error(StatusCode::NOT_FOUND, "no such order"),
        Ok(Err(CancelError::Final(s))) => {
            error(StatusCode::CONFLICT, &format!("the order is {}: it cannot be cancelled", s.as_str()))
        }
    }
}

// ---- Primitives: SHA-256, HMAC, base64url, a seeded generator ----

/// splitmix64: small, fast and statistically sound for a draw (not for secrets).
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (rejection, no modulo bias).
    fn below(&mut self, n: u64) -> u64 {
        let zone = (u64::MAX / n) * n;
        loop {
            let v = self.next();
            if v < zone {
                return v % n;
            }
        }
    }

    /// Fisher-Yates: every order equally likely.
    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }
}

fn random_bytes<const N: usize>() -> [u8; N] {
    use std::io::Read;
    let mut bytes = [0u8; N];
    if std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes)).is_err() {
        // No /dev/urandom: the time and address space are better than nothing.
        let mut r = Rng(crate::source::wall_clock_ms().to_bits() ^ (&bytes as *const _ as u64));
        for b in bytes.iter_mut() {
            *b = r.next() as u8;
        }
    }
    bytes
}

const K: [u32; 64] = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98,
    0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
    0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8,
    0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
    0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819,
    0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
    0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
    0xc67178f2,
];

/// SHA-256 (FIPS 180-4).
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let mut h: [u32; 8] =
        [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];
    let mut msg = data.to_vec();
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&((data.len() as u64).wrapping_mul(8)).to_be_bytes());
    for block in msg.chunks_exact(64) {
        let mut w = [0u32; 64];
        for (i, word) in block.chunks_exact(4).enumerate() {
            w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for i in 16..64 {
            let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
            let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16].wrapping_add(s0).wrapping_add(w[i - 7]).wrapping_add(s1);
        }
        let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut hh] = h;
        for i in 0..64 {
            let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
            let ch = (e & f) ^ (!e & g);
            let t1 = hh.wrapping_add(s1).wrapping_add(ch).wrapping_add(K[i]).wrapping_add(w[i]);
            let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
            let maj = (a & b) ^ (a & c) ^ (b & c);
            let t2 = s0.wrapping_add(maj);
            hh = g;
            g = f;
            f = e;
            e = d.wrapping_add(t1);
            d = c;
            c = b;
            b = a;
            a = t1.wrapping_add(t2);
        }
        for (x, y) in h.iter_mut().zip([a, b, c, d, e, f, g, hh]) {
            *x = x.wrapping_add(y);
        }
    }
    let mut out = [0u8; 32];
    for (chunk, word) in out.chunks_exact_mut(4).zip(h) {
        chunk.copy_from_slice(&word.to_be_bytes());
    }
    out
}

/// HMAC-SHA256 (RFC 2104).
pub fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&sha256(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut inner: Vec<u8> = k.iter().map(|b| b ^ 0x36).collect();
    inner.extend_from_slice(data);
    let mut outer: Vec<u8> = k.iter().map(|b| b ^ 0x5c).collect();
    outer.extend_from_slice(&sha256(&inner));
    sha256(&outer)
}

/// Compares without stopping at the first difference.
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

const B64URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// base64url without padding (RFC 4648 §5).
pub fn b64url(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, &b)| n | (u32::from(b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(B64URL[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

/// The inverse of [`b64url`]; `None` for anything else (padding, other alphabets, stray bits).
pub fn unb64url(text: &str) -> Option<Vec<u8>> {
    if text.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    for chunk in text.as_bytes().chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            let v = B64URL.iter().position(|&x| x == c)? as u32;
            n |= v << (18 - 6 * i);
        }
        let bytes = chunk.len() - 1;
        let full = n.to_be_bytes();
        // Bits beyond the last whole byte must be zero (one encoding per value).
        if bytes < 3 && n & (0xff_ffff >> (8 * bytes)) != 0 {
            return None;
        }
        out.extend_from_slice(&full[1..=bytes]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cues::CueRequest;
    use crate::encoder::{Live, Settings};
    use crate::source::Format;
    use axum::body::Body;
    use tower::ServiceExt;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn sha256_hmac_and_base64url_match_their_published_vectors() {
        assert_eq!(hex(&sha256(b"abc")), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!(hex(&sha256(b"")), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        let long = b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
        assert_eq!(hex(&sha256(long)), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
        // RFC 4231, cases 2 and 6 (a key longer than a block).
        assert_eq!(
            hex(&hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            hex(&hmac_sha256(&[0xaa; 131], b"Test Using Larger Than Block-Size Key - Hash Key First")),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
        for (plain, coded) in
            [("", ""), ("f", "Zg"), ("fo", "Zm8"), ("foo", "Zm9v"), ("foob", "Zm9vYg"), ("\u{fb}\u{ff}", "w7vDvw")]
        {
            assert_eq!(b64url(plain.as_bytes()), coded);
            assert_eq!(unb64url(coded).unwrap(), plain.as_bytes());
        }
        for bad in ["Zg==", "Z", "Zh", "Zm9v+", "Zm/v"] {
            assert_eq!(unb64url(bad), None, "{bad}");
        }
    }

    fn orders_with(settings: OrderSettings) -> (Orders, Arc<Cues>) {
        let cues = Arc::new(Cues::new(Clock::default(), None));
        (Orders::new(settings, Clock::default(), cues.clone()), cues)
    }

    #[test]
    fn a_login_token_verifies_until_it_expires_and_not_once_tampered_with() {
        let (orders, _) = orders_with(OrderSettings { token_secret: Some(b"s3cret".to_vec()), ..Default::default() });
        let now = 1_796_191_200_000.0;
        let token = orders.login("alice", now);
        assert_eq!(orders.verify(&token, now), Some("alice".into()));
        assert_eq!(orders.verify(&token, now + TOKEN_LIFETIME_MS - 1.0), Some("alice".into()));
        assert_eq!(orders.verify(&token, now + TOKEN_LIFETIME_MS), None, "expired");
        // The documented form: base64url(payload).base64url(hmac_sha256(secret, payload)).
        let (payload, mac) = token.split_once('.').unwrap();
        let json = unb64url(payload).unwrap();
        assert_eq!(String::from_utf8(json.clone()).unwrap(), r#"{"exp":1796234400000,"sub":"alice"}"#);
        assert_eq!(unb64url(mac).unwrap(), hmac_sha256(b"s3cret", &json));
        // Another user's name under alice's signature, a flipped signature, another secret.
        let mallory = b64url(br#"{"exp":1796234400000,"sub":"mallory"}"#);
        let mut flipped = unb64url(mac).unwrap();
        flipped[0] ^= 1;
        let (other, _) = orders_with(OrderSettings { token_secret: Some(b"other".to_vec()), ..Default::default() });
        let forged = b64url(br#"{"exp":1896234400000,"sub":"alice"}"#);
        for bad in [
            format!("{mallory}.{mac}"),
            format!("{payload}.{}", b64url(&flipped)),
            format!("{forged}.{mac}"),
            format!("{payload}{mac}"),
            format!("{payload}.{mac}="),
            String::new(),
        ] {
            assert_eq!(orders.verify(&bad, now), None, "{bad}");
        }
        assert_eq!(other.verify(&token, now), None);
    }

    /// A cue shown (no shared target: START-DATE + 1.5 s) at `shown_ms` of the real clock.
    fn sale(cues: &Cues, id: &str, stock: u32, shown_ms: f64) -> f64 {
        let req = CueRequest {
            product_id: "sku-1".into(),
            title: "Red kettle".into(),
            price_cents: 1999,
            currency: "EUR".into(),
            url: "https://shop.example/p/1".into(),
            image_url: "https://shop.example/i/1.jpg".into(),
            countdown_s: None,
            duration_s: Some(3600.0),
            capture_ms: Some(shown_ms - DEFAULT_DISPLAY_DELAY_MS),
            id: Some(id.into()),
            stock: Some(stock),
        };
        cues.publish(req).unwrap().capture_ms + DEFAULT_DISPLAY_DELAY_MS
    }

    fn intent(cue: &str, quantity: u32) -> Intent {
        Intent {
            cue_id: cue.into(),
            product_id: "sku-1".into(),
            quantity,
            shown_at_ms: None,
            tapped_at_ms: None,
            latency_ms: None,
        }
    }

    /// Places `user`'s intent at `now` and answers its order ID.
    fn tap(orders: &Orders, user: &str, cue: &str, quantity: u32, now: f64) -> String {
        let i = intent(cue, quantity);
        assert_eq!(orders.begin(user, user, &i), Begin::New);
        let (status, body) = orders.place(user, user, i, now);
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        serde_json::from_str::<Value>(&body).unwrap()["orderId"].as_str().unwrap().to_string()
    }

    fn status_of(orders: &Orders, user: &str, id: &str, now: f64) -> String {
        orders.view(user, id, now).unwrap().unwrap().0["status"].as_str().unwrap().to_string()
    }

    #[test]
    fn a_hundred_users_tapping_within_the_window_win_with_equal_chances_whatever_their_arrival_order() {
        let runs = 200;
        let (mut early, mut total) = (0u32, 0u32);
        for seed in 0..runs {
            let (orders, cues) = orders_with(OrderSettings { seed: Some(seed), ..Default::default() });
            let shown = sale(&cues, "flash", 10, crate::source::wall_clock_ms());
            // Arrivals spread over the window, in the same order every run.
            let ids: Vec<String> =
                (0..100).map(|u| tap(&orders, &format!("user-{u}"), "flash", 1, shown + f64::from(u) * 29.0)).collect();
            let close = shown + f64::from(DEFAULT_FAIR_WINDOW_MS);
            assert_eq!(status_of(&orders, "user-99", &ids[99], close - 1.0), "pending");
            let won: Vec<usize> = (0..100)
                .filter(|&u| {
                    let s = status_of(&orders, &format!("user-{u}"), &ids[u], close);
                    assert!(s == "won" || s == "lost", "{s}");
                    s == "won"
                })
                .collect();
            assert_eq!(won.len(), 10, "exactly the stock wins");
            early += won.iter().filter(|&&u| u < 50).count() as u32;
            total += won.len() as u32;
        }
        let share = f64::from(early) / f64::from(total);
        assert!((0.4..=0.6).contains(&share), "the first half of arrivals won {share:.3} of the draws");
    }

    #[test]
    fn the_same_seed_draws_the_same_winners() {
        let winners = |seed| {
            let (orders, cues) = orders_with(OrderSettings { seed: Some(seed), ..Default::default() });
            let shown = sale(&cues, "flash", 3, crate::source::wall_clock_ms());
            let ids: Vec<String> = (0..20).map(|u| tap(&orders, &format!("u{u}"), "flash", 1, shown + 1.0)).collect();
            let close = shown + f64::from(DEFAULT_FAIR_WINDOW_MS);
            (0..20).filter(|&u| status_of(&orders, &format!("u{u}"), &ids[u], close) == "won").collect::<Vec<_>>()
        };
        assert_eq!(winners(7), winners(7));
        assert!((0..5).any(|s| winners(s) != winners(7)));
    }

    #[test]
    fn after_the_window_attempts_win_first_come_first_served_until_sold_out() {
        let (orders, cues) = orders_with(OrderSettings { seed: Some(1), ..Default::default() });
        let shown = sale(&cues, "flash", 5, crate::source::wall_clock_ms());
        let close = shown + f64::from(DEFAULT_FAIR_WINDOW_MS);
        let a = tap(&orders, "a", "flash", 2, shown + 100.0);
        // The draw happens once the window has closed, with the first request after it.
        let b = tap(&orders, "b", "flash", 2, close);
        assert_eq!(status_of(&orders, "a", &a, close), "won");
        assert_eq!(status_of(&orders, "b", &b, close), "won");
        let c = tap(&orders, "c", "flash", 2, close + 10.0);
        assert_eq!(status_of(&orders, "c", &c, close + 10.0), "sold_out", "one left, two asked");
        let d = tap(&orders, "d", "flash", 1, close + 20.0);
        assert_eq!(status_of(&orders, "d", &d, close + 20.0), "won");
        // A cancelled win puts its units back on sale.
        assert_eq!(orders.cancel("a", &a, close + 30.0).unwrap().unwrap()["status"], "cancelled");
        assert_eq!(orders.cancel("a", &a, close + 30.0), Ok(Err(CancelError::Final(Status::Cancelled))));
        let e = tap(&orders, "e", "flash", 2, close + 40.0);
        assert_eq!(status_of(&orders, "e", &e, close + 40.0), "won");
        assert_eq!(orders.cancel("c", &c, close + 50.0), Ok(Err(CancelError::Final(Status::SoldOut))));
    }

    #[test]
    fn a_pending_order_cancelled_before_the_draw_takes_no_stock() {
        let (orders, cues) = orders_with(OrderSettings { seed: Some(3), ..Default::default() });
        let shown = sale(&cues, "flash", 1, crate::source::wall_clock_ms());
        let a = tap(&orders, "a", "flash", 1, shown);
        let b = tap(&orders, "b", "flash", 1, shown + 1.0);
        assert_eq!(orders.cancel("a", &a, shown + 2.0).unwrap().unwrap()["status"], "cancelled");
        let close = shown + f64::from(DEFAULT_FAIR_WINDOW_MS);
        assert_eq!(status_of(&orders, "b", &b, close), "won");
        assert_eq!(status_of(&orders, "a", &a, close), "cancelled");
    }

    #[test]
    fn the_admission_bucket_refills_at_the_order_rate() {
        let (orders, _) = orders_with(OrderSettings { rate: 2, ..Default::default() });
        assert_eq!(orders.admit(0.0), Ok(()));
        assert_eq!(orders.admit(1.0), Ok(()));
        assert_eq!(orders.admit(2.0), Err(1));
        assert_eq!(orders.admit(502.0), Ok(()));
        assert_eq!(orders.admit(503.0), Err(1));
    }

    // ---- Over HTTP ----

    struct App {
        live: Arc<Live>,
        app: Router,
    }

    const HOST: &str = "Bearer host-secret";

    fn app(orders: OrderSettings) -> App {
        app_with(Settings { orders, ..Settings::default() })
    }

    fn app_with(settings: Settings) -> App {
        let live = Live::new(Vec::new(), Format { width: 640, height: 360, fps: 30 }, settings);
        let nowhere = std::path::PathBuf::from("/nonexistent");
        let dirs =
            crate::http::Dirs { www: nowhere.clone(), pkg: nowhere.clone(), vendor: nowhere.clone(), traces: nowhere };
        App { app: crate::http::router(live.clone(), dirs, "host-secret"), live }
    }

    struct Answer {
        status: StatusCode,
        headers: HeaderMap,
        body: String,
    }

    impl Answer {
        fn json(&self) -> Value {
            serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
        }
    }

    impl App {
        async fn call(&self, method: &str, uri: &str, headers: &[(&str, &str)], body: &str) -> Answer {
            let mut req = Request::builder().method(method).uri(uri).header(header::CONTENT_TYPE, "application/json");
            for (k, v) in headers {
                req = req.header(*k, *v);
            }
            let res = self.app.clone().oneshot(req.body(Body::from(body.to_string())).unwrap()).await.unwrap();
            let status = res.status();
            let headers = res.headers().clone();
            let body = axum::body::to_bytes(res.into_body(), 1 << 20).await.unwrap();
            Answer { status, headers, body: String::from_utf8_lossy(&body).into_owned() }
        }

        async fn login(&self, user: &str) -> String {
            let a = self.call("POST", "/demo/login", &[], &format!(r#"{{"userId":"{user}"}}"#)).await;
            assert_eq!(a.status, StatusCode::OK, "{}", a.body);
            format!("Bearer {}", a.json()["token"].as_str().unwrap())
        }

        /// A cue shown `ago_ms` ago (no shared target), with `stock`.
        async fn cue(&self, id: &str, stock: u32, ago_ms: f64) {
            // 5 ms more: START-DATE carries whole ms, so a cue shown "just now" could round to
            // a moment after the order that follows it.
            let capture = self.live.clock.now_ms() - DEFAULT_DISPLAY_DELAY_MS - ago_ms - 5.0;
            let body = format!(
                r#"{{"productId":"sku-1","title":"Red kettle","priceCents":1999,"currency":"EUR",
                "url":"https://shop.example/p/1","imageUrl":"https://shop.example/i/1.jpg",
                "captureMs":{capture},"id":"{id}","stock":{stock}}}"#
            );
            let a = self.call("POST", "/admin/cues", &[("authorization", HOST)], &body).await;
            assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
            assert_eq!(a.json()["stock"], stock);
        }

        async fn order(&self, auth: &str, key: &str, body: &str) -> Answer {
            self.call("POST", "/orders", &[("authorization", auth), ("idempotency-key", key)], body).await
        }
    }

    fn order_body(cue: &str, quantity: u32) -> String {
        format!(
            r#"{{"cueId":"{cue}","productId":"sku-1","quantity":{quantity},"shownAtMs":1796191200000,"tappedAtMs":1796191200900,"latencyMs":1400}}"#
        )
    }

    #[tokio::test]
    async fn every_order_answer_carries_the_server_time_on_the_origins_clock() {
        let app = app_with(Settings { clock: Clock { offset_ms: -60_000.0 }, ..Settings::default() });
        let before = crate::source::wall_clock_ms() - 60_000.0;
        let user = app.login("alice").await;
        let answers = [
            app.call("POST", "/demo/login", &[], "{}").await,
            app.order(&user, "k", "nope").await,
            app.call("GET", "/orders/o-1", &[], "").await,
            app.call("DELETE", "/orders/o-1", &[("authorization", &user)], "").await,
        ];
        let after = crate::source::wall_clock_ms() - 60_000.0;
        for a in answers {
            let t: f64 = a.headers[SERVER_TIME].to_str().unwrap().parse().unwrap();
            assert!(before - 1.0 <= t && t <= after + 1.0, "{t} not within {before}..{after}");
        }
    }

    #[tokio::test]
    async fn a_login_needs_a_user_id_and_orders_need_its_valid_token() {
        let app = app(OrderSettings::default());
        for body in ["", "{}", r#"{"userId":""}"#, r#"{"userId":7}"#, r#"{"userId":"a","x":1}"#] {
            assert_eq!(app.call("POST", "/demo/login", &[], body).await.status, StatusCode::BAD_REQUEST, "{body}");
        }
        app.cue("flash", 10, 0.0).await;
        let token = app.login("alice").await;
        let mut forged = token.clone();
        forged.push('A');
        for auth in ["", "Bearer ", "Bearer nonsense", "Bearer a.b", forged.as_str(), &token.replace("Bearer", "Basic")]
        {
            let a = app.order(auth, "k1", &order_body("flash", 1)).await;
            assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{auth}: {}", a.body);
            assert_eq!(a.headers[header::WWW_AUTHENTICATE], "Bearer");
        }
        assert_eq!(app.order(&token, "k1", &order_body("flash", 1)).await.status, StatusCode::ACCEPTED);
        // A token another origin start (another secret) signed is no good here.
        let elsewhere = crate::orders::Orders::new(OrderSettings::default(), Clock::default(), app.live.cues.clone());
        let stranger = format!("Bearer {}", elsewhere.login("alice", elsewhere.now_ms()));
        assert_eq!(app.order(&stranger, "k2", &order_body("flash", 1)).await.status, StatusCode::UNAUTHORIZED);
    }

    #[tokio::test]
    async fn an_order_without_a_key_or_with_a_malformed_body_is_a_bad_request() {
        let app = app(OrderSettings::default());
        app.cue("flash", 10, 0.0).await;
        let user = app.login("alice").await;
        let a = app.call("POST", "/orders", &[("authorization", &user)], &order_body("flash", 1)).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.body);
        let long = "k".repeat(256);
        for key in ["", long.as_str(), "caf\u{e9}"] {
            let req = Request::post("/orders").header("authorization", &user).header("idempotency-key", key.as_bytes());
            let res = app.app.clone().oneshot(req.body(Body::from(order_body("flash", 1))).unwrap()).await.unwrap();
            assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{key}");
        }
        let bodies = [
            "not json".to_string(),
            order_body("flash", 0),
            order_body("flash", 11),
            order_body("flash", 1).replace(r#""quantity":1,"#, ""),
            order_body("flash", 1).replace(r#""quantity":1"#, r#""quantity":"1""#),
            order_body("", 1),
        ];
        for (n, body) in bodies.iter().enumerate() {
            let a = app.order(&user, &format!("bad-{n}"), body).await;
            assert_eq!(a.status, StatusCode::BAD_REQUEST, "{body}: {}", a.body);
        }
        // Nothing was stored under those keys: the same key with a good body is a new intent.
        assert_eq!(app.order(&user, "bad-1", &order_body("flash", 1)).await.status, StatusCode::ACCEPTED);
    }

    #[tokio::test]
    async fn a_new_intent_is_accepted_and_pending_until_the_window_closes() {
        let app = app(OrderSettings::default());
        app.cue("flash", 10, 0.0).await;
        let user = app.login("alice").await;
        let a = app.order(&user, "k1", &order_body("flash", 2)).await;
        assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.body);
        let v = a.json();
        let id = v["orderId"].as_str().unwrap();
        assert_eq!(v["attemptUrl"], format!("/orders/{id}"));
        let retry = v["retryAfterMs"].as_f64().unwrap();
        assert!((2500.0..=3000.0).contains(&retry), "{retry}");
        let got = app.call("GET", &format!("/orders/{id}"), &[("authorization", &user)], "").await;
        assert_eq!(got.status, StatusCode::OK);
        assert_eq!(got.headers[header::RETRY_AFTER], "3");
        let v = got.json();
        assert_eq!(
            (v["status"].as_str(), v["quantity"].as_u64(), v["attempts"].as_u64()),
            (Some("pending"), Some(2), Some(1))
        );
        assert_eq!(
            (v["cueId"].as_str(), v["productId"].as_str(), v["latencyMs"].as_f64()),
            (Some("flash"), Some("sku-1"), Some(1400.0))
        );
    }

    #[tokio::test]
    async fn the_same_key_twice_gets_the_stored_answer_and_never_a_second_order() {
        let app = app(OrderSettings { fair_window_ms: 0, ..Default::default() });
        app.cue("flash", 1, 0.0).await;
        let user = app.login("alice").await;
        let first = app.order(&user, "tap-1", &order_body("flash", 1)).await;
        assert_eq!(first.status, StatusCode::ACCEPTED);
        // A retry may report other diagnostics; it is the same intent.
        let again = app.order(&user, "tap-1", &order_body("flash", 1).replace("1400", "2400")).await;
        assert_eq!((again.status, &again.body), (first.status, &first.body));
        let id = first.json()["orderId"].as_str().unwrap().to_string();
        let v = app.call("GET", &format!("/orders/{id}"), &[("authorization", &user)], "").await.json();
        assert_eq!((v["status"].as_str(), v["attempts"].as_u64()), (Some("won"), Some(2)));
        // The one unit went to that one order: carol's intent is sold out, and another key of
        // the same user is refused (one per customer).
        let carol = app.login("carol").await;
        let other = app.order(&carol, "tap-2", &order_body("flash", 1)).await.json();
        let v = app
            .call("GET", &format!("/orders/{}", other["orderId"].as_str().unwrap()), &[("authorization", &carol)], "")
            .await;
        assert_eq!(v.json()["status"], "sold_out");
        assert!(v.headers.get(header::RETRY_AFTER).is_none());
        let twice = app.order(&user, "tap-2", &order_body("flash", 1)).await;
        assert_eq!(twice.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", twice.body);
        assert!(twice.json()["reason"].as_str().unwrap().contains("already won"), "{}", twice.body);
        // A rejection is stored too.
        let r1 = app.order(&user, "tap-3", &order_body("nowhere", 1)).await;
        let r2 = app.order(&user, "tap-3", &order_body("nowhere", 1)).await;
        assert_eq!((r1.status, &r1.body), (StatusCode::UNPROCESSABLE_ENTITY, &r2.body));
        // Keys are per user: bob's "tap-1" is his own.
        let bob = app.login("bob").await;
        let b = app.order(&bob, "tap-1", &order_body("flash", 1)).await;
        assert_eq!(b.status, StatusCode::ACCEPTED);
        assert_ne!(b.json()["orderId"], first.json()["orderId"]);
    }

    #[tokio::test]
    async fn a_key_reused_for_another_intent_is_unprocessable() {
        let app = app(OrderSettings::default());
        app.cue("flash", 10, 0.0).await;
        let user = app.login("alice").await;
        assert_eq!(app.order(&user, "k", &order_body("flash", 1)).await.status, StatusCode::ACCEPTED);
        let a = app.order(&user, "k", &order_body("flash", 2)).await;
        assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.body);
        assert!(a.body.contains("another order"), "{}", a.body);
    }

    #[tokio::test]
    async fn a_key_still_being_processed_is_a_conflict() {
        let app = app(OrderSettings::default());
        app.cue("flash", 10, 0.0).await;
        let token = app.login("alice").await;
        let user = app.live.orders.verify(token.trim_start_matches("Bearer "), app.live.clock.now_ms()).unwrap();
        // The first request with the key is mid-way.
        assert_eq!(app.live.orders.begin(&user, "k", &intent("flash", 1)), Begin::New);
        let a = app.order(&token, "k", &order_body("flash", 1)).await;
        assert_eq!(a.status, StatusCode::CONFLICT, "{}", a.body);
    }

    #[tokio::test]
    async fn above_the_admission_rate_an_order_is_told_when_to_retry() {
        let app = app(OrderSettings { rate: 1, ..Default::default() });
        app.cue("flash", 10, 0.0).await;
        let user = app.login("alice").await;
        assert_eq!(app.order(&user, "k1", &order_body("flash", 1)).await.status, StatusCode::ACCEPTED);
        let a = app.order(&user, "k2", &order_body("flash", 1)).await;
        assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS, "{}", a.body);
        assert_eq!(a.headers[header::RETRY_AFTER], "1");
        // The key was not used up: it is a new intent once admitted, and a replay is not counted.
        assert_eq!(app.order(&user, "k1", &order_body("flash", 1)).await.status, StatusCode::ACCEPTED);
        tokio::time::sleep(std::time::Duration::from_millis(1050)).await;
        assert_eq!(app.order(&user, "k2", &order_body("flash", 1)).await.status, StatusCode::ACCEPTED);
    }

    #[tokio::test]
    async fn an_order_is_found_by_its_key_by_its_owner_only() {
        let app = app(OrderSettings::default());
        app.cue("flash", 10, 0.0).await;
        let (alice, bob) = (app.login("alice").await, app.login("bob").await);
        let placed = app.order(&alice, "k 1", &order_body("flash", 1)).await.json();
        let found = app.call("GET", "/orders?key=k%201", &[("authorization", &alice)], "").await;
        assert_eq!(found.status, StatusCode::OK, "{}", found.body);
        assert_eq!(found.json()["orderId"], placed["orderId"]);
        // Nothing under another key; nothing for another user under the same key.
        assert_eq!(
            app.call("GET", "/orders?key=k2", &[("authorization", &alice)], "").await.status,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            app.call("GET", "/orders?key=k%201", &[("authorization", &bob)], "").await.status,
            StatusCode::NOT_FOUND
        );
        assert_eq!(app.call("GET", "/orders?key=k%201", &[], "").await.status, StatusCode::UNAUTHORIZED);
        assert_eq!(app.call("GET", "/orders", &[("authorization", &alice)], "").await.status, StatusCode::BAD_REQUEST);
        // A lookup is not an attempt.
        let again = app.call("GET", "/orders?key=k%201", &[("authorization", &alice)], "").await.json();
        assert_eq!(again["attempts"], 1);
    }

    #[tokio::test]
    async fn a_viewer_ahead_of_the_shared_target_enters_the_draw_like_everyone_else() {
        let app = app(OrderSettings::default());
        // Its START-DATE went by 0.5 s ago; its display instant is 1 s away.
        app.cue("ahead", 10, -1000.0).await;
        let user = app.login("quick").await;
        let a = app.order(&user, "k", &order_body("ahead", 1)).await;
        assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.body);
        let v = a.json();
        assert!(v["orderId"].is_string(), "{v}");
        assert!(
            v["retryAfterMs"].as_f64().unwrap() > DEFAULT_FAIR_WINDOW_MS as f64,
            "decided when the window closes: {v}"
        );
    }

    #[tokio::test]
    async fn an_order_for_an_unknown_cue_another_product_or_before_the_cue_was_shown_is_rejected() {
        let app = app(OrderSettings::default());
        app.cue("shown", 10, 0.0).await;
        app.cue("coming", 10, -2000.0).await;
        let user = app.login("alice").await;
        for (n, (body, reason)) in [
            (order_body("nowhere", 1), "unknown cue"),
            (order_body("shown", 1).replace("sku-1", "sku-2"), "product"),
            (order_body("coming", 1), "not shown yet"),
        ]
        .into_iter()
        .enumerate()
        {
            let a = app.order(&user, &format!("k{n}"), &body).await;
            assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.body);
            let v = a.json();
            assert_eq!(v["status"], "rejected");
            assert!(v["reason"].as_str().unwrap().contains(reason), "{v}");
            let got = app
                .call("GET", &format!("/orders/{}", v["orderId"].as_str().unwrap()), &[("authorization", &user)], "")
                .await;
            assert_eq!(got.json()["status"], "rejected");
        }
    }

    #[tokio::test]
    async fn the_draw_decides_won_and_lost_when_the_window_closes() {
        let app = app(OrderSettings { fair_window_ms: 150, seed: Some(5), ..Default::default() });
        app.cue("flash", 1, 0.0).await;
        let mut ids = Vec::new();
        for name in ["alice", "bob"] {
            let user = app.login(name).await;
            let a = app.order(&user, "k", &order_body("flash", 1)).await;
            ids.push((user, a.json()["orderId"].as_str().unwrap().to_string()));
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let mut statuses = Vec::new();
        for (user, id) in &ids {
            let v = app.call("GET", &format!("/orders/{id}"), &[("authorization", user)], "").await.json();
            assert!(v["decidedAtMs"].as_f64().unwrap() >= v["receivedAtMs"].as_f64().unwrap());
            statuses.push(v["status"].as_str().unwrap().to_string());
        }
        statuses.sort();
        assert_eq!(statuses, ["lost", "won"]);
    }

    #[test]
    fn decided_orders_and_their_keys_are_forgotten_about_six_hours_after_they_were_received() {
        let (orders, cues) = orders_with(OrderSettings { seed: Some(2), ..Default::default() });
        let shown = sale(&cues, "flash", 5, crate::source::wall_clock_ms());
        let a = tap(&orders, "a", "flash", 1, shown);
        let close = shown + f64::from(DEFAULT_FAIR_WINDOW_MS);
        assert_eq!(status_of(&orders, "a", &a, close), "won");
        let b = tap(&orders, "b", "flash", 1, shown + KEEP_MS);
        assert!(orders.view("a", &a, shown + KEEP_MS).unwrap().is_some(), "not yet");
        // Forgetting runs at most every FORGET_EVERY_MS.
        let later = shown + KEEP_MS + FORGET_EVERY_MS;
        tap(&orders, "c", "flash", 1, later);
        assert!(orders.view("a", &a, later).unwrap().is_none());
        assert_eq!(orders.begin("a", "a", &intent("flash", 1)), Begin::New, "the key is free again");
        assert_eq!(status_of(&orders, "b", &b, later), "won");
    }

    #[tokio::test]
    async fn a_storefront_on_another_origin_may_send_the_order_headers_and_read_the_answers() {
        let app = app(OrderSettings::default());
        let pre = app
            .call(
                "OPTIONS",
                "/orders",
                &[
                    ("origin", "https://shop.example"),
                    ("access-control-request-method", "POST"),
                    ("access-control-request-headers", "authorization,idempotency-key,content-type"),
                ],
                "",
            )
            .await;
        assert!(pre.status.is_success(), "{}", pre.status);
        assert_eq!(pre.headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
        assert_eq!(pre.headers[header::ACCESS_CONTROL_ALLOW_HEADERS], "authorization,idempotency-key,content-type");
        assert!(pre.headers.contains_key(SERVER_TIME));
        let user = app.login("alice").await;
        let a =
            app.call("GET", "/orders/o-1", &[("authorization", &user), ("origin", "https://shop.example")], "").await;
        let exposed = a.headers[header::ACCESS_CONTROL_EXPOSE_HEADERS].to_str().unwrap().to_ascii_lowercase();
        assert!(exposed.contains(SERVER_TIME) && exposed.contains("retry-after"), "{exposed}");
    }

    #[tokio::test]
    async fn nobody_buys_for_another_user_the_token_alone_names_the_buyer() {
        let app = app(OrderSettings::default());
        app.cue("flash", 10, 0.0).await;
        let (alice, bob) = (app.login("alice").await, app.login("bob").await);
        let body = order_body("flash", 1).replacen('{', r#"{"userId":"alice","sub":"alice","#, 1);
        let a = app.order(&bob, "k", &body).await;
        assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.body);
        let uri = format!("/orders/{}", a.json()["orderId"].as_str().unwrap());
        assert_eq!(app.call("GET", &uri, &[("authorization", &alice)], "").await.status, StatusCode::NOT_FOUND);
        assert_eq!(app.call("GET", &uri, &[("authorization", &bob)], "").await.status, StatusCode::OK);
        // Alice's own key "k" is still free: bob's order was not stored under her name.
        assert_eq!(app.order(&alice, "k", &order_body("flash", 2)).await.status, StatusCode::ACCEPTED);
    }

    #[tokio::test]
    async fn nobody_reads_or_cancels_another_users_order() {
        let app = app(OrderSettings::default());
        app.cue("flash", 10, 0.0).await;
        let (alice, bob) = (app.login("alice").await, app.login("bob").await);
        let id = app.order(&alice, "k", &order_body("flash", 1)).await.json()["orderId"].as_str().unwrap().to_string();
        let uri = format!("/orders/{id}");
        assert_eq!(app.call("GET", &uri, &[("authorization", &bob)], "").await.status, StatusCode::NOT_FOUND);
        assert_eq!(app.call("DELETE", &uri, &[("authorization", &bob)], "").await.status, StatusCode::NOT_FOUND);
        assert_eq!(app.call("GET", &uri, &[], "").await.status, StatusCode::UNAUTHORIZED);
        assert_eq!(app.call("DELETE", &uri, &[], "").await.status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            app.call("GET", "/orders/o-none", &[("authorization", &alice)], "").await.status,
            StatusCode::NOT_FOUND
        );
        // Still alice's and still pending; she may cancel it, once.
        assert_eq!(app.call("GET", &uri, &[("authorization", &alice)], "").await.json()["status"], "pending");
        let a = app.call("DELETE", &uri, &[("authorization", &alice)], "").await;
        assert_eq!((a.status, a.json()["status"].as_str()), (StatusCode::OK, Some("cancelled")));
        assert_eq!(app.call("DELETE", &uri, &[("authorization", &alice)], "").await.status, StatusCode::CONFLICT);
    }

    // ---- The ledger, restarts, the summary, the fault knobs ----

    use crate::ledger::tests::TempLedger;

    #[test]
    fn a_sale_interrupted_by_a_restart_loses_nothing_duplicates_nothing_and_is_still_drawn() {
        let file = TempLedger::new("orders-restart");
        let settings = OrderSettings { seed: Some(4), ledger: file.path(), ..Default::default() };
        let (orders, cues) = {
            let cues = Arc::new(Cues::new(Clock::default(), None));
            (Orders::new(settings.clone(), Clock::default(), cues.clone()), cues)
        };
        let shown = sale(&cues, "flash", 3, crate::source::wall_clock_ms());
        let mut ids = Vec::new();
        let mut answers = Vec::new();
        for u in 0..5 {
            let (user, i) = (format!("u{u}"), intent("flash", 1));
            assert_eq!(orders.begin(&user, &user, &i), Begin::New);
            answers.push(orders.place(&user, &user, i, shown + f64::from(u)));
            ids.push(
                serde_json::from_str::<Value>(&answers[u as usize].1).unwrap()["orderId"].as_str().unwrap().to_string(),
            );
        }
        // The process dies in the window: memory is gone, the cues too (they are not kept);
        // the sale goes on from the ledger alone.
        drop(orders);
        drop(cues);
        let orders = Orders::new(settings, Clock::default(), Arc::new(Cues::new(Clock::default(), None)));
        for u in 0..5 {
            let user = format!("u{u}");
            let (status, body) = answers[u].clone();
            assert_eq!(orders.begin(&user, &user, &intent("flash", 1)), Begin::Replay(status, body), "{user}'s retry");
            assert_eq!(status_of(&orders, &user, &ids[u], shown + 10.0), "pending");
        }
        for u in 5..10 {
            ids.push(tap(&orders, &format!("u{u}"), "flash", 1, shown + 100.0 + f64::from(u)));
        }
        let close = shown + f64::from(DEFAULT_FAIR_WINDOW_MS);
        orders.settle_due(close);
        let statuses: Vec<String> = (0..10).map(|u| status_of(&orders, &format!("u{u}"), &ids[u], close)).collect();
        assert_eq!(statuses.iter().filter(|s| *s == "won").count(), 3, "{statuses:?}");
        assert_eq!(statuses.iter().filter(|s| *s == "lost").count(), 7, "{statuses:?}");
        let summary = orders.summary(close, true).unwrap();
        let s = &summary["sales"][0];
        assert_eq!((s["intents"].as_u64(), s["attempts"].as_u64(), s["left"].as_u64()), (Some(10), Some(15), Some(0)));
        assert_eq!(s["draw"]["entrants"], json!(ids), "every entrant, before and after the restart, in arrival order");
        assert_eq!(s["draw"]["winners"].as_array().unwrap().len(), 3);
    }

    #[test]
    fn a_cue_id_used_again_by_an_origin_started_afresh_opens_a_new_sale() {
        let file = TempLedger::new("reused-cue");
        let settings = OrderSettings { seed: Some(6), ledger: file.path(), ..Default::default() };
        let now = crate::source::wall_clock_ms();
        let window = f64::from(DEFAULT_FAIR_WINDOW_MS);
        {
            let cues = Arc::new(Cues::new(Clock::default(), None));
            let orders = Orders::new(settings.clone(), Clock::default(), cues.clone());
            let shown = sale(&cues, "cue-1", 1, now - 2.0 * window);
            let a = tap(&orders, "a", "cue-1", 1, shown + window);
            assert_eq!(status_of(&orders, "a", &a, shown + window), "won");
        }
        let cues = Arc::new(Cues::new(Clock::default(), None));
        let orders = Orders::new(settings, Clock::default(), cues.clone());
        let shown = sale(&cues, "cue-1", 5, now);
        let b = tap(&orders, "b", "cue-1", 1, shown + window);
        assert_eq!(status_of(&orders, "b", &b, shown + window), "won", "not the old sale's sold-out stock");
        let summary = orders.summary(shown + window, false).unwrap();
        let lefts: Vec<u64> =
            summary["sales"].as_array().unwrap().iter().map(|s| s["left"].as_u64().unwrap()).collect();
        assert_eq!(lefts, [0, 4]);
    }

    #[test]
    fn a_users_second_entrant_comes_after_every_first_one_in_the_draw() {
        let (orders, cues) = orders_with(OrderSettings { seed: Some(11), ..Default::default() });
        let shown = sale(&cues, "flash", 2, crate::source::wall_clock_ms());
        // alice taps twice (two keys) before anyone else; two units; three users.
        let place = |user: &str, key: &str, now: f64| {
            assert_eq!(orders.begin(user, key, &intent("flash", 1)), Begin::New);
            let (_, body) = orders.place(user, key, intent("flash", 1), now);
            serde_json::from_str::<Value>(&body).unwrap()["orderId"].as_str().unwrap().to_string()
        };
        let a2 = place("alice", "k2", shown);
        let a1 = place("alice", "k1", shown + 1.0);
        place("bob", "k", shown + 2.0);
        place("carol", "k", shown + 3.0);
        let close = shown + f64::from(DEFAULT_FAIR_WINDOW_MS);
        orders.settle_due(close);
        let d = &orders.summary(close, true).unwrap()["sales"][0]["draw"];
        let drawn: Vec<&str> = d["drawn"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
        assert_eq!(drawn.len(), 4);
        assert_eq!(drawn[3], a1, "alice's later entrant is last");
        assert!(drawn[..3].contains(&a2.as_str()));
        let alice_won = [&a1, &a2].iter().filter(|id| status_of(&orders, "alice", id, close) == "won").count();
        assert!(alice_won <= 1, "one win per user and product");
    }

    fn file_app(file: &TempLedger, seed: u64) -> App {
        let orders = OrderSettings {
            seed: Some(seed),
            fair_window_ms: 300,
            token_secret: Some(b"kept".to_vec()),
            ledger: file.path(),
            ..Default::default()
        };
        app(orders)
    }

    #[tokio::test]
    async fn after_a_restart_a_retry_gets_the_same_answer_and_the_open_window_is_still_drawn() {
        let file = TempLedger::new("http-restart");
        let app = file_app(&file, 3);
        app.cue("flash", 1, 0.0).await;
        let (alice, bob) = (app.login("alice").await, app.login("bob").await);
        let a = app.order(&alice, "ka", &order_body("flash", 1)).await;
        let b = app.order(&bob, "kb", &order_body("flash", 1)).await;
        assert_eq!((a.status, b.status), (StatusCode::ACCEPTED, StatusCode::ACCEPTED));
        let r = app.call("POST", "/admin/orders/restart", &[("authorization", HOST)], "").await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!((r.json()["resumedSales"].as_u64(), r.json()["ordersEver"].as_u64()), (Some(1), Some(2)));
        let again = app.order(&alice, "ka", &order_body("flash", 1)).await;
        assert_eq!((again.status, &again.body), (a.status, &a.body));
        tokio::time::sleep(std::time::Duration::from_millis(350)).await;
        let mut statuses = Vec::new();
        for (user, answer) in [(&alice, &a), (&bob, &b)] {
            let uri = format!("/orders/{}", answer.json()["orderId"].as_str().unwrap());
            statuses.push(app.call("GET", &uri, &[("authorization", user)], "").await.json()["status"].clone());
        }
        statuses.sort_by_key(|s| s.to_string());
        assert_eq!(statuses, [json!("lost"), json!("won")]);
        let sales = app.call("GET", "/admin/sales", &[("authorization", HOST)], "").await.json();
        assert_eq!(sales["sales"][0]["attempts"], 3);
        assert_eq!(sales["sales"][0]["intents"], 2);
    }

    #[tokio::test]
    async fn the_order_admin_routes_need_the_hosts_token_and_an_in_memory_ledger_cannot_restart() {
        let app = app(OrderSettings::default());
        for (method, uri) in [
            ("GET", "/admin/sales"),
            ("GET", "/admin/faults"),
            ("POST", "/admin/faults"),
            ("POST", "/admin/orders/restart"),
        ] {
            let a = app.call(method, uri, &[("authorization", "Bearer nope")], "{}").await;
            assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{method} {uri}");
        }
        let r = app.call("POST", "/admin/orders/restart", &[("authorization", HOST)], "").await;
        assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
        assert!(r.body.contains(":memory:"), "{}", r.body);
        for bad in [r#"{"dropRequests":1.5}"#, r#"{"delayMs":-1}"#, r#"{"delayMs":60001}"#, r#"{"drop":1}"#, "x"] {
            let a = app.call("POST", "/admin/faults", &[("authorization", HOST)], bad).await;
            assert_eq!(a.status, StatusCode::BAD_REQUEST, "{bad}");
        }
        let a = app.call("POST", "/admin/faults", &[("authorization", HOST)], r#"{"delayMs":5}"#).await;
        assert_eq!(a.json(), json!({"dropRequests": 0.0, "dropResponses": 0.0, "delayMs": 5, "error5xx": 0.0}));
        assert_eq!(app.call("GET", "/admin/faults", &[("authorization", HOST)], "").await.json()["delayMs"], 5);
        let a = app.call("GET", "/admin/sales?lists=maybe", &[("authorization", HOST)], "").await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST);
    }

    #[tokio::test]
    async fn the_sale_summary_counts_attempts_intents_and_outcomes_and_shows_the_draw() {
        let app = app(OrderSettings { fair_window_ms: 100, seed: Some(8), ..Default::default() });
        app.cue("flash", 2, 0.0).await;
        let users = [app.login("a").await, app.login("b").await, app.login("c").await];
        let mut ids = Vec::new();
        for u in &users {
            ids.push(app.order(u, "k", &order_body("flash", 1)).await.json()["orderId"].clone());
        }
        app.order(&users[0], "k", &order_body("flash", 1)).await;
        tokio::time::sleep(std::time::Duration::from_millis(150)).await;
        let late = app.login("d").await;
        app.order(&late, "k", &order_body("flash", 1)).await;
        app.call("GET", &format!("/orders/{}", ids[0].as_str().unwrap()), &[("authorization", &users[0])], "").await;
        let v = app.call("GET", "/admin/sales", &[("authorization", HOST)], "").await.json();
        let s = &v["sales"][0];
        assert_eq!(
            (&s["cueId"], &s["productId"], &s["stock"], &s["left"], &s["attempts"], &s["intents"]),
            (&json!("flash"), &json!("sku-1"), &json!(2), &json!(0), &json!(5), &json!(4))
        );
        assert_eq!((&s["won"], &s["lost"], &s["soldOut"], &s["pending"]), (&json!(2), &json!(1), &json!(1), &json!(0)));
        // From START-DATE to the display instant (START-DATE + the default display delay) + W.
        let window = s["window"]["closeMs"].as_f64().unwrap() - s["window"]["openMs"].as_f64().unwrap();
        assert_eq!(window, DEFAULT_DISPLAY_DELAY_MS + 100.0);
        assert_eq!(s["draw"]["entrants"], json!(ids), "in arrival order");
        assert_eq!(s["draw"]["winners"].as_array().unwrap().len(), 2);
        assert!(s["draw"]["seed"].as_str().unwrap().parse::<u64>().is_ok());
        assert_eq!((v["requests"]["posts"].as_u64(), v["requests"]["gets"].as_u64()), (Some(5), Some(1)));
        assert!(v["requests"]["peakPerSecond"].as_u64().unwrap() >= 3);
        let brief = app.call("GET", "/admin/sales?lists=false", &[("authorization", HOST)], "").await.json();
        assert_eq!(brief["sales"][0]["draw"]["entrants"], Value::Null);
        assert_eq!(brief["sales"][0]["draw"]["entrantCount"], 3);
    }

    // Over a real connection: what a client sees of the fault knobs.

    use http_body_util::{BodyExt, Full};
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;

    async fn serve(app: Router) -> std::net::SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        addr
    }

    type Http = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

    /// Status and body, or the client's error.
    async fn send(
        client: &Http,
        addr: std::net::SocketAddr,
        method: &str,
        uri: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Result<(StatusCode, String), String> {
        let mut req = Request::builder().method(method).uri(format!("http://{addr}{uri}"));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let res = client
            .request(req.body(Full::new(Bytes::from(body.to_string()))).unwrap())
            .await
            .map_err(|e| format!("{e:?}"))?;
        let status = res.status();
        let body = res.into_body().collect().await.map_err(|e| format!("body: {e:?}"))?.to_bytes();
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    }

    #[tokio::test]
    async fn a_dropped_request_or_response_is_a_network_error_to_a_real_client_and_only_the_latter_is_stored() {
        let app = app(OrderSettings { seed: Some(1), ..Default::default() });
        app.cue("flash", 10, 0.0).await;
        let user = app.login("alice").await;
        let addr = serve(app.app.clone()).await;
        let client: Http = Client::builder(TokioExecutor::new()).build_http();
        let faults = |body: &'static str| {
            let app = &app;
            async move {
                assert_eq!(
                    app.call("POST", "/admin/faults", &[("authorization", HOST)], body).await.status,
                    StatusCode::OK
                );
            }
        };
        let post = |key: &'static str| {
            let (client, user) = (&client, &user);
            async move {
                let headers =
                    [("authorization", user.as_str()), ("idempotency-key", key), ("content-type", "application/json")];
                send(client, addr, "POST", "/orders", &headers, &order_body("flash", 1)).await
            }
        };
        let intents = || async { app.call("GET", "/admin/sales", &[("authorization", HOST)], "").await.json() };

        faults(r#"{"dropRequests":1}"#).await;
        let e = post("k1").await.expect_err("no answer");
        assert!(e.contains("IncompleteMessage") || e.contains("Connection") || e.contains("closed"), "{e}");
        // What the wire carried: not one byte before the close.
        let raw = raw_exchange(addr, &user).await;
        assert!(raw.is_empty(), "{}", String::from_utf8_lossy(&raw));
        assert!(intents().await["sales"].as_array().unwrap().is_empty(), "nothing processed");

        faults(r#"{"dropRequests":0,"dropResponses":1}"#).await;
        post("k2").await.expect_err("no answer");
        faults(r#"{"dropResponses":0}"#).await;
        let (status, body) = post("k2").await.unwrap();
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        let s = &intents().await["sales"][0];
        assert_eq!((&s["intents"], &s["attempts"]), (&json!(1), &json!(2)), "stored once, retried once");

        faults(r#"{"error5xx":1}"#).await;
        let (status, _) = post("k3").await.unwrap();
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        faults(r#"{"error5xx":0,"delayMs":150}"#).await;
        let t = std::time::Instant::now();
        assert_eq!(post("k2").await.unwrap(), (status_accepted(), body));
        assert!(t.elapsed() >= std::time::Duration::from_millis(150), "{:?}", t.elapsed());
        let v = intents().await;
        assert_eq!(v["sales"][0]["intents"], 1, "the 503 stored nothing");
        let r = &v["requests"];
        assert_eq!(
            (&r["posts"], &r["droppedRequests"], &r["droppedResponses"], &r["injected5xx"]),
            (&json!(6), &json!(2), &json!(1), &json!(1))
        );
    }

    fn status_accepted() -> StatusCode {
        StatusCode::ACCEPTED
    }

    /// A POST written by hand on a fresh connection; every byte the server sent before closing.
    async fn raw_exchange(addr: std::net::SocketAddr, user: &str) -> Vec<u8> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let body = order_body("flash", 1);
        let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
        let req = format!(
            "POST /orders HTTP/1.1\r\nHost: x\r\nAuthorization: {user}\r\nIdempotency-Key: raw\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        conn.write_all(req.as_bytes()).await.unwrap();
        let mut got = Vec::new();
        let read = tokio::time::timeout(std::time::Duration::from_secs(5), conn.read_to_end(&mut got)).await;
        assert!(read.is_ok(), "the connection was left open");
        got
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn thousands_of_intents_and_their_follow_ups_are_taken_over_loopback_at_a_flash_sale_rate() {
        const INTENTS: usize = 2000;
        const CONNECTIONS: usize = 32;
        let file = TempLedger::new("throughput");
        let settings =
            OrderSettings { rate: 1_000_000, fair_window_ms: 60_000, ledger: file.path(), ..Default::default() };
        let app = app(settings);
        app.cue("flash", 100, 0.0).await;
        let tokens: Vec<String> = {
            let now = app.live.orders.now_ms();
            (0..INTENTS).map(|u| format!("Bearer {}", app.live.orders.login(&format!("user-{u}"), now))).collect()
        };
        let addr = serve(app.app.clone()).await;
        let client: Http = Client::builder(TokioExecutor::new()).pool_max_idle_per_host(CONNECTIONS).build_http();
        let tokens = Arc::new(tokens);
        // Each phase: INTENTS requests over CONNECTIONS connections; the answers' bodies by user.
        let run = |ids: Option<Arc<Vec<String>>>| {
            let (client, tokens) = (client.clone(), tokens.clone());
            async move {
                let t = std::time::Instant::now();
                let tasks: Vec<_> = (0..CONNECTIONS)
                    .map(|c| {
                        let (client, tokens, ids) = (client.clone(), tokens.clone(), ids.clone());
                        tokio::spawn(async move {
                            let mut answers = Vec::new();
                            for u in (c..INTENTS).step_by(CONNECTIONS) {
                                let auth = tokens[u].as_str();
                                let res = match &ids {
                                    Some(ids) => {
                                        let uri = format!("/orders/{}", ids[u]);
                                        send(&client, addr, "GET", &uri, &[("authorization", auth)], "").await
                                    }
                                    None => {
                                        let key = format!("tap-{u}");
                                        let h = [("authorization", auth), ("idempotency-key", key.as_str())];
                                        send(&client, addr, "POST", "/orders", &h, &order_body("flash", 1)).await
                                    }
                                };
                                answers.push((u, res.unwrap()));
                            }
                            answers
                        })
                    })
                    .collect();
                let mut answers = vec![(StatusCode::OK, Value::Null); INTENTS];
                for task in tasks {
                    for (u, (status, body)) in task.await.unwrap() {
                        answers[u] = (status, serde_json::from_str(&body).unwrap());
                    }
                }
                (answers, INTENTS as f64 / t.elapsed().as_secs_f64())
            }
        };
        let (posted, posts_per_s) = run(None).await;
        assert!(posted.iter().all(|(s, _)| *s == StatusCode::ACCEPTED));
        let ids: Vec<String> = posted.iter().map(|(_, v)| v["orderId"].as_str().unwrap().to_string()).collect();
        let (got, gets_per_s) = run(Some(Arc::new(ids.clone()))).await;
        eprintln!(
            "{INTENTS} POST /orders over loopback: {posts_per_s:.0}/s; {INTENTS} GET /orders/<id>: {gets_per_s:.0}/s"
        );
        for (u, (status, v)) in got.iter().enumerate() {
            assert_eq!(
                (*status, v["orderId"].as_str(), v["status"].as_str()),
                (StatusCode::OK, Some(ids[u].as_str()), Some("pending"))
            );
        }
        // A debug build on two shared cores; a release build goes several times faster.
        assert!(posts_per_s > 300.0, "{posts_per_s:.0} POST/s");
        let v = app.call("GET", "/admin/sales?lists=false", &[("authorization", HOST)], "").await.json();
        assert_eq!(v["sales"][0]["intents"], INTENTS);
    }
}
