//! Columns to fields: an explicit `mapping` first, then the exact field name, then a case- and
//! accent-insensitive match. Then each row is converted into a record, or rejected with every
//! failed value named (row, column, reason).

use std::collections::{BTreeMap, HashMap};

use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;

use crate::airtable::{Field, Fields, Table};

use super::ImportError;
use super::convert::{Links, convert, normalise};
use super::source::Sheet;

/// Which field each column fills.
#[derive(Debug)]
pub(crate) struct Mapping<'t> {
    /// (column index, field), in column order.
    pub(crate) pairs: Vec<(usize, &'t Field)>,
    /// Columns that fill no field.
    pub(crate) unmapped_columns: Vec<String>,
    /// Writable fields no column fills.
    pub(crate) unfilled_fields: Vec<String>,
}

/// Map the sheet's columns onto `table`. `explicit`: column -> field name or ID (an empty
/// value skips the column). A column mapped to a computed field is an error.
pub(crate) fn map_columns<'t>(
    columns: &[String],
    table: &'t Table,
    explicit: &BTreeMap<String, String>,
) -> Result<Mapping<'t>, ImportError> {
    for col in explicit.keys() {
        if !columns.iter().any(|c| c == col)
            && !columns.iter().any(|c| normalise(c) == normalise(col))
        {
            return Err(ImportError::Mapping(format!(
                "mapping names the column {col:?}, which the source lacks (columns: {})",
                columns.join(", ")
            )));
        }
    }
    let mut pairs: Vec<(usize, &Field)> = Vec::new();
    let mut unmapped = Vec::new();
    for (i, col) in columns.iter().enumerate() {
        let chosen = explicit.get(col).or_else(|| {
            explicit
                .iter()
                .find(|(k, _)| normalise(k) == normalise(col))
                .map(|(_, v)| v)
        });
        let field = match chosen {
            Some(target) if target.trim().is_empty() => None,
            Some(target) => Some(table.field(target).ok_or_else(|| {
                ImportError::Mapping(format!(
                    "mapping sends {col:?} to {target:?}, which is not a field of {}",
                    table.name
                ))
            })?),
            None => table.fields.iter().find(|f| f.name == *col).or_else(|| {
                table
                    .fields
                    .iter()
                    .find(|f| normalise(&f.name) == normalise(col))
            }),
        };
        match field {
            Some(f) if f.field_type.is_computed() => {
                if chosen.is_some() {
                    return Err(ImportError::Mapping(format!(
                        "{col:?} is mapped to {}, a computed {} field that cannot be written",
                        f.name, f.field_type
                    )));
                }
                unmapped.push(format!("{col} (matches computed field {})", f.name));
            }
            Some(f) => {
                if let Some((j, _)) = pairs.iter().find(|(_, g)| g.id == f.id) {
                    return Err(ImportError::Mapping(format!(
                        "columns {:?} and {col:?} both fill {}; map one of them elsewhere or to \"\"",
                        columns[*j], f.name
                    )));
                }
                pairs.push((i, f));
            }
            None => unmapped.push(col.clone()),
        }
    }
    let unfilled = table
        .fields
        .iter()
        .filter(|f| !f.field_type.is_computed() && !pairs.iter().any(|(_, g)| g.id == f.id))
        .map(|f| f.name.clone())
        .collect();
    Ok(Mapping {
        pairs,
        unmapped_columns: unmapped,
        unfilled_fields: unfilled,
    })
}

/// A value that could not be converted, or a row refused.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub(crate) struct Rejection {
    /// Source row (CSV line, sheet row, JSON element).
    pub(crate) row: usize,
    /// Column, when one value is at fault.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) column: Option<String>,
    /// Why.
    pub(crate) reason: String,
}

/// The records an import writes, with where each came from.
#[derive(Debug, Default)]
pub(crate) struct Converted {
    /// (source row, record fields by field name).
    pub(crate) records: Vec<(usize, Fields)>,
    /// Failed values; a row with any is not written.
    pub(crate) rejected: Vec<Rejection>,
    /// Source rows refused because an earlier row has the same key.
    pub(crate) duplicate_keys: Vec<Rejection>,
}

