//! A compact, key-free form of a list of records (prepared for get_records / search_records).
//!
//! Today a list repeats every field name in every record (`{"id":..,"fields":{"Name":..}}`).
//! This form names the columns once and sends each record as an array aligned to them:
//!
//! ```json
//! {"columns": ["id", "Name", "Status", "Due"],
//!  "rows": [["rec00000000000001", "Write spec", "Done", "2026-01-05"],
//!           ["rec00000000000002", "Review", null, "2026-01-09"],
//!           ["rec00000000000003", "Ship"]]}
//! ```
//!
//! The encoding, exactly:
//! - `columns[0]` is always `"id"` and `row[0]` is always the record ID (a field that happens to
//!   be named "id" still gets its own later column; positions, not names, are authoritative).
//! - The other columns are the fields that have a value in at least one of the rows, the fields
//!   with the most values first (ties in the schema order given, then in the order first seen),
//!   so that sparse fields come last and their empty cells are mostly trailing ones.
//!   Fields empty in every row are left out.
//! - `row[j]` is the value of `columns[j]` as Airtable sends it, with these shortenings, each
//!   decided per column from the table's schema ([`CellRule`]):
//!   - a number with no fraction is written as an integer (`7`, not `7.0`, as Airtable's own
//!     JSON does); in timestamp fields (created/modified time, date-time) a zero millisecond
//!     part is left out (`...T12:51:07Z`), and so are zero seconds (`...T12:51Z`: ISO 8601's
//!     minute precision, the same instant; Airtable's date-time fields hold whole minutes
//!     unless written with seconds through the API). Both lossless; writes accept the short
//!     form.
//!   - single-valued lists: in a link field whose options say `prefersSingleRecordLink` (the
//!     UI allows one linked record), and in a lookup through such a link, a cell holding
//!     exactly one item is written as that item: `"recX"`, not `["recX"]` (`{"id","name"}`
//!     with expand_links). Two or more items stay an array. Lossless given the rule (an item
//!     that is itself an array is never unwrapped); writes accept the bare ID.
//!   - attachments (attachment fields, and lookups of them): each attachment keeps only `id`,
//!     `filename`, `type`, `url` and, for images (`type` `image/...`) with thumbnails, a
//!     `thumbnail` (the URL of the `small` one). `size`, `width`, `height` and the
//!     `thumbnails` object are left out: get_attachments returns them all, with fresh URLs.
//!
//!   `null` means the cell is empty. Empty strings and empty arrays count as empty (Airtable
//!   itself omits empty cells).
//! - Trailing empty cells are dropped, so a row may be shorter than `columns`: a missing
//!   position is an empty cell.
//!
//! Pure: no MCP, no HTTP; of the client it uses only its reader of JSON objects as text
//! (`airtable::RawObject`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

use serde_json::{Map, Value};

use crate::airtable::RawObject;

/// The name of the first column (the record ID).
pub(crate) const ID_COLUMN: &str = "id";

/// Records as columns and rows (see the module documentation for the encoding).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub(crate) struct CompactRecords {
    /// Column names: "id" (the record ID) first, then every field that has a value in at
    /// least one row, in schema order.
    pub columns: Vec<String>,
    /// One array per record, aligned to `columns`: the record ID, then the cell values as the
    /// [`CellRule`]s write them. null is an empty cell; trailing empty cells are left out, so a
    /// row may be shorter than `columns`.
    pub rows: Vec<Vec<Value>>,
}

/// Whether a cell counts as empty (and is sent as null or left out).
pub(crate) fn is_empty_cell(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

/// How the cells of one column are written (see the module documentation), decided from the
/// field's schema by the caller. The default writes cells as sent (integral numbers shortened).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct CellRule {
    /// A timestamp field: a zero millisecond part is left out, then zero seconds.
    pub instant: bool,
    /// A single-valued list (a single-record link, a lookup through one): a one-item list is
    /// written as its item.
    pub single: bool,
    /// Attachments: each keeps only id, filename, type, url and (images) thumbnail.
    pub attachments: bool,
}

/// The attachment keys kept in list cells (besides `thumbnail`).
const ATTACHMENT_KEYS: [&str; 4] = ["id", "filename", "type", "url"];

/// Turn records (ID, cells by field key) into columns and rows. `schema_order` lists the
/// table's field names in schema order; fields not in it follow in the order first seen.
/// `rules` says, by field key (name or ID), how a column's cells are written; fields not in it
/// are written as sent. The cells are moved into the rows, never copied.
///
/// One pass over the cells gives each field name a slot (a hash lookup per cell, with foldhash)
/// and keeps each record's non-empty cells by slot, so the rows are filled without hashing.
pub(crate) fn compact_records<I>(
    schema_order: &[&str],
    rules: &HashMap<&str, CellRule>,
    records: I,
) -> CompactRecords
where
    I: IntoIterator<Item = (String, Map<String, Value>)>,
{
    // Slots in the order first seen: the field's name and how many records have it non-empty.
    let mut slots: foldhash::HashMap<String, usize> = foldhash::HashMap::default();
    let mut names: Vec<String> = Vec::new();
    let mut filled: Vec<usize> = Vec::new();
    let mut kept: Vec<(String, Vec<(usize, Value)>)> = Vec::new();
    for (id, cells) in records {
        let mut by_slot = Vec::with_capacity(cells.len());
        for (name, v) in cells {
            if is_empty_cell(&v) {
                continue;
            }
            let slot = match slots.get(name.as_str()) {
                Some(&slot) => slot,
                None => {
                    let slot = names.len();
                    names.push(name.clone());
                    filled.push(0);
                    slots.insert(name, slot);
                    slot
                }
            };
            filled[slot] += 1;
            by_slot.push((slot, v));
        }
        kept.push((id, by_slot));
    }
    let Columns {
        columns,
        column_of,
        rules: column_rules,
    } = Columns::new(schema_order, rules, &slots, names, &filled);
    let mut rows = Vec::with_capacity(kept.len());
    for (id, cells) in kept {
        let mut row = Vec::with_capacity(columns.len());
        row.push(Value::String(id));
        row.resize_with(columns.len(), || Value::Null);
        for (slot, v) in cells {
            let i = column_of[slot];
            row[i] = write_cell(v, column_rules[i]);
        }
        trim_trailing_empties(&mut row);
        rows.push(row);
    }
    CompactRecords { columns, rows }
}

