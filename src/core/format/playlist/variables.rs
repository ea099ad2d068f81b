//! EXT-X-DEFINE variables and their substitution (draft-pantos-hls-rfc8216bis §4.3, §4.4.2.3).
//!
//! Substitution runs as a pass of its own before the playlist is built: it reads the
//! EXT-X-DEFINE tags in order, and for every URI line and every quoted-string or hexadecimal
//! attribute value that holds a `{$name}`, it makes the substituted text and files it under the
//! byte offset, in the input, of the text it replaces. The building pass then reads the input as
//! always and, wherever a value starts at a filed offset, takes the substituted text instead.
//! Working on values after they are split apart means a substituted value can never break the
//! line or the attribute list around it, whatever it holds.
//!
//! The substituted text is kept in the [`VariableContext`], which outlives the parse, so the
//! parsed playlist still only borrows. Total substituted text is capped at
//! [`MAX_SUBSTITUTED_BYTES`]: a few references to a long value could otherwise make a small
//! playlist expand without bound.

use super::{classify, is_name, tokenize, Ctx, Line, PlaylistError, Raw, Result, Tag, LIST, MAX_ITEMS};
use crate::core::format::url;
use crate::core::text;
use crate::prelude::*;

/// Upper bound on the text substitution may make for one playlist, in bytes. Real playlists
/// substitute hosts and tokens: a few kilobytes.
pub const MAX_SUBSTITUTED_BYTES: usize = 16 << 20;

/// Variables by name, owned: what a multivariant playlist passes on to its media playlists
/// ([`super::MultivariantPlaylist::variables`], [`VariableContext::parent`]).
#[derive(Debug, Clone, Default)]
pub struct Variables {
    map: StrMap,
}

impl Variables {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.map.get(name)
    }

    /// Sets a variable, replacing any value it had.
    pub fn insert(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.map.insert(name.into(), value.into());
    }

    /// `(name, value)` in the order the names were first set.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.map.entries.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    pub fn len(&self) -> usize {
        self.map.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.entries.is_empty()
    }
}

/// The same names with the same values, whatever the order they were set in.
impl PartialEq for Variables {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().all(|(n, v)| other.get(n) == Some(v))
    }
}

impl Eq for Variables {}

/// A map from names to values for the variables of a playlist: the entries in the order they
/// were first set, and an open-addressing hash index over them (FNV-1a, linear probing, at most
/// half full), so that a hostile playlist's [`MAX_ITEMS`] variables still take linear time.
/// (`BTreeMap` or `HashMap` did this at 4 KB of the wasm gzipped.)
#[derive(Debug, Clone, Default)]
struct StrMap {
    entries: Vec<(String, String)>,
    /// Each slot holds an index into `entries` plus one, or 0 when free; its length is 0 or a
    /// power of two at least twice `entries.len()`.
    slots: Vec<u32>,
}

impl StrMap {
    fn hash(name: &str) -> usize {
        name.bytes().fold(0x811c_9dc5_u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193)) as usize
    }

    /// The slot for `name`: the one holding it, or the free one where it would go.
    fn slot(&self, name: &str) -> usize {
        let mask = self.slots.len().wrapping_sub(1);
        let mut i = Self::hash(name) & mask;
        loop {
            match self.slots.get(i) {
                Some(&e) if e != 0 && self.entries.get(e as usize - 1).is_some_and(|(n, _)| n != name) => {
                    i = (i + 1) & mask;
                }
                _ => return i,
            }
        }
    }

    fn get(&self, name: &str) -> Option<&str> {
        let e = *self.slots.get(self.slot(name))?;
        self.entries.get((e as usize).checked_sub(1)?).map(|(_, v)| v.as_str())
    }

    fn insert(&mut self, name: String, value: String) {
        if self.slots.len() < 2 * (self.entries.len() + 1) {
            let len = (4 * (self.entries.len() + 1)).next_power_of_two();
            self.slots = vec![0; len];
            for k in 0..self.entries.len() {
                let i = self.entries.get(k).map_or(0, |(n, _)| self.slot(n));
                if let Some(s) = self.slots.get_mut(i) {
                    *s = k as u32 + 1;
                }
            }
        }
        let i = self.slot(&name);
        match self.slots.get(i).map(|&e| e as usize) {
            Some(0) => {
                self.entries.push((name, value));
                if let Some(s) = self.slots.get_mut(i) {
                    *s = self.entries.len() as u32;
                }
            }
            Some(e) => {
                if let Some((_, v)) = self.entries.get_mut(e - 1) {
                    *v = value;
                }
            }
            None => {}
        }
    }
}

