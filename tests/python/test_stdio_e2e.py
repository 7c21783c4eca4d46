"""End-to-end: the RELEASE binary under the official MCP Python SDK, over stdio.

For each protocol mode of the SDK (the legacy `initialize` handshake, and the stateless
2026-07-28 protocol) the test starts `airtable-mcp serve --sandbox` (an in-process sandbox
seeded with the demo base), checks initialize and tools/list, and calls EVERY tool listed.
Writes go to scratch tables the test creates, so each run starts from the same demo base.

Run: cargo build --release && .venv/bin/python -m pytest -q tests/python
(AIRTABLE_MCP_BIN overrides the binary.)
"""

from __future__ import annotations

import asyncio
import base64
import csv
import io
import os
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, StdioServerParameters

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("AIRTABLE_MCP_BIN", ROOT / "target" / "release" / "airtable-mcp"))

MODES = ["legacy", "2026-07-28"]


def server_params(export_dir: Path | None = None) -> StdioServerParameters:
    if not BIN.exists():
        pytest.fail(f"{BIN} not found: build it with `cargo build --release --bin airtable-mcp`")
    env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp")}
    env["AIRTABLE_MCP_LOG"] = "warn"
    args = ["serve", "--sandbox"]
    if export_dir is not None:
        args += ["--export-dir", str(export_dir)]
    return StdioServerParameters(command=str(BIN), args=args, env=env)


