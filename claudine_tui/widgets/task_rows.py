"""Pure functions that turn tasks into table rows: text, glyphs, filters and sort keys.

Nothing here reads the clock: every duration is measured against the snapshot's
``taken_at``, so the same snapshot always renders the same screen.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from rich.text import Text

from claudine_core.models import ACTIVE_STATES, Priority, Task, TaskState
from claudine_core.usage_limits import RESUME_AFTER_LIMIT
from claudine_tui.task_text import STATUS_GLYPHS, format_elapsed, parked_text
from claudine_tui.widgets.nodes import NAME_WIDTH

COLUMNS: tuple[tuple[str, str, int], ...] = (
    ("status", "Status", 11),
    ("priority", "Pri", 3),
    ("id", "ID", 8),
    ("prompt", "Prompt", 24),
    ("where", "Cwd/branch", 14),
    ("elapsed", "Time", 6),
    ("turns", "Turns", 5),
    ("cost", "Cost", 6),
    ("activity", "Activity", 24),
)
FLEX_COLUMNS = {"prompt": 0.45, "activity": 0.55}  # share the width left by the others
MIN_FLEX_WIDTH = 16
COLUMN_KEYS = tuple(key for key, _, _ in COLUMNS)
# Where each task runs, when the agents run on a cluster (blank: this machine); after the
# working directory, as part of "where".
NODE_COLUMN = ("node", "Node", NAME_WIDTH)
NODE_AFTER = COLUMN_KEYS.index("where") + 1
CLUSTER_COLUMNS = COLUMNS[:NODE_AFTER] + (NODE_COLUMN,) + COLUMNS[NODE_AFTER:]

STATUS_STYLE = {
    TaskState.RUNNING: "bold green", TaskState.QUEUED: "cyan", TaskState.BLOCKED: "yellow",
    TaskState.PARKED: "bold bright_blue", TaskState.COMPLETED: "green",
    TaskState.FAILED: "bold red", TaskState.CANCELLED: "magenta",
}  # fmt: skip
# The glyphs are the CLI's (task_text): one vocabulary, the console adds the colour.
STATUS_LOOK: dict[TaskState, tuple[str, str]] = {
    state: (STATUS_GLYPHS[state.value], style) for state, style in STATUS_STYLE.items()
}
PRIORITY_STYLE = {Priority.P0: "bold red", Priority.P1: "yellow", Priority.P2: "dim"}
STATUS_RANK = {
    TaskState.RUNNING: 0, TaskState.QUEUED: 1, TaskState.PARKED: 2, TaskState.BLOCKED: 3,
    TaskState.FAILED: 4, TaskState.CANCELLED: 5, TaskState.COMPLETED: 6,
}  # fmt: skip
STATUS_FILTERS: tuple[str | None, ...] = (
    None, "active", "running", "queued", "parked", "failed", "completed", "cancelled",
)
# "queue": the order the engine runs them in (see queue_key); "priority": P0 first, newest
# first within a priority.
SORT_MODES = ("newest", "queue", "priority", "status")
# What runs next first: running, then the queue (parked tasks in it: see queue_key), then
# blocked tasks, then the finished.
QUEUE_GROUP = {
    TaskState.RUNNING: 0, TaskState.QUEUED: 1, TaskState.PARKED: 1, TaskState.BLOCKED: 2,
    TaskState.FAILED: 3, TaskState.CANCELLED: 3, TaskState.COMPLETED: 3,
}  # fmt: skip

RowValues = tuple[str, ...]


def elapsed_of(task: Task, now: float) -> float | None:
    """Run time (or, while waiting, time in the queue) as of the snapshot's ``now``."""
    if task.status in (TaskState.QUEUED, TaskState.BLOCKED):
        return now - task.created_at
    if task.started_at is None:
        return None
    end = task.ended_at if task.ended_at is not None else now
    return end - task.started_at


def short_path(path: str, width: int = 16) -> str:
    home = os.path.expanduser("~")
    if home not in ("", "/") and path.startswith(home):
        path = "~" + path[len(home):]
    return path if len(path) <= width else "…" + path[-(width - 1):]


