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
//! - The other columns are the fields that have a value in at least one of the rows: first the
//!   fields of the schema order given, then any other field in the order first seen.
//!   Fields empty in every row are left out.
//! - `row[j]` is the value of `columns[j]`, exactly as Airtable sends it (nothing is lossy);
//!   `null` means the cell is empty. Empty strings and empty arrays count as empty (Airtable
//!   itself omits empty cells).
//! - Trailing empty cells are dropped, so a row may be shorter than `columns`: a missing
//!   position is an empty cell.
//!
//! Pure: no MCP, no HTTP, no dependency on the client's types.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The name of the first column (the record ID).
pub const ID_COLUMN: &str = "id";

/// Records as columns and rows (see the module documentation for the encoding).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CompactRecords {
    /// Column names: "id" (the record ID) first, then every field that has a value in at
    /// least one row, in schema order.
    pub columns: Vec<String>,
    /// One array per record, aligned to `columns`: the record ID, then the cell values. null is
    /// an empty cell; trailing empty cells are left out, so a row may be shorter than `columns`.
    pub rows: Vec<Vec<Value>>,
}

/// Whether a cell counts as empty (and is sent as null or left out).
pub fn is_empty_cell(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

/// Turn records (ID, cells by field name) into columns and rows. `schema_order` lists the
/// table's field names in schema order; fields not in it follow in the order first seen.
pub fn compact_records<'a, I>(schema_order: &[&str], records: I) -> CompactRecords
where
    I: IntoIterator<Item = (&'a str, &'a Map<String, Value>)>,
{
    let records: Vec<(&str, &Map<String, Value>)> = records.into_iter().collect();
    // Fields with at least one non-empty cell.
    let mut used: Vec<&str> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (_, cells) in &records {
        for (name, v) in cells.iter() {
            if !is_empty_cell(v) && seen.insert(name.as_str()) {
                used.push(name.as_str());
            }
        }
    }
    let mut order: Vec<&str> = schema_order
        .iter()
        .copied()
        .filter(|n| seen.contains(n))
        .collect();
    let in_schema: std::collections::HashSet<&str> = order.iter().copied().collect();
    order.extend(used.into_iter().filter(|n| !in_schema.contains(n)));

    let mut columns = Vec::with_capacity(order.len() + 1);
    columns.push(ID_COLUMN.to_owned());
    columns.extend(order.iter().map(|n| (*n).to_owned()));

    let rows = records
        .iter()
        .map(|(id, cells)| {
            let mut row = Vec::with_capacity(order.len() + 1);
            row.push(Value::String((*id).to_owned()));
            for name in &order {
                match cells.get(*name) {
                    Some(v) if !is_empty_cell(v) => row.push(v.clone()),
                    _ => row.push(Value::Null),
                }
            }
            while row.len() > 1 && row.last().is_some_and(Value::is_null) {
                row.pop();
            }
            row
        })
        .collect();
    CompactRecords { columns, rows }
}

/// The inverse: records as (ID, cells by field name), empty cells absent. Rows whose first
/// element is not a string get an empty ID.
pub fn expand_records(c: &CompactRecords) -> Vec<(String, Map<String, Value>)> {
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
            [("rec1", &a), ("rec2", &b), ("rec3", &c)],
        );
        assert_eq!(out.columns, ["id", "Name", "Status", "Due"]);
        assert_eq!(
            serde_json::to_value(&out.rows).unwrap(),
            json!([
                ["rec1", "Write spec", "Done", "2026-01-05"],
                ["rec2", "Review", null, "2026-01-09"],
                ["rec3", "Ship"]
            ])
        );
    }

    #[test]
    fn fields_outside_the_schema_follow_in_first_seen_order() {
        let a = cells(json!({"Zeta": 1, "Name": "a"}));
        let b = cells(json!({"Alpha": true, "Zeta": 2}));
        let out = compact_records(&["Name"], [("r1", &a), ("r2", &b)]);
        assert_eq!(out.columns, ["id", "Name", "Zeta", "Alpha"]);
        assert_eq!(
            out.rows[1],
            vec![json!("r2"), Value::Null, json!(2), json!(true)]
        );
    }

    #[test]
    fn a_field_named_id_keeps_its_own_column() {
        let a = cells(json!({"id": "custom", "Name": "x"}));
        let out = compact_records(&["id", "Name"], [("rec1", &a)]);
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
        let out = compact_records(&["Name", "Count"], [("r1", &a), ("r2", &b)]);
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
    fn no_records_no_fields() {
        let out = compact_records(&["Name"], std::iter::empty());
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
        let out = compact_records(
            &["Name", "Status", "Priority"],
            recs.iter().map(|(id, f)| (id.as_str(), f)),
        );
        let compact = serde_json::to_string(&out).unwrap().len();
        assert!(compact * 10 < keyed * 7, "{compact} vs {keyed}");
    }

    #[test]
    fn the_output_schema_names_both_properties() {
        let schema = serde_json::to_value(schemars::schema_for!(CompactRecords)).unwrap();
        let props = schema["properties"].as_object().unwrap();
        assert!(props.contains_key("columns") && props.contains_key("rows"));
        assert_eq!(schema["required"], json!(["columns", "rows"]));
    }
}
