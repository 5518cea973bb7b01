"""The console under a usage limit and a budget, against the fake engine (fixed clock).

The gauges' limits line (the pause, counting down; the parked tasks; today's spending
against the budget), parked rows in the table, `u` (unpark), `$` (costs), priority and
cancel on a parked task, and the form's budget and fallback fields. The same through the
real engine and the fake agent: test_limits_engine.py; on a real terminal:
test_limits_tmux.py.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import replace

import pytest
from conftest import wait_for
from fake_engine import (
    LIMIT_NOW,
    LIMIT_RESET,
    FakeEngine,
    busy_engine,
    parked_engine,
)
from rich.text import Text
from textual.widgets import Input, Label, Static

from claudine_core.models import Priority, TaskState
from claudine_core.spending import Budget, CostLine, CostReport
from claudine_tui.app import ClaudineApp
from claudine_tui.screens.confirm import ConfirmScreen
from claudine_tui.screens.costs import CostsScreen, CostTable
from claudine_tui.screens.new_task import NewTaskScreen
from claudine_tui.task_text import task_details
from claudine_tui.widgets.gauges import budget_text
from claudine_tui.widgets.task_rows import queue_key

SIZE = (120, 36)
PARKED_P1, PARKED_P2, RELEASED = "0009", "000a", "000b"


@pytest.fixture(autouse=True)
def utc() -> Iterator[None]:
    """Clock times in UTC, whatever the machine's zone: 13:27 reads 13:27."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    yield
    if before is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = before
    time.tzset()


async def started(pilot, rows: int) -> ClaudineApp:
    app = pilot.app
    await wait_for(pilot, lambda: app.engine_started and app.table.row_count >= rows,
                   what="the first snapshot")
    return app


async def select(pilot, short: str) -> None:
    app = pilot.app
    app.table.move_cursor(row=app.table.get_row_index(app.engine.service.get(short).id))
    await pilot.pause()
    assert app.table.selected.short_id.startswith(short)


def limits_line(app: ClaudineApp) -> str:
    line = app.query_one("#limits", Static)
    return str(line.render()) if line.display else ""


def agents_box(app: ClaudineApp) -> str:
    return str(app.query_one("#agents", Static).render())


def toasts(app: ClaudineApp) -> list[str]:
    return [str(n.message) for n in app._notifications]


# -- the gauges ------------------------------------------------------------------------------


async def test_the_gauges_say_the_home_is_paused_until_when_and_how_much_was_spent() -> None:
    app = ClaudineApp(parked_engine())
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, 11)
        assert limits_line(app) == (
            "◷ paused: usage limit reached (five-hour) until 14:05, in 38 min · 2 parked "
            "(u: unpark) · $1.23 of $5.00 today")
        # The agents box only names the pause (the line says it in full).
        assert "waiting: usage-limit pause" in agents_box(app)


async def test_the_pause_counts_down_as_minutes_pass_and_the_line_goes_with_it() -> None:
    engine = parked_engine()
    app = ClaudineApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, 11)
        engine.now = LIMIT_NOW + 60  # the console's own refresh picks the minute up
        await wait_for(pilot, lambda: "until 14:05, in 37 min" in limits_line(app),
                       what="the next minute")
        engine.now = LIMIT_RESET - 30
        await wait_for(pilot, lambda: "until 14:05, in 30 s" in limits_line(app),
                       what="the last seconds")
        engine.now = LIMIT_RESET + 1  # reset, not yet released by the owner
        await wait_for(pilot, lambda: limits_line(app).startswith(
            "◷ usage limit reset at 14:05: parked tasks go on first · 2 parked"),
            what="the reset")
        # The owner released them and lifted the pause; with no budget there is no news.
        engine.pause = engine.budget = None
        for task in list(engine.tasks.values()):
            if task.status is TaskState.PARKED:
                engine.tasks[task.id] = replace(task, status=TaskState.QUEUED, resuming=True)
        await wait_for(pilot, lambda: not app.query_one("#limits").display,
                       what="the line to go")


async def test_a_reached_budget_is_marked_with_the_owners_reason() -> None:
    engine = busy_engine()
    budget = Budget(5.02, 5.02, 5.0, None, LIMIT_NOW)
    engine.budget = budget
    engine.waiting_reason = budget.reached()
    app = ClaudineApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, 8)
        reason = budget.reached()
        assert reason is not None and reason.startswith("daily budget reached: $5.02 of $5.00")
        assert limits_line(app) == f"⛔ {reason}"
        assert budget_text(app.last_snapshot).style == "bold red"
        assert "waiting: daily budget reached" in agents_box(app)


async def test_a_task_that_parks_is_told_in_a_toast() -> None:
    engine = parked_engine()
    app = ClaudineApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, 11)
        running = engine.service.get("0004")
        engine.tasks[running.id] = replace(
            running, status=TaskState.PARKED, parked_until=LIMIT_RESET, parks=1,
            error="usage limit reached (five-hour); continues at 2026-01-01T14:05:00.000Z")
        await wait_for(pilot, lambda: any(
            "until 14:05 · usage limit reached (five-hour)" in toast
            for toast in toasts(app)), what="the toast")
        titles = [n.title for n in app._notifications if "parked" in (n.title or "")]
        assert titles == ["◷ 0004c0ff parked by a usage limit"]  # once, for that task


