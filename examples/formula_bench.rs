//! Throughput of the formula engine: parse + check of typical filterByFormula texts, and
//! evaluation over many records (what the sandbox does for a filtered list).
//!
//! Run: `cargo run --release --example formula_bench [records]` (default 100000).

use std::time::{Duration, Instant};

use airtable_mcp::formula::{self, EvalContext, Value};
use chrono::{DateTime, TimeZone, Utc};

struct Rec {
    id: String,
    name: Value,
    status: Value,
    price: Value,
    tags: Value,
    due: Value,
    created: DateTime<Utc>,
    now: DateTime<Utc>,
}

impl EvalContext for Rec {
    fn field(&self, name: &str) -> Option<Value> {
        Some(match name {
            "Name" => self.name.clone(),
            "Status" => self.status.clone(),
            "Price" => self.price.clone(),
            "Tags" => self.tags.clone(),
            "Due" => self.due.clone(),
            _ => return None,
        })
    }
    fn record_id(&self) -> &str {
        &self.id
    }
    fn created_time(&self) -> DateTime<Utc> {
        self.created
    }
    fn now(&self) -> DateTime<Utc> {
        self.now
    }
}

const FORMULAS: &[&str] = &[
    "{Status} = 'Done'",
    "AND({Price} > 50, NOT({Status} = 'Done'))",
    "FIND(\"task 7\", LOWER({Name}&\"\"))",
    "IS_BEFORE({Due}, TODAY())",
    "OR(RECORD_ID() = 'rec00000000000042', RECORD_ID() = 'rec00000000000043')",
    "REGEX_MATCH({Name}, '^Task [0-9]+7$')",
    "DATETIME_DIFF(TODAY(), {Due}, 'days') > 30",
    "FIND('urgent', ARRAYJOIN({Tags}))",
];

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(100_000);
    let now = Utc
        .with_ymd_and_hms(2024, 6, 1, 12, 0, 0)
        .single()
        .ok_or("bad date")?;
    let records: Vec<Rec> = (0..n)
        .map(|i| Rec {
            id: format!("rec{i:014}"),
            name: Value::text(format!("Task {i}")),
            status: Value::text(["Todo", "Doing", "Done"][i % 3]),
            price: Value::Number((i % 100) as f64),
            tags: Value::Array(vec![
                Value::text(if i % 5 == 0 { "urgent" } else { "normal" }),
                Value::text("x"),
            ]),
            due: Value::text(format!("2024-{:02}-{:02}", i % 12 + 1, i % 28 + 1)),
            created: now,
            now,
        })
        .collect();
    let fields = ["Name", "Status", "Price", "Tags", "Due"];

    println!("formula engine: {n} records, median of 5 runs");
    println!(
        "{:<80} {:>10} {:>12} {:>9}",
        "formula", "check µs", "Mrec/s", "matched"
    );
    for src in FORMULAS {
        let mut parse_times = Vec::new();
        for _ in 0..200 {
            let t = Instant::now();
            let e = formula::check(src, &fields)?;
            parse_times.push(t.elapsed());
            std::hint::black_box(e);
        }
        let expr = formula::check(src, &fields)?;
        let mut eval_times = Vec::new();
        let mut matched = 0;
        for _ in 0..5 {
            let t = Instant::now();
            matched = records
                .iter()
                .filter(|r| formula::is_truthy(&formula::eval(&expr, *r)))
                .count();
            eval_times.push(t.elapsed());
        }
        let per = median(eval_times);
        let rate = n as f64 / per.as_secs_f64() / 1e6;
        println!(
            "{:<80} {:>10.1} {:>12.2} {:>9}",
            src,
            median(parse_times).as_secs_f64() * 1e6,
            rate,
            matched
        );
    }
    Ok(())
}