/// The columns of a compact list, from the fields seen (by slot: the order first seen).
struct Columns {
    /// "id", then the field names.
    columns: Vec<String>,
    /// The column of each slot.
    column_of: Vec<usize>,
    /// Each column's rule.
    rules: Vec<CellRule>,
}

impl Columns {
    /// Schema order first, then the others as first seen; densest first (a stable sort, so
    /// ties keep that order). `slots` gives a name's slot, `filled` each slot's non-empty cells.
    fn new<K: std::borrow::Borrow<str> + std::hash::Hash + Eq>(
        schema_order: &[&str],
        rules: &HashMap<&str, CellRule>,
        slots: &foldhash::HashMap<K, usize>,
        mut names: Vec<String>,
        filled: &[usize],
    ) -> Columns {
        let mut order: Vec<usize> = Vec::with_capacity(names.len());
        let mut placed = vec![false; names.len()];
        let schema_slots = schema_order.iter().filter_map(|n| slots.get(*n).copied());
        for slot in schema_slots.chain(0..names.len()) {
            if !placed[slot] {
                placed[slot] = true;
                order.push(slot);
            }
        }
        order.sort_by_key(|&slot| std::cmp::Reverse(filled[slot]));
        // Column of each slot (column 0 is the record ID, which a field may also be named).
        let mut column_of = vec![0usize; names.len()];
        let mut columns: Vec<String> = Vec::with_capacity(order.len() + 1);
        let mut column_rules: Vec<CellRule> = Vec::with_capacity(order.len() + 1);
        columns.push(ID_COLUMN.to_owned());
        column_rules.push(CellRule::default());
        for &slot in &order {
            column_of[slot] = columns.len();
            column_rules.push(rules.get(names[slot].as_str()).copied().unwrap_or_default());
            columns.push(std::mem::take(&mut names[slot]));
        }
        Columns {
            columns,
            column_of,
            rules: column_rules,
        }
    }
}

/// Records given as JSON text ([`compact_records`] on records not parsed), rendered: the
/// columns, and the rows as the JSON array they make, cut to the longest prefix of rows that
/// fits in `budget` bytes less the columns' JSON (at least one row), as
/// `tools::result::fit_to_budget_rendered` cuts them. Columns left empty by the cut go.
pub(crate) struct RenderedRows {
    /// As [`CompactRecords::columns`].
    pub columns: Vec<String>,
    /// The kept rows, as a JSON array.
    pub rows_json: String,
    /// How many rows were kept.
    pub kept: usize,
    /// How many were cut to fit the budget.
    pub cut: usize,
}

