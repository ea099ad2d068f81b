//! The options object JavaScript passes (DESIGN §3.1), read field by field: each field is
//! checked for its type and named in the error when it is wrong. (A serde deserializer did
//! this before at the cost of serde in every viewer's download.)

use crate::prelude::*;
use js_sys::{Array, Reflect};
use wasm_bindgen::{JsCast, JsValue};

use crate::core::live::Purchase;
use crate::core::orders::OrderError;
use crate::core::replay::ReplayConfig;
use crate::core::{LiveConfig, PlayerError};

/// A field that is wrong, and why: two words while the options are read (each read's `?`
/// stays small), a `PlayerError` once they have been.
pub struct Invalid {
    field: &'static str,
    reason: &'static str,
}

impl From<Invalid> for PlayerError {
    fn from(e: Invalid) -> Self {
        PlayerError::InvalidOption { field: e.field, reason: e.reason.into() }
    }
}

fn invalid(field: &'static str, reason: &'static str) -> Invalid {
    Invalid { field, reason }
}

/// Reads an options object field by field, each checked for its type. The first wrong field is
/// kept and `finish` reports it; reading goes on past it, so each read returns a plain value and
/// no partly built config is dropped on an early way out.
struct Reader<'a> {
    options: &'a JsValue,
    error: Option<Invalid>,
}

impl<'a> Reader<'a> {
    fn new(options: &'a JsValue) -> Self {
        Reader { options, error: None }
    }

    /// Notes a wrong field, unless an earlier one was.
    fn fail(&mut self, field: &'static str, reason: &'static str) {
        self.error.get_or_insert(invalid(field, reason));
    }

    /// The field, unless it is missing, `undefined` or `null`.
    fn field(&mut self, name: &'static str) -> Option<JsValue> {
        match Reflect::get(self.options, &name.into()) {
            Ok(value) => (!value.is_undefined() && !value.is_null()).then_some(value),
            Err(_) => {
                self.fail(name, "cannot be read");
                None
            }
        }
    }

    fn string(&mut self, name: &'static str) -> Option<String> {
        let s = self.field(name)?.as_string();
        if s.is_none() {
            self.fail(name, "must be a string");
        }
        s
    }

    fn number(&mut self, name: &'static str) -> Option<f64> {
        let n = self.field(name)?.as_f64();
        match n {
            Some(n) if n.is_finite() => return Some(n),
            Some(_) => self.fail(name, "must be finite"),
            None => self.fail(name, "must be a number"),
        }
        None
    }

    /// An array of strings; empty when missing.
    fn strings(&mut self, name: &'static str) -> Vec<String> {
        let mut strings = Vec::new();
        let Some(value) = self.field(name) else { return strings };
        if Array::is_array(&value) {
            let array: Array = value.unchecked_into();
            for v in array.iter() {
                let Some(s) = v.as_string() else { break };
                strings.push(s);
            }
            if strings.len() == array.length() as usize {
                return strings;
            }
        }
        self.fail(name, "must be an array of strings");
        Vec::new()
    }

    /// A URL, resolved against the page.
    fn url(&mut self, name: &'static str, resolve: &dyn Fn(&str) -> Option<String>) -> Option<String> {
        let url = resolve(&self.string(name)?);
        if url.is_none() {
            self.fail(name, "not a URL");
        }
        url
    }

    /// A URL that must be there: the player's source.
    fn src(&mut self, resolve: &dyn Fn(&str) -> Option<String>) -> String {
        let src = self.url("src", resolve);
        if src.is_none() {
            self.fail("src", "is required");
        }
        src.unwrap_or_default()
    }

    /// `value`, unless a field was wrong.
    fn finish<T>(self, value: T) -> Result<T, Invalid> {
        match self.error {
            Some(e) => Err(e),
            None => Ok(value),
        }
    }
}

/// Reads the live player's options, and its `rewindSrc` (the show's growing recording, for
/// `seekToNode`); URLs are resolved with `resolve` (against the page).
pub fn live_config(
    options: &JsValue,
    resolve: &dyn Fn(&str) -> Option<String>,
) -> Result<(LiveConfig, Option<String>), Invalid> {
    if !options.is_object() {
        return Err(invalid("options", "must be an object with at least `src`"));
    }
    let mut r = Reader::new(options);
    let mut config = LiveConfig::new(r.src(resolve));
    config.clock_url = r.url("clockUrl", resolve);
    config.cues_url = r.url("cuesUrl", resolve);
    config.orders_url = r.url("ordersUrl", resolve);
    config.target_latency_ms = r.number("targetLatencyMs");
    config.link_allowlist = r.strings("linkAllowlist");
    config.min_rate = r.number("minPlaybackRate").unwrap_or(config.min_rate);
    config.max_rate = r.number("maxPlaybackRate").unwrap_or(config.max_rate);
    let rewind_src = r.url("rewindSrc", resolve);
    r.finish((config, rewind_src))
}

/// Reads `buy()`'s options; the key defaults to `new_key()` (`crypto.randomUUID()`). A field of
/// the wrong type is refused as soon as it is read, before what the next field says.
pub fn purchase(options: &JsValue, cue_id: String, new_key: fn() -> Option<String>) -> Result<Purchase, OrderError> {
    if !options.is_object() {
        return Err(OrderError::Invalid("options must be an object with `userToken`"));
    }
    let mut r = Reader::new(options);
    let typed = |r: &Reader| match r.error {
        Some(_) => Err(OrderError::Invalid("options must be { userToken, quantity?, idempotencyKey? }")),
        None => Ok(()),
    };
    let user_token = r.string("userToken");
    typed(&r)?;
    let user_token = user_token.ok_or(OrderError::Invalid("not signed in: no `userToken`"))?;
    let quantity = r.number("quantity").unwrap_or(1.0);
    typed(&r)?;
    if quantity.fract() != 0.0 || !(1.0..=1000.0).contains(&quantity) {
        return Err(OrderError::Invalid("quantity must be a whole number from 1"));
    }
    let key = r.string("idempotencyKey");
    typed(&r)?;
    let key = match key {
        Some(k) => k,
        None => new_key().ok_or(OrderError::Invalid("no crypto.randomUUID here: pass `idempotencyKey`"))?,
    };
    Ok(Purchase { cue_id, quantity: quantity as u32, user_token, key })
}

/// Reads the replay player's options; URLs are resolved with `resolve` (against the page).
pub fn replay_config(options: &JsValue, resolve: &dyn Fn(&str) -> Option<String>) -> Result<ReplayConfig, Invalid> {
    if !options.is_object() {
        return Err(invalid("options", "must be an object with at least `src`"));
    }
    let mut r = Reader::new(options);
    let mut config = ReplayConfig::new(r.src(resolve));
    config.thumbnails_url = r.url("thumbnailsUrl", resolve);
    config.orders_url = r.url("ordersUrl", resolve);
    config.link_allowlist = r.strings("linkAllowlist");
    if let Some(budget) = r.number("prefetchBudgetBytes") {
        if (0.0..=256.0 * 1024.0 * 1024.0).contains(&budget) {
            config.prefetch_budget_bytes = budget as usize;
        } else {
            r.fail("prefetchBudgetBytes", "must be 0 to 256 MiB");
        }
    }
    r.finish(config)
}
