#!/usr/bin/env bash
# The whole test suite, exactly as CI runs it (.ci/run calls this script).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup-test-env.sh

cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
# The end-to-end tests drive the release binary through the official Python MCP SDK.
cargo build --release --locked --bin airtable-mcp
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
# The keyring tests need a D-Bus session with an unlocked Secret Service collection.
dbus-run-session -- tools/with-secret-service.sh cargo test --locked --all-targets 2>&1 | tee "$log"
# `--all-targets` does not run doctests: the examples in the docs are tests too.
cargo test --locked --doc 2>&1 | tee -a "$log"
# End-to-end: the release binary under the official MCP Python SDK over stdio, in its legacy and
# 2026-07-28 protocol modes (initialize, tools/list, a call of every tool).
.venv/bin/python -m pytest -q tests/python 2>&1 | tee -a "$log"

# One closing line for the whole run (cargo prints one summary per test binary, pytest one).
awk '/^test result:|[0-9]+ (passed|failed).* in [0-9.]+s/ {
       for (i = 2; i <= NF; i++) {
         if ($i ~ /^passed[;,]?$/) p += $(i - 1)
         if ($i ~ /^failed[;,]?$/) f += $(i - 1)
       }
     }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
