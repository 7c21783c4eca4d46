#!/usr/bin/env python3
"""Write tools/symbol-order.txt: the functions of the release binary that a session runs, for the
linker to place side by side (see build.rs). Run through tools/symbol-order.sh.

Each profile runs `airtable-mcp serve` under callgrind against a fresh sandbox:
  0. the start-up: initialize and tools/list, then the end of stdin (the main thread only: what
     the host waits for, not the warm-up thread that runs once the exchange is answered);
  1. a read session: start-up, tools/list, list_bases, list_tables, get_field_info,
     search_records and get_records (what almost every session does);
  2. a call of every tool, in both protocol eras (tests/python/test_stdio_e2e.py).
The file lists the functions of 0, hottest first, then the others of 1, then those of 2. The
start-up runs each of its functions about once: ranked among the read session's by cost, they
were spread over its 3 MB of code, and a start touched (and faulted in) most of it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CALLGRIND = ["valgrind", "--tool=callgrind", "--demangle=no"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Sandbox:
    """A fresh demo sandbox on a free loopback port, without a rate limit."""

    def __init__(self, binary: Path) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            [str(binary), "sandbox", "--port", str(self.port), "--seed", "demo", "--rate-limit", "0"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "AIRTABLE_MCP_LOG": "error"},
        )
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise SystemExit("the sandbox did not start")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> "Sandbox":
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        self.proc.wait()


class Served:
    """`airtable-mcp serve` under callgrind on `sandbox`, spoken to in raw JSON-RPC on stdio."""

    def __init__(self, binary: Path, sandbox: Sandbox, out: Path, *callgrind: str) -> None:
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(out.parent),
            "AIRTABLE_API_URL": sandbox.url,
            "AIRTABLE_API_KEY": "sandbox-token",
            "AIRTABLE_MCP_LOG": "error",
        }
        cmd = CALLGRIND + [*callgrind, f"--callgrind-out-file={out}", str(binary), "serve"]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
        self.next_id = 0

    def request(self, method: str, params: dict, notify: bool = False) -> dict:
        p = self.proc
        assert p.stdin is not None and p.stdout is not None
        msg: dict = {"jsonrpc": "2.0", "method": method, "params": params}
        if not notify:
            self.next_id += 1
            msg["id"] = self.next_id
        p.stdin.write((json.dumps(msg) + "\n").encode())
        p.stdin.flush()
        while not notify:
            answer = json.loads(p.stdout.readline())
            if answer.get("id") == self.next_id:
                if "error" in answer or answer.get("result", {}).get("isError"):
                    raise SystemExit(f"{method} failed: {answer}")
                return answer["result"]
        return {}

    def call(self, name: str, args: dict) -> dict:
        return self.request("tools/call", {"name": name, "arguments": args})["structuredContent"]

    def start(self) -> None:
        """The host's start-up exchange: initialize, initialized, tools/list."""
        self.request("initialize", {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "symbol-order", "version": "1"}})
        self.request("notifications/initialized", {}, notify=True)
        self.request("tools/list", {})

    def close(self) -> None:
        """End of stdin: the server stops, callgrind writes its profile."""
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait()


def read_session(binary: Path, sandbox: Sandbox, out: Path) -> None:
    """Profile 1 over raw JSON-RPC on stdio."""
    s = Served(binary, sandbox, out)
    s.start()
    base = s.call("list_bases", {})["bases"][0]["id"]
    tables = s.call("list_tables", {"base_id": base})["tables"]
    table = next(t for t in tables if t["name"] == "Tasks")["id"]
    s.call("get_field_info", {"base_id": base, "table_id": table})
    s.call("search_records", {"base_id": base, "table_id": table, "query": "design"})
    for _ in range(3):
        s.call("get_records", {"base_id": base, "table_id": table, "max_records": 100})
    s.close()


