//! analyze_table_data's pure core: per-field statistics over a sample of records.

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};

use chrono::{DateTime, NaiveDate, Utc};
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;

use crate::tools::cells::{Field, Kind, RecordLike, is_empty, kind_of, render, truncate_chars};

/// How many top values are reported per field.
pub(crate) const TOP_VALUES: usize = 5;
/// Longest rendering of a top value, in characters.
const TOP_VALUE_CHARS: usize = 80;

/// The statistics of a table sample.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct TableStats {
    /// Number of records analysed.
    pub(crate) records_analyzed: usize,
    /// One entry per field, in schema order.
    pub(crate) fields: Vec<FieldStats>,
}

/// The statistics of one field over the sample.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct FieldStats {
    /// Field name.
    pub(crate) name: String,
    /// Field ID (`fld…`).
    pub(crate) id: String,
    /// Airtable field type.
    #[serde(rename = "type")]
    pub(crate) field_type: String,
    /// Records whose cell is not empty (for a checkbox: checked).
    pub(crate) filled: usize,
    /// `filled / records_analyzed`, from 0 to 1 (rounded to 3 decimals).
    pub(crate) fill_rate: f64,
    /// Distinct non-empty values (for a multiple select or a link field: distinct items).
    pub(crate) distinct_count: usize,
    /// Most frequent values with their counts (selects, short text, checkboxes, links, collaborators).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) top_values: Vec<ValueCount>,
    /// Numeric summary (number-like fields and formulas with a number result).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) numbers: Option<NumberStats>,
    /// Earliest and latest value (date-like fields).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) dates: Option<DateRange>,
}

/// A value and how many records hold it.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub(crate) struct ValueCount {
    /// The value as text (long values are cut with "…").
    pub(crate) value: String,
    /// Number of records holding it.
    pub(crate) count: usize,
}

/// Minimum, maximum, mean and median of the numeric values.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub(crate) struct NumberStats {
    pub(crate) min: f64,
    pub(crate) max: f64,
    pub(crate) mean: f64,
    pub(crate) median: f64,
}

/// The earliest and latest date, as Airtable wrote them.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub(crate) struct DateRange {
    pub(crate) earliest: String,
    pub(crate) latest: String,
}

/// Analyse `records` field by field. `fields` gives the schema order.
pub(crate) fn analyze<R: RecordLike>(fields: &[Field], records: &[R]) -> TableStats {
    let n = records.len();
    let fields = fields
        .iter()
        .map(|field| analyze_field(field, records, n))
        .collect();
    TableStats {
        records_analyzed: n,
        fields,
    }
}

fn analyze_field<R: RecordLike>(field: &Field, records: &[R], n: usize) -> FieldStats {
    let values: Vec<&Value> = records
        .iter()
        .filter_map(|r| r.cells().get(&field.name))
        .filter(|v| !is_empty(Some(v)))
        .collect();
    let filled = values.len();
    let mut kind = kind_of(field);
    if kind == Kind::Other && !values.is_empty() && values.iter().all(|v| v.is_number()) {
        kind = Kind::Number;
    }

    // Items: a multi-valued cell counts each of its items.
    let multi = matches!(
        kind,
        Kind::MultiSelect | Kind::Link | Kind::Attachment | Kind::Collaborator
    );
    let mut counts: HashMap<String, usize> = HashMap::new();
    let mut order: Vec<String> = Vec::new();
    let mut distinct: HashSet<String> = HashSet::new();
    for v in &values {
        let items: Vec<String> = match v {
            Value::Array(items) if multi => items.iter().map(render).collect(),
            _ => vec![render(v)],
        };
        let mut seen_here = HashSet::new();
        for item in items {
            if item.is_empty() || !seen_here.insert(item.clone()) {
                continue;
            }
            distinct.insert(item.clone());
            let c = counts.entry(item.clone()).or_insert(0);
            if *c == 0 {
                order.push(item);
            }
            *c += 1;
        }
    }

    let wants_top = matches!(
        kind,
        Kind::Text
            | Kind::Select
            | Kind::MultiSelect
            | Kind::Checkbox
            | Kind::Link
            | Kind::Collaborator
    );
    let top_values = if wants_top {
        top_n(&counts, &order, TOP_VALUES)
    } else {
        Vec::new()
    };
    let numbers = if kind == Kind::Number {
        number_stats(&values)
    } else {
        None
    };
    let dates = if kind == Kind::Date {
        date_range(&values)
    } else {
        None
    };

    FieldStats {
        name: field.name.clone(),
        id: field.id.to_string(),
        field_type: field.field_type.to_string(),
        filled,
        fill_rate: if n == 0 {
            0.0
        } else {
            round3(filled as f64 / n as f64)
        },
        distinct_count: distinct.len(),
        top_values,
        numbers,
        dates,
    }
}

