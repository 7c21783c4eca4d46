#!/usr/bin/env bash
# Builds the release binary and the server benchmark, then prints its figures: cold start
# (spawn until tools/list is answered), per-call overhead of get_records over MCP stdio versus
# a direct HTTP call to the sandbox, and the bytes of a 100-record get_records result.
# Env: BENCH_CALLS (default 200), BENCH_STARTS (default 10), BENCH_GAP_MS (pause before each call,
# default 0; issue 12 measures 250). Also prints the stdio server's peak RSS (VmHWM).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked --bin airtable-mcp --example bench_server
exec target/release/examples/bench_server
