//! The options object JavaScript passes (DESIGN §3.1), read field by field: each field is
//! checked for its type and named in the error when it is wrong. (A serde deserializer did
//! this before at the cost of serde in every viewer's download.)

use crate::prelude::*;
use js_sys::{Array, Reflect};
use wasm_bindgen::JsValue;

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

/// The field, unless it is missing, `undefined` or `null`.
fn field(options: &JsValue, name: &'static str) -> Result<Option<JsValue>, Invalid> {
    let value = Reflect::get(options, &name.into()).map_err(|_| invalid(name, "cannot be read"))?;
    Ok((!value.is_undefined() && !value.is_null()).then_some(value))
}

fn string(options: &JsValue, name: &'static str) -> Result<Option<String>, Invalid> {
    field(options, name)?.map(|v| v.as_string().ok_or_else(|| invalid(name, "must be a string"))).transpose()
}

fn number(options: &JsValue, name: &'static str) -> Result<Option<f64>, Invalid> {
    let n = field(options, name)?.map(|v| v.as_f64().ok_or_else(|| invalid(name, "must be a number")));
    n.transpose()?.map(|n| if n.is_finite() { Ok(n) } else { Err(invalid(name, "must be finite")) }).transpose()
}

fn strings(options: &JsValue, name: &'static str) -> Result<Option<Vec<String>>, Invalid> {
    let Some(value) = field(options, name)? else { return Ok(None) };
    if !Array::is_array(&value) {
        return Err(invalid(name, "must be an array of strings"));
    }
    let array = Array::from(&value);
    let mut strings = Vec::with_capacity(array.length() as usize);
    for v in array.iter() {
        strings.push(v.as_string().ok_or_else(|| invalid(name, "must be an array of strings"))?);
    }
    Ok(Some(strings))
}

/// A URL, resolved against the page.
fn url(
    options: &JsValue,
    name: &'static str,
    resolve: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<String>, Invalid> {
    string(options, name)?.map(|u| resolve(&u).ok_or_else(|| invalid(name, "not a URL"))).transpose()
}

/// Reads the live player's options; URLs are resolved with `resolve` (against the page).
pub fn live_config(options: &JsValue, resolve: &dyn Fn(&str) -> Option<String>) -> Result<LiveConfig, Invalid> {
    if !options.is_object() {
        return Err(invalid("options", "must be an object with at least `src`"));
    }
    let src = url(options, "src", resolve)?.ok_or_else(|| invalid("src", "is required"))?;
    let mut config = LiveConfig::new(src);
    config.clock_url = url(options, "clockUrl", resolve)?;
    config.cues_url = url(options, "cuesUrl", resolve)?;
    config.orders_url = url(options, "ordersUrl", resolve)?;
    config.target_latency_ms = number(options, "targetLatencyMs")?;
    config.link_allowlist = strings(options, "linkAllowlist")?.unwrap_or_default();
    config.min_rate = number(options, "minPlaybackRate")?.unwrap_or(config.min_rate);
    config.max_rate = number(options, "maxPlaybackRate")?.unwrap_or(config.max_rate);
    Ok(config)
}

/// Reads `buy()`'s options; the key defaults to `new_key()` (`crypto.randomUUID()`).
pub fn purchase(options: &JsValue, cue_id: String, new_key: fn() -> Option<String>) -> Result<Purchase, OrderError> {
    let bad = |_| OrderError::Invalid("options must be { userToken, quantity?, idempotencyKey? }");
    if !options.is_object() {
        return Err(OrderError::Invalid("options must be an object with `userToken`"));
    }
    let user_token =
        string(options, "userToken").map_err(bad)?.ok_or(OrderError::Invalid("not signed in: no `userToken`"))?;
    let quantity = number(options, "quantity").map_err(bad)?.unwrap_or(1.0);
    if quantity.fract() != 0.0 || !(1.0..=1000.0).contains(&quantity) {
        return Err(OrderError::Invalid("quantity must be a whole number from 1"));
    }
    let key = match string(options, "idempotencyKey").map_err(bad)? {
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
    let src = url(options, "src", resolve)?.ok_or_else(|| invalid("src", "is required"))?;
    let mut config = ReplayConfig::new(src);
    config.thumbnails_url = url(options, "thumbnailsUrl", resolve)?;
    config.orders_url = url(options, "ordersUrl", resolve)?;
    config.link_allowlist = strings(options, "linkAllowlist")?.unwrap_or_default();
    if let Some(budget) = number(options, "prefetchBudgetBytes")? {
        if !(0.0..=256.0 * 1024.0 * 1024.0).contains(&budget) {
            return Err(invalid("prefetchBudgetBytes", "must be 0 to 256 MiB"));
        }
        config.prefetch_budget_bytes = budget as usize;
    }
    Ok(config)
}

/// The live player's rewind: its `rewindSrc` (the show's growing recording) read as a replay
/// with the live player's link allowlist; `None` without one.
pub fn rewind_config(
    options: &JsValue,
    resolve: &dyn Fn(&str) -> Option<String>,
    live: &LiveConfig,
) -> Result<Option<ReplayConfig>, Invalid> {
    let Some(src) = url(options, "rewindSrc", resolve)? else { return Ok(None) };
    let mut config = ReplayConfig::new(src);
    config.link_allowlist = live.link_allowlist.clone();
    Ok(Some(config))
}
