//! Converting one source value to the cell value Airtable expects for a field's type. Every
//! failure is a reason (the caller adds row and column); `Ok(None)` is an empty cell.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use serde_json::{Value, json};

use crate::airtable::{Field, FieldType};

/// What conversion needs beyond the field: linked records by primary-field text.
#[derive(Debug, Default)]
pub(crate) struct Links {
    /// Per link field name: normalised primary value -> record IDs.
    pub(crate) by_field: HashMap<String, HashMap<String, Vec<String>>>,
}

fn opt<'a>(f: &'a Field, key: &str) -> Option<&'a Value> {
    f.options.as_ref().and_then(|o| o.get(key))
}

fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Split a multi-value cell: a JSON array as is, text on `;`, `|` or newlines, else commas.
fn split(v: &Value) -> Vec<String> {
    if let Value::Array(a) = v {
        return a
            .iter()
            .map(text_of)
            .filter(|s| !s.trim().is_empty())
            .collect();
    }
    let s = text_of(v);
    let seps: &[char] = if s.contains(['\n', ';', '|']) {
        &['\n', ';', '|']
    } else {
        &[',']
    };
    s.split(seps)
        .map(|p| p.trim().to_owned())
        .filter(|p| !p.is_empty())
        .collect()
}

/// A number written with any common separators: "1.234,5", "1,234.5", "1 234,5", "(12)".
pub(crate) fn parse_number(s: &str) -> Option<f64> {
    let mut t: String = s
        .trim()
        .chars()
        .filter(|c| !matches!(c, ' ' | '\u{a0}' | '\u{202f}' | '\'' | '_'))
        .collect();
    let neg_paren = t.starts_with('(') && t.ends_with(')');
    if neg_paren {
        t = t[1..t.len() - 1].to_owned();
    }
    if t.is_empty() {
        return None;
    }
    let commas = t.matches(',').count();
    let dots = t.matches('.').count();
    let normal = match (commas, dots) {
        (0, _) if dots > 1 => t.replace('.', ""),
        (0, _) => t,
        (_, 0) if commas > 1 => t.replace(',', ""),
        (1, 0) => {
            let after = t.rsplit(',').next().map_or(0, str::len);
            let before = t.split(',').next().unwrap_or("");
            let digits_before = before.trim_start_matches(['-', '+']).len();
            if after == 3 && (1..=3).contains(&digits_before) && before != "0" {
                t.replace(',', "")
            } else {
                t.replace(',', ".")
            }
        }
        _ => {
            let last_comma = t.rfind(',').unwrap_or(0);
            let last_dot = t.rfind('.').unwrap_or(0);
            if last_comma > last_dot {
                t.replace('.', "").replace(',', ".")
            } else {
                t.replace(',', "")
            }
        }
    };
    let n: f64 = normal.parse().ok().filter(|n: &f64| n.is_finite())?;
    Some(if neg_paren { -n } else { n })
}

fn number_value(n: f64) -> Value {
    if n.fract() == 0.0 && n.abs() < 9e15 {
        json!(n as i64)
    } else {
        serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number)
    }
}

/// A number from a cell, currency symbols and letters around it ignored.
fn number_of(v: &Value, pct: bool) -> Result<f64, String> {
    if let Some(n) = v.as_f64() {
        return Ok(n);
    }
    let s = text_of(v);
    let percent = s.trim_end().ends_with('%');
    let core: String = s
        .chars()
        .filter(|c| {
            c.is_ascii_digit()
                || matches!(c, '.' | ',' | '-' | '+' | '(' | ')' | ' ' | '\u{a0}' | '\'')
        })
        .collect();
    let n = parse_number(&core).ok_or_else(|| format!("{s:?} is not a number"))?;
    Ok(if percent && pct { n / 100.0 } else { n })
}

fn bool_of(s: &str) -> Option<bool> {
    match s.trim().to_lowercase().as_str() {
        "true" | "yes" | "y" | "1" | "x" | "on" | "checked" | "✓" | "✔" | "oui" | "ja" | "si"
        | "sí" => Some(true),
        "false" | "no" | "n" | "0" | "off" | "unchecked" | "" | "non" | "nein" => Some(false),
        _ => None,
    }
}

