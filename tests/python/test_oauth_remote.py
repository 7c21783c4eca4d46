"""`serve --http --oauth` with the official MCP Python SDK's OAuth client (OAuthClientProvider)
and the sandbox (`sandbox --oauth-auto-approve`) as Airtable.

Run: cargo build && AIRTABLE_MCP_BIN=$PWD/target/debug/airtable-mcp \
     .venv/bin/python -m pytest -q tests/python/test_oauth_remote.py

Covers: discovery (401 -> protected-resource metadata -> AS metadata), dynamic client
registration, authorization through Airtable's (the sandbox's) consent with login_hint, a tool
call, the user's Airtable grant refreshed and rotated by the server on every request (sandbox
access tokens live 250 s, under the 300 s margin), refresh of our token by the SDK itself and
through /token (rotation; reuse refused and the chain revoked), revocation (then 401), a second
user who sees only their base, and a client-sent X-Airtable-Token ignored. Isolated from the
machine's config and data dirs (XDG_*), keyring off.
"""

import asyncio
import base64
import json
import os
import socket
import subprocess
import tempfile
import time
from urllib.parse import parse_qs, urlencode, urlparse

import httpx2
import pytest
from mcp import Client
from mcp.client.auth import OAuthClientProvider, TokenStorage
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientMetadata

BIN = os.environ.get("AIRTABLE_MCP_BIN")
DEMO_BASE = "appDemoTracker001"
SECOND_BASE = "appSecondUser0002"
REDIRECT = "http://127.0.0.1:9/callback"  # never contacted: the test reads Location itself


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_env():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRTABLE", "MCP_"))}
    env["AIRTABLE_MCP_KEYRING"] = "none"
    env["AIRTABLE_MCP_LOG"] = "info"
    return env


class MemoryStorage(TokenStorage):
    def __init__(self):
        self.tokens = None
        self.client_info = None

    async def get_tokens(self):
        return self.tokens

    async def set_tokens(self, tokens):
        self.tokens = tokens

    async def get_client_info(self):
        return self.client_info

    async def set_client_info(self, client_info):
        self.client_info = client_info


@pytest.fixture(scope="module")
def servers():
    assert BIN, "AIRTABLE_MCP_BIN must point at the airtable-mcp binary"
    tmp = tempfile.mkdtemp(prefix="oauth-remote-")
    env = clean_env()
    # Nothing from the machine's own config or data dirs (config file, write journal).
    env["XDG_CONFIG_HOME"] = os.path.join(tmp, "config")
    env["XDG_DATA_HOME"] = os.path.join(tmp, "data")
    # Airtable access tokens live 250 s: less than the server's 300 s refresh margin, so every
    # MCP request refreshes (and rotates) the user's Airtable grant.
    sandbox = subprocess.Popen(
        [BIN, "sandbox", "--port", "0", "--seed", "demo", "--oauth-auto-approve",
         "--oauth-access-ttl-secs", "250"],
        stdout=subprocess.PIPE, stderr=open(os.path.join(tmp, "sandbox.log"), "w"),
        env=env, text=True,
    )
    line = sandbox.stdout.readline()
    api_url = dict(kv.split("=", 1) for kv in line.split())["AIRTABLE_API_URL"]
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    store = os.path.join(tmp, "oauth.sqlite3")
    senv = dict(env)
    senv["AIRTABLE_API_URL"] = api_url
    senv["AIRTABLE_MCP_OAUTH_KEY"] = base64.b64encode(os.urandom(32)).decode()
    log = open(os.path.join(tmp, "serve.log"), "w")
    serve = subprocess.Popen(
        [BIN, "serve", "--http", f"127.0.0.1:{port}", "--oauth",
         "--oauth-client-id", "sandbox-client", "--public-url", f"{base}/mcp",
         "--oauth-store", store],
        stdout=subprocess.DEVNULL, stderr=log, env=senv,
    )
    deadline = time.time() + 60
    while True:
        try:
            if httpx2.get(f"{base}/healthz", timeout=2).status_code == 200:
                break
        except httpx2.HTTPError:
            pass
        assert serve.poll() is None, open(os.path.join(tmp, "serve.log")).read()
        assert time.time() < deadline, "serve --oauth did not come up"
        time.sleep(0.2)
    yield {"base": base, "api_url": api_url, "store": store, "tmp": tmp}
    serve.terminate()
    sandbox.terminate()
    serve.wait(30)
    sandbox.wait(30)


