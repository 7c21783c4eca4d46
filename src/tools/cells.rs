//! Cell values and field metadata as the data tools (analysis, transfer) see them.
//!
//! Everything here is pure: no MCP, no HTTP. Schemas are the client's own [`Table`] and
//! [`Field`] (one field-type model: [`FieldType`], with `is_computed()`); records are anything
//! [`RecordLike`].

use serde_json::{Map, Value};

/// A record's cell values, keyed by field name (Airtable's wire shape).
pub(crate) type CellMap = Map<String, Value>;

/// What the data tools need of a record.
pub(crate) trait RecordLike {
    /// The record ID (`rec…`).
    fn record_id(&self) -> &str;
    /// The cell values by field name (empty cells are absent, as Airtable sends them).
    fn cells(&self) -> &CellMap;
}

/// A plain record, for tests.
#[cfg(test)]
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PlainRecord {
    pub(crate) id: String,
    pub(crate) fields: CellMap,
}

#[cfg(test)]
impl RecordLike for PlainRecord {
    fn record_id(&self) -> &str {
        &self.id
    }
    fn cells(&self) -> &CellMap {
        &self.fields
    }
}

impl<T: RecordLike> RecordLike for &T {
    fn record_id(&self) -> &str {
        (*self).record_id()
    }
    fn cells(&self) -> &CellMap {
        (*self).cells()
    }
}

pub(crate) use crate::airtable::{Field, FieldType, Table};

/// A field for unit tests: the ID is derived from the name.
#[cfg(test)]
pub(crate) fn test_field(name: &str, field_type: &str) -> Field {
    use std::hash::{DefaultHasher, Hash, Hasher};
    let mut h = DefaultHasher::new();
    name.hash(&mut h);
    let id = format!("fld{:014x}", h.finish() & 0x00ff_ffff_ffff_ffff);
    Field {
        id: crate::airtable::FieldId::new(id).expect("a valid field ID"),
        name: name.to_owned(),
        field_type: FieldType::from_wire(field_type),
        description: None,
        options: None,
    }
}

/// How the data tools treat a field's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Short text: top values make sense.
    Text,
    /// Long text: distinct count only.
    LongText,
    Select,
    MultiSelect,
    Number,
    Date,
    Checkbox,
    Link,
    Attachment,
    Collaborator,
    Other,
}

/// The kind of an Airtable type string.
pub(crate) fn kind_of_type(field_type: &str) -> Kind {
    match field_type {
        "singleLineText" | "email" | "url" | "phoneNumber" | "barcode" | "externalSyncSource" => {
            Kind::Text
        }
        "multilineText" | "richText" | "aiText" => Kind::LongText,
        "singleSelect" => Kind::Select,
        "multipleSelects" => Kind::MultiSelect,
        "number" | "currency" | "percent" | "rating" | "duration" | "autoNumber" | "count" => {
            Kind::Number
        }
        "date" | "dateTime" | "createdTime" | "lastModifiedTime" => Kind::Date,
        "checkbox" => Kind::Checkbox,
        "multipleRecordLinks" => Kind::Link,
        "multipleAttachments" => Kind::Attachment,
        "singleCollaborator" | "multipleCollaborators" | "createdBy" | "lastModifiedBy" => {
            Kind::Collaborator
        }
        _ => Kind::Other,
    }
}

/// The kind of a field: computed fields (formula, rollup) take their result's type.
pub(crate) fn kind_of(field: &Field) -> Kind {
    match field.field_type.as_str() {
        "formula" | "rollup" | "multipleLookupValues" => {
            let result = field
                .options
                .as_ref()
                .and_then(|o| o.get("result"))
                .and_then(|r| r.get("type"))
                .and_then(Value::as_str);
            match (field.field_type.as_str(), result) {
                // A lookup is an array of the looked-up values.
                ("multipleLookupValues", _) => Kind::Other,
                (_, Some(t)) => kind_of_type(t),
                (_, None) => Kind::Other,
            }
        }
        t => kind_of_type(t),
    }
}

/// Whether a cell is empty the way Airtable means it: absent, null, "", [], {} or false.
pub(crate) fn is_empty(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) | Some(Value::Bool(false)) => true,
        Some(Value::String(s)) => s.trim().is_empty(),
        Some(Value::Array(a)) => a.iter().all(|v| is_empty(Some(v))),
        Some(Value::Object(o)) => o.is_empty(),
        Some(Value::Number(_)) | Some(Value::Bool(true)) => false,
    }
}

