#!/usr/bin/env bash
# Builds the release binary and the server benchmark, then prints the five server figures
# (parallel reads, text bytes, overhead, cold start, peak RSS) against the strict sandbox.
# tools/bench.sh runs this plus the bulk-create benchmark and prints one table.
# Env: see examples/bench_server.rs (BENCH_SESSIONS, BENCH_PARALLEL_RUNS, BENCH_CALLS, BENCH_STARTS).
set -euo pipefail
cd "$(dirname "$0")/.."
# Two commands, as in tools/bench.sh: the binary built alone keeps the code layout's names.
cargo build --release --locked --bin airtable-mcp
cargo build --profile bench-tools --locked --example bench_server --example stdio_floor
exec target/bench-tools/examples/bench_server