def make_provider(base, login_hint=None):
    storage = MemoryStorage()
    box = {}

    async def redirect_handler(url):
        # Play the browser: our /authorize -> Airtable (sandbox, auto-approve) -> our callback
        # -> the client's redirect URI (not followed: its query is the result).
        if login_hint:
            url = url + "&" + urlencode({"login_hint": login_hint})
        async with httpx2.AsyncClient(follow_redirects=False, timeout=30) as h:
            for _ in range(5):
                r = await h.get(url)
                assert r.status_code in (302, 303, 307), (r.status_code, r.text)
                url = r.headers["location"]
                if url.startswith(REDIRECT):
                    break
        box["query"] = parse_qs(urlparse(url).query)

    async def callback_handler():
        q = box["query"]
        assert "code" in q, q
        return AuthorizationCodeResult(code=q["code"][0], state=q["state"][0], iss=q["iss"][0])

    provider = OAuthClientProvider(
        server_url=f"{base}/mcp",
        client_metadata=OAuthClientMetadata(
            client_name="oauth-remote-test",
            redirect_uris=[REDIRECT],
            token_endpoint_auth_method="none",
        ),
        storage=storage,
        redirect_handler=redirect_handler,
        callback_handler=callback_handler,
    )
    return provider, storage


def text_of(result):
    return "".join(getattr(b, "text", "") or "" for b in result.content)


async def session_calls(base, provider, calls):
    out = []
    async with httpx2.AsyncClient(auth=provider, timeout=httpx2.Timeout(60.0, read=120.0)) as h:
        async with Client(streamable_http_client(f"{base}/mcp", http_client=h)) as client:
            for name, args in calls:
                r = await client.call_tool(name, args)
                out.append((bool(r.is_error), text_of(r)))
    return out


def test_discovery_documents(servers):
    base = servers["base"]
    r = httpx2.post(f"{base}/mcp", json={})
    assert r.status_code == 401
    challenge = r.headers["www-authenticate"]
    assert f'resource_metadata="{base}/.well-known/oauth-protected-resource/mcp"' in challenge
    assert 'scope="mcp"' in challenge
    prm = httpx2.get(f"{base}/.well-known/oauth-protected-resource/mcp").json()
    assert prm["resource"] == f"{base}/mcp"
    assert prm["authorization_servers"] == [base]
    meta = httpx2.get(f"{base}/.well-known/oauth-authorization-server").json()
    assert meta["issuer"] == base
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert meta["registration_endpoint"] == f"{base}/register"
    assert meta["revocation_endpoint"] == f"{base}/revoke"
    assert meta["authorization_response_iss_parameter_supported"] is True
    assert meta["client_id_metadata_document_supported"] is True
    # Ready without a server token of its own: users bring their grants.
    r = httpx2.get(f"{base}/readyz")
    assert r.status_code == 200, r.text
    # A forged token is refused with the challenge and error=invalid_token.
    r = httpx2.post(f"{base}/mcp", json={}, headers={"Authorization": "Bearer forged-token-123456"})
    assert r.status_code == 401
    assert 'error="invalid_token"' in r.headers["www-authenticate"]


