//! A page of records whose cells stay the JSON text Airtable sent.
//!
//! A list that only copies its cells into a result (get_records) has no use for a tree of
//! values: parsing a 100-record page into per-record maps was the largest part of such a call
//! (a map, a key and a value or more allocated per cell). This page keeps the body and, per
//! record, where each cell's text is in it: the cells of all records in one list, each record
//! an ID and its range of that list.

use std::borrow::Cow;

use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::airtable::ids::RecordId;

/// One page of records, each cell its JSON text as sent (whitespace and escapes included).
#[derive(Debug)]
pub struct RawRecordPage {
    body: String,
    names: Vec<String>,
    records: Vec<RawRecord>,
    /// The cells of every record, one record after another.
    cells: Vec<RawCell>,
    /// Cursor for the next page; `None` on the last page.
    pub offset: Option<String>,
}

/// A record of a [`RawRecordPage`].
#[derive(Debug)]
pub struct RawRecord {
    /// Record ID.
    pub id: RecordId,
    /// Its cells' range of [`RawRecordPage::cells`].
    cells: std::ops::Range<usize>,
}

/// Where one cell is: the field's index in [`RawRecordPage::names`] and the cell's text.
#[derive(Debug, Clone, Copy)]
pub struct RawCell {
    /// Index of the field's name (or ID) in [`RawRecordPage::names`].
    pub name: usize,
    start: usize,
    end: usize,
}

impl RawRecordPage {
    /// Read a page's body. The same records and cells as [`super::RecordPage`]'s reading of
    /// it, the cells left as text. On error, the body comes back with the error.
    ///
    /// A page as Airtable writes it is read by [`scan`], one pass over the text that checks it
    /// as serde_json does; what [`scan`] does not take (bad JSON, a key of the page or of a
    /// record written with escapes or given twice) is read by serde_json, which gives the error
    /// or, for the rare valid case, the same page.
    pub fn parse(body: String) -> Result<Self, (serde_json::Error, String)> {
        let (names, records, cells, offset) = {
            let text = body.as_str();
            let page = match scan::page(text) {
                Some(page) => page,
                None => match read_with_serde(text) {
                    Ok(page) => page,
                    Err(e) => return Err((e, body)),
                },
            };
            let offset = page.offset.filter(|o| !o.is_empty());
            let b = page.builder;
            (b.names, b.records, b.cells, offset)
        };
        Ok(RawRecordPage {
            body,
            names,
            records,
            cells,
            offset,
        })
    }

    /// The field names (or IDs) of the page, in the order first seen.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The records, in Airtable's order.
    pub fn records(&self) -> &[RawRecord] {
        &self.records
    }

    /// A record's cells, in the order sent; a name sent twice has its first position and its
    /// last value (as a map reads it).
    pub fn cells(&self, record: &RawRecord) -> &[RawCell] {
        self.cells.get(record.cells.clone()).unwrap_or_default()
    }

    /// How many cells the page's records have in all.
    pub fn cell_count(&self) -> usize {
        self.cells.len()
    }

    /// The JSON text of a cell of this page (empty for a cell of another page).
    pub fn text(&self, cell: RawCell) -> &str {
        self.body.get(cell.start..cell.end).unwrap_or_default()
    }
}

/// A page as read: its records, and its offset.
struct ReadPage<'a> {
    builder: PageBuilder<'a>,
    offset: Option<String>,
}

/// The records of a page as they are read: each record's cells added in the order written
/// ([`PageBuilder::cell`]), then its ID ([`PageBuilder::end_record`]). Names are numbered as
/// first seen; a name given twice in a record keeps its first position and its last value (as
/// a map reads it). All cells go in one list for the page.
struct PageBuilder<'a> {
    names: Vec<String>,
    /// Per name, whether it holds no `"`, `\\` or control character ([`is_plain`]): then the
    /// name between quotes is its JSON text, which [`PageBuilder::expected`] relies on.
    plain: Vec<bool>,
    index: foldhash::HashMap<Cow<'a, str>, usize>,
    records: Vec<RawRecord>,
    cells: Vec<RawCell>,
    /// Per name, the last record (1-based) that had it, and its place in `cells`.
    seen: Vec<(usize, usize)>,
    /// The slot that came first in the last record (`follow[0]`), and after each slot
    /// (`follow[slot + 1]`): records list their fields in much the same order, so a name is
    /// most often checked against the guess rather than looked up.
    follow: Vec<usize>,
    /// Where the last cell's slot leads in `follow` (0 at a record's start).
    before: usize,
    /// Where the record being read starts in `cells`.
    first: usize,
}

