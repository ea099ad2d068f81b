//! The order ledger: where flash-sale orders, sales and draws are kept, so that a crash of the
//! origin in the middle of a sale loses nothing and duplicates nothing.
//!
//! `orders` holds the sale logic (who enters the fair draw, when it closes, who is drawn first)
//! and asks a [`Ledger`] to make each step durable and atomic. The trait is the contract a
//! store must meet; [`SqliteLedger`] (embedded SQLite, one file) is the default, and a
//! PostgreSQL ledger shared by several origins could implement the same methods with the same
//! SQL shapes (`INSERT .. ON CONFLICT`, `UPDATE .. WHERE left >= q`, one transaction each).
//!
//! **The model.** A *sale* is opened on a cue's first order: its product, its stock and what
//! is left, its fair window (`open_ms..close_ms`) and whether it was drawn; it is keyed by the
//! cue's ID and display instant, as cue IDs come again when an origin starts afresh. An *order* is one
//! purchase intent, stored under `(user, Idempotency-Key)` with the request's canonical payload
//! and the final answer the client got, so a retry (before or after a restart) gets the same
//! answer. Orders within the window are *entrants* (`pending`) until the *draw*, which is
//! recorded whole (seed, entrants in arrival order, drawn order, winners). A *win* holds
//! `(user, product)`: one per user and product, whatever the key or the sale.

use std::path::PathBuf;

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

/// Where an order stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Pending,
    Won,
    Lost,
    SoldOut,
    Rejected,
    Cancelled,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Won => "won",
            Status::Lost => "lost",
            Status::SoldOut => "sold_out",
            Status::Rejected => "rejected",
            Status::Cancelled => "cancelled",
        }
    }

    fn parse(s: &str) -> Result<Status, LedgerError> {
        Ok(match s {
            "pending" => Status::Pending,
            "won" => Status::Won,
            "lost" => Status::Lost,
            "sold_out" => Status::SoldOut,
            "rejected" => Status::Rejected,
            "cancelled" => Status::Cancelled,
            other => return Err(LedgerError::Corrupt(format!("unknown order status `{other}`"))),
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("ledger storage: {0}")]
    Storage(#[from] rusqlite::Error),
    #[error("ledger file: {0}")]
    Io(#[from] std::io::Error),
    #[error("ledger content is not what this origin wrote: {0}")]
    Corrupt(String),
    #[error("no sale on cue `{0}`")]
    NoSale(String),
}

/// A flash sale on one cue.
#[derive(Debug, Clone, PartialEq)]
pub struct SaleRow {
    /// The key: the cue's ID and its display instant, since a cue ID may come again (an
    /// origin started afresh numbers its cues from 1 again) for another cue.
    pub sale_id: String,
    pub cue_id: String,
    pub product_id: String,
    pub stock: u32,
    pub left: u32,
    /// The cue's shared display instant: the fair window opens.
    pub open_ms: f64,
    /// The fair window closes: the draw is due.
    pub close_ms: f64,
    pub drawn: bool,
}

/// A new purchase intent, as [`Ledger::place`] stores it.
#[derive(Debug, Clone)]
pub struct NewOrder {
    pub id: String,
    pub user: String,
    pub key: String,
    /// The request's canonical payload: what makes two requests under a key the same intent.
    pub payload: String,
    /// `None` for an order rejected before it had a sale (an unknown cue).
    pub sale_id: Option<String>,
    pub cue_id: String,
    pub product_id: String,
    pub quantity: u32,
    pub received_ms: f64,
    pub shown_at_ms: Option<f64>,
    pub tapped_at_ms: Option<f64>,
    pub latency_ms: Option<f64>,
}

/// How [`Ledger::place`] decides a new order.
#[derive(Debug, Clone, PartialEq)]
pub enum Decide {
    /// Within the fair window: `pending`, an entrant of the draw.
    Enter,
    /// After the window: `won` if the user holds no win for the product and enough stock is
    /// left (taken at once), else `sold_out`, or `rejected` if the user already won it.
    Buy,
    /// `rejected` for this reason; no stock is touched.
    Reject(String),
}

/// What became of a new order.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub status: Status,
    pub reason: Option<String>,
}

/// The final answer to a `POST`, stored under its key.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub status: u16,
    pub body: String,
}

/// What a key holds when a request comes with it.
#[derive(Debug, Clone, PartialEq)]
pub enum Keyed {
    /// The stored answer (the repeat was counted as an attempt).
    Answer(Answer),
    /// The key was used with another payload.
    Conflict,
}

/// What [`Ledger::place`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum Placed {
    New {
        outcome: Outcome,
        answer: Answer,
    },
    /// The key was already there (another request won the race): nothing new was stored.
    Existing(Keyed),
}

/// A stored order.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderRow {
    pub id: String,
    pub user: String,
    pub sale_id: Option<String>,
    pub cue_id: String,
    pub product_id: String,
    pub quantity: u32,
    pub status: Status,
    pub reason: Option<String>,
    pub received_ms: f64,
    pub decided_ms: Option<f64>,
    pub attempts: u32,
    pub shown_at_ms: Option<f64>,
    pub tapped_at_ms: Option<f64>,
    pub latency_ms: Option<f64>,
}