def test_first_user_flow_refresh_and_revoke(servers):
    base = servers["base"]
    provider, storage = make_provider(base)
    calls = [("list_bases", {}), ("list_tables", {"base_id": DEMO_BASE}), ("list_bases", {})]
    results = asyncio.run(session_calls(base, provider, calls))
    for is_error, text in results:
        assert not is_error, text
    assert DEMO_BASE in results[0][1]
    assert SECOND_BASE not in results[0][1]
    assert storage.client_info is not None and storage.client_info.client_id.startswith("mcpc_")
    first = storage.tokens
    assert first.refresh_token and first.expires_in == 3600

    # The store never holds our tokens or the Airtable grant in clear.
    raw = open(servers["store"], "rb").read()
    wal = servers["store"] + "-wal"
    if os.path.exists(wal):
        raw += open(wal, "rb").read()
    assert first.access_token.encode() not in raw
    assert first.refresh_token.encode() not in raw

    # The SDK refreshes our token itself once it has expired (rotation: new access and refresh).
    provider.context.token_expiry_time = time.time() - 1
    results = asyncio.run(session_calls(base, provider, [("list_bases", {})]))
    assert not results[0][0] and DEMO_BASE in results[0][1]
    second = storage.tokens
    assert second.access_token != first.access_token
    assert second.refresh_token != first.refresh_token

    # Refresh through the token endpoint directly: rotation again.
    client_id = storage.client_info.client_id
    r = httpx2.post(f"{base}/token", data={
        "grant_type": "refresh_token", "refresh_token": second.refresh_token,
        "client_id": client_id, "resource": f"{base}/mcp"})
    assert r.status_code == 200, r.text
    third = r.json()
    assert third["refresh_token"] != second.refresh_token
    hdr = {"Authorization": f"Bearer {third['access_token']}",
           "Accept": "application/json, text/event-stream"}
    ping = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    r = httpx2.post(f"{base}/mcp", json=ping, headers=hdr)
    assert r.status_code == 200, r.text

    # A rotated refresh token used again is refused, and revokes the whole chain (RFC 9700).
    r = httpx2.post(f"{base}/token", data={
        "grant_type": "refresh_token", "refresh_token": first.refresh_token, "client_id": client_id})
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    r = httpx2.post(f"{base}/mcp", json=ping, headers=hdr)
    assert r.status_code == 401

    # A fresh sign-in; its token works until revoked, then 401.
    provider, storage = make_provider(base)
    results = asyncio.run(session_calls(base, provider, [("list_bases", {})]))
    assert not results[0][0] and DEMO_BASE in results[0][1]
    tok = storage.tokens
    r = httpx2.post(f"{base}/revoke", data={"token": tok.access_token,
                                            "client_id": storage.client_info.client_id})
    assert r.status_code == 200
    hdr["Authorization"] = f"Bearer {tok.access_token}"
    r = httpx2.post(f"{base}/mcp", json=ping, headers=hdr)
    assert r.status_code == 401
    assert 'error="invalid_token"' in r.headers["www-authenticate"]


def test_second_user_sees_only_their_base(servers):
    base = servers["base"]
    provider, _ = make_provider(base, login_hint="second@example.com")
    calls = [("list_bases", {}), ("list_tables", {"base_id": DEMO_BASE}),
             ("list_tables", {"base_id": SECOND_BASE})]
    results = asyncio.run(session_calls(base, provider, calls))
    (e0, bases), (e1, other), (e2, own) = results
    assert not e0, bases
    assert SECOND_BASE in bases and DEMO_BASE not in bases
    assert e1, f"the second user read the first user's base: {other}"
    assert not e2, own


def test_client_airtable_header_is_ignored(servers):
    """A user cannot swap in another Airtable token: X-Airtable-Token is dropped."""
    base = servers["base"]
    provider, storage = make_provider(base, login_hint="second@example.com")
    asyncio.run(session_calls(base, provider, [("list_bases", {})]))
    hdr = {"Authorization": f"Bearer {storage.tokens.access_token}",
           "Accept": "application/json, text/event-stream",
           "X-Airtable-Token": "sandbox-token"}
    call = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "list_bases", "arguments": {}}}
    r = httpx2.post(f"{base}/mcp", json=call, headers=hdr, timeout=60)
    assert r.status_code == 200, r.text
    assert SECOND_BASE in r.text and DEMO_BASE not in r.text
