"""Call airtable-mcp from the official MCP Python SDK (pip install "mcp>=2.3,<3").

Starts `airtable-mcp serve --sandbox` (an in-process Airtable-compatible sandbox with the demo
base: no account, no token, no network) over stdio, then calls list_bases, list_tables and
get_records, printing what a model would see.

    python examples/python_client.py                 # target/release/airtable-mcp, else PATH
    AIRTABLE_MCP_BIN=/path/to/airtable-mcp python examples/python_client.py
    python examples/python_client.py --real          # your Airtable (token from the keyring or
                                                     # AIRTABLE_API_KEY)
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
from pathlib import Path

from mcp import Client, StdioServerParameters


def binary() -> str:
    env = os.environ.get("AIRTABLE_MCP_BIN")
    if env:
        return env
    built = Path(__file__).resolve().parent.parent / "target" / "release" / "airtable-mcp"
    if built.exists():
        return str(built)
    found = shutil.which("airtable-mcp")
    if not found:
        sys.exit("airtable-mcp not found: run `cargo build --release` or set AIRTABLE_MCP_BIN")
    return found


async def main() -> None:
    real = "--real" in sys.argv
    args = ["serve"] if real else ["serve", "--sandbox"]
    env = {k: v for k, v in os.environ.items() if k.startswith("AIRTABLE_") or k in ("HOME", "PATH")}
    env.setdefault("AIRTABLE_MCP_LOG", "warn")  # the server logs to stderr; keep it quiet
    server = StdioServerParameters(command=binary(), args=args, env=env)
    async with Client(server, mode="auto") as client:
        print(f"connected: protocol {client.protocol_version}")
        tools = await client.list_tools()
        print(f"{len(tools.tools)} tools: {', '.join(t.name for t in tools.tools)}")

        bases = await client.call_tool("list_bases", {})
        base_list = (bases.structured_content or {}).get("bases", [])
        if bases.is_error or not base_list:
            sys.exit(f"list_bases failed: {bases.content[0].text if bases.content else bases}")
        base_id = base_list[0]["id"]
        print(f"base {base_id}: {base_list[0].get('name')}")

        tables = await client.call_tool("list_tables", {"base_id": base_id})
        table_list = (tables.structured_content or {}).get("tables", [])
        if tables.is_error or not table_list:
            sys.exit(f"list_tables failed: {tables.content[0].text if tables.content else tables}")
        print("tables:", ", ".join(t["name"] for t in table_list))

        table = table_list[0]
        records = await client.call_tool(
            "get_records", {"base_id": base_id, "table_id": table["id"], "max_records": 5}
        )
        if records.is_error:
            sys.exit(f"get_records failed: {records.content[0].text}")
        data = records.structured_content or {}
        # Lists are compact: field names once in "columns" ("id" first), one array per record in
        # "rows" (null = empty cell; missing trailing values = empty).
        columns = data.get("columns", ["id"])
        rows = data.get("rows", [])
        print(f"{table['name']}: {len(rows)} records, has_more={data.get('has_more')}")
        for row in rows:
            fields = {c: v for c, v in zip(columns[1:], row[1:]) if v is not None}
            print(" ", row[0], json.dumps(fields, ensure_ascii=False)[:160])


if __name__ == "__main__":
    asyncio.run(main())