/// One pending entrant of a draw.
#[derive(Debug, Clone, PartialEq)]
pub struct Entrant {
    pub order_id: String,
    pub user: String,
}

/// A draw as it was made, for the audit.
#[derive(Debug, Clone, PartialEq)]
pub struct DrawRecord {
    pub sale_id: String,
    pub seed: u64,
    pub at_ms: f64,
    /// Pending order IDs when the window closed, in arrival order.
    pub entrants: Vec<String>,
    /// The same IDs in the order they were served.
    pub drawn: Vec<String>,
    /// Filled by [`Ledger::draw`]: those that won, in drawn order.
    pub winners: Vec<String>,
}

/// Why a cancel was refused.
#[derive(Debug, PartialEq)]
pub enum CancelError {
    NotFound,
    /// Already decided as lost, sold out, rejected or cancelled.
    Final(Status),
}

/// One sale with its order counts.
#[derive(Debug, Clone, PartialEq)]
pub struct SaleSummary {
    pub sale: SaleRow,
    /// POSTs with the keys of this sale's orders.
    pub attempts: u64,
    pub intents: u64,
    pub pending: u64,
    pub won: u64,
    pub lost: u64,
    pub sold_out: u64,
    pub rejected: u64,
    pub cancelled: u64,
    pub draw: Option<DrawRecord>,
}

/// The contract of an order store. Every method is one atomic transaction: it happens whole or
/// not at all, and another connection (another origin on the same PostgreSQL) sees it whole.
///
/// - **Idempotent insert.** [`Ledger::place`] stores an order under `(user, key)` with its
///   canonical payload and the answer made for it. The pair is unique: if it is already there,
///   nothing is stored and the stored answer comes back ([`Keyed::Answer`], the repeat counted
///   as an attempt), or [`Keyed::Conflict`] if the payload differs. [`Ledger::lookup`] is the
///   same check on its own.
/// - **Atomic stock.** Units are taken only by a decrement conditional on enough being left, in
///   the transaction that records the win: `left` never goes below 0 and never sells a unit
///   twice, whatever the concurrency. A cancelled win puts its units back.
/// - **One win per user and product.** A second win for the same `(user, product)` is refused
///   ([`Decide::Buy`] answers `rejected`, a draw makes it `lost`), across sales and keys.
/// - **Every decision recorded.** An order's status, reason and decision time are stored with
///   it before the transaction ends; a pending order stays pending until a draw or a cancel.
/// - **Every draw recorded.** [`Ledger::draw`] decides the entrants in the given order, marks
///   the sale drawn and stores the record, at once; a second draw of a sale changes nothing and
///   returns the first record.
pub trait Ledger: Send {
    /// The stored answer under `(user, key)`, counting this repeat as an attempt.
    fn lookup(&mut self, user: &str, key: &str, payload: &str) -> Result<Option<Keyed>, LedgerError>;

    /// Stores a new order decided as `decide` says, with the answer `answer` makes of its
    /// outcome; or the existing one under its key.
    fn place(
        &mut self,
        order: &NewOrder,
        decide: &Decide,
        answer: &dyn Fn(&Outcome) -> Answer,
    ) -> Result<Placed, LedgerError>;

    /// The sale `sale.sale_id`, opened as `sale` says if there is none (the first one wins).
    fn open_sale(&mut self, sale: &SaleRow) -> Result<SaleRow, LedgerError>;

    fn sale(&mut self, sale_id: &str) -> Result<Option<SaleRow>, LedgerError>;

    /// The latest sale (by display instant) on the cue `cue_id`.
    fn latest_sale(&mut self, cue_id: &str) -> Result<Option<SaleRow>, LedgerError>;

    /// Sales not drawn yet (to resume after a restart).
    fn undrawn_sales(&mut self) -> Result<Vec<SaleRow>, LedgerError>;

    fn order(&mut self, id: &str) -> Result<Option<OrderRow>, LedgerError>;

    /// `user`'s order under the Idempotency-Key `key`, if the server took one (not counted as
    /// an attempt: a client asks this when a POST's answer was lost).
    fn order_by_key(&mut self, user: &str, key: &str) -> Result<Option<OrderRow>, LedgerError>;

    /// The pending entrants of the sale `sale_id`, in arrival order.
    fn entrants(&mut self, sale_id: &str) -> Result<Vec<Entrant>, LedgerError>;

    /// Decides `draw.drawn` in that order (`won` while stock lasts and the user holds no win
    /// for the product, else `lost`, decided at the sale's close), marks the sale drawn and
    /// stores the record with its winners. An already drawn sale is left as it is.
    fn draw(&mut self, draw: &DrawRecord) -> Result<DrawRecord, LedgerError>;

    /// Cancels `user`'s pending or won order `id` at `now_ms`.
    fn cancel(&mut self, user: &str, id: &str, now_ms: f64) -> Result<Result<OrderRow, CancelError>, LedgerError>;

