#!/usr/bin/env bash
# Regenerate tools/symbol-order.txt, the code layout of release builds (see build.rs), from
# callgrind profiles (tools/symbol_order.py says of what) of the binary of each Cargo profile
# given (default: release, what `cargo install` and tools/bench.sh build), then rebuild release
# with it. With several profiles the file is their union: a build finds its own functions in it
# and lld skips the names it does not have. A profile is read through its symbol table, so it
# must keep one (release does; dist strips it).
#
# Function names carry hashes derived from the compiler version and the package (its source,
# dependencies and code): a new dependency renames most of them, an edit a few. Run this after
# such changes and before measuring or tagging a release; `tools/bench.sh` prints how much of the
# list the binary still matches. Needs valgrind and the test venv (tools/setup-test-env.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
profiles=("$@")
[ ${#profiles[@]} -gt 0 ] || profiles=(release)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
lists=()
for profile in "${profiles[@]}"; do
  cargo build --profile "$profile" --locked --bin airtable-mcp
  # A copy: the rebuild below replaces the binary.
  cp "target/$profile/airtable-mcp" "$work/airtable-mcp-$profile"
  .venv/bin/python tools/symbol_order.py --bin "$work/airtable-mcp-$profile" --out "$work/$profile.txt"
  lists+=("$work/$profile.txt")
done
awk '!seen[$0]++' "${lists[@]}" > tools/symbol-order.txt
echo "tools/symbol-order.txt: $(wc -l < tools/symbol-order.txt) functions (${profiles[*]})"
cargo build --release --locked --bin airtable-mcp
