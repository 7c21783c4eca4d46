//! Shared parameter types and lenient deserializers.
//!
//! Every field has a `///` doc comment: schemars turns it into the description the model reads.
//! Numbers and booleans are also accepted as strings ("100", "true"): some clients (MCP
//! Inspector 0.15) send every argument as a string. `Option` fields are fine here: the
//! router rewrites their schemas without `null` (see [`super::schema_cleanup`]).

use schemars::JsonSchema;
use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Sort direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Direction {
    /// Ascending (A→Z, 0→9, oldest first).
    #[default]
    Asc,
    /// Descending.
    Desc,
}

/// One sort criterion.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
pub(crate) struct SortParam {
    /// Field name (or field ID) to sort by.
    pub(crate) field: String,
    /// "asc" (default) or "desc".
    #[serde(default)]
    pub(crate) direction: Direction,
}

/// A field.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
pub(crate) struct FieldSpecParam {
    /// Field name, unique in the table.
    pub(crate) name: String,
    /// Airtable field type.
    #[serde(rename = "type")]
    pub(crate) field_type: String,
    /// Optional description of the field.
    #[serde(default)]
    pub(crate) description: Option<String>,
    /// Type options, as in Airtable's Web API.
    #[serde(default)]
    pub(crate) options: Option<serde_json::Map<String, Value>>,
}

/// An update.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
pub(crate) struct RecordUpdateParam {
    /// Record ID (rec...).
    pub(crate) id: String,
    /// Fields to change: {"Field name": value}.
    pub(crate) fields: serde_json::Map<String, Value>,
}

/// Default number of records for get_records.
pub(crate) fn default_max_records() -> u32 {
    100
}

/// Default number of records for search_records.
pub(crate) fn default_search_max() -> u32 {
    50
}

/// Deserialize a u32 from a number or a numeric string.
pub(crate) fn lenient_u32<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let v = Value::deserialize(d)?;
    value_to_u32(&v).map_err(de::Error::custom)
}

fn value_to_u32(v: &Value) -> Result<u32, String> {
    let bad = || format!("expected a whole number ≥ 0, got {v}");
    match v {
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                u32::try_from(u).map_err(|_| bad())
            } else if let Some(f) = n.as_f64().filter(|f| f.fract() == 0.0 && *f >= 0.0) {
                u32::try_from(f as u64).map_err(|_| bad())
            } else {
                Err(bad())
            }
        }
        Value::String(s) => s.trim().parse::<u32>().map_err(|_| bad()),
        _ => Err(bad()),
    }
}

/// Deserialize a bool from a boolean or "true"/"false" (also "1"/"0", "yes"/"no").
pub(crate) fn lenient_bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    let v = Value::deserialize(d)?;
    match &v {
        Value::Bool(b) => Ok(*b),
        Value::Null => Ok(false),
        Value::Number(n) if n.as_u64() == Some(0) => Ok(false),
        Value::Number(n) if n.as_u64() == Some(1) => Ok(true),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Ok(true),
            "false" | "0" | "no" | "" => Ok(false),
            _ => Err(de::Error::custom(format!(
                "expected true or false, got {v}"
            ))),
        },
        _ => Err(de::Error::custom(format!(
            "expected true or false, got {v}"
        ))),
    }
}

/// Deserialize a bool defaulting to true when null.
pub(crate) fn lenient_bool_default_true<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    let v = Value::deserialize(d)?;
    if v.is_null() {
        return Ok(true);
    }
    lenient_bool(v).map_err(de::Error::custom)
}

/// Deserialize an optional list of strings from an array, a single string, a JSON array in a
/// string (`"[\"a\",\"b\"]"`), or a comma-separated string (`"a, b"`).
pub(crate) fn lenient_opt_strings<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Vec<String>>, D::Error> {
    let v = Value::deserialize(d)?;
    match v {
        Value::Null => Ok(None),
        Value::Array(items) => items
            .into_iter()
            .map(|i| match i {
                Value::String(s) => Ok(s),
                other => Err(de::Error::custom(format!(
                    "expected a list of field names (strings), got {other}"
                ))),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Value::String(s) => {
            let t = s.trim();
            if t.is_empty() {
                return Ok(None);
            }
            if t.starts_with('[')
                && let Ok(list) = serde_json::from_str::<Vec<String>>(t)
            {
                return Ok(Some(list));
            }
            Ok(Some(
                t.split(',')
                    .map(|p| p.trim().to_owned())
                    .filter(|p| !p.is_empty())
                    .collect(),
            ))
        }
        other => Err(de::Error::custom(format!(
            "expected a list of field names, got {other}"
        ))),
    }
}

/// Deserialize a required list of strings leniently (see [`lenient_opt_strings`]).
pub(crate) fn lenient_strings<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(lenient_opt_strings(d)?.unwrap_or_default())
}

/// Deserialize an optional string, treating "" as absent.
pub(crate) fn opt_nonempty<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let v: Option<String> = Option::deserialize(d)?;
    Ok(v.filter(|s| !s.trim().is_empty()))
}

/// Deserialize an object that may arrive as a JSON string (some clients stringify objects).
pub(crate) fn lenient_object<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<serde_json::Map<String, Value>, D::Error> {
    let v = Value::deserialize(d)?;
    match v {
        Value::Object(o) => Ok(o),
        Value::String(s) => match serde_json::from_str::<Value>(&s) {
            Ok(Value::Object(o)) => Ok(o),
            _ => Err(de::Error::custom(
                "expected an object like {\"Field name\": value}",
            )),
        },
        other => Err(de::Error::custom(format!(
            "expected an object like {{\"Field name\": value}}, got {other}"
        ))),
    }
}

/// Deserialize an array that may arrive as a JSON string.
pub(crate) fn lenient_array<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Value>, D::Error> {
    let v = Value::deserialize(d)?;
    match v {
        Value::Array(a) => Ok(a),
        Value::String(s) => match serde_json::from_str::<Value>(&s) {
            Ok(Value::Array(a)) => Ok(a),
            _ => Err(de::Error::custom("expected a JSON array")),
        },
        other => Err(de::Error::custom(format!("expected an array, got {other}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct P {
        #[serde(default = "default_max_records", deserialize_with = "lenient_u32")]
        n: u32,
        #[serde(default, deserialize_with = "lenient_bool")]
        b: bool,
        #[serde(default, deserialize_with = "lenient_opt_strings")]
        f: Option<Vec<String>>,
    }

    #[test]
    fn accepts_strings_for_numbers_bools_and_lists() {
        let p: P = serde_json::from_str(r#"{"n":"7","b":"true","f":"A, B"}"#).unwrap();
        assert_eq!(p.n, 7);
        assert!(p.b);
        assert_eq!(p.f.unwrap(), vec!["A", "B"]);
        let p: P = serde_json::from_str(r#"{"f":["X"]}"#).unwrap();
        assert_eq!(p.n, 100);
        assert!(!p.b);
        assert!(serde_json::from_str::<P>(r#"{"n":"-1"}"#).is_err());
        assert!(serde_json::from_str::<P>(r#"{"n":1.5}"#).is_err());
        let p: P = serde_json::from_str(r#"{"f":"[\"a b\",\"c\"]"}"#).unwrap();
        assert_eq!(p.f.unwrap(), vec!["a b", "c"]);
    }
}