impl<'a> PageBuilder<'a> {
    /// A builder with room for about `cells` cells.
    fn new(cells: usize) -> Self {
        PageBuilder {
            names: Vec::new(),
            plain: Vec::new(),
            index: Default::default(),
            records: Vec::new(),
            cells: Vec::with_capacity(cells),
            seen: Vec::new(),
            follow: vec![usize::MAX],
            before: 0,
            first: 0,
        }
    }

    /// A cell of the record being read: its name, and where its text is.
    fn cell(&mut self, name: Cow<'a, str>, start: usize, end: usize) {
        let guess = self.follow.get(self.before).copied().unwrap_or(usize::MAX);
        let slot = if self.names.get(guess).is_some_and(|n| *n == *name) {
            guess
        } else if let Some(&slot) = self.index.get(name.as_ref()) {
            slot
        } else {
            let slot = self.names.len();
            self.names.push(name.as_ref().to_owned());
            self.plain.push(is_plain(name.as_bytes()));
            self.seen.push((0, 0));
            self.follow.push(usize::MAX);
            self.index.insert(name, slot);
            slot
        };
        self.cell_in(slot, start, end);
    }

    /// The name the next cell most likely has (the one that followed the last cell's name in
    /// the records before), when its JSON text is the name between quotes: its slot and text.
    fn expected(&self) -> Option<(usize, &str)> {
        let slot = *self.follow.get(self.before)?;
        self.plain
            .get(slot)?
            .then(|| Some((slot, self.names.get(slot)?.as_str())))?
    }

    /// A cell whose name is known by its slot in `names`.
    fn cell_in(&mut self, slot: usize, start: usize, end: usize) {
        if let Some(f) = self.follow.get_mut(self.before) {
            *f = slot;
        }
        self.before = slot + 1;
        let cell = RawCell {
            name: slot,
            start,
            end,
        };
        let record_no = self.records.len() + 1;
        match self.seen.get_mut(slot) {
            Some((no, at)) if *no == record_no => {
                if let Some(c) = self.cells.get_mut(*at) {
                    *c = cell;
                }
            }
            Some(entry) => {
                *entry = (record_no, self.cells.len());
                self.cells.push(cell);
            }
            None => self.cells.push(cell),
        }
    }

    /// The record being read ends: its ID.
    fn end_record(&mut self, id: RecordId) {
        self.records.push(RawRecord {
            id,
            cells: self.first..self.cells.len(),
        });
        self.first = self.cells.len();
        self.before = 0;
    }
}

/// The page read by serde_json (the cells as borrowed [`RawValue`]s).
fn read_with_serde(text: &str) -> Result<ReadPage<'_>, serde_json::Error> {
    let page: PageText<'_> = serde_json::from_str(text)?;
    let base = text.as_ptr() as usize;
    let mut builder = PageBuilder::new(0);
    for rec in page.records {
        for (name, raw) in rec.fields.0 {
            let cell = raw.get();
            let start = (cell.as_ptr() as usize).wrapping_sub(base);
            builder.cell(name, start, start + cell.len());
        }
        builder.end_record(rec.id);
    }
    Ok(ReadPage {
        builder,
        offset: page.offset,
    })
}

#[derive(Deserialize)]
struct PageText<'a> {
    #[serde(default, borrow)]
    records: Vec<RecordText<'a>>,
    #[serde(default)]
    offset: Option<String>,
}

#[derive(Deserialize)]
struct RecordText<'a> {
    id: RecordId,
    #[serde(default, borrow)]
    fields: RawObject<'a>,
}

