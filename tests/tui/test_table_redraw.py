"""The task table's diff redraws what changed: the changed rows, and in them the changed cells.

What a person sees is checked (the row shows its new text); what the table is asked to
redraw is recorded through ``refresh`` (the regions it marks for the next frame) and
DataTable's cache of rendered cells (what it renders anew), never timed.
"""

from __future__ import annotations

from typing import Any

from conftest import wait_for
from fake_engine import FakeEngine, busy_engine, make_task
from textual.cache import LRUCache
from textual.geometry import Region

from claudine_core.models import TaskState
from claudine_tui.app import ClaudineApp
from claudine_tui.widgets.task_table import TaskTable

SIZE = (120, 36)


class RecordingCache(LRUCache[Any, Any]):
    """DataTable's cache of rendered cells, noting the (task id, column) of each render."""

    def __init__(self, kept: LRUCache[Any, Any], rendered: list[tuple[str, str]]) -> None:
        super().__init__(kept.maxsize)
        for key in list(kept.keys()):
            super().set(key, kept[key])
        self.rendered = rendered

    def set(self, key: Any, value: Any) -> None:
        self.rendered.append((key[0].value, key[1].value))  # (row key, column key, ...)
        super().set(key, value)

    __setitem__ = set


def record_redraws(table: TaskTable) -> tuple[list[tuple[Region, ...]], list[tuple[str, str]]]:
    """Spy on ``table``: the regions of each refresh asked for (``()`` is the whole
    widget), and the (task id, column) of each cell DataTable renders anew."""
    refreshes: list[tuple[Region, ...]] = []
    rendered: list[tuple[str, str]] = []
    refresh = table.refresh

    def spy_refresh(*regions: Region, **options: Any) -> Any:
        refreshes.append(regions)
        return refresh(*regions, **options)

    table.refresh = spy_refresh  # type: ignore[method-assign]
    table._cell_render_cache = RecordingCache(table._cell_render_cache, rendered)
    return refreshes, rendered


def row_text(table: TaskTable, task_id: str) -> str:
    """The row as drawn on screen (the header is the table's first line)."""
    y = table.get_row_index(task_id) + table.header_height - round(table.scroll_y)
    return table.render_line(y).text


async def settled(pilot: Any) -> ClaudineApp:
    app: ClaudineApp = pilot.app
    await wait_for(pilot, lambda: app.engine_started and app.table.row_count == 8,
                   what="the first snapshot")
    await pilot.pause(0.2)  # every row drawn once, so its cells are in DataTable's caches
    return app


async def test_a_changed_cell_redraws_its_row_alone() -> None:
    engine = busy_engine()
    app = ClaudineApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        app = await settled(pilot)
        table = app.table
        task = engine.service.get("0004")
        assert table.selected_id != task.id  # the cursor's row is drawn for other reasons
        refreshes, rendered = record_redraws(table)
        engine.tasks[task.id] = make_task(
            4, TaskState.RUNNING, task.prompt, num_turns=8, cost_usd=task.cost_usd,
            branch=task.branch, last_activity=task.last_activity)
        app.refresh_snapshot()
        await pilot.pause()

        assert "8" in row_text(table, task.id).split()  # the new turn count is on screen
        assert refreshes, "nothing was redrawn"
        assert all(regions for regions in refreshes), "the whole table was redrawn"
        row_y = table.get_row_index(task.id) + table.header_height
        assert {region.y for regions in refreshes for region in regions} == {row_y}
        assert rendered == [(task.id, "turns")]


async def test_an_unchanged_snapshot_redraws_nothing() -> None:
    engine = busy_engine()
    app = ClaudineApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        app = await settled(pilot)
        refreshes, rendered = record_redraws(app.table)
        app.refresh_snapshot()
        await pilot.pause()
        assert refreshes == [] and rendered == []


async def test_a_cell_changed_while_scrolled_away_shows_when_scrolled_back() -> None:
    # Forgetting a cell's cached render is what makes its new text show: a row redrawn
    # later (here, scrolled back into view) must not bring back the old one.
    tasks = [make_task(n, TaskState.RUNNING, f"job {n}", num_turns=1) for n in range(1, 61)]
    engine = FakeEngine(tasks)
    app = ClaudineApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.engine_started and app.table.row_count == 60,
                       what="the first snapshot")
        await pilot.pause(0.2)
        table = app.table
        first = tasks[-1]  # the newest task: the top row
        assert "1" in row_text(table, first.id).split()
        table.scroll_end(animate=False, immediate=True)
        await pilot.pause()
        engine.tasks[first.id] = make_task(60, TaskState.RUNNING, "job 60", num_turns=5)
        app.refresh_snapshot()
        table.scroll_home(animate=False, immediate=True)
        await pilot.pause()
        assert "5" in row_text(table, first.id).split()