/// [`compact_records`] for records whose cells are JSON text, rendered straight into rows' JSON
/// with no tree of values built. The records come in pages (as Airtable sends them): a page's
/// field names (or IDs), then per record its ID and its non-null cells as (the index of the
/// cell's name in the page's names, the cell's text). A page's names are looked up once per
/// page, not once per cell. The same columns as [`compact_records`] and the same values in the
/// rows; cells are copied as sent apart from the shortenings of the module documentation (and
/// whitespace outside strings), so a cell's string escapes and non-integral number spellings
/// are Airtable's. Each cell's text must be one JSON value (what a JSON parser took it from).
/// `size` is about how many records and cells there are in all (room taken at once; 0 will do).
pub(crate) fn render_text_records<'a, P, R, C>(
    schema_order: &[&str],
    rules: &HashMap<&str, CellRule>,
    pages: P,
    size: (usize, usize),
    budget: usize,
) -> RenderedRows
where
    P: IntoIterator<Item = (&'a [String], R)>,
    R: IntoIterator<Item = (&'a str, C)>,
    C: IntoIterator<Item = (usize, &'a str)>,
{
    /// A page name not looked up yet.
    const UNSEEN: usize = usize::MAX;
    let mut slots: foldhash::HashMap<&'a str, usize> = foldhash::HashMap::default();
    let mut names: Vec<String> = Vec::new();
    let mut filled: Vec<usize> = Vec::new();
    // Per record its ID and its range of `cells`: (slot, text) of every record's non-empty
    // cells, one record after another.
    let mut kept: Vec<(&'a str, std::ops::Range<usize>)> = Vec::with_capacity(size.0);
    let mut cells_of_all: Vec<(usize, &'a str)> = Vec::with_capacity(size.1);
    let mut text_bytes = 0usize;
    let mut slot_of: Vec<usize> = Vec::new();
    for (page_names, records) in pages {
        slot_of.clear();
        slot_of.resize(page_names.len(), UNSEEN);
        for (id, cells) in records {
            let first = cells_of_all.len();
            for (name, text) in cells {
                let text = text.trim_ascii();
                if is_empty_text(text) {
                    continue;
                }
                let (Some(known), Some(name)) = (slot_of.get_mut(name), page_names.get(name))
                else {
                    continue;
                };
                if *known == UNSEEN {
                    *known = *slots.entry(name.as_str()).or_insert_with(|| {
                        names.push(name.clone());
                        filled.push(0);
                        names.len() - 1
                    });
                }
                let slot = *known;
                filled[slot] += 1;
                cells_of_all.push((slot, text));
                text_bytes += text.len();
            }
            kept.push((id, first..cells_of_all.len()));
        }
    }
    let Columns {
        mut columns,
        mut column_of,
        rules: mut column_rules,
    } = Columns::new(schema_order, rules, &slots, names, &filled);
    let rows_budget = budget.saturating_sub(crate::tools::result::json_len(&columns));
    // Room for the rows: their cells' text (which the rows shorten, if anything), each row's
    // ID and punctuation, and a comma or a null per column.
    let room = text_bytes + kept.len() * (24 + 5 * columns.len());
    let mut r = RowWriter::new(columns.len(), room);
    let (mut rows_json, keep, used) = r.render(
        &kept,
        &cells_of_all,
        &column_of,
        &column_rules,
        Some(rows_budget),
    );
    let cut = kept.len() - keep;
    if cut > 0 && used.iter().any(|u| !u) {
        // Columns left empty by the cut go, and the rows are written again without them.
        // A column that goes has no cell left to write (none in the kept rows but cells that
        // write as null): its slots get no column.
        let mut new_index = vec![usize::MAX; columns.len()];
        let mut next = 0;
        for (i, u) in used.iter().enumerate() {
            if *u {
                new_index[i] = next;
                next += 1;
            }
        }
        for c in &mut column_of {
            *c = new_index[*c];
        }
        let mut keep_column = used.iter();
        columns.retain(|_| keep_column.next().copied().unwrap_or(true));
        let mut keep_rule = used.iter();
        column_rules.retain(|_| keep_rule.next().copied().unwrap_or(true));
        r = RowWriter::new(columns.len(), room);
        rows_json = r
            .render(
                &kept[..keep],
                &cells_of_all,
                &column_of,
                &column_rules,
                None,
            )
            .0;
    }
    RenderedRows {
        columns,
        rows_json,
        kept: keep,
        cut,
    }
}

/// Writes rows of cells given as text.
struct RowWriter {
    /// The cells of the row being written, one after another.
    scratch: Vec<u8>,
    /// Where each column's cell is in `scratch` (None: empty).
    at: Vec<Option<(usize, usize)>>,
    /// About how many bytes the rows take.
    room: usize,
}

impl RowWriter {
    /// A writer for rows of `columns` columns, about `room` bytes of them.
    fn new(columns: usize, room: usize) -> Self {
        RowWriter {
            room,
            scratch: Vec::with_capacity(256),
            at: vec![None; columns],
        }
    }

    /// The rows of `records` (each an ID and its range of `cells`) as a JSON array, how many
    /// were written (all, or the prefix that fits in `budget` as `fitting` measures it: each
    /// row's JSON and one separator, at least one row), and which columns have a value in a
    /// written row (the first, the ID, always).
    fn render(
        &mut self,
        records: &[(&str, std::ops::Range<usize>)],
        cells: &[(usize, &str)],
        column_of: &[usize],
        rules: &[CellRule],
        budget: Option<usize>,
    ) -> (String, usize, Vec<bool>) {
        let mut out: Vec<u8> = Vec::with_capacity(self.room.min(budget.unwrap_or(usize::MAX)) + 2);
        let mut used = vec![false; self.at.len()];
        if let Some(first) = used.first_mut() {
            *first = true;
        }
        out.push(b'[');
        let mut spent = 0usize;
        let mut written = 0usize;
        for (i, (id, range)) in records.iter().enumerate() {
            let cells = cells.get(range.clone()).unwrap_or_default();
            let mark = out.len();
            if i > 0 {
                out.push(b',');
            }
            let start = out.len();
            self.row(&mut out, id, cells, column_of, rules);
            let size = out.len() - start + 1;
            if let Some(budget) = budget
                && i > 0
                && spent + size > budget
            {
                out.truncate(mark);
                break;
            }
            spent += size;
            written += 1;
            for (u, at) in used.iter_mut().zip(&self.at) {
                *u |= at.is_some();
            }
        }
        out.push(b']');
        // Cells are copied from JSON text (UTF-8) and written by serde_json.
        let text = String::from_utf8(out)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
        (text, written, used)
    }

    /// One row: `["<id>",cell,...]`, trailing empty cells left out.
    fn row(
        &mut self,
        out: &mut Vec<u8>,
        id: &str,
        cells: &[(usize, &str)],
        column_of: &[usize],
        rules: &[CellRule],
    ) {
        self.scratch.clear();
        self.at.fill(None);
        for &(slot, text) in cells {
            let Some((col, &rule)) = column_of
                .get(slot)
                .and_then(|&col| Some((col, rules.get(col)?)))
            else {
                continue;
            };
            let start = self.scratch.len();
            write_text_cell(&mut self.scratch, text, rule);
            if self.scratch[start..] == *b"null" {
                // An item that unwraps to null: an empty cell, as in `compact_records`.
                self.scratch.truncate(start);
            } else if let Some(at) = self.at.get_mut(col) {
                *at = Some((start, self.scratch.len()));
            }
        }
        out.push(b'[');
        write_json_string(out, id);
        let last = self.at.iter().rposition(Option::is_some).unwrap_or(0);
        for at in self.at.iter().take(last + 1).skip(1) {
            out.push(b',');
            match at {
                Some((start, end)) => out.extend_from_slice(&self.scratch[*start..*end]),
                None => out.extend_from_slice(b"null"),
            }
        }
        out.push(b']');
    }
}

/// `s` as a JSON string.
fn write_json_string(out: &mut Vec<u8>, s: &str) {
    if s.bytes().all(|b| b.is_ascii_alphanumeric()) {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else if serde_json::to_writer(&mut *out, s).is_err() {
        // Writing a string to a Vec does not fail.
        out.extend_from_slice(b"\"\"");
    }
}

/// Whether a cell's JSON text is an empty cell ([`is_empty_cell`]): null, "" or [].
fn is_empty_text(text: &str) -> bool {
    match text {
        "null" | "\"\"" | "[]" => true,
        t => t.starts_with('[') && t.ends_with(']') && t[1..t.len() - 1].trim_ascii().is_empty(),
    }
}

/// A cell given as JSON text, written as [`write_cell`] writes it parsed.
fn write_text_cell(out: &mut Vec<u8>, text: &str, rule: CellRule) {
    if rule.attachments {
        if !write_attachments_text(out, text, rule) {
            write_parsed_cell(out, text, rule);
        }
        return;
    }
    if rule.single && text.starts_with('[') {
        let one = CellRule {
            single: false,
            ..rule
        };
        // The common single item, one string with no escapes (`["recX"]`): no parse.
        if let Some(item) = lone_plain_string(text) {
            return write_text_cell(out, item, one);
        }
        if let Ok(items) = serde_json::from_str::<Vec<&serde_json::value::RawValue>>(text)
            && let [item] = items.as_slice()
            && !item.get().starts_with('[')
        {
            return write_text_cell(out, item.get(), one);
        }
    }
    match text.as_bytes().first() {
        Some(b'"') if rule.instant => match short_instant_text(text) {
            Some((head, tail)) => {
                out.extend_from_slice(head.as_bytes());
                out.extend_from_slice(tail.as_bytes());
            }
            // Escapes: decoded, it may still be an instant to shorten.
            None if text.contains('\\') => write_parsed_cell(out, text, rule),
            None => out.extend_from_slice(text.as_bytes()),
        },
        Some(b'"') => out.extend_from_slice(text.as_bytes()),
        Some(b'-' | b'0'..=b'9') => {
            if plain_number(text) {
                out.extend_from_slice(text.as_bytes());
            } else {
                write_parsed_cell(out, text, rule);
            }
        }
        _ => copy_minified(out, text),
    }
}

/// An attachments cell given as JSON text, written as [`write_cell`] writes it parsed
/// ([`slim_attachments`], then the single-item rule): each attachment object's kept members
/// are copied. False, with nothing written, when the text is not a list (it is then written as
/// parsed).
fn write_attachments_text(out: &mut Vec<u8>, text: &str, rule: CellRule) -> bool {
    let Ok(items) = serde_json::from_str::<Vec<&serde_json::value::RawValue>>(text) else {
        return false;
    };
    let start = out.len();
    let unwrap = rule.single && items.len() == 1 && !items[0].get().starts_with('[');
    if !unwrap {
        out.push(b'[');
    }
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let item = item.get();
        if !item.starts_with('{') {
            if unwrap {
                // The one item, not an attachment: shortened as a cell is.
                let plain = CellRule {
                    single: false,
                    attachments: false,
                    ..rule
                };
                write_text_cell(out, item, plain);
            } else {
                copy_minified(out, item);
            }
            continue;
        }
        let Ok(a) = RawObject::parse(item) else {
            out.truncate(start);
            return false;
        };
        let is_image = a
            .get("type")
            .and_then(|t| serde_json::from_str::<String>(t).ok())
            .is_some_and(|t| t.starts_with("image/"));
        let thumbnail = is_image
            .then(|| {
                let small = RawObject::parse(a.get("thumbnails")?).ok()?.get("small")?;
                RawObject::parse(small).ok()?.get("url")
            })
            .flatten()
            .filter(|u| u.starts_with('"'));
        out.push(b'{');
        let mut first = true;
        let kept = ATTACHMENT_KEYS.iter().filter_map(|k| Some((*k, a.get(k)?)));
        for (key, value) in kept.chain(thumbnail.map(|t| ("thumbnail", t))) {
            if !first {
                out.push(b',');
            }
            first = false;
            out.push(b'"');
            out.extend_from_slice(key.as_bytes());
            out.extend_from_slice(b"\":");
            copy_minified(out, value);
        }
        out.push(b'}');
    }
    if !unwrap {
        out.push(b']');
    }
    true
}

/// The item of a one-item list holding a string without escapes (`["recX"]` → `"recX"`).
fn lone_plain_string(text: &str) -> Option<&str> {
    let item = text.strip_prefix('[')?.strip_suffix(']')?;
    let inner = item.strip_prefix('"')?.strip_suffix('"')?;
    crate::airtable::is_plain(inner.as_bytes()).then_some(item)
}

/// Whether a number's text is what serde_json writes back for it once read, so that it is
/// copied: an integer under 2^53 (not "-0"), or a decimal fraction without exponent whose
/// fraction is not all zeros (those are shortened to integers). A fraction is copied as
/// spelled: what Airtable sends is already its shortest spelling.
fn plain_number(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    if text.starts_with("-0") && !text.starts_with("-0.") {
        return false;
    }
    match digits.split_once('.') {
        None => digits.len() <= 15 && digits.bytes().all(|b| b.is_ascii_digit()),
        Some((int, frac)) => {
            text.len() <= 17
                && int.bytes().all(|b| b.is_ascii_digit())
                && frac.bytes().all(|b| b.is_ascii_digit())
                && frac.bytes().any(|b| b != b'0')
                && !frac.ends_with('0')
        }
    }
}

/// The shortened text of an instant (`"2026-01-02T12:51:00.000Z"` → `"2026-01-02T12:51Z"`),
/// as two pieces, when [`shorten`] would shorten it.
fn short_instant_text(text: &str) -> Option<(&str, &str)> {
    if text.len() != 26
        || !text.ends_with(".000Z\"")
        || !crate::airtable::is_plain(text.as_bytes().get(1..25)?)
    {
        return None;
    }
    let whole_minute = text.get(17..20) == Some(":00");
    Some((text.get(..if whole_minute { 17 } else { 20 })?, "Z\""))
}

/// Parse, write as [`write_cell`] does, serialise (cells that need more than a copy).
fn write_parsed_cell(out: &mut Vec<u8>, text: &str, rule: CellRule) {
    let start = out.len();
    let written = serde_json::from_str::<Value>(text)
        .map_err(|_| ())
        .and_then(|v| serde_json::to_writer(&mut *out, &write_cell(v, rule)).map_err(|_| ()));
    if written.is_err() {
        out.truncate(start);
        copy_minified(out, text);
    }
}

/// Copy JSON text without the whitespace outside its strings.
fn copy_minified(out: &mut Vec<u8>, text: &str) {
    let bytes = text.as_bytes();
    if !bytes
        .iter()
        .any(|b| matches!(b, b' ' | b'\n' | b'\r' | b'\t'))
    {
        out.extend_from_slice(bytes);
        return;
    }
    let mut in_string = false;
    let mut escaped = false;
    for &b in bytes {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
        } else if b == b'"' {
            in_string = true;
        } else if matches!(b, b' ' | b'\n' | b'\r' | b'\t') {
            continue;
        }
        out.push(b);
    }
}

/// A cell as written in a row: slim attachments, unwrap a single item, then shorten.
fn write_cell(v: Value, rule: CellRule) -> Value {
    let v = if rule.attachments {
        slim_attachments(v)
    } else {
        v
    };
    let v = match v {
        Value::Array(mut items) if rule.single && items.len() == 1 && !items[0].is_array() => {
            items.pop().unwrap_or_default()
        }
        other => other,
    };
    shorten(v, rule.instant)
}

/// Attachments as list cells carry them: `id`, `filename`, `type`, `url`, and for images the
/// `small` thumbnail's URL as `thumbnail`. Anything that is not a list of objects is kept.
fn slim_attachments(v: Value) -> Value {
    let Value::Array(items) = v else { return v };
    Value::Array(
        items
            .into_iter()
            .map(|item| {
                let Value::Object(mut a) = item else {
                    return item;
                };
                let thumbnail = a
                    .get("type")
                    .and_then(Value::as_str)
                    .is_some_and(|t| t.starts_with("image/"))
                    .then(|| a.get_mut("thumbnails")?.get_mut("small")?.get_mut("url"))
                    .flatten()
                    .filter(|u| u.is_string())
                    .map(Value::take);
                let mut out = Map::with_capacity(ATTACHMENT_KEYS.len() + 1);
                for k in ATTACHMENT_KEYS {
                    if let Some(v) = a.remove(k) {
                        out.insert(k.to_owned(), v);
                    }
                }
                if let Some(t) = thumbnail {
                    out.insert("thumbnail".to_owned(), t);
                }
                Value::Object(out)
            })
            .collect(),
    )
}

/// The lossless shortenings: integral numbers as integers, zero milliseconds and then zero
/// seconds of instants (`2026-01-02T12:51:00.000Z` → `2026-01-02T12:51Z`).
fn shorten(v: Value, instant: bool) -> Value {
    match v {
        Value::Number(n) if n.is_f64() => match n.as_f64() {
            // Below 2^53 every integral f64 is exactly an i64.
            Some(f) if f.fract() == 0.0 && f.abs() < 9_007_199_254_740_992.0 => {
                Value::from(f as i64)
            }
            _ => Value::Number(n),
        },
        Value::String(mut s) if instant && s.len() == 24 && s.ends_with(".000Z") => {
            let whole_minute = s.get(16..19) == Some(":00");
            s.truncate(if whole_minute { 16 } else { 19 });
            s.push('Z');
            Value::String(s)
        }
        other => other,
    }
}

fn trim_trailing_empties(row: &mut Vec<Value>) {
    while row.len() > 1 && row.last().is_some_and(Value::is_null) {
        row.pop();
    }
}

impl CompactRecords {
    /// Drop the columns that no row has a value in (after rows were cut, e.g. for size).
    pub(crate) fn retain_used_columns(&mut self) {
        let mut used = vec![false; self.columns.len()];
        if let Some(first) = used.first_mut() {
            *first = true;
        }
        for row in &self.rows {
            for (i, v) in row.iter().enumerate().skip(1) {
                if !v.is_null() {
                    used[i] = true;
                }
            }
        }
        if used.iter().all(|u| *u) {
            return;
        }
        let mut keep = used.iter();
        self.columns
            .retain(|_| keep.next().copied().unwrap_or(true));
        for row in &mut self.rows {
            let mut keep = used.iter();
            row.retain(|_| keep.next().copied().unwrap_or(true));
            trim_trailing_empties(row);
        }
    }
}

/// The inverse: records as (ID, cells by field name), empty cells absent. Rows whose first
/// element is not a string get an empty ID.
#[cfg(test)]
pub(crate) fn expand_records(c: &CompactRecords) -> Vec<(String, Map<String, Value>)> {
    c.rows
        .iter()
        .map(|row| {
            let id = row
                .first()
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let cells = c
                .columns
                .iter()
                .zip(row.iter())
                .skip(1)
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            (id, cells)
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use serde_json::json;

    fn no_rules() -> HashMap<&'static str, CellRule> {
        HashMap::new()
    }

    const SINGLE: CellRule = CellRule {
        instant: false,
        single: true,
        attachments: false,
    };
    const ATTACHMENTS: CellRule = CellRule {
        instant: false,
        single: false,
        attachments: true,
    };

    fn own<const N: usize>(
        recs: [(&str, &Map<String, Value>); N],
    ) -> Vec<(String, Map<String, Value>)> {
        recs.iter()
            .map(|(id, c)| ((*id).to_owned(), (*c).clone()))
            .collect()
    }

    fn cells(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn columns_in_schema_order_rows_aligned_trailing_empties_dropped() {
        let a = cells(json!({"Due": "2026-01-05", "Name": "Write spec", "Status": "Done"}));
        let b = cells(json!({"Name": "Review", "Due": "2026-01-09", "Notes": ""}));
        let c = cells(json!({"Name": "Ship", "Tags": []}));
        let out = compact_records(
            &["Name", "Notes", "Status", "Due", "Tags"],
            &no_rules(),
            own([("rec1", &a), ("rec2", &b), ("rec3", &c)]),
        );
        // Densest first (Name 3, Due 2, Status 1), so Status's empty cells are trailing.
        assert_eq!(out.columns, ["id", "Name", "Due", "Status"]);
        assert_eq!(
            serde_json::to_value(&out.rows).unwrap(),
            json!([
                ["rec1", "Write spec", "2026-01-05", "Done"],
                ["rec2", "Review", "2026-01-09"],
                ["rec3", "Ship"]
            ])
        );
    }

    #[test]
    fn ties_keep_schema_order_and_shortenings_are_lossless() {
        let a = cells(json!({"B": 7.0, "A": 7.5, "At": "2026-01-02T12:51:00.000Z",
                             "Text": "2026-01-02T12:51:00.000Z", "Big": 1e300,
                             "Sec": "2026-01-02T12:51:07.000Z", "Ms": "2026-01-02T12:51:00.250Z"}));
        let instant = CellRule {
            instant: true,
            ..CellRule::default()
        };
        let out = compact_records(
            &["A", "B", "At", "Text", "Big", "Sec", "Ms"],
            &HashMap::from([("At", instant), ("Sec", instant), ("Ms", instant)]),
            own([("r1", &a)]),
        );
        assert_eq!(
            out.columns,
            ["id", "A", "B", "At", "Text", "Big", "Sec", "Ms"]
        );
        assert_eq!(
            serde_json::to_string(&out.rows[0]).unwrap(),
            r#"["r1",7.5,7,"2026-01-02T12:51Z","2026-01-02T12:51:00.000Z",1e+300,"2026-01-02T12:51:07Z","2026-01-02T12:51:00.250Z"]"#
        );
        // The same instants.
        for (short, long) in [
            ("2026-01-02T12:51Z", "2026-01-02T12:51:00.000Z"),
            ("2026-01-02T12:51:07Z", "2026-01-02T12:51:07.000Z"),
        ] {
            let parsed = chrono::DateTime::parse_from_str(short, "%Y-%m-%dT%H:%M%#z")
                .or_else(|_| chrono::DateTime::parse_from_rfc3339(short))
                .unwrap();
            assert_eq!(parsed, chrono::DateTime::parse_from_rfc3339(long).unwrap());
        }
    }

    #[test]
    fn fields_outside_the_schema_follow_in_first_seen_order() {
        let a = cells(json!({"Zeta": 1, "Name": "a"}));
        let b = cells(json!({"Alpha": true, "Zeta": 2}));
        let out = compact_records(&["Name"], &no_rules(), own([("r1", &a), ("r2", &b)]));
        assert_eq!(out.columns, ["id", "Zeta", "Name", "Alpha"]);
        assert_eq!(
            out.rows[1],
            vec![json!("r2"), json!(2), Value::Null, json!(true)]
        );
    }

    #[test]
    fn a_field_named_id_keeps_its_own_column() {
        let a = cells(json!({"id": "custom", "Name": "x"}));
        let out = compact_records(&["id", "Name"], &no_rules(), own([("rec1", &a)]));
        assert_eq!(out.columns, ["id", "id", "Name"]);
        assert_eq!(
            out.rows[0],
            vec![json!("rec1"), json!("custom"), json!("x")]
        );
        let back = expand_records(&out);
        assert_eq!(back[0].0, "rec1");
        assert_eq!(back[0].1, a);
    }

    #[test]
    fn round_trip_drops_only_empty_cells() {
        let a = cells(json!({
            "Name": "a", "Count": 0, "Done": false, "Owner": {"id": "usr1", "name": "Ann"},
            "Links": ["recX"], "Empty": "", "None": null, "NoTags": []
        }));
        let b = cells(json!({}));
        let out = compact_records(
            &["Name", "Count"],
            &no_rules(),
            own([("r1", &a), ("r2", &b)]),
        );
        let back = expand_records(&out);
        let mut want = a.clone();
        for k in ["Empty", "None", "NoTags"] {
            want.remove(k);
        }
        assert_eq!(back[0], ("r1".to_owned(), want));
        assert_eq!(back[1], ("r2".to_owned(), Map::new()));
        assert_eq!(out.rows[1], vec![json!("r2")]);
    }

    #[test]
    fn unused_columns_are_dropped_after_a_cut() {
        let a = cells(json!({"Name": "a"}));
        let b = cells(json!({"Name": "b", "Notes": "long"}));
        let mut out = compact_records(
            &["Name", "Notes"],
            &no_rules(),
            own([("r1", &a), ("r2", &b)]),
        );
        assert_eq!(out.columns, ["id", "Name", "Notes"]);
        out.rows.truncate(1);
        out.retain_used_columns();
        assert_eq!(out.columns, ["id", "Name"]);
        assert_eq!(out.rows, vec![vec![json!("r1"), json!("a")]]);
        let mut empty = compact_records(
            &["Name"],
            &no_rules(),
            own([("r1", &cells(json!({"Name": ""})))]),
        );
        empty.retain_used_columns();
        assert_eq!(empty.columns, ["id"]);
        assert_eq!(empty.rows, vec![vec![json!("r1")]]);
    }

    #[test]
    fn no_records_no_fields() {
        let out = compact_records(&["Name"], &no_rules(), std::iter::empty());
        assert_eq!(out.columns, ["id"]);
        assert!(out.rows.is_empty());
        assert_eq!(
            serde_json::to_string(&out).unwrap(),
            r#"{"columns":["id"],"rows":[]}"#
        );
    }

    #[test]
    fn smaller_than_keyed_records() {
        let recs: Vec<(String, Map<String, Value>)> = (0..100)
            .map(|i| {
                (
                    format!("rec{i:014}"),
                    cells(
                        json!({"Name": format!("Task {i}"), "Status": "Todo", "Priority": i % 3}),
                    ),
                )
            })
            .collect();
        let keyed: Vec<Value> = recs
            .iter()
            .map(|(id, f)| json!({"id": id, "fields": f}))
            .collect();
        let keyed = serde_json::to_string(&keyed).unwrap().len();
        let out = compact_records(&["Name", "Status", "Priority"], &no_rules(), recs.clone());
        let compact = serde_json::to_string(&out).unwrap().len();
        assert!(compact * 10 < keyed * 7, "{compact} vs {keyed}");
    }

    #[test]
    fn single_record_links_with_one_id_are_written_as_the_id() {
        let a = cells(json!({"Project": ["recP1"], "Tags": ["recT1"]}));
        let b = cells(json!({"Project": ["recP1", "recP2"], "Tags": ["recT1", "recT2"]}));
        let c = cells(json!({"Project": [{"id": "recP3", "name": "Apollo"}]}));
        let rules = HashMap::from([("Project", SINGLE)]);
        let out = compact_records(
            &["Project", "Tags"],
            &rules,
            own([("r1", &a), ("r2", &b), ("r3", &c)]),
        );
        assert_eq!(out.columns, ["id", "Project", "Tags"]);
        assert_eq!(
            serde_json::to_value(&out.rows).unwrap(),
            json!([
                // One ID: the ID; the multi-record link "Tags" keeps its array.
                ["r1", "recP1", ["recT1"]],
                // Two IDs (the API allows it): an array.
                ["r2", ["recP1", "recP2"], ["recT1", "recT2"]],
                // expand_links: the one {id, name}.
                ["r3", {"id": "recP3", "name": "Apollo"}]
            ])
        );
    }

    #[test]
    fn lookups_through_a_single_link_hold_one_value() {
        // "Status" looks up through a single-record link, "Owners' emails" through a
        // multi-record link (no rule: unchanged).
        let a = cells(json!({"Status": ["Active"], "Emails": ["a@x.io"], "Hours": [7.0]}));
        let b = cells(json!({"Status": ["Active", "Done"], "Emails": ["a@x.io", "b@x.io"]}));
        let c = cells(json!({"Status": [["nested"]]}));
        let rules = HashMap::from([("Status", SINGLE), ("Hours", SINGLE)]);
        let out = compact_records(
            &["Status", "Emails", "Hours"],
            &rules,
            own([("r1", &a), ("r2", &b), ("r3", &c)]),
        );
        assert_eq!(
            serde_json::to_value(&out.rows).unwrap(),
            json!([
                ["r1", "Active", ["a@x.io"], 7],
                ["r2", ["Active", "Done"], ["a@x.io", "b@x.io"]],
                // An item that is itself a list stays wrapped (else it would read as 2+ items).
                ["r3", [["nested"]]]
            ])
        );
    }

    fn thumbnails(name: &str) -> Value {
        json!({
            "small": {"url": format!("https://t.example/{name}-s"), "width": 54, "height": 36},
            "large": {"url": format!("https://t.example/{name}-l"), "width": 768, "height": 512},
            "full": {"url": format!("https://t.example/{name}-f"), "width": 3000, "height": 2000}
        })
    }

    #[test]
    fn attachments_keep_id_filename_type_url_and_an_image_thumbnail() {
        let a = cells(json!({"Files": [
            {"id": "att1", "width": 3000, "height": 2000, "url": "https://u.example/1",
             "filename": "photo.jpg", "size": 123456, "type": "image/jpeg",
             "thumbnails": thumbnails("1")},
            // An image without thumbnails (Airtable had not made them yet).
            {"id": "att2", "url": "https://u.example/2", "filename": "new.png",
             "size": 10, "type": "image/png"},
            // Not an image: no thumbnail even when Airtable sends thumbnails.
            {"id": "att3", "url": "https://u.example/3", "filename": "spec.pdf",
             "size": 99, "type": "application/pdf", "thumbnails": thumbnails("3")}
        ]}));
        let rules = HashMap::from([("Files", ATTACHMENTS)]);
        let out = compact_records(&["Files"], &rules, own([("r1", &a)]));
        assert_eq!(
            serde_json::to_string(&out.rows[0][1]).unwrap(),
            serde_json::to_string(&json!([
                {"id": "att1", "filename": "photo.jpg", "type": "image/jpeg",
                 "url": "https://u.example/1", "thumbnail": "https://t.example/1-s"},
                {"id": "att2", "filename": "new.png", "type": "image/png",
                 "url": "https://u.example/2"},
                {"id": "att3", "filename": "spec.pdf", "type": "application/pdf",
                 "url": "https://u.example/3"}
            ]))
            .unwrap(),
            "kept keys, in this order"
        );
        // Without the rule (a field that is not an attachment field) nothing is dropped.
        let out = compact_records(&["Files"], &no_rules(), own([("r1", &a)]));
        assert_eq!(out.rows[0][1], a["Files"]);
    }

    #[test]
    fn attachments_looked_up_through_a_single_link() {
        let a = cells(
            json!({"Photo": [{"id": "att1", "url": "https://u.example/1",
            "filename": "p.png", "size": 5, "type": "image/png", "width": 1, "height": 1,
            "thumbnails": thumbnails("1")}]}),
        );
        let rules = HashMap::from([(
            "Photo",
            CellRule {
                single: true,
                attachments: true,
                ..CellRule::default()
            },
        )]);
        let out = compact_records(&["Photo"], &rules, own([("r1", &a)]));
        assert_eq!(
            out.rows[0][1],
            json!({"id": "att1", "filename": "p.png", "type": "image/png",
                   "url": "https://u.example/1", "thumbnail": "https://t.example/1-s"})
        );
        // Cells that are not lists of objects (cell_format "string") are left alone.
        let s = cells(json!({"Photo": "p.png (https://u.example/1)"}));
        let out = compact_records(&["Photo"], &rules, own([("r1", &s)]));
        assert_eq!(out.rows[0][1], json!("p.png (https://u.example/1)"));
    }

    #[test]
    fn the_output_schema_names_both_properties() {
        let schema = serde_json::to_value(schemars::schema_for!(CompactRecords)).unwrap();
        let props = schema["properties"].as_object().unwrap();
        assert!(props.contains_key("columns") && props.contains_key("rows"));
        assert_eq!(schema["required"], json!(["columns", "rows"]));
    }

    // ---- Records given as text: the same rows as parsed records ----

    use proptest::prelude::*;

    /// What `records_output` makes of parsed records: the columns, the kept rows' JSON, how
    /// many rows were kept and cut.
    fn from_parsed(
        order: &[&str],
        rules: &HashMap<&str, CellRule>,
        records: &[(String, Map<String, Value>)],
        budget: usize,
    ) -> (Vec<String>, String, usize, usize) {
        let mut c = compact_records(order, rules, records.iter().cloned());
        let rows_budget = budget.saturating_sub(crate::tools::result::json_len(&c.columns));
        let rows = std::mem::take(&mut c.rows);
        let (rows, cut, rows_json) =
            crate::tools::result::fit_to_budget_rendered(rows, rows_budget);
        c.rows = rows;
        let mut rows_json = rows_json.unwrap();
        if cut > 0 {
            c.retain_used_columns();
            rows_json = serde_json::to_string(&c.rows).unwrap();
        }
        (c.columns, rows_json, c.rows.len(), cut)
    }

    /// The same records given as text, each cell written by `write`.
    fn from_text(
        order: &[&str],
        rules: &HashMap<&str, CellRule>,
        records: &[(String, Map<String, Value>)],
        budget: usize,
        write: fn(&Value) -> String,
    ) -> (Vec<String>, String, usize, usize) {
        // Pages of up to three records, each naming its fields in the order it first has them.
        type Page = (Vec<String>, Vec<(String, Vec<(usize, String)>)>);
        let pages: Vec<Page> = records
            .chunks(3)
            .map(|chunk| {
                let mut names: Vec<String> = Vec::new();
                let records = chunk
                    .iter()
                    .map(|(id, cells)| {
                        let cells = cells
                            .iter()
                            .map(|(k, v)| {
                                let at = names.iter().position(|n| n == k).unwrap_or_else(|| {
                                    names.push(k.clone());
                                    names.len() - 1
                                });
                                (at, write(v))
                            })
                            .collect();
                        (id.clone(), cells)
                    })
                    .collect();
                (names, records)
            })
            .collect();
        let r = render_text_records(
            order,
            rules,
            pages.iter().map(|(names, records)| {
                (
                    names.as_slice(),
                    records.iter().map(|(id, cells)| {
                        (id.as_str(), cells.iter().map(|(at, t)| (*at, t.as_str())))
                    }),
                )
            }),
            (0, 0),
            budget,
        );
        (r.columns, r.rows_json, r.kept, r.cut)
    }

    const NAMES: [&str; 7] = ["Name", "id", "Due", "Links", "Files", "Say \"hi\"", "Zoë"];

    fn leaf() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            Just(json!("")),
            Just(json!([])),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            (-1e6f64..1e6).prop_map(Value::from),
            prop::sample::select(vec![3.0, -0.0, 0.0, 1e20, 2.5e-7, 9007199254740993.0])
                .prop_map(Value::from),
            "[a-z\"\\\\/\u{e9}\u{200b}\n\t\u{1}]{0,6}".prop_map(Value::from),
            prop::sample::select(vec![
                "2026-01-02T12:51:00.000Z",
                "2026-01-02T12:51:07.000Z",
                "2026-01-02T12:51:07.120Z",
                "2026-01-02",
                "\u{1}026-01-02T12:51:00.000Z",
            ])
            .prop_map(Value::from),
            "rec[A-Za-z0-9]{3}".prop_map(Value::from),
        ]
    }

    fn attachment() -> impl Strategy<Value = Value> {
        (
            prop::sample::select(vec!["image/png", "application/pdf"]),
            any::<bool>(),
        )
            .prop_map(|(t, thumbs)| {
                let mut a = json!({"id": "att1", "url": "https://x/a", "filename": "a",
                    "size": 3, "type": t, "width": 2});
                if thumbs {
                    a["thumbnails"] = json!({"small": {"url": "https://x/s", "width": 1}});
                }
                a
            })
    }

    fn cell() -> impl Strategy<Value = Value> {
        prop_oneof![
            4 => leaf(),
            1 => prop::collection::vec(leaf(), 0..3).prop_map(Value::from),
            1 => leaf().prop_map(|v| json!([v])),
            1 => leaf().prop_map(|v| json!([[v]])),
            1 => prop::collection::vec(attachment(), 0..3).prop_map(Value::from),
            1 => (leaf(), leaf()).prop_map(|(a, b)| json!({"id": a, "name": b})),
        ]
    }

    fn records() -> impl Strategy<Value = Vec<(String, Map<String, Value>)>> {
        prop::collection::vec(
            prop::collection::vec((prop::sample::select(NAMES.to_vec()), cell()), 0..6),
            0..8,
        )
        .prop_map(|recs| {
            recs.into_iter()
                .enumerate()
                .map(|(i, cells)| {
                    let cells = cells.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
                    (format!("rec{i:014}"), cells)
                })
                .collect()
        })
    }

    fn rules() -> impl Strategy<Value = HashMap<&'static str, CellRule>> {
        prop::collection::vec((any::<bool>(), any::<bool>(), any::<bool>()), NAMES.len()).prop_map(
            |flags| {
                NAMES
                    .iter()
                    .zip(flags)
                    .map(|(n, (instant, single, attachments))| {
                        (
                            *n,
                            CellRule {
                                instant,
                                single,
                                attachments,
                            },
                        )
                    })
                    .collect()
            },
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Cells sent as compact JSON: the text path writes the very bytes the parsed path
        /// writes, cut included.
        #[test]
        fn text_records_write_what_parsed_records_write(
            records in records(),
            rules in rules(),
            budget in prop_oneof![0usize..400, Just(100_000usize)],
            schema in prop::sample::subsequence(NAMES.to_vec(), 0..NAMES.len()),
        ) {
            let want = from_parsed(&schema, &rules, &records, budget);
            let got = from_text(&schema, &rules, &records, budget, |v| serde_json::to_string(v).unwrap());
            prop_assert_eq!(got, want);
        }

        /// Cells sent pretty-printed: the same rows once read (whitespace goes).
        #[test]
        fn whitespace_in_cells_goes(records in records(), rules in rules()) {
            let want = from_parsed(&NAMES, &rules, &records, 100_000);
            let got = from_text(&NAMES, &rules, &records, 100_000, |v| serde_json::to_string_pretty(v).unwrap());
            prop_assert_eq!(&got.0, &want.0);
            let got_rows: Value = serde_json::from_str(&got.1).unwrap();
            let want_rows: Value = serde_json::from_str(&want.1).unwrap();
            prop_assert_eq!(got_rows, want_rows);
            prop_assert!(!got.1.contains('\n') || want.1.contains('\n'), "{}", got.1);
        }
    }
}
