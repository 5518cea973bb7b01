"""The log pane under a stream of output, following the cursor, and the console's heap.

What the widgets are asked to do is recorded (a refresh with or without a layout), and
what a person sees is checked right after the step that changed it, before any frame:
nothing is timed.
"""

from __future__ import annotations

import gc
from typing import Any

from conftest import wait_for
from fake_engine import busy_engine

from claudine_core.agents.stream_events import AssistantText
from claudine_tui.app import ClaudineApp
from claudine_tui.widgets.log_pane import MAX_EVENTS_PER_POLL

SIZE = (120, 36)


async def following(pilot: Any, short: str) -> ClaudineApp:
    app: ClaudineApp = pilot.app
    await wait_for(pilot, lambda: app.engine_started and app.table.row_count == 8,
                   what="the first snapshot")
    task_id = app.engine.service.get(short).id
    app.table.move_cursor(row=app.table.get_row_index(task_id))
    await wait_for(pilot, lambda: app.pane.task_id == task_id, what="the pane on the task")
    return app


async def test_log_growth_repaints_the_log_alone_and_lands_on_the_newest_line() -> None:
    engine = busy_engine()
    task = engine.service.get("0004")
    engine.service.logs[task.id] = [AssistantText(f"line {n}") for n in range(80)]
    async with ClaudineApp(engine).run_test(size=SIZE) as pilot:
        app = await following(pilot, "0004")
        await wait_for(pilot, lambda: app.pane.lines_written >= 80, what="the log")
        await pilot.pause()
        log = app.pane.log_widget
        assert log.max_scroll_y > 0  # more lines than fit: the scrollbar is up
        layouts: list[bool] = []
        refresh = log.refresh

        def spy_refresh(*regions: Any, **options: Any) -> Any:
            layouts.append(bool(options.get("layout")))
            return refresh(*regions, **options)

        log.refresh = spy_refresh  # type: ignore[method-assign]
        for batch in range(3):
            engine.service.logs[task.id] += [AssistantText(f"more {batch}.{n}") for n in range(20)]
            app.pane.poll()
            # Scrolled to the newest line by the write itself, not a frame later.
            assert log.scroll_offset.y == log.max_scroll_y
            await pilot.pause()
        assert layouts, "the log was not redrawn"
        assert not any(layouts), "the log's growth asked for a layout of the screen"
        last = log.render_line(log.scrollable_content_region.height - 1).text
        assert "more 2.19" in last


async def test_a_poll_renders_the_newest_events_a_person_can_read_and_says_what_it_left(
) -> None:
    engine = busy_engine()
    task = engine.service.get("0004")
    async with ClaudineApp(engine).run_test(size=SIZE) as pilot:
        app = await following(pilot, "0004")
        written = app.pane.lines_written
        engine.service.logs[task.id] = [AssistantText(f"burst {n}") for n in range(
            MAX_EVENTS_PER_POLL + 150)]
        app.pane.poll()
        texts = [line.text for line in app.pane.log_widget.lines]
        assert any("150 events not shown" in text and task.id in text for text in texts)
        assert f"burst {MAX_EVENTS_PER_POLL + 149}" in texts[-1]
        assert not any(text == "burst 149" for text in texts)  # the last one left out
        assert any(text == "burst 150" for text in texts)  # the first one shown
        assert app.pane.lines_written - written == MAX_EVENTS_PER_POLL + 1  # and the note


async def test_the_pane_follows_a_cursor_move_in_the_same_step() -> None:
    engine = busy_engine()
    async with ClaudineApp(engine).run_test(size=SIZE) as pilot:
        app = await following(pilot, "0004")
        before = app.pane.task_id
        app.table.action_cursor_down()  # what the ↓ key runs
        # No await: no message was handled, no frame drawn, and the pane is there already.
        assert app.table.selected_id != before
        assert app.pane.task_id == app.table.selected_id


async def test_the_running_console_keeps_what_it_started_with_out_of_the_collector() -> None:
    # A full collection walked every object of the process: Textual's and the engine's.
    frozen_before = gc.get_freeze_count()
    app = ClaudineApp(busy_engine())
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.engine_started, what="the engine")
        assert gc.get_freeze_count() > frozen_before
    assert gc.get_freeze_count() == 0  # handed back when the console is gone
