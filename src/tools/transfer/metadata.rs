//! create_metadata_table's pure core: the rows describing a base, and the plan that brings
//! an existing metadata table up to date (upsert by key, delete rows of vanished fields).

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use crate::tools::cells::{CellMap, Field, RecordLike, Table, render, truncate_chars};

/// The key column (primary field): `Table ID|Field ID`, or the table ID for a table's row.
pub(crate) const KEY: &str = "Key";
pub(crate) const TABLE: &str = "Table";
pub(crate) const FIELD: &str = "Field";
pub(crate) const TYPE: &str = "Type";
pub(crate) const DESCRIPTION: &str = "Description";
pub(crate) const OPTIONS: &str = "Options";
pub(crate) const PRIMARY: &str = "Primary";
pub(crate) const FIELD_ID: &str = "Field ID";
pub(crate) const TABLE_ID: &str = "Table ID";

/// The metadata table's columns and their Airtable types, primary field first.
pub(crate) const COLUMNS: &[(&str, &str)] = &[
    (KEY, "singleLineText"),
    (TABLE, "singleLineText"),
    (FIELD, "singleLineText"),
    (TYPE, "singleLineText"),
    (DESCRIPTION, "multilineText"),
    (OPTIONS, "multilineText"),
    (PRIMARY, "singleLineText"),
    (FIELD_ID, "singleLineText"),
    (TABLE_ID, "singleLineText"),
];

/// Columns missing from an existing metadata table (to be created before writing).
pub(crate) fn missing_columns(table: &Table) -> Vec<(&'static str, &'static str)> {
    COLUMNS
        .iter()
        .filter(|(name, _)| table.fields.iter().all(|f| f.name != *name))
        .copied()
        .collect()
}

/// Longest options summary, in characters.
const OPTIONS_CHARS: usize = 500;

/// A short human summary of a field's options (choices, precision, linked table, formula…).
pub(crate) fn options_summary(field: &Field, tables: &[Table]) -> String {
    let Some(Value::Object(o)) = &field.options else {
        return String::new();
    };
    let table_name = |id: &str| {
        tables
            .iter()
            .find(|t| t.id == id)
            .map(|t| t.name.clone())
            .unwrap_or_else(|| id.to_string())
    };
    let field_name = |id: &str| {
        tables
            .iter()
            .flat_map(|t| t.fields.iter())
            .find(|f| f.id == id)
            .map(|f| f.name.clone())
            .unwrap_or_else(|| id.to_string())
    };
    let mut parts: Vec<String> = Vec::new();
    if let Some(Value::Array(choices)) = o.get("choices") {
        let names: Vec<String> = choices
            .iter()
            .filter_map(|c| c.get("name").and_then(Value::as_str).map(String::from))
            .collect();
        parts.push(format!("choices: {}", names.join(", ")));
    }
    if let Some(t) = o.get("linkedTableId").and_then(Value::as_str) {
        parts.push(format!("links to {}", table_name(t)));
    }
    if let Some(f) = o.get("formula").and_then(Value::as_str) {
        parts.push(format!("formula: {f}"));
    }
    if let Some(f) = o.get("recordLinkFieldId").and_then(Value::as_str) {
        parts.push(format!("via {}", field_name(f)));
    }
    if let Some(f) = o.get("fieldIdInLinkedTable").and_then(Value::as_str) {
        parts.push(format!("of {}", field_name(f)));
    }
    if let Some(p) = o.get("precision").and_then(Value::as_u64) {
        parts.push(format!("precision {p}"));
    }
    if let Some(s) = o.get("symbol").and_then(Value::as_str) {
        parts.push(format!("symbol {s}"));
    }
    if let Some(m) = o.get("max").and_then(Value::as_u64) {
        parts.push(format!("max {m}"));
    }
    if let Some(d) = o.get("durationFormat").and_then(Value::as_str) {
        parts.push(format!("format {d}"));
    }
    if let Some(d) = o
        .get("dateFormat")
        .and_then(|d| d.get("name"))
        .and_then(Value::as_str)
    {
        parts.push(format!("date format {d}"));
    }
    if let Some(t) = o.get("timeZone").and_then(Value::as_str) {
        parts.push(format!("time zone {t}"));
    }
    if let Some(r) = o
        .get("result")
        .and_then(|r| r.get("type"))
        .and_then(Value::as_str)
    {
        parts.push(format!("result {r}"));
    }
    truncate_chars(&parts.join("; "), OPTIONS_CHARS)
}

