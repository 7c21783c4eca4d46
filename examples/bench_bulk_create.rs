//! Benchmark: create 1,000 records in one base against a loopback server that enforces
//! Airtable's rate limit strictly (more than 5 requests within any 1 s window to a base -> 429
//! and a 30 s lockout). Prints the elapsed time, the requests and the 429s.
//!
//! The floor is 1,000 records / 10 per request / 5 per second = 20 s; the goal is within 5 %
//! (<= 21 s) with no 429.
//!
//! ```text
//! cargo run --release --example bench_bulk_create -- [--records N] [--runs N] [--burst B] [--margin M]
//! ```
//! `--burst` and `--margin` override the client's limiter (defaults 1 and 0.03) to compare.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use airtable_mcp::airtable::{BaseId, Client, ClientConfig, Fields, WriteOptions};
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

#[tokio::main]
async fn main() {
    let records: usize = arg("--records", 1000);
    let runs: usize = arg("--runs", 1);
    let burst: u32 = arg("--burst", 1);
    let margin: f64 = arg(
        "--margin",
        airtable_mcp::airtable::rate_limit::SPACING_MARGIN,
    );
    let floor = records.div_ceil(10) as f64 / 5.0;
    println!(
        "bench_bulk_create: {records} records, chunks of 10, strict server 5 req/s per base + 30 s lockout; limiter burst {burst}, margin {margin}"
    );
    let mut times = Vec::new();
    for run in 1..=runs {
        let fx = Fixture::start_with(Some(RateLimit {
            per_second: 5,
            penalty: Duration::from_secs(30),
        }))
        .await;
        let mut cfg = ClientConfig::new(fx.url.clone(), SecretString::from(TOKEN));
        cfg.limiter_burst = burst;
        cfg.limiter_margin = margin;
        let client = Client::new(cfg).unwrap();
        let base: BaseId = BASE.parse().unwrap();
        let rows: Vec<Fields> = (0..records)
            .map(|i| {
                json!({"Name": format!("Record {i}"), "Index": i})
                    .as_object()
                    .unwrap()
                    .clone()
            })
            .collect();
        let start = Instant::now();
        let out = client
            .create_records(&base, "Bench", rows, &WriteOptions::default())
            .await;
        let elapsed = start.elapsed();
        let stats = client.stats();
        let server_requests = fx.state.log().len();
        let server_429 = fx.state.lock().rate_limited;
        let stored = fx.state.records("Bench").len();
        println!(
            "run {run}: elapsed {:.2} s ({:.1} % over the {floor:.1} s floor), requests {server_requests} (client attempts {}), 429s {server_429}, retries {}, limiter wait {:.2} s, records stored {stored}/{records}, complete {}",
            elapsed.as_secs_f64(),
            (elapsed.as_secs_f64() / floor - 1.0) * 100.0,
            stats.requests,
            stats.retries,
            stats.limiter_wait.as_secs_f64(),
            out.is_complete(),
        );
        times.push(elapsed.as_secs_f64());
    }
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let median = times[times.len() / 2];
    println!(
        "median elapsed {median:.2} s over {runs} run(s); ratio to floor {:.3}",
        median / floor
    );
}
