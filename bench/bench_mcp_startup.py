"""Launch -> answers to ``initialize`` and ``tools/list`` for ``claudine --headless``.

Each run starts the installed console script on a fresh home, sends ``initialize``, the
``initialized`` notification and ``tools/list``, and records the time from ``Popen`` to each
answer, then the answer to a first ``tools/call`` (TaskStatus, sent as soon as the tool
list is in: the stdio front answers it once the engine has started, without waiting for
the ``mcp`` SDK); then closes stdin and times the exit. Prints, for each figure, the
median of N launches and its spread: the quartiles and the extremes.

    python bench/bench_mcp_startup.py [-n 15] [--command "claudine --headless"]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                   "clientInfo": {"name": "bench", "version": "1"}}}
INITIALIZED = {"jsonrpc": "2.0", "method": "notifications/initialized"}
LIST = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}
CALL = {"jsonrpc": "2.0", "id": 3, "method": "tools/call",
        "params": {"name": "TaskStatus", "arguments": {}}}


def one_run(command: list[str]) -> tuple[float, float, float, float]:
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "CLAUDINE_HOME": home}
        started = time.perf_counter()
        process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                   stderr=subprocess.DEVNULL, env=env)
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write((json.dumps(INIT) + "\n").encode())
        process.stdin.flush()
        assert json.loads(process.stdout.readline())["id"] == 1
        init_at = time.perf_counter() - started
        process.stdin.write((json.dumps(INITIALIZED) + "\n" + json.dumps(LIST) + "\n").encode())
        process.stdin.flush()
        reply = json.loads(process.stdout.readline())
        listed_at = time.perf_counter() - started
        assert reply["id"] == 2 and reply["result"]["tools"], reply  # any version
        process.stdin.write((json.dumps(CALL) + "\n").encode())
        process.stdin.flush()
        assert json.loads(process.stdout.readline())["id"] == 3
        called_at = time.perf_counter() - started
        closing = time.perf_counter()
        process.stdin.close()
        process.wait(timeout=30)
        return init_at, listed_at, called_at, time.perf_counter() - closing


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=15, help="runs (default 15)")
    default = str(Path(sys.executable).with_name("claudine")) + " --headless"
    parser.add_argument("--command", default=default, help=f"default: {default}")
    args = parser.parse_args()
    command = shlex.split(args.command)
    one_run(command)  # warm the OS page cache and .pyc files
    runs = [one_run(command) for _ in range(args.n)]
    load = " ".join(f"{avg:.2f}" for avg in os.getloadavg())
    print(f"{args.command}  ({args.n} launches, {os.cpu_count()} CPUs, load {load})")
    for label, values in zip(("launch -> initialize", "launch -> tools/list",
                              "launch -> tools/call", "stdin closed -> exit"),
                             zip(*runs, strict=True), strict=True):
        low, _, high = (statistics.quantiles(values, n=4) if len(values) > 1
                        else [values[0]] * 3)
        print(f"  {label:22} median {statistics.median(values) * 1000:6.0f} ms   "
              f"quartiles {low * 1000:5.0f}-{high * 1000:<5.0f}  "
              f"min {min(values) * 1000:5.0f}   max {max(values) * 1000:5.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
