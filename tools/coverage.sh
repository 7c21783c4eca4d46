#!/usr/bin/env bash
# Line coverage of src/ by the Rust test suite (unit and integration tests; doctest coverage needs a
# nightly toolchain), with cargo-tarpaulin; installs it (cargo install --locked) when missing.
# Goal: >= 80 %.
# Long and CPU-heavy (its own instrumented build): not part of tools/test.sh.
#   tools/coverage.sh              # prints per-file lines and the total
#   tools/coverage.sh --out Html   # extra tarpaulin flags are passed through (tarpaulin-report.html)
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup-test-env.sh

if ! cargo tarpaulin --version >/dev/null 2>&1; then
  echo "coverage: installing cargo-tarpaulin" >&2
  cargo install --locked cargo-tarpaulin
fi

# The keyring tests need the same D-Bus session and Secret Service as tools/test.sh.
dbus-run-session -- tools/with-secret-service.sh \
  cargo tarpaulin --locked --engine llvm --skip-clean --target-dir target/tarpaulin \
    --all-targets --exclude-files 'tests/*' 'examples/*' \
    --timeout 300 --out Stdout "$@"
