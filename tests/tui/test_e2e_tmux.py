"""End to end: the installed `claudine` console in tmux, driven by keys and by the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest
from tmux_console import Console, needs_tmux

pytestmark = pytest.mark.slow


@needs_tmux
def test_console_in_tmux_shows_delegated_task_and_cancels_it(tmp_path: Path) -> None:
    console = Console(tmp_path)
    try:
        console.wait(lambda: "owner · console" in console.screen(), 20,
                     "the console to own the home")
        task_id = console.cli("delegate", "[sleep:30] e2e from another process")
        short = task_id.removeprefix("task-")[:8]
        console.wait(lambda: short in console.screen(), 5, "the delegated row")
        console.wait(lambda: "running" in console.screen(), 20, "the agent to start")
        console.keys("c")
        console.wait(lambda: "Cancel task (y)" in console.screen(), 5, "the confirm dialog")
        console.keys("y")
        console.wait(lambda: console.status(task_id) == "cancelled", 20,
                     "the task to be cancelled in the store")
        console.wait(lambda: "⊘ cancelled" in console.screen(), 5, "the row to say cancelled")
        console.keys("q")
        console.wait(console.gone, 15, "the console to exit")
    finally:
        console.close()
