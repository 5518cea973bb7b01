"""The console against a real Engine on a temporary home, with the fake `claude` agent."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import wait_for
from engine_helpers import agent_env, make_config
from textual.widgets import Input, RichLog

from claudine_core.engine import Engine
from claudine_core.models import Priority, TaskSpec, TaskState
from claudine_core.service import TaskService
from claudine_tui.app import ClaudineApp
from claudine_tui.screens.quit import QuitScreen

SIZE = (120, 36)


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    return Engine(make_config(tmp_path / "home", max_agents=1), kind="console",
                  env=agent_env(), tick_s=0.05)


def status_of(engine: Engine, task_id: str) -> TaskState:
    return engine.service.get(task_id).status


async def test_form_delegates_and_log_follows_to_completion(engine: Engine,
                                                            tmp_path: Path) -> None:
    app = ClaudineApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.engine_started)
        assert engine.role == "owner" and app.sub_title.startswith("owner · console")
        await pilot.press("n")  # typing into the form: test_keys_fake (slow with a real engine)
        app.screen.query_one("#field-prompt", Input).value = (
            "[text:hello from the agent] [tool-error:Bash]")
        app.screen.query_one("#field-cwd", Input).value = str(tmp_path)
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.table.row_count == 1, what="the row")
        task_id = app.table.selected_id
        assert task_id is not None
        await wait_for(pilot, lambda: status_of(engine, task_id) is TaskState.COMPLETED,
                       timeout=30, what="completion")
        await wait_for(pilot, lambda: any("completed" in (n.title or "")
                                          for n in app._notifications), what="the toast")
        log = app.pane.query_one(RichLog)
        await wait_for(pilot, lambda: any("■ completed" in line.text for line in log.lines),
                       what="the result line")
        text = "\n".join(line.text for line in log.lines)
        assert "hello from the agent" in text and "✗" in text
        await pilot.press("q")
    assert app.return_code == 0


async def test_cancel_priority_retry_and_quit_stopping_agents(engine: Engine,
                                                              tmp_path: Path) -> None:
    running = engine.service.delegate(TaskSpec("[sleep:30] long", cwd=str(tmp_path)))
    app = ClaudineApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.engine_started)
        await wait_for(pilot, lambda: status_of(engine, running.id) is TaskState.RUNNING,
                       timeout=20)
        waiting = engine.service.delegate(TaskSpec("[text:later] waits", cwd=str(tmp_path)))
        await wait_for(pilot, lambda: app.table.row_count == 2)
        app.table.move_cursor(row=app.table.get_row_index(waiting.id))
        await pilot.press("0")
        assert engine.service.get(waiting.id).priority is Priority.P0
        await pilot.press("minus")
        assert engine.service.get(waiting.id).priority is Priority.P1
        app.table.move_cursor(row=app.table.get_row_index(running.id))
        await pilot.press("c", "y")
        await wait_for(pilot, lambda: status_of(engine, running.id) is TaskState.CANCELLED,
                       timeout=20, what="the cancel")
        await wait_for(pilot, lambda: status_of(engine, waiting.id) is TaskState.COMPLETED,
                       timeout=30)
        app.table.move_cursor(row=app.table.get_row_index(running.id))
        await pilot.press("r")
        await wait_for(pilot, lambda: app.table.row_count == 3, what="the retry row")
        await wait_for(pilot, lambda: app.last_snapshot and app.last_snapshot.running == 1,
                       timeout=20)
        await pilot.press("q")
        assert isinstance(app.screen, QuitScreen)
        await pilot.press("s")
    store = TaskService(engine.config)  # the engine closed its own
    retried = [t for t in store.list_tasks() if t.parent_id == running.id]
    store.close()
    assert retried and retried[0].status is TaskState.CANCELLED


async def test_quit_leaving_agents_keeps_them_running(tmp_path: Path) -> None:
    engine = Engine(make_config(tmp_path / "home"), kind="console", env=agent_env(),
                    tick_s=0.05)
    task = engine.service.delegate(TaskSpec("[sleep:30] keep going", cwd=str(tmp_path)))
    app = ClaudineApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.last_snapshot and app.last_snapshot.running == 1,
                       timeout=20)
        await pilot.press("q", "l")
    # A new owner adopts the agent, and can stop it.
    heir = Engine(make_config(tmp_path / "home"), kind="serve", env=agent_env(), tick_s=0.05)
    await heir.start()
    try:
        assert heir.role == "owner" and heir.service.get(task.id).status is TaskState.RUNNING
        assert task.id in heir.supervisor.agents
    finally:
        await heir.stop(stop_agents=True)
    assert heir.service is not None


async def test_client_console_sees_owner_state_and_cancels(tmp_path: Path) -> None:
    owner = Engine(make_config(tmp_path / "home"), kind="serve", env=agent_env(), tick_s=0.05)
    await owner.start()
    try:
        client = Engine(make_config(tmp_path / "home"), kind="console", env=agent_env(),
                        tick_s=0.05)
        app = ClaudineApp(client)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.engine_started)
            assert client.role == "client" and app.sub_title.startswith("client of pid")
            task = owner.service.delegate(TaskSpec("[sleep:30] from elsewhere", cwd=str(tmp_path)))
            await wait_for(pilot, lambda: app.table.row_count == 1, timeout=5,
                           what="the row from the owner")
            await wait_for(pilot, lambda: status_of(owner, task.id) is TaskState.RUNNING,
                           timeout=20)
            await pilot.press("c", "y")
            await wait_for(pilot, lambda: status_of(owner, task.id) is TaskState.CANCELLED,
                           timeout=20, what="the owner applying the cancel")
            await pilot.press("q")
    finally:
        await owner.stop(stop_agents=True)
