//! Formula values and Airtable's coercions between them.

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use std::fmt;

/// The value of a formula or of a cell inside a formula.
///
/// Callers give linked records as `Array` of the linked records' primary-field display values
/// (Airtable's semantics), multiple selects and lookups as `Array`, checkboxes as `Bool`
/// (unchecked may be `Blank`), dates as `DateTime` (or ISO text, which is coerced where a date is
/// expected), and empty cells as `Blank`.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Blank,
    Number(f64),
    Text(String),
    Bool(bool),
    DateTime(DateTime<Utc>),
    Array(Vec<Value>),
    /// An evaluation error (`#ERROR!` in Airtable); the string says why.
    Error(String),
}

/// Longest text a formula may build (REPT, SUBSTITUTE, ...), in bytes, so that a hostile formula
/// cannot exhaust memory.
pub const MAX_TEXT_BYTES: usize = 1 << 20;

impl Value {
    pub fn text(s: impl Into<String>) -> Value {
        Value::Text(s.into())
    }

    pub fn error(why: impl Into<String>) -> Value {
        Value::Error(why.into())
    }

    pub fn is_error(&self) -> bool {
        matches!(self, Value::Error(_))
    }

    /// Blank, empty text, or an empty array (after flattening, all blank).
    pub fn is_blank(&self) -> bool {
        match self {
            Value::Blank => true,
            Value::Text(s) => s.is_empty(),
            Value::Array(a) => a.iter().all(Value::is_blank),
            _ => false,
        }
    }

    /// The value as text, as Airtable shows it in a text context (`&`, CONCATENATE, LEN, ...).
    /// Arrays join with ", "; blank is ""; TRUE is "1"; dates are ISO 8601 in UTC.
    /// Errors pass through as `Err`.
    pub fn to_text(&self) -> Result<String, Value> {
        Ok(match self {
            Value::Blank => String::new(),
            Value::Number(n) => format_number(*n),
            Value::Text(s) => s.clone(),
            Value::Bool(b) => if *b { "1" } else { "0" }.to_string(),
            Value::DateTime(d) => format_iso(d),
            Value::Array(items) => {
                let mut parts = Vec::with_capacity(items.len());
                for v in items {
                    parts.push(v.to_text()?);
                }
                parts.join(", ")
            }
            Value::Error(_) => return Err(self.clone()),
        })
    }

    /// The value as a number, as Airtable uses it in arithmetic: blank is 0, TRUE is 1,
    /// numeric text is parsed (other text is NaN), an array of one item is that item.
    pub fn to_number(&self) -> Result<f64, Value> {
        Ok(match self {
            Value::Blank => 0.0,
            Value::Number(n) => *n,
            Value::Bool(b) => f64::from(u8::from(*b)),
            Value::Text(s) => parse_number(s).unwrap_or(f64::NAN),
            Value::DateTime(_) => {
                return Err(Value::error(
                    "a date cannot be used in arithmetic; use DATEADD() or DATETIME_DIFF()",
                ));
            }
            Value::Array(items) => {
                let flat = flatten(items);
                match flat.as_slice() {
                    [] => 0.0,
                    [one] => one.to_number()?,
                    _ => {
                        if let Some(e) = flat.iter().find(|v| v.is_error()) {
                            return Err(e.clone());
                        }
                        parse_number(&self.to_text()?).unwrap_or(f64::NAN)
                    }
                }
            }
            Value::Error(_) => return Err(self.clone()),
        })
    }