/// A JSON object read as its members: each name (borrowed from the text unless it has escapes)
/// and its value's text, in the order written, repeats included.
#[derive(Debug, Default)]
pub struct RawObject<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'a> RawObject<'a> {
    /// Read `text`, which must be one JSON object.
    pub fn parse(text: &'a str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// The text of the value of `name` (the last one, as a map reads a repeated name).
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.0
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.get())
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for RawObject<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Members;
        impl<'de> Visitor<'de> for Members {
            type Value = RawObject<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
                let mut members = Vec::with_capacity(a.size_hint().unwrap_or(16).min(256));
                while let Some((Name(name), raw)) = a.next_entry::<Name<'de>, &'de RawValue>()? {
                    members.push((name, raw));
                }
                Ok(RawObject(members))
            }
        }
        d.deserialize_map(Members)
    }
}

/// A name, borrowed from the text when it has no escapes.
struct Name<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Name<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Str;
        impl<'de> Visitor<'de> for Str {
            type Value = Name<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a field name")
            }
            fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<Name<'de>, E> {
                Ok(Name(Cow::Borrowed(v)))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Name<'de>, E> {
                Ok(Name(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Name<'de>, E> {
                Ok(Name(Cow::Owned(v)))
            }
        }
        d.deserialize_str(Str)
    }
}

/// The top bit of each byte of `word` that is `"`, `\\` or a control character (the classic
/// word-at-a-time tests: a byte is below `n` when subtracting `n` borrows into its top bit
/// while that bit was clear; a byte equals `c` when it is zero after `^ c`). Zero when the
/// word is plain; otherwise exact for the lowest such byte (a borrow can only flag bytes
/// above it), so `trailing_zeros / 8` is the first byte that is not plain.
pub(crate) fn not_plain(word: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const TOPS: u64 = 0x8080_8080_8080_8080;
    let below = |w: u64, n: u8| w.wrapping_sub(ONES * u64::from(n)) & !w & TOPS;
    let quote = below(word ^ (ONES * u64::from(b'"')), 1);
    let backslash = below(word ^ (ONES * u64::from(b'\\')), 1);
    quote | backslash | below(word, 0x20)
}

/// Whether `bytes` hold no `"`, `\\` or control character ([`not_plain`], eight bytes at a time):
/// the text of a JSON string that is its content as it is.
pub(crate) fn is_plain(bytes: &[u8]) -> bool {
    let (words, rest) = bytes.as_chunks::<8>();
    words
        .iter()
        .all(|word| not_plain(u64::from_le_bytes(*word)) == 0)
        && rest.iter().all(|&b| PLAIN[usize::from(b)])
}

/// The bytes a string holds as they are: not `"`, `\\` or a control character.
const PLAIN: [bool; 256] = {
    let mut table = [true; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = false;
        b += 1;
    }
    table[b'"' as usize] = false;
    table[b'\\' as usize] = false;
    table
};

/// A single pass over a page's text: its records, and where each cell's text is.
///
/// What it takes, it checks as serde_json reads the page: strict JSON (RFC 8259: no trailing
/// commas, no leading zeros, escapes and control characters checked, nothing after the page),
/// values of any depth (no recursion), an `id` that is a record ID, an `offset` that is a string
/// or null, `records` an array of objects and `fields` an object. It gives up (`None`, and
/// serde_json reads the page) on anything else, and on what it does not mean to copy of serde's
/// reading: a key of the page or of a record written with escapes, or given twice.
mod scan {
    use std::borrow::Cow;

    use super::{PLAIN, PageBuilder, ReadPage, not_plain};
    use crate::airtable::ids::RecordId;

