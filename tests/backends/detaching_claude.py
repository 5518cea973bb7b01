#!/usr/bin/env python3
"""The fake ``claude`` (tests/fakes/fake_claude.py), after leaving behind a detached
grandchild that ignores SIGTERM, as a ``claude`` Bash tool's ``setsid ... &`` would: a
process in a session of its own, out of reach of the agent's process group.

The grandchild's pid goes to the file ``$DETACHED_PID_FILE`` names (the agent's
environment), before the fake starts; then this process becomes the fake, same pid and
arguments, so the fake's own directives ([ignore-sigterm], [grandchild:P], ...) apply.
Stdlib only: it runs wherever the agent runs (a Ray node of the test cluster).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

FAKE_CLAUDE = Path(__file__).resolve().parents[1] / "fakes" / "fake_claude.py"
IGNORING_SLEEPER = ("import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
                    "time.sleep(600)\n")


def main() -> None:
    sleeper = subprocess.Popen([sys.executable, "-c", IGNORING_SLEEPER],
                               start_new_session=True, stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pid_file = os.environ["DETACHED_PID_FILE"]
    with open(pid_file + ".tmp", "w") as handle:
        handle.write(str(sleeper.pid))
    os.replace(pid_file + ".tmp", pid_file)
    os.execv(sys.executable, [sys.executable, str(FAKE_CLAUDE), *sys.argv[1:]])


if __name__ == "__main__":
    main()
