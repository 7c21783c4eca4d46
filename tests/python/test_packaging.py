"""Packaging: the Claude Desktop extension (.mcpb), the MCP registry server.json and the release
configuration, checked with the real tools.

- packaging/mcpb/manifest.json passes the official `mcpb validate` (npm @anthropic-ai/mcpb, pinned
  in packaging/package-lock.json, installed by tools/setup-test-env.sh); its tools[] and prompts[]
  are the live catalogue (`airtable-mcp tools schema`, prompts/list and prompts/get over stdio).
  `UPDATE_MANIFEST=1` rewrites them (after adding or changing a tool or prompt).
- tools/package.sh packs the debug binary into a bundle; the test unzips it, starts the packed
  binary through the manifest's mcp_config exactly as a host does (platform_overrides,
  ${__dirname}, ${user_config.*} with the defaults) and lists bases from a sandbox with the token
  the manifest passes in the environment.
- server.json validates against the registry's JSON schema (vendored in packaging/registry/),
  matches Cargo.toml's version, and `tools/package.sh --server-json` adds a valid mcpb package
  with the bundle's real sha256.
- dist-workspace.toml and .github/workflows/release.yml agree (`dist generate --check`), and the
  archives `dist plan` announces are the ones Cargo.toml's binstall metadata downloads.

Run: cargo build && AIRTABLE_MCP_BIN=$PWD/target/debug/airtable-mcp .venv/bin/python -m pytest -q tests/python/test_packaging.py
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from mcp import Client, StdioServerParameters

from test_stdio_e2e import BIN, server_params

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = ROOT / "packaging" / "mcpb" / "manifest.json"
SERVER_JSON = ROOT / "server.json"
SCHEMA = ROOT / "packaging" / "registry" / "server.schema.json"
MCPB = ROOT / "packaging" / "node_modules" / ".bin" / "mcpb"
DIST = ROOT / ".venv" / "bin" / "dist"
REGISTRY_NAME = "io.github.airtable-mcp/airtable-mcp"
# Generous: the machine running CI may be loaded.
TIMEOUT = 300


def cargo_version() -> str:
    return tomllib.loads((ROOT / "Cargo.toml").read_text())["package"]["version"]


def env_registry() -> set[str]:
    """Every environment variable name src/env.rs registers."""
    return set(re.findall(r'pub const [A-Z0-9_]+: &str = "([A-Z0-9_]+)";', (ROOT / "src" / "env.rs").read_text()))


def mcpb_cli() -> Path:
    if not MCPB.exists():
        pytest.fail(f"{MCPB} missing: run tools/setup-test-env.sh (npm ci in packaging/)")
    return MCPB


def binary() -> Path:
    if not BIN.exists():
        pytest.fail(f"{BIN} not found: build it with `cargo build` and set AIRTABLE_MCP_BIN")
    return BIN


def host_platform() -> str:
    return {"linux": "linux", "darwin": "darwin", "win32": "win32"}[sys.platform]


def first_sentence(text: str) -> str:
    """The manifest's short tool description: the MCP description up to its first full stop
    outside brackets ("(e.g. Email)" does not end a sentence)."""
    depth = 0
    for i, ch in enumerate(text):
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth = max(0, depth - 1)
        elif ch in ".!?" and depth == 0 and (i + 1 == len(text) or text[i + 1].isspace()):
            return text[: i + 1].strip()
    return text.strip()


# --- the catalogue, from the binary ---------------------------------------------------------


def catalogue_tools() -> list[dict[str, str]]:
    out = subprocess.run([str(binary()), "tools", "schema"], capture_output=True, text=True, timeout=TIMEOUT, check=True)
    tools = json.loads(out.stdout)
    if isinstance(tools, dict):
        tools = tools.get("tools", tools)
    return [{"name": t["name"], "description": first_sentence(t["description"])} for t in tools]


async def catalogue_prompts() -> list[dict[str, Any]]:
    """prompts[] for the manifest: each prompt's text with its required arguments as the
    ${arguments.NAME} placeholders hosts fill in (optional arguments left out)."""
    out = []
    async with Client(server_params(), mode="legacy", read_timeout_seconds=60) as client:
        listed = await client.list_prompts()
        for p in listed.prompts:
            args = p.arguments or []
            filled = {a.name: "${arguments." + a.name + "}" for a in args if a.required}
            got = await client.get_prompt(p.name, filled)
            out.append(
                {
                    "name": p.name,
                    "description": p.description,
                    "arguments": [a.name for a in args],
                    "text": got.messages[0].content.text,
                }
            )
    return out


def test_manifest_lists_the_live_catalogue() -> None:
    manifest = json.loads(MANIFEST.read_text())
    tools = catalogue_tools()
    prompts = asyncio.run(catalogue_prompts())
    if os.environ.get("UPDATE_MANIFEST"):
        manifest["tools"] = tools
        manifest["prompts"] = prompts
        MANIFEST.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    assert len(tools) >= 30, tools
    assert manifest["tools"] == tools, "manifest tools[] drifted: UPDATE_MANIFEST=1 pytest tests/python/test_packaging.py"
    assert manifest["prompts"] == prompts, "manifest prompts[] drifted: UPDATE_MANIFEST=1 pytest tests/python/test_packaging.py"
    assert manifest["tools_generated"] is False and manifest["prompts_generated"] is False


def test_manifest_validates_and_maps_settings_to_registered_env_vars() -> None:
    done = subprocess.run([str(mcpb_cli()), "validate", str(MANIFEST)], capture_output=True, text=True, timeout=TIMEOUT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Manifest schema validation passes" in done.stdout

    m = json.loads(MANIFEST.read_text())
    assert m["version"] == cargo_version()
    assert m["manifest_version"] == "0.3" and m["server"]["type"] == "binary"
    assert m["privacy_policies"], "Airtable processes user data: a privacy policy is required"
    config = m["server"]["mcp_config"]
    assert config["args"] == ["serve"]
    known = env_registry()
    assert set(config["env"]) <= known, set(config["env"]) - known
    # The token: a sensitive setting (kept in the OS keychain by the host), passed in the env.
    token = m["user_config"]["airtable_api_key"]
    assert token["sensitive"] is True and token["type"] == "string"
    assert config["env"]["AIRTABLE_API_KEY"] == "${user_config.airtable_api_key}"
    # Every setting is used, and every optional one has a default: a host leaves the
    # placeholder of an unset value without a default as literal text.
    used = set(re.findall(r"\$\{user_config\.([a-z_]+)\}", json.dumps(config)))
    assert used == set(m["user_config"])
    for key, opt in m["user_config"].items():
        assert opt.get("required") or "default" in opt, key
    assert m["user_config"]["read_only"]["type"] == "boolean"
    assert m["user_config"]["export_dir"]["type"] == "directory"


# --- the bundle -----------------------------------------------------------------------------


def host_config(manifest: dict[str, Any], install_dir: Path, user: dict[str, Any]) -> dict[str, Any]:
    """The server command a host derives from the manifest (as @anthropic-ai/mcpb's
    getMcpConfigForManifest does): platform override, then ${...} substitution with the user's
    values over the manifest's defaults; booleans become "true"/"false"."""
    base = manifest["server"]["mcp_config"]
    config = {k: copy.deepcopy(v) for k, v in base.items() if k != "platform_overrides"}
    override = base.get("platform_overrides", {}).get(sys.platform, {})
    for key in ("command", "args", "env"):
        if key in override:
            config[key] = override[key]
    values: dict[str, str] = {"__dirname": str(install_dir), "/": os.sep, "pathSeparator": os.sep, "HOME": str(Path.home())}
    merged = {k: o["default"] for k, o in manifest.get("user_config", {}).items() if "default" in o}
    merged.update(user)
    for key, value in merged.items():
        values[f"user_config.{key}"] = ("true" if value else "false") if isinstance(value, bool) else str(value)

    def sub(s: str) -> str:
        for k, v in values.items():
            s = s.replace("${" + k + "}", v)
        return s

    config["command"] = sub(config["command"])
    config["args"] = [sub(a) for a in config.get("args", [])]
    config["env"] = {k: sub(v) for k, v in config.get("env", {}).items()}
    return config