    /// The value as a date, where a date is expected: dates as is, ISO 8601 (and a few common
    /// forms) parsed from text. `Ok(None)` for blank; `Err` for errors and unparseable values.
    pub fn to_datetime(&self) -> Result<Option<DateTime<Utc>>, Value> {
        match self {
            Value::Blank => Ok(None),
            Value::DateTime(d) => Ok(Some(*d)),
            Value::Text(s) if s.trim().is_empty() => Ok(None),
            Value::Text(s) => parse_datetime(s)
                .map(Some)
                .ok_or_else(|| Value::error(format!("'{s}' is not a date"))),
            Value::Array(items) => match flatten(items).as_slice() {
                [] => Ok(None),
                [one] => one.to_datetime(),
                _ => Err(Value::error("a list of several values is not a date")),
            },
            Value::Number(_) | Value::Bool(_) => {
                Err(Value::error(format!("{} is not a date", self.to_text()?)))
            }
            Value::Error(_) => Err(self.clone()),
        }
    }

    /// JSON as the Web API returns a formula field's value: numbers and text as is, booleans
    /// (results of comparisons, TRUE()) as 1 and 0, dates ISO 8601, blank `null`, NaN and
    /// infinities `{"specialValue": "NaN"}`, errors `{"error": "#ERROR!"}`.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::{Value as J, json};
        match self {
            Value::Blank => J::Null,
            Value::Number(n) if n.is_nan() => json!({"specialValue": "NaN"}),
            Value::Number(n) if n.is_infinite() => {
                json!({"specialValue": if *n > 0.0 { "Infinity" } else { "-Infinity" }})
            }
            Value::Number(n) => number_json(*n),
            Value::Text(s) => J::String(s.clone()),
            Value::Bool(b) => json!(u8::from(*b)),
            Value::DateTime(d) => J::String(format_iso(d)),
            Value::Array(items) => J::Array(items.iter().map(Value::to_json).collect()),
            Value::Error(_) => json!({"error": "#ERROR!"}),
        }
    }

    /// A cell's JSON (as the Web API carries it) as a formula value. Objects become their
    /// display text: `name` (collaborators, selects), else `filename` (attachments), else the JSON.
    /// Strings stay text (dates are coerced from ISO text where a date is expected).
    pub fn from_json(v: &serde_json::Value) -> Value {
        use serde_json::Value as J;
        match v {
            J::Null => Value::Blank,
            J::Bool(b) => Value::Bool(*b),
            J::Number(n) => Value::Number(n.as_f64().unwrap_or(f64::NAN)),
            J::String(s) => Value::Text(s.clone()),
            J::Array(items) => Value::Array(items.iter().map(Value::from_json).collect()),
            J::Object(map) => {
                if let Some(special) = map.get("specialValue").and_then(J::as_str) {
                    return match special {
                        "Infinity" => Value::Number(f64::INFINITY),
                        "-Infinity" => Value::Number(f64::NEG_INFINITY),
                        _ => Value::Number(f64::NAN),
                    };
                }
                if let Some(e) = map.get("error") {
                    return Value::Error(e.as_str().unwrap_or("#ERROR!").to_string());
                }
                for key in ["name", "filename", "email", "text"] {
                    if let Some(s) = map.get(key).and_then(J::as_str) {
                        return Value::Text(s.to_string());
                    }
                }
                Value::Text(v.to_string())
            }
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Error(_) => f.write_str("#ERROR!"),
            other => match other.to_text() {
                Ok(s) => f.write_str(&s),
                Err(_) => f.write_str("#ERROR!"),
            },
        }
    }
}

fn number_json(n: f64) -> serde_json::Value {
    if n.fract() == 0.0 && n.abs() < 9.007_199_254_740_992e15 {
        serde_json::Value::from(n as i64)
    } else {
        serde_json::Number::from_f64(n).map_or(serde_json::Value::Null, serde_json::Value::Number)
    }
}

/// Flattens nested arrays (lookups of lookups) into one list.
pub fn flatten(items: &[Value]) -> Vec<Value> {
    let mut out = Vec::with_capacity(items.len());
    let mut stack: Vec<std::slice::Iter<'_, Value>> = vec![items.iter()];
    while let Some(top) = stack.last_mut() {
        match top.next() {
            Some(Value::Array(inner)) => stack.push(inner.iter()),
            Some(v) => out.push(v.clone()),
            None => {
                stack.pop();
            }
        }
    }
    out
}

