//! Structured `filters` and the read options of get_records against the sandbox, through an
//! in-process MCP client: compiled formulas select exactly what a direct evaluation of the
//! conditions selects (property test), bad filters fail before any request, and record_ids,
//! cell_format, return_fields_by_field_id and multi-field sort behave.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::mcp_support;

use std::collections::BTreeSet;
use std::str::FromStr;

use airtable_mcp::airtable::{BaseId, CreateTable, FieldSpec, Fields, WriteOptions};
use chrono::{Days, Months, NaiveDate, Utc};
use mcp_support::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Value, json};

const STATUS: [&str; 3] = ["Todo", "Doing", "Done"];
const TAGS: [&str; 3] = ["red", "blue", "green"];
const NAMES: [&str; 6] = ["alpha", "Alpha", "beta", "al\"pha", "gam}ma", "ALPHABET"];

fn base() -> BaseId {
    BaseId::from_str(DEMO).expect("demo base id")
}

fn choices(names: &[&str]) -> Value {
    json!({"choices": names.iter().map(|n| json!({"name": n})).collect::<Vec<_>>()})
}

fn spec(name: &str, t: &str, options: Option<Value>) -> FieldSpec {
    FieldSpec {
        name: name.into(),
        field_type: serde_json::from_value(json!(t)).expect("field type"),
        description: None,
        options,
    }
}

/// A scratch table with every kind of field the property test filters on; returns its ID.
async fn scratch(h: &Harness, name: &str, records: Vec<Value>) -> String {
    let client = client_for(&h.sandbox);
    let req = CreateTable {
        name: name.into(),
        description: None,
        fields: vec![
            spec("Name", "singleLineText", None),
            spec("Points", "number", Some(json!({"precision": 0}))),
            spec(
                "Done",
                "checkbox",
                Some(json!({"icon": "check", "color": "greenBright"})),
            ),
            spec("Status", "singleSelect", Some(choices(&STATUS))),
            spec("Tags", "multipleSelects", Some(choices(&TAGS))),
            spec("Due", "date", Some(json!({"dateFormat": {"name": "us"}}))),
            spec(
                "When",
                "dateTime",
                Some(
                    json!({"dateFormat": {"name": "iso"}, "timeFormat": {"name": "24hour"}, "timeZone": "utc"}),
                ),
            ),
        ],
    };
    let table = client
        .create_table(&base(), &req)
        .await
        .expect("create table");
    let id = table.id.to_string();
    for chunk in records.chunks(10) {
        let rows: Vec<Fields> = chunk
            .iter()
            .map(|v| v.as_object().cloned().expect("object"))
            .collect();
        let out = client
            .create_records(&base(), &id, rows, &WriteOptions::default())
            .await;
        assert!(out.is_complete(), "seed records: {:?}", out.failure);
    }
    id
}

/// One random record (the Rust-side model).
#[derive(Debug, Clone)]
struct Rec {
    name: Option<&'static str>,
    points: Option<i64>,
    done: bool,
    status: Option<&'static str>,
    tags: Vec<&'static str>,
    /// Days from today (UTC).
    due: Option<i64>,
}

fn today() -> NaiveDate {
    Utc::now().date_naive()
}

fn day(offset: i64) -> NaiveDate {
    let t = today();
    if offset >= 0 {
        t.checked_add_days(Days::new(offset as u64)).unwrap()
    } else {
        t.checked_sub_days(Days::new((-offset) as u64)).unwrap()
    }
}

impl Rec {
    fn to_json(&self) -> Value {
        let mut m = serde_json::Map::new();
        if let Some(n) = self.name {
            m.insert("Name".into(), json!(n));
        }
        if let Some(p) = self.points {
            m.insert("Points".into(), json!(p));
        }
        if self.done {
            m.insert("Done".into(), json!(true));
        }
        if let Some(s) = self.status {
            m.insert("Status".into(), json!(s));
        }
        if !self.tags.is_empty() {
            m.insert("Tags".into(), json!(self.tags));
        }
        if let Some(d) = self.due {
            m.insert("Due".into(), json!(day(d).format("%Y-%m-%d").to_string()));
        }
        Value::Object(m)
    }
}

fn rec_strategy() -> impl Strategy<Value = Rec> {
    (
        proptest::option::of(proptest::sample::select(NAMES.to_vec())),
        proptest::option::of(-2i64..3),
        any::<bool>(),
        proptest::option::of(proptest::sample::select(STATUS.to_vec())),
        proptest::sample::subsequence(TAGS.to_vec(), 0..=3),
        proptest::option::of(-400i64..400),
    )
        .prop_map(|(name, points, done, status, tags, due)| Rec {
            name,
            points,
            done,
            status,
            tags,
            due,
        })
}