/// A readable one-line rendering of a cell value, for CSV and for comparisons.
///
/// Strings as they are; numbers in their JSON form; checkboxes `true`/`false`; arrays
/// joined with ", "; attachments as `filename (url)`; collaborators by name, else email,
/// else ID; barcodes by text; buttons by label; AI text by its value; other objects as
/// compact JSON.
pub(crate) fn render(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Number(n) => render_number(n),
        Value::Bool(b) => b.to_string(),
        Value::Array(items) => items
            .iter()
            .map(render)
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(", "),
        Value::Object(obj) => render_object(obj),
    }
}

fn render_number(n: &serde_json::Number) -> String {
    // 3.0 reads better as 3: Airtable itself never distinguishes the two.
    match n.as_f64() {
        Some(f) if n.is_f64() && f.fract() == 0.0 && f.abs() < 1e15 => format!("{f:.0}"),
        _ => n.to_string(),
    }
}

fn str_of<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    obj.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

fn render_object(obj: &Map<String, Value>) -> String {
    // Attachment: {id, url, filename, size, type, ...}
    if let Some(filename) = str_of(obj, "filename") {
        return match str_of(obj, "url") {
            Some(url) => format!("{filename} ({url})"),
            None => filename.to_string(),
        };
    }
    // Collaborator: {id, email?, name?}
    if let Some(name) = str_of(obj, "name") {
        return name.to_string();
    }
    if let Some(email) = str_of(obj, "email") {
        return email.to_string();
    }
    // Barcode {text, type?}
    if let Some(text) = str_of(obj, "text") {
        return text.to_string();
    }
    // Button {label, url}
    if let Some(label) = str_of(obj, "label") {
        return match str_of(obj, "url") {
            Some(url) => format!("{label} ({url})"),
            None => label.to_string(),
        };
    }
    // AI text {state, value}
    if obj.contains_key("state") {
        return obj.get("value").map(render).unwrap_or_default();
    }
    if let Some(url) = str_of(obj, "url") {
        return url.to_string();
    }
    if let Some(id) = str_of(obj, "id") {
        return id.to_string();
    }
    serde_json::to_string(obj).unwrap_or_default()
}

/// Trim, collapse runs of whitespace into one space, and lowercase (Unicode).
pub(crate) fn normalize_text(s: &str) -> String {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// Truncate to at most `max` characters, marking the cut with "…".
pub(crate) fn truncate_chars(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn emptiness_follows_airtable() {
        assert!(is_empty(None));
        assert!(is_empty(Some(&json!(null))));
        assert!(is_empty(Some(&json!("  "))));
        assert!(is_empty(Some(&json!([]))));
        assert!(is_empty(Some(&json!(false))));
        assert!(!is_empty(Some(&json!(0))));
        assert!(!is_empty(Some(&json!("x"))));
        assert!(!is_empty(Some(&json!(["a"]))));
        assert!(!is_empty(Some(&json!(true))));
    }

    #[test]
    fn renders_readably() {
        assert_eq!(render(&json!(["a", "b"])), "a, b");
        assert_eq!(render(&json!(3.0)), "3");
        assert_eq!(render(&json!(3.25)), "3.25");
        assert_eq!(render(&json!(12)), "12");
        assert_eq!(render(&json!(true)), "true");
        assert_eq!(
            render(&json!([{"id": "att1", "url": "https://x/a.png", "filename": "a.png"}])),
            "a.png (https://x/a.png)"
        );
        assert_eq!(
            render(&json!({"id": "usrA", "email": "a@b.c", "name": "Ann"})),
            "Ann"
        );
        assert_eq!(render(&json!({"id": "usrA", "email": "a@b.c"})), "a@b.c");
        assert_eq!(render(&json!({"text": "0123", "type": "upce"})), "0123");
        assert_eq!(
            render(&json!({"state": "generated", "value": "hi", "isStale": false})),
            "hi"
        );
        assert_eq!(render(&json!({"k": 1})), r#"{"k":1}"#);
    }

    #[test]
    fn normalizes_and_truncates() {
        assert_eq!(normalize_text("  Hello   WORLD\t\n"), "hello world");
        assert_eq!(normalize_text("ÉCOLE"), "école");
        assert_eq!(truncate_chars("abcdef", 4), "abc…");
        assert_eq!(truncate_chars("abc", 4), "abc");
    }

    #[test]
    fn kinds_follow_formula_results() {
        let mut f = test_field("F", "formula");
        f.options = Some(json!({"formula": "1+1", "result": {"type": "number"}}));
        assert_eq!(kind_of(&f), Kind::Number);
        assert_eq!(kind_of_type("dateTime"), Kind::Date);
    }
}
