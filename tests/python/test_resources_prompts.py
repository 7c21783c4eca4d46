"""End-to-end: resources, prompts and completion under the official MCP Python SDK, over stdio,
in both protocol modes (legacy `initialize`, and stateless 2026-07-28).

Starts `airtable-mcp serve --sandbox` as test_stdio_e2e.py does. Run with the debug binary:
AIRTABLE_MCP_BIN=$PWD/target/debug/airtable-mcp .venv/bin/python -m pytest -q tests/python/test_resources_prompts.py
"""

from __future__ import annotations

import asyncio
import json
from urllib.parse import quote

import pytest
from mcp import Client
from mcp.shared.subscriptions import ResourceUpdated
from mcp.types import PromptReference, ResourceTemplateReference

from test_stdio_e2e import MODES, server_params


async def run(mode: str) -> None:
    async with Client(server_params(), mode=mode, read_timeout_seconds=60) as client:
        caps = client.session.server_capabilities if mode == "legacy" else None
        if caps is not None:
            assert caps.resources is not None and caps.resources.subscribe
            assert caps.prompts is not None and caps.completions is not None

        listed = await client.list_resources(cache_mode="bypass")
        uris = [r.uri for r in listed.resources]
        base_uri = next(u for u in uris if u.endswith("/schema") and "/tables/" not in u)
        base = base_uri.split("/")[3]
        assert any("/tables/" in u for u in uris), uris

        templates = await client.list_resource_templates()
        assert {t.uri_template for t in templates.resource_templates} == {
            "airtable://bases/{base_id}/schema",
            "airtable://bases/{base_id}/tables/{table_id}/schema",
            "airtable://watches/{watch_id}",
        }

        read = await client.read_resource(base_uri, cache_mode="bypass")
        schema = json.loads(read.contents[0].text)
        assert schema["base_id"] == base
        table = schema["tables"][0]
        by_name = await client.read_resource(
            f"airtable://bases/{base}/tables/{quote(table['name'], safe='')}/schema", cache_mode="bypass"
        )
        one = json.loads(by_name.contents[0].text)
        assert one["id"] == table["id"]
        field = one["fields"][0]["name"]

        prompts = await client.list_prompts()
        names = {p.name for p in prompts.prompts}
        assert {"explore_base", "find_and_merge_duplicates", "summarize_by_month", "prepare_import"} <= names
        got = await client.get_prompt(
            "find_and_merge_duplicates", {"base_id": base, "table_id": table["name"], "field": field}
        )
        text = got.messages[0].content.text
        assert "find_duplicates" in text and "dry_run=true" in text and base in text

        done = await client.complete(PromptReference(type="ref/prompt", name="explore_base"), {"name": "base_id", "value": ""})
        assert base in done.completion.values
        tables = await client.complete(
            ResourceTemplateReference(type="ref/resource", uri="airtable://bases/{base_id}/tables/{table_id}/schema"),
            {"name": "table_id", "value": table["name"][:2]},
            {"base_id": base},
        )
        assert table["name"] in tables.completion.values
        fields = await client.complete(
            PromptReference(type="ref/prompt", name="summarize_by_month"),
            {"name": "field", "value": ""},
            {"base_id": base, "table_id": table["id"]},
        )
        assert field in fields.completion.values

        if mode != "legacy":
            # 2026: subscriptions/listen, then a schema change pushes resources/updated.
            table_uri = f"airtable://bases/{base}/tables/{table['id']}/schema"
            async with client.listen(resource_subscriptions=[table_uri]) as sub:
                assert table_uri in (sub.honored.resource_subscriptions or [])
                result = await client.call_tool(
                    "create_field",
                    {"base_id": base, "table_id": table["id"], "name": "Listen probe", "type": "singleLineText"},
                )
                assert not result.is_error, result
                event = await asyncio.wait_for(anext(aiter(sub)), 30)
                assert isinstance(event, ResourceUpdated) and event.uri == table_uri, event
        else:
            await client.subscribe_resource(base_uri)
            await client.unsubscribe_resource(base_uri)


@pytest.mark.parametrize("mode", MODES)
def test_resources_prompts(mode: str) -> None:
    asyncio.run(run(mode))