fn some_of(items: &'static [&'static str]) -> impl Strategy<Value = Value> {
    proptest::sample::subsequence(items.to_vec(), 1..=2).prop_map(|v| json!(v))
}

fn condition_strategy() -> impl Strategy<Value = Value> {
    let name_ops = prop_oneof![
        Just("="),
        Just("!="),
        Just("contains"),
        Just("does_not_contain"),
        Just("is_empty"),
        Just("is_not_empty"),
    ];
    let cmp_ops = prop_oneof![
        Just("="),
        Just("!="),
        Just("<"),
        Just(">"),
        Just("<="),
        Just(">="),
    ];
    let within = prop_oneof![
        Just(json!("today")),
        Just(json!("tomorrow")),
        Just(json!("yesterday")),
        Just(json!("past_week")),
        Just(json!("past_month")),
        Just(json!("past_year")),
        Just(json!("next_week")),
        Just(json!("next_month")),
        Just(json!("next_year")),
        (0i64..60).prop_map(|n| json!({"past_n_days": n})),
        (0i64..60).prop_map(|n| json!({"next_n_days": n})),
    ];
    prop_oneof![
        (
            name_ops,
            proptest::sample::select(vec!["alpha", "al\"pha", "ALP", "gam}ma", "b"])
        )
            .prop_map(|(op, v)| json!({"field": "Name", "op": op, "value": v})),
        (
            prop_oneof![Just("is_any_of"), Just("is_none_of")],
            proptest::sample::subsequence(NAMES.to_vec(), 1..=2)
        )
            .prop_map(|(op, v)| json!({"field": "Name", "op": op, "value": v})),
        (cmp_ops.clone(), -2i64..3)
            .prop_map(|(op, v)| json!({"field": "Points", "op": op, "value": v})),
        (prop_oneof![Just("is_any_of"), Just("is_none_of")], -3i64..4)
            .prop_map(|(op, v)| json!({"field": "Points", "op": op, "value": [v, v + 1]})),
        (prop_oneof![Just("="), Just("!=")], any::<bool>())
            .prop_map(|(op, v)| json!({"field": "Done", "op": op, "value": v})),
        (
            prop_oneof![Just("="), Just("!=")],
            proptest::sample::select(STATUS.to_vec())
        )
            .prop_map(|(op, v)| json!({"field": "Status", "op": op, "value": v})),
        (
            prop_oneof![Just("is_any_of"), Just("is_none_of")],
            some_of(&STATUS)
        )
            .prop_map(|(op, v)| json!({"field": "Status", "op": op, "value": v})),
        (
            prop_oneof![Just("has_any_of"), Just("has_all_of"), Just("is_none_of")],
            some_of(&TAGS)
        )
            .prop_map(|(op, v)| json!({"field": "Tags", "op": op, "value": v})),
        prop_oneof![Just("is_empty"), Just("is_not_empty")]
            .prop_map(|op| json!({"field": "Tags", "op": op})),
        (cmp_ops, -400i64..400).prop_map(|(op, d)| json!({
            "field": "Due", "op": op, "value": day(d).format("%Y-%m-%d").to_string()
        })),
        within.prop_map(|v| json!({"field": "Due", "op": "is_within", "value": v})),
    ]
}

fn filters_strategy() -> impl Strategy<Value = Value> {
    let mode = prop_oneof![Just("all"), Just("any")];
    (
        mode.clone(),
        proptest::collection::vec(condition_strategy(), 0..4),
        proptest::collection::vec(
            (mode, proptest::collection::vec(condition_strategy(), 1..4)),
            0..3,
        ),
    )
        .prop_filter("at least one condition", |(_, c, g)| {
            !c.is_empty() || !g.is_empty()
        })
        .prop_map(|(m, conditions, groups)| {
            json!({
                "match": m,
                "conditions": conditions,
                "groups": groups.into_iter().map(|(m, c)| json!({"match": m, "conditions": c})).collect::<Vec<_>>(),
            })
        })
}

fn ord(op: &str, a: std::cmp::Ordering) -> bool {
    use std::cmp::Ordering::*;
    match op {
        "=" => a == Equal,
        "<" => a == Less,
        ">" => a == Greater,
        "<=" => a != Greater,
        ">=" => a != Less,
        _ => unreachable!("{op}"),
    }
}

