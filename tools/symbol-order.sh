#!/usr/bin/env bash
# Regenerate tools/symbol-order.txt, the code layout of release builds (see build.rs), from
# callgrind profiles of the current release binary (tools/symbol_order.py says which), then
# rebuild with it. Function names carry hashes that change with the code, so run this after
# changes and before measuring or releasing; `tools/bench.sh` prints how much of the list the
# binary still matches. Needs valgrind and the test venv (tools/setup-test-env.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked --bin airtable-mcp
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# A copy: the rebuild below replaces target/release/airtable-mcp.
cp target/release/airtable-mcp "$work/airtable-mcp"
.venv/bin/python tools/symbol_order.py --bin "$work/airtable-mcp" --out tools/symbol-order.txt
cargo build --release --locked --bin airtable-mcp