impl<N: Into<String>, V: Into<String>> FromIterator<(N, V)> for Variables {
    fn from_iter<I: IntoIterator<Item = (N, V)>>(iter: I) -> Self {
        let mut vars = Variables::new();
        for (n, v) in iter {
            vars.insert(n, v);
        }
        vars
    }
}

/// What a playlist's EXT-X-DEFINE tags may draw on, and the room the text they substitute
/// lives in for [`super::parse_with`].
///
/// ```
/// use liveshop::core::format::playlist::{parse_with, Playlist, VariableContext};
///
/// let multivariant = b"#EXTM3U\n#EXT-X-DEFINE:NAME=\"cdn\",VALUE=\"https://cdn.example\"\n\
///     #EXT-X-STREAM-INF:BANDWIDTH=800000\n{$cdn}/low.m3u8\n";
/// let mut vars = VariableContext::new().url("https://example.com/show.m3u8?token=abc");
/// let Ok(Playlist::Multivariant(m)) = parse_with(multivariant, &mut vars) else { panic!() };
/// assert_eq!(m.variants[0].uri, "https://cdn.example/low.m3u8");
///
/// let parent = m.variables();
/// let media = b"#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-DEFINE:IMPORT=\"cdn\"\n\
///     #EXTINF:2,\n{$cdn}/low/1.m4s\n";
/// let mut vars = VariableContext::new().url("https://cdn.example/low.m3u8").parent(&parent);
/// let Ok(Playlist::Media(p)) = parse_with(media, &mut vars) else { panic!() };
/// assert_eq!(p.segments[0].uri, Some("https://cdn.example/low/1.m4s"));
/// ```
#[derive(Debug, Default)]
pub struct VariableContext<'v> {
    url: Option<&'v str>,
    parent: Option<&'v Variables>,
    /// Substituted text by the offset, in the input, of the text it replaces; in offset order.
    replaced: Vec<(usize, String)>,
    /// The line of the first substitution, for [`PlaylistError::NeedsVariables`].
    first_replaced_line: Option<usize>,
}

impl<'v> VariableContext<'v> {
    /// No URL and no parent: NAME/VALUE definitions only.
    pub fn new() -> Self {
        Self::default()
    }

    /// The URL the playlist was requested with, whose query QUERYPARAM definitions read.
    pub fn url(mut self, url: &'v str) -> Self {
        self.url = Some(url);
        self
    }

    /// The variables of the multivariant playlist this media playlist was loaded from, which
    /// IMPORT definitions read. Without a parent, an IMPORT fails the parse, as the draft says.
    pub fn parent(mut self, vars: &'v Variables) -> Self {
        self.parent = Some(vars);
        self
    }

    pub(super) fn first_replaced_line(&self) -> Option<usize> {
        self.first_replaced_line
    }

    pub(super) fn source<'a>(&'a self, text: &'a str) -> Source<'a> {
        Source { base: text.as_ptr() as usize, replaced: &self.replaced }
    }

