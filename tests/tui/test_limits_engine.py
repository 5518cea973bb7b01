"""The console under a usage limit, through the real engine, store and fake agent.

Tasks are parked as the owner parks them (claudine_core.usage_limits.park, in the set-up),
or by the fake agent's real-shaped usage-limit result (``[usage-limit:S]``); the keys go
through the real TaskService.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import wait_for
from engine_helpers import agent_env, make_config
from textual.pilot import Pilot
from textual.widgets import Static

from claudine_core.config import Config
from claudine_core.engine import Engine
from claudine_core.models import Priority, TaskSpec, TaskState
from claudine_core.service import TaskService
from claudine_core.usage_limits import LimitHit, park
from claudine_tui.app import ClaudineApp
from claudine_tui.screens.confirm import ConfirmScreen
from claudine_tui.screens.costs import CostsScreen, CostTable
from claudine_tui.screens.quit import QuitScreen
from claudine_tui.task_text import clock_time

SIZE = (120, 36)
FIVE_HOUR = LimitHit("usage", limit_type="five_hour")


@pytest.fixture
def config(tmp_path: Path) -> Config:
    # One agent at a time: the task that hits the limit runs alone, the rest wait.
    return make_config(tmp_path / "home", max_agents=1, daily_budget_usd=5.0)


def engine_for(config: Config, tmp_path: Path) -> Engine:
    return Engine(config, kind="console", tick_s=0.05,
                  env=agent_env(CLAUDE_CONFIG_DIR=str(tmp_path / "claude-config")))


def parked(service: TaskService, prompt: str, until: float, cwd: Path) -> str:
    """A task claimed as dispatch claims it, then parked as the owner parks a run that a
    usage limit stopped (with no session yet: its next run starts over)."""
    task = service.delegate(TaskSpec(prompt, cwd=str(cwd)))
    assert service.repo.transition(task.id, [TaskState.QUEUED], status=TaskState.RUNNING,
                                   attempt=1, started_at=time.time())
    assert park(service.repo, service.get(task.id), FIVE_HOUR, until, time.time(), {})
    return task.id


def limits_line(app: ClaudineApp) -> str:
    line = app.query_one("#limits", Static)
    return str(line.render()) if line.display else ""


async def select_row(pilot: Pilot[Any], app: ClaudineApp, task_id: str) -> None:
    await wait_for(pilot, lambda: task_id in app.table.tasks, what=f"the row of {task_id}")
    app.table.move_cursor(row=app.table.get_row_index(task_id))
    await pilot.pause()


async def quit_stopping_agents(pilot: Pilot[Any]) -> None:
    await pilot.press("q")
    if isinstance(pilot.app.screen, QuitScreen):
        await pilot.press("s")


async def test_parked_tasks_on_a_paused_home_unpark_reprioritize_and_cancel(
        config: Config, tmp_path: Path) -> None:
    until = time.time() + 1800
    # The agents' environment is the delegating process's (IS_SANDBOX: root may skip
    # permissions), as with the engine's own service.
    setup = TaskService(config, env=agent_env())
    first = parked(setup, "[text:went on] first", until, tmp_path)
    second = parked(setup, "second", until, tmp_path)
    setup.ledger.record({first: 1.23}, time.time())  # what its run had spent
    waiting = setup.delegate(TaskSpec("[text:later] third", cwd=str(tmp_path))).id
    setup.close()

    engine = engine_for(config, tmp_path)
    service = engine.service
    app = ClaudineApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.engine_started)
        line = await wait_for(pilot, lambda: limits_line(app), what="the limits line")
        assert re.fullmatch(
            rf"◷ paused: usage limit reached \(five-hour\) until {clock_time(until, until)}, "
            r"in (29|30) min · 2 parked \(u: unpark\) · \$1\.23 of \$5\.00 today", line), line
        # The queued task waits for the reset: the pause holds it.
        assert service.get(waiting).status is TaskState.QUEUED

        # A parked task can be reprioritized and cancelled from the console.
        await select_row(pilot, app, second)
        await pilot.press("0")
        assert service.get(second).priority is Priority.P0
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="confirm")
        await pilot.press("y")
        assert service.get(second).status is TaskState.CANCELLED

        # `u` on a task that is not parked says so and changes nothing.
        await select_row(pilot, app, waiting)
        await pilot.press("u")
        assert any("is queued, not parked" in str(n.message) for n in app._notifications)
        assert not service.get(waiting).resuming

        # `u` on a parked task: it goes on now, though the home stays paused.
        await select_row(pilot, app, first)
        await pilot.press("u")
        await wait_for(pilot, lambda: service.get(first).status is TaskState.COMPLETED,
                       timeout=30, what="the released task to run and end")
        await wait_for(pilot, lambda: "parked" not in limits_line(app), what="none parked")
        assert limits_line(app).startswith("◷ paused: usage limit reached (five-hour)")
        assert service.get(waiting).status is TaskState.QUEUED
        await quit_stopping_agents(pilot)


async def test_an_agent_that_hits_the_usage_limit_shows_parked_and_the_pause(
        config: Config, tmp_path: Path) -> None:
    engine = engine_for(config, tmp_path)
    service = engine.service
    paid = service.delegate(TaskSpec("[cost:0.5] [text:paid for]", cwd=str(tmp_path)))
    limited = service.delegate(TaskSpec("[usage-limit:600] hits the wall", cwd=str(tmp_path)))
    app = ClaudineApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.engine_started)
        await wait_for(pilot, lambda: service.get(limited.id).status is TaskState.PARKED,
                       timeout=30, what="the agent to hit the limit")
        task = service.get(limited.id)
        assert task.parked_until is not None
        await wait_for(pilot, lambda: "1 parked" in limits_line(app), what="the pause")
        # Worded from the store's pause at the snapshot's instant (the fake agent's reset
        # is a whole minute, as the real CLI's).
        pause = service.usage_pause()
        assert pause is not None and pause.task_id == limited.id
        assert limits_line(app).startswith(f"◷ {pause.describe(app.last_snapshot.taken_at)}"
                                           " · 1 parked")
        status = str(app.table.get_cell(limited.id, "status"))
        activity = str(app.table.get_cell(limited.id, "activity"))
        assert status == "◷ parked"
        assert activity.startswith(f"until {clock_time(task.parked_until, time.time())}")

        # `$`: the costs of today and of this directory, from the ledger.
        assert service.get(paid.id).status is TaskState.COMPLETED
        await pilot.press("$")
        screen = await wait_for(pilot, lambda: isinstance(app.screen, CostsScreen)
                                and app.screen, what="the costs view")
        report = service.costs(30)
        by_day = screen.query_one("#by-day", CostTable)
        day, cost, _ = (str(cell) for cell in by_day.get_row_at(0))
        assert day == report.last_day and cost.startswith("$0.5")
        by_dir = screen.query_one("#by-directory", CostTable)
        assert str(by_dir.get_row_at(0)[0]) == str(tmp_path)
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, CostsScreen),
                       what="the view to close")
        await quit_stopping_agents(pilot)
