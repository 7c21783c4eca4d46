#!/usr/bin/env bash
# Builds the release binary and the server benchmark, then prints the five server figures
# (parallel reads, text bytes, overhead, cold start, peak RSS) against the strict sandbox.
# tools/bench.sh runs this plus the bulk-create benchmark and prints one table.
# Env: see examples/bench_server.rs (BENCH_SESSIONS, BENCH_PARALLEL_RUNS, BENCH_CALLS, BENCH_STARTS).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked --bin airtable-mcp --example bench_server
exec target/release/examples/bench_server