/// The direct evaluation of one condition on one record.
fn holds(c: &Value, r: &Rec) -> bool {
    let op = c["op"].as_str().unwrap();
    let v = &c["value"];
    let strs = || -> Vec<String> {
        match v {
            Value::Array(a) => a.iter().map(|x| x.as_str().unwrap().to_owned()).collect(),
            x => vec![x.as_str().unwrap().to_owned()],
        }
    };
    match c["field"].as_str().unwrap() {
        "Name" => {
            let n = r.name.unwrap_or("");
            match op {
                "=" => n == v.as_str().unwrap(),
                "!=" => n != v.as_str().unwrap(),
                "contains" => n
                    .to_lowercase()
                    .contains(&v.as_str().unwrap().to_lowercase()),
                "does_not_contain" => !n
                    .to_lowercase()
                    .contains(&v.as_str().unwrap().to_lowercase()),
                "is_empty" => n.is_empty(),
                "is_not_empty" => !n.is_empty(),
                "is_any_of" => strs().iter().any(|s| s == n),
                "is_none_of" => !strs().iter().any(|s| s == n),
                _ => unreachable!(),
            }
        }
        "Points" => match op {
            "is_any_of" | "is_none_of" => {
                let any = v.as_array().unwrap().iter().any(|x| r.points == x.as_i64());
                any == (op == "is_any_of")
            }
            "!=" => r.points != v.as_i64(),
            _ => r
                .points
                .is_some_and(|p| ord(op, p.cmp(&v.as_i64().unwrap()))),
        },
        "Done" => (r.done == v.as_bool().unwrap()) == (op == "="),
        "Status" => {
            let s = r.status.unwrap_or("");
            match op {
                "=" => s == v.as_str().unwrap(),
                "!=" => s != v.as_str().unwrap(),
                "is_any_of" => strs().iter().any(|x| x == s),
                "is_none_of" => !strs().iter().any(|x| x == s),
                _ => unreachable!(),
            }
        }
        "Tags" => {
            let has = |x: &String| r.tags.iter().any(|t| t == x);
            match op {
                "has_any_of" => strs().iter().any(has),
                "has_all_of" => strs().iter().all(has),
                "is_none_of" => !strs().iter().any(has),
                "is_empty" => r.tags.is_empty(),
                "is_not_empty" => !r.tags.is_empty(),
                _ => unreachable!(),
            }
        }
        "Due" => {
            let d = r.due.map(day);
            match op {
                "is_within" => {
                    let t = today();
                    let (lo, hi) = match v {
                        Value::String(s) => match s.as_str() {
                            "today" => (t, t),
                            "tomorrow" => (day(1), day(1)),
                            "yesterday" => (day(-1), day(-1)),
                            "past_week" => (day(-7), t),
                            "past_month" => (t.checked_sub_months(Months::new(1)).unwrap(), t),
                            "past_year" => (t.checked_sub_months(Months::new(12)).unwrap(), t),
                            "next_week" => (t, day(7)),
                            "next_month" => (t, t.checked_add_months(Months::new(1)).unwrap()),
                            "next_year" => (t, t.checked_add_months(Months::new(12)).unwrap()),
                            _ => unreachable!(),
                        },
                        Value::Object(o) => {
                            let n = o.values().next().unwrap().as_i64().unwrap();
                            if o.contains_key("past_n_days") {
                                (day(-n), t)
                            } else {
                                (t, day(n))
                            }
                        }
                        _ => unreachable!(),
                    };
                    d.is_some_and(|d| lo <= d && d <= hi)
                }
                _ => {
                    let w = NaiveDate::parse_from_str(v.as_str().unwrap(), "%Y-%m-%d").unwrap();
                    if op == "!=" {
                        d != Some(w)
                    } else {
                        d.is_some_and(|d| ord(op, d.cmp(&w)))
                    }
                }
            }
        }
        other => unreachable!("{other}"),
    }
}

fn group_holds(mode: &str, conditions: &[Value], r: &Rec) -> bool {
    if mode == "any" {
        conditions.iter().any(|c| holds(c, r))
    } else {
        conditions.iter().all(|c| holds(c, r))
    }
}

