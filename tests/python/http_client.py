"""Drive airtable-mcp's HTTP transports with the official MCP Python SDK (2.x).

Usage (the Rust tests in tests/http_*.rs run this with .venv/bin/python):
  http_client.py --url http://127.0.0.1:PORT --transport streamable|sse --mode auto|legacy
                 [--sessions N] [--calls N] [--tool NAME] [--args JSON] [--progress]
Secrets come from the environment, never argv: MCP_BEARER (the HTTP bearer token) and
MCP_AIRTABLE_TOKENS (comma-separated; session i uses entry i % len, sent as X-Airtable-Token).
Prints one JSON object: {"sessions": [{"tools": [...], "results": [...], "progress": n,
"errors": [...]}...], "errors": total}. Exit status 0 even when calls fail: the caller asserts.
"""

import argparse
import asyncio
import json
import os
import sys

import httpx2
from mcp import Client
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client


def headers_for(index):
    headers = {}
    bearer = os.environ.get("MCP_BEARER")
    if bearer:
        headers["Authorization"] = f"Bearer {bearer}"
    tokens = [t for t in os.environ.get("MCP_AIRTABLE_TOKENS", "").split(",") if t]
    if tokens:
        headers["X-Airtable-Token"] = tokens[index % len(tokens)]
    return headers


def result_text(result):
    parts = []
    for block in result.content:
        text = getattr(block, "text", None)
        if text is not None:
            parts.append(text)
    return "".join(parts)


async def one_session(args, index):
    out = {"tools": [], "results": [], "progress": 0, "errors": []}
    headers = headers_for(index)
    if args.transport == "sse":
        transport = sse_client(f"{args.url}/sse", headers=headers, timeout=30, sse_read_timeout=120)
        http_client = None
    else:
        http_client = httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(60.0, read=120.0))
        transport = streamable_http_client(f"{args.url}/mcp", http_client=http_client)
    progress_seen = 0

    async def on_progress(progress, total, message):
        nonlocal progress_seen
        progress_seen += 1

    try:
        async with Client(transport, mode=args.mode, raise_exceptions=True) as client:
            tools = await client.list_tools()
            out["tools"] = sorted(t.name for t in tools.tools)
            call_args = json.loads(args.args)
            for _ in range(args.calls):
                try:
                    result = await client.call_tool(
                        args.tool,
                        call_args,
                        progress_callback=on_progress if args.progress else None,
                    )
                    out["results"].append(
                        {"text": result_text(result), "is_error": bool(result.is_error)}
                    )
                except Exception as e:  # a protocol error: record it, keep going
                    out["errors"].append(f"{type(e).__name__}: {e}")
    except BaseException as e:  # connection / handshake failures
        out["errors"].append(f"{type(e).__name__}: {e}")
    finally:
        if http_client is not None:
            await http_client.aclose()
    out["progress"] = progress_seen
    return out


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True)
    p.add_argument("--transport", choices=["streamable", "sse"], default="streamable")
    p.add_argument("--mode", default="auto")
    p.add_argument("--sessions", type=int, default=1)
    p.add_argument("--calls", type=int, default=1)
    p.add_argument("--tool", default="echo")
    p.add_argument("--args", default='{"text": "hello", "steps": 3}')
    p.add_argument("--progress", action="store_true")
    args = p.parse_args()
    sessions = await asyncio.gather(*(one_session(args, i) for i in range(args.sessions)))
    print(json.dumps({"sessions": sessions, "errors": sum(len(s["errors"]) for s in sessions)}))


if __name__ == "__main__":
    asyncio.run(main())
    sys.stdout.flush()
