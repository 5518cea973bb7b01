"""The task table: one row per task, keyed by id, updated by a keyed diff.

When the agents run on a cluster the table gains a node column (where each task runs),
once, the first time a snapshot has nodes or a task with a node: a console on a home whose
agents run on this machine shows the same columns as always.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from rich.text import Text
from textual.binding import Binding
from textual.coordinate import Coordinate
from textual.widgets import DataTable
from textual.widgets.data_table import CellKey, ColumnKey, RowKey

from claudine_core.models import Task
from claudine_tui.widgets.nodes import ID_CHARS, node_labels
from claudine_tui.widgets.table_cache import forget_cached_renders
from claudine_tui.widgets.task_rows import (
    CLUSTER_COLUMNS,
    COLUMNS,
    FLEX_COLUMNS,
    MIN_FLEX_WIDTH,
    SORT_MODES,
    RowValues,
    TaskFilter,
    render_cell,
    row_values,
    sort_key,
    with_node,
)

if TYPE_CHECKING:
    from claudine_core.backends.base import NodeCapacity

HEADER_SORTS = {"status": "status", "priority": "priority", "id": "newest"}


class TaskTable(DataTable[str | Text]):
    """Rows keyed by task id. :meth:`apply` touches only the cells whose text changed.

    The filter and the sort order live here, so changing either re-applies the last
    snapshot at once instead of waiting for the next refresh.
    """

    BINDINGS = [Binding("enter", "select_cursor", "Details")]

    def __init__(self, *, id: str | None = None,
                 on_cursor_row: Callable[[str], None] | None = None) -> None:
        """``on_cursor_row`` is called with the task id each time the cursor moves to
        another row, in the same step as the move (see :meth:`watch_cursor_coordinate`)."""
        super().__init__(cursor_type="row", id=id)
        self.on_cursor_row = on_cursor_row
        self.border_title = "Tasks"
        self.task_filter = TaskFilter()
        self.sort_mode = SORT_MODES[0]
        self.tasks: dict[str, Task] = {}
        self.cells_updated = 0  # how many cells the diffs changed (for tests)
        self._rows: dict[str, RowValues] = {}
        # A finished task's row does not change with the clock: kept per Task object (the
        # snapshot hands back the same objects until the store changes) and node label.
        self._finished_rows: dict[str, tuple[Task, str | None, RowValues]] = {}
        self._order: list[str] = []
        self._all: Sequence[Task] = ()
        self._now = 0.0
        self.column_specs = COLUMNS
        self.column_keys = tuple(key for key, _, _ in COLUMNS)
        self._activity = self.column_keys.index("activity")
        self.node_labels: dict[str, str] = {}
        """Node id -> label, of every node seen (a task keeps its node's name once the
        node is gone)."""

    @property
    def shows_nodes(self) -> bool:
        return self.column_specs is CLUSTER_COLUMNS

    def on_mount(self) -> None:
        self._add_columns()

    def _add_columns(self) -> None:
        for key, label, width in self.column_specs:
            self.add_column(label, key=key, width=width)

    def show_node_column(self) -> None:
        """Add the node column: the table is built anew with it (once in a console's life:
        a home's backend does not change under it); the next :meth:`apply` fills it."""
        if self.shows_nodes:
            return
        self.column_specs = CLUSTER_COLUMNS
        self.column_keys = tuple(key for key, _, _ in CLUSTER_COLUMNS)
        self._activity = self.column_keys.index("activity")
        self.clear(columns=True)
        self._rows.clear()
        self._finished_rows.clear()
        self._order = []
        self._add_columns()
        if self.size.width:
            self.fit_columns(self.size.width)

    def on_resize(self) -> None:
        self.fit_columns(self.size.width)

    def fit_columns(self, width: int) -> None:
        """Give the prompt and activity columns the width the fixed columns leave."""
        specs = self.column_specs
        fixed = sum(w for key, _, w in specs if key not in FLEX_COLUMNS)
        free = width - fixed - 2 * self.cell_padding * len(specs) - 1
        for key, share in FLEX_COLUMNS.items():
            self.columns[key].width = max(MIN_FLEX_WIDTH, int(free * share))  # type: ignore[index]
        # DataTable has no public way to resize a column: drop its caches and re-measure.
        self._clear_caches()
        self._require_update_dimensions = True
        self.refresh()

    def watch_cursor_coordinate(self, old: Coordinate, new: Coordinate) -> None:
        super().watch_cursor_coordinate(old, new)
        # DataTable says so with a RowHighlighted message, handled only after the frame
        # that shows the moved cursor: what follows the selection (the log pane) came a
        # frame later, which Textual's frame timer makes 17 to 33 ms.
        if old.row != new.row and self.on_cursor_row is not None:
            selected = self.selected_id
            if selected is not None:
                self.on_cursor_row(selected)

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

    def apply(self, tasks: Sequence[Task], now: float,
              nodes: Sequence[NodeCapacity] | None = None) -> None:
        """Bring the rows in line with ``tasks`` (a snapshot taken at ``now``); ``nodes``:
        the cluster's, when the agents run on one (None: on this machine)."""
        selected = self.selected_id
        if nodes is not None:
            self.node_labels.update(node_labels(nodes))
        if not self.shows_nodes and (nodes is not None or (
                tasks is not self._all and any(task.node for task in tasks))):
            self.show_node_column()
        if tasks is not self._all:
            self._forget_finished_rows_not_in(tasks)
        self._all, self._now = tasks, now
        visible = sorted(filter(self.task_filter.matches, tasks), key=sort_key(self.sort_mode))
        wanted = {task.id: self._values(task, now) for task in visible}
        for task_id in [key for key in self._rows if key not in wanted]:
            self.remove_row(task_id)
            del self._rows[task_id]
        changed: list[CellKey] = []
        for task_id, values in wanted.items():
            changed += self._apply_row(task_id, values)
        self._redraw_cells(changed)
        self.tasks = {task.id: task for task in visible}
        order = list(wanted)
        if order != self._order:
            self._reorder(order, selected)

    def _values(self, task: Task, now: float) -> RowValues:
        label = self._node_label(task) if self.shows_nodes else None
        if not task.status.is_terminal:
            return self._row(task, now, label)
        kept = self._finished_rows.get(task.id)
        if kept is not None and kept[0] is task and kept[1] == label:
            return kept[2]
        values = self._row(task, now, label)
        self._finished_rows[task.id] = (task, label, values)
        return values

    @staticmethod
    def _row(task: Task, now: float, node_label: str | None) -> RowValues:
        values = row_values(task, now)
        return values if node_label is None else with_node(values, node_label)

    def _node_label(self, task: Task) -> str:
        """Where the task runs or ran: its node's label, blank for this machine."""
        if not task.node:
            return ""
        return self.node_labels.get(task.node) or task.node[:ID_CHARS]

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

    def _apply_row(self, task_id: str, values: RowValues) -> list[CellKey]:
        """Add the row, or store its changed cells; returns the cells to redraw."""
        old = self._rows.get(task_id)
        self._rows[task_id] = values
        status = values[0]
        keys = self.column_keys
        if old is None:
            cells = [render_cell(k, v, status) for k, v in zip(keys, values, strict=True)]
            self.add_row(*cells, key=task_id)
            return []
        changed = []
        for index, (before, after) in enumerate(zip(old, values, strict=True)):
            # The activity's colour follows the status.
            if before != after or (index == self._activity and old[0] != status):
                cell = CellKey(RowKey(task_id), ColumnKey(keys[index]))
                self._data[cell.row_key][cell.column_key] = render_cell(keys[index], after,
                                                                        status)
                changed.append(cell)
        self.cells_updated += len(changed)
        return changed

    def _redraw_cells(self, cells: list[CellKey]) -> None:
        """Redraw the rows of ``cells`` alone, re-rendering only those cells.

        ``DataTable.update_cell`` bumps the table's update count, which every render cache
        is keyed on, and repaints the whole widget: with one changed cell per running task
        a snapshot re-rendered every visible cell. Here the stale cached renders of just
        these cells and rows are dropped and only their rows are marked for redrawing.
        """
        if not cells:
            return
        rows = {cell.row_key for cell in cells}
        forget_cached_renders(self, set(cells), rows)
        for row_key in rows:
            self.refresh_row(self.get_row_index(row_key))

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