    /// The substitution pass over `lines` (those of `text` after the header); see the module
    /// doc. Clears what an earlier parse left.
    pub(super) fn prepare<'a>(&mut self, text: &'a str, lines: impl Iterator<Item = (usize, &'a str)>) -> Result<()> {
        self.replaced.clear();
        self.first_replaced_line = None;
        if !text::contains(text, "{$") && !text::contains(text, "EXT-X-DEFINE") {
            return Ok(());
        }
        let mut pass = Pass { base: text.as_ptr() as usize, vars: StrMap::default(), budget: MAX_SUBSTITUTED_BYTES };
        for (line, l) in lines {
            match classify(l) {
                Line::Uri(uri) => {
                    if let Some(s) = pass.substitute(uri, line)? {
                        self.file(pass.offset(uri), s, line);
                    }
                }
                Line::Tag(Tag::Define, v) => self.define(&mut pass, Ctx { line, tag: Tag::Define }, v)?,
                Line::Tag(tag, v) if text::contains(v, "{$") && tag.is(LIST) => {
                    // A list that does not split is reported by the building pass, or left out
                    // there with a warning; either way it has nothing to substitute.
                    let Ok(list) = tokenize(v, Ctx { line, tag }) else { continue };
                    for &(_, raw) in &list {
                        if raw.substitutable() {
                            if let Some(s) = pass.substitute(raw.text(), line)? {
                                self.file(pass.offset(raw.text()), s, line);
                            }
                        }
                    }
                }
                Line::Tag(..) | Line::Skip => {}
            }
        }
        Ok(())
    }

    fn define(&mut self, pass: &mut Pass, ctx: Ctx, v: &str) -> Result<()> {
        let list = tokenize(v, ctx)?;
        let get = |name: &str| list.iter().find(|(n, _)| *n == name).map(|&(_, r)| r);
        // `None` for a NAME, else whether the value is imported (or taken from the query).
        let (name, import) = match (get("NAME"), get("IMPORT"), get("QUERYPARAM")) {
            (Some(n), None, None) => (n.text(), None),
            (None, Some(n), None) => (n.text(), Some(true)),
            (None, None, Some(n)) => (n.text(), Some(false)),
            _ => return Err(ctx.define("needs one of NAME, IMPORT and QUERYPARAM")),
        };
        if !is_name(name) {
            return Err(ctx.define("a variable name is made of A-Z, a-z, 0-9, '-' and '_'"));
        }
        if pass.vars.get(name).is_some() {
            return Err(Box::new(PlaylistError::DuplicateVariable { line: ctx.line, name: name.into() }));
        }
        if pass.vars.entries.len() >= MAX_ITEMS {
            return Err(Box::new(PlaylistError::TooLarge { what: "variables", limit: MAX_ITEMS }));
        }
        let value = match import {
            None => {
                let value = get("VALUE").map(Raw::text).ok_or_else(|| ctx.define("NAME needs a VALUE"))?;
                match pass.substitute(value, ctx.line)? {
                    Some(s) => {
                        self.file(pass.offset(value), s.clone(), ctx.line);
                        s
                    }
                    None => value.to_owned(),
                }
            }
            // The value found is filed in place of the name, where the building pass reads it.
            Some(import) => {
                let found = match (import, self.parent) {
                    (true, None) => Err("a parent playlist"),
                    (true, Some(parent)) => parent.get(name).ok_or("the multivariant playlist"),
                    (false, _) => self.url.and_then(|u| url::query_value(u, name)).ok_or("the playlist URL's query"),
                };
                let found = found
                    .map_err(|place| PlaylistError::UnresolvedDefine { line: ctx.line, name: name.into(), place })?
                    .to_owned();
                Pass::spend(&mut pass.budget, found.len())?;
                self.file(pass.offset(name), found.clone(), ctx.line);
                found
            }
        };
        pass.vars.insert(name.to_owned(), value);
        Ok(())
    }

    fn file(&mut self, offset: usize, text: String, line: usize) {
        debug_assert!(self.replaced.last().is_none_or(|&(o, _)| o < offset));
        self.replaced.push((offset, text));
        self.first_replaced_line.get_or_insert(line);
    }
}

