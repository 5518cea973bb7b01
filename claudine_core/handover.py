"""Making sure a home has an owner: a detached ``claudine serve --auto`` when it has none.

Two kinds of callers need this, and neither may need the engine to do it: a CLI command
that wrote a task (it must not load the engine, nor wait for one), and an engine that
stops with work left behind (the hand-over). So it lives apart from serve.py, which
runs the engine.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

from claudine_core.config import Config
from claudine_core.ownership import current_owner


def ensure_owner(config: Config) -> int | None:
    """Start a detached ``claudine serve --auto`` unless someone owns the home.

    Returns the pid of the process started, or None when an owner was already running.
    """
    if current_owner(config.lock_path) is not None:
        return None
    log_path = config.home / "serve.log"
    config.home.mkdir(mode=0o700, parents=True, exist_ok=True)  # serve --detach, fresh home
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "claudine_tui", "serve", "--auto"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=fd,
            start_new_session=True,
            close_fds=True,
            env={**os.environ, "CLAUDINE_HOME": str(config.home)},
        )
    finally:
        os.close(fd)
    return process.pid


def wait_for_owner(config: Config, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if current_owner(config.lock_path) is not None:
            return True
        time.sleep(0.05)
    return False
