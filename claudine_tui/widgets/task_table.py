"""The task table: one row per task, keyed by id, updated by a keyed diff."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.binding import Binding
from textual.coordinate import Coordinate
from textual.widgets import DataTable

from claudine_core.models import Task
from claudine_tui.widgets.task_rows import (
    COLUMN_KEYS,
    COLUMNS,
    FLEX_COLUMNS,
    MIN_FLEX_WIDTH,
    SORT_MODES,
    RowValues,
    TaskFilter,
    render_cell,
    row_values,
    sort_key,
)

HEADER_SORTS = {"status": "status", "priority": "priority", "id": "newest"}


class TaskTable(DataTable[str | Text]):
    """Rows keyed by task id. :meth:`apply` touches only the cells whose text changed.

    The filter and the sort order live here, so changing either re-applies the last
    snapshot at once instead of waiting for the next refresh.
    """

    BINDINGS = [Binding("enter", "select_cursor", "Details")]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(cursor_type="row", id=id)
        self.border_title = "Tasks"
        self.task_filter = TaskFilter()
        self.sort_mode = SORT_MODES[0]
        self.tasks: dict[str, Task] = {}
        self.cells_updated = 0  # how many update_cell calls the diffs made (for tests)
        self._rows: dict[str, RowValues] = {}
        # A finished task's row does not change with the clock: kept per Task object (the
        # snapshot hands back the same objects until the store changes).
        self._finished_rows: dict[str, tuple[Task, RowValues]] = {}
        self._order: list[str] = []
        self._all: Sequence[Task] = ()
        self._now = 0.0

    def on_mount(self) -> None:
        for key, label, width in COLUMNS:
            self.add_column(label, key=key, width=width)

    def on_resize(self) -> None:
        self.fit_columns(self.size.width)

    def fit_columns(self, width: int) -> None:
        """Give the prompt and activity columns the width the fixed columns leave."""
        fixed = sum(w for key, _, w in COLUMNS if key not in FLEX_COLUMNS)
        free = width - fixed - 2 * self.cell_padding * len(COLUMNS) - 1
        for key, share in FLEX_COLUMNS.items():
            self.columns[key].width = max(MIN_FLEX_WIDTH, int(free * share))  # type: ignore[index]
        # DataTable has no public way to resize a column: drop its caches and re-measure.
        self._clear_caches()
        self._require_update_dimensions = True
        self.refresh()

    @property
    def selected_id(self) -> str | None:
        if not self.row_count:
            return None
        cell = self.coordinate_to_cell_key(Coordinate(self.cursor_row, 0))
        return cell.row_key.value

    @property
    def selected(self) -> Task | None:
        selected = self.selected_id
        return None if selected is None else self.tasks.get(selected)

    def apply(self, tasks: Sequence[Task], now: float) -> None:
        """Bring the rows in line with ``tasks`` (a snapshot taken at ``now``)."""
        if tasks is not self._all:
            self._forget_finished_rows_not_in(tasks)
        self._all, self._now = tasks, now
        selected = self.selected_id
        visible = sorted(filter(self.task_filter.matches, tasks), key=sort_key(self.sort_mode))
        wanted = {task.id: self._values(task, now) for task in visible}
        for task_id in [key for key in self._rows if key not in wanted]:
            self.remove_row(task_id)
            del self._rows[task_id]
        for task_id, values in wanted.items():
            self._apply_row(task_id, values)
        self.tasks = {task.id: task for task in visible}
        order = list(wanted)
        if order != self._order:
            self._reorder(order, selected)

    def _values(self, task: Task, now: float) -> RowValues:
        if not task.status.is_terminal:
            return row_values(task, now)
        kept = self._finished_rows.get(task.id)
        if kept is not None and kept[0] is task:
            return kept[1]
        values = row_values(task, now)
        self._finished_rows[task.id] = (task, values)
        return values

    def _forget_finished_rows_not_in(self, tasks: Sequence[Task]) -> None:
        listed = {task.id for task in tasks}
        for task_id in [key for key in self._finished_rows if key not in listed]:
            del self._finished_rows[task_id]

    def reapply(self) -> None:
        self.apply(self._all, self._now)

    def set_filter(self, task_filter: TaskFilter) -> None:
        self.task_filter = task_filter
        self.reapply()

    def set_sort(self, mode: str) -> None:
        self.sort_mode = mode
        self.reapply()

    def _apply_row(self, task_id: str, values: RowValues) -> None:
        old = self._rows.get(task_id)
        status = values[0]
        if old is None:
            cells = [render_cell(k, v, status) for k, v in zip(COLUMN_KEYS, values, strict=True)]
            self.add_row(*cells, key=task_id)
        else:
            for index, (before, after) in enumerate(zip(old, values, strict=True)):
                if before != after or (index == 8 and old[0] != status):
                    column = COLUMN_KEYS[index]
                    self.update_cell(task_id, column, render_cell(column, after, status))
                    self.cells_updated += 1
        self._rows[task_id] = values

    def _reorder(self, order: list[str], selected: str | None) -> None:
        rank = {self._rows[task_id][2]: index for index, task_id in enumerate(order)}
        self.sort("id", key=lambda short: rank.get(str(short), len(rank)))
        self._order = order
        if selected in self._rows:
            self.move_cursor(row=self.get_row_index(selected), scroll=False)

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        event.stop()
        mode = HEADER_SORTS.get(str(event.column_key.value), self.sort_mode)
        self.set_sort(mode)