/// The state of one substitution pass.
struct Pass {
    base: usize,
    vars: StrMap,
    /// Bytes of substituted text still allowed.
    budget: usize,
}

impl Pass {
    fn offset(&self, s: &str) -> usize {
        (s.as_ptr() as usize).wrapping_sub(self.base)
    }

    /// Counts `bytes` of variable values put in place against [`MAX_SUBSTITUTED_BYTES`]. (The
    /// text around them is bounded by the input's own size.)
    fn spend(budget: &mut usize, bytes: usize) -> Result<()> {
        *budget = budget
            .checked_sub(bytes)
            .ok_or(PlaylistError::TooLarge { what: "bytes of substituted text", limit: MAX_SUBSTITUTED_BYTES })?;
        Ok(())
    }

    /// `s` with its variable references replaced, or `None` if it has none. `{$` not followed
    /// by a variable name and `}` is not a reference and stays as it is.
    fn substitute(&mut self, s: &str, line: usize) -> Result<Option<String>> {
        let Some(first) = text::find(s, "{$") else { return Ok(None) };
        let mut out = String::new();
        let mut rest = s;
        let mut at = Some(first);
        let mut replaced = false;
        while let Some(i) = at {
            // `i` is where a `{$` starts: a character boundary, with the two bytes after it.
            let (Some(before), Some(after)) = (rest.get(..i), rest.get(i + 2..)) else { break };
            out.push_str(before);
            match text::split_once(after, "}").filter(|(name, _)| is_name(name)) {
                Some((name, tail)) => {
                    let value = self
                        .vars
                        .get(name)
                        .ok_or_else(|| PlaylistError::UndefinedVariable { line, name: name.into() })?;
                    Self::spend(&mut self.budget, value.len())?;
                    out.push_str(value);
                    rest = tail;
                    replaced = true;
                }
                None => {
                    out.push_str("{$");
                    rest = after;
                }
            }
            at = text::find(rest, "{$");
        }
        out.push_str(rest);
        Ok(replaced.then_some(out))
    }
}

/// Where substituted text stands in for input text, as the building pass reads it.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Source<'a> {
    base: usize,
    replaced: &'a [(usize, String)],
}

impl<'a> Source<'a> {
    /// `s`, a slice of the input, or the text substituted for it.
    pub(super) fn text(self, s: &'a str) -> &'a str {
        if self.replaced.is_empty() {
            return s;
        }
        let offset = (s.as_ptr() as usize).wrapping_sub(self.base);
        match self.replaced.binary_search_by_key(&offset, |&(o, _)| o) {
            Ok(i) => self.replaced.get(i).map_or(s, |(_, t)| t.as_str()),
            Err(_) => s,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_map_finds_every_name_replaces_values_and_compares_whatever_the_order() {
        let mut map = StrMap::default();
        assert_eq!(map.get("a"), None);
        for i in 0..5000 {
            map.insert(format!("v{i}"), format!("{i}"));
        }
        map.insert("v17".into(), "again".into());
        assert_eq!(map.entries.len(), 5000);
        assert!(map.slots.len() >= 2 * map.entries.len() && map.slots.len().is_power_of_two());
        assert_eq!(map.get("v17"), Some("again"));
        assert!((0..5000).filter(|&i| i != 17).all(|i| map.get(&format!("v{i}")) == Some(i.to_string().as_str())));
        assert_eq!(map.get("v5000"), None);
        assert_eq!(map.get(""), None);

        let a = Variables::from_iter([("x", "1"), ("y", "2")]);
        let b = Variables::from_iter([("y", "2"), ("x", "1")]);
        assert_eq!(a, b);
        assert_ne!(a, Variables::from_iter([("x", "1"), ("y", "3")]));
        assert_ne!(a, Variables::from_iter([("x", "1")]));
        assert_eq!(a.iter().collect::<Vec<_>>(), [("x", "1"), ("y", "2")]);
    }
}
