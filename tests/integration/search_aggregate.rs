//! search_records (relevance ranking), aggregate_records and count_records against the
//! sandbox, through an in-process MCP client.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::mcp_support;

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

use airtable_mcp::airtable::{
    BaseId, Client, CreateTable, FieldSpec, Fields, ListQuery, Record, WriteOptions,
};
use chrono::{DateTime, Datelike, Duration, NaiveDate};
use mcp_support::*;
use serde_json::{Value, json};

fn base() -> BaseId {
    BaseId::from_str(DEMO).expect("demo base id")
}

fn spec(name: &str, t: &str) -> FieldSpec {
    FieldSpec {
        name: name.into(),
        field_type: serde_json::from_value(json!(t)).expect("field type"),
        description: None,
        options: (t == "number").then(|| json!({"precision": 2})),
    }
}

/// A scratch table with the given (name, type) fields and records (typecast on); its ID.
async fn scratch(
    client: &Client,
    name: &str,
    fields: &[(&str, &str)],
    records: Vec<Value>,
) -> String {
    let req = CreateTable {
        name: name.into(),
        description: None,
        fields: fields.iter().map(|(n, t)| spec(n, t)).collect(),
    };
    let table = client
        .create_table(&base(), &req)
        .await
        .expect("create table");
    let id = table.id.to_string();
    let rows: Vec<Fields> = records
        .into_iter()
        .map(|v| v.as_object().cloned().expect("object"))
        .collect();
    let out = client
        .create_records(
            &base(),
            &id,
            rows,
            &WriteOptions {
                typecast: true,
                ..WriteOptions::default()
            },
        )
        .await;
    assert!(out.is_complete(), "seed records: {:?}", out.failure);
    id
}

async fn all_records(client: &Client, table: &str, query: ListQuery) -> Vec<Record> {
    client
        .list_all_records(&base(), table, query)
        .await
        .expect("list records")
}