async def test_parked_tasks_with_no_pause_are_counted_alone() -> None:
    engine = parked_engine()
    engine.pause = engine.budget = None  # as a store from before a crash may be
    app = ClaudineApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, 11)
        assert limits_line(app) == "◷ 2 parked (u: unpark)"


async def test_quitting_with_only_parked_tasks_asks_first_and_names_them() -> None:
    from claudine_tui.screens.quit import QuitScreen

    engine = parked_engine()
    for task in list(engine.tasks.values()):  # the parked ones, and what has ended
        if task.status in (TaskState.RUNNING, TaskState.QUEUED, TaskState.BLOCKED):
            del engine.tasks[task.id]
    app = ClaudineApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, 2)
        await pilot.press("q")
        await wait_for(pilot, lambda: isinstance(app.screen, QuitScreen), what="the question")
        question = str(app.screen.query_one(".question", Label).render())
        assert "2 parked until a usage limit resets" in question
        await pilot.press("escape")


async def test_no_pause_no_parked_task_and_no_budget_leaves_the_gauges_as_they_were() -> None:
    app = ClaudineApp(busy_engine())
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, 8)
        assert not app.query_one("#limits").display


# -- parked rows -----------------------------------------------------------------------------


async def test_a_parked_row_has_its_glyph_colour_and_when_it_goes_on() -> None:
    app = ClaudineApp(parked_engine())
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, 11)
        task_id = app.engine.service.get(PARKED_P1).id
        status = app.table.get_cell(task_id, "status")
        assert isinstance(status, Text) and status.plain == "◷ parked"
        assert status.style == "bold bright_blue"  # its own, unlike queued's cyan
        activity = app.table.get_cell(task_id, "activity")
        assert str(activity) == "until 14:05 · usage limit reached (five-hour)"


async def test_the_queue_order_puts_released_tasks_first_then_the_parked() -> None:
    engine = parked_engine()
    app = ClaudineApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, 11)
        while app.table.sort_mode != "queue":
            await pilot.press("o")
        shorts = [app.table.tasks[str(app.table.coordinate_to_cell_key((row, 0)).row_key.value)]
                  .short_id[:4] for row in range(app.table.row_count)]
        # Running first; the released task before the P0 queued one, as the engine takes
        # them (resuming first); the parked go first at the reset, in priority order.
        assert shorts[3:8] == [RELEASED, PARKED_P1, PARKED_P2, "0007", "0008"], shorts
        waiting = sorted((t for t in engine.tasks.values() if not t.status.is_terminal
                          and t.status is not TaskState.RUNNING), key=queue_key)
        assert waiting[0].resuming


async def test_details_of_a_parked_task_say_until_when_how_often_and_why() -> None:
    app = ClaudineApp(parked_engine())
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, 11)
        await select(pilot, PARKED_P1)
        await pilot.press("enter")
        text = str(app.query_one("#details", Static).render())
        assert "◷ parked" in text
        assert "parked_until:   2026-01-01T14:05:00.000Z" in text
        assert "parks:          1" in text
        assert "error:          usage limit reached (five-hour); continues at" in text


def test_details_show_the_budget_the_fallback_and_a_release() -> None:
    task = parked_engine().service.get(RELEASED)
    text = task_details(replace(task, max_budget_usd=2.5, fallback_model="claude-haiku-4-5"),
                        1)
    assert "max_budget_usd: $2.50" in text
    assert "fallback_model: claude-haiku-4-5" in text
    assert "resuming:       yes: released from a usage-limit park" in text


# -- keys ------------------------------------------------------------------------------------


async def test_u_releases_the_selected_parked_task() -> None:
    engine = parked_engine()
    app = ClaudineApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, 11)
        await select(pilot, PARKED_P1)
        await pilot.press("u")
        task = engine.service.get(PARKED_P1)
        assert ("release", task.id) in engine.calls
        assert task.status is TaskState.QUEUED and task.resuming
        assert any("released" in toast for toast in toasts(app))
        await wait_for(pilot, lambda: "1 parked" in limits_line(app), what="one parked left")


async def test_u_on_a_task_that_is_not_parked_says_so_and_releases_nothing() -> None:
    engine = parked_engine()
    app = ClaudineApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, 11)
        await select(pilot, "0004")  # running
        await pilot.press("u")
        assert not any(call[0] == "release" for call in engine.calls)
        assert any("0004c0ff is running, not parked" in toast for toast in toasts(app))