fn cells(pairs: &[(&str, String)]) -> CellMap {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), Value::String(v.clone())))
        .collect()
}

/// One row per table and one per field of every table but `exclude_table_id` (the
/// metadata table itself), keyed `Table ID` and `Table ID|Field ID`.
pub(crate) fn metadata_rows(tables: &[Table], exclude_table_id: Option<&str>) -> Vec<CellMap> {
    let mut rows = Vec::new();
    for t in tables
        .iter()
        .filter(|t| Some(t.id.as_str()) != exclude_table_id)
    {
        let primary = t
            .fields
            .iter()
            .find(|f| f.id == t.primary_field_id)
            .map(|f| f.name.clone())
            .unwrap_or_default();
        rows.push(cells(&[
            (KEY, t.id.to_string()),
            (TABLE, t.name.clone()),
            (FIELD, String::new()),
            (TYPE, "table".into()),
            (DESCRIPTION, t.description.clone().unwrap_or_default()),
            (
                OPTIONS,
                format!("{} fields; primary field {primary}", t.fields.len()),
            ),
            (PRIMARY, String::new()),
            (FIELD_ID, String::new()),
            (TABLE_ID, t.id.to_string()),
        ]));
        for f in &t.fields {
            rows.push(cells(&[
                (KEY, format!("{}|{}", t.id, f.id)),
                (TABLE, t.name.clone()),
                (FIELD, f.name.clone()),
                (TYPE, f.field_type.to_string()),
                (DESCRIPTION, f.description.clone().unwrap_or_default()),
                (OPTIONS, options_summary(f, tables)),
                (
                    PRIMARY,
                    if f.id == t.primary_field_id {
                        "yes".into()
                    } else {
                        String::new()
                    },
                ),
                (FIELD_ID, f.id.to_string()),
                (TABLE_ID, t.id.to_string()),
            ]));
        }
    }
    rows
}

/// What to write to bring the metadata table up to date.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct MetadataPlan {
    /// Rows for tables and fields that have none yet.
    pub(crate) creates: Vec<CellMap>,
    /// (record ID, the cells that changed).
    pub(crate) updates: Vec<(String, CellMap)>,
    /// Rows of tables or fields that no longer exist, and extra rows with a duplicate key.
    pub(crate) deletes: Vec<String>,
    /// Rows already up to date.
    pub(crate) unchanged: usize,
}