    /// Forgets decided orders received before `before_ms` (their keys are free again).
    fn forget(&mut self, before_ms: f64) -> Result<u64, LedgerError>;

    /// Orders ever stored (never decreases, even when orders are forgotten).
    fn high_water(&mut self) -> Result<u64, LedgerError>;

    /// Every sale with its counts and draw, oldest first.
    fn summary(&mut self) -> Result<Vec<SaleSummary>, LedgerError>;
}

/// Where the SQLite ledger lives.
#[derive(Debug, Clone, PartialEq)]
pub enum LedgerPath {
    /// `:memory:`: gone with the connection (tests).
    Memory,
    File(PathBuf),
}

impl LedgerPath {
    pub fn parse(text: &str) -> Result<LedgerPath, String> {
        match text {
            "" => Err("a path, or :memory:".into()),
            ":memory:" => Ok(LedgerPath::Memory),
            p => Ok(LedgerPath::File(p.into())),
        }
    }
}

impl std::fmt::Display for LedgerPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LedgerPath::Memory => f.write_str(":memory:"),
            LedgerPath::File(p) => write!(f, "{}", p.display()),
        }
    }
}

/// How long a statement waits for another connection's write lock before failing. One origin
/// has one connection; this is for a second process (or a test's threads) on the same file.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Bumped when the tables change; a file of another version is refused rather than misread.
const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS sales (
    sale_id    TEXT PRIMARY KEY,
    cue_id     TEXT NOT NULL,
    product_id TEXT NOT NULL,
    stock      INTEGER NOT NULL,
    left_units INTEGER NOT NULL CHECK (left_units >= 0),
    open_ms    REAL NOT NULL,
    close_ms   REAL NOT NULL,
    drawn      INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS orders (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    id            TEXT NOT NULL UNIQUE,
    user_id       TEXT NOT NULL,
    idem_key      TEXT NOT NULL,
    payload       TEXT NOT NULL,
    sale_id       TEXT,
    cue_id        TEXT NOT NULL,
    product_id    TEXT NOT NULL,
    quantity      INTEGER NOT NULL,
    status        TEXT NOT NULL,
    reason        TEXT,
    received_ms   REAL NOT NULL,
    decided_ms    REAL,
    attempts      INTEGER NOT NULL,
    shown_at_ms   REAL,
    tapped_at_ms  REAL,
    latency_ms    REAL,
    entrant       INTEGER NOT NULL,
    answer_status INTEGER NOT NULL,
    answer_body   TEXT NOT NULL,
    UNIQUE (user_id, idem_key)
);
CREATE INDEX IF NOT EXISTS sales_by_cue ON sales (cue_id, open_ms);
CREATE INDEX IF NOT EXISTS orders_by_sale ON orders (sale_id, entrant, status);
CREATE INDEX IF NOT EXISTS orders_by_age ON orders (received_ms);
CREATE TABLE IF NOT EXISTS wins (
    user_id    TEXT NOT NULL,
    product_id TEXT NOT NULL,
    order_id   TEXT NOT NULL UNIQUE,
    PRIMARY KEY (user_id, product_id)
);
CREATE TABLE IF NOT EXISTS draws (
    sale_id  TEXT PRIMARY KEY,
    seed     TEXT NOT NULL,
    at_ms    REAL NOT NULL,
    entrants TEXT NOT NULL,
    drawn    TEXT NOT NULL,
    winners  TEXT NOT NULL
);
";

/// The ledger in one SQLite file (or in memory), through one connection.
pub struct SqliteLedger {
    conn: Connection,
}

impl SqliteLedger {
    /// Opens (creating it and its directory if need be) the ledger at `path`.
    pub fn open(path: &LedgerPath) -> Result<SqliteLedger, LedgerError> {
        let conn = match path {
            LedgerPath::Memory => Connection::open_in_memory()?,
            LedgerPath::File(p) => {
                if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir)?;
                }
                Connection::open(p)?
            }
        };
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // WAL: readers never block the writer and a commit is one append. synchronous=NORMAL:
        // in WAL mode a commit survives a crash of the process (what a restart mid-sale is
        // about) and is only at risk from a power cut or an OS crash before the next
        // checkpoint; FULL would fsync every POST, which caps a flash sale at the disk's sync
        // rate (a few hundred a second on many disks) instead of thousands.
        let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        if path != &LedgerPath::Memory && !mode.eq_ignore_ascii_case("wal") {
            return Err(LedgerError::Corrupt(format!("journal mode is {mode}, not wal")));
        }
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version != 0 && version != SCHEMA_VERSION {
            return Err(LedgerError::Corrupt(format!("schema version {version}, this origin knows {SCHEMA_VERSION}")));
        }
        conn.execute_batch(SCHEMA)?;
        conn.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        Ok(SqliteLedger { conn })
    }
}