/// Convert every row. `key_fields`: field names; rows whose key repeats an earlier row's, or
/// lacks a key value, are refused.
pub(crate) fn convert_rows(
    sheet: &Sheet,
    mapping: &Mapping<'_>,
    key_fields: &[String],
    typecast: bool,
    links: &Links,
) -> Converted {
    let mut out = Converted::default();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for row in &sheet.rows {
        let mut fields = Fields::new();
        let mut bad = false;
        for (i, f) in &mapping.pairs {
            let v = row.cells.get(*i).unwrap_or(&Value::Null);
            match convert(f, v, typecast, links) {
                Ok(Some(c)) => {
                    fields.insert(f.name.clone(), c);
                }
                Ok(None) => {}
                Err(reason) => {
                    bad = true;
                    out.rejected.push(Rejection {
                        row: row.row,
                        column: Some(sheet.columns.get(*i).cloned().unwrap_or_default()),
                        reason,
                    });
                }
            }
        }
        if bad {
            continue;
        }
        if !key_fields.is_empty() {
            let parts: Option<Vec<String>> = key_fields
                .iter()
                .map(|k| fields.get(k).map(|v| normalise(&v.to_string())))
                .collect();
            let Some(parts) = parts else {
                out.rejected.push(Rejection {
                    row: row.row,
                    column: None,
                    reason: format!("no value for the key field(s) {}", key_fields.join(", ")),
                });
                continue;
            };
            let key = parts.join("\u{1f}");
            if let Some(first) = seen.get(&key) {
                out.duplicate_keys.push(Rejection {
                    row: row.row,
                    column: None,
                    reason: format!("same key as row {first}; only the first is imported"),
                });
                continue;
            }
            seen.insert(key, row.row);
        }
        if fields.is_empty() {
            continue;
        }
        out.records.push((row.row, fields));
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::tools::cells::test_field;
    use crate::tools::import::source::{Format, parse};
    use serde_json::json;

    fn table() -> Table {
        let fields = vec![
            test_field("Name", "singleLineText"),
            test_field("Café", "singleLineText"),
            test_field("Qty", "number"),
            test_field("Total", "formula"),
            test_field("Notes", "multilineText"),
        ];
        Table {
            id: crate::airtable::TableId::new("tblAAAAAAAAAAAAAA").unwrap(),
            name: "T".into(),
            primary_field_id: fields[0].id.clone(),
            description: None,
            fields,
            views: Vec::new(),
        }
    }

    #[test]
    fn maps_exact_then_folded_then_explicit() {
        let t = table();
        let cols: Vec<String> = ["name", "CAFE", "Amount", "Total", "Extra"]
            .map(String::from)
            .into();
        let explicit = BTreeMap::from([("Amount".to_owned(), "Qty".to_owned())]);
        let m = map_columns(&cols, &t, &explicit).unwrap();
        let got: Vec<(usize, &str)> = m.pairs.iter().map(|(i, f)| (*i, f.name.as_str())).collect();
        assert_eq!(got, [(0, "Name"), (1, "Café"), (2, "Qty")]);
        assert_eq!(
            m.unmapped_columns,
            ["Total (matches computed field Total)", "Extra"]
        );
        assert_eq!(m.unfilled_fields, ["Notes"]);
        let bad = BTreeMap::from([("Total".to_owned(), "Total".to_owned())]);
        assert!(map_columns(&cols, &t, &bad).is_err());
        let missing = BTreeMap::from([("Nope".to_owned(), "Qty".to_owned())]);
        assert!(map_columns(&cols, &t, &missing).is_err());
    }

    #[test]
    fn rows_are_converted_rejected_and_deduplicated() {
        let t = table();
        let sheet = parse(b"Name,Qty\na,1\nb,x\na,3\n,4\n", Format::Csv, None).unwrap();
        let m = map_columns(&sheet.columns, &t, &BTreeMap::new()).unwrap();
        let c = convert_rows(&sheet, &m, &["Name".into()], false, &Links::default());
        assert_eq!(c.records.len(), 1);
        assert_eq!(c.records[0].0, 2);
        assert_eq!(c.records[0].1.get("Qty"), Some(&json!(1)));
        assert_eq!(c.rejected.len(), 2);
        assert_eq!(c.rejected[0].row, 3);
        assert_eq!(c.rejected[0].column.as_deref(), Some("Qty"));
        assert_eq!(c.rejected[1].row, 5);
        assert_eq!(c.duplicate_keys[0].row, 4);
        let c = convert_rows(&sheet, &m, &[], false, &Links::default());
        assert_eq!(c.records.len(), 3);
    }
}
