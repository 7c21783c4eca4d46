#!/usr/bin/env bash
# Import benchmark (issue #14): N CSV rows (default 10,000) into one table of the sandbox, run as
# its own process with Airtable's limits on (5 requests/s per base, 30 s penalty), through
# `airtable-mcp import --apply`. Prints the time against the physical limit (5 req/s x 10
# records = 50 records/s) and the number of 429s the sandbox answered.
# Usage: tools/bench-import.sh [ROWS] (uses target/debug/airtable-mcp unless BIN is set).
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${1:-10000}
BIN=${BIN:-target/debug/airtable-mcp}
[ -x "$BIN" ] || cargo build --bin airtable-mcp
WORK=$(mktemp -d)
trap 'kill -INT "$SB" 2>/dev/null || true; rm -rf "$WORK"' EXIT
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
AIRTABLE_MCP_LOG=info "$BIN" sandbox --seed demo --port "$PORT" >"$WORK/sandbox.out" 2>"$WORK/sandbox.err" &
SB=$!
for _ in $(seq 50); do grep -q AIRTABLE_API_URL "$WORK/sandbox.out" 2>/dev/null && break; sleep 0.2; done
export AIRTABLE_API_URL="http://127.0.0.1:$PORT" AIRTABLE_API_KEY=sandbox-token
BASE=$(sed -n 's/.*AIRTABLE_DEMO_BASE=\([^ ]*\).*/\1/p' "$WORK/sandbox.out")
# A fresh table: Name (text), Qty (number), Note (long text).
curl -sf -X POST "$AIRTABLE_API_URL/v0/meta/bases/$BASE/tables" -H "Authorization: Bearer $AIRTABLE_API_KEY" \
  -H 'Content-Type: application/json' \
  -d '{"name":"Bench import","fields":[{"name":"Name","type":"singleLineText"},{"name":"Qty","type":"number","options":{"precision":0}},{"name":"Note","type":"multilineText"}]}' >/dev/null
python3 - "$ROWS" >"$WORK/rows.csv" <<'PY'
import sys
n = int(sys.argv[1])
print("Name,Qty,Note")
for i in range(n):
    print(f'Row {i},{i},"note {i}, with a comma"')
PY
sleep 1.2 # let the rate window clear
START=$(date +%s.%N)
"$BIN" import "$WORK/rows.csv" --base "$BASE" --table "Bench import" --apply --no-journal >"$WORK/out.json"
END=$(date +%s.%N)
kill -INT "$SB"; wait "$SB" || true
python3 - "$WORK/out.json" "$START" "$END" "$ROWS" "$WORK/sandbox.err" <<'PY'
import json, re, sys
out = json.load(open(sys.argv[1])); t = float(sys.argv[3]) - float(sys.argv[2]); n = int(sys.argv[4])
log = open(sys.argv[5]).read()
m = re.findall(r"rate_limited=(\d+)", log)
limit = n / 50
print(f"rows={n} written={len(out.get('written', []))} not_written={len(out.get('not_written', []))}")
print(f"time={t:.1f}s physical_limit={limit:.0f}s ratio={t/limit:.2f} 429s={m[-1] if m else 'unknown'}")
PY