fn keyed(tx: &Connection, user: &str, key: &str, payload: &str) -> Result<Option<Keyed>, LedgerError> {
    let found = tx
        .prepare_cached("SELECT payload, answer_status, answer_body FROM orders WHERE user_id = ?1 AND idem_key = ?2")?
        .query_row(params![user, key], |r| Ok((r.get::<_, String>(0)?, r.get::<_, u16>(1)?, r.get::<_, String>(2)?)))
        .optional()?;
    let Some((stored, status, body)) = found else { return Ok(None) };
    if stored != payload {
        return Ok(Some(Keyed::Conflict));
    }
    tx.prepare_cached("UPDATE orders SET attempts = attempts + 1 WHERE user_id = ?1 AND idem_key = ?2")?
        .execute(params![user, key])?;
    Ok(Some(Keyed::Answer(Answer { status, body })))
}

fn sale_row(r: &rusqlite::Row) -> rusqlite::Result<SaleRow> {
    Ok(SaleRow {
        sale_id: r.get(0)?,
        cue_id: r.get(1)?,
        product_id: r.get(2)?,
        stock: r.get(3)?,
        left: r.get(4)?,
        open_ms: r.get(5)?,
        close_ms: r.get(6)?,
        drawn: r.get(7)?,
    })
}

const SALE_COLUMNS: &str = "sale_id, cue_id, product_id, stock, left_units, open_ms, close_ms, drawn";

fn get_sale(tx: &Connection, sale_id: &str) -> Result<Option<SaleRow>, LedgerError> {
    let sql = format!("SELECT {SALE_COLUMNS} FROM sales WHERE sale_id = ?1");
    Ok(tx.prepare_cached(&sql)?.query_row([sale_id], sale_row).optional()?)
}

/// Takes `quantity` units for `user`'s order if the user holds no win for the product and
/// enough are left: `Ok(true)` if taken, `Ok(false)` if sold out, `Err(())` if already won.
fn take(
    tx: &Connection,
    sale_id: &str,
    product: &str,
    user: &str,
    order: &str,
    quantity: u32,
) -> Result<Result<bool, ()>, LedgerError> {
    let won_before = tx
        .prepare_cached("SELECT 1 FROM wins WHERE user_id = ?1 AND product_id = ?2")?
        .exists(params![user, product])?;
    if won_before {
        return Ok(Err(()));
    }
    let taken = tx
        .prepare_cached("UPDATE sales SET left_units = left_units - ?2 WHERE sale_id = ?1 AND left_units >= ?2")?
        .execute(params![sale_id, quantity])?;
    if taken == 0 {
        return Ok(Ok(false));
    }
    tx.prepare_cached("INSERT INTO wins (user_id, product_id, order_id) VALUES (?1, ?2, ?3)")?
        .execute(params![user, product, order])?;
    Ok(Ok(true))
}

const ORDER_COLUMNS: &str = "id, user_id, cue_id, product_id, quantity, status, reason, received_ms, decided_ms, \
                             attempts, shown_at_ms, tapped_at_ms, latency_ms, sale_id";

fn get_order(tx: &Connection, id: &str) -> Result<Option<OrderRow>, LedgerError> {
    let sql = format!("SELECT {ORDER_COLUMNS} FROM orders WHERE id = ?1");
    let row = tx
        .prepare_cached(&sql)?
        .query_row([id], |r| {
            Ok((
                OrderRow {
                    id: r.get(0)?,
                    user: r.get(1)?,
                    cue_id: r.get(2)?,
                    product_id: r.get(3)?,
                    quantity: r.get(4)?,
                    status: Status::Pending,
                    reason: r.get(6)?,
                    received_ms: r.get(7)?,
                    decided_ms: r.get(8)?,
                    attempts: r.get(9)?,
                    shown_at_ms: r.get(10)?,
                    tapped_at_ms: r.get(11)?,
                    latency_ms: r.get(12)?,
                    sale_id: r.get(13)?,
                },
                r.get::<_, String>(5)?,
            ))
        })
        .optional()?;
    row.map(|(mut o, status)| {
        o.status = Status::parse(&status)?;
        Ok(o)
    })
    .transpose()
}

fn ids_json(ids: &[String]) -> String {
    serde_json::Value::from(ids.to_vec()).to_string()
}

fn ids_of(text: &str) -> Result<Vec<String>, LedgerError> {
    serde_json::from_str(text).map_err(|e| LedgerError::Corrupt(format!("a draw's list: {e}")))
}

fn get_draw(tx: &Connection, sale_id: &str) -> Result<Option<DrawRecord>, LedgerError> {
    let row = tx
        .prepare_cached("SELECT seed, at_ms, entrants, drawn, winners FROM draws WHERE sale_id = ?1")?
        .query_row([sale_id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, f64>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
            ))
        })
        .optional()?;
    let Some((seed, at_ms, entrants, drawn, winners)) = row else { return Ok(None) };
    Ok(Some(DrawRecord {
        sale_id: sale_id.into(),
        seed: seed.parse().map_err(|_| LedgerError::Corrupt(format!("draw seed `{seed}`")))?,
        at_ms,
        entrants: ids_of(&entrants)?,
        drawn: ids_of(&drawn)?,
        winners: ids_of(&winners)?,
    }))
}