def one_line(text: str | None, width: int) -> str:
    """``text`` on one line (whitespace runs become one space), cut to ``width``."""
    text = (text or "").lstrip()
    # Only the start can show, and a prompt may be 100,000 characters: flatten a prefix.
    # Its flattening is a prefix of the whole text's, so once it is longer than ``width``
    # the cut is the same.
    size = 2 * width + 16
    while True:
        flat = " ".join(text[:size].split())
        if len(flat) > width or size >= len(text):
            break
        size *= 4
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def activity_of(task: Task, now: float) -> str:
    """What a person wants to know at a glance: the tool in use, the error, the result;
    for a parked task, when it goes on."""
    text: str | None
    match task.status:
        case TaskState.PARKED:
            text = parked_text(task, now)
        case TaskState.FAILED | TaskState.CANCELLED:
            text = task.error or task.cancel_reason or task.last_activity
        case TaskState.COMPLETED:
            text = task.result or task.last_activity
        case TaskState.QUEUED if task.error:
            text = task.error
        case _:
            text = task.last_activity
    return one_line(text, 100)


def prompt_text(task: Task) -> str:
    """The prompt column: a resumed task shows what it was told (its prompt is its
    parent's), and a pipeline step says which step it is. The note a task is resumed with
    after a usage limit is the engine's, not the user's: its own prompt shows."""
    told = task.resume_prompt if task.resume_prompt != RESUME_AFTER_LIMIT else None
    text = f"↻ {told}" if told else task.prompt
    if task.pipeline_step is not None:
        text = f"⛓{task.pipeline_step} {text}"
    return one_line(text, 160)


def row_values(task: Task, now: float) -> RowValues:
    """The plain values of a row, compared cell by cell to find what changed."""
    return (
        task.status.value,
        str(task.priority),
        task.short_id,
        prompt_text(task),
        short_path(task.branch or task.cwd, 14),
        format_elapsed(elapsed_of(task, now)),
        "" if task.num_turns is None else str(task.num_turns),
        "" if task.cost_usd is None else f"${task.cost_usd:.2f}",
        activity_of(task, now),
    )


def with_node(values: RowValues, node_label: str) -> RowValues:
    """A row's values for a table with the node column (see CLUSTER_COLUMNS)."""
    return values[:NODE_AFTER] + (node_label,) + values[NODE_AFTER:]


def render_cell(column: str, value: str, status: str) -> str | Text:
    """A cell for the table: status and priority get a glyph and a colour."""
    if column == "status":
        glyph, style = STATUS_LOOK[TaskState(value)]
        return Text(f"{glyph} {value}", style=style)
    if column == "priority":
        return Text(value, style=PRIORITY_STYLE[Priority.parse(value)])
    if column == "activity" and status == TaskState.FAILED.value:
        return Text(value, style="red")
    # Text, not str: DataTable reads a str as markup, and "[text:a]" in a prompt would vanish.
    return Text(value)


@dataclass(frozen=True)
class TaskFilter:
    """Which rows show: a status group and words that must all appear in the row."""

    status: str | None = None
    text: str = ""

    def matches(self, task: Task) -> bool:
        if self.status == "active" and task.status not in ACTIVE_STATES:
            return False
        if self.status not in (None, "active") and task.status.value != self.status:
            return False
        words = self.text.lower().split()
        if not words:
            return True
        haystack = " ".join(
            (task.id, task.prompt, task.cwd, task.branch or "", task.status.value,
             str(task.priority), task.last_activity or "", task.error or "")
        ).lower()
        return all(word in haystack for word in words)

    def describe(self) -> str:
        parts = [f"status={self.status}"] if self.status else []
        if self.text:
            parts.append(f"text={self.text!r}")
        return " ".join(parts)


def sort_key(mode: str) -> Callable[[Task], tuple[int, ...]]:
    """The order of rows for a sort mode (see :data:`SORT_MODES`)."""
    if mode == "queue":
        return queue_key
    if mode == "priority":
        return lambda t: (int(t.priority), STATUS_RANK[t.status], -t.seq)
    if mode == "status":
        return lambda t: (STATUS_RANK[t.status], int(t.priority), -t.seq)
    return lambda t: (-t.seq,)


def queue_key(task: Task) -> tuple[int, ...]:
    """The engine's run order (TaskRepo.dispatchable: P0 before P1 before P2, first in
    first out within a priority) for waiting tasks, after the running ones; the finished
    ones last, newest first.

    In the queue, tasks released from a usage-limit park come first, as the engine takes
    them (``resuming``); then the parked ones, which go first at the reset; then the rest.
    """
    group = QUEUE_GROUP[task.status]
    if group == 3:
        return (group, 0, 0, -task.seq)
    if task.status is TaskState.PARKED:
        rank = 1
    else:
        rank = 0 if task.resuming else 2
    return (group, rank, int(task.priority), task.seq)