def start_sandbox(token: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [str(binary()), "sandbox", "--seed", "demo", "--port", "0", "--token", token, "--rate-limit", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp")},
    )
    assert proc.stdout is not None
    for _ in range(20):
        line = proc.stdout.readline()
        m = re.search(r"AIRTABLE_API_URL=(\S+)", line)
        if m:
            return proc, m.group(1)
        if not line:
            break
    proc.kill()
    pytest.fail("the sandbox did not print its URL")


def unzip_like_a_host(bundle: Path, dest: Path) -> None:
    """Extract, keeping the Unix modes `mcpb pack` stored (zipfile alone drops them)."""
    with zipfile.ZipFile(bundle) as z:
        for info in z.infolist():
            path = Path(z.extract(info, dest))
            mode = (info.external_attr >> 16) & 0o777
            if mode:
                path.chmod(mode)


async def list_through_manifest(config: dict[str, Any], api_url: str) -> tuple[set[str], dict[str, Any]]:
    # The host's own environment plus the manifest's env; the test adds only the sandbox URL.
    env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp"), "AIRTABLE_MCP_LOG": "warn"}
    env.update(config["env"])
    env["AIRTABLE_API_URL"] = api_url
    env["AIRTABLE_MCP_KEYRING"] = "none"
    params = StdioServerParameters(command=config["command"], args=config["args"], env=env)
    async with Client(params, mode="legacy", read_timeout_seconds=60) as client:
        tools = {t.name for t in (await client.list_tools()).tools}
        result = await client.call_tool("list_bases", {})
        text = result.content[0].text if result.content else ""
        return tools, {"is_error": result.is_error, "text": text, "structured": result.structured_content}


def test_package_sh_packs_a_bundle_that_starts_through_its_manifest(tmp_path: Path) -> None:
    mcpb_cli()
    version = cargo_version()
    server_json = tmp_path / "server.json"
    shutil.copy(SERVER_JSON, server_json)
    out = tmp_path / "out"
    # The debug binary, stripped as release builds are (`strip = true`): half the size to zip.
    exe_name = "airtable-mcp.exe" if sys.platform == "win32" else "airtable-mcp"
    packed_bin = tmp_path / "bin" / exe_name
    packed_bin.parent.mkdir()
    shutil.copy2(binary(), packed_bin)
    if shutil.which("strip") and sys.platform == "linux":
        subprocess.run(["strip", str(packed_bin)], check=True, timeout=TIMEOUT)
    done = subprocess.run(
        ["bash", str(ROOT / "tools" / "package.sh"), "--binary", str(packed_bin), "--out", str(out), "--server-json", str(server_json)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    bundle = Path(re.search(r"^bundle: (.+)$", done.stdout, re.M).group(1))
    sha = re.search(r"^sha256: ([0-9a-f]{64})$", done.stdout, re.M).group(1)
    assert bundle.exists() and bundle.suffix == ".mcpb" and version in bundle.name
    assert hashlib.sha256(bundle.read_bytes()).hexdigest() == sha
    assert not (out / bundle.stem).exists(), "the staging directory is removed"

    # The bundle holds the manifest, the executable binary, the icon and the license.
    exe = "airtable-mcp.exe" if sys.platform == "win32" else "airtable-mcp"
    with zipfile.ZipFile(bundle) as z:
        names = set(z.namelist())
        assert {"manifest.json", f"server/{exe}", "icon.png", "LICENSE"} <= names, names
        mode = (z.getinfo(f"server/{exe}").external_attr >> 16) & 0o777
        assert mode & 0o111 == 0o111, oct(mode)
        packed = json.loads(z.read("manifest.json"))
    assert packed["compatibility"]["platforms"] == [host_platform()]
    source = json.loads(MANIFEST.read_text())
    assert {k: v for k, v in packed.items() if k != "compatibility"} == {k: v for k, v in source.items() if k != "compatibility"}

    install = tmp_path / "installed"
    unzip_like_a_host(bundle, install)
    assert os.access(install / "server" / exe, os.X_OK)
    shown = subprocess.run([str(install / "server" / exe), "--version"], capture_output=True, text=True, timeout=TIMEOUT, check=True)
    assert shown.stdout.strip() == f"airtable-mcp {version}"

    # Start it as a host would, with a token the sandbox accepts.
    token = "pat" + secrets.token_hex(12)
    sandbox, api_url = start_sandbox(token)
    try:
        config = host_config(packed, install, {"airtable_api_key": token})
        assert config["command"] == str(install / "server" / exe)
        assert config["env"]["AIRTABLE_API_KEY"] == token and "${" not in json.dumps(config)
        tools, call = asyncio.run(list_through_manifest(config, api_url))
        assert {"create_record", "list_bases", "export_table_csv"} <= tools
        assert not call["is_error"], call["text"]
        assert "appDemoTracker001" in call["text"]

        # Settings reach the server: read-only hides every write tool; the allow-list applies.
        ro = host_config(packed, install, {"airtable_api_key": token, "read_only": True, "toolsets": "records"})
        tools, call = asyncio.run(list_through_manifest(ro, api_url))
        assert "create_record" not in tools and "get_records" in tools and "create_field" not in tools
        assert not call["is_error"], call["text"]

        # A token the sandbox does not know: the call fails (the manifest's token is the one used).
        wrong = host_config(packed, install, {"airtable_api_key": "pat-not-this-one"})
        _, call = asyncio.run(list_through_manifest(wrong, api_url))
        assert call["is_error"], call["text"]
    finally:
        sandbox.kill()
        sandbox.wait(timeout=30)

    # --server-json recorded the bundle: release URL, real sha256, valid against the schema.
    doc = json.loads(server_json.read_text())
    validate_server_json(doc)
    entry = next(p for p in doc["packages"] if p["registryType"] == "mcpb")
    assert entry["identifier"] == f"https://github.com/airtable-mcp/airtable-mcp/releases/download/v{version}/{bundle.name}"
    assert "mcp" in entry["identifier"] and entry["fileSha256"] == sha
    assert entry["transport"] == {"type": "stdio"}
    assert {e["name"] for e in entry["environmentVariables"]} >= {"AIRTABLE_API_KEY"}


# --- server.json ----------------------------------------------------------------------------


def validate_server_json(doc: dict[str, Any]) -> None:
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft7Validator(schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER).validate(doc)
    # Rules of the official registry beyond the schema.
    for p in doc["packages"]:
        if p["registryType"] == "mcpb":
            assert "mcp" in p["identifier"] and re.fullmatch(r"[0-9a-f]{64}", p["fileSha256"])
            assert p["identifier"].startswith("https://github.com/") and "/releases/download/" in p["identifier"]


def test_server_json_validates_and_matches_the_crate() -> None:
    doc = json.loads(SERVER_JSON.read_text())
    validate_server_json(doc)
    version = cargo_version()
    assert doc["name"] == REGISTRY_NAME and doc["version"] == version
    assert doc["$schema"] == json.loads(SCHEMA.read_text())["$id"]
    assert len(doc["description"]) <= 100
    kinds = {p["registryType"]: p for p in doc["packages"]}
    assert set(kinds) == {"cargo", "oci"}, "mcpb packages are added at release time by tools/package.sh --server-json"
    assert kinds["cargo"]["identifier"] == tomllib.loads((ROOT / "Cargo.toml").read_text())["package"]["name"]
    assert kinds["cargo"]["version"] == version
    assert kinds["oci"]["identifier"] == f"ghcr.io/airtable-mcp/airtable-mcp:{version}"
    known = env_registry()
    for p in doc["packages"]:
        assert p["transport"] == {"type": "stdio"}
        assert p["packageArguments"] == [{"type": "positional", "value": "serve"}]
        env = {e["name"]: e for e in p["environmentVariables"]}
        assert set(env) <= known, set(env) - known
        assert env["AIRTABLE_API_KEY"]["isSecret"] and env["AIRTABLE_API_KEY"]["isRequired"]
        assert {"AIRTABLE_MCP_TOOLSETS", "AIRTABLE_MCP_READ_ONLY"} <= set(env)
    # crates.io strips HTML comments: the registry needs the name as visible README text.
    readme = (ROOT / "README.md").read_text()
    visible = re.sub(r"<!--.*?-->", "", readme, flags=re.S)
    assert f"mcp-name: {REGISTRY_NAME}" in visible


# --- release configuration ------------------------------------------------------------------


def dist_cli() -> Path:
    if not DIST.exists():
        pytest.fail(f"{DIST} missing: run tools/setup-test-env.sh (cargo-dist from tests/python/requirements.txt)")
    return DIST


def test_release_workflow_is_generated_from_the_dist_config() -> None:
    done = subprocess.run([str(dist_cli()), "generate", "--check"], capture_output=True, text=True, timeout=TIMEOUT, cwd=ROOT)
    assert done.returncode == 0, "release.yml is stale: run `dist generate`\n" + done.stdout + done.stderr
    workflow = (ROOT / ".github" / "workflows" / "release.yml").read_text()
    assert "uses: ./.github/workflows/mcpb.yml" in workflow
    assert "tools/package.sh" in (ROOT / ".github" / "workflows" / "mcpb.yml").read_text()


def test_binstall_metadata_names_the_archives_dist_builds() -> None:
    done = subprocess.run(
        [str(dist_cli()), "plan", "--output-format=json", "--no-local-paths"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    plan = json.loads(done.stdout)
    cargo = tomllib.loads((ROOT / "Cargo.toml").read_text())["package"]
    binstall = cargo["metadata"]["binstall"]
    targets = tomllib.loads((ROOT / "dist-workspace.toml").read_text())["dist"]["targets"]
    expected = {
        "aarch64-apple-darwin",
        "x86_64-apple-darwin",
        "aarch64-unknown-linux-gnu",
        "x86_64-unknown-linux-gnu",
        "x86_64-pc-windows-msvc",
    }
    assert expected <= set(targets)
    formats = {"txz": "tar.xz", "zip": "zip"}
    for target in targets:
        rules = {**binstall, **binstall.get("overrides", {}).get(target, {})}
        fmt = formats[rules["pkg-fmt"]]
        ext = ".exe" if "windows" in target else ""
        url = (
            rules["pkg-url"]
            .replace("{ repo }", cargo["repository"])
            .replace("{ version }", cargo["version"])
            .replace("{ name }", cargo["name"])
            .replace("{ target }", target)
            .replace("{ archive-format }", fmt)
        )
        name = url.rsplit("/", 1)[1]
        assert url == f"{cargo['repository']}/releases/download/v{cargo['version']}/{name}"
        artifact = plan["artifacts"].get(name)
        assert artifact is not None, f"dist builds no {name}: {sorted(plan['artifacts'])}"
        assets = {a.get("path") for a in artifact.get("assets", [])}
        binary_in = rules["bin-dir"].replace("{ name }", cargo["name"]).replace("{ target }", target)
        binary_in = binary_in.replace("{ bin }", cargo["name"]).replace("{ binary-ext }", ext)
        # dist's tarballs hold a top directory named after the archive; its zips do not.
        assert binary_in.rsplit("/", 1)[-1] in assets, (name, assets)
        if fmt == "zip":
            assert "/" not in binary_in
        else:
            assert binary_in == f"{cargo['name']}-{target}/{cargo['name']}{ext}"


def test_blank_env_settings_count_as_unset_but_blank_flags_are_refused(tmp_path: Path) -> None:
    """Hosts pass a blank optional setting as an empty environment variable: the server must
    start as if it were unset. The same empty value given as a flag is still refused."""
    base = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "AIRTABLE_MCP_KEYRING": "none", "AIRTABLE_MCP_LOG": "warn"}
    blank = {"AIRTABLE_MCP_BASES": "", "AIRTABLE_MCP_EXPORT_DIR": "", "AIRTABLE_MCP_TOOLSETS": "", "AIRTABLE_MCP_READ_ONLY": ""}

    async def tools_with(env: dict[str, str]) -> set[str]:
        params = StdioServerParameters(command=str(binary()), args=["serve", "--sandbox"], env={**base, **env})
        async with Client(params, mode="legacy", read_timeout_seconds=60) as client:
            return {t.name for t in (await client.list_tools()).tools}

    assert "create_record" in asyncio.run(tools_with(blank))
    for flag in (["--bases", ""], ["--export-dir", ""], ["--toolsets", ""]):
        done = subprocess.run(
            [str(binary()), "serve", "--sandbox", *flag],
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            env=base,
            stdin=subprocess.DEVNULL,
        )
        assert done.returncode != 0, (flag, done.stderr)
        assert flag[0].lstrip("-").replace("-", "_") in done.stderr.replace("-", "_"), (flag, done.stderr)