class Session:
    """Calls tools and remembers which ones were called."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.called: set[str] = set()
        self.progress: dict[str, int] = {}

    async def call(self, name: str, args: dict[str, Any], *, ok: bool = True) -> dict[str, Any]:
        self.called.add(name)
        count = 0

        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            nonlocal count
            count += 1

        result = await self.client.call_tool(name, args, progress_callback=on_progress)
        self.progress[name] = self.progress.get(name, 0) + count
        text = result.content[0].text if result.content else ""
        if ok:
            assert not result.is_error, f"{name}({args}) failed: {text}"
            assert result.structured_content is not None, f"{name} has no structured content"
            # The text the model reads is compact JSON, never pretty-printed.
            assert "\n  " not in text, f"{name} text is pretty-printed"
            return result.structured_content
        assert result.is_error, f"{name}({args}) should have failed: {text}"
        return {"error": text}


async def run_everything(mode: str, tmp: Path) -> None:
    async with Client(server_params(tmp), mode=mode, read_timeout_seconds=60) as client:
        if mode == "legacy":
            assert client.server_info is not None
            assert client.server_info.name == "airtable-mcp"
        else:
            assert client.protocol_version == mode, client.protocol_version

        listed = await client.list_tools()
        tools = {t.name: t for t in listed.tools}
        assert len(tools) >= 24, sorted(tools)
        for t in listed.tools:
            assert t.title, f"{t.name} has no title"
            assert t.description and len(t.description) > 40, t.name
            assert t.annotations is not None and t.annotations.read_only_hint is not None, t.name
            assert t.output_schema is not None, f"{t.name} has no outputSchema"
            props = t.input_schema.get("properties", {})
            for pname, p in props.items():
                assert p.get("description"), f"{t.name}.{pname} has no description"
            assert "anyOf" not in t.input_schema and "oneOf" not in t.input_schema, t.name

        s = Session(client)

        # --- schema reads -------------------------------------------------------------------
        bases = (await s.call("list_bases", {}))["bases"]
        assert bases, "the sandbox has the demo base"
        base = bases[0]["id"]
        assert (await s.call("list_bases", {"query": bases[0]["name"][:3]}))["bases"]

        tables = (await s.call("list_tables", {"base_id": base}))["tables"]
        assert len(tables) >= 3
        demo = tables[0]
        info = await s.call("get_field_info", {"base_id": base, "table_id": demo["id"]})
        field_names = [f["name"] for f in info["fields"]]
        primary = info["primary_field"]

        # --- record reads -------------------------------------------------------------------
        page = await s.call("get_records", {"base_id": base, "table_id": demo["id"], "max_records": 5})
        # Compact lists: field names once in "columns" ("id" first), one array per record in "rows".
        assert page["columns"][0] == "id"
        assert 0 < len(page["rows"]) <= 5 and page["count"] == len(page["rows"])
        rows = [dict(zip(page["columns"], row)) for row in page["rows"]]
        assert all(len(row) <= len(page["columns"]) for row in page["rows"])
        assert primary in page["columns"], page["columns"]
        rec_id = rows[0]["id"]
        one = await s.call("get_record", {"base_id": base, "table_id": demo["id"], "record_id": rec_id})
        assert one["record"]["id"] == rec_id
        await s.call("search_records", {"base_id": base, "table_id": demo["id"], "query": "a"})
        bad = await s.call(
            "get_records",
            {"base_id": base, "table_id": demo["id"], "filter_by_formula": "AND({Nope}=1"},
            ok=False,
        )
        assert "formula" in bad["error"].lower()

        # --- analysis -----------------------------------------------------------------------
        assert all("field_count" in t for t in tables), f"list_tables lacks field_count: {tables}"
        biggest = max(tables, key=lambda t: t["field_count"])
        analysis = await s.call(
            "analyze_table_data", {"base_id": base, "table_id": biggest["id"], "sample_size": 50}
        )
        assert analysis["records_analyzed"] > 0
        assert analysis["fields"] and all(0 <= f["fill_rate"] <= 1 for f in analysis["fields"])
        assert s.progress["analyze_table_data"] >= 1, "no progress notification"

        # --- schema writes on a scratch table ------------------------------------------------
        scratch = await s.call(
            "create_table",
            {
                "base_id": base,
                "name": f"Scratch {mode}",
                "description": "e2e scratch",
                "fields": [
                    {"name": "Name", "type": "singleLineText"},
                    {"name": "Email", "type": "email"},
                    {"name": "Score", "type": "number", "options": {"precision": 0}},
                ],
            },
        )
        scratch_id = scratch.get("id") or scratch.get("table", {}).get("id")
        assert scratch_id and scratch_id.startswith("tbl"), scratch
        await s.call("update_table", {"base_id": base, "table_id": scratch_id, "description": "scratch v2"})
        field = await s.call(
            "create_field",
            {"base_id": base, "table_id": scratch_id, "name": "Notes", "type": "multilineText"},
        )
        field_id = field.get("id") or field.get("field", {}).get("id")
        assert field_id and field_id.startswith("fld"), field
        await s.call(
            "update_field",
            {"base_id": base, "table_id": scratch_id, "field_id": field_id, "description": "free text"},
        )

        # --- record writes ------------------------------------------------------------------
        created = await s.call(
            "create_record",
            {"base_id": base, "table_id": scratch_id, "fields": {"Name": "Ada", "Email": "ada@x.org", "Score": 1}},
        )
        ada = created["record"]["id"]
        people = [
            {"Name": f"Person {i}", "Email": f"p{i}@x.org", "Score": i} for i in range(12)
        ] + [{"Name": "Ada again", "Email": "  ADA@x.org ", "Score": 2}]
        batch = await s.call("batch_create_records", {"base_id": base, "table_id": scratch_id, "records": people})
        batch_ids = batch["written_ids"]
        assert len(batch_ids) == 13
        assert batch["write_id"].startswith("w"), batch  # journaled: undo_write can take it back
        await s.call("update_record", {"base_id": base, "table_id": scratch_id, "record_id": ada, "fields": {"Score": 10}})
        await s.call(
            "batch_update_records",
            {"base_id": base, "table_id": scratch_id, "records": [{"id": batch_ids[0], "fields": {"Score": 100}}]},
        )
        await s.call(
            "batch_upsert_records",
            {
                "base_id": base,
                "table_id": scratch_id,
                "records": [{"Name": "Person 1", "Score": 11}, {"Name": "Newcomer", "Score": 5}],
                "fields_to_merge_on": ["Name"],
            },
        )

        # --- comments -----------------------------------------------------------------------
        await s.call("create_comment", {"base_id": base, "table_id": scratch_id, "record_id": ada, "text": "hello"})
        comments = await s.call("list_comments", {"base_id": base, "table_id": scratch_id, "record_id": ada})
        assert any(c["text"] == "hello" for c in comments["comments"]), comments

        # --- analysis and transfer on the scratch table ------------------------------------
        dups = await s.call("find_duplicates", {"base_id": base, "table_id": scratch_id, "fields": ["Email"]})
        assert dups["group_count"] == 1, dups
        assert sorted(dups["groups"][0]["record_ids"]) == sorted([ada, batch_ids[-1]])
        assert dups["groups"][0]["key"] == ["ada@x.org"]

        out = tmp / f"scratch-{mode}.csv"
        export = await s.call(
            "export_table_csv",
            {"base_id": base, "table_id": scratch_id, "fields": ["Name", "Email", "Score"], "path": out.name},
        )
        assert export["rows"] == 15 and not export["truncated"]
        assert out.read_bytes().decode() == export["csv"]
        rows = list(csv.reader(io.StringIO(export["csv"])))
        assert rows[0] == ["Name", "Email", "Score"]
        again = await s.call(
            "export_table_csv", {"base_id": base, "table_id": scratch_id, "path": out.name}, ok=False
        )
        assert "already exists" in again["error"]
        missing = await s.call(
            "export_table_csv",
            {"base_id": base, "table_id": scratch_id, "path": "nope/x.csv"},
            ok=False,
        )
        assert "does not exist" in missing["error"]
        outside = await s.call(
            "export_table_csv", {"base_id": base, "table_id": scratch_id, "path": "../escape.csv"}, ok=False
        )
        assert '".."' in outside["error"], outside
        assert not (tmp.parent / "escape.csv").exists()

        target = await s.call(
            "create_table",
            {
                "base_id": base,
                "name": f"Sync target {mode}",
                "fields": [
                    {"name": "Name", "type": "singleLineText"},
                    {"name": "Score", "type": "number", "options": {"precision": 0}},
                ],
            },
        )
        target_id = target.get("id") or target.get("table", {}).get("id")
        sync_args = {
            "source_base_id": base,
            "source_table_id": scratch_id,
            "target_base_id": base,
            "target_table_id": target_id,
            "key_field": "Name",
        }
        plan = await s.call("sync_tables", sync_args)
        assert plan["dry_run"] is True and plan["create_count"] == 15 and plan["update_count"] == 0
        assert "Email" in [f["field"] for f in plan["fields_skipped"]]
        applied = await s.call("sync_tables", {**sync_args, "dry_run": False})
        assert applied["applied"]["created"] == 15 and applied["applied"]["complete"] is True
        after = await s.call("sync_tables", sync_args)
        assert after["create_count"] == 0 and after["unchanged"] == 15, after

        meta = await s.call("create_metadata_table", {"base_id": base})
        assert meta["created_table"] is True and meta["rows"] > 10 and meta["complete"] is True
        meta2 = await s.call("create_metadata_table", {"base_id": base})
        assert meta2["created_table"] is False and meta2["unchanged"] == meta2["rows"], meta2

        # --- deletes ------------------------------------------------------------------------
        await s.call("delete_record", {"base_id": base, "table_id": scratch_id, "record_id": ada})
        delete_args = {"base_id": base, "table_id": scratch_id, "record_ids": batch_ids[:11]}
        dry = await s.call("batch_delete_records", {**delete_args, "dry_run": True})
        assert dry["written"] == 0 and dry["preview"]["record_count"] == 11, dry
        assert dry["preview"]["records"][1]["label"] == "Person 1", dry["preview"]["records"][1]
        deleted = await s.call("batch_delete_records", delete_args)
        assert deleted["written"] == 11 and deleted["write_id"].startswith("w"), deleted

        # --- the journal: list, then undo the batch delete (the 11 records come back) ------
        recent = await s.call("list_recent_writes", {"base_id": base, "limit": 5})
        assert recent["writes"][0]["id"] == deleted["write_id"], recent
        assert recent["writes"][0]["tool"] == "batch_delete_records", recent
        undone = await s.call("undo_write", {"write_id": deleted["write_id"]})
        assert undone["applied"] is True and len(undone["restored"]) == 11, undone
        assert all(r["action"] == "recreated" for r in undone["restored"]), undone
        back = await s.call("search_records", {"base_id": base, "table_id": scratch_id, "query": "Person 1"})
        assert back["count"] >= 2, back  # "Person 1" and "Person 10" are back

        # --- #13 links and views ---------------------------------------------------------------
        views = await s.call("list_views", {"base_id": base, "table_id": "Tasks"})
        assert any(v["name"] == "Open tasks" and v["type"] == "grid" for v in views["views"]), views
        linked = await s.call(
            "get_records",
            {"base_id": base, "table_id": "Tasks", "view": "Open tasks", "max_records": 5,
             "fields": ["Name", "Project"], "expand_links": True},
        )
        lrows = [dict(zip(linked["columns"], row)) for row in linked["rows"]]
        # Project prefers a single linked record: one link is its {id, name} itself, not a list.
        project = next(r["Project"] for r in lrows if r.get("Project"))
        assert project["id"].startswith("rec") and project["name"], linked
        cands = await s.call(
            "find_link_candidates",
            {"base_id": base, "table_id": "Tasks", "field": "Project", "query": project["name"]},
        )
        assert cands["candidates"][0] == project, cands
        assert "update_record" in cands["how_to_link"]
        notlink = await s.call(
            "find_link_candidates", {"base_id": base, "table_id": "Tasks", "field": "Status", "query": "x"}, ok=False
        )
        assert "not a link" in notlink["error"], notlink
        # --- #13 attachments ----------------------------------------------------------------
        bare = await s.call(
            "get_records",
            {"base_id": base, "table_id": "Tasks", "max_records": 1, "filter_by_formula": "{Attachments} = ''"},
        )
        task = dict(zip(bare["columns"], bare["rows"][0]))["id"]
        blob = bytes(range(256)) * 8
        up = await s.call(
            "upload_attachment",
            {
                "base_id": base,
                "table_id": "Tasks",
                "record_id": task,
                "field": "Attachments",
                "source": {"content_base64": base64.b64encode(blob).decode(), "filename": f"blob-{mode}.bin"},
            },
        )
        assert up["method"] == "upload" and up["attachment"]["size"] == len(blob), up
        got = await s.call(
            "get_attachments",
            {"base_id": base, "table_id": "Tasks", "record_id": task, "field": "Attachments", "save": True},
        )
        assert got["saved"] == 1 and len(got["attachments"]) == 1, got
        assert Path(got["attachments"][0]["saved_path"]).read_bytes() == blob, got
        # --- #13 search and aggregation ---------------------------------------------------
        phrase = await s.call(
            "search_records",
            {"base_id": base, "table_id": scratch_id, "query": '"person 1"', "return_fields": ["Name"]},
        )
        assert phrase["columns"] == ["id", "Name"] and phrase["rows"][0][1] == "Person 1", phrase
        assert len(phrase["scores"]) == len(phrase["rows"]) == len(phrase["matched"]) >= 2, phrase
        assert phrase["scores"][0] > phrase["scores"][-1] and phrase["matched"][0] == ["Name"], phrase
        counted = await s.call("count_records", {"base_id": base, "table_id": scratch_id})
        everything = await s.call("get_records", {"base_id": base, "table_id": scratch_id, "max_records": 1000})
        assert everything["has_more"] is False, everything
        assert counted["count"] == everything["count"] and counted["capped"] is False, (counted, everything)
        assert counted["requests"] == 1, counted
        agg = await s.call(
            "aggregate_records",
            {"base_id": base, "table_id": scratch_id, "metrics": ["sum:Score", "max:Score", "fill_rate:Email"]},
        )
        scores = [dict(zip(everything["columns"], r)).get("Score") for r in everything["rows"]]
        scores = [x for x in scores if x is not None]
        assert agg["totals"]["count"] == counted["count"] and agg["capped"] is False, agg
        assert agg["totals"]["values"]["sum(Score)"] == sum(scores), agg
        assert agg["totals"]["values"]["max(Score)"] == max(scores), agg
        high = await s.call(
            "count_records",
            {"base_id": base, "table_id": scratch_id, "filters": {"conditions": [{"field": "Score", "op": ">=", "value": 5}]}},
        )
        assert high["count"] == len([x for x in scores if x >= 5]) > 0, high
        by_mail = await s.call(
            "aggregate_records", {"base_id": base, "table_id": scratch_id, "group_by": ["Email"], "max_scan": 5}
        )
        assert by_mail["scanned"] == 5 and by_mail["capped"] is True and "max_scan" in by_mail["note"], by_mail

        # --- #14 import ---------------------------------------------------------------------
        csv_text = "Name;Score\r\nImported 1;3\r\nImported 2;4,5\r\n"
        plan = await s.call("import_records", {"base_id": base, "table_id": scratch_id, "source": csv_text})
        assert plan["dry_run"] is True and plan["to_create"] == 2 and plan["write_requests"] == 1, plan
        done = await s.call(
            "import_records", {"base_id": base, "table_id": scratch_id, "source": csv_text, "dry_run": False}
        )
        assert [w["row"] for w in done["written"]] == [2, 3], done
        # --- #15 change feed area
        watched = await s.call("watch_table", {"base_id": base, "table_id": scratch_id})
        watch_id = watched["watch"]["watch_id"]
        assert watched["watch"]["uri"] == f"airtable://watches/{watch_id}", watched
        fed = await s.call("create_record", {"base_id": base, "table_id": scratch_id, "fields": {"Name": "Fed"}})
        feed = await s.call("list_table_changes", {"watch_id": watch_id})
        assert [(c["action"], c["record_id"]) for c in feed["changes"]] == [("created", fed["record"]["id"])], feed
        assert feed["changes"][0]["fields"]["Name"] == {"new": "Fed"} and feed["has_more"] is False, feed
        assert [w["watch_id"] for w in (await s.call("list_watches", {}))["watches"]] == [watch_id]
        assert (await s.call("unwatch_table", {"watch_id": watch_id}))["removed"] is True
        gone = await s.call("list_table_changes", {"watch_id": watch_id}, ok=False)
        assert "Unknown watch_id" in gone["error"], gone
        # --- end #15 change feed area
        # --- #13 filters --------------------------------------------------------------------
        filtered = await s.call(
            "get_records",
            {
                "base_id": base,
                "table_id": demo["id"],
                "fields": [primary],
                "filters": {"conditions": [{"field": primary, "op": "is_not_empty"}]},
                "record_ids": [rec_id],
            },
        )
        assert [row[0] for row in filtered["rows"]] == [rec_id], filtered
        typo = await s.call(
            "get_records",
            {"base_id": base, "table_id": demo["id"], "filters": {"conditions": [{"field": primary + "x", "op": "is_empty"}]}},
            ok=False,
        )
        assert "did you mean" in typo["error"].lower(), typo

        # Bad input is an isError result naming the fix, never a crash.
        nf = await s.call("get_records", {"base_id": "appNOPE", "table_id": "x"}, ok=False)
        assert "list_bases" in nf["error"]
        assert (await s.call("list_bases", {}))["bases"], "the server still answers"

        missing_tools = set(tools) - s.called
        assert not missing_tools, f"tools never called: {sorted(missing_tools)}"


@pytest.mark.parametrize("mode", MODES)
def test_every_tool_over_stdio(mode: str, tmp_path: Path) -> None:
    asyncio.run(asyncio.wait_for(run_everything(mode, tmp_path), timeout=120))
