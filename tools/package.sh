#!/usr/bin/env bash
# Builds the Claude Desktop extension (.mcpb) for one target, and optionally records it in a
# registry server.json.
#
#   tools/package.sh [--target TRIPLE] [--binary PATH] [--out DIR]
#   tools/package.sh ... --server-json FILE [--release-url URL]
#   tools/package.sh --mcpb BUNDLE --server-json FILE [--release-url URL]
#
#   --target TRIPLE   Rust target the bundle is for (default: the host's). Decides the binary's
#                     name (.exe on Windows) and the manifest's compatibility.platforms.
#   --binary PATH     Use this binary instead of building one (`cargo build --profile dist`).
#   --out DIR         Where the bundle goes (default target/mcpb in the current directory).
#   --server-json F   Add (or replace) the bundle's `mcpb` package in the server.json F: its
#                     release URL and sha256, the stdio transport and the environment variables
#                     of the cargo package. The release workflow runs this on a copy of the
#                     repository's server.json for every bundle it built.
#   --release-url URL Release download URL the bundle will be published under (default
#                     https://github.com/airtable-mcp/airtable-mcp/releases/download/v<version>).
#   --mcpb BUNDLE     Skip packing: record an existing bundle in --server-json.
#
# One bundle per target (see packaging/README.md): server/airtable-mcp[.exe], manifest.json
# (from packaging/mcpb/, platforms narrowed to the target's OS), icon.png and LICENSE, checked
# with `mcpb validate` and zipped with `mcpb pack` (the official CLI, pinned in
# packaging/package-lock.json; installed with `npm ci` when missing). Prints the bundle's path
# and sha256.
set -euo pipefail
caller="$PWD"
cd "$(dirname "$0")/.."
root="$PWD"

die() {
  echo "package.sh: $*" >&2
  exit 2
}

target="" binary="" out="target/mcpb" server_json="" release_url="" mcpb_in=""
while [ $# -gt 0 ]; do
  case "$1" in
    --target) target="${2:?--target needs a value}"; shift 2 ;;
    --binary) binary="${2:?--binary needs a value}"; shift 2 ;;
    --out) out="${2:?--out needs a value}"; shift 2 ;;
    --server-json) server_json="${2:?--server-json needs a value}"; shift 2 ;;
    --release-url) release_url="${2:?--release-url needs a value}"; shift 2 ;;
    --mcpb) mcpb_in="${2:?--mcpb needs a value}"; shift 2 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done

