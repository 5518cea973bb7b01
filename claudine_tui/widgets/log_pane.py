"""The log / detail pane of the selected task.

The log follows the agent's output file through ``service.read_events`` offsets (it works
the same for an owner and a client), a bounded batch per poll, into a ``RichLog`` with
``max_lines``: memory stays bounded whatever the agent prints. When an agent writes faster
than a person can read, the pane skips ahead to the tail and says so.
"""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.widgets import RichLog, Static

from claudine_core.agents.stream_events import InvalidLine, StreamEvent
from claudine_core.models import Task, TaskState
from claudine_tui.log_render import render_rich
from claudine_tui.task_text import task_details
from claudine_tui.widgets.ports import ServicePort

MAX_LINES = 2_000
TAIL_BYTES = 32 * 1024  # what a newly selected task shows of its past output (fast to render)
BATCH_BYTES = 256 * 1024  # the most one poll reads
BACKLOG_BYTES = 1024 * 1024  # further behind than this: skip to the tail


class LogPane(Vertical):
    """A ``RichLog`` that follows one task, and its details on demand."""

    def __init__(self, service: ServicePort, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.service = service
        self.task_id: str | None = None
        self.mode = "log"
        self.read_offset = 0
        self.lines_written = 0
        self._path: Path | None = None
        self._skip_partial = False
        # Held rather than queried: a query fails once the DOM is being torn down at exit.
        self._log = RichLog(max_lines=MAX_LINES, wrap=True, markup=False, id="log")

    def compose(self) -> ComposeResult:
        yield self._log
        with VerticalScroll(id="details-scroll"):
            yield Static(id="details")

    def on_mount(self) -> None:
        self._show_mode()
        self.log_widget.write(Text("No task selected. Press n to delegate one.", "dim"))

    @property
    def log_widget(self) -> RichLog:
        return self._log

    def follow(self, task_id: str | None) -> None:
        """Show ``task_id``'s output from (near) its end, then follow it."""
        if task_id == self.task_id:
            return
        self.task_id = task_id
        self.read_offset, self._path, self._skip_partial = 0, None, False
        self.log_widget.clear()
        self._title()
        if task_id is None:
            self.log_widget.write(Text("No task selected. Press n to delegate one.", "dim"))
        elif not self.poll():
            self.log_widget.write(Text("No output yet.", style="dim"))

    def set_mode(self, mode: str, task: Task | None = None) -> None:
        self.mode = mode
        if mode == "details":
            self.show_details(task)
        else:
            self.log_widget.auto_scroll = True
            self.log_widget.scroll_end(animate=False)
        self._show_mode()

    def show_details(self, task: Task | None) -> None:
        if task is None:
            text = "No task selected."
        else:
            # What a blocked task waits on is a cheap read of its dependencies; a queued
            # task's reason may take a resource reading, which would stall the screen.
            blocked = task.status is TaskState.BLOCKED
            text = task_details(task, None, self.service.waiting_reason(task) if blocked
                                else None)
        self.query_one("#details", Static).update(Text(text))

    def poll(self) -> int:
        """Read and render one batch of new output; returns the events rendered."""
        if self.task_id is None:
            return 0
        self._check_file()
        events, offset = self.service.read_events(self.task_id, self.read_offset, BATCH_BYTES)
        if self._skip_partial and events and isinstance(events[0], InvalidLine):
            events = events[1:]  # the cut-off line we started in the middle of
        self._skip_partial = self._skip_partial and offset == self.read_offset
        self.read_offset = offset
        return self._write(events)

    def _check_file(self) -> None:
        assert self.task_id is not None
        path = self.service.output_path(self.task_id)
        if path != self._path:
            if self._path is not None:
                self.log_widget.write(Text("── new attempt ──", style="bold"))
            self._path, self.read_offset = path, 0
        size = _size(path)
        if size - self.read_offset > (BACKLOG_BYTES if self.read_offset else TAIL_BYTES):
            skipped = size - TAIL_BYTES - self.read_offset
            self.log_widget.write(
                Text(f"… {skipped // 1024} KB of output not shown (claudine logs "
                     f"{self.task_id} has it all)", style="dim italic")
            )
            self.read_offset, self._skip_partial = size - TAIL_BYTES, True

    def _write(self, events: list[StreamEvent]) -> int:
        rendered = [text for text in map(render_rich, events) if text is not None]
        if rendered:
            # One write per batch: RichLog measures, renders and trims its buffer per call,
            # which per line costs several times the rendering itself.
            self.log_widget.write(Text("\n").join(rendered[-MAX_LINES:]))
        self.lines_written += len(rendered)
        return len(rendered)

    def _show_mode(self) -> None:
        self.log_widget.display = self.mode == "log"
        self.query_one("#details-scroll").display = self.mode == "details"
        self._title()

    def _title(self) -> None:
        short = self.task_id.removeprefix("task-")[:8] if self.task_id else "—"
        what = "Details" if self.mode == "details" else "Log"
        self.border_title = f"{what} · {short}"


def _size(path: Path | None) -> int:
    if path is None:
        return 0
    try:
        return path.stat().st_size
    except OSError:
        return 0