/// The `k` most frequent values; ties keep the order of first appearance.
fn top_n(counts: &HashMap<String, usize>, order: &[String], k: usize) -> Vec<ValueCount> {
    let mut ranked: Vec<(usize, &String)> = order.iter().enumerate().collect();
    ranked.sort_by(|a, b| {
        let ca = counts.get(a.1).copied().unwrap_or(0);
        let cb = counts.get(b.1).copied().unwrap_or(0);
        cb.cmp(&ca).then(a.0.cmp(&b.0))
    });
    ranked
        .into_iter()
        .take(k)
        .map(|(_, v)| ValueCount {
            value: truncate_chars(v, TOP_VALUE_CHARS),
            count: counts.get(v).copied().unwrap_or(0),
        })
        .collect()
}

fn number_stats(values: &[&Value]) -> Option<NumberStats> {
    let mut nums: Vec<f64> = values
        .iter()
        .filter_map(|v| match v {
            Value::Number(n) => n.as_f64(),
            // A rollup or formula may hand back a one-element array.
            Value::Array(a) if a.len() == 1 => a[0].as_f64(),
            _ => None,
        })
        .filter(|f| f.is_finite())
        .collect();
    if nums.is_empty() {
        return None;
    }
    nums.sort_by(|a, b| a.partial_cmp(b).unwrap_or(Ordering::Equal));
    let len = nums.len();
    let sum: f64 = nums.iter().sum();
    let median = if len % 2 == 1 {
        nums[len / 2]
    } else {
        (nums[len / 2 - 1] + nums[len / 2]) / 2.0
    };
    Some(NumberStats {
        min: nums[0],
        max: nums[len - 1],
        mean: round6(sum / len as f64),
        median,
    })
}

/// Parse an Airtable date (`2024-05-01`) or date-time (`2024-05-01T07:00:00.000Z`).
pub(crate) fn parse_date(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        return Some(dt.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|dt| dt.and_utc())
}

fn date_range(values: &[&Value]) -> Option<DateRange> {
    let mut earliest: Option<(DateTime<Utc>, &str)> = None;
    let mut latest: Option<(DateTime<Utc>, &str)> = None;
    for v in values {
        let Some(s) = v.as_str() else { continue };
        let Some(t) = parse_date(s) else { continue };
        if earliest.is_none_or(|(e, _)| t < e) {
            earliest = Some((t, s));
        }
        if latest.is_none_or(|(l, _)| t > l) {
            latest = Some((t, s));
        }
    }
    match (earliest, latest) {
        (Some((_, e)), Some((_, l))) => Some(DateRange {
            earliest: e.to_string(),
            latest: l.to_string(),
        }),
        _ => None,
    }
}

fn round3(f: f64) -> f64 {
    (f * 1000.0).round() / 1000.0
}