async def test_priority_and_cancel_work_on_a_parked_task() -> None:
    engine = parked_engine()
    app = ClaudineApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, 11)
        await select(pilot, PARKED_P2)
        await pilot.press("0")
        assert engine.service.get(PARKED_P2).priority is Priority.P0
        await pilot.press("minus")
        assert engine.service.get(PARKED_P2).priority is Priority.P1
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="confirm")
        await pilot.press("y")
        assert engine.service.get(PARKED_P2).status is TaskState.CANCELLED


async def test_dollar_opens_the_costs_per_day_and_directory_and_escape_closes_it() -> None:
    engine = parked_engine()
    budget = Budget(1.23, 12.40, 5.0, 100.0, LIMIT_NOW)
    engine.service.cost_report = CostReport(
        "2025-12-03", "2026-01-01",
        (CostLine("2025-12-30", 3.5, 4), CostLine("2026-01-01", 1.23, 3)),
        (CostLine("/srv/repo/api", 4.2, 6), CostLine("/srv/repo/web", 0.53, 1)), budget)
    app = ClaudineApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, 11)
        await pilot.press("$")
        screen = await wait_for(pilot, lambda: isinstance(app.screen, CostsScreen)
                                and app.screen, what="the costs view")
        assert ("costs", 30) in engine.calls
        by_day = screen.query_one("#by-day", CostTable)
        assert [str(c) for c in by_day.get_row_at(0)] == ["2026-01-01", "$1.23", "3"]
        by_dir = screen.query_one("#by-directory", CostTable)
        assert [str(c) for c in by_dir.get_row_at(0)] == ["/srv/repo/api", "$4.20", "6"]
        summary = str(screen.query_one("#costs-summary", Static).render())
        assert "Total  $4.73" in summary
        assert "$1.23 of $5.00 today · $12.40 of $100.00 this month" in summary
        # `r` reads again: an agent's turn has ended meanwhile.
        engine.service.cost_report = replace(
            engine.service.cost_report,
            by_day=(CostLine("2025-12-30", 3.5, 4), CostLine("2026-01-01", 1.61, 4)))
        await pilot.press("r")
        assert [str(c) for c in by_day.get_row_at(0)] == ["2026-01-01", "$1.61", "4"]
        # The table's keys are off under it: `u` does not reach the task table.
        await pilot.press("u")
        assert not any(call[0] == "release" for call in engine.calls)
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, CostsScreen),
                       what="the view to close")


async def test_the_costs_view_says_when_a_budget_is_reached() -> None:
    engine = FakeEngine()
    budget = Budget(5.5, 5.5, 5.0, None, LIMIT_NOW)
    engine.service.cost_report = CostReport("2025-12-03", "2026-01-01", (), (), budget)
    app = ClaudineApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, 0)
        await pilot.press("$")
        screen = await wait_for(pilot, lambda: isinstance(app.screen, CostsScreen)
                                and app.screen, what="the costs view")
        summary = str(screen.query_one("#costs-summary", Static).render())
        assert "Total  nothing spent" in summary
        assert "$5.50 of $5.00 today · $5.50 this month (no monthly_budget_usd)" in summary
        assert "⛔ daily budget reached: $5.50 of $5.00 spent today" in summary


async def test_u_and_dollar_are_in_the_help_and_the_palette() -> None:
    app = ClaudineApp(FakeEngine())
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, 0)
        titles = [command.title for command in app.get_system_commands(app.screen)]
        assert "Unpark (u)" in titles and "Costs ($)" in titles


# -- the form --------------------------------------------------------------------------------


async def fill_form(pilot, **values: str) -> NewTaskScreen:
    await pilot.press("n")
    form = await wait_for(pilot, lambda: isinstance(pilot.app.screen, NewTaskScreen)
                          and pilot.app.screen, what="the form")
    for name, value in values.items():
        form.query_one(f"#field-{name}", Input).value = value
    await pilot.press("ctrl+s")
    await pilot.pause()
    return form


async def test_the_form_passes_a_max_budget_and_a_fallback_model() -> None:
    engine = FakeEngine()
    app = ClaudineApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, 0)
        await fill_form(pilot, prompt="tidy the docs", cwd="/tmp", budget="$2.50",
                        fallback="claude-haiku-4-5")
        [spec] = [call[1] for call in engine.calls if call[0] == "delegate"]
        assert spec.max_budget_usd == 2.5
        assert spec.fallback_model == "claude-haiku-4-5"


async def test_the_form_shows_a_wrong_budget_and_fallback_at_their_fields() -> None:
    engine = FakeEngine()
    app = ClaudineApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, 0)
        form = await fill_form(pilot, prompt="tidy the docs", cwd="/tmp", budget="-1",
                               fallback="no such model!")
        assert app.screen is form  # refused: the form stays open
        assert not any(call[0] == "delegate" for call in engine.calls)
        for field in ("budget", "fallback"):
            error = form.query_one(f"#error-{field}", Label)
            assert error.display and str(error.render()), field
            assert form.query_one(f"#field-{field}", Input).has_class("-invalid")
        assert form.focused is form.query_one("#field-budget", Input)  # the first wrong one
