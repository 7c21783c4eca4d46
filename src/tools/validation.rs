//! Checks made from the cached base schema BEFORE any request is sent: table and field names
//! (with "did you mean" suggestions), writes to computed fields, and filter formulas (parsed
//! by our formula engine, so errors carry a position).

use serde_json::{Map, Value};

use crate::airtable::{BaseSchema, Field, Table};
use crate::formula;
use crate::tools::ToolError;

/// The closest candidate to `name` when it is close enough to be a likely typo.
pub(crate) fn suggest<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let lower = name.to_lowercase();
    let mut best: Option<(&str, f64)> = None;
    for c in candidates {
        let score = strsim::jaro_winkler(&lower, &c.to_lowercase());
        if best.is_none_or(|(_, s)| score > s) {
            best = Some((c, score));
        }
    }
    best.filter(|(_, s)| *s >= 0.8).map(|(c, _)| c)
}

fn did_you_mean(name: &str, candidates: &[&str]) -> String {
    match suggest(name, candidates.iter().copied()) {
        Some(s) => format!(" Did you mean {s:?}?"),
        None => String::new(),
    }
}

fn list_names(names: &[&str]) -> String {
    const MAX: usize = 40;
    let mut s = names
        .iter()
        .take(MAX)
        .map(|n| format!("{n:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > MAX {
        s.push_str(&format!(", … ({} in all)", names.len()));
    }
    s
}

/// Find a table by ID, exact name, or case-insensitive name.
pub(crate) fn resolve_table<'a>(
    schema: &'a BaseSchema,
    base_id: &str,
    table_ref: &str,
) -> Result<&'a Table, ToolError> {
    let t = table_ref.trim();
    if let Some(table) = schema
        .tables
        .iter()
        .find(|tb| tb.id.as_ref() == t || tb.name == t)
    {
        return Ok(table);
    }
    let lower = t.to_lowercase();
    if let Some(table) = schema
        .tables
        .iter()
        .find(|tb| tb.name.to_lowercase() == lower)
    {
        return Ok(table);
    }
    let names: Vec<&str> = schema.tables.iter().map(|tb| tb.name.as_str()).collect();
    Err(ToolError::Invalid(format!(
        "Table {t:?} was not found in base {base_id}.{} Tables: {}. Call list_tables(base_id) to see table names and IDs; table_id accepts either.",
        did_you_mean(t, &names),
        list_names(&names)
    )))
}

/// A field by name or ID (exact).
pub(crate) fn find_field<'a>(table: &'a Table, name: &str) -> Option<&'a Field> {
    table
        .fields
        .iter()
        .find(|f| f.name == name || f.id.as_ref() == name)
}

fn field_names(table: &Table) -> Vec<&str> {
    table.fields.iter().map(|f| f.name.as_str()).collect()
}

fn unknown_field_error(table: &Table, name: &str, role: &str) -> ToolError {
    let names = field_names(table);
    ToolError::Invalid(format!(
        "Unknown field {name:?} in {role} for table {:?}.{} Fields: {}. Names are exact (case and spaces matter); get_field_info lists them with types.",
        table.name,
        did_you_mean(name, &names),
        list_names(&names)
    ))
}

/// Check that every name is a field of the table (names or IDs).
pub(crate) fn check_field_names<'a>(
    table: &Table,
    names: impl IntoIterator<Item = &'a String>,
    role: &str,
) -> Result<(), ToolError> {
    for n in names {
        if find_field(table, n).is_none() {
            return Err(unknown_field_error(table, n, role));
        }
    }
    Ok(())
}

/// Check the keys of a write: every field exists and is writable (not computed).
/// `which` names the record in messages (e.g. "record 3").
pub(crate) fn check_writable(
    table: &Table,
    fields: &Map<String, Value>,
    which: &str,
) -> Result<(), ToolError> {
    for name in fields.keys() {
        match find_field(table, name) {
            None => {
                return Err(unknown_field_error(
                    table,
                    name,
                    &format!("the fields of {which}"),
                ));
            }
            Some(f) if f.field_type.is_computed() => {
                return Err(ToolError::Invalid(format!(
                    "Field {name:?} of table {:?} is a computed field ({}) and cannot be written ({which}). Leave it out; Airtable fills it in.",
                    table.name,
                    field_type_name(f)
                )));
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// The wire name of a field's type (e.g. "singleLineText").
pub(crate) fn field_type_name(f: &Field) -> String {
    f.field_type.as_str().to_owned()
}

/// Whether a field holds text worth searching (text, long text, email, url, phone, selects,
/// and formulas/lookups whose values render as text).
pub(crate) fn is_text_like(f: &Field) -> bool {
    use crate::airtable::FieldType as T;
    matches!(
        f.field_type,
        T::SingleLineText
            | T::MultilineText
            | T::RichText
            | T::Email
            | T::Url
            | T::PhoneNumber
            | T::SingleSelect
            | T::MultipleSelects
            | T::Barcode
    )
}

/// Check a filterByFormula against the table before it is sent, with our formula engine:
/// syntax (with the position and a caret under it), unknown fields (with a suggestion),
/// unknown functions and wrong argument counts.
pub(crate) fn check_formula(table: &Table, src: &str) -> Result<(), ToolError> {
    let names = field_names(table);
    formula::check(src, &names).map_err(|e| {
        ToolError::Invalid(format!(
            "filter_by_formula is invalid (nothing was sent to Airtable): {}\nAirtable syntax: {{Field Name}} in braces, text in double quotes, e.g. AND({{Status}}=\"Done\", {{Priority}}>2). Fields of table {:?}: {}.",
            e.render(src),
            table.name,
            list_names(&names)
        ))
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        assert_eq!(suggest("Stauts", ["Status", "Name"]), Some("Status"));
        assert_eq!(suggest("zzz", ["Status", "Name"]), None);
    }
}