fn selects(f: &Value, r: &Rec) -> bool {
    let mut items: Vec<bool> = f["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| holds(c, r))
        .collect();
    for g in f["groups"].as_array().unwrap() {
        items.push(group_holds(
            g["match"].as_str().unwrap(),
            g["conditions"].as_array().unwrap(),
            r,
        ));
    }
    if f["match"] == "any" {
        items.into_iter().any(|b| b)
    } else {
        items.into_iter().all(|b| b)
    }
}

/// The record IDs (column "id") of a get_records result.
fn ids_of(out: &Value) -> Vec<String> {
    let cols = out["columns"].as_array().unwrap();
    assert_eq!(cols[0], "id");
    out["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row[0].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn compiled_filters_select_what_a_direct_evaluation_selects() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut runner = TestRunner::new(Config {
        cases: 48,
        ..Config::default()
    });
    let n = std::sync::atomic::AtomicU32::new(0);
    let strategy = (
        proptest::collection::vec(rec_strategy(), 0..20),
        proptest::collection::vec(filters_strategy(), 1..5),
    );
    runner
        .run(&strategy, |(records, trees)| {
            let n = n.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            rt.block_on(async {
                // A fresh server per case: its schema cache must see the new table.
                let h = harness().await;
                let table = scratch(
                    &h,
                    &format!("Filters {n}"),
                    records.iter().map(Rec::to_json).collect(),
                )
                .await;
                // Record IDs in creation order map back to the model records.
                let all = ok(
                    &h.client,
                    "get_records",
                    json!({"base_id": DEMO, "table_id": table, "fields": ["Name"], "max_records": 1000}),
                )
                .await;
                let created = ids_of(&all);
                assert_eq!(created.len(), records.len());
                // Each tree, and each of its top-level conditions alone (a sharper check).
                let singles: Vec<Value> = trees
                    .iter()
                    .flat_map(|t| t["conditions"].as_array().cloned().unwrap_or_default())
                    .map(|c| json!({"conditions": [c], "groups": []}))
                    .collect();
                for tree in trees.iter().chain(&singles) {
                    let out = call(
                        &h.client,
                        "get_records",
                        json!({"base_id": DEMO, "table_id": table, "fields": ["Name"], "max_records": 1000, "filters": tree}),
                    )
                    .await;
                    assert_ne!(out.is_error, Some(true), "{tree}: {}", text(&out));
                    let got: BTreeSet<String> =
                        ids_of(out.structured_content.as_ref().unwrap()).into_iter().collect();
                    let want: BTreeSet<String> = records
                        .iter()
                        .zip(&created)
                        .filter(|(r, _)| selects(tree, r))
                        .map(|(_, id)| id.clone())
                        .collect();
                    prop_assert_eq!(got, want, "filters {} on {:?}", tree, records);
                }
                Ok(())
            })
        })
        .unwrap();
}

async fn table_with_records(h: &Harness, name: &str) -> (String, Vec<String>) {
    let recs = [
        json!({"Name": "b", "Points": 2, "Status": "Todo", "Due": "2024-01-05"}),
        json!({"Name": "a", "Points": 2, "Status": "Done", "Due": "2024-03-01"}),
        json!({"Name": "c", "Points": 1, "Tags": ["red"], "When": "2024-01-05T23:30:00.000Z"}),
    ];
    let table = scratch(h, name, recs.to_vec()).await;
    let all = ok(
        &h.client,
        "get_records",
        json!({"base_id": DEMO, "table_id": table, "fields": ["Name"]}),
    )
    .await;
    (table, ids_of(&all))
}

#[tokio::test]
async fn bad_filters_fail_before_any_request() {
    let h = harness().await;
    let (table, _) = table_with_records(&h, "Bad filters").await;
    let before = h.sandbox.stats().requests;
    let bad = [
        (
            json!({"conditions": [{"field": "Stauts", "op": "=", "value": "Todo"}]}),
            "Did you mean \"Status\"",
        ),
        (
            json!({"conditions": [{"field": "Status", "op": "<", "value": "Todo"}]}),
            "valid: =, !=",
        ),
        (
            json!({"conditions": [{"field": "Status", "op": "=", "value": "Tdo"}]}),
            "Did you mean \"Todo\"",
        ),
        (
            json!({"groups": [{"conditions": [{"field": "Tags", "op": "has_any_of", "value": ["blu"]}]}]}),
            "Did you mean \"blue\"",
        ),
        (
            json!({"conditions": [{"field": "Points", "op": ">", "value": "lots"}]}),
            "a number",
        ),
        (
            json!({"conditions": [{"field": "Due", "op": "<", "value": "yesterday"}]}),
            "YYYY-MM-DD",
        ),
    ];
    for (f, want) in bad {
        let e = err(
            &h.client,
            "get_records",
            json!({"base_id": DEMO, "table_id": table, "filters": f}),
        )
        .await;
        assert!(e.contains(want), "{f}: {e}");
        assert!(e.contains("nothing was sent"), "{e}");
    }
    assert_eq!(
        h.sandbox.stats().requests,
        before,
        "a bad filter sent a request"
    );
}

