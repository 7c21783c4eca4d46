#!/usr/bin/env bash
# A scripted MCP session over stdio, by hand, with nothing but bash:
#   initialize -> notifications/initialized -> tools/list -> tools/call list_bases
#   -> tools/call list_tables -> tools/call get_records
# against `airtable-mcp serve --sandbox` (an in-process Airtable-compatible sandbox seeded with
# the demo base: no account, no token, no network).
#
# Usage: examples/stdio_session.sh            (uses target/release/airtable-mcp, else PATH)
#        AIRTABLE_MCP_BIN=/path/to/airtable-mcp examples/stdio_session.sh
# Each request is printed with ">>", each response with "<<" (cut to 400 characters).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
BIN="${AIRTABLE_MCP_BIN:-$here/../target/release/airtable-mcp}"
if [ ! -x "$BIN" ]; then
  BIN="$(command -v airtable-mcp || true)"
fi
if [ -z "$BIN" ] || [ ! -x "$BIN" ]; then
  echo "airtable-mcp not found: run 'cargo build --release' or set AIRTABLE_MCP_BIN" >&2
  exit 1
fi

# The server's logs go to stderr; keep them out of the transcript.
coproc MCP { exec "$BIN" serve --sandbox 2>/dev/null; }
trap 'kill "$MCP_PID" 2>/dev/null || true' EXIT

send() {
  echo ">> $1"
  printf '%s\n' "$1" >&"${MCP[1]}"
}

# Read lines until the response to request id $1 arrives (notifications may come first).
recv() {
  local line
  while IFS= read -r -t 30 line <&"${MCP[0]}"; do
    if [[ "$line" == *"\"id\":$1,"* || "$line" == *"\"id\":$1}"* ]]; then
      REPLY_LINE="$line"
      echo "<< ${line:0:400}$([ ${#line} -gt 400 ] && echo ' ...')"
      return 0
    fi
    echo "<< (notification) ${line:0:200}"
  done
  echo "no response to request $1 within 30 s" >&2
  exit 1
}

send '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"stdio_session.sh","version":"1.0"}}}'
recv 1
send '{"jsonrpc":"2.0","method":"notifications/initialized"}'

send '{"jsonrpc":"2.0","id":2,"method":"tools/list"}'
recv 2
tools=$(grep -o '"name":"[a-z_]*"' <<<"$REPLY_LINE" | cut -d'"' -f4 | sort -u | tr '\n' ' ')
echo "   tools: $tools"

send '{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"list_bases","arguments":{}}}'
recv 3
base=$(grep -o 'app[A-Za-z0-9]\{14\}' <<<"$REPLY_LINE" | head -n1)
echo "   base: $base"

send "{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"tools/call\",\"params\":{\"name\":\"list_tables\",\"arguments\":{\"base_id\":\"$base\"}}}"
recv 4
table=$(grep -o 'tbl[A-Za-z0-9]\{14\}' <<<"$REPLY_LINE" | head -n1)
echo "   table: $table"

send "{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"tools/call\",\"params\":{\"name\":\"get_records\",\"arguments\":{\"base_id\":\"$base\",\"table_id\":\"$table\",\"max_records\":3}}}"
recv 5
if [[ "$REPLY_LINE" == *'"isError":true'* ]]; then
  echo "get_records failed" >&2
  exit 1
fi
echo "session OK"
