//! The order client of a flash sale: a viewer taps a product a cue showed, and the order must
//! reach the server once, however the network, the server or the page behave.
//!
//! An order goes through these steps, each waiting for the driver's answer to the last:
//!
//! 1. **Written down.** [`OrderClient::buy`] stores the intent (`StorageOp::Put` under
//!    `liveshop.order.<key>`) and sends nothing until the driver reports it `Stored`. A page
//!    that crashes or reloads before the answer calls [`resume`](OrderClient::resume), which
//!    lists what is stored and sends each unanswered intent again with its *stored* key and
//!    body, byte for byte: the same `Idempotency-Key` never goes out with another payload. If
//!    the storage refuses (private browsing, quota), the order goes out anyway, not durable:
//!    a lost tap costs the buyer more than a lost record.
//! 2. **One sender.** Tabs of the same viewer take the lock `liveshop.order.<product>`
//!    (`TabOp::Acquire`) in parallel with the write; only the holder sends. Before its POST it
//!    broadcasts its key and body, and a tab that has not sent yet adopts them (it rewrites its
//!    record under that key; a tap that comes later takes them at once). Should the lock reach
//!    that tab before the answer does, it sends the same key and body, which the server
//!    deduplicates: one order whichever tab sends. When an answer comes, the holder broadcasts it, and every tab
//!    waiting on the same product or key takes it as its own and never sends. A tab that taps
//!    the same cue later (a slow sign-in, a second look) is told that decision and sends
//!    nothing: one buyer, one ticket in a sale's draw.
//! 3. **Sent.** `POST <ordersUrl>/orders` with `Authorization: Bearer`, `Idempotency-Key` and a
//!    JSON body. `202` names an attempt that is followed with GETs at the server's pace
//!    (`Retry-After`, else `retryAfterMs`); `200`/`201` end the order (`won`, `lost`,
//!    `sold_out`, `rejected`), and the decision replaces the intent in storage, so that a tab
//!    reloaded before the answer came shows it on its return (then deletes it).
//! 4. **Retried** only where a retry cannot hurt and may help: network errors, 5xx, 409 (the
//!    server is still working on this key), 429. The wait is the server's `Retry-After` when
//!    it gives one (seconds; an HTTP date is not read and falls back to the jitter), else full
//!    jitter (see [`retry`]).
//!    - **A lost answer is not a lost order.** When a POST gets no answer at all (the
//!      connection dropped, or [`ANSWER_TIMEOUT_MS`] went by), the server may well have taken
//!      it: the client asks `GET <ordersUrl>/orders?key=<Idempotency-Key>` before anything
//!      else, and POSTs again only if the server says it has nothing under the key (404). So
//!      a sale whose answers get lost costs GETs, not duplicate POSTs.
//!    - A retry budget shared by all orders (gRPC's throttling) turns the retries of a page
//!      whose requests keep failing into a slow lane, one try every 4–8 s per order, instead of
//!      a stampede; an order no answer came for in [`GIVE_UP_AFTER_MS`] ends as `Error` with
//!      [`OrderError::GaveUp`], but its record stays: buying the same product again, or a
//!      later `resume`, sends it again with the same key.
//!    - 400/401/403/404/422 are final.
//!
//! Results come out as [`OrderUpdate`]s from [`poll_event`](OrderClient::poll_event), after any
//! call; requests, storage and tab operations go into the engine's [`Outbox`]. A `Pending`
//! update comes when an order is taken (also when resumed) and when the server names it; one
//! final update ends it.
//!
//! The stored record holds the user token, for the resumed request's `Authorization`: it is
//! as safe as the origin's IndexedDB and deleted with the answer.

pub mod retry;
pub mod wire;

use crate::core::queue::Queue;
use crate::prelude::*;

use crate::core::error::PlayerError;
use crate::core::format::url;
use crate::core::io::{
    Method, Ops, Output, Request, RequestId, RequestKind, ResponseHead, StorageOp, StorageResult, TabEvent, TabOp,
};
use crate::core::text::{self, push_all, push_u64, Message as _};
use crate::core::time::{Deadline, Instant, ServerTime, TimerReason};

use retry::{full_jitter, slow_lane, Budget, Rng};
use wire::{parse_json, push_json_string, read_record, RecordWriter};

