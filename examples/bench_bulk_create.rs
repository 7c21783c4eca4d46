//! Benchmark: create 1,000 records in one base against a loopback server that enforces
//! Airtable's rate limit strictly (more than 5 requests within any 1 s window to a base -> 429
//! and a 30 s lockout). Prints the elapsed time, the requests and the 429s.
//!
//! The floor is 1,000 records / 10 per request / 5 per second = 20 s; the goal is within 5 %
//! (<= 21 s) with no 429.
//!
//! ```text
//! cargo run --release --example bench_bulk_create -- [--server sandbox|fixture] [--records N] [--runs N] [--margin M]
//! ```
//! `--server sandbox` (default) uses the project's Airtable-compatible sandbox (SQLite, rate
//! limit 5/s and 30 s penalty); `--server fixture` the in-memory test fixture of tests/integration/support.
//! `--margin` overrides the widening of the client's sliding window (default 0.03: 5 requests
//! per 1.03 s) to compare. The last lines are `FIGURE bulk_s <median>` and `FIGURE bulk_429
//! <total>` for tools/bench.sh.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../tests/integration/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use airtable_mcp::airtable::{
    BaseId, Client, ClientConfig, CreateTable, FieldSpec, FieldType, Fields, ListQuery,
    WriteOptions,
};
use airtable_mcp::sandbox::{self, SandboxConfig, Seed};
use secrecy::SecretString;
use serde_json::json;
use support::{BASE, Fixture, RateLimit, TOKEN};

fn arg<T: std::str::FromStr>(name: &str, default: T) -> T {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// What a run measured.
struct Run {
    elapsed: Duration,
    requests: u64,
    rate_limited: u64,
    stored: usize,
    complete: bool,
    client: airtable_mcp::airtable::ClientStats,
}

fn client_for(url: &url::Url, margin: f64) -> Client {
    let mut cfg = ClientConfig::new(url.clone(), SecretString::from(TOKEN));
    cfg.limiter_margin = margin;
    Client::new(cfg).unwrap()
}

fn rows(n: usize) -> Vec<Fields> {
    (0..n)
        .map(|i| {
            json!({"Name": format!("Record {i}"), "Index": i})
                .as_object()
                .unwrap()
                .clone()
        })
        .collect()
}

async fn run_fixture(records: usize, margin: f64) -> Run {
    let fx = Fixture::start_with(Some(RateLimit {
        per_second: 5,
        penalty: Duration::from_secs(30),
    }))
    .await;
    let client = client_for(&fx.url, margin);
    let base: BaseId = BASE.parse().unwrap();
    let start = Instant::now();
    let out = client
        .create_records(&base, "Bench", rows(records), &WriteOptions::default())
        .await;
    let elapsed = start.elapsed();
    let rate_limited = fx.state.lock().rate_limited as u64;
    Run {
        elapsed,
        requests: fx.state.log().len() as u64,
        rate_limited,
        stored: fx.state.records("Bench").len(),
        complete: out.is_complete(),
        client: client.stats(),
    }
}

async fn run_sandbox(records: usize, margin: f64) -> Run {
    let cfg = SandboxConfig {
        token: TOKEN.into(),
        seed: Seed::Demo,
        rate_limit: 5,
        penalty: Duration::from_secs(30),
        ..Default::default()
    };
    let sb = sandbox::spawn(cfg, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let client = client_for(&sb.url(), margin);
    let base: BaseId = sandbox::DEMO_BASE_ID.parse().unwrap();
    let table = client
        .create_table(
            &base,
            &CreateTable {
                name: "Bench".into(),
                description: None,
                fields: vec![
                    FieldSpec {
                        name: "Name".into(),
                        field_type: FieldType::SingleLineText,
                        description: None,
                        options: None,
                    },
                    FieldSpec {
                        name: "Index".into(),
                        field_type: FieldType::Number,
                        description: None,
                        options: Some(json!({"precision": 0})),
                    },
                ],
            },
        )
        .await
        .unwrap();
    let before = sb.stats();
    let setup_requests = client.stats().requests;
    let start = Instant::now();
    let out = client
        .create_records(
            &base,
            table.id.as_str(),
            rows(records),
            &WriteOptions::default(),
        )
        .await;
    let elapsed = start.elapsed();
    let after = sb.stats();
    let mut client_stats = client.stats();
    client_stats.requests -= setup_requests;
    let stored = client
        .list_all_records(&base, table.id.as_str(), ListQuery::new())
        .await
        .map(|r| r.len())
        .unwrap_or(0);
    sb.shutdown().await;
    Run {
        elapsed,
        requests: after.requests - before.requests,
        rate_limited: after.rate_limited - before.rate_limited,
        stored,
        complete: out.is_complete(),
        client: client_stats,
    }
}

#[tokio::main]
async fn main() {
    let server: String = arg("--server", "sandbox".to_owned());
    let records: usize = arg("--records", 1000);
    let runs: usize = arg("--runs", 1);
    let margin: f64 = arg(
        "--margin",
        airtable_mcp::airtable::rate_limit::WINDOW_MARGIN,
    );
    let floor = records.div_ceil(10) as f64 / 5.0;
    println!(
        "bench_bulk_create: {records} records in chunks of 10 against the {server} (strict 5 req/s per base, 30 s lockout); client sliding window 5 per {:.2} s",
        airtable_mcp::airtable::rate_limit::window_for(margin).as_secs_f64()
    );
    let mut times = Vec::new();
    let mut total_429 = 0;
    for run in 1..=runs {
        let r = if server == "fixture" {
            run_fixture(records, margin).await
        } else {
            run_sandbox(records, margin).await
        };
        println!(
            "run {run}: elapsed {:.2} s ({:+.1} % vs the {floor:.1} s floor), requests {} (client attempts {}), 429s {} (client saw {}), retries {}, limiter wait {:.2} s, records stored {}/{records}, complete {}",
            r.elapsed.as_secs_f64(),
            (r.elapsed.as_secs_f64() / floor - 1.0) * 100.0,
            r.requests,
            r.client.requests,
            r.rate_limited,
            r.client.rate_limited,
            r.client.retries,
            r.client.limiter_wait.as_secs_f64(),
            r.stored,
            r.complete,
        );
        times.push(r.elapsed.as_secs_f64());
        total_429 += r.rate_limited;
    }
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let median = times[times.len() / 2];
    println!(
        "median elapsed {median:.2} s over {runs} run(s); ratio to the floor {:.3}",
        median / floor
    );
    println!("FIGURE bulk_s {median:.2}");
    println!("FIGURE bulk_429 {total_429}");
}
