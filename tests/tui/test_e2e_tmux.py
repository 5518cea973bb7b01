"""End to end: the installed `claudine` console in tmux, driven by keys and by the CLI."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
from engine_helpers import cli_env, poll

pytestmark = pytest.mark.slow
CLAUDINE = shutil.which("claudine")


@pytest.mark.skipif(not CLAUDINE or not shutil.which("tmux"), reason="needs tmux and claudine")
def test_console_in_tmux_shows_delegated_task_and_cancels_it(tmp_path: Path) -> None:
    env = cli_env(tmp_path / "home")
    session = f"claudine-e2e-{uuid.uuid4().hex[:8]}"
    exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items()
                       if k.startswith(("CLAUDINE_", "IS_SANDBOX", "PYTHON")))
    command = f"env {exports} {CLAUDINE}"
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "120", "-y", "36",
                    command], check=True, cwd=tmp_path)

    def screen() -> str:
        return subprocess.run(["tmux", "capture-pane", "-p", "-t", session],
                              capture_output=True, text=True).stdout

    def cli(*args: str) -> str:
        done = subprocess.run([CLAUDINE, *args], env=env, capture_output=True, text=True,
                              cwd=tmp_path, timeout=30)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    try:
        poll(lambda: "owner · console" in screen(), 20, "the console to own the home")
        task_id = cli("delegate", "[sleep:30] e2e from another process")
        short = task_id.removeprefix("task-")[:8]
        poll(lambda: short in screen(), 5, "the delegated row")
        poll(lambda: "running" in screen(), 20, "the agent to start")
        subprocess.run(["tmux", "send-keys", "-t", session, "c"], check=True)
        poll(lambda: "Cancel task (y)" in screen(), 5, "the confirm dialog")
        subprocess.run(["tmux", "send-keys", "-t", session, "y"], check=True)

        def cancelled() -> bool:
            return json.loads(cli("status", task_id, "--json"))["status"] == "cancelled"

        poll(cancelled, 20, "the task to be cancelled in the store")
        poll(lambda: "⊘ cancelled" in screen(), 5, "the row to say cancelled")
        subprocess.run(["tmux", "send-keys", "-t", session, "q"], check=True)

        def gone() -> bool:
            return subprocess.run(["tmux", "has-session", "-t", session],
                                  capture_output=True).returncode != 0

        poll(gone, 15, "the console to exit", screen)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
