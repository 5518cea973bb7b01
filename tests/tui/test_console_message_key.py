"""`m` in the console: a message to the selected task's agent, through the real engine.

A running agent reads it at its next turn (it shows in the log as the user's turn, and as
delivered in the store); a finished task's conversation continues with it as a new task.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import wait_for
from engine_helpers import agent_env, make_config
from textual.pilot import Pilot
from textual.widgets import Label

from claudine_core.agents.stream_events import UserText
from claudine_core.engine import Engine
from claudine_core.models import TaskSpec, TaskState
from claudine_tui.app import ClaudineApp
from claudine_tui.screens.message import MessageScreen
from claudine_tui.screens.quit import QuitScreen

SIZE = (120, 36)


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    return Engine(make_config(tmp_path / "home"), kind="console",
                  env=agent_env(CLAUDE_CONFIG_DIR=str(tmp_path / "claude-config")),
                  tick_s=0.05)


async def select_row(pilot: Pilot[Any], app: ClaudineApp, task_id: str) -> None:
    await wait_for(pilot, lambda: task_id in app.table.tasks, what=f"the row of {task_id}")
    app.table.move_cursor(row=app.table.get_row_index(task_id))
    await pilot.pause()


async def send_with_m(pilot: Pilot[Any], app: ClaudineApp, text: str) -> None:
    await pilot.press("m")
    await wait_for(pilot, lambda: isinstance(app.screen, MessageScreen), what="the box")
    await pilot.press(*text, "enter")
    await wait_for(pilot, lambda: not isinstance(app.screen, MessageScreen),
                   what="the box to close")


async def quit_stopping_agents(pilot: Pilot[Any]) -> None:
    await pilot.press("q")
    if isinstance(pilot.app.screen, QuitScreen):
        await pilot.press("s")


async def test_m_on_a_running_task_reaches_its_next_turn(engine: Engine,
                                                          tmp_path: Path) -> None:
    task = engine.service.delegate(TaskSpec("[sleep:8] first turn", cwd=str(tmp_path)))
    app = ClaudineApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.engine_started)
        await wait_for(pilot, lambda: engine.service.get(task.id).status
                       is TaskState.RUNNING, timeout=30, what="the agent to run")
        await select_row(pilot, app, task.id)
        await send_with_m(pilot, app, "then tidy up")
        [message] = engine.service.task_messages(task.id)
        assert message.text == "then tidy up"
        await wait_for(pilot, lambda: engine.service.task_messages(task.id)[0].delivered_at
                       is not None, timeout=30, what="the wrapper to deliver it")
        # The turn is in the task's log for every reader (the log pane showing it on a real
        # screen is checked by tests/e2e/test_console_tmux_jump.py).
        await wait_for(pilot, lambda: any(
            isinstance(e, UserText) and e.text == "then tidy up"
            for e in engine.service.read_events(task.id)[0]), timeout=30,
            what="the user's turn in the task's log")
        await quit_stopping_agents(pilot)


async def test_m_on_a_finished_task_continues_its_conversation(engine: Engine,
                                                               tmp_path: Path) -> None:
    first = engine.service.delegate(TaskSpec("[text:done] first", cwd=str(tmp_path)))
    app = ClaudineApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.engine_started)
        await wait_for(pilot, lambda: engine.service.get(first.id).status
                       is TaskState.COMPLETED, timeout=30, what="the task to complete")
        await select_row(pilot, app, first.id)
        await send_with_m(pilot, app, "and now the docs")
        resumed = next(t for t in engine.service.list_tasks() if t.id != first.id)
        assert resumed.parent_id == first.id
        assert resumed.resume_prompt == "and now the docs"
        assert any("conversation continues as" in str(n.message)
                   for n in app._notifications)
        await wait_for(pilot, lambda: engine.service.get(resumed.id).status.is_terminal,
                       timeout=30, what="the resumed task to end")
        assert engine.service.get(resumed.id).result.startswith("RESUMED")
        await quit_stopping_agents(pilot)


async def test_m_on_a_queued_task_says_why_not_and_keeps_the_box(engine: Engine,
                                                                 tmp_path: Path) -> None:
    blocker = engine.service.delegate(TaskSpec("[sleep:30] blocker", cwd=str(tmp_path)))
    waiting = engine.service.delegate(TaskSpec("waits", cwd=str(tmp_path),
                                               depends_on=(blocker.id,)))
    app = ClaudineApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.engine_started)
        await select_row(pilot, app, waiting.id)
        await pilot.press("m")
        await wait_for(pilot, lambda: isinstance(app.screen, MessageScreen), what="the box")
        await pilot.press(*"hello", "enter")
        await pilot.pause()
        assert isinstance(app.screen, MessageScreen)  # refused: the box stays open
        error = str(app.screen.query_one("#message-error", Label).render())
        assert "blocked" in error or "queued" in error, error
        assert engine.service.task_messages(waiting.id) == []
        await pilot.press("escape")
        await quit_stopping_agents(pilot)