/// The value of column `col` in each row of a search result.
fn column(out: &Value, col: &str) -> Vec<Value> {
    let cols: Vec<&str> = out["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    let i = cols.iter().position(|c| *c == col).expect("column");
    out["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.get(i).cloned().unwrap_or(Value::Null))
        .collect()
}

fn names(out: &Value) -> Vec<String> {
    column(out, "Name")
        .into_iter()
        .map(|v| v.as_str().unwrap_or_default().to_owned())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// search_records

#[tokio::test]
async fn search_ranks_a_fixed_corpus() {
    let h = harness().await;
    let client = client_for(&h.sandbox);
    let t = scratch(
        &client,
        "Corpus",
        &[
            ("Name", "singleLineText"),
            ("Notes", "multilineText"),
            ("City", "singleLineText"),
        ],
        vec![
            json!({"Name": "Café de Flore", "Notes": "historic, on the boulevard", "City": "Paris"}),
            json!({"Name": "Le Petit Bistro", "Notes": "best cafe in town, crème brûlée", "City": "Lyon"}),
            json!({"Name": "Cafeteria Nord", "City": "Lille"}),
            json!({"Name": "Bakery", "Notes": "Brûlée crème dessert", "City": "Nice"}),
            json!({"Name": "Tea Room", "Notes": "no coffee here", "City": "Paris"}),
        ],
    )
    .await;
    let search = |q: &str, extra: Value| {
        let mut args = json!({"base_id": DEMO, "table_id": t, "query": q});
        for (k, v) in extra.as_object().unwrap() {
            args[k] = v.clone();
        }
        args
    };
    let c = &h.client;

    // Accent- and case-insensitive; the primary field weighs more, whole words over prefixes.
    let cafe = ok(c, "search_records", search("cafe", json!({}))).await;
    assert_eq!(
        names(&cafe),
        ["Café de Flore", "Cafeteria Nord", "Le Petit Bistro"],
        "{cafe}"
    );
    assert_eq!(cafe["count"], 3);
    let scores: Vec<f64> = cafe["scores"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_f64().unwrap())
        .collect();
    assert_eq!(scores.len(), 3);
    assert!(scores.windows(2).all(|w| w[0] > w[1]), "{scores:?}");
    assert_eq!(cafe["matched"], json!([["Name"], ["Name"], ["Notes"]]));
    let upper = ok(c, "search_records", search("CAFÉ", json!({}))).await;
    assert_eq!(upper["rows"], cafe["rows"]);
    assert_eq!(upper["scores"], cafe["scores"]);

    // A quoted phrase needs its words in a row; unquoted, any order (shorter field first).
    let phrase = ok(c, "search_records", search("\"creme brulee\"", json!({}))).await;
    assert_eq!(names(&phrase), ["Le Petit Bistro"], "{phrase}");
    let words = ok(c, "search_records", search("creme brulee", json!({}))).await;
    assert_eq!(names(&words), ["Bakery", "Le Petit Bistro"], "{words}");

    // Term order does not matter; every word is required.
    let a = ok(c, "search_records", search("flore café", json!({}))).await;
    let b = ok(c, "search_records", search("Cafe FLORE", json!({}))).await;
    assert_eq!(names(&a), ["Café de Flore"]);
    assert_eq!(a["rows"], b["rows"]);
    assert_eq!(a["scores"], b["scores"]);

    // Only the given fields; return_fields trims the output (ranking unchanged).
    let notes = ok(
        c,
        "search_records",
        search("cafe", json!({"fields": ["Notes"]})),
    )
    .await;
    assert_eq!(names(&notes), ["Le Petit Bistro"]);
    let cities = ok(
        c,
        "search_records",
        search("cafe", json!({"return_fields": ["City"]})),
    )
    .await;
    assert_eq!(cities["columns"], json!(["id", "City"]));
    assert_eq!(
        column(&cities, "City"),
        [json!("Paris"), json!("Lille"), json!("Lyon")]
    );

    // Combined with a formula; max_records keeps the best and says so.
    let paris = ok(
        c,
        "search_records",
        search("cafe", json!({"filter_by_formula": "{City}='Paris'"})),
    )
    .await;
    assert_eq!(names(&paris), ["Café de Flore"]);
    let not_paris = ok(
        c,
        "search_records",
        search(
            "cafe",
            json!({"filters": {"conditions": [{"field": "City", "op": "!=", "value": "Paris"}]}}),
        ),
    )
    .await;
    assert_eq!(names(&not_paris), ["Cafeteria Nord", "Le Petit Bistro"]);
    let e = err(
        c,
        "search_records",
        search(
            "cafe",
            json!({"filters": {"conditions": [{"field": "Cty", "op": "=", "value": "Paris"}]}}),
        ),
    )
    .await;
    assert!(e.contains("City"), "{e}");
    let best = ok(
        c,
        "search_records",
        search("cafe", json!({"max_records": 1})),
    )
    .await;
    assert_eq!(names(&best), ["Café de Flore"]);
    assert_eq!(best["has_more"], true);
    assert!(
        best["note"].as_str().unwrap().contains("3 records match"),
        "{best}"
    );

    // Nothing found; an empty query is an error.
    let none = ok(c, "search_records", search("espresso", json!({}))).await;
    assert_eq!(none["count"], 0);
    let e = err(c, "search_records", search("\" \"", json!({}))).await;
    assert!(e.contains("query is empty"), "{e}");
}

// ---------------------------------------------------------------------------------------------
// aggregate_records and count_records

const N: usize = 250;
const REGIONS: [&str; 4] = ["North", "South", "East", "West"];

fn sales() -> Vec<Value> {
    let start = NaiveDate::from_ymd_opt(2024, 1, 1).unwrap();
    let at0 = DateTime::parse_from_rfc3339("2024-03-30T20:00:00Z").unwrap();
    (0..N)
        .map(|i| {
            let mut r = json!({
                "Name": format!("Sale {i}"),
                "Due": (start + Duration::days(3 * i as i64)).format("%Y-%m-%d").to_string(),
                "At": (at0 + Duration::hours(5 * i as i64)).to_rfc3339(),
            });
            if i % 13 != 0 {
                r["Region"] = json!(REGIONS[i % 4]);
            }
            match i % 3 {
                0 => r["Tags"] = json!(["a", "b"]),
                1 => r["Tags"] = json!(["b"]),
                _ => {}
            }
            if i % 7 != 0 {
                r["Amount"] = json!(((i * 37) % 101) as f64 / 4.0);
            }
            r
        })
        .collect()
}

/// Direct computation of one group's metrics over `recs`.
fn expected(recs: &[&Record]) -> Value {
    let mut nums: Vec<f64> = recs
        .iter()
        .filter_map(|r| r.fields.get("Amount").and_then(Value::as_f64))
        .collect();
    nums.sort_by(f64::total_cmp);
    let n = nums.len();
    let sum: f64 = nums.iter().sum();
    let median = if n % 2 == 1 {
        nums[n / 2]
    } else {
        (nums[n / 2 - 1] + nums[n / 2]) / 2.0
    };
    let tags: BTreeSet<String> = recs
        .iter()
        .filter_map(|r| r.fields.get("Tags").and_then(Value::as_array))
        .flatten()
        .map(|t| t.as_str().unwrap().to_owned())
        .collect();
    json!({
        "count": recs.len(),
        "sum": sum,
        "avg": sum / n as f64,
        "min": nums[0],
        "max": nums[n - 1],
        "median": median,
        "distinct_tags": tags.len(),
        "fill_rate": ((n as f64 / recs.len() as f64) * 1000.0).round() / 1000.0,
        "filled": n,
    })
}

fn close(a: &Value, b: &Value, what: &str) {
    let (x, y) = (a.as_f64().unwrap(), b.as_f64().unwrap());
    assert!((x - y).abs() < 1e-6, "{what}: got {x}, expected {y}");
}

#[tokio::test]
async fn aggregate_matches_a_direct_computation() {
    let h = harness().await;
    let client = client_for(&h.sandbox);
    let t = scratch(
        &client,
        "Sales",
        &[
            ("Name", "singleLineText"),
            ("Region", "singleSelect"),
            ("Tags", "multipleSelects"),
            ("Amount", "number"),
            ("Due", "date"),
            ("At", "dateTime"),
        ],
        sales(),
    )
    .await;
    let recs = all_records(&client, &t, ListQuery::default()).await;
    assert_eq!(recs.len(), N);
    let c = &h.client;
    let metrics = json!([
        "sum:Amount",
        "avg:Amount",
        "min:Amount",
        "max:Amount",
        "median:Amount",
        "distinct:Tags",
        "fill_rate:Amount",
        "count:Amount"
    ]);

    // By a single select, with progress between pages; largest group first.
    let (r, progress) = call_with_progress(
        c,
        "aggregate_records",
        json!({"base_id": DEMO, "table_id": t, "group_by": ["Region"], "metrics": metrics}),
    )
    .await;
    assert_ne!(r.is_error, Some(true), "{}", text(&r));
    let out = r.structured_content.clone().unwrap();
    assert!(!progress.is_empty(), "no progress reported");
    assert_eq!(out["scanned"], N);
    assert_eq!(out["requests"], 3);
    assert_eq!(out["capped"], false);
    assert_eq!(out["group_by"], json!(["Region"]));
    let mut by_region: BTreeMap<Option<String>, Vec<&Record>> = BTreeMap::new();
    for r in &recs {
        let k = r
            .fields
            .get("Region")
            .and_then(Value::as_str)
            .map(str::to_owned);
        by_region.entry(k).or_default().push(r);
    }
    let groups = out["groups"].as_array().unwrap();
    assert_eq!(groups.len(), by_region.len());
    assert_eq!(out["group_count"], by_region.len());
    let counts: Vec<u64> = groups
        .iter()
        .map(|g| g["count"].as_u64().unwrap())
        .collect();
    assert!(counts.windows(2).all(|w| w[0] >= w[1]), "{counts:?}");
    let check = |g: &Value, want: &Value| {
        let v = &g["values"];
        assert_eq!(g["count"], want["count"], "{g}");
        close(&v["sum(Amount)"], &want["sum"], "sum");
        close(&v["avg(Amount)"], &want["avg"], "avg");
        close(&v["min(Amount)"], &want["min"], "min");
        close(&v["max(Amount)"], &want["max"], "max");
        close(&v["median(Amount)"], &want["median"], "median");
        assert_eq!(v["distinct(Tags)"], want["distinct_tags"], "{g}");
        close(&v["fill_rate(Amount)"], &want["fill_rate"], "fill_rate");
        assert_eq!(v["count(Amount)"], want["filled"], "{g}");
    };
    for g in groups {
        let key = g["key"][0].as_str().map(str::to_owned);
        check(g, &expected(&by_region[&key]));
    }
    let all: Vec<&Record> = recs.iter().collect();
    check(&out["totals"], &expected(&all));

    // A multi-select: each choice counts (a record with two tags is in both groups).
    let tags = ok(
        c,
        "aggregate_records",
        json!({"base_id": DEMO, "table_id": t, "group_by": ["Tags"]}),
    )
    .await;
    let count_of = |key: Value| {
        tags["groups"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["key"] == json!([key]))
            .map(|g| g["count"].as_u64().unwrap())
    };
    let with = |t: &str| {
        recs.iter()
            .filter(|r| {
                r.fields
                    .get("Tags")
                    .and_then(Value::as_array)
                    .is_some_and(|a| a.contains(&json!(t)))
            })
            .count() as u64
    };
    assert_eq!(count_of(json!("a")), Some(with("a")));
    assert_eq!(count_of(json!("b")), Some(with("b")));
    assert_eq!(
        count_of(Value::Null),
        Some(
            recs.iter()
                .filter(|r| !r.fields.contains_key("Tags"))
                .count() as u64
        )
    );

    // Date buckets: a date by quarter, a date-time by day in a time zone; in bucket order.
    for (group, tz, bucket) in [
        ("Due:quarter", "UTC", "quarter"),
        ("At:day", "Asia/Tokyo", "day"),
        ("Due:week", "UTC", "week"),
    ] {
        let out = ok(
            c,
            "aggregate_records",
            json!({"base_id": DEMO, "table_id": t, "group_by": [group], "time_zone": tz, "metrics": ["sum:Amount"]}),
        )
        .await;
        let field = group.split(':').next().unwrap();
        assert_eq!(out["group_by"], json!([format!("{field} ({bucket})")]));
        let zone: chrono_tz::Tz = tz.parse().unwrap();
        let mut want: BTreeMap<String, (u64, f64)> = BTreeMap::new();
        for r in &recs {
            let s = r.fields[field].as_str().unwrap();
            let d = if s.len() == 10 {
                NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
            } else {
                DateTime::parse_from_rfc3339(s)
                    .unwrap()
                    .with_timezone(&zone)
                    .date_naive()
            };
            let key = match bucket {
                "quarter" => format!("{}-Q{}", d.year(), d.month0() / 3 + 1),
                "week" => format!("{}-W{:02}", d.iso_week().year(), d.iso_week().week()),
                _ => d.format("%Y-%m-%d").to_string(),
            };
            let e = want.entry(key).or_default();
            e.0 += 1;
            e.1 += r
                .fields
                .get("Amount")
                .and_then(Value::as_f64)
                .unwrap_or(0.0);
        }
        let groups = out["groups"].as_array().unwrap();
        assert_eq!(out["group_count"], want.len(), "{group}");
        let listed = groups.len().min(50);
        let keys: Vec<String> = groups
            .iter()
            .map(|g| g["key"][0].as_str().unwrap().to_owned())
            .collect();
        let want_keys: Vec<String> = want.keys().take(listed).cloned().collect();
        assert_eq!(keys, want_keys, "{group}: groups in bucket order");
        for g in groups {
            let (n, sum) = want[g["key"][0].as_str().unwrap()];
            assert_eq!(g["count"], n, "{group} {g}");
            close(&g["values"]["sum(Amount)"], &json!(sum), group);
        }
        // Past 50 groups the rest are summed in `other`.
        if want.len() > 50 {
            let rest: u64 = want.values().skip(50).map(|(n, _)| n).sum();
            assert_eq!(out["other"]["count"], rest, "{group}");
            assert!(out["note"].as_str().unwrap().contains("other"), "{out}");
        } else {
            assert!(out.get("other").is_none(), "{out}");
        }
    }

    // max_scan caps the scan and says so.
    let capped = ok(
        c,
        "aggregate_records",
        json!({"base_id": DEMO, "table_id": t, "group_by": ["Region"], "max_scan": 120}),
    )
    .await;
    assert_eq!(capped["scanned"], 120);
    assert_eq!(capped["capped"], true);
    assert_eq!(capped["requests"], 2);
    assert_eq!(capped["totals"]["count"], 120);
    assert!(
        capped["note"].as_str().unwrap().contains("max_scan"),
        "{capped}"
    );

    // A filter narrows what is aggregated.
    let north = ok(
        c,
        "aggregate_records",
        json!({"base_id": DEMO, "table_id": t, "filter_by_formula": "{Region}='North'", "metrics": ["sum:Amount"]}),
    )
    .await;
    let want = expected(&by_region[&Some("North".to_owned())]);
    assert_eq!(north["totals"]["count"], want["count"]);
    close(
        &north["totals"]["values"]["sum(Amount)"],
        &want["sum"],
        "north sum",
    );

    // Structured filters too, AND-ed with a formula.
    let north_tagged = ok(
        c,
        "aggregate_records",
        json!({"base_id": DEMO, "table_id": t, "group_by": ["Region"],
               "filters": {"conditions": [{"field": "Tags", "op": "has_any_of", "value": ["a"]}]},
               "filter_by_formula": "{Region}='North'"}),
    )
    .await;
    let want = by_region[&Some("North".to_owned())]
        .iter()
        .filter(|r| {
            r.fields
                .get("Tags")
                .and_then(Value::as_array)
                .is_some_and(|a| a.contains(&json!("a")))
        })
        .count();
    assert!(want > 0);
    assert_eq!(north_tagged["totals"]["count"], want, "{north_tagged}");
    assert_eq!(north_tagged["groups"][0]["key"], json!(["North"]));
    let counted = ok(
        c,
        "count_records",
        json!({"base_id": DEMO, "table_id": t,
               "filters": {"conditions": [{"field": "Tags", "op": "has_any_of", "value": ["a"]}]},
               "filter_by_formula": "{Region}='North'"}),
    )
    .await;
    assert_eq!(counted["count"], want);

    // Mistakes are errors with a suggestion, before any request.
    let e = err(
        c,
        "aggregate_records",
        json!({"base_id": DEMO, "table_id": t, "group_by": ["Regoin"]}),
    )
    .await;
    assert!(e.contains("Region"), "{e}");
    let e = err(
        c,
        "aggregate_records",
        json!({"base_id": DEMO, "table_id": t, "metrics": ["total:Amount"]}),
    )
    .await;
    assert!(e.contains("sum"), "{e}");
    let e = err(
        c,
        "aggregate_records",
        json!({"base_id": DEMO, "table_id": t, "group_by": ["Region:month"]}),
    )
    .await;
    assert!(e.contains("not a date field"), "{e}");

    // count_records: the table, a formula, and a cap.
    let all = ok(c, "count_records", json!({"base_id": DEMO, "table_id": t})).await;
    assert_eq!(all["count"], N);
    assert_eq!(all["capped"], false);
    assert_eq!(all["requests"], 3);
    let north = ok(
        c,
        "count_records",
        json!({"base_id": DEMO, "table_id": t, "filter_by_formula": "{Region}='North'"}),
    )
    .await;
    assert_eq!(north["count"], by_region[&Some("North".to_owned())].len());
    let capped = ok(
        c,
        "count_records",
        json!({"base_id": DEMO, "table_id": t, "max_scan": 100}),
    )
    .await;
    assert_eq!(capped["count"], 100);
    assert_eq!(capped["capped"], true);
    assert!(
        capped["note"].as_str().unwrap().contains("at least 100"),
        "{capped}"
    );
}

#[tokio::test]
async fn count_records_follows_a_view() {
    let h = harness().await;
    let client = client_for(&h.sandbox);
    let open = all_records(
        &client,
        "Tasks",
        ListQuery {
            view: Some("Open tasks".into()),
            ..ListQuery::default()
        },
    )
    .await;
    let every = all_records(&client, "Tasks", ListQuery::default()).await;
    assert!(!open.is_empty() && open.len() < every.len());
    let c = &h.client;
    let counted = ok(
        c,
        "count_records",
        json!({"base_id": DEMO, "table_id": "Tasks", "view": "Open tasks"}),
    )
    .await;
    assert_eq!(counted["count"], open.len());
    assert_eq!(counted["requests"], open.len().div_ceil(100));
    let total = ok(
        c,
        "count_records",
        json!({"base_id": DEMO, "table_id": "Tasks"}),
    )
    .await;
    assert_eq!(total["count"], every.len());

    // Linked records group by the linked record's primary field value.
    let projects = all_records(&client, "Projects", ListQuery::default()).await;
    let name_of: BTreeMap<String, String> = projects
        .iter()
        .map(|p| {
            (
                p.id.to_string(),
                p.fields["Name"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let mut want: BTreeMap<Option<String>, u64> = BTreeMap::new();
    for t in &every {
        match t.fields.get("Project").and_then(Value::as_array) {
            Some(ids) if !ids.is_empty() => {
                for id in ids {
                    *want
                        .entry(Some(name_of[id.as_str().unwrap()].clone()))
                        .or_default() += 1;
                }
            }
            _ => *want.entry(None).or_default() += 1,
        }
    }
    let by_project = ok(
        c,
        "aggregate_records",
        json!({"base_id": DEMO, "table_id": "Tasks", "group_by": ["Project"]}),
    )
    .await;
    let got: BTreeMap<Option<String>, u64> = by_project["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["key"][0].as_str().map(str::to_owned),
                g["count"].as_u64().unwrap(),
            )
        })
        .collect();
    assert!(want.len() > 1 && want.len() <= 50, "{want:?}");
    assert_eq!(got, want);
    let e = err(
        c,
        "count_records",
        json!({"base_id": DEMO, "table_id": "Tasks", "view": "Open taks"}),
    )
    .await;
    assert!(e.contains("Open tasks"), "{e}");
}
