"""The schedules view (S) against a real engine and store: what it lists, and its keys."""

from __future__ import annotations

import asyncio
import io
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from conftest import wait_for
from engine_helpers import CLAUDINE, agent_env, cli_env, make_config
from rich.console import Console
from textual.widgets import Label, Static
from textual.widgets._key_panel import BindingsTable  # not exported; the help's key list

from claudine_core.engine import Engine
from claudine_core.models import TaskSpec
from claudine_core.schedules.model import ScheduleStatus
from claudine_tui.app import ClaudineApp
from claudine_tui.screens.confirm import ConfirmScreen
from claudine_tui.screens.schedules import SchedulesScreen, ScheduleTable

SIZE = (120, 36)


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    return Engine(make_config(tmp_path / "home", max_agents=1), kind="console",
                  env=agent_env(), tick_s=0.05)


def row_text(table: ScheduleTable, schedule_id: str) -> list[str]:
    return [str(cell) for cell in table.get_row(schedule_id)]


def status_in_store(engine: Engine, schedule_id: str) -> ScheduleStatus:
    return engine.service.schedules.get(schedule_id).status


async def test_lists_a_schedule_and_pauses_resumes_and_cancels_it(engine: Engine,
                                                                  tmp_path: Path) -> None:
    schedule = engine.service.schedules.create(
        TaskSpec("Nightly: run the test suite and list the flaky tests", cwd=str(tmp_path)),
        cron="30 2 * * 1-5", timezone="Europe/Amsterdam", max_runs=20)
    app = ClaudineApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.engine_started)
        await pilot.press("S")
        screen = app.screen
        assert isinstance(screen, SchedulesScreen)
        table = screen.query_one(ScheduleTable)
        await wait_for(pilot, lambda: table.row_count == 1, what="the schedule's row")
        next_run = engine.service.schedules.get(schedule.id).next_run_at
        assert next_run is not None
        local = datetime.fromtimestamp(next_run, ZoneInfo("Europe/Amsterdam"))
        assert (local.hour, local.minute) == (2, 30) and local.weekday() < 5
        *cells, prompt = row_text(table, schedule.id)
        assert cells == [schedule.short_id, "cron 30 2 * * 1-5", "Europe/Amsterdam", "active",
                         f"{local:%Y-%m-%d} 02:30", "-", "0/20"]
        # The prompt is cut to its column (the details below show it whole).
        assert prompt.startswith("Nightly: run") and prompt.endswith("…")
        assert len(prompt) == table.prompt_width
        details = str(screen.query_one("#schedule-details", Static).render())
        assert schedule.id in details and "missed runs: skip" in details
        assert "Nightly: run the test suite and list the flaky tests" in details

        await pilot.press("p")
        assert status_in_store(engine, schedule.id) is ScheduleStatus.PAUSED
        await wait_for(pilot, lambda: row_text(table, schedule.id)[3] == "paused",
                       what="the paused row")
        assert row_text(table, schedule.id)[4] == "-"  # it will not fire at its old slot
        assert any(str(n.message) == f"schedule {schedule.short_id} paused"
                   for n in app._notifications)
        await pilot.press("p")  # not active any more: the core's refusal, as a toast
        assert any("only an active schedule can be paused" in str(n.message)
                   for n in app._notifications)
        await pilot.press("r")
        assert status_in_store(engine, schedule.id) is ScheduleStatus.ACTIVE

        await pilot.press("c")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")  # kept
        assert status_in_store(engine, schedule.id) is ScheduleStatus.ACTIVE
        await pilot.press("c", "y")
        assert status_in_store(engine, schedule.id) is ScheduleStatus.CANCELLED
        await wait_for(pilot, lambda: row_text(table, schedule.id)[3] == "cancelled")
        assert row_text(table, schedule.id)[4] == "-"  # no next run

        await pilot.press("escape")
        assert app.screen is app.screen_stack[0] and not isinstance(app.screen,
                                                                    SchedulesScreen)
        await pilot.press("q")


async def test_a_firing_shows_its_outcome_without_a_key_press(engine: Engine,
                                                               tmp_path: Path) -> None:
    schedule = engine.service.schedules.create(
        TaskSpec("[text:fired] hourly check", cwd=str(tmp_path)), cron="0 * * * *")
    app = ClaudineApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.engine_started)
        await pilot.press("S")
        screen = app.screen
        assert isinstance(screen, SchedulesScreen)
        table = screen.query_one(ScheduleTable)
        await wait_for(pilot, lambda: table.row_count == 1)
        assert row_text(table, schedule.id)[5:7] == ["-", "0"]
        slot = engine.service.schedules.get(schedule.id).next_run_at
        assert slot is not None
        # Another front end (here the test, as the owner would) fires the slot.
        assert engine.service.schedules.fire_due(now=slot + 1) == 1
        await wait_for(pilot, lambda: row_text(table, schedule.id)[5:7] == ["created", "1"],
                       timeout=5, what="the timer's refresh")
        task = engine.service.schedules.tasks(schedule.id)[0]
        assert task.schedule_id == schedule.id
        await wait_for(pilot, lambda: task.id in str(
            screen.query_one("#schedule-details", Static).render()), what="the history line")
        await pilot.press("escape")
        await wait_for(pilot, lambda: engine.service.get(task.id).status.is_terminal,
                       timeout=30, what="the scheduled task to end")
        await pilot.press("q")


async def test_no_schedules_says_how_to_make_one(engine: Engine) -> None:
    app = ClaudineApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.engine_started)
        await pilot.press("S")
        screen = app.screen
        assert isinstance(screen, SchedulesScreen)
        await pilot.pause()
        assert "claudine schedule add" in str(screen.query_one("#schedule-details",
                                                               Static).render())
        assert str(screen.query_one("#schedules-title", Label).render()) == (
            "Schedules · 0 · 0 active")
        await pilot.press("p")
        assert any("No schedule selected" in str(n.message) for n in app._notifications)
        await pilot.press("escape", "q")



async def test_the_schedules_key_is_in_the_help(engine: Engine) -> None:
    """S is off the footer (no room at 120 columns): the `?` help lists it."""
    app = ClaudineApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.engine_started)
        await pilot.press("question_mark")
        await pilot.pause()
        keys = app.screen.query_one(BindingsTable)
        console = Console(width=60, record=True, file=io.StringIO())
        console.print(keys.render_bindings_table())
        lines = console.export_text().splitlines()
        assert any("S" in line and "Schedules" in line for line in lines)
        await pilot.press("question_mark", "q")


async def test_a_pause_from_another_process_shows_without_a_key_press(engine: Engine,
                                                                       tmp_path: Path) -> None:
    """`claudine schedule pause` in a separate process: the open view follows the store."""
    schedule = engine.service.schedules.create(TaskSpec("weekly report", cwd=str(tmp_path)),
                                               cron="0 9 * * 1")
    app = ClaudineApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.engine_started)
        await pilot.press("S")
        table = app.screen.query_one(ScheduleTable)
        await wait_for(pilot, lambda: table.row_count == 1)
        assert row_text(table, schedule.id)[3] == "active"
        cli = await asyncio.create_subprocess_exec(
            *CLAUDINE, "schedule", "pause", schedule.short_id,
            env=cli_env(engine.config.home), stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)
        out, err = await cli.communicate()
        assert cli.returncode == 0, err.decode()
        await wait_for(pilot, lambda: row_text(table, schedule.id)[3] == "paused",
                       timeout=5, what="the timer's read of the other process's pause")
        assert row_text(table, schedule.id)[4] == "-"  # a paused schedule has no next run
        await pilot.press("escape", "q")