# Paths given on the command line are relative to where the script was called from.
abs() {
  case "$1" in
    "" | /*) printf '%s' "$1" ;;
    *) printf '%s/%s' "$caller" "$1" ;;
  esac
}
binary="$(abs "$binary")" server_json="$(abs "$server_json")" mcpb_in="$(abs "$mcpb_in")"
case "$out" in /*) ;; *) out="$caller/$out" ;; esac

command -v node >/dev/null 2>&1 || die "node is required (tools/setup-test-env.sh installs it)"

# The version of the crate: [package] version in Cargo.toml.
version="$(awk '/^\[package\]/ { p = 1; next } /^\[/ { p = 0 } p && $1 == "version" { gsub(/"/, "", $3); print $3; exit }' Cargo.toml)"
[ -n "$version" ] || die "no [package] version in Cargo.toml"
[ -n "$release_url" ] || release_url="https://github.com/airtable-mcp/airtable-mcp/releases/download/v${version}"

sha256_of() {
  if command -v sha256sum >/dev/null 2>&1; then
    sha256sum "$1" | cut -d' ' -f1
  else
    shasum -a 256 "$1" | cut -d' ' -f1
  fi
}

# Records bundle $1 in $server_json (an `mcpb` package whose identifier is the release URL).
record_in_server_json() {
  local bundle="$1" sha
  sha="$(sha256_of "$bundle")"
  [ -f "$server_json" ] || die "$server_json does not exist (copy the repository's server.json first)"
  node - "$server_json" "$release_url/$(basename "$bundle")" "$sha" "$version" <<'EOF'
const fs = require("fs");
const [file, url, sha, version] = process.argv.slice(2);
const doc = JSON.parse(fs.readFileSync(file, "utf8"));
if (doc.version !== version) {
  console.error(`package.sh: ${file} has version ${doc.version}, Cargo.toml ${version}`);
  process.exit(2);
}
const packages = doc.packages || [];
const cargo = packages.find((p) => p.registryType === "cargo");
const entry = {
  registryType: "mcpb",
  identifier: url,
  version,
  fileSha256: sha,
  transport: { type: "stdio" },
};
if (cargo && cargo.packageArguments) entry.packageArguments = cargo.packageArguments;
if (cargo && cargo.environmentVariables) entry.environmentVariables = cargo.environmentVariables;
doc.packages = packages.filter((p) => !(p.registryType === "mcpb" && p.identifier === url));
doc.packages.push(entry);
fs.writeFileSync(file, JSON.stringify(doc, null, 2) + "\n");
EOF
  echo "server.json: $server_json lists $release_url/$(basename "$bundle")"
}

if [ -n "$mcpb_in" ]; then
  [ -n "$server_json" ] || die "--mcpb only records a bundle: give --server-json FILE"
  [ -f "$mcpb_in" ] || die "no bundle at $mcpb_in"
  record_in_server_json "$mcpb_in"
  exit 0
fi

[ -n "$target" ] || target="$(rustc -vV | sed -n 's/^host: //p')"
[ -n "$target" ] || die "cannot tell the host target (is rustc installed?): give --target"
case "$target" in
  *-windows-*) os=win32 exe=.exe ;;
  *-apple-darwin) os=darwin exe= ;;
  *-linux-*) os=linux exe= ;;
  *) die "no MCP Bundle platform for target $target (linux, darwin and windows only)" ;;
esac

if [ -z "$binary" ]; then
  echo "package.sh: building airtable-mcp for $target (cargo build --profile dist)" >&2
  cargo build --locked --profile dist --target "$target" >&2
  binary="target/$target/dist/airtable-mcp$exe"
fi
[ -f "$binary" ] || die "no binary at $binary"

# The pinned official CLI.
mcpb="$root/packaging/node_modules/.bin/mcpb"
if [ ! -x "$mcpb" ]; then
  echo "package.sh: installing the mcpb CLI (npm ci in packaging/)" >&2
  npm ci --prefix packaging --no-audit --no-fund --loglevel=error >&2
fi

mkdir -p "$out"
out="$(cd "$out" && pwd)"
name="airtable-mcp-${version}-${target}"
stage="$out/$name"
rm -rf "$stage"
mkdir -p "$stage/server"
cp "$binary" "$stage/server/airtable-mcp$exe"
chmod 755 "$stage/server/airtable-mcp$exe"
cp packaging/mcpb/icon.png LICENSE "$stage/"

# The manifest, with this target's platform only and the crate's version checked.
node - packaging/mcpb/manifest.json "$stage/manifest.json" "$os" "$version" <<'EOF'
const fs = require("fs");
const [src, dst, os, version] = process.argv.slice(2);
const m = JSON.parse(fs.readFileSync(src, "utf8"));
if (m.version !== version) {
  console.error(`package.sh: ${src} has version ${m.version}, Cargo.toml ${version}`);
  process.exit(2);
}
m.compatibility = { ...(m.compatibility || {}), platforms: [os] };
fs.writeFileSync(dst, JSON.stringify(m, null, 2) + "\n");
EOF

"$mcpb" validate "$stage" >&2
bundle="$out/$name.mcpb"
rm -f "$bundle"
"$mcpb" pack "$stage" "$bundle" >&2
rm -rf "$stage"

echo "bundle: $bundle"
echo "sha256: $(sha256_of "$bundle")"

if [ -n "$server_json" ]; then
  record_in_server_json "$bundle"
fi
