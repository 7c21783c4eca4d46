"""Confirmation of risky writes (issue #10) through the official MCP Python SDK.

The RELEASE binary serves over stdio against a separate `airtable-mcp sandbox` process; a small
recording proxy between them sees every Airtable request, so "nothing was sent" is checked on
the wire: after a declined or cancelled delete the proxy saw only GET requests, and get_record
still finds the record.

For each protocol mode of the SDK (the legacy `initialize` handshake, where the server sends an
`elicitation/create` request; and 2026-07-28, where it answers `input_required` and the SDK
retries with the answer, MRTR) with an `elicitation_callback`:
- accept -> the record is deleted (one DELETE);
- decline, cancel -> nothing is sent and the result says so;
- under `--confirm never` no elicitation is sent (the callback is never called).

Run: cargo build --release --bin airtable-mcp && .venv/bin/python -m pytest -q tests/python
(AIRTABLE_MCP_BIN overrides the binary.)
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

import mcp_types as types
import pytest
from mcp import Client, StdioServerParameters

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("AIRTABLE_MCP_BIN", ROOT / "target" / "release" / "airtable-mcp"))
MODES = ["legacy", "2026-07-28"]
DEMO = "appDemoTracker001"
SANDBOX_TOKEN = "confirm-test-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Recorder:
    """A forwarding HTTP proxy that records the method and path of every request."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.seen: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def forward(self) -> None:
                with recorder.lock:
                    recorder.seen.append((self.command, self.path))
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                req = urllib.request.Request(
                    recorder.upstream + self.path, data=body, method=self.command
                )
                for h in ("Authorization", "Content-Type"):
                    if self.headers.get(h):
                        req.add_header(h, self.headers[h])
                try:
                    with urllib.request.urlopen(req, timeout=30) as resp:
                        status, ctype, data = resp.status, resp.headers.get("Content-Type"), resp.read()
                except urllib.error.HTTPError as e:
                    status, ctype, data = e.code, e.headers.get("Content-Type"), e.read()
                self.send_response(status)
                self.send_header("Content-Type", ctype or "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def writes(self) -> list[tuple[str, str]]:
        with self.lock:
            return [(m, p) for m, p in self.seen if m != "GET"]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def proxy() -> Iterator[Recorder]:
    """A fresh demo sandbox (its own process) behind a recording proxy."""
    if not BIN.exists():
        pytest.fail(f"{BIN} not found: build it with `cargo build --release --bin airtable-mcp`")
    port = free_port()
    env = {"PATH": os.environ.get("PATH", ""), "AIRTABLE_MCP_LOG": "warn"}
    sandbox = subprocess.Popen(
        [str(BIN), "sandbox", "--port", str(port), "--seed", "demo", "--rate-limit", "0",
         "--token", SANDBOX_TOKEN],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if sandbox.poll() is not None or time.monotonic() > deadline:
                    err = sandbox.stderr.read().decode() if sandbox.stderr else ""
                    pytest.fail(f"the sandbox did not start: {err}")
                time.sleep(0.05)
        rec = Recorder(f"http://127.0.0.1:{port}")
        yield rec
        rec.close()
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=10)


def server_params(api_url: str, tmp: Path, *extra: str) -> StdioServerParameters:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp),
        "AIRTABLE_MCP_LOG": "warn",
        "AIRTABLE_MCP_CONFIG": "/dev/null",
        "AIRTABLE_MCP_KEYRING": "none",
        "AIRTABLE_API_KEY": SANDBOX_TOKEN,
    }
    args = ["serve", "--api-url", api_url, "--rate-limit-per-base", "1000",
            "--journal", str(tmp / "journal.sqlite3"), *extra]
    return StdioServerParameters(command=str(BIN), args=args, env=env)