/// Compare the desired rows with the metadata table's records, matched by [`KEY`].
pub(crate) fn plan<R: RecordLike>(desired: Vec<CellMap>, existing: &[R]) -> MetadataPlan {
    let mut by_key: HashMap<String, &R> = HashMap::new();
    let mut plan = MetadataPlan::default();
    for r in existing {
        let key = r.cells().get(KEY).map(render).unwrap_or_default();
        if key.is_empty() || by_key.contains_key(&key) {
            plan.deletes.push(r.record_id().to_string());
        } else {
            by_key.insert(key, r);
        }
    }
    let mut wanted: HashSet<String> = HashSet::new();
    for row in desired {
        let key = row.get(KEY).map(render).unwrap_or_default();
        wanted.insert(key.clone());
        match by_key.get(&key) {
            None => plan.creates.push(row),
            Some(r) => {
                let have = r.cells();
                let changed: CellMap = row
                    .into_iter()
                    .filter(|(k, v)| have.get(k).map(render).unwrap_or_default() != render(v))
                    .collect();
                if changed.is_empty() {
                    plan.unchanged += 1;
                } else {
                    plan.updates.push((r.record_id().to_string(), changed));
                }
            }
        }
    }
    for r in existing {
        let key = r.cells().get(KEY).map(render).unwrap_or_default();
        if !key.is_empty()
            && !wanted.contains(&key)
            && by_key
                .get(&key)
                .is_some_and(|k| k.record_id() == r.record_id())
        {
            plan.deletes.push(r.record_id().to_string());
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::cells::PlainRecord;
    use serde_json::json;

    fn schema() -> Vec<Table> {
        serde_json::from_value(json!([
            {"id": "tblProjects000001", "name": "Projects", "primaryFieldId": "fldName0000000001",
             "description": "All projects",
             "fields": [
                {"id": "fldName0000000001", "name": "Name", "type": "singleLineText"},
                {"id": "fldStatus00000001", "name": "Status", "type": "singleSelect",
                 "options": {"choices": [{"id": "sel1", "name": "Active"}, {"id": "sel2", "name": "Done"}]}},
                {"id": "fldTasks000000001", "name": "Tasks", "type": "multipleRecordLinks",
                 "description": "Work items", "options": {"linkedTableId": "tblTasks000000001"}}
             ]},
            {"id": "tblTasks000000001", "name": "Tasks", "primaryFieldId": "fldTitle000000001",
             "fields": [
                {"id": "fldTitle000000001", "name": "Title", "type": "singleLineText"},
                {"id": "fldHours000000001", "name": "Hours", "type": "number", "options": {"precision": 1}}
             ]},
            {"id": "tblMeta0000000001", "name": "Table Metadata", "primaryFieldId": "fldKey00000000001",
             "fields": [{"id": "fldKey00000000001", "name": "Key", "type": "singleLineText"}]}
        ]))
        .unwrap()
    }

    #[test]
    fn rows_describe_tables_and_fields() {
        let tables = schema();
        let rows = metadata_rows(&tables, Some("tblMeta0000000001"));
        assert_eq!(
            rows.len(),
            2 + 5,
            "a row per table and per field, metadata table excluded"
        );
        let status = rows
            .iter()
            .find(|r| r[KEY] == "tblProjects000001|fldStatus00000001")
            .unwrap();
        assert_eq!(status[OPTIONS], "choices: Active, Done");
        assert_eq!(status[TYPE], "singleSelect");
        let link = rows.iter().find(|r| r[FIELD] == "Tasks").unwrap();
        assert_eq!(link[OPTIONS], "links to Tasks");
        assert_eq!(link[DESCRIPTION], "Work items");
        let name = rows.iter().find(|r| r[FIELD] == "Name").unwrap();
        assert_eq!(name[PRIMARY], "yes");
        let table = rows.iter().find(|r| r[KEY] == "tblProjects000001").unwrap();
        assert_eq!(table[TYPE], "table");
        assert_eq!(table[OPTIONS], "3 fields; primary field Name");
    }

    #[test]
    fn plan_upserts_by_key_and_deletes_vanished_rows() {
        let tables = schema();
        let desired = metadata_rows(&tables, Some("tblMeta0000000001"));
        let mut existing: Vec<PlainRecord> = desired
            .iter()
            .enumerate()
            .map(|(i, row)| PlainRecord {
                id: format!("rec{i:014}"),
                fields: row.clone(),
            })
            .collect();
        // Fresh table: everything unchanged.
        let p = plan(desired.clone(), &existing);
        assert_eq!(p.unchanged, desired.len());
        assert!(p.creates.is_empty() && p.updates.is_empty() && p.deletes.is_empty());

        // One row edited, one vanished field, one duplicate, one field missing.
        existing[1]
            .fields
            .insert(DESCRIPTION.into(), Value::String("stale".into()));
        existing.push(PlainRecord {
            id: "recGone000000001".into(),
            fields: cells(&[(KEY, "tblProjects000001|fldGone00000001".into())]),
        });
        existing.push(PlainRecord {
            id: "recDup0000000001".into(),
            fields: existing[0].fields.clone(),
        });
        let removed = existing.remove(6);
        let p = plan(desired.clone(), &existing);
        assert_eq!(p.creates.len(), 1);
        assert_eq!(p.creates[0][KEY], removed.fields[KEY]);
        assert_eq!(p.updates.len(), 1);
        assert_eq!(p.updates[0].0, existing[1].id);
        assert_eq!(p.updates[0].1.len(), 1, "only the changed cell is sent");
        assert_eq!(p.updates[0].1[DESCRIPTION], "");
        let mut deletes = p.deletes.clone();
        deletes.sort();
        assert_eq!(deletes, vec!["recDup0000000001", "recGone000000001"]);
        assert_eq!(p.unchanged, desired.len() - 2);
    }

    #[test]
    fn missing_columns_are_found() {
        let tables = schema();
        let missing = missing_columns(&tables[2]);
        assert_eq!(missing.len(), COLUMNS.len() - 1);
        assert!(missing.iter().all(|(n, _)| *n != KEY));
        assert_eq!(COLUMNS[0].0, KEY);
    }
}
