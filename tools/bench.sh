#!/usr/bin/env bash
# One benchmark command (issue 12): builds release, then prints every figure the closing note
# and the README quote, from one run against the sandbox with its strict rate limit:
#   1. 5 parallel reads after a quiet second (and the 429s), 2. text bytes of a 100-record
#   get_records result, 3. overhead over the direct API call, 4. cold start (and its floor:
#   examples/stdio_floor.rs), 5. peak RSS,
#   6. bulk create of 1,000 records (median of 3) with its 429s.
# Env: AIRTABLE_MCP_BIN (server binary to measure, default target/release/airtable-mcp),
#      BENCH_SESSIONS, BENCH_PARALLEL_RUNS, BENCH_CALLS, BENCH_STARTS (see examples/bench_server.rs),
#      BENCH_BULK_RUNS (default 3), BENCH_BULK_BIN (bulk benchmark binary, default the example),
#      BENCH_SKIP_BUILD=1 (use the binaries as they are).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
  # Two commands: built together with the examples, the binary's dependencies would take the
  # features of the dev-dependencies too, their function names would change and the code layout
  # (tools/symbol-order.txt, written from a binary built alone) would no longer match.
  cargo build --release --locked --bin airtable-mcp
  # The benchmark's own programs: profile bench-tools (release without its whole-program step).
  cargo build --profile bench-tools --locked --example bench_server --example bench_bulk_create --example stdio_floor
fi
bin="${AIRTABLE_MCP_BIN:-target/release/airtable-mcp}"
# The code layout (build.rs): how much of tools/symbol-order.txt this binary still matches. Names
# change with the code; when the share falls, tools/symbol-order.sh writes the list afresh.
if command -v nm >/dev/null && [ -f tools/symbol-order.txt ]; then
  listed=$(grep -c . tools/symbol-order.txt)
  found=$(nm --defined-only "$bin" 2>/dev/null |
    awk 'NR == FNR { want[$1] = 1; next } ($3 in want) && !seen[$3]++ { n++ } END { print n + 0 }' \
      tools/symbol-order.txt -)
  echo "code layout: $found of $listed functions of tools/symbol-order.txt are in $bin"
  if [ "$found" -lt $((listed * 9 / 10)) ]; then
    echo "  (under 90%: the list is stale and peak RSS and cold start suffer; run tools/symbol-order.sh)"
  fi
fi
out=$(mktemp)
trap 'rm -f "$out"' EXIT
target/bench-tools/examples/bench_server | tee "$out"
echo
"${BENCH_BULK_BIN:-target/bench-tools/examples/bench_bulk_create}" --runs "${BENCH_BULK_RUNS:-3}" | tee -a "$out"

fig() { awk -v k="$1" '$1 == "FIGURE" && $2 == k { print $3 }' "$out" | tail -1; }
echo
echo "| figure | value | goal |"
echo "|---|---|---|"
echo "| 5 parallel reads after a quiet second (median) | $(fig parallel_reads_ms) ms, $(fig rate_limited) x 429 | <= 60 ms, 0 x 429 |"
echo "| text bytes of a 100-record get_records result | $(fig text_bytes) B | <= 21,794 B |"
echo "| overhead over the direct API call, 100 records, calls 250 ms apart (median) | $(fig overhead_ms) ms | <= 0.5 ms |"
echo "| (the same pairs to the answer's last byte, the client's parse left out) | $(fig overhead_read_ms) ms | - |"
echo "| (the same pairs, the sandbox's own time on each request taken out of both sides) | $(fig overhead_own_ms) ms | - |"
echo "| (floor: a ping round trip after the same pause, median) | $(fig ping_ms) ms | - |"
echo "| (the server's CPU time per 100-record call, all threads, user + kernel; per ping) | $(fig server_cpu_us) us; $(fig server_cpu_ping_us) us | - |"
echo "| cold start, spawn -> tools/list answered (median) | $(fig cold_start_ms) ms | <= 5 ms |"
echo "| (floor: the same exchange with a minimal responder, same answers, median) | $(fig cold_start_floor_ms) ms | - |"
echo "| peak RSS over a session (VmHWM, median) | $(fig peak_rss_mb) MB | <= 14 MB |"
echo "| bulk create, 1,000 records, strict 5/s + 30 s lockout (median) | $(fig bulk_s) s, $(fig bulk_429) x 429 | <= 21 s, 0 x 429 |"