fn round6(f: f64) -> f64 {
    (f * 1_000_000.0).round() / 1_000_000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::cells::PlainRecord;
    use serde_json::json;

    fn field(name: &str, t: &str) -> Field {
        crate::tools::cells::test_field(name, t)
    }

    fn rec(id: &str, fields: Value) -> PlainRecord {
        PlainRecord {
            id: id.into(),
            fields: fields.as_object().cloned().unwrap_or_default(),
        }
    }

    fn sample() -> (Vec<Field>, Vec<PlainRecord>) {
        let fields = vec![
            field("Name", "singleLineText"),
            field("Status", "singleSelect"),
            field("Tags", "multipleSelects"),
            field("Hours", "number"),
            field("Due", "date"),
            field("Done", "checkbox"),
            field("Notes", "multilineText"),
        ];
        let records = vec![
            rec(
                "rec1",
                json!({"Name": "A", "Status": "Todo", "Tags": ["x", "y"], "Hours": 1, "Due": "2024-03-01", "Done": true, "Notes": "long"}),
            ),
            rec(
                "rec2",
                json!({"Name": "B", "Status": "Done", "Tags": ["x"], "Hours": 4, "Due": "2024-01-15"}),
            ),
            rec(
                "rec3",
                json!({"Name": "A", "Status": "Todo", "Hours": 2.5, "Due": "2024-12-31"}),
            ),
            rec("rec4", json!({"Name": " ", "Status": "Todo", "Hours": 10})),
        ];
        (fields, records)
    }

    fn by_name<'a>(s: &'a TableStats, name: &str) -> &'a FieldStats {
        s.fields.iter().find(|f| f.name == name).expect("field")
    }

    #[test]
    fn fill_rates_and_distinct_counts() {
        let (fields, records) = sample();
        let s = analyze(&fields, &records);
        assert_eq!(s.records_analyzed, 4);
        let name = by_name(&s, "Name");
        assert_eq!(name.filled, 3, "a blank string is empty");
        assert_eq!(name.fill_rate, 0.75);
        assert_eq!(name.distinct_count, 2);
        let tags = by_name(&s, "Tags");
        assert_eq!(tags.filled, 2);
        assert_eq!(tags.distinct_count, 2);
        assert_eq!(
            tags.top_values,
            vec![
                ValueCount {
                    value: "x".into(),
                    count: 2
                },
                ValueCount {
                    value: "y".into(),
                    count: 1
                }
            ]
        );
        assert_eq!(by_name(&s, "Done").filled, 1);
        assert!(
            by_name(&s, "Notes").top_values.is_empty(),
            "long text has no top values"
        );
    }

    #[test]
    fn top_values_rank_by_count_then_first_seen() {
        let (fields, records) = sample();
        let s = analyze(&fields, &records);
        let status = by_name(&s, "Status");
        assert_eq!(status.top_values[0].value, "Todo");
        assert_eq!(status.top_values[0].count, 3);
        assert_eq!(status.top_values[1].value, "Done");
        assert!(status.numbers.is_none());
    }

    #[test]
    fn numbers_and_dates() {
        let (fields, records) = sample();
        let s = analyze(&fields, &records);
        let hours = by_name(&s, "Hours").numbers.clone().expect("numbers");
        assert_eq!(hours.min, 1.0);
        assert_eq!(hours.max, 10.0);
        assert_eq!(hours.mean, 4.375);
        assert_eq!(hours.median, 3.25);
        let due = by_name(&s, "Due").dates.clone().expect("dates");
        assert_eq!(due.earliest, "2024-01-15");
        assert_eq!(due.latest, "2024-12-31");
    }

    #[test]
    fn empty_sample_is_not_a_division_by_zero() {
        let (fields, _) = sample();
        let s = analyze::<PlainRecord>(&fields, &[]);
        assert_eq!(s.records_analyzed, 0);
        assert!(
            s.fields
                .iter()
                .all(|f| f.fill_rate == 0.0 && f.numbers.is_none())
        );
    }

    #[test]
    fn dates_mix_dates_and_datetimes() {
        let f = vec![field("When", "dateTime")];
        let r = vec![
            rec("rec1", json!({"When": "2024-05-01T10:00:00.000Z"})),
            rec("rec2", json!({"When": "2024-05-01T09:00:00.000Z"})),
            rec("rec3", json!({"When": "not a date"})),
        ];
        let s = analyze(&f, &r);
        let d = s.fields[0].dates.clone().expect("dates");
        assert_eq!(d.earliest, "2024-05-01T09:00:00.000Z");
        assert_eq!(d.latest, "2024-05-01T10:00:00.000Z");
    }

    #[test]
    fn untyped_formula_with_numbers_gets_number_stats() {
        let f = vec![field("Score", "formula")];
        let r = vec![
            rec("rec1", json!({"Score": 2})),
            rec("rec2", json!({"Score": 4})),
        ];
        let s = analyze(&f, &r);
        assert_eq!(s.fields[0].numbers.clone().expect("n").mean, 3.0);
    }
}
