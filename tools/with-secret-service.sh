#!/usr/bin/env bash
# Runs "$@" with an unlocked gnome-keyring Secret Service on the current D-Bus session.
# Use under dbus-run-session:  dbus-run-session -- tools/with-secret-service.sh cargo test
set -euo pipefail
if [ -n "${DBUS_SESSION_BUS_ADDRESS:-}" ] && command -v gnome-keyring-daemon >/dev/null 2>&1; then
  # A throwaway keyring under a private XDG data dir, unlocked with a throwaway password.
  export XDG_DATA_HOME="${XDG_DATA_HOME_FOR_TESTS:-$(mktemp -d)}"
  eval "$(printf 'test-password' | gnome-keyring-daemon --unlock --components=secrets)" || true
  export AIRTABLE_MCP_TEST_SECRET_SERVICE=1
fi
exec "$@"
