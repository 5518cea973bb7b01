"""Every key and form of the console, against the fake engine (recorded calls)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import wait_for
from fake_engine import FakeEngine, busy_engine, make_task
from textual.widgets import Input, RichLog, Static
from textual.widgets._footer import FooterKey  # not exported; its regions are the test

from claudine_core.models import Priority, TaskState
from claudine_tui.app import ClaudineApp
from claudine_tui.screens.confirm import ConfirmScreen
from claudine_tui.screens.new_task import NewTaskScreen, validate_form
from claudine_tui.screens.quit import QuitScreen

SIZE = (120, 36)


async def started(pilot, rows: int | None = None) -> ClaudineApp:
    app = pilot.app
    await wait_for(pilot, lambda: app.engine_started and app.table.row_count >= (rows or 0),
                   what="the first snapshot")
    return app


async def select(pilot, short: str) -> None:
    app = pilot.app
    index = app.table.get_row_index(app.engine.service.get(short).id)
    app.table.move_cursor(row=index)
    await pilot.pause()
    assert app.table.selected.short_id.startswith(short)


async def test_starts_engine_and_shows_every_task() -> None:
    engine = busy_engine()
    app = ClaudineApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, 8)
        assert engine.calls[0] == ("start",)
        assert app.sub_title.startswith("owner · console pid 4242")
        assert app.table.selected_id == engine.service.get("0008").id  # newest first


async def test_client_role_in_header() -> None:
    app = ClaudineApp(FakeEngine(role="client"))
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        assert app.sub_title.startswith("client of pid 4242")


async def test_new_task_form_delegates() -> None:
    engine = FakeEngine()
    app = ClaudineApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        await pilot.press("n")
        assert isinstance(app.screen, NewTaskScreen)
        await pilot.press(*"write docs")
        app.screen.query_one("#field-priority", Input).value = "p0"
        app.screen.query_one("#field-timeout", Input).value = "600"
        app.screen.query_one("#field-model", Input).value = "sonnet"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: app.table.row_count == 1, what="the new row")
        spec = engine.calls[-1][1]
        assert (spec.prompt, spec.priority, spec.timeout_s, spec.model) == (
            "write docs", Priority.P0, 600.0, "sonnet")


async def test_new_task_form_shows_errors_and_stays_open() -> None:
    engine = FakeEngine()
    app = ClaudineApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        await pilot.press("n")
        form = app.screen
        form.query_one("#field-priority", Input).value = "P7"
        form.query_one("#field-timeout", Input).value = "soon"
        form.query_one("#field-cwd", Input).value = "/no/such/dir"
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert app.screen is form
        error = form.query_one("#error-prompt", Static)
        assert error.display and "prompt is empty" in str(error.render())
        assert "P0 (urgent)" in str(form.query_one("#error-priority", Static).render())
        assert form.focused is form.query_one("#field-prompt", Input)
        await pilot.press("escape")
        assert not isinstance(app.screen, NewTaskScreen)
        assert not any(call[0] == "delegate" for call in engine.calls)


def test_validate_form_messages(tmp_path: Path) -> None:
    ok = validate_form({"prompt": " hi ", "priority": "", "cwd": str(tmp_path),
                        "timeout": "", "model": ""})
    assert ok.spec is not None and ok.spec.priority is Priority.P2 and ok.spec.prompt == "hi"
    bad = validate_form({"prompt": "x", "priority": "P1", "cwd": str(tmp_path),
                         "timeout": "0", "model": "bad model"})
    assert set(bad.errors) == {"timeout", "model"}
    assert "between 1 and 86400" in bad.errors["timeout"]


async def test_cancel_asks_then_cancels() -> None:
    engine = busy_engine()
    app = ClaudineApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, 8)
        await select(pilot, "0006")
        await pilot.press("c")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        assert not any(c[0] == "cancel" for c in engine.calls)
        await pilot.press("c", "y")
        await wait_for(pilot, lambda: engine.service.get("0006").status is TaskState.CANCELLED)
        assert engine.calls[-1][:2] == ("cancel", engine.service.get("0006").id)


async def test_cancel_finished_task_only_warns() -> None:
    engine = busy_engine()
    app = ClaudineApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, 8)
        await select(pilot, "0001")
        await pilot.press("c")
        assert not isinstance(app.screen, ConfirmScreen)


async def test_priority_keys() -> None:
    engine = busy_engine()
    app = ClaudineApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, 8)
        await select(pilot, "0008")
        await pilot.press("plus")
        assert engine.service.get("0008").priority is Priority.P1
        await pilot.press("plus", "plus")  # stops at P0
        assert engine.service.get("0008").priority is Priority.P0
        await pilot.press("minus")
        assert engine.service.get("0008").priority is Priority.P1
        for key, expected in (("2", Priority.P2), ("0", Priority.P0), ("1", Priority.P1)):
            await pilot.press(key)
            assert engine.service.get("0008").priority is expected
        row_id = engine.service.get("0008").id
        await wait_for(pilot, lambda: "P1" in str(app.table.get_row(row_id)[1]))


async def test_priority_of_running_task_is_refused_with_a_message() -> None:
    engine = busy_engine()
    app = ClaudineApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, 8)
        await select(pilot, "0004")
        await pilot.press("0")
        await wait_for(pilot, lambda: any("priority only matters" in n.message
                                          for n in app._notifications))


async def test_retry_queues_a_new_task() -> None:
    engine = busy_engine()
    app = ClaudineApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, 8)
        await select(pilot, "0002")
        await pilot.press("r")
        await wait_for(pilot, lambda: app.table.row_count == 9, what="the retried row")
        assert ("retry", engine.service.get("0002").id) in engine.calls


async def test_enter_shows_details_and_l_follows_log() -> None:
    engine = busy_engine()
    app = ClaudineApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, 8)
        await select(pilot, "0002")
        await wait_for(pilot, lambda: app.pane.lines_written >= 6, what="the log")
        log = app.pane.query_one(RichLog)
        assert any("API retry" in line.text for line in log.lines)
        await pilot.press("enter")
        assert app.pane.mode == "details"
        details = str(app.pane.query_one("#details", Static).render())
        assert "API error 529" in details and engine.service.get("0002").id in details
        await pilot.press("l")
        assert app.pane.mode == "log" and log.display


async def test_filter_by_text_and_status() -> None:
    app = ClaudineApp(busy_engine())
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, 8)
        await pilot.press("slash", *"django")
        assert app.table.row_count == 1
        await pilot.press("enter")
        assert app.focused is app.table and app.table.row_count == 1
        await pilot.press("slash", "escape")
        assert app.table.row_count == 8
        await pilot.press("s")  # active
        assert app.table.row_count == 5
        await pilot.press("s")  # running
        assert app.table.row_count == 3
        assert "status=running" in str(app.table.border_title)


async def test_sort_cycles() -> None:
    engine = busy_engine()
    app = ClaudineApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, 8)
        await pilot.press("o")  # queue order
        assert app.table.sort_mode == "queue"
        await pilot.press("o")  # priority
        assert app.table.sort_mode == "priority"
        first = app.table.coordinate_to_cell_key((0, 0)).row_key.value
        assert first == engine.service.get("0007").id  # the P0 task
        await pilot.press("o")
        assert app.table.sort_mode == "status"


async def test_help_panel_toggles() -> None:
    app = ClaudineApp(FakeEngine())
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        await pilot.press("question_mark")
        assert app.screen.query("HelpPanel")
        await pilot.press("question_mark")
        assert not app.screen.query("HelpPanel")


async def test_every_key_is_in_the_command_palette() -> None:
    app = ClaudineApp(FakeEngine())
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        titles = " ".join(c.title for c in app.get_system_commands(app.screen))
        for word in ("New", "Cancel", "Raise", "Lower", "P0", "P1", "P2", "Retry", "Log",
                     "Filter", "Status", "Sort", "Quit", "Help", "Details", "Schedules (S)"):
            assert word in titles


def footer_keys(app: ClaudineApp) -> tuple[set[str], set[str]]:
    """The keys the footer shows whole, and the ones it shows cut off (or hides behind the
    command palette key docked on its right)."""
    whole: set[str] = set()
    cut: set[str] = set()
    palettes = app.screen.query(".-command-palette")
    if not palettes or not palettes.first().region:
        return whole, cut  # not laid out yet
    palette = palettes.first()
    for key in app.screen.query(FooterKey):
        if key is palette or not key.region:
            continue  # not displayed
        fits = key.region.right <= palette.region.x and palette.region.right <= app.size.width
        (whole if fits else cut).add(key.key)
    return whole, cut


@pytest.mark.parametrize("size", [(80, 24), (100, 30), (119, 30), (120, 36), (160, 40)])
async def test_footer_shows_the_essential_keys_whole(size: tuple[int, int]) -> None:
    app = ClaudineApp(busy_engine())
    async with app.run_test(size=size) as pilot:
        await started(pilot, 8)
        await wait_for(pilot, lambda: "n" in set.union(*footer_keys(app)), what="the footer")
        whole, cut = footer_keys(app)
        assert not cut
        assert {"n", "c", "r", "d", "slash", "q", "question_mark"} <= whole
        if size[0] >= 120:  # room for every key
            assert {"plus", "l", "s"} <= whole


async def test_keys_left_out_of_a_narrow_footer_still_work() -> None:
    engine = busy_engine()
    app = ClaudineApp(engine)
    async with app.run_test(size=(80, 24)) as pilot:
        await started(pilot, 8)
        await wait_for(pilot, lambda: "n" in set.union(*footer_keys(app)), what="the footer")
        whole, _ = footer_keys(app)
        assert not {"s", "l", "plus", "0"} & whole
        await pilot.press("s")
        assert app.table.task_filter.status == "active"
        await select(pilot, "0008")
        await pilot.press("0")
        assert engine.service.get("0008").priority is Priority.P0
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert {"Status (s)", "Sort (o)", "P0 (0)", "Log (l)"} <= set(titles)


async def test_quit_with_nothing_running_exits_at_once() -> None:
    engine = FakeEngine()
    app = ClaudineApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        await pilot.press("q")
        await wait_for(pilot, lambda: ("stop", False) in engine.calls)
    assert app.return_code == 0


async def test_quit_dialog_leave_running() -> None:
    engine = busy_engine()
    app = ClaudineApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, 8)
        await pilot.press("q")
        assert isinstance(app.screen, QuitScreen)
        await pilot.press("escape")
        assert not isinstance(app.screen, QuitScreen) and app.is_running
        await pilot.press("q", "l")
        await wait_for(pilot, lambda: ("stop", False) in engine.calls)


async def test_quit_dialog_stop_agents() -> None:
    engine = busy_engine()
    app = ClaudineApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, 8)
        await pilot.press("q", "s")
        await wait_for(pilot, lambda: ("stop", True) in engine.calls)


async def test_notifies_when_a_task_completes_or_fails() -> None:
    engine = FakeEngine([make_task(1, TaskState.RUNNING, "job one"),
                         make_task(2, TaskState.RUNNING, "job two")])
    app = ClaudineApp(engine, bell=True)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, 2)
        one, two = engine.service.get("0001"), engine.service.get("0002")
        engine.tasks[one.id] = make_task(1, TaskState.COMPLETED, "job one")
        engine.tasks[two.id] = make_task(2, TaskState.FAILED, "job two", error="boom")
        await wait_for(pilot, lambda: len(app._notifications) >= 2, what="two toasts")
        titles = [n.title for n in app._notifications]
        assert any("completed" in t for t in titles) and any("failed" in t for t in titles)


async def test_table_diff_updates_only_changed_cells() -> None:
    engine = busy_engine()
    app = ClaudineApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, 8)
        app.refresh_snapshot()
        before = app.table.cells_updated
        app.refresh_snapshot()
        assert app.table.cells_updated == before  # same snapshot: nothing touched
        task = engine.service.get("0004")
        engine.tasks[task.id] = make_task(4, TaskState.RUNNING, task.prompt, num_turns=8,
                                          cost_usd=task.cost_usd, branch=task.branch,
                                          last_activity=task.last_activity)
        app.refresh_snapshot()
        assert app.table.cells_updated == before + 1
        # A finished task's row is kept between snapshots, until the task itself changes.
        done = engine.service.get("0001")
        engine.tasks[done.id] = replace(done, result="Changelog rewritten")
        app.refresh_snapshot()
        assert app.table.cells_updated == before + 2
        assert "Changelog rewritten" in str(app.table.get_row(done.id)[8])


async def test_engine_start_failure_is_reported() -> None:
    class Broken(FakeEngine):
        async def start(self) -> None:
            raise RuntimeError("home is read-only")

    app = ClaudineApp(Broken())
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.sub_title == "engine failed to start")
        assert any("read-only" in n.message for n in app._notifications)


async def test_exit_survives_timers_firing_while_the_screen_is_torn_down(monkeypatch) -> None:
    """Textual prunes the screens before it stops the app's timers; on a slow machine the
    log and snapshot ticks land in between. Hold that window open until both have fired."""
    from textual.app import App

    ticks: list[str] = []
    app = ClaudineApp(busy_engine())
    poll_log, refresh_tick = app.poll_log, app._refresh_tick

    async def recorded_refresh_tick() -> None:
        ticks.append("snapshot")
        await refresh_tick()

    monkeypatch.setattr(app, "poll_log", lambda: (ticks.append("log"), poll_log())[1])
    monkeypatch.setattr(app, "_refresh_tick", recorded_refresh_tick)
    close_all = App._close_all

    after_prune: list[str] = []

    async def slow_close_all(self: App) -> None:
        await close_all(self)
        seen = len(ticks)
        for _ in range(100):  # at most 5 s; both timers tick several times a second
            after_prune[:] = ticks[seen:]
            if {"log", "snapshot"} <= set(after_prune):
                return
            await asyncio.sleep(0.05)

    monkeypatch.setattr(App, "_close_all", slow_close_all)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, 8)
    assert {"log", "snapshot"} <= set(after_prune)  # and run_test raised nothing