fn choice_names(f: &Field) -> Vec<String> {
    opt(f, "choices")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|c| c.get("name").and_then(Value::as_str).map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn choice(f: &Field, s: &str, typecast: bool) -> Result<String, String> {
    let names = choice_names(f);
    let s = s.trim();
    if let Some(n) = names.iter().find(|n| n.as_str() == s) {
        return Ok(n.clone());
    }
    if let Some(n) = names.iter().find(|n| n.to_lowercase() == s.to_lowercase()) {
        return Ok(n.clone());
    }
    if typecast {
        return Ok(s.to_owned());
    }
    Err(format!(
        "{s:?} is not a choice of {} ({}); add it, or import with typecast=true to create it",
        f.name,
        names.join(", ")
    ))
}

/// Case- and accent-insensitive form of a name (also for link lookups).
pub(crate) fn normalise(s: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    use unicode_normalization::char::is_combining_mark;
    s.nfd()
        .filter(|c| !is_combining_mark(*c))
        .collect::<String>()
        .to_lowercase()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn date_format(f: &Field) -> String {
    opt(f, "dateFormat")
        .and_then(|d| d.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("iso")
        .to_owned()
}

/// A calendar date from common spellings; `european` orders an ambiguous a/b/yyyy as day/month.
pub(crate) fn parse_date(s: &str, european: bool) -> Option<NaiveDate> {
    let s = s.trim();
    for fmt in [
        "%Y-%m-%d",
        "%Y/%m/%d",
        "%Y.%m.%d",
        "%d %B %Y",
        "%d %b %Y",
        "%B %d, %Y",
        "%b %d, %Y",
        "%B %d %Y",
        "%b %d %Y",
    ] {
        if let Ok(d) = NaiveDate::parse_from_str(s, fmt) {
            return Some(d);
        }
    }
    let parts: Vec<&str> = s.split(['/', '.', '-']).collect();
    if let [a, b, y] = parts.as_slice() {
        let (a, b, mut y): (u32, u32, i32) = (a.parse().ok()?, b.parse().ok()?, y.parse().ok()?);
        if y < 100 {
            y += if y < 70 { 2000 } else { 1900 };
        }
        let dotted = s.contains('.');
        let (d, m) = if a > 12 || dotted || (european && b <= 12) {
            (a, b)
        } else {
            (b, a)
        };
        return NaiveDate::from_ymd_opt(y, m, d);
    }
    None
}

fn parse_time(s: &str) -> Option<NaiveTime> {
    let s = s.trim();
    for fmt in [
        "%H:%M:%S%.f",
        "%H:%M",
        "%I:%M %p",
        "%I:%M:%S %p",
        "%I:%M%p",
        "%I%p",
    ] {
        if let Ok(t) = NaiveTime::parse_from_str(s, fmt) {
            return Some(t);
        }
    }
    None
}

/// A date-time as UTC: an offset or Z in the text wins, else `tz` (IANA name; "utc"/"client"
/// or unknown: UTC).
pub(crate) fn parse_datetime(s: &str, european: bool, tz: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(d) = DateTime::parse_from_rfc3339(s) {
        return Some(d.with_timezone(&Utc));
    }
    for fmt in [
        "%Y-%m-%d %H:%M:%S%.f%:z",
        "%Y-%m-%d %H:%M%:z",
        "%Y-%m-%dT%H:%M%:z",
        "%Y-%m-%d %H:%M:%S %z",
    ] {
        if let Ok(d) = DateTime::parse_from_str(s, fmt) {
            return Some(d.with_timezone(&Utc));
        }
    }
    let naive = if let Ok(t) = NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f") {
        t
    } else if let Ok(t) = NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M") {
        t
    } else {
        let (date, time) = match s.split_once([' ', 'T']) {
            Some((d, t)) => (d, Some(t)),
            None => (s, None),
        };
        let d = parse_date(date, european).or_else(|| parse_date(s, european))?;
        let t = match time {
            Some(t) if parse_date(s, european).is_none() => parse_time(t)?,
            _ => NaiveTime::MIN,
        };
        d.and_time(t)
    };
    let utc = match tz.parse::<crate::formula::zone::Zone>() {
        Ok(zone) => zone
            .from_local_datetime(&naive)
            .earliest()?
            .with_timezone(&Utc),
        Err(_) => Utc.from_utc_datetime(&naive),
    };
    Some(utc)
}

/// Seconds from "h:mm", "h:mm:ss", "90" (seconds) or a number.
fn duration_of(v: &Value) -> Result<f64, String> {
    if let Some(n) = v.as_f64() {
        return Ok(n);
    }
    let s = text_of(v);
    let parts: Vec<&str> = s.trim().split(':').collect();
    let bad = || format!("{s:?} is not a duration (h:mm, h:mm:ss or seconds)");
    let nums: Vec<f64> = parts
        .iter()
        .map(|p| parse_number(p).ok_or_else(bad))
        .collect::<Result<_, _>>()?;
    Ok(match nums.as_slice() {
        [s] => *s,
        [h, m] => h * 3600.0 + m * 60.0,
        [h, m, s] => h * 3600.0 + m * 60.0 + s,
        _ => return Err(bad()),
    })
}

/// The URL in an attachment cell part: a bare URL or Airtable's export form "name (URL)".
fn url_in(s: &str) -> Option<String> {
    let s = s.trim();
    let u = match (s.rfind('('), s.ends_with(')')) {
        (Some(i), true) => &s[i + 1..s.len() - 1],
        _ => s,
    };
    (u.starts_with("https://") || u.starts_with("http://")).then(|| u.to_owned())
}

fn looks_like_record_id(s: &str) -> bool {
    s.len() == 17 && s.starts_with("rec") && s.chars().all(|c| c.is_ascii_alphanumeric())
}

/// Convert `v` for `field`. `Ok(None)`: the cell is empty (left out of the record).
pub(crate) fn convert(
    field: &Field,
    v: &Value,
    typecast: bool,
    links: &Links,
) -> Result<Option<Value>, String> {
    let blank = match v {
        Value::Null => true,
        Value::String(s) => s.trim().is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    };
    if field.field_type.is_computed() {
        return Err(format!(
            "{} is a computed {} field and cannot be written",
            field.name, field.field_type
        ));
    }
    if blank {
        return Ok(match field.field_type {
            FieldType::Checkbox => None,
            _ => None,
        });
    }
    let s = text_of(v);
    let european = date_format(field) == "european";
    let out = match &field.field_type {
        FieldType::Number | FieldType::Currency => number_value(number_of(v, false)?),
        FieldType::Percent => number_value(number_of(v, true)?),
        FieldType::Rating => {
            let max = opt(field, "max").and_then(Value::as_u64).unwrap_or(5) as f64;
            let n = if s.chars().all(|c| matches!(c, '★' | '⭐' | '*')) {
                s.chars().count() as f64
            } else {
                number_of(v, false)?
            };
            if n == 0.0 {
                return Ok(None);
            }
            if n.fract() != 0.0 || n < 1.0 || n > max {
                return Err(format!("{s:?} is not a rating from 1 to {max}"));
            }
            json!(n as i64)
        }
        FieldType::Duration => number_value(duration_of(v)?),
        FieldType::Checkbox => match v {
            Value::Bool(b) => json!(b),
            _ => json!(bool_of(&s).ok_or_else(|| format!(
                "{s:?} is not a checkbox value (yes/no, true/false, 1/0, x)"
            ))?),
        },
        FieldType::Date => {
            let d = parse_date(&s, european)
                .or_else(|| parse_datetime(&s, european, "utc").map(|t| t.date_naive()))
                .ok_or_else(|| format!("{s:?} is not a date (e.g. 2024-03-31 or 31/03/2024)"))?;
            json!(d.format("%Y-%m-%d").to_string())
        }
        FieldType::DateTime => {
            let tz = opt(field, "timeZone")
                .and_then(Value::as_str)
                .unwrap_or("utc");
            let t = parse_datetime(&s, european, tz).ok_or_else(|| {
                format!(
                    "{s:?} is not a date and time (e.g. 2024-03-31 14:30 or 2024-03-31T14:30:00Z)"
                )
            })?;
            json!(t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        }
        FieldType::SingleSelect => json!(choice(field, &s, typecast)?),
        FieldType::MultipleSelects => {
            let whole = choice(field, &s, false);
            match (v, whole) {
                (Value::String(_), Ok(one)) => json!([one]),
                _ => json!(
                    split(v)
                        .iter()
                        .map(|p| choice(field, p, typecast))
                        .collect::<Result<Vec<_>, _>>()?
                ),
            }
        }
        FieldType::MultipleRecordLinks => {
            let map = links.by_field.get(&field.name);
            let mut ids = Vec::new();
            for name in split(v) {
                if looks_like_record_id(&name) {
                    ids.push(name);
                    continue;
                }
                match map
                    .and_then(|m| m.get(&normalise(&name)))
                    .map(Vec::as_slice)
                {
                    Some([id]) => ids.push(id.clone()),
                    Some(many) if many.len() > 1 => {
                        return Err(format!(
                            "{name:?} names {} linked records ({}); give record IDs",
                            many.len(),
                            many.join(", ")
                        ));
                    }
                    _ => {
                        return Err(format!(
                            "no record named {name:?} in the table {} links to",
                            field.name
                        ));
                    }
                }
            }
            json!(ids)
        }
        FieldType::MultipleAttachments => {
            let parts: Vec<String> = match v {
                Value::Array(_) => split(v),
                _ => s.split([',', ';', '\n', ' ']).map(str::to_owned).fold(
                    Vec::<String>::new(),
                    |mut acc, p| {
                        // Re-join "name (URL)" pieces split on spaces.
                        match acc.last_mut() {
                            Some(last) if !last.starts_with("http") && url_in(last).is_none() => {
                                last.push(' ');
                                last.push_str(&p);
                            }
                            _ if p.trim().is_empty() => {}
                            _ => acc.push(p),
                        }
                        acc
                    },
                ),
            };
            let urls = parts
                .iter()
                .map(|p| url_in(p).ok_or_else(|| format!("{p:?} is not an http(s) URL")))
                .collect::<Result<Vec<_>, _>>()?;
            json!(
                urls.into_iter()
                    .map(|u| json!({"url": u}))
                    .collect::<Vec<_>>()
            )
        }
        FieldType::SingleCollaborator => {
            let e = s.trim();
            if !e.contains('@') {
                return Err(format!("{e:?} is not an email address"));
            }
            json!({"email": e})
        }
        FieldType::MultipleCollaborators => {
            let mut out = Vec::new();
            for e in split(v) {
                if !e.contains('@') {
                    return Err(format!("{e:?} is not an email address"));
                }
                out.push(json!({"email": e}));
            }
            json!(out)
        }
        FieldType::Barcode => json!({"text": s}),
        FieldType::Email if !s.contains('@') => {
            return Err(format!("{s:?} is not an email address"));
        }
        _ => match v {
            Value::String(s) => json!(s.trim_end_matches('\r')),
            other => json!(text_of(other)),
        },
    };
    Ok(Some(out))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::tools::cells::test_field;

    fn with(f: Field, options: Value) -> Field {
        Field {
            options: Some(options),
            ..f
        }
    }

    fn c(f: &Field, v: Value) -> Result<Option<Value>, String> {
        convert(f, &v, false, &Links::default())
    }

    #[test]
    fn numbers_with_separators() {
        for (s, n) in [
            ("1.234,5", 1234.5),
            ("1,234.5", 1234.5),
            ("1 234,5", 1234.5),
            ("1,5", 1.5),
            ("1,234", 1234.0),
            ("1.234.567", 1_234_567.0),
            ("(12)", -12.0),
            ("-0.25", -0.25),
        ] {
            assert_eq!(parse_number(s), Some(n), "{s}");
        }
        let num = test_field("N", "number");
        assert_eq!(c(&num, json!("1.234,5")).unwrap(), Some(json!(1234.5)));
        assert_eq!(c(&num, json!("7")).unwrap(), Some(json!(7)));
        assert!(
            c(&num, json!("seven"))
                .unwrap_err()
                .contains("not a number")
        );
        let cur = test_field("C", "currency");
        assert_eq!(c(&cur, json!("$1,200.50")).unwrap(), Some(json!(1200.5)));
        assert_eq!(c(&cur, json!("1.200,50 €")).unwrap(), Some(json!(1200.5)));
        let pct = test_field("P", "percent");
        assert_eq!(c(&pct, json!("12%")).unwrap(), Some(json!(0.12)));
        assert_eq!(c(&pct, json!("0.5")).unwrap(), Some(json!(0.5)));
    }

    #[test]
    fn dates_and_times() {
        let d = test_field("D", "date");
        assert_eq!(
            c(&d, json!("2024-03-31")).unwrap(),
            Some(json!("2024-03-31"))
        );
        assert_eq!(
            c(&d, json!("31/03/2024")).unwrap(),
            Some(json!("2024-03-31"))
        );
        assert_eq!(
            c(&d, json!("03/04/2024")).unwrap(),
            Some(json!("2024-03-04"))
        );
        assert_eq!(
            c(&d, json!("31.03.2024")).unwrap(),
            Some(json!("2024-03-31"))
        );
        assert_eq!(
            c(&d, json!("March 31, 2024")).unwrap(),
            Some(json!("2024-03-31"))
        );
        let eu = with(
            test_field("D", "date"),
            json!({"dateFormat": {"name": "european"}}),
        );
        assert_eq!(
            c(&eu, json!("03/04/2024")).unwrap(),
            Some(json!("2024-04-03"))
        );
        assert!(c(&d, json!("someday")).is_err());
        let dt = with(
            test_field("T", "dateTime"),
            json!({"timeZone": "Europe/Paris"}),
        );
        assert_eq!(
            c(&dt, json!("2024-03-05 10:00")).unwrap(),
            Some(json!("2024-03-05T09:00:00.000Z"))
        );
        assert_eq!(
            c(&dt, json!("2024-03-05T10:00:00Z")).unwrap(),
            Some(json!("2024-03-05T10:00:00.000Z"))
        );
        assert_eq!(
            c(&dt, json!("2024-07-05T10:00:00+02:00")).unwrap(),
            Some(json!("2024-07-05T08:00:00.000Z"))
        );
    }

    #[test]
    fn checkbox_selects_and_others() {
        let b = test_field("B", "checkbox");
        for (s, want) in [("yes", true), ("X", true), ("0", false), ("False", false)] {
            assert_eq!(c(&b, json!(s)).unwrap(), Some(json!(want)), "{s}");
        }
        assert!(c(&b, json!("maybe")).is_err());
        let ss = with(
            test_field("S", "singleSelect"),
            json!({"choices": [{"name": "Open"}, {"name": "Done"}]}),
        );
        assert_eq!(c(&ss, json!("done")).unwrap(), Some(json!("Done")));
        assert!(c(&ss, json!("Later")).unwrap_err().contains("not a choice"));
        assert_eq!(
            convert(&ss, &json!("Later"), true, &Links::default()).unwrap(),
            Some(json!("Later"))
        );
        let ms = with(
            test_field("M", "multipleSelects"),
            json!({"choices": [{"name": "a"}, {"name": "b, c"}, {"name": "d"}]}),
        );
        assert_eq!(c(&ms, json!("a, d")).unwrap(), Some(json!(["a", "d"])));
        assert_eq!(c(&ms, json!("b, c")).unwrap(), Some(json!(["b, c"])));
        assert_eq!(
            c(&ms, json!("a; b, c")).unwrap(),
            Some(json!(["a", "b, c"]))
        );
        let r = test_field("R", "rating");
        assert_eq!(c(&r, json!("★★★")).unwrap(), Some(json!(3)));
        assert!(c(&r, json!("9")).is_err());
        let du = test_field("Du", "duration");
        assert_eq!(c(&du, json!("1:30")).unwrap(), Some(json!(5400)));
        assert_eq!(c(&du, json!("0:01:05")).unwrap(), Some(json!(65)));
        let at = test_field("A", "multipleAttachments");
        assert_eq!(
            c(
                &at,
                json!("a.pdf (https://x.test/a.pdf), https://x.test/b.png")
            )
            .unwrap(),
            Some(json!([{"url": "https://x.test/a.pdf"}, {"url": "https://x.test/b.png"}]))
        );
        assert!(c(&at, json!("not-a-url")).is_err());
        let co = test_field("Who", "multipleCollaborators");
        assert_eq!(
            c(&co, json!("a@x.test, b@x.test")).unwrap(),
            Some(json!([{"email": "a@x.test"}, {"email": "b@x.test"}]))
        );
        let f = test_field("F", "formula");
        assert!(c(&f, json!("1")).unwrap_err().contains("computed"));
        let t = test_field("Name", "singleLineText");
        assert_eq!(c(&t, json!("  ")).unwrap(), None);
        assert_eq!(c(&t, json!(12)).unwrap(), Some(json!("12")));
    }

    #[test]
    fn links_by_primary_name() {
        let l = test_field("Owner", "multipleRecordLinks");
        let mut links = Links::default();
        links.by_field.insert(
            "Owner".into(),
            HashMap::from([
                ("jose".to_owned(), vec!["recAAAAAAAAAAAAAA".to_owned()]),
                (
                    "twin".to_owned(),
                    vec![
                        "recBBBBBBBBBBBBBB".to_owned(),
                        "recCCCCCCCCCCCCCC".to_owned(),
                    ],
                ),
            ]),
        );
        assert_eq!(
            convert(&l, &json!("José, recDDDDDDDDDDDDDD"), false, &links).unwrap(),
            Some(json!(["recAAAAAAAAAAAAAA", "recDDDDDDDDDDDDDD"]))
        );
        assert!(
            convert(&l, &json!("Twin"), false, &links)
                .unwrap_err()
                .contains("2 linked")
        );
        assert!(
            convert(&l, &json!("Nobody"), false, &links)
                .unwrap_err()
                .contains("no record")
        );
    }
}
