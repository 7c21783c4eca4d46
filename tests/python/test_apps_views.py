"""MCP Apps views (issue #15) in a real browser: headless Chromium (Debian's `chromium`, driven by
Playwright; no browser is downloaded) loads each view inside tests/python/apps_host.html, a test
host page that speaks the host side of the postMessage protocol. The tool results are REAL: the
binary runs `serve --sandbox` under the official MCP Python SDK over stdio, and the host page
proxies the view's tools/call and resources/read back to it.

Asserts the DOM (rows, columns in field order, typed cells, sort, filter, load more, the detail
panel; bars, a line and the numbers table of the chart) and saves PNG screenshots in
target/test-screenshots/. Fails (never skips) when Chromium or Playwright is missing (CHROMIUM_PATH
overrides /usr/bin/chromium).

Run: cargo build && AIRTABLE_MCP_BIN=$PWD/target/debug/airtable-mcp \
     .venv/bin/python -m pytest -q tests/python/test_apps_views.py
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import zlib
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.client import advertise
from playwright.async_api import Page, async_playwright

from test_stdio_e2e import ROOT, server_params

CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
HOST_PAGE = Path(__file__).resolve().parent / "apps_host.html"
SHOTS = ROOT / "target" / "test-screenshots"
DEMO = "appDemoTracker001"
RECORDS_URI = "ui://airtable/records.html"
CHART_URI = "ui://airtable/chart.html"
MIME = "text/html;profile=mcp-app"
UI = "io.modelcontextprotocol/ui"
# The sandbox's demo attachments point at example.com (Airtable's would be on
# *.airtableusercontent.com, which the views' CSP declares); the test host allows it for images
# and Playwright answers those requests with a PNG, so nothing leaves the machine.
DEMO_IMAGE_HOST = "https://example.com"

LIGHT = {
    "theme": "light",
    "locale": "en-US",
    "timeZone": "America/New_York",
    "displayMode": "inline",
    "containerDimensions": {"maxHeight": 640},
    "styles": {"variables": {"--color-background-primary": "#ffffff", "--font-sans": "DejaVu Sans, sans-serif"}},
}
DARK_VARS = {"--color-background-primary": "#1e1f22", "--color-text-primary": "#ececf1"}


def png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A solid-colour PNG (the stand-in for attachment thumbnails)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return len(data).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")

    raw = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + b"\x08\x02\x00\x00\x00"
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def dump(model: Any) -> dict[str, Any]:
    return model.model_dump(by_alias=True, exclude_none=True, mode="json")


class Host:
    """One browser page with the test host, wired to the MCP client."""

    def __init__(self, client: Client, page: Page) -> None:
        self.client = client
        self.page = page
        self.proxied: list[tuple[str, dict[str, Any]]] = []
        self.views: dict[str, tuple[str, dict[str, Any]]] = {}

    async def setup(self) -> None:
        async def proxy(method: str, params: dict[str, Any]) -> dict[str, Any]:
            self.proxied.append((method, params))
            if method == "tools/call":
                result = await self.client.call_tool(params["name"], params.get("arguments") or {})
                return dump(result)
            read = await self.client.read_resource(params["uri"], cache_mode="bypass")
            return dump(read)

        await self.page.expose_function("mcpProxy", proxy)
        thumb = png(48, 48, (45, 127, 249))
        await self.page.route(
            f"{DEMO_IMAGE_HOST}/**", lambda route: route.fulfill(status=200, content_type="image/png", body=thumb)
        )
        await self.page.goto(HOST_PAGE.as_uri())

    async def view(self, uri: str) -> tuple[str, dict[str, Any]]:
        if uri not in self.views:
            read = await self.client.read_resource(uri, cache_mode="bypass")
            content = read.contents[0]
            assert content.mime_type == MIME, content.mime_type
            meta = (content.meta or {}).get("ui") or {}
            self.views[uri] = (content.text, meta)
        return self.views[uri]

    async def show(self, uri: str, tool: str, args: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
        """Call `tool` for real, then load its view with that input and result."""
        result = await self.client.call_tool(tool, args)
        assert not result.is_error, result.content
        html, meta = await self.view(uri)
        await self.page.evaluate(
            "([h, m, c, i, r, x]) => window.startView(h, m, c, i, r, x)",
            [html, meta, json.loads(json.dumps(context)), args, dump(result), [DEMO_IMAGE_HOST]],
        )
        return result.structured_content or {}

    def frame(self):
        return self.page.frame_locator("#view")

    async def shot(self, name: str) -> Path:
        SHOTS.mkdir(parents=True, exist_ok=True)
        path = SHOTS / f"{name}.png"
        await self.page.locator("#view").screenshot(path=str(path))
        assert path.stat().st_size > 1000
        return path

    async def log(self) -> list[dict[str, Any]]:
        return await self.page.evaluate("window.hostLog")


async def texts(locator) -> list[str]:
    return [t.strip() for t in await locator.all_inner_texts()]


async def wait_rows(host: Host, n: int) -> None:
    rows = host.frame().locator("#grid tbody tr")
    for _ in range(200):
        if await rows.count() == n:
            return
        await asyncio.sleep(0.05)
    assert await rows.count() == n


async def headers(host: Host) -> list[str]:
    heads = host.frame().locator("#grid thead th")
    return [await heads.nth(i).get_attribute("data-field") or "" for i in range(await heads.count())]


async def wait_headers(host: Host, want: list[str]) -> None:
    got: list[str] = []
    for _ in range(200):
        got = await headers(host)
        assert got == await texts(host.frame().locator("#grid thead th")), "header text is the field name"
        if got == want:
            return
        await asyncio.sleep(0.05)
    assert got == want


async def column(host: Host, name: str) -> list[str]:
    i = (await headers(host)).index(name) + 1
    return await texts(host.frame().locator(f"#grid tbody tr td:nth-child({i})"))


async def check_protocol(host: Host) -> None:
    """The handshake, exactly: ui/initialize, the reply, initialized, then input and result."""
    log = await host.log()
    order = [(e["dir"], e["method"]) for e in log if e["method"] != "ui/notifications/size-changed"]
    assert order[:5] == [
        ("view->host", "ui/initialize"),
        ("host->view", None),
        ("view->host", "ui/notifications/initialized"),
        ("host->view", "ui/notifications/tool-input"),
        ("host->view", "ui/notifications/tool-result"),
    ], order[:6]
    init = log[0]["params"]
    assert init["protocolVersion"] == "2026-01-26" and init["appInfo"]["name"], init
    sizes = await host.page.evaluate("window.sizes")
    assert sizes and sizes[-1]["height"] > 100, sizes


async def records_grid(host: Host) -> None:
    args = {"base_id": DEMO, "table_id": "Tasks", "max_records": 25, "expand_links": True}
    sc = await host.show(RECORDS_URI, "get_records", args, LIGHT)
    assert sc["count"] == 25 and sc["has_more"] and sc["offset"]
    await wait_rows(host, 25)

    # Columns in the table's field order (the result lists the densest first).
    schema = json.loads(
        (await host.client.read_resource(f"airtable://bases/{DEMO}/tables/Tasks/schema", cache_mode="bypass"))
        .contents[0]
        .text
    )
    present = set(sc["columns"][1:])
    want = [f["name"] for f in schema["fields"] if f["name"] in present]
    assert want != sc["columns"][1:], "the test needs a result whose column order differs"
    await wait_headers(host, want)
    await check_protocol(host)
    f = host.frame()

    # Typed cells: select chips in the choice colours, checkboxes, numbers right-aligned,
    # dates in the host's locale, links by name, clamped long text, attachment files.
    status = f.locator("#grid tbody td .chip", has_text="Done").first
    assert await status.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(209, 247, 196)"
    assert await f.locator("#grid tbody .check.on").count() > 0
    estimate_i = want.index("Estimate (hours)") + 1
    align = await f.locator(f"#grid tbody tr td:nth-child({estimate_i})").first.evaluate(
        "e => getComputedStyle(e).textAlign"
    )
    assert align == "right"
    due = await column(host, "Due date")
    assert due[0].startswith(("Jan ", "Feb ", "Mar ")) and "2026" in due[0], due[0]
    project = await column(host, "Project")
    assert project[0] and not project[0].startswith("rec"), project[0]
    # Project prefers a single linked record: its one link is {id, name} itself, not a list.
    cells = [r[sc["columns"].index("Project")] for r in sc["rows"]]
    assert all(isinstance(c, dict) for c in cells), cells[:3]
    assert await f.locator("#grid tbody .clamp").count() > 0
    assert await f.locator("#grid tbody .chip.file").count() > 0

    # Sort: a header click sorts ascending, a second descending.
    before = await texts(f.locator("#grid tbody tr td:nth-child(1)"))
    await f.locator("#grid thead th", has_text="Estimate (hours)").click()
    asc = [float(x) for x in await column(host, "Estimate (hours)")]
    assert asc == sorted(asc)
    names_asc = await texts(f.locator("#grid tbody tr td:nth-child(1)"))
    assert names_asc != before, "sorting did not reorder the rows"
    await f.locator("#grid thead th", has_text="Estimate (hours)").click()
    desc = [float(x) for x in await column(host, "Estimate (hours)")]
    assert desc == sorted(desc, reverse=True)
    assert await f.locator("#grid thead th[aria-sort=descending]").count() == 1

    # Filter.
    await f.locator("#filter").fill("blocked")
    statuses = await column(host, "Status")
    assert statuses and all(s == "Blocked" for s in statuses), statuses
    assert len(statuses) < 25
    assert "of 25 records" in await f.locator("#shown").inner_text()
    await f.locator("#filter").fill("")
    await wait_rows(host, 25)

    await host.shot("records-light")

    # Load more: tools/call of get_records with the result's offset, through the host.
    await f.locator("#more").click()
    await wait_rows(host, 50)
    calls = [p for m, p in host.proxied if m == "tools/call"]
    assert calls and calls[-1]["name"] == "get_records" and calls[-1]["arguments"]["offset"] == sc["offset"]
    assert calls[-1]["arguments"]["table_id"] == "Tasks"
    assert any(m == "resources/read" for m, _ in host.proxied), "the view did not read the schema"

    # The detail panel.
    row = f.locator("#grid tbody tr").nth(2)
    name = (await row.locator("td").first.inner_text()).strip()
    rec_id = await row.get_attribute("data-id")
    await row.click()
    panel = f.locator("#detail")
    await panel.wait_for(state="visible")
    assert (await panel.locator("h2").inner_text()).strip() == name
    assert rec_id in await panel.locator(".id").inner_text()
    assert "Status" in await texts(panel.locator("dt"))
    await host.shot("records-detail")
    await f.locator("#close").click()
    await panel.wait_for(state="hidden")

    # Dark theme through host-context-changed.
    await host.page.evaluate("v => window.changeContext({theme: 'dark', styles: {variables: v}})", DARK_VARS)
    bg = await f.locator("body").evaluate("e => getComputedStyle(e).backgroundColor")
    assert bg == "rgb(30, 31, 34)", bg
    assert await f.locator("html").get_attribute("data-theme") == "dark"
    await host.shot("records-dark")


async def search_grid(host: Host) -> None:
    args = {"base_id": DEMO, "table_id": "Tasks", "query": "review", "max_records": 5}
    sc = await host.show(RECORDS_URI, "search_records", args, LIGHT)
    assert sc["count"] == 5 and sc["has_more"], sc.get("count")
    await wait_rows(host, 5)
    f = host.frame()
    assert "review" in await f.locator("#title").inner_text()
    names = await column(host, "Name")
    # Without expand_links a single-record link is a bare ID: still a link chip.
    j = sc["columns"].index("Project")
    assert all(isinstance(r[j], str) for r in sc["rows"] if len(r) > j), sc["rows"]
    links = await texts(f.locator(f"#grid tbody tr td:nth-child({(await headers(host)).index('Project') + 1}) .chip.link"))
    assert links and all(x.startswith("rec") for x in links), links
    ids = [r[0] for r in sc["rows"]]
    assert [await f.locator("#grid tbody tr").nth(i).get_attribute("data-id") for i in range(5)] == ids
    assert all(n for n in names)
    # No cursor for search: "load more" asks again for more records.
    await f.locator("#more").click()
    await wait_rows(host, 10)
    last = [p for m, p in host.proxied if m == "tools/call"][-1]
    assert last["name"] == "search_records" and last["arguments"]["max_records"] == 10


async def image_grid(host: Host) -> None:
    """Image attachments in list cells: the `thumbnail` URL when Airtable made thumbnails (the
    sandbox makes none, so the result gets one as Airtable would send it), else the file."""
    args = {"base_id": DEMO, "table_id": "People", "max_records": 8, "fields": ["Name", "Photo"]}
    result = dump(await host.client.call_tool("get_records", args))
    sc = result["structuredContent"]
    j = sc["columns"].index("Photo")
    photos = [r[j][0] for r in sc["rows"] if len(r) > j]
    assert photos and all(set(a) == {"id", "filename", "type", "url"} for a in photos), photos
    html, meta = await host.view(RECORDS_URI)

    async def srcs_become(want: list[str]) -> None:
        imgs = host.frame().locator("#grid tbody img.thumb")
        got: list[str] = []
        for _ in range(200):
            got = sorted([await imgs.nth(i).get_attribute("src") or "" for i in range(await imgs.count())])
            if got == sorted(want):
                return
            await asyncio.sleep(0.05)
        assert got == sorted(want)

    await host.page.evaluate(
        "([h, m, c, i, r, x]) => window.startView(h, m, c, i, r, x)",
        [html, meta, LIGHT, args, result, [DEMO_IMAGE_HOST]],
    )
    await wait_rows(host, len(sc["rows"]))
    await srcs_become([a["url"] for a in photos])
    for a in photos:
        a["thumbnail"] = f"{DEMO_IMAGE_HOST}/thumbs/small/{a['filename']}"
    result["content"] = [{"type": "text", "text": json.dumps(sc)}]
    await host.page.evaluate(
        "([h, m, c, i, r, x]) => window.startView(h, m, c, i, r, x)",
        [html, meta, LIGHT, args, result, [DEMO_IMAGE_HOST]],
    )
    await wait_rows(host, len(sc["rows"]))
    await srcs_become([a["thumbnail"] for a in photos])


async def single_record(host: Host) -> None:
    people = await host.client.call_tool("get_records", {"base_id": DEMO, "table_id": "People", "max_records": 1})
    rec = people.structured_content["rows"][0][0]
    args = {"base_id": DEMO, "table_id": "People", "record_id": rec}
    sc = await host.show(RECORDS_URI, "get_record", args, LIGHT)
    assert sc["record"]["id"] == rec
    await wait_rows(host, 1)
    f = host.frame()
    panel = f.locator("#detail")
    await panel.wait_for(state="visible")
    assert (await panel.locator("h2").inner_text()).strip() == sc["record"]["fields"]["Name"]
    img = panel.locator("img.thumb").first
    await img.wait_for()
    for _ in range(100):
        if await img.evaluate("e => e.complete && e.naturalWidth > 0"):
            break
        await asyncio.sleep(0.05)
    assert await img.evaluate("e => e.naturalWidth") == 48, "the thumbnail did not load"
    role = panel.locator("dd .chip").first
    assert await role.evaluate("e => getComputedStyle(e).backgroundColor") != "rgba(0, 0, 0, 0)"
    await host.shot("record-single")


async def chart(host: Host) -> None:
    args = {"base_id": DEMO, "table_id": "Tasks", "group_by": ["Status"], "metrics": ["sum:Estimate (hours)"]}
    sc = await host.show(CHART_URI, "aggregate_records", args, LIGHT)
    f = host.frame()
    bars = f.locator("#chart svg rect.bar")
    await bars.first.wait_for()
    await check_protocol(host)
    assert await f.locator("#chart").get_attribute("data-kind") == "bars"
    assert await bars.count() == len(sc["groups"]) + (1 if sc.get("other") else 0)
    labels = [await bars.nth(i).get_attribute("data-label") for i in range(len(sc["groups"]))]
    assert labels == [g["key"][0] for g in sc["groups"]]
    # The chart shows the first metric; the bars' values are the result's.
    metric = "sum(Estimate (hours))"
    values = [float(await bars.nth(i).get_attribute("data-value")) for i in range(len(sc["groups"]))]
    assert values == [g["values"][metric] for g in sc["groups"]]
    # Wider bars for larger values.
    widths = [float(await bars.nth(i).get_attribute("width")) for i in range(len(values))]
    order = sorted(range(len(values)), key=lambda i: values[i])
    assert [widths[i] for i in order] == sorted(widths)
    # The numbers table: one row per group plus the total, counts and sums as in the result.
    head = await texts(f.locator("#numbers thead th"))
    assert head == ["Status", "count", metric]
    rows = f.locator("#numbers tbody tr")
    assert await rows.count() == len(sc["groups"]) + (1 if sc.get("other") else 0) + 1
    for i, g in enumerate(sc["groups"]):
        cells = await texts(rows.nth(i).locator("td"))
        assert cells[0] == g["key"][0] and cells[1] == f"{g['count']:,}", (cells, g)
        assert float(cells[2].replace(",", "")) == pytest.approx(g["values"][metric], abs=0.01)
    total = await texts(rows.last.locator("td"))
    assert total[0] == "Total" and total[1] == f"{sc['totals']['count']:,}"
    await host.shot("chart-bars")

    # Date buckets: a line, one point per month.
    args = {"base_id": DEMO, "table_id": "Tasks", "group_by": ["Due date:month"]}
    sc = await host.show(CHART_URI, "aggregate_records", args, LIGHT)
    dots = f.locator("#chart svg circle.dot")
    await dots.first.wait_for()
    assert await f.locator("#chart").get_attribute("data-kind") == "line"
    assert await dots.count() == len(sc["groups"])
    assert [await dots.nth(i).get_attribute("data-label") for i in range(await dots.count())] == [
        g["key"][0] for g in sc["groups"]
    ]
    assert await f.locator("#chart svg polyline.line").count() == 1
    await host.shot("chart-line")
    await host.page.evaluate("v => window.changeContext({theme: 'dark', styles: {variables: v}})", DARK_VARS)
    await host.shot("chart-dark")


async def run() -> None:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: run tools/setup-test-env.sh (installs Debian's chromium)")
    ui = advertise(UI, {"mimeTypes": [MIME]})
    async with Client(server_params(), mode="legacy", read_timeout_seconds=60, extensions=[ui]) as client:
        caps = client.session.server_capabilities
        assert caps is not None and UI in (caps.extensions or {}), caps

        # Tools name their views; the views are listed and readable.
        tools = {t.name: t for t in (await client.list_tools()).tools}
        for name in ["get_records", "search_records", "get_record"]:
            assert tools[name].meta == {"ui": {"resourceUri": RECORDS_URI}}, tools[name].meta
        assert tools["aggregate_records"].meta == {"ui": {"resourceUri": CHART_URI}}
        listed = {r.uri: r for r in (await client.list_resources(cache_mode="bypass")).resources}
        for uri in [RECORDS_URI, CHART_URI]:
            r = listed[uri]
            assert r.mime_type == MIME
            assert "https://*.airtableusercontent.com" in r.meta["ui"]["csp"]["resourceDomains"]
            text = (await client.read_resource(uri, cache_mode="bypass")).contents[0].text
            size = len(text.encode())
            assert size <= 150 * 1024, (uri, size)
            print(f"{uri}: {size} bytes")

        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            try:
                page = await browser.new_page(viewport={"width": 990, "height": 760}, device_scale_factor=1)
                page.set_default_timeout(30_000)
                errors: list[str] = []
                page.on("pageerror", lambda e: errors.append(str(e)))
                page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
                host = Host(client, page)
                await host.setup()
                await records_grid(host)
                await search_grid(host)
                await image_grid(host)
                await single_record(host)
                await chart(host)
                assert not errors, errors
            finally:
                await browser.close()


def test_views_in_chromium() -> None:
    asyncio.run(run())
