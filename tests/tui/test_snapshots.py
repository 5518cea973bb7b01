"""Pictures of the console's main states, from the fake engine (fixed clock and figures)."""

from __future__ import annotations

import time
from dataclasses import replace

from conftest import wait_for
from fake_engine import FakeEngine, FakeReview, busy_engine, parked_engine, scheduled_engine
from textual.widgets import Input

from claudine_tui.app import ClaudineApp


async def _ready(pilot, rows: int = 0) -> None:
    app = pilot.app
    await wait_for(pilot, lambda: app.engine_started and app.table.row_count >= rows)
    await pilot.pause()


def test_empty(snap_compare) -> None:
    """An empty home: zero gauges' history, no rows, the log pane invites `n`."""

    async def run_before(pilot) -> None:
        await _ready(pilot)

    engine = FakeEngine()
    assert snap_compare(ClaudineApp(engine), terminal_size=(120, 36), run_before=run_before)


def test_busy_mixed_statuses(snap_compare) -> None:
    """Eight tasks in every status with glyphs and colours; CPU over its limit, waiting reason."""

    async def run_before(pilot) -> None:
        await _ready(pilot, 8)

    assert snap_compare(ClaudineApp(busy_engine()), terminal_size=(120, 36),
                        run_before=run_before)


def test_failed_task_selected_with_log(snap_compare) -> None:
    """The failed task selected; its log shows the tool error in red, the retry, the failure."""

    async def run_before(pilot) -> None:
        await _ready(pilot, 8)
        app = pilot.app
        app.table.move_cursor(row=app.table.get_row_index(app.engine.service.get("0002").id))
        await wait_for(pilot, lambda: app.pane.lines_written >= 6)
        await pilot.pause()

    assert snap_compare(ClaudineApp(busy_engine()), terminal_size=(120, 36),
                        run_before=run_before)


def test_new_task_form_with_validation_error(snap_compare) -> None:
    """The new-task form after ctrl+s with an empty prompt and a bad timeout: errors in red;
    the dependency fields offer the task selected in the table (ctrl+t: 0008c0ff)."""

    async def run_before(pilot) -> None:
        await _ready(pilot, 8)
        await pilot.press("n")
        for field in pilot.app.screen.query(Input):  # a blink would make the image timing-
            field.cursor_blink = False               # dependent (a busy CI machine saw it)
        pilot.app.screen.query_one("#field-cwd", Input).value = "/tmp"
        pilot.app.screen.query_one("#field-timeout", Input).value = "soon"
        await pilot.press("ctrl+s")
        await pilot.pause()

    assert snap_compare(ClaudineApp(busy_engine()), terminal_size=(120, 36),
                        run_before=run_before)


def test_narrow_80x24(snap_compare) -> None:
    """80x24: short gauge captions, table over log; the footer keeps n c r d / q ? whole."""

    async def run_before(pilot) -> None:
        await _ready(pilot, 8)

    assert snap_compare(ClaudineApp(busy_engine()), terminal_size=(80, 24),
                        run_before=run_before)


def test_review_80x24(snap_compare) -> None:
    """80x24 diff review: files, coloured diff; footer m p g x esc ? (no table keys)."""

    async def run_before(pilot) -> None:
        await _ready(pilot, 8)
        app = pilot.app
        app.table.move_cursor(row=app.table.get_row_index(app.engine.service.get("0001").id))
        await pilot.press("d")
        await wait_for(pilot, lambda: getattr(app.screen, "loaded", False))
        await pilot.pause()

    engine = busy_engine()
    done = engine.service.get("0001")
    engine.tasks[done.id] = replace(done, branch="claudine/0001c0ff-users-paging",
                                    base_branch="main", worktree_path="/srv/wt/0001")
    assert snap_compare(ClaudineApp(engine, review=FakeReview()), terminal_size=(80, 24),
                        run_before=run_before)


def test_schedules_view(snap_compare) -> None:
    """S: four schedules (active, paused, one-time, cancelled) in their zones; the active
    one selected, its last firing failed, with the reason in its history below."""

    async def run_before(pilot) -> None:
        await _ready(pilot, 8)
        await pilot.press("S")
        table = pilot.app.screen.query_one("#schedules")
        await wait_for(pilot, lambda: table.row_count == 4)
        table.move_cursor(row=3)  # the oldest: the nightly schedule
        await pilot.pause()

    assert snap_compare(ClaudineApp(scheduled_engine()), terminal_size=(120, 36),
                        run_before=run_before)


def test_paused_by_a_usage_limit_with_parked_tasks(snap_compare, monkeypatch) -> None:
    """13:27, paused by a five-hour usage limit until 14:05: the limits line under the
    gauges (in 38 min, 2 parked, $1.23 of the $5.00 daily budget), the agents box names the
    pause; two ◷ parked rows say until when; the released task is first in the queue order;
    a parked task's details (parked_until, parks, the error)."""

    async def run_before(pilot) -> None:
        await _ready(pilot, 11)
        app = pilot.app
        app.table.set_sort("queue")  # as `o` does, without its passing toast
        app.table.move_cursor(row=app.table.get_row_index(app.engine.service.get("0009").id))
        await pilot.press("enter")
        await pilot.pause()

    monkeypatch.setenv("TZ", "UTC")  # the clock times of the fixed clock, on any machine
    time.tzset()
    try:
        assert snap_compare(ClaudineApp(parked_engine()), terminal_size=(120, 36),
                            run_before=run_before)
    finally:
        monkeypatch.undo()
        time.tzset()
