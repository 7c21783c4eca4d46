#!/usr/bin/env bash
# Runs "$@" with an unlocked gnome-keyring Secret Service on the current D-Bus session, and sets
# AIRTABLE_MCP_TEST_SECRET_SERVICE=1 so the keyring tests use it and FAIL (not skip) if it does
# not work. Use under dbus-run-session:
#   dbus-run-session -- tools/with-secret-service.sh cargo test --test cli auth_keyring::
set -euo pipefail
if [ -z "${DBUS_SESSION_BUS_ADDRESS:-}" ]; then
  echo "with-secret-service.sh: no D-Bus session; run it under dbus-run-session" >&2
  exit 2
fi
if ! command -v gnome-keyring-daemon >/dev/null 2>&1; then
  echo "with-secret-service.sh: gnome-keyring-daemon is missing; run tools/setup-test-env.sh" >&2
  exit 2
fi
# A throwaway keyring under a private XDG data dir, unlocked with a throwaway password:
# --unlock reads the password on stdin and creates (or unlocks) the login collection.
export XDG_DATA_HOME="${XDG_DATA_HOME_FOR_TESTS:-$(mktemp -d)}"
if ! env_lines="$(printf 'test-password' | gnome-keyring-daemon --unlock --components=secrets)"; then
  echo "with-secret-service.sh: gnome-keyring-daemon --unlock failed; the Secret Service tests will fail" >&2
fi
eval "$env_lines"
# The daemon claims org.freedesktop.secrets asynchronously. Anything that talks to the Secret
# Service before that makes D-Bus activate a second, locked daemon (which then wants a GUI
# prompt). So wait until the name has an owner: NameHasOwner never activates anything.
has_owner() {
  dbus-send --session --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
    org.freedesktop.DBus.NameHasOwner string:org.freedesktop.secrets 2>/dev/null | grep -q 'boolean true'
}
for _ in $(seq 1 100); do
  has_owner && break
  sleep 0.05
done
has_owner || echo "with-secret-service.sh: gnome-keyring did not claim org.freedesktop.secrets" >&2
# Say early (and plainly) when the collection is not usable; the tests will then fail.
if command -v secret-tool >/dev/null 2>&1; then
  if printf 'probe' | secret-tool store --label=airtable-mcp-probe service airtable-mcp-probe username probe 2>/dev/null \
     && [ "$(secret-tool lookup service airtable-mcp-probe username probe 2>/dev/null)" = probe ]; then
    secret-tool clear service airtable-mcp-probe username probe 2>/dev/null || true
  else
    echo "with-secret-service.sh: the Secret Service does not store secrets; the Secret Service tests will fail" >&2
  fi
fi
export AIRTABLE_MCP_TEST_SECRET_SERVICE=1
exec "$@"
