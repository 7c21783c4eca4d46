"""End-to-end: the change feed's notifications (#15) under the official MCP Python SDK, over stdio.

A client watches a table (watch_table), subscribes to the watch's resource
(`airtable://watches/{id}`) - with the legacy `resources/subscribe` in the legacy mode, with the
2026-07-28 `subscriptions/listen` stream in the stateless mode - writes a record through the
tools, and must receive `notifications/resources/updated` for that URI once the server's poller
(here every 5 s, the minimum) sees the webhook's new payload. Then the resource and
list_table_changes show the change.

Run with the debug binary:
AIRTABLE_MCP_BIN=$PWD/target/debug/airtable-mcp .venv/bin/python -m pytest -q tests/python/test_change_feed.py
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from mcp import Client, ResourceUpdatedNotification
from mcp.shared.subscriptions import ResourceUpdated

from test_stdio_e2e import MODES, server_params

NOTIFY_TIMEOUT = 40


def params() -> Any:
    p = server_params()
    p.env = dict(p.env or {})
    p.env["AIRTABLE_MCP_WATCH_POLL_INTERVAL"] = "5"
    return p


async def call(client: Client, name: str, args: dict[str, Any]) -> dict[str, Any]:
    result = await client.call_tool(name, args)
    assert not result.is_error, f"{name}: {result.content[0].text if result.content else ''}"
    assert result.structured_content is not None
    return result.structured_content


async def run(mode: str) -> None:
    updated: asyncio.Queue[str] = asyncio.Queue()

    async def on_message(message: Any) -> None:
        if isinstance(message, ResourceUpdatedNotification):
            await updated.put(str(message.params.uri))

    async with Client(params(), mode=mode, read_timeout_seconds=60, message_handler=on_message) as client:
        templates = await client.list_resource_templates()
        assert "airtable://watches/{watch_id}" in {t.uri_template for t in templates.resource_templates}
        bases = (await call(client, "list_bases", {}))["bases"]
        base = bases[0]["id"]
        watched = await call(client, "watch_table", {"base_id": base, "table_id": "Tasks"})
        uri = watched["watch"]["uri"]
        watch_id = watched["watch"]["watch_id"]
        fields = {"Name": f"notify {mode}"}

        if mode == "legacy":
            await client.subscribe_resource(uri)
            await call(client, "create_record", {"base_id": base, "table_id": "Tasks", "fields": fields})
            got = await asyncio.wait_for(updated.get(), NOTIFY_TIMEOUT)
            assert got == uri, got
            await client.unsubscribe_resource(uri)
        else:
            async with client.listen(resource_subscriptions=[uri]) as sub:
                assert uri in (sub.honored.resource_subscriptions or []), sub.honored
                await call(client, "create_record", {"base_id": base, "table_id": "Tasks", "fields": fields})
                event = await asyncio.wait_for(anext(aiter(sub)), NOTIFY_TIMEOUT)
                assert isinstance(event, ResourceUpdated) and event.uri == uri, event

        read = await client.read_resource(uri, cache_mode="bypass")
        state = json.loads(read.contents[0].text)
        assert state["watch_id"] == watch_id and state["status"] == "active", state
        assert state["pending"] == 1, state
        feed = await call(client, "list_table_changes", {"watch_id": watch_id})
        assert [c["action"] for c in feed["changes"]] == ["created"], feed
        assert feed["changes"][0]["fields"]["Name"] == {"new": fields["Name"]}, feed
        await call(client, "unwatch_table", {"watch_id": watch_id})


@pytest.mark.parametrize("mode", MODES)
def test_a_subscribed_client_is_notified_of_new_changes(mode: str) -> None:
    asyncio.run(asyncio.wait_for(run(mode), timeout=120))