#[tokio::test]
async fn filters_combine_with_filter_by_formula() {
    let h = harness().await;
    let (table, ids) = table_with_records(&h, "Combined").await;
    let out = ok(
        &h.client,
        "get_records",
        json!({"base_id": DEMO, "table_id": table, "fields": ["Name"],
               "filters": {"conditions": [{"field": "Points", "op": "=", "value": 2}]},
               "filter_by_formula": "{Name}=\"a\""}),
    )
    .await;
    assert_eq!(ids_of(&out), vec![ids[1].clone()]);
}

#[tokio::test]
async fn record_ids_keep_the_order_given_and_name_the_missing() {
    let h = harness().await;
    let (table, ids) = table_with_records(&h, "By ID").await;
    let missing = "recAAAAAAAAAAAAAA";
    let out = ok(
        &h.client,
        "get_records",
        json!({"base_id": DEMO, "table_id": table, "fields": ["Name"], "max_records": 1,
               "record_ids": [ids[2], missing, ids[0]]}),
    )
    .await;
    assert_eq!(ids_of(&out), vec![ids[2].clone(), ids[0].clone()]);
    let note = out["note"].as_str().unwrap();
    assert!(note.contains(missing), "{note}");
    let e = err(
        &h.client,
        "get_records",
        json!({"base_id": DEMO, "table_id": table, "record_ids": ["nope"]}),
    )
    .await;
    assert!(e.contains("nope"), "{e}");
}

#[tokio::test]
async fn sort_by_several_fields() {
    let h = harness().await;
    let (table, ids) = table_with_records(&h, "Sorted").await;
    let out = ok(
        &h.client,
        "get_records",
        json!({"base_id": DEMO, "table_id": table, "fields": ["Name"],
               "sort": [{"field": "Points", "direction": "desc"}, {"field": "Name"}]}),
    )
    .await;
    assert_eq!(
        ids_of(&out),
        vec![ids[1].clone(), ids[0].clone(), ids[2].clone()]
    );
}

#[tokio::test]
async fn cell_format_string_and_field_ids() {
    let h = harness().await;
    let (table, ids) = table_with_records(&h, "Formats").await;
    let out = ok(
        &h.client,
        "get_records",
        json!({"base_id": DEMO, "table_id": table, "fields": ["Due", "Points"],
               "record_ids": [ids[0]], "cell_format": "string",
               "time_zone": "America/New_York", "user_locale": "en-us"}),
    )
    .await;
    let cols: Vec<&str> = out["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    let row = &out["rows"][0];
    let due = cols.iter().position(|c| *c == "Due").unwrap();
    assert_eq!(row[due], "1/5/2024", "{out}");
    let points = cols.iter().position(|c| *c == "Points").unwrap();
    assert_eq!(row[points], "2", "{out}");

    let client = client_for(&h.sandbox);
    let schema = client.base_schema(&base()).await.unwrap();
    let t = schema
        .tables
        .iter()
        .find(|t| t.id.to_string() == table)
        .unwrap();
    let name_id = t
        .fields
        .iter()
        .find(|f| f.name == "Name")
        .unwrap()
        .id
        .to_string();
    let out = ok(
        &h.client,
        "get_records",
        json!({"base_id": DEMO, "table_id": table, "fields": ["Name"],
               "record_ids": [ids[1]], "return_fields_by_field_id": true}),
    )
    .await;
    assert_eq!(out["columns"], json!(["id", name_id]), "{out}");
    assert_eq!(out["rows"][0][1], "a");
}

#[tokio::test]
async fn date_times_are_read_in_the_filter_time_zone() {
    let h = harness().await;
    let (table, ids) = table_with_records(&h, "Zoned").await;
    let on = |tz: &str| {
        json!({"base_id": DEMO, "table_id": table, "fields": ["Name"],
               "filters": {"time_zone": tz, "conditions": [{"field": "When", "op": "=", "value": "2024-01-06"}]}})
    };
    // 23:30 UTC on the 5th is 00:30 on the 6th in Paris.
    assert_eq!(
        ids_of(&ok(&h.client, "get_records", on("Europe/Paris")).await),
        vec![ids[2].clone()]
    );
    assert!(ids_of(&ok(&h.client, "get_records", on("UTC")).await).is_empty());
}
