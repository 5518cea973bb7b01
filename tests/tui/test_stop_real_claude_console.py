"""The console's cancel key stops every process a REAL `claude` agent started, detached
ones included (see tests/e2e/test_stop_real_claude.py for the other ways to stop)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from conftest import wait_for
from detached_sleepers import Sleepers
from engine_helpers import agent_env, make_config

from claudine_core.engine import Engine
from claudine_core.models import TaskSpec, TaskState
from claudine_tui.app import ClaudineApp

pytestmark = pytest.mark.real_claude


async def test_cancel_key_stops_detached_processes(
    tmp_path: Path, real_claude_bin: Path, real_claude_env: dict[str, str]
) -> None:
    sleepers = Sleepers(tmp_path / "sleepers", seconds=5)
    config = make_config(tmp_path / "home", claude_bin=str(real_claude_bin), kill_grace_s=1)
    engine = Engine(config, kind="console", env=sleepers.env(agent_env(**real_claude_env)),
                    tick_s=0.05)
    prompt = f"Start the sleepers.\nBASH: {sleepers.command(then='sleep 60')}"
    task = engine.service.delegate(TaskSpec(prompt=prompt, cwd=str(tmp_path)))
    app = ClaudineApp(engine)
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_for(pilot, sleepers.tool_started, timeout=60, what="the Bash tool call")
        began = time.monotonic()
        app.table.move_cursor(row=app.table.get_row_index(task.id))
        await pilot.press("c", "y")
        await wait_for(pilot, lambda: engine.service.get(task.id).status is TaskState.CANCELLED,
                       timeout=30, what="the cancel")
        sleepers.assert_all_gone(engine.service.get(task.id).pid)
        await pilot.press("q")
    await sleepers.assert_never_finish(began)
    assert not sleepers.processes()