def start_up(binary: Path, sandbox: Sandbox, out: Path) -> Path:
    """Profile 0: initialize, tools/list, end of stdin; returns the main thread's profile."""
    s = Served(binary, sandbox, out, "--separate-threads=yes")
    s.start()
    s.close()
    main_thread = Path(f"{out}-01")
    if not main_thread.exists():
        raise SystemExit(f"callgrind wrote no {main_thread}")
    return main_thread


def every_tool(binary: Path, mode: str, work: Path) -> None:
    """Profile 2: tests/python/test_stdio_e2e.py's call of every tool, the server under callgrind."""
    with Sandbox(binary) as sandbox:
        wrapper = work / f"serve-{mode}.sh"
        # The test starts `serve --sandbox`; the profile is of `serve` alone, on the sandbox above.
        wrapper.write_text(
            "#!/bin/sh\n"
            'args=""; for a in "$@"; do [ "$a" = --sandbox ] || args="$args $a"; done\n'
            f"exec env AIRTABLE_API_URL={sandbox.url} AIRTABLE_API_KEY=sandbox-token "
            + " ".join(CALLGRIND)
            + f" --callgrind-out-file={work}/every-{mode}.%p {binary} $args\n"
        )
        wrapper.chmod(0o755)
        os.environ["AIRTABLE_MCP_BIN"] = str(wrapper)
        sys.path.insert(0, str(ROOT / "tests" / "python"))
        import test_stdio_e2e  # noqa: PLC0415 (reads AIRTABLE_MCP_BIN when imported)

        test_stdio_e2e.BIN = wrapper
        with tempfile.TemporaryDirectory() as tmp:
            asyncio.run(test_stdio_e2e.run_everything(mode, Path(tmp)))


def functions(binary: Path, profiles: list[Path]) -> list[str]:
    """The functions of `binary` the profiles ran, by their own cost, highest first."""
    symbols = set()
    nm = subprocess.run(["nm", "--defined-only", str(binary)], capture_output=True, text=True, check=True)
    for line in nm.stdout.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] in "tTwW":
            symbols.add(parts[2])
    cost: dict[str, int] = defaultdict(int)
    for path in profiles:
        names: dict[str, str] = {}
        current = None
        after_calls = False
        for line in path.open(errors="replace"):
            m = re.match(r"(c?)fn=\((\d+)\)(?: (.*))?$", line.rstrip("\n"))
            if m:
                if m.group(3) is not None:
                    # "name'2" is callgrind's name for a recursion level.
                    names[m.group(2)] = re.sub(r"'\d+$", "", m.group(3))
                name = names.get(m.group(2))
                if m.group(1):
                    cost[name or ""] += 0
                else:
                    current = name
                continue
            if line.startswith("calls="):
                after_calls = True
            elif line[:1].isdigit() or line[:1] in "+-*":
                if after_calls:  # the inclusive cost of a call, not this function's own
                    after_calls = False
                elif current:
                    cost[current] += int(line.split()[-1])
    ran = [n for n in cost if n in symbols]
    ran.sort(key=lambda n: (-cost[n], n))
    return ran


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", type=Path, required=True, help="the release binary to profile")
    ap.add_argument("--out", type=Path, default=ROOT / "tools" / "symbol-order.txt")
    args = ap.parse_args()
    binary = args.bin.resolve()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        with Sandbox(binary) as sandbox:
            start = start_up(binary, sandbox, work / "start.out")
            read_session(binary, sandbox, work / "read.out")
        for mode in ("legacy", "2026-07-28"):
            every_tool(binary, mode, work)
        order: list[str] = []
        seen: set[str] = set()
        counts = []
        for group in ([start], [work / "read.out"], sorted(work.glob("every-*"))):
            new = [n for n in functions(binary, group) if n not in seen]
            seen.update(new)
            order += new
            counts.append(len(new))
    args.out.write_text("\n".join(order) + "\n")
    print(
        f"{args.out}: {len(order)} functions ({counts[0]} of the start-up first, "
        f"then {counts[1]} more of the read session)"
    )


if __name__ == "__main__":
    main()