/// Storage keys and lock names start with this.
pub const PREFIX: &str = "liveshop.order.";
/// How often an attempt is followed when the server names no interval.
const DEFAULT_POLL_MS: f64 = 1_000.0;
/// Orders heard from other tabs that are remembered (the oldest is forgotten first).
const MAX_ELSEWHERE: usize = 64;
/// A request unanswered this long is abandoned and retried like a network error: a server
/// that took the connection and went silent must not hold an order forever. Well above a
/// loaded server's answer time (the origin answers a POST in milliseconds, a sale's follow-up
/// at the pace it names).
pub const ANSWER_TIMEOUT_MS: f64 = 10_000.0;
/// An order no answer came for this long since this page first sent it ends as an error the
/// viewer is told of (the record stays, for a later page). Long enough to ride out an origin
/// restart and minutes of a server shedding load or losing half its answers: the slow lane
/// keeps trying every 4–8 s meanwhile, so even at one try in two failing, an order is all but
/// certain to be answered within it (0.51^40 ≈ 2e-12).
pub const GIVE_UP_AFTER_MS: f64 = 300_000.0;
/// A response body longer than this is not an order answer; the rest is dropped.
const MAX_BODY: usize = 64 * 1024;

/// Names one intent from `buy` (or `resume`) to its final update.
pub type IntentId = u64;

/// What the viewer asked for. The engine has checked that the cue was shown.
#[derive(Debug, Clone, PartialEq)]
pub struct Intent {
    pub cue_id: String,
    pub product_id: String,
    pub quantity: u32,
    /// When the cue appeared, and when the viewer tapped, on the server's clock.
    pub shown_at: ServerTime,
    pub tapped_at: ServerTime,
    /// The viewer's delay behind live when tapping.
    pub latency_ms: f64,
    pub user_token: String,
    /// The `Idempotency-Key`, unique per intent (`crypto.randomUUID()`).
    pub key: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderStatus {
    Pending,
    Won,
    Lost,
    SoldOut,
    Rejected,
    Error,
}

impl OrderStatus {
    fn from_wire(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => OrderStatus::Pending,
            "won" => OrderStatus::Won,
            "lost" => OrderStatus::Lost,
            "sold_out" => OrderStatus::SoldOut,
            "rejected" => OrderStatus::Rejected,
            _ => return None,
        })
    }
    pub fn to_wire(self) -> &'static str {
        match self {
            OrderStatus::Pending => "pending",
            OrderStatus::Won => "won",
            OrderStatus::Lost => "lost",
            OrderStatus::SoldOut => "sold_out",
            OrderStatus::Rejected => "rejected",
            OrderStatus::Error => "error",
        }
    }
    pub fn is_final(self) -> bool {
        self != OrderStatus::Pending
    }
    /// The server's word on the order (an `Error` is this page's, and may be tried again).
    fn is_decision(self) -> bool {
        self.is_final() && self != OrderStatus::Error
    }
}

