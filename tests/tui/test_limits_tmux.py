"""End to end: the installed `claudine` console in a real tmux terminal, when an agent hits
the subscription's usage limit: the pause shows under the gauges, the task's row says
parked and until when, `u` lets it go on, `$` opens the costs."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import uuid
from datetime import datetime
from pathlib import Path

import pytest
from engine_helpers import cli_env, poll

pytestmark = pytest.mark.slow
CLAUDINE = shutil.which("claudine")


@pytest.mark.skipif(not CLAUDINE or not shutil.which("tmux"), reason="needs tmux and claudine")
def test_the_paused_line_and_the_parked_row_on_a_real_screen(tmp_path: Path) -> None:
    env = cli_env(tmp_path / "home", CLAUDINE_DAILY_BUDGET_USD="5")
    session = f"claudine-e2e-{uuid.uuid4().hex[:8]}"
    exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items()
                       if k.startswith(("CLAUDINE_", "IS_SANDBOX", "PYTHON")))
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "120", "-y", "36",
                    # A tmux server another process started may pass COLUMNS=80 LINES=24
                    # on to its panes, which the console would take over the pane's size.
                    f"env -u COLUMNS -u LINES {exports} {CLAUDINE}"], check=True, cwd=tmp_path)

    def screen() -> str:
        return subprocess.run(["tmux", "capture-pane", "-p", "-t", session],
                              capture_output=True, text=True).stdout

    def keys(*names: str) -> None:
        subprocess.run(["tmux", "send-keys", "-t", session, *names], check=True)

    def cli(*args: str) -> str:
        done = subprocess.run([CLAUDINE, *args], env=env, capture_output=True, text=True,
                              cwd=tmp_path, timeout=30)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    def status(task_id: str) -> dict[str, object]:
        return dict(json.loads(cli("status", task_id, "--json")))

    try:
        poll(lambda: "owner · console" in screen(), 20, "the console", screen)
        task_id = cli("delegate", "refactor the billing module [usage-limit:600]")
        short = task_id.removeprefix("task-")[:8]
        poll(lambda: status(task_id)["status"] == "parked", 30, "the task to park", screen)
        # The reset in local time (the console's zone is this process's).
        reset = datetime.fromisoformat(str(status(task_id)["parked_until"])).timestamp()
        until = datetime.fromtimestamp(reset).strftime("%H:%M")
        poll(lambda: re.search(
            rf"◷ paused: usage limit reached \(five-hour\) until {until}, in \d+ min · "
            r"1 parked \(u: unpark\) · \$0\.\d\d of \$5\.00 today", screen()),
            10, "the paused line", screen)
        # Its own prompt, not the note it resumes with; when it goes on.
        assert re.search(rf"◷ parked +P2 +{short} +refactor the billing.* until {until} · "
                         "usage limit", screen()), screen()

        keys("$")
        poll(lambda: "Costs · last 30 days" in screen(), 10, "the costs view", screen)
        keys("Escape")
        poll(lambda: "Costs · last 30 days" not in screen(), 10, "the table back", screen)

        keys("u")  # the only row is selected: it goes on now, resuming its session
        poll(lambda: status(task_id)["status"] == "completed", 30,
             "the released task to end", screen)
        assert str(status(task_id)["result"]).startswith("RESUMED")  # its own session
        poll(lambda: "parked" not in screen().split("Tasks")[0], 10,
             "no parked count on the gauges", screen)
        assert "◷ paused: usage limit reached" in screen()  # the home stays paused
        keys("q")

        def gone() -> bool:
            return subprocess.run(["tmux", "has-session", "-t", session],
                                  capture_output=True).returncode != 0

        poll(gone, 15, "the console to exit", screen)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