impl Ledger for SqliteLedger {
    fn lookup(&mut self, user: &str, key: &str, payload: &str) -> Result<Option<Keyed>, LedgerError> {
        // Most lookups find nothing (a new intent): the read and, for a repeat, the one
        // counting UPDATE are each atomic on their own, without a write transaction.
        keyed(&self.conn, user, key, payload)
    }

    fn place(
        &mut self,
        order: &NewOrder,
        decide: &Decide,
        answer: &dyn Fn(&Outcome) -> Answer,
    ) -> Result<Placed, LedgerError> {
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        if let Some(existing) = keyed(&tx, &order.user, &order.key, &order.payload)? {
            tx.commit()?;
            return Ok(Placed::Existing(existing));
        }
        let outcome = match decide {
            Decide::Enter => Outcome { status: Status::Pending, reason: None },
            Decide::Reject(reason) => Outcome { status: Status::Rejected, reason: Some(reason.clone()) },
            Decide::Buy => {
                let sale = order.sale_id.as_deref().unwrap_or_default();
                if get_sale(&tx, sale)?.is_none() {
                    return Err(LedgerError::NoSale(sale.into()));
                }
                match take(&tx, sale, &order.product_id, &order.user, &order.id, order.quantity)? {
                    Ok(true) => Outcome { status: Status::Won, reason: None },
                    Ok(false) => Outcome { status: Status::SoldOut, reason: None },
                    Err(()) => Outcome {
                        status: Status::Rejected,
                        reason: Some("one per customer: this user already won this product".into()),
                    },
                }
            }
        };
        let made = answer(&outcome);
        let decided = (outcome.status != Status::Pending).then_some(order.received_ms);
        tx.prepare_cached(
            "INSERT INTO orders (id, user_id, idem_key, payload, cue_id, product_id, quantity, status, reason,
                received_ms, decided_ms, attempts, shown_at_ms, tapped_at_ms, latency_ms, entrant, answer_status,
                answer_body, sale_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, 1, ?12, ?13, ?14, ?15, ?16, ?17, ?18)",
        )?
        .execute(params![
            order.id,
            order.user,
            order.key,
            order.payload,
            order.cue_id,
            order.product_id,
            order.quantity,
            outcome.status.as_str(),
            outcome.reason,
            order.received_ms,
            decided,
            order.shown_at_ms,
            order.tapped_at_ms,
            order.latency_ms,
            *decide == Decide::Enter,
            made.status,
            made.body,
            order.sale_id,
        ])?;
        tx.commit()?;
        Ok(Placed::New { outcome, answer: made })
    }

    fn open_sale(&mut self, sale: &SaleRow) -> Result<SaleRow, LedgerError> {
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.prepare_cached(
            "INSERT INTO sales (sale_id, cue_id, product_id, stock, left_units, open_ms, close_ms, drawn)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (sale_id) DO NOTHING",
        )?
        .execute(params![
            sale.sale_id,
            sale.cue_id,
            sale.product_id,
            sale.stock,
            sale.left,
            sale.open_ms,
            sale.close_ms,
            sale.drawn
        ])?;
        let stored = get_sale(&tx, &sale.sale_id)?.ok_or_else(|| LedgerError::NoSale(sale.sale_id.clone()))?;
        tx.commit()?;
        Ok(stored)
    }

    fn sale(&mut self, sale_id: &str) -> Result<Option<SaleRow>, LedgerError> {
        get_sale(&self.conn, sale_id)
    }

    fn latest_sale(&mut self, cue_id: &str) -> Result<Option<SaleRow>, LedgerError> {
        let sql = format!("SELECT {SALE_COLUMNS} FROM sales WHERE cue_id = ?1 ORDER BY open_ms DESC LIMIT 1");
        Ok(self.conn.prepare_cached(&sql)?.query_row([cue_id], sale_row).optional()?)
    }

    fn undrawn_sales(&mut self) -> Result<Vec<SaleRow>, LedgerError> {
        let sql = format!("SELECT {SALE_COLUMNS} FROM sales WHERE drawn = 0 ORDER BY close_ms");
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map([], sale_row)?.collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    fn order(&mut self, id: &str) -> Result<Option<OrderRow>, LedgerError> {
        get_order(&self.conn, id)
    }

    fn order_by_key(&mut self, user: &str, key: &str) -> Result<Option<OrderRow>, LedgerError> {
        let id = self
            .conn
            .prepare_cached("SELECT id FROM orders WHERE user_id = ?1 AND idem_key = ?2")?
            .query_row(params![user, key], |r| r.get::<_, String>(0))
            .optional()?;
        match id {
            Some(id) => get_order(&self.conn, &id),
            None => Ok(None),
        }
    }

    fn entrants(&mut self, sale_id: &str) -> Result<Vec<Entrant>, LedgerError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, user_id FROM orders WHERE sale_id = ?1 AND entrant = 1 AND status = 'pending' ORDER BY seq",
        )?;
        let rows = stmt
            .query_map([sale_id], |r| Ok(Entrant { order_id: r.get(0)?, user: r.get(1)? }))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    fn draw(&mut self, draw: &DrawRecord) -> Result<DrawRecord, LedgerError> {
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let sale = get_sale(&tx, &draw.sale_id)?.ok_or_else(|| LedgerError::NoSale(draw.sale_id.clone()))?;
        if sale.drawn {
            let first = get_draw(&tx, &draw.sale_id)?;
            tx.commit()?;
            return first
                .ok_or_else(|| LedgerError::Corrupt(format!("sale `{}` drawn without a record", draw.sale_id)));
        }
        let mut winners = Vec::new();
        for id in &draw.drawn {
            let Some(o) = get_order(&tx, id)? else { continue };
            if o.status != Status::Pending || o.sale_id.as_deref() != Some(draw.sale_id.as_str()) {
                continue;
            }
            let won = take(&tx, &draw.sale_id, &o.product_id, &o.user, &o.id, o.quantity)? == Ok(true);
            let status = if won { Status::Won } else { Status::Lost };
            tx.prepare_cached("UPDATE orders SET status = ?2, decided_ms = ?3 WHERE id = ?1")?.execute(params![
                id,
                status.as_str(),
                sale.close_ms
            ])?;
            if won {
                winners.push(id.clone());
            }
        }
        tx.prepare_cached("UPDATE sales SET drawn = 1 WHERE sale_id = ?1")?.execute([&draw.sale_id])?;
        tx.prepare_cached(
            "INSERT INTO draws (sale_id, seed, at_ms, entrants, drawn, winners) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![
            draw.sale_id,
            draw.seed.to_string(),
            draw.at_ms,
            ids_json(&draw.entrants),
            ids_json(&draw.drawn),
            ids_json(&winners)
        ])?;
        tx.commit()?;
        Ok(DrawRecord { winners, ..draw.clone() })
    }

    fn cancel(&mut self, user: &str, id: &str, now_ms: f64) -> Result<Result<OrderRow, CancelError>, LedgerError> {
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let Some(mut o) = get_order(&tx, id)?.filter(|o| o.user == user) else {
            return Ok(Err(CancelError::NotFound));
        };
        match o.status {
            Status::Pending => {}
            Status::Won => {
                tx.prepare_cached("UPDATE sales SET left_units = left_units + ?2 WHERE sale_id = ?1")?
                    .execute(params![o.sale_id, o.quantity])?;
                tx.prepare_cached("DELETE FROM wins WHERE order_id = ?1")?.execute([id])?;
            }
            s => return Ok(Err(CancelError::Final(s))),
        }
        tx.prepare_cached("UPDATE orders SET status = 'cancelled', decided_ms = ?2 WHERE id = ?1")?
            .execute(params![id, now_ms])?;
        tx.commit()?;
        o.status = Status::Cancelled;
        o.decided_ms = Some(now_ms);
        Ok(Ok(o))
    }

    fn forget(&mut self, before_ms: f64) -> Result<u64, LedgerError> {
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.prepare_cached(
            "DELETE FROM wins WHERE order_id IN
               (SELECT id FROM orders WHERE received_ms < ?1 AND status != 'pending')",
        )?
        .execute([before_ms])?;
        let gone = tx
            .prepare_cached("DELETE FROM orders WHERE received_ms < ?1 AND status != 'pending'")?
            .execute([before_ms])?;
        tx.commit()?;
        Ok(gone as u64)
    }

    fn high_water(&mut self) -> Result<u64, LedgerError> {
        // AUTOINCREMENT keeps the largest seq ever used in sqlite_sequence, even once deleted.
        let n: Option<i64> = self
            .conn
            .prepare_cached("SELECT seq FROM sqlite_sequence WHERE name = 'orders'")?
            .query_row([], |r| r.get(0))
            .optional()?;
        Ok(n.unwrap_or(0).max(0) as u64)
    }

    fn summary(&mut self) -> Result<Vec<SaleSummary>, LedgerError> {
        let sql = format!("SELECT {SALE_COLUMNS} FROM sales ORDER BY open_ms, sale_id");
        let sales = self.conn.prepare_cached(&sql)?.query_map([], sale_row)?.collect::<Result<Vec<_>, _>>()?;
        let mut out = Vec::with_capacity(sales.len());
        for sale in sales {
            let mut s = SaleSummary {
                attempts: 0,
                intents: 0,
                pending: 0,
                won: 0,
                lost: 0,
                sold_out: 0,
                rejected: 0,
                cancelled: 0,
                draw: get_draw(&self.conn, &sale.sale_id)?,
                sale,
            };
            let mut stmt = self.conn.prepare_cached(
                "SELECT status, count(*), sum(attempts) FROM orders WHERE sale_id = ?1 GROUP BY status",
            )?;
            let counts = stmt
                .query_map([&s.sale.sale_id], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, u64>(1)?, r.get::<_, u64>(2)?))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            for (status, n, attempts) in counts {
                s.intents += n;
                s.attempts += attempts;
                *match Status::parse(&status)? {
                    Status::Pending => &mut s.pending,
                    Status::Won => &mut s.won,
                    Status::Lost => &mut s.lost,
                    Status::SoldOut => &mut s.sold_out,
                    Status::Rejected => &mut s.rejected,
                    Status::Cancelled => &mut s.cancelled,
                } += n;
            }
            out.push(s);
        }
        Ok(out)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// A fresh file under the system's temp directory, removed (with its WAL) on drop.
    pub(crate) struct TempLedger(pub PathBuf);

    impl TempLedger {
        pub(crate) fn new(name: &str) -> TempLedger {
            static N: AtomicU32 = AtomicU32::new(0);
            let n = N.fetch_add(1, Ordering::Relaxed);
            let dir = std::env::temp_dir().join(format!("liveshop-ledger-{}-{n}-{name}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            TempLedger(dir.join("orders.sqlite"))
        }

        pub(crate) fn path(&self) -> LedgerPath {
            LedgerPath::File(self.0.clone())
        }
    }

    impl Drop for TempLedger {
        fn drop(&mut self) {
            if let Some(dir) = self.0.parent() {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
    }

    // The contract, against any ledger a factory opens (each call: a new connection to the
    // same store). SQLite runs it below; another store would add its factory.

    fn sale(cue: &str, product: &str, stock: u32, close_ms: f64) -> SaleRow {
        SaleRow {
            sale_id: cue.into(),
            cue_id: cue.into(),
            product_id: product.into(),
            stock,
            left: stock,
            open_ms: 0.0,
            close_ms,
            drawn: false,
        }
    }

    fn order(id: &str, user: &str, key: &str, cue: &str, quantity: u32) -> NewOrder {
        NewOrder {
            id: id.into(),
            user: user.into(),
            key: key.into(),
            payload: format!("{cue}/{quantity}"),
            sale_id: Some(cue.into()),
            cue_id: cue.into(),
            product_id: "sku-1".into(),
            quantity,
            received_ms: 10.0,
            shown_at_ms: None,
            tapped_at_ms: None,
            latency_ms: None,
        }
    }

    /// The answer names the order and its outcome, so a replay can be told from a new one.
    fn answer_for(id: &str) -> impl Fn(&Outcome) -> Answer + '_ {
        move |o| Answer { status: 202, body: format!("{id}:{}", o.status.as_str()) }
    }

    fn place(l: &mut dyn Ledger, o: &NewOrder, decide: Decide) -> Placed {
        l.place(o, &decide, &answer_for(&o.id)).unwrap()
    }

    fn won(p: &Placed) -> bool {
        matches!(p, Placed::New { outcome, .. } if outcome.status == Status::Won)
    }

    fn a_repeat_gets_the_stored_answer_and_another_payload_is_a_conflict(open: &dyn Fn() -> Box<dyn Ledger>) {
        let mut l = open();
        l.open_sale(&sale("c", "sku-1", 5, 0.0)).unwrap();
        let first = place(&mut *l, &order("o-1", "alice", "k", "c", 1), Decide::Buy);
        let Placed::New { answer, .. } = &first else { panic!("{first:?}") };
        assert_eq!(answer.body, "o-1:won");
        // The same key again, even under another order ID: the stored answer, nothing new.
        let again = place(&mut *l, &order("o-2", "alice", "k", "c", 1), Decide::Buy);
        assert_eq!(again, Placed::Existing(Keyed::Answer(answer.clone())));
        assert_eq!(l.lookup("alice", "k", "c/1").unwrap(), Some(Keyed::Answer(answer.clone())));
        assert_eq!(l.order("o-1").unwrap().unwrap().attempts, 3, "the first and two repeats");
        assert_eq!(l.order("o-2").unwrap(), None);
        // Another payload under the key.
        assert_eq!(place(&mut *l, &order("o-3", "alice", "k", "c", 2), Decide::Buy), Placed::Existing(Keyed::Conflict));
        assert_eq!(l.lookup("alice", "k", "c/2").unwrap(), Some(Keyed::Conflict));
        // The key is per user.
        assert_eq!(l.lookup("bob", "k", "c/1").unwrap(), None);
        assert_eq!(l.sale("c").unwrap().unwrap().left, 4, "one unit taken, once");
        // A new connection sees the same.
        assert_eq!(open().lookup("alice", "k", "c/1").unwrap(), Some(Keyed::Answer(answer.clone())));
    }

    fn stock_is_taken_atomically_by_concurrent_connections(open: &(dyn Fn() -> Box<dyn Ledger> + Sync)) {
        const THREADS: usize = 4;
        const EACH: usize = 40;
        const STOCK: u32 = 50;
        open().open_sale(&sale("c", "sku-1", STOCK, 0.0)).unwrap();
        let wins = std::thread::scope(|s| {
            let handles: Vec<_> = (0..THREADS)
                .map(|t| {
                    s.spawn(move || {
                        let mut l = open();
                        (0..EACH)
                            .filter(|i| {
                                let id = format!("o-{t}-{i}");
                                won(&place(&mut *l, &order(&id, &id, "k", "c", 1), Decide::Buy))
                            })
                            .count()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum::<usize>()
        });
        assert_eq!(wins, STOCK as usize, "exactly the stock is sold");
        let summary = open().summary().unwrap();
        let s = &summary[0];
        assert_eq!((s.sale.left, s.won, s.sold_out, s.intents), (0, 50, (THREADS * EACH) as u64 - 50, 160));
    }

    fn a_user_wins_a_product_once_whatever_the_key_or_the_sale(open: &dyn Fn() -> Box<dyn Ledger>) {
        let mut l = open();
        l.open_sale(&sale("c1", "sku-1", 10, 0.0)).unwrap();
        l.open_sale(&sale("c2", "sku-1", 10, 100.0)).unwrap();
        assert!(won(&place(&mut *l, &order("o-1", "alice", "k1", "c1", 1), Decide::Buy)));
        let second = place(&mut *l, &order("o-2", "alice", "k2", "c1", 1), Decide::Buy);
        let Placed::New { outcome, .. } = second else { panic!("{second:?}") };
        assert_eq!(outcome.status, Status::Rejected);
        // In a draw of another sale of the same product, her entrant loses and takes nothing.
        for (id, user) in [("o-3", "alice"), ("o-4", "bob"), ("o-5", "bob")] {
            place(&mut *l, &order(id, user, id, "c2", 1), Decide::Enter);
        }
        let entrants: Vec<String> = l.entrants("c2").unwrap().into_iter().map(|e| e.order_id).collect();
        assert_eq!(entrants, ["o-3", "o-4", "o-5"], "arrival order");
        let record = DrawRecord {
            sale_id: "c2".into(),
            seed: 9,
            at_ms: 101.0,
            entrants: entrants.clone(),
            drawn: entrants.clone(),
            winners: Vec::new(),
        };
        let drawn = l.draw(&record).unwrap();
        assert_eq!(drawn.winners, ["o-4"], "alice won sku-1 before; bob wins it once");
        assert_eq!(l.order("o-3").unwrap().unwrap().status, Status::Lost);
        assert_eq!(l.order("o-5").unwrap().unwrap().decided_ms, Some(100.0), "decided at the close");
        assert_eq!(l.sale("c2").unwrap().unwrap().left, 9);
        // The draw is recorded once: drawing again changes nothing.
        let again = l.draw(&DrawRecord { seed: 1, drawn: vec!["o-5".into()], ..record }).unwrap();
        assert_eq!(again, drawn);
        // A cancelled win gives the units and the user's win back.
        assert!(l.cancel("alice", "o-1", 200.0).unwrap().is_ok());
        assert_eq!(l.cancel("bob", "o-1", 200.0).unwrap(), Err(CancelError::NotFound), "not bob's");
        assert_eq!(l.sale("c1").unwrap().unwrap().left, 10);
        assert!(won(&place(&mut *l, &order("o-6", "alice", "k6", "c1", 1), Decide::Buy)));
    }

    fn run_the_contract(open: &(dyn Fn() -> Box<dyn Ledger> + Sync), fresh: &dyn Fn()) {
        fresh();
        a_repeat_gets_the_stored_answer_and_another_payload_is_a_conflict(open);
        fresh();
        stock_is_taken_atomically_by_concurrent_connections(open);
        fresh();
        a_user_wins_a_product_once_whatever_the_key_or_the_sale(open);
    }

    #[test]
    fn the_sqlite_ledger_meets_the_contract() {
        let file = TempLedger::new("contract");
        let path = file.path();
        let open = || Box::new(SqliteLedger::open(&path).unwrap()) as Box<dyn Ledger>;
        let fresh = || {
            let _ = std::fs::remove_dir_all(file.0.parent().unwrap());
        };
        run_the_contract(&open, &fresh);
    }

    #[test]
    fn what_was_stored_is_there_after_the_ledger_is_reopened() {
        let file = TempLedger::new("reopen");
        {
            let mut l = SqliteLedger::open(&file.path()).unwrap();
            l.open_sale(&sale("c", "sku-1", 3, 50.0)).unwrap();
            place(&mut l, &order("o-1", "alice", "k", "c", 1), Decide::Enter);
        }
        let mut l = SqliteLedger::open(&file.path()).unwrap();
        assert_eq!(l.undrawn_sales().unwrap(), [sale("c", "sku-1", 3, 50.0)]);
        assert_eq!(l.entrants("c").unwrap(), [Entrant { order_id: "o-1".into(), user: "alice".into() }]);
        assert!(matches!(l.lookup("alice", "k", "c/1").unwrap(), Some(Keyed::Answer(a)) if a.body == "o-1:pending"));
        assert_eq!(l.high_water().unwrap(), 1);
    }

    #[test]
    fn a_file_of_another_schema_version_is_refused() {
        let file = TempLedger::new("version");
        drop(SqliteLedger::open(&file.path()).unwrap());
        let c = Connection::open(&file.0).unwrap();
        c.pragma_update(None, "user_version", 99).unwrap();
        drop(c);
        let err = SqliteLedger::open(&file.path()).err().unwrap();
        assert!(err.to_string().contains("schema version 99"), "{err}");
        assert_eq!(LedgerPath::parse(""), Err("a path, or :memory:".into()));
        assert_eq!(LedgerPath::parse(":memory:"), Ok(LedgerPath::Memory));
    }
}
