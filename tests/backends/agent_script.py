"""A stand-in agent for the backend contract tests (stdlib only; the wrapper runs it).

Usage: ``agent_script.py MODE [PIDFILE]``
- ``lines N``: print N numbered JSON lines, a little at a time, say so on stderr, then
  exit 0.
- ``ticker PIDFILE``: print a numbered line every 20 ms until stopped.
- ``stubborn PIDFILE``: ignore SIGTERM, and start a detached grandchild that ignores it
  too (as a ``claude`` Bash tool's command would); both pids go to PIDFILE.

Every mode that runs until stopped prints ``{"started": true}`` once its pids are written.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

IGNORING_SLEEPER = ("import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
                    "time.sleep(600)\n")


def emit(record: dict[str, object]) -> None:
    sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()


def write_pids(path: str, pids: list[int]) -> None:
    with open(path + ".tmp", "w") as handle:
        handle.write(" ".join(map(str, pids)))
    os.replace(path + ".tmp", path)


def lines(count: int) -> None:
    for n in range(count):
        emit({"type": "line", "n": n, "pad": "x" * (n % 37)})
        if n % 50 == 49:
            time.sleep(0.01)  # let a reader catch the log mid-way
    sys.stderr.write(stderr_of_lines(count))
    sys.stderr.flush()


def stderr_of_lines(count: int) -> str:
    return f"wrote {count} lines\n"


def ticker(pidfile: str) -> None:
    write_pids(pidfile, [os.getpid()])
    emit({"started": True})
    n = 0
    while True:
        emit({"type": "tick", "n": n})
        n += 1
        time.sleep(0.02)


def stubborn(pidfile: str) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    grandchild = subprocess.Popen([sys.executable, "-c", IGNORING_SLEEPER],
                                  start_new_session=True)
    write_pids(pidfile, [os.getpid(), grandchild.pid])
    emit({"started": True})
    time.sleep(600)


def main(argv: list[str]) -> None:
    mode, arg = argv[0], argv[1]
    if mode == "lines":
        lines(int(arg))
    elif mode == "ticker":
        ticker(arg)
    elif mode == "stubborn":
        stubborn(arg)
    else:
        raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    main(sys.argv[1:])
