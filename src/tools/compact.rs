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
//! Pure: no MCP, no HTTP, no dependency on the client's types.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

use serde_json::{Map, Value};

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
    // Schema order first, then the others as first seen; densest first (a stable sort, so ties
    // keep that order).
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
}
