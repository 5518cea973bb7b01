"""End to end: the installed `claudine` console in a real tmux terminal, when an agent hits
the subscription's usage limit: the pause shows under the gauges, the task's row says
parked and until when, `u` lets it go on, `$` opens the costs."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

import pytest
from tmux_console import Console, needs_tmux

pytestmark = pytest.mark.slow


@needs_tmux
def test_the_paused_line_and_the_parked_row_on_a_real_screen(tmp_path: Path) -> None:
    console = Console(tmp_path, CLAUDINE_DAILY_BUDGET_USD="5")
    try:
        console.wait(lambda: "owner · console" in console.screen(), 20, "the console")
        task_id = console.cli("delegate", "refactor the billing module [usage-limit:600]")
        short = task_id.removeprefix("task-")[:8]
        console.wait(lambda: console.task(task_id)["status"] == "parked", 30, "the task to park")
        # The reset in local time (the console's zone is this process's).
        reset = datetime.fromisoformat(str(console.task(task_id)["parked_until"])).timestamp()
        until = datetime.fromtimestamp(reset).strftime("%H:%M")
        console.wait(lambda: re.search(
            rf"◷ paused: usage limit reached \(five-hour\) until {until}, in \d+ min · "
            r"1 parked \(u: unpark\) · \$0\.\d\d of \$5\.00 today", console.screen()),
            10, "the paused line")
        # Its own prompt, not the note it resumes with; when it goes on.
        assert re.search(rf"◷ parked +P2 +{short} +refactor the billing.* until {until} · "
                         "usage limit", console.screen()), console.screen()

        console.keys("$")
        console.wait(lambda: "Costs · last 30 days" in console.screen(), 10, "the costs view")
        console.keys("Escape")
        console.wait(lambda: "Costs · last 30 days" not in console.screen(), 10, "the table back")

        console.keys("u")  # the only row is selected: it goes on now, resuming its session
        console.wait(lambda: console.task(task_id)["status"] == "completed", 30,
                     "the released task to end")
        assert str(console.task(task_id)["result"]).startswith("RESUMED")  # its own session
        console.wait(lambda: "parked" not in console.screen().split("Tasks")[0], 10,
                     "no parked count on the gauges")
        assert "◷ paused: usage limit reached" in console.screen()  # the home stays paused
        console.keys("q")
        console.wait(console.gone, 15, "the console to exit")
    finally:
        console.close()