class User:
    """The elicitation callback: answers every confirmation with `action`."""

    def __init__(self, action: str) -> None:
        self.action = action
        self.messages: list[str] = []
        self.schemas: list[dict[str, Any]] = []

    async def __call__(self, context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        assert isinstance(params, types.ElicitRequestFormParams), params
        self.messages.append(params.message)
        self.schemas.append(params.requested_schema)
        if self.action == "accept":
            return types.ElicitResult(action="accept", content={"confirm": True})
        return types.ElicitResult(action=self.action)


async def first_record(client: Client) -> tuple[str, str]:
    tables = (await client.call_tool("list_tables", {"base_id": DEMO})).structured_content
    table = tables["tables"][0]["id"]
    page = (await client.call_tool(
        "get_records", {"base_id": DEMO, "table_id": table, "max_records": 1}
    )).structured_content
    return table, page["rows"][0][0]


async def exists(client: Client, table: str, record: str) -> bool:
    r = await client.call_tool("get_record", {"base_id": DEMO, "table_id": table, "record_id": record})
    return not r.is_error


async def delete_with(mode: str, action: str, proxy: Recorder, tmp: Path, *extra: str) -> tuple[User, Any, bool]:
    user = User(action)
    async with Client(
        server_params(proxy.url, tmp, *extra), mode=mode, elicitation_callback=user, read_timeout_seconds=60
    ) as client:
        if mode != "legacy":
            assert client.protocol_version == mode, client.protocol_version
        table, record = await first_record(client)
        result = await client.call_tool(
            "delete_record", {"base_id": DEMO, "table_id": table, "record_id": record}
        )
        still = await exists(client, table, record)
    return user, result, still


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, timeout=90))


@pytest.mark.parametrize("mode", MODES)
def test_accept_deletes(mode: str, proxy: Recorder, tmp_path: Path) -> None:
    user, result, still = run(delete_with(mode, "accept", proxy, tmp_path))
    text = result.content[0].text if result.content else ""
    assert not result.is_error, text
    assert result.structured_content["deleted"] is True
    assert len(user.messages) == 1
    assert user.messages[0].startswith("Delete record "), user.messages[0]
    assert "Nothing is sent unless you accept." in user.messages[0]
    assert user.schemas[0]["required"] == ["confirm"]
    assert user.schemas[0]["properties"]["confirm"]["type"] == "boolean"
    assert not still
    assert [m for m, _ in proxy.writes()] == ["DELETE"], proxy.writes()


@pytest.mark.parametrize("action", ["decline", "cancel"])
@pytest.mark.parametrize("mode", MODES)
def test_decline_and_cancel_send_nothing(mode: str, action: str, proxy: Recorder, tmp_path: Path) -> None:
    user, result, still = run(delete_with(mode, action, proxy, tmp_path))
    text = result.content[0].text if result.content else ""
    assert result.is_error, text
    assert "nothing was sent" in text, text
    assert ("cancelled" if action == "cancel" else "declined") in text, text
    assert len(user.messages) == 1
    assert still, "the record must still be there"
    assert proxy.writes() == [], proxy.writes()
    assert any(m == "GET" for m, _ in proxy.seen), "the proxy saw the reads"


@pytest.mark.parametrize("mode", MODES)
def test_never_mode_sends_no_elicitation(mode: str, proxy: Recorder, tmp_path: Path) -> None:
    user, result, still = run(delete_with(mode, "decline", proxy, tmp_path, "--confirm", "never"))
    assert not result.is_error, result.content
    assert user.messages == []
    assert not still
    assert [m for m, _ in proxy.writes()] == ["DELETE"], proxy.writes()


@pytest.mark.parametrize("mode", MODES)
def test_always_mode_without_elicitation_needs_the_dry_runs_token(mode: str, proxy: Recorder, tmp_path: Path) -> None:
    async def flow() -> None:
        # No elicitation_callback: the SDK declares no elicitation capability.
        async with Client(
            server_params(proxy.url, tmp_path, "--confirm", "always"), mode=mode, read_timeout_seconds=60
        ) as client:
            table, record = await first_record(client)
            args = {"base_id": DEMO, "table_id": table, "record_id": record}
            refused = await client.call_tool("delete_record", args)
            assert refused.is_error and "confirm_token" in refused.content[0].text, refused.content
            dry = await client.call_tool("delete_record", {**args, "dry_run": True})
            token = dry.structured_content["preview"]["confirm_token"]
            assert proxy.writes() == [], proxy.writes()
            done = await client.call_tool("delete_record", {**args, "confirm_token": token})
            assert not done.is_error, done.content
            assert done.structured_content["deleted"] is True
            assert not await exists(client, table, record)
            assert [m for m, _ in proxy.writes()] == ["DELETE"], proxy.writes()

    run(flow())
