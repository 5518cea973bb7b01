"""The installed ``claudine`` console in a real terminal: a detached tmux session, driven by
keys and by the CLI, its screen read back. Shared by the console's end-to-end tests."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from engine_helpers import cli_env, poll

CLAUDINE = shutil.which("claudine")

needs_tmux = pytest.mark.skipif(not CLAUDINE or not shutil.which("tmux"),
                                reason="needs tmux and claudine")


class Console:
    """The console running in a detached 120x36 tmux session of the default server, on the
    home ``tmp_path/home``; ``close`` ends the session whatever state it is in."""

    def __init__(self, tmp_path: Path, then: str = "", **env: str) -> None:
        """``then``: a shell command run after the console exits (its pane stays);
        ``env``: settings added to the home's environment (``cli_env``)."""
        self.env = cli_env(tmp_path / "home", **env)
        self.session = f"claudine-e2e-{uuid.uuid4().hex[:8]}"
        self.cwd = tmp_path
        exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in self.env.items()
                           if k.startswith(("CLAUDINE_", "IS_SANDBOX", "PYTHON", "EDITOR")))
        # A tmux server another process started may pass COLUMNS=80 LINES=24 on to its
        # panes, which the console would take over the pane's size.
        command = f"env -u COLUMNS -u LINES {exports} {CLAUDINE}"
        subprocess.run(["tmux", "new-session", "-d", "-s", self.session, "-x", "120", "-y",
                        "36", f"{command}{'; ' + then if then else ''}"],
                       check=True, cwd=tmp_path)

    def screen(self) -> str:
        # -J: a shell line the terminal wrapped comes back whole.
        return subprocess.run(["tmux", "capture-pane", "-p", "-J", "-t", f"{self.session}:0"],
                              capture_output=True, text=True).stdout

    def keys(self, *keys: str) -> None:
        subprocess.run(["tmux", "send-keys", "-t", f"{self.session}:0", *keys], check=True)

    def cli(self, *args: str) -> str:
        """``claudine ARGS`` on the console's home from another process; its stdout."""
        done = subprocess.run([CLAUDINE, *args], env=self.env, capture_output=True, text=True,
                              cwd=self.cwd, timeout=30)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    def windows(self) -> list[str]:
        return subprocess.run(["tmux", "list-windows", "-t", self.session, "-F",
                               "#{window_name} #{pane_current_path}"],
                              capture_output=True, text=True).stdout.splitlines()

    def wait(self, condition: Callable[[], object], timeout: float, what: str) -> object:
        """``poll``, showing the screen when it times out."""
        return poll(condition, timeout, what, self.screen)

    def task(self, task_id: str) -> dict[str, object]:
        """``claudine status ID --json``."""
        return dict(json.loads(self.cli("status", task_id, "--json")))

    def status(self, task_id: str) -> str:
        return str(self.task(task_id)["status"])

    def exited(self) -> bool:
        """The console's window (0) is gone (a window `e` opened may stay).

        Listed by index: a target ``session:0`` with no window 0 falls back to a window
        whose *name* starts with "0", and `e` names its window after a task's short id."""
        listed = subprocess.run(["tmux", "list-windows", "-t", self.session, "-F",
                                 "#{window_index}"], capture_output=True, text=True)
        return listed.returncode != 0 or "0" not in listed.stdout.split()

    def gone(self) -> bool:
        """The whole session is gone: the console, its only window, has exited."""
        return subprocess.run(["tmux", "has-session", "-t", self.session],
                              capture_output=True).returncode != 0

    def close(self) -> None:
        subprocess.run(["tmux", "kill-session", "-t", self.session], capture_output=True)