/// Why an order was refused or failed.
#[derive(Debug, Clone, PartialEq)]
pub enum OrderError {
    Invalid(&'static str),
    NoService,
    UnknownCue(String),
    NotShown(String),
    Refused { status: u16 },
    Unauthorized { status: u16 },
    Status { status: u16 },
    BadAnswer(String),
    GaveUp { attempts: u32, last: String },
}

impl text::Message for OrderError {
    fn write_message(&self, out: &mut String) {
        use OrderError::*;
        let status = |out: &mut String, before: &str, status: u16, after: &str| {
            out.push_str(before);
            push_u64(out, u64::from(status));
            out.push_str(after);
        };
        match self {
            Invalid(reason) => push_all(out, &["order not taken: ", reason]),
            NoService => out.push_str("no flash sale here: the player has no `ordersUrl`"),
            UnknownCue(id) => push_all(out, &["no product cue `", id, "` is known to this player"]),
            NotShown(id) => push_all(out, &["the product of cue `", id, "` has not been shown on this screen yet"]),
            Refused { status: s } => status(out, "the order service refused the order (HTTP ", *s, ")"),
            Unauthorized { status: s } => status(out, "the order service needs the viewer signed in (HTTP ", *s, ")"),
            Status { status: s } => status(out, "the order service answered HTTP ", *s, ""),
            BadAnswer(reason) => push_all(out, &["the order service's answer could not be read: ", reason]),
            GaveUp { attempts, last } => {
                out.push_str("the order service could not be reached after ");
                push_u64(out, u64::from(*attempts));
                push_all(out, &[" attempts: ", last]);
            }
        }
    }
}

crate::display_from_message!(OrderError);
impl core::error::Error for OrderError {}

impl OrderError {
    /// The stable string applications switch on.
    pub fn code(&self) -> &'static str {
        match self {
            OrderError::Invalid(_) => "order_invalid",
            OrderError::NoService => "order_no_service",
            OrderError::UnknownCue(_) => "order_unknown_cue",
            OrderError::NotShown(_) => "order_too_early",
            OrderError::Refused { .. } => "order_refused",
            OrderError::Unauthorized { .. } => "order_unauthorized",
            OrderError::Status { .. } => "order_http_status",
            OrderError::BadAnswer(_) => "order_bad_answer",
            OrderError::GaveUp { .. } => "order_gave_up",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct OrderResult {
    pub status: OrderStatus,
    pub order_id: Option<String>,
    /// POSTs this page sent for the intent (0 for one another tab answered).
    pub attempts: u32,
    /// Why, for `Rejected` and `Error`.
    pub error: Option<OrderError>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct OrderUpdate {
    pub intent: IntentId,
    pub cue_id: String,
    pub product_id: String,
    pub result: OrderResult,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Step {
    Post,
    /// Follow an accepted order at its attempt URL.
    Poll,
    /// Ask whether the server has an order under the key (after a POST's answer was lost).
    Lookup,
}

#[derive(Debug, Clone, PartialEq)]
enum Phase {
    /// Waiting for the write and the lock.
    Idle,
    /// Sent; given up on (cancelled and retried) at the instant, if no answer came by then.
    InFlight(RequestId, Step, Instant),
    Waiting(Instant, Step),
    Done,
}

#[derive(Debug)]
struct Order {
    id: IntentId,
    intent: Intent,
    /// The body sent under `intent.key`, fixed when the key was (JSON: text).
    body: String,
    stored: bool,
    locked: bool,
    phase: Phase,
    status: OrderStatus,
    order_id: Option<String>,
    attempt_url: Option<String>,
    attempts: u32,
    /// Failures in a row, for the backoff.
    failures: u32,
    /// When this page first sent it (for [`GIVE_UP_AFTER_MS`]).
    first_sent: Option<Instant>,
    error: Option<OrderError>,
    head: Option<ResponseHead>,
    answer: Vec<u8>,
}

impl Order {
    fn lock(&self) -> String {
        text::concat(&[PREFIX, &self.intent.product_id])
    }
    fn storage_key(&self) -> String {
        text::concat(&[PREFIX, &self.intent.key])
    }
    /// `lock() == lock`, without making the name.
    fn locked_by(&self, lock: &str) -> bool {
        lock.strip_prefix(PREFIX) == Some(&self.intent.product_id)
    }
    /// `storage_key() == key`, without making the key.
    fn stored_as(&self, key: &str) -> bool {
        key.strip_prefix(PREFIX) == Some(&self.intent.key)
    }
    fn result(&self) -> OrderResult {
        OrderResult {
            status: self.status,
            order_id: self.order_id.clone(),
            attempts: self.attempts,
            error: self.error.clone(),
        }
    }
    fn update(&self) -> OrderUpdate {
        OrderUpdate {
            intent: self.id,
            cue_id: self.intent.cue_id.clone(),
            product_id: self.intent.product_id.clone(),
            result: self.result(),
        }
    }
    /// The stored record: the intent, its body and where it stands.
    fn record(&self) -> Vec<u8> {
        let i = &self.intent;
        RecordWriter::new()
            .field("key", &i.key)
            .field("cue", &i.cue_id)
            .field("product", &i.product_id)
            .count("quantity", i.quantity)
            .num("shown", i.shown_at.get())
            .num("tapped", i.tapped_at.get())
            .num("latency", i.latency_ms)
            .field("token", &i.user_token)
            .field("status", self.status.to_wire())
            .field("order", self.order_id.as_deref().unwrap_or_default())
            .count("attempts", self.attempts)
            .field("body", &self.body)
            .into_bytes()
    }
    /// The message telling other tabs this order goes out (with its body) or was decided.
    fn message(&self, order_id: Option<&str>, body: &str) -> Vec<u8> {
        let i = &self.intent;
        message(&i.cue_id, &i.product_id, &i.key, self.status, order_id, body)
    }
    /// An order from a stored record, with its stored key and body (and no id yet: see
    /// [`OrderClient::add`]).
    fn from_record(bytes: &[u8]) -> Option<Order> {
        let mut r = read_record(bytes)?;
        let intent = Intent {
            cue_id: r.need("cue"),
            product_id: r.need("product"),
            quantity: r.count("quantity"),
            shown_at: ServerTime::new(r.num("shown")),
            tapped_at: ServerTime::new(r.num("tapped")),
            latency_ms: r.num("latency"),
            user_token: r.need("token"),
            key: r.need("key"),
        };
        let body = r.need("body");
        if !r.complete() || intent.key.is_empty() {
            return None;
        }
        let mut order = Order::new(0, intent, body);
        order.stored = true;
        order.attempts = r.take("attempts").and_then(|a| text::parse_u32(&a, 10)).unwrap_or(0);
        order.order_id = r.non_empty("order");
        // A decided order's record stays until a page reports it (see `finish`). An `error`
        // is no decision: it goes out again.
        if let Some(status) = r.take("status").and_then(|s| OrderStatus::from_wire(&s)).filter(|s| s.is_final()) {
            order.status = status;
            order.phase = Phase::Done;
        }
        Some(order)
    }
    // Built in three places: one copy of its many fields.
    #[inline(never)]
    fn new(id: IntentId, intent: Intent, body: String) -> Order {
        Order {
            id,
            intent,
            body,
            stored: false,
            locked: false,
            phase: Phase::Idle,
            status: OrderStatus::Pending,
            order_id: None,
            attempt_url: None,
            attempts: 0,
            failures: 0,
            first_sent: None,
            error: None,
            head: None,
            answer: Vec::new(),
        }
    }
}

/// The JSON body of an intent's POST.
pub fn order_body(i: &Intent) -> String {
    let mut o = String::from("{\"cueId\":");
    push_json_string(&mut o, &i.cue_id);
    o.push_str(",\"productId\":");
    push_json_string(&mut o, &i.product_id);
    o.push_str(",\"quantity\":");
    text::push_u64(&mut o, i.quantity.into());
    for (name, v) in [("shownAtMs", i.shown_at.get()), ("tappedAtMs", i.tapped_at.get()), ("latencyMs", i.latency_ms)] {
        o.push_str(",\"");
        o.push_str(name);
        o.push_str("\":");
        // Whole ms; a non-finite time (never expected) as 0, as JSON has no NaN.
        text::push_i64(&mut o, if v.is_finite() { v.round() as i64 } else { 0 });
    }
    o.push('}');
    o
}

/// `Retry-After` in ms, when it is a number of seconds.
fn retry_after_ms(head: &ResponseHead) -> Option<f64> {
    let s = text::parse_f64(head.header("retry-after")?.trim())?;
    (s.is_finite() && s >= 0.0).then_some(s * 1000.0)
}

/// A message between tabs: an order one tab is sending (with its body), or its decision.
#[derive(Debug, Clone)]
struct Message {
    cue: String,
    product: String,
    key: String,
    status: OrderStatus,
    order_id: Option<String>,
    body: String,
}

/// A message's bytes: a record of the order's names, where it stands and the body it goes out
/// with (empty with a decision).
fn message(cue: &str, product: &str, key: &str, status: OrderStatus, order_id: Option<&str>, body: &str) -> Vec<u8> {
    RecordWriter::new()
        .field("cue", cue)
        .field("product", product)
        .field("key", key)
        .field("status", status.to_wire())
        .field("order", order_id.unwrap_or_default())
        .field("body", body)
        .into_bytes()
}

impl Message {
    #[cfg(test)]
    fn encode(&self) -> Vec<u8> {
        message(&self.cue, &self.product, &self.key, self.status, self.order_id.as_deref(), &self.body)
    }
    fn decode(bytes: &[u8]) -> Option<Message> {
        let mut r = read_record(bytes)?;
        // Pages from before the cue was sent say none: their decisions join no tap.
        let cue = r.take("cue").unwrap_or_default();
        let (product, key) = (r.need("product"), r.need("key"));
        let status = OrderStatus::from_wire(&r.need("status"));
        let (Some(status), true) = (status, r.complete()) else { return None };
        Some(Message {
            cue,
            product,
            key,
            status,
            order_id: r.non_empty("order"),
            body: r.take("body").unwrap_or_default(),
        })
    }
}

/// How an order ended, for [`OrderClient::finish`].
#[derive(Clone, Copy, PartialEq)]
enum Ended {
    /// The server answered this page.
    Answered,
    /// Another tab heard the decision.
    Elsewhere,
    /// No answer came in [`GIVE_UP_AFTER_MS`].
    GaveUp,
}

/// What a finished response means for its order.
enum Verdict {
    Final(OrderStatus, Option<OrderError>),
    /// Follow the attempt after this long.
    Follow(f64),
    /// Try again (the step named), after the server's wait if it named one.
    Retry(String, Option<f64>, Step),
    /// POST now: the server has nothing under the key.
    Resend,
}

/// `prefix` with an HTTP status after it.
fn http(prefix: &str, status: u16) -> String {
    let mut s = String::from(prefix);
    text::push_u64(&mut s, status.into());
    s
}

/// Appends a key or id as one URL component: what is not unreserved (RFC 3986) is
/// percent-encoded.
fn encode(out: &mut String, text: &str) {
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push('%');
            text::push_hex(out, b.into(), 2, true);
        }
    }
}

#[derive(Debug)]
pub struct OrderClient {
    orders_url: String,
    orders: Vec<Order>,
    last_intent: IntentId,
    rng: Rng,
    budget: Budget,
    events: Queue<OrderUpdate>,
    /// What other tabs last said of each product (one message per product): the order they are
    /// sending, or its decision.
    elsewhere: Vec<Message>,
}

impl OrderClient {
    /// `seed` spreads this page's retries; the driver draws it from `crypto.getRandomValues`.
    pub fn new(orders_url: String, seed: u64) -> Self {
        OrderClient {
            orders_url,
            orders: Vec::new(),
            last_intent: 0,
            rng: Rng::new(seed),
            budget: Budget::default(),
            events: Queue::new(),
            elsewhere: Vec::new(),
        }
    }

    /// Takes an intent: writes it down and asks for the product's lock; it is sent once both
    /// are done. If another tab said it is sending this product, the intent takes that tab's
    /// key and body instead of its own, so that whichever tab sends, it is one order. A second
    /// buy of a product whose order is still open joins it (its id comes back, nothing new is
    /// sent); one the retry budget stopped is sent again, same key. A buy of a cue whose order
    /// was decided, here or in another tab, is that order again: nothing is sent.
    pub fn buy(&mut self, out: &mut Ops, _now: Instant, intent: Intent) -> Result<IntentId, OrderError> {
        if intent.product_id.is_empty() {
            return Err(OrderError::Invalid("no product"));
        }
        if intent.quantity == 0 {
            return Err(OrderError::Invalid("quantity 0"));
        }
        if intent.key.is_empty() {
            return Err(OrderError::Invalid("no idempotency key"));
        }
        if intent.user_token.is_empty() {
            return Err(OrderError::Invalid("not signed in"));
        }
        let mut intent = intent;
        let same = |o: &Order| o.intent.product_id == intent.product_id;
        if let Some(o) = self.orders.iter().find(|o| same(o) && !o.status.is_final()) {
            return Ok(o.id);
        }
        // This buyer's order for this cue was decided: a second one would be a second ticket in
        // the same draw (or a second unit once won). The tap is told the decision again.
        if let Some(i) =
            self.orders.iter().position(|o| same(o) && o.intent.cue_id == intent.cue_id && o.status.is_decision())
        {
            return Ok(self.tell(i));
        }
        let mut body = order_body(&intent);
        match self.elsewhere.iter().find(|m| m.product == intent.product_id) {
            // Another tab is sending this product: this tap is the same order, under its key.
            Some(m) if !m.status.is_final() => {
                intent.key = m.key.clone();
                body = m.body.clone();
            }
            // Another tab of this buyer has its decision for this cue: the tap is that order.
            Some(m) if m.cue == intent.cue_id => {
                intent.key = m.key.clone();
                let mut order = Order::new(0, intent, String::new());
                order.status = m.status;
                order.order_id = m.order_id.clone();
                order.phase = Phase::Done;
                return Ok(self.add(order));
            }
            _ => {}
        }
        if self.orders.iter().any(|o| o.intent.key == intent.key && o.body != body) {
            return Err(OrderError::Invalid("idempotency key already used for another order"));
        }
        if let Some(i) = self.orders.iter().position(|o| same(o) && matches!(o.error, Some(OrderError::GaveUp { .. })))
        {
            let o = &mut self.orders[i];
            o.status = OrderStatus::Pending;
            o.error = None;
            o.failures = 0;
            o.first_sent = None;
            o.phase = Phase::Idle;
            out.push(Output::Tab(TabOp::Acquire { lock: o.lock() }));
            return Ok(self.tell(i));
        }
        let order = Order::new(0, intent, body);
        out.push(Output::Storage(StorageOp::Put { key: order.storage_key(), value: order.record() }));
        out.push(Output::Tab(TabOp::Acquire { lock: order.lock() }));
        Ok(self.add(order))
    }

    /// Takes a new order, under the next id, in place of the one of its product (which ended
    /// without a decision, or on another cue, and was reported) and reports it.
    fn add(&mut self, mut order: Order) -> IntentId {
        // One order per product: every order comes in here.
        if let Some(i) = self.orders.iter().position(|o| o.intent.product_id == order.intent.product_id) {
            self.orders.remove(i);
        }
        self.last_intent += 1;
        order.id = self.last_intent;
        self.orders.push(order);
        self.tell(self.orders.len() - 1)
    }

    /// Reports an order as it stands; its id.
    fn tell(&mut self, i: usize) -> IntentId {
        let update = self.orders[i].update();
        let id = update.intent;
        self.events.push_back(update);
        id
    }

    /// After a page load: asks for the stored intents; those not answered go out again when
    /// the list comes (`StorageResult::Listed`).
    pub fn resume(&mut self, out: &mut Ops, _now: Instant) {
        out.push(Output::Storage(StorageOp::List { prefix: PREFIX.to_string() }));
    }

    /// The next update, oldest first.
    pub fn poll_event(&mut self) -> Option<OrderUpdate> {
        self.events.pop_front()
    }

    /// The order of an intent, as it stands.
    pub fn result(&self, intent: IntentId) -> Option<OrderResult> {
        self.update(intent).map(|u| u.result)
    }

    /// The order of an intent, as it stands, with its cue and product.
    pub fn update(&self, intent: IntentId) -> Option<OrderUpdate> {
        self.orders.iter().find(|o| o.id == intent).map(Order::update)
    }

    /// Tokens left in the retry budget.
    pub fn budget_tokens(&self) -> f64 {
        self.budget.tokens()
    }

    pub fn handle_storage(&mut self, out: &mut Ops, now: Instant, result: StorageResult) {
        match result {
            // A failed write is not durable, but sent all the same: see the module doc.
            StorageResult::Stored { key } | StorageResult::Failed { op: StorageOp::Put { key, .. }, .. } => {
                if let Some(i) = self.orders.iter().position(|o| o.stored_as(&key)) {
                    self.orders[i].stored = true;
                    self.try_send(out, now, i);
                }
            }
            StorageResult::Listed { prefix, entries } if prefix == PREFIX => {
                for (key, value) in entries {
                    if self.orders.iter().any(|o| o.stored_as(&key)) {
                        continue;
                    }
                    let Some(order) = Order::from_record(&value) else { continue };
                    if !order.stored_as(&key)
                        || self.orders.iter().any(|o| o.intent.product_id == order.intent.product_id)
                    {
                        continue;
                    }
                    if order.status.is_final() {
                        // Decided while this page was away: told once, then forgotten.
                        out.push(Output::Storage(StorageOp::Delete { key: order.storage_key() }));
                    } else {
                        out.push(Output::Tab(TabOp::Acquire { lock: order.lock() }));
                    }
                    self.add(order);
                }
            }
            _ => {}
        }
    }

    pub fn handle_tab(&mut self, out: &mut Ops, now: Instant, event: TabEvent) {
        match event {
            TabEvent::Acquired { lock } => {
                match self.orders.iter().position(|o| o.locked_by(&lock) && !o.locked && !o.status.is_final()) {
                    Some(i) => {
                        self.orders[i].locked = true;
                        self.try_send(out, now, i);
                    }
                    None => out.push(Output::Tab(TabOp::Release { lock })),
                }
            }
            TabEvent::Message { message } => {
                let Some(m) = Message::decode(&message) else { return };
                self.heard(out, &m);
                // Kept for a later tap (see `buy`), one per product.
                if let Some(i) = self.elsewhere.iter().position(|e| e.product == m.product) {
                    self.elsewhere.remove(i);
                }
                if m.status.is_decision() || !m.body.is_empty() {
                    if self.elsewhere.len() == MAX_ELSEWHERE {
                        self.elsewhere.remove(0);
                    }
                    self.elsewhere.push(m);
                }
            }
        }
    }

    /// Another tab's word on an order of this page: its decision, or the key and body it sends.
    fn heard(&mut self, out: &mut Ops, m: &Message) {
        let Some(i) = self
            .orders
            .iter()
            .position(|o| !o.status.is_final() && (o.intent.key == m.key || o.intent.product_id == m.product))
        else {
            return;
        };
        let o = &mut self.orders[i];
        if m.status.is_final() {
            if let Phase::InFlight(id, _, _) = o.phase {
                out.cancel(id);
            }
            if m.order_id.is_some() {
                o.order_id = m.order_id.clone();
            }
            self.finish(out, i, m.status, None, Ended::Elsewhere);
            return;
        }
        // Another tab is sending this product: take its key and body if nothing went out
        // under ours.
        if o.intent.key != m.key && o.phase == Phase::Idle && o.attempts == 0 && !o.locked && !m.body.is_empty() {
            out.push(Output::Storage(StorageOp::Delete { key: o.storage_key() }));
            o.intent.key = m.key.clone();
            o.body = m.body.clone();
            o.stored = false;
            out.push(Output::Storage(StorageOp::Put { key: o.storage_key(), value: o.record() }));
        }
    }

    /// Whether `id` is one of this client's requests.
    pub fn owns(&self, id: RequestId) -> bool {
        self.find_request(id).is_some()
    }

    fn find_request(&self, id: RequestId) -> Option<usize> {
        self.orders.iter().position(|o| matches!(o.phase, Phase::InFlight(r, _, _) if r == id))
    }

    pub fn handle_head(&mut self, _now: Instant, id: RequestId, head: ResponseHead) {
        if let Some(i) = self.find_request(id) {
            self.orders[i].head = Some(head);
        }
    }

    pub fn handle_chunk(&mut self, id: RequestId, chunk: &[u8]) {
        if let Some(i) = self.find_request(id) {
            let answer = &mut self.orders[i].answer;
            let room = MAX_BODY.saturating_sub(answer.len());
            answer.extend_from_slice(&chunk[..chunk.len().min(room)]);
        }
    }

    pub fn handle_end(&mut self, out: &mut Ops, now: Instant, id: RequestId, result: Result<(), PlayerError>) {
        let Some(i) = self.find_request(id) else { return };
        let o = &mut self.orders[i];
        let Phase::InFlight(_, step, _) = o.phase else { return };
        let head = o.head.take();
        let answer = core::mem::take(&mut o.answer);
        // No answer to a POST: it may have been taken; ask before sending it again.
        let after_silence = if step == Step::Post { Step::Lookup } else { step };
        let verdict = match (result, head) {
            (Err(e), _) => Verdict::Retry(e.message(), None, after_silence),
            (Ok(()), None) => Verdict::Retry("no response head".into(), None, after_silence),
            (Ok(()), Some(head)) => self.judge(i, step, &head, &answer),
        };
        if let Verdict::Retry(reason, server_wait, next) = verdict {
            let o = &mut self.orders[i];
            o.failures += 1;
            let n = o.failures - 1;
            if o.first_sent.is_some_and(|t| now - t >= GIVE_UP_AFTER_MS) {
                let attempts = o.attempts;
                // No answer and no more retries: reported, the record kept.
                self.finish(
                    out,
                    i,
                    OrderStatus::Error,
                    Some(OrderError::GaveUp { attempts, last: reason }),
                    Ended::GaveUp,
                );
                return;
            }
            let wait = match server_wait {
                Some(wait) => wait,
                None if self.budget.on_failure() => full_jitter(&mut self.rng, n),
                None => slow_lane(&mut self.rng),
            };
            o.phase = Phase::Waiting(now + wait, next);
            return;
        }
        // The server answered, even if not as hoped: the path works.
        self.budget.on_success();
        match verdict {
            Verdict::Final(status, error) => self.finish(out, i, status, error, Ended::Answered),
            Verdict::Follow(wait) => {
                let o = &mut self.orders[i];
                o.failures = 0;
                let next = if o.attempt_url.is_some() { Step::Poll } else { Step::Post };
                o.phase = Phase::Waiting(now + wait, next);
            }
            // The server has nothing under the key: the POST never reached it.
            Verdict::Resend => self.send(out, now, i, Step::Post),
            Verdict::Retry(..) => {}
        }
    }

    /// What a complete response says.
    fn judge(&mut self, i: usize, step: Step, head: &ResponseHead, answer: &[u8]) -> Verdict {
        let server_wait = retry_after_ms(head);
        match head.status {
            404 if step == Step::Lookup => Verdict::Resend,
            200..=202 => {
                let Some(json) = parse_json(answer) else {
                    if head.status == 202 {
                        // Accepted, nothing more said: ask again, same key, at the server's pace.
                        return Verdict::Follow(server_wait.unwrap_or(DEFAULT_POLL_MS));
                    }
                    return Verdict::Final(OrderStatus::Error, Some(OrderError::BadAnswer("not JSON".into())));
                };
                let word = json.str_field("status");
                if let Some(id) = json.str_field("orderId") {
                    let o = &mut self.orders[i];
                    if o.order_id.as_deref() != Some(id) {
                        o.order_id = Some(id.to_string());
                        if head.status == 202 || word.is_none_or(|s| s == "pending") {
                            self.tell(i);
                        }
                    }
                }
                let o = &mut self.orders[i];
                if let Some(u) = json.str_field("attemptUrl") {
                    o.attempt_url = Some(url::resolve(&self.orders_url, u));
                }
                // A lookup answers with the order itself: it is followed where it lives.
                if let (None, Some(id)) = (&o.attempt_url, &o.order_id) {
                    let mut url = text::concat(&[text::trim_end_ascii(&self.orders_url, b'/'), "/orders/"]);
                    encode(&mut url, id);
                    o.attempt_url = Some(url);
                }
                match word.and_then(OrderStatus::from_wire) {
                    Some(s) if s.is_final() && head.status != 202 => {
                        let error = (s == OrderStatus::Rejected).then_some(OrderError::Refused { status: head.status });
                        Verdict::Final(s, error)
                    }
                    None if head.status != 202 => Verdict::Final(
                        OrderStatus::Error,
                        Some(OrderError::BadAnswer(http("no known status in HTTP ", head.status))),
                    ),
                    _ => Verdict::Follow(server_wait.or(json.num_field("retryAfterMs")).unwrap_or(DEFAULT_POLL_MS)),
                }
            }
            409 | 429 | 500..=599 => Verdict::Retry(http("HTTP ", head.status), server_wait, step),
            400 | 404 | 422 => Verdict::Final(OrderStatus::Rejected, Some(OrderError::Refused { status: head.status })),
            401 | 403 => Verdict::Final(OrderStatus::Error, Some(OrderError::Unauthorized { status: head.status })),
            status => Verdict::Final(OrderStatus::Error, Some(OrderError::Status { status })),
        }
    }

    /// An order ends: reported, the lock freed. When the server answered, the other tabs are
    /// told and the record is forgotten.
    fn finish(&mut self, out: &mut Ops, i: usize, status: OrderStatus, error: Option<OrderError>, how: Ended) {
        let o = &mut self.orders[i];
        o.status = status;
        o.error = error;
        o.phase = Phase::Done;
        if how != Ended::GaveUp {
            if how == Ended::Answered && status != OrderStatus::Error {
                out.push(Output::Tab(TabOp::Broadcast { message: o.message(o.order_id.as_deref(), "") }));
            }
            // The decision replaces the intent in storage, so a tab reloaded before it heard the
            // answer shows it when it comes back (and deletes it then: see `handle_storage`).
            if status == OrderStatus::Error {
                out.push(Output::Storage(StorageOp::Delete { key: o.storage_key() }));
            } else {
                out.push(Output::Storage(StorageOp::Put { key: o.storage_key(), value: o.record() }));
            }
        }
        if core::mem::take(&mut o.locked) {
            out.push(Output::Tab(TabOp::Release { lock: o.lock() }));
        }
        self.tell(i);
    }

    /// Sends the order if it is written down, holds the lock and nothing has gone out yet.
    fn try_send(&mut self, out: &mut Ops, now: Instant, i: usize) {
        let o = &self.orders[i];
        if !matches!(o.phase, Phase::Idle) || !o.stored || !o.locked || o.status.is_final() {
            return;
        }
        // `Pending` (checked above), with the body other tabs are to take.
        out.push(Output::Tab(TabOp::Broadcast { message: o.message(None, &o.body) }));
        self.send(out, now, i, Step::Post);
    }

    fn send(&mut self, out: &mut Ops, now: Instant, i: usize, step: Step) {
        let id = out.next_id();
        let o = &mut self.orders[i];
        let auth = ("Authorization".to_string(), text::concat(&["Bearer ", &o.intent.user_token]));
        o.first_sent.get_or_insert(now);
        let base = text::trim_end_ascii(&self.orders_url, b'/');
        let mut headers = vec![auth];
        let (method, url, body) = match (step, &o.attempt_url) {
            (Step::Lookup, _) => {
                let mut url = text::concat(&[base, "/orders?key="]);
                encode(&mut url, &o.intent.key);
                (Method::Get, url, None)
            }
            (Step::Poll, Some(url)) => (Method::Get, url.clone(), None),
            _ => {
                o.attempts += 1;
                headers.push(("Idempotency-Key".to_string(), o.intent.key.clone()));
                headers.push(("Content-Type".to_string(), "application/json".to_string()));
                (Method::Post, text::concat(&[base, "/orders"]), Some(o.body.clone().into_bytes()))
            }
        };
        let request = Request { id, kind: RequestKind::Api, method, url, headers, body, range: None };
        o.head = None;
        o.answer.clear();
        o.phase = Phase::InFlight(id, step, now + ANSWER_TIMEOUT_MS);
        out.push(Output::Fetch(request));
    }

    pub fn poll_timeout(&self) -> Option<Deadline> {
        let mut first: Option<Instant> = None;
        for o in &self.orders {
            if let Phase::Waiting(at, _) | Phase::InFlight(_, _, at) = o.phase {
                if first.is_none_or(|f| at < f) {
                    first = Some(at);
                }
            }
        }
        first.map(|at| Deadline::new(at, TimerReason::Order))
    }

    pub fn handle_timeout(&mut self, out: &mut Ops, now: Instant) {
        for i in 0..self.orders.len() {
            match self.orders[i].phase {
                Phase::Waiting(at, step) if now >= at => self.send(out, now, i, step),
                Phase::InFlight(id, _, at) if now >= at => {
                    out.cancel(id);
                    let error = Err(PlayerError::Network { url: String::new(), reason: "no answer in time".into() });
                    self.handle_end(out, now, id, error);
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests;