/// Formats a number as JavaScript (and so Airtable) prints it: integers without a fraction,
/// otherwise the shortest representation that round-trips.
pub fn format_number(n: f64) -> String {
    if n.is_nan() {
        return "NaN".to_string();
    }
    if n.is_infinite() {
        return if n > 0.0 { "Infinity" } else { "-Infinity" }.to_string();
    }
    if n == 0.0 {
        return "0".to_string();
    }
    if n.fract() == 0.0 && n.abs() < 1e21 {
        return format!("{n:.0}");
    }
    let abs = n.abs();
    if !(1e-7..1e21).contains(&abs) {
        // JS switches to exponent notation: 1e-7, 1.5e+21
        let s = format!("{n:e}");
        return match s.split_once('e') {
            Some((m, e)) if !e.starts_with('-') => format!("{m}e+{e}"),
            _ => s,
        };
    }
    format!("{n}")
}

/// Parses text as a number: trimmed; empty is not a number. Accepts a leading `+`, thousands
/// separators and a leading `$` are not accepted here (see VALUE()).
pub fn parse_number(s: &str) -> Option<f64> {
    let t = s.trim();
    if t.is_empty() {
        return None;
    }
    // Rust accepts "inf", "nan", "infinity": Airtable does not.
    if t.chars().any(|c| c.is_alphabetic() && c != 'e' && c != 'E') {
        return None;
    }
    t.parse::<f64>().ok()
}

/// ISO 8601 with milliseconds, as the Web API writes dateTime values: `2024-01-31T09:05:00.000Z`.
pub fn format_iso(d: &DateTime<Utc>) -> String {
    d.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// Parses a date in the forms people and the Web API write: RFC 3339 / ISO 8601 (with or without
/// a zone, seconds or milliseconds; a missing zone means UTC), `YYYY-MM-DD`, `YYYY/MM/DD`,
/// `M/D/YYYY` (US order, Airtable's default) with an optional `H:mm[:ss]` and optional am/pm.
pub fn parse_datetime(s: &str) -> Option<DateTime<Utc>> {
    let t = s.trim();
    if t.is_empty() {
        return None;
    }
    // fast paths for what the Web API sends: date fields `2024-01-31`, dateTime fields RFC 3339
    if t.len() == 10
        && let Ok(d) = NaiveDate::parse_from_str(t, "%Y-%m-%d")
    {
        return Some(Utc.from_utc_datetime(&d.and_time(NaiveTime::MIN)));
    }
    if let Ok(d) = DateTime::parse_from_rfc3339(t) {
        return Some(d.with_timezone(&Utc));
    }
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f%#z",
        "%Y-%m-%d %H:%M:%S%.f%#z",
        "%Y-%m-%dT%H:%M%#z",
    ] {
        if let Ok(d) = DateTime::parse_from_str(t, fmt) {
            return Some(d.with_timezone(&Utc));
        }
    }
    let naive_formats = [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%m/%d/%Y %H:%M:%S",
        "%m/%d/%Y %H:%M",
        "%m/%d/%Y %I:%M%p",
        "%m/%d/%Y %I:%M %p",
        "%m/%d/%Y %I:%M:%S %p",
        "%Y/%m/%d %H:%M:%S",
        "%Y/%m/%d %H:%M",
    ];
    for fmt in naive_formats {
        if let Ok(d) = NaiveDateTime::parse_from_str(t, fmt) {
            return Some(Utc.from_utc_datetime(&d));
        }
    }
    for fmt in [
        "%Y-%m-%d",
        "%m/%d/%Y",
        "%Y/%m/%d",
        "%B %d, %Y",
        "%b %d, %Y",
        "%d %B %Y",
        "%d %b %Y",
    ] {
        if let Ok(d) = NaiveDate::parse_from_str(t, fmt) {
            return Some(Utc.from_utc_datetime(&d.and_time(NaiveTime::MIN)));
        }
    }
    None
}