    /// The page's records and offset, or `None` (see the module docs).
    pub(super) fn page(text: &str) -> Option<ReadPage<'_>> {
        let mut c = Cursor {
            text,
            b: text.as_bytes(),
            i: 0,
            stack: Vec::new(),
            page: PageBuilder::new(text.len() / 32),
        };
        let mut records = false;
        let mut offset: Option<Option<String>> = None;
        c.ws();
        c.eat(b'{')?;
        c.ws();
        if c.eat(b'}').is_none() {
            loop {
                let key = c.key()?;
                c.ws();
                match key.plain(&c)? {
                    b"records" if !records => {
                        c.records()?;
                        records = true;
                    }
                    b"offset" if offset.is_none() => {
                        let start = c.i;
                        c.value()?;
                        offset = Some(serde_json::from_str(c.since(start)?).ok()?);
                    }
                    b"records" | b"offset" => return None,
                    _ => c.value()?,
                }
                if c.next_member(b'}')? {
                    break;
                }
            }
        }
        c.ws();
        (c.i == c.b.len()).then_some(())?;
        Some(ReadPage {
            builder: c.page,
            offset: offset.flatten(),
        })
    }

    /// A string's text between its quotes, and whether it has escapes.
    struct Key {
        start: usize,
        end: usize,
        escaped: bool,
    }

    struct Cursor<'a> {
        text: &'a str,
        b: &'a [u8],
        i: usize,
        /// The closing brackets of the containers a value being skipped is in.
        stack: Vec<u8>,
        /// The records read so far.
        page: PageBuilder<'a>,
    }

    impl Key {
        /// Not escaped: the key's bytes. `None` otherwise.
        fn plain<'a>(&self, c: &Cursor<'a>) -> Option<&'a [u8]> {
            if self.escaped {
                return None;
            }
            c.b.get(self.start..self.end)
        }
    }

    impl<'a> Cursor<'a> {
        fn peek(&self) -> Option<u8> {
            self.b.get(self.i).copied()
        }

        fn eat(&mut self, byte: u8) -> Option<()> {
            (self.peek() == Some(byte)).then(|| self.i += 1)
        }

        fn ws(&mut self) {
            while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.peek() {
                self.i += 1;
            }
        }

        fn since(&self, start: usize) -> Option<&'a str> {
            self.text.get(start..self.i)
        }

        /// After a member or an element: `,` (then `false`) or the container's `close` (then
        /// `true`), whitespace skipped on both sides.
        fn next_member(&mut self, close: u8) -> Option<bool> {
            self.ws();
            match self.peek()? {
                b',' => {
                    self.i += 1;
                    self.ws();
                    Some(false)
                }
                b if b == close => {
                    self.i += 1;
                    Some(true)
                }
                _ => None,
            }
        }

        /// A string at the cursor.
        fn string(&mut self) -> Option<Key> {
            let b = self.b;
            let mut i = self.i;
            (b.get(i) == Some(&b'"')).then_some(())?;
            i += 1;
            let start = i;
            let mut escaped = false;
            loop {
                // Eight bytes at a time to the first byte that ends the run (near the end of
                // the text, byte by byte).
                loop {
                    let Some(word) = b.get(i..i + 8) else {
                        while PLAIN[usize::from(*b.get(i)?)] {
                            i += 1;
                        }
                        break;
                    };
                    let Ok(word) = <[u8; 8]>::try_from(word) else {
                        return None;
                    };
                    let mask = not_plain(u64::from_le_bytes(word));
                    if mask != 0 {
                        i += (mask.trailing_zeros() / 8) as usize;
                        break;
                    }
                    i += 8;
                }
                let byte = *b.get(i)?;
                match byte {
                    b'"' => {
                        self.i = i + 1;
                        return Some(Key {
                            start,
                            end: i,
                            escaped,
                        });
                    }
                    b'\\' => {
                        escaped = true;
                        match *b.get(i + 1)? {
                            b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => i += 2,
                            b'u' => {
                                let hex = b.get(i + 2..i + 6)?;
                                hex.iter().all(u8::is_ascii_hexdigit).then_some(())?;
                                i += 6;
                            }
                            _ => return None,
                        }
                    }
                    // A control character: it must be escaped (serde_json refuses it too).
                    _ => return None,
                }
            }
        }

        /// A member's name and its `:`.
        fn key(&mut self) -> Option<Key> {
            let key = self.string()?;
            self.ws();
            self.eat(b':')?;
            Some(key)
        }

        /// One or more digits.
        fn digits(&mut self) -> Option<()> {
            let start = self.i;
            while self.peek().is_some_and(|b| b.is_ascii_digit()) {
                self.i += 1;
            }
            (self.i > start).then_some(())
        }

        fn number(&mut self) -> Option<()> {
            let _minus = self.eat(b'-');
            match self.peek()? {
                b'0' => {
                    self.i += 1;
                    if self.peek().is_some_and(|b| b.is_ascii_digit()) {
                        return None;
                    }
                }
                b'1'..=b'9' => self.digits()?,
                _ => return None,
            }
            if self.eat(b'.').is_some() {
                self.digits()?;
            }
            if let Some(b'e' | b'E') = self.peek() {
                self.i += 1;
                if let Some(b'+' | b'-') = self.peek() {
                    self.i += 1;
                }
                self.digits()?;
            }
            Some(())
        }

        fn literal(&mut self, word: &[u8]) -> Option<()> {
            (self.b.get(self.i..self.i + word.len())? == word).then_some(())?;
            self.i += word.len();
            Some(())
        }

        /// Skip one value (whitespace before it included), however deep, without recursion.
        fn value(&mut self) -> Option<()> {
            self.stack.clear();
            loop {
                self.ws();
                match self.peek()? {
                    b'"' => {
                        self.string()?;
                    }
                    b't' => self.literal(b"true")?,
                    b'f' => self.literal(b"false")?,
                    b'n' => self.literal(b"null")?,
                    open @ (b'[' | b'{') => {
                        self.i += 1;
                        self.ws();
                        let close = if open == b'[' { b']' } else { b'}' };
                        if self.eat(close).is_none() {
                            self.stack.push(close);
                            if close == b'}' {
                                self.key()?;
                            }
                            continue;
                        }
                    }
                    _ => self.number()?,
                }
                // A value ended: close what it ends, or go on to the next element or member.
                loop {
                    let Some(&close) = self.stack.last() else {
                        return Some(());
                    };
                    if self.next_member(close)? {
                        self.stack.pop();
                    } else {
                        if close == b'}' {
                            self.key()?;
                        }
                        break;
                    }
                }
            }
        }

        /// The `records` array.
        fn records(&mut self) -> Option<()> {
            self.eat(b'[')?;
            self.ws();
            if self.eat(b']').is_some() {
                return Some(());
            }
            loop {
                self.record()?;
                if self.next_member(b']')? {
                    return Some(());
                }
            }
        }

        /// A record, added to [`Cursor::page`].
        fn record(&mut self) -> Option<()> {
            self.eat(b'{')?;
            self.ws();
            let mut id: Option<RecordId> = None;
            let mut fields = false;
            if self.eat(b'}').is_none() {
                loop {
                    let key = self.key()?;
                    self.ws();
                    match key.plain(self)? {
                        b"id" if id.is_none() => {
                            let start = self.i;
                            let text = self.string()?;
                            id = Some(if text.escaped {
                                serde_json::from_str(self.since(start)?).ok()?
                            } else {
                                RecordId::new(self.text.get(text.start..text.end)?).ok()?
                            });
                        }
                        b"fields" if !fields => {
                            self.fields()?;
                            fields = true;
                        }
                        b"id" | b"fields" => return None,
                        _ => self.value()?,
                    }
                    if self.next_member(b'}')? {
                        break;
                    }
                }
            }
            self.page.end_record(id?);
            Some(())
        }

        /// A record's `fields` object: each member's name and its value's place, added to
        /// [`Cursor::page`].
        fn fields(&mut self) -> Option<()> {
            self.eat(b'{')?;
            self.ws();
            if self.eat(b'}').is_some() {
                return Some(());
            }
            loop {
                // Records list their fields in much the same order: the name expected next is
                // compared with the text as it is, with no scan of the key.
                if let Some(slot) = self.expected_key() {
                    self.ws();
                    let start = self.i;
                    self.value()?;
                    self.page.cell_in(slot, start, self.i);
                } else {
                    let key = self.key()?;
                    let name = if key.escaped {
                        let quoted = self.text.get(key.start.checked_sub(1)?..key.end + 1)?;
                        Cow::Owned(serde_json::from_str::<String>(quoted).ok()?)
                    } else {
                        Cow::Borrowed(self.text.get(key.start..key.end)?)
                    };
                    self.ws();
                    let start = self.i;
                    self.value()?;
                    self.page.cell(name, start, self.i);
                }
                if self.next_member(b'}')? {
                    return Some(());
                }
            }
        }

        /// When the text at the cursor is the expected name ([`PageBuilder::expected`]) between
        /// quotes, then `:`: its slot, the cursor after the `:`. Otherwise `None`, the cursor
        /// where it was.
        fn expected_key(&mut self) -> Option<usize> {
            let (slot, name) = self.page.expected()?;
            let (at, name) = (self.i, name.as_bytes());
            let end = at + 1 + name.len();
            let quoted = self.b.get(at) == Some(&b'"')
                && self.b.get(at + 1..end) == Some(name)
                && self.b.get(end) == Some(&b'"');
            if !quoted {
                return None;
            }
            self.i = end + 1;
            self.ws();
            if self.eat(b':').is_none() {
                self.i = at;
                return None;
            }
            Some(slot)
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::airtable::RecordPage;
    use proptest::prelude::*;
    use serde_json::Value;

    /// The cells of every record as (name, value), read from the raw page.
    fn cells_of(page: &RawRecordPage) -> Vec<(String, Vec<(String, Value)>)> {
        page.records()
            .iter()
            .map(|r| {
                let cells = page
                    .cells(r)
                    .iter()
                    .map(|c| {
                        (
                            page.names()[c.name].clone(),
                            serde_json::from_str::<Value>(page.text(*c)).unwrap(),
                        )
                    })
                    .collect();
                (r.id.to_string(), cells)
            })
            .collect()
    }

    #[test]
    fn the_same_records_and_cells_as_the_parsed_page() {
        for body in [
            r#"{"records":[]}"#,
            r#"{"records":[{"id":"recAAAAAAAAAAAAAA","createdTime":"2026-01-02T12:51:00.000Z","fields":{}}],"offset":""}"#,
            r#"{"records":[{"id":"recAAAAAAAAAAAAAA","createdTime":"x","fields":{"B":1,"A":[{"x":"y"}],"C":"t","B":2}},{"id":"recBBBBBBBBBBBBBB","fields":{"C":"u","Na\u00efve \"q\"":null}}],"offset":"itr1/rec2"}"#,
            "{ \"offset\" : \"o\", \"records\" : [ { \"fields\" : { \"A\" : [ 1 , 2 ] , \"\\u0042\" : \"\\u00e9\" } , \"id\" : \"recAAAAAAAAAAAAAA\" , \"commentCount\" : 2 } ] }",
        ] {
            let raw = RawRecordPage::parse(body.to_owned())
                .map_err(|(e, _)| e)
                .unwrap();
            let parsed: RecordPage = serde_json::from_str(body).unwrap();
            let want: Vec<(String, Vec<(String, Value)>)> = parsed
                .records
                .iter()
                .map(|r| {
                    (
                        r.id.to_string(),
                        r.fields
                            .iter()
                            .map(|(k, v)| (k.clone(), v.clone()))
                            .collect(),
                    )
                })
                .collect();
            assert_eq!(cells_of(&raw), want, "{body}");
            assert_eq!(
                raw.offset,
                parsed.offset.filter(|o| !o.is_empty()),
                "{body}"
            );
        }
    }

    #[test]
    fn bad_pages_are_errors() {
        for body in [
            "",
            r#"{"records":[{"fields":{}}]}"#,
            r#"{"records":[{"id":"nope","fields":{}}]}"#,
            r#"{"records":[{"id":"recAAAAAAAAAAAAAA","fields":[]}]}"#,
            r#"{"records":[{"id":"recAAAAAAAAAAAAAA","fields":{"A":}}]}"#,
        ] {
            assert!(RawRecordPage::parse(body.to_owned()).is_err(), "{body}");
        }
    }

    /// The scan compares the name it expects next with the text as it is only when that name
    /// holds no character JSON escapes: a name holding a quote or a backslash, seen first escaped,
    /// is not taken from a later text that holds it unescaped (invalid JSON, or another name).
    #[test]
    fn the_expected_name_is_compared_only_when_it_needs_no_escapes() {
        let rec = |id: char, fields: &str| {
            format!(
                r#"{{"id":"rec{}","fields":{{{fields}}}}}"#,
                id.to_string().repeat(14)
            )
        };
        let page = |a: &str, b: &str| format!(r#"{{"records":[{},{}]}}"#, rec('A', a), rec('B', b));
        // `"a"b"` is not a key: the page is refused, as serde_json refuses it.
        let bad = page(r#""a\"b":1"#, r#""a"b":2"#);
        assert!(serde_json::from_str::<RecordPage>(&bad).is_err());
        assert!(RawRecordPage::parse(bad.clone()).is_err(), "{bad}");
        // `"a\b"` is a, backspace: another name than the first record's a, backslash, b.
        // A name first sent escaped and then plain is the same name.
        for body in [
            page(r#""a\\b":1"#, r#""a\b":2"#),
            page(r#""\u0041":1,"B":2"#, r#""A":3,"B":4"#),
        ] {
            assert!(RawRecordPage::parse(body.clone()).is_ok(), "{body}");
            let by_serde = read_with_serde(&body).map(flat).unwrap();
            assert_eq!(scan::page(&body).map(flat), Some(by_serde), "{body}");
        }
    }

    /// A page read, flattened for comparing: per record its ID and cells (name, start, end);
    /// the offset.
    type Flat = (Vec<(String, Vec<(String, usize, usize)>)>, Option<String>);

    fn flat(page: ReadPage<'_>) -> Flat {
        let b = &page.builder;
        let records = b
            .records
            .iter()
            .map(|r| {
                let cells = b.cells[r.cells.clone()]
                    .iter()
                    .map(|c| (b.names[c.name].clone(), c.start, c.end))
                    .collect();
                (r.id.to_string(), cells)
            })
            .collect();
        (records, page.offset)
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            (-1e12f64..1e12).prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            "\\PC{0,8}|[\"\\\\\\n\\u{1}/é😀 ]{0,6}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::vec(("[a-z\"\\\\]{0,3}", inner), 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// A page's text as Airtable could send it: valid, its own keys plain and once each.
    fn page_text() -> impl Strategy<Value = String> {
        let id = prop_oneof![
            4 => "rec[A-Za-z0-9]{14}",
            1 => "[a-z]{0,5}",
        ];
        let name = "[A-Za-z (\"\\\\é\\u{7}]{1,6}";
        let record = (
            id,
            prop::collection::vec((name, json_value()), 0..5),
            any::<bool>(),
        );
        (
            prop::collection::vec(record, 0..4),
            prop::option::of("[a-z0-9/]{0,8}"),
            any::<bool>(),
        )
            .prop_map(|(records, offset, pretty)| {
                let list: Vec<String> = records
                    .into_iter()
                    .map(|(id, cells, extra)| {
                        // Field names may repeat: written by hand, not through a map.
                        let fields: Vec<String> = cells
                            .iter()
                            .map(|(n, v)| format!("{}:{}", Value::from(n.as_str()), v))
                            .collect();
                        let mut rec = format!(
                            "{{\"id\":{},\"fields\":{{{}}}",
                            Value::from(id),
                            fields.join(",")
                        );
                        if extra {
                            rec.push_str(
                                ",\"createdTime\":\"2026-01-02T12:51:00.000Z\",\"x\":[{},[]]",
                            );
                        }
                        rec.push('}');
                        rec
                    })
                    .collect();
                let mut text = format!("{{\"records\":[{}]", list.join(","));
                if let Some(o) = offset {
                    text.push_str(&format!(",\"offset\":{}", Value::from(o)));
                }
                text.push('}');
                if pretty {
                    // Whitespace wherever JSON allows it, cells included.
                    text = text
                        .replace(",\"", " ,\n \"")
                        .replace("\":", "\" :\t")
                        .replace('[', "[ ")
                        .replace('}', "\r\n}");
                }
                text
            })
    }

    proptest! {
        /// The page's records and cells (each name once: its first position, its last value)
        /// are those of the page parsed into maps, whatever the order of the records' fields.
        #[test]
        fn the_page_holds_the_cells_of_the_parsed_page(text in page_text()) {
            let Ok(parsed) = serde_json::from_str::<RecordPage>(&text) else {
                prop_assert!(RawRecordPage::parse(text.clone()).is_err(), "{}", text);
                return Ok(());
            };
            let raw = RawRecordPage::parse(text.clone()).map_err(|(e, _)| e).unwrap();
            let want: Vec<(String, Vec<(String, Value)>)> = parsed
                .records
                .iter()
                .map(|r| {
                    let cells = r.fields.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                    (r.id.to_string(), cells)
                })
                .collect();
            prop_assert_eq!(cells_of(&raw), want);
        }

        /// Every page Airtable could send is read by the scan, with the cells serde_json finds.
        #[test]
        fn the_scan_reads_pages_as_serde_json_does(text in page_text()) {
            let by_serde = read_with_serde(&text).map(flat);
            match scan::page(&text).map(flat) {
                Some(scanned) => prop_assert_eq!(Ok(scanned), by_serde.map_err(|e| e.to_string())),
                // Only an invalid record ID makes it give up on such a page.
                None => prop_assert!(by_serde.is_err(), "the scan gave up on {}", text),
            }
        }

        /// Whatever the scan takes of a damaged page, serde_json reads the same.
        #[test]
        fn what_the_scan_takes_serde_json_reads_the_same(
            text in page_text(),
            edits in prop::collection::vec((any::<prop::sample::Index>(), 0u8..3, prop::sample::select(
                b"\"{}[],:\\ 0123456789.eE+-tfnrul\n\x01\xe9".to_vec()
            )), 1..4),
        ) {
            let mut bytes = text.into_bytes();
            for (at, op, b) in edits {
                let i = at.index(bytes.len() + 1);
                match op {
                    0 if i < bytes.len() => { bytes.remove(i); }
                    1 if i < bytes.len() => bytes[i] = b,
                    _ => bytes.insert(i, b),
                }
            }
            let Ok(text) = String::from_utf8(bytes) else { return Ok(()) };
            if let Some(scanned) = scan::page(&text).map(flat) {
                let by_serde = read_with_serde(&text).map(flat).map_err(|e| e.to_string());
                prop_assert_eq!(Ok(scanned), by_serde, "{}", text);
            }
        }
    }

    #[test]
    fn the_scan_takes_deep_cells_and_leaves_odd_pages_to_serde_json() {
        let deep = format!("{}1{}", "[".repeat(10_000), "]".repeat(10_000));
        let text =
            format!(r#"{{"records":[{{"id":"recAAAAAAAAAAAAAA","fields":{{"A":{deep}}}}}]}}"#);
        let page = RawRecordPage::parse(text.clone())
            .map_err(|(e, _)| e)
            .unwrap();
        assert_eq!(page.text(page.cells(&page.records()[0])[0]), deep);
        assert!(scan::page(&text).is_some());
        // Escaped or repeated keys of the page: serde_json's reading (the same page, or its error).
        for odd in [
            r#"{"rec\u006frds":[{"id":"recAAAAAAAAAAAAAA","fields":{"A":1}}]}"#,
            r#"{"records":[{"\u0069d":"recAAAAAAAAAAAAAA","fields":{"A":1}}]}"#,
            r#"{"records":[],"records":[]}"#,
            r#"{"records":[{"id":"recAAAAAAAAAAAAAA","id":"recBBBBBBBBBBBBBB"}]}"#,
        ] {
            assert!(scan::page(odd).is_none(), "{odd}");
            let by_page = RawRecordPage::parse(odd.to_owned()).map(|p| p.records().len());
            let by_serde = read_with_serde(odd).map(|p| p.builder.records.len());
            assert_eq!(by_page.is_ok(), by_serde.is_ok(), "{odd}");
        }
        let page = RawRecordPage::parse(
            r#"{"rec\u006frds":[{"id":"recAAAAAAAAAAAAAA","fields":{"A":1}}]}"#.to_owned(),
        )
        .map_err(|(e, _)| e)
        .unwrap();
        assert_eq!(page.records().len(), 1);
        // Bad JSON keeps serde_json's error.
        let (e, body) = RawRecordPage::parse(r#"{"records":[1,]}"#.to_owned()).unwrap_err();
        assert_eq!(body, r#"{"records":[1,]}"#);
        assert!(e.to_string().contains("line 1"), "{e}");
    }
}
