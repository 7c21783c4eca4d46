#!/usr/bin/env bash
# The whole test suite, exactly as CI runs it (.ci/run calls this script).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup-test-env.sh

cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
# The end-to-end tests drive the release binary through the official Python MCP SDK.
cargo build --release --locked --bin airtable-mcp
# The keyring tests need a D-Bus session with an unlocked Secret Service collection.
dbus-run-session -- tools/with-secret-service.sh cargo test --locked --all-targets
# End-to-end: the release binary under the official MCP Python SDK over stdio, in its legacy and
# 2026-07-28 protocol modes (initialize, tools/list, a call of every tool).
.venv/bin/python -m pytest -q tests/python
