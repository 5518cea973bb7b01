"""The log / detail pane of the selected task.

The log follows the agent's output file through ``service.read_events`` offsets (it works
the same for an owner and a client), a bounded batch per poll, into a ``TailLog`` (a
``RichLog`` that grows without a screen layout) with ``max_lines``: memory stays bounded
whatever the agent prints. When an agent writes faster than a person can read, the pane
skips ahead to the tail and says so.

Once the followed task has ended other than completed, the pane says how (the agent's own
last line may read "completed" for an agent that was stopped), and a failed task that
wrote nothing to its stream shows the tail of its stderr. The search (``/`` with the
pane focused) is :class:`~claudine_tui.widgets.log_search.LogSearch`.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.widgets import RichLog, Static

from claudine_core.agents.stream_events import AgentResult, InvalidLine, StreamEvent
from claudine_core.models import Task, TaskState
from claudine_tui.log_render import render_rich
from claudine_tui.task_text import STATUS_GLYPHS, task_details
from claudine_tui.widgets.log_search import LogSearch
from claudine_tui.widgets.ports import ServicePort
from claudine_tui.widgets.tail_log import TailLog

MAX_LINES = 2_000
# What a newly selected task shows of its past output: rendered on the key press itself,
# so kept to a few screens (a flooding agent's 32 KB was 64 events to wrap and draw).
TAIL_BYTES = 16 * 1024
BATCH_BYTES = 256 * 1024  # the most one poll reads
BACKLOG_BYTES = 1024 * 1024  # further behind than this: skip to the tail
# The most events one poll renders, the newest: more than a person reads in a third of a
# second, and rendering costs the loop in proportion (a starved console's polls carried
# hundreds). The log on disk has them all.
MAX_EVENTS_PER_POLL = 100
STDERR_TAIL_BYTES = 2048
NO_OUTPUT = "No output yet."


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
        self._placeholder = False  # "No output yet." is on screen (cleared by the first output)
        self._rendered_here = 0  # events rendered from the current attempt's file
        self._agent_said_failed = False  # the attempt's result line already reads "failed"
        self._ended_as: tuple[str, int, str] | None = None  # the ending already written
        self._follows = 0  # times the pane switched task: tells a stale threaded read
        # Held rather than queried: a query fails once the DOM is being torn down at exit.
        self._log = TailLog(max_lines=MAX_LINES, wrap=True, markup=False, id="log")

    def compose(self) -> ComposeResult:
        yield self._log
        yield LogSearch(self.service)
        with VerticalScroll(id="details-scroll"):
            yield Static(id="details")

    def on_mount(self) -> None:
        self._show_mode()
        self.log_widget.write(Text("No task selected. Press n to delegate one.", "dim"))

    @property
    def log_widget(self) -> RichLog:
        return self._log

    @property
    def search(self) -> LogSearch:
        return self.query_one(LogSearch)

    def open_search(self) -> None:
        """Search the followed task's whole log (``/`` with the pane focused)."""
        if self.task_id is not None:
            self.search.open(self.task_id)

    def follow(self, task_id: str | None) -> None:
        """Show ``task_id``'s output from (near) its end, then follow it."""
        if task_id == self.task_id:
            return
        self.task_id = task_id
        self._follows += 1
        self.read_offset, self._path, self._skip_partial = 0, None, False
        self._placeholder, self._rendered_here, self._ended_as = False, 0, None
        self._agent_said_failed = False
        self.log_widget.clear()
        self.search.close()
        self._title()
        if task_id is None:
            self.log_widget.write(Text("No task selected. Press n to delegate one.", "dim"))
        elif not self.poll():
            self.log_widget.write(Text(NO_OUTPUT, style="dim"))
            self._placeholder = True

    def observe(self, task: Task | None) -> None:
        """Note the followed task's latest state: once it has failed or been cancelled,
        say so under its output (once per attempt), after reading what is left of it."""
        if task is None or task.id != self.task_id or not task.status.is_terminal:
            return
        ending = (task.id, task.attempt, task.status.value)
        if ending == self._ended_as:
            return
        before = -1
        while self.read_offset != before:  # the agent's last lines come before the verdict
            before = self.read_offset
            self.poll()
        self._ended_as = ending
        if task.status is TaskState.COMPLETED or (
                task.status is TaskState.FAILED and self._agent_said_failed):
            return  # the agent's own result line has said it
        self._clear_placeholder()
        reason = task.error or task.cancel_reason or task.status.value
        glyph = STATUS_GLYPHS[task.status.value]
        style = "bold red" if task.status is TaskState.FAILED else "bold magenta"
        self.log_widget.write(Text(f"{glyph} {task.status.value}: {reason}", style=style))
        if task.status is TaskState.FAILED and not self._rendered_here:
            self._write_stderr(task.id)

    def _write_stderr(self, task_id: str) -> None:
        tail = self.service.stderr_tail(task_id, STDERR_TAIL_BYTES).rstrip()
        if tail:
            self.log_widget.write(Text("stderr (last lines):", style="bold"))
            self.log_widget.write(Text(tail, style="red"))
        else:
            self.log_widget.write(Text("(nothing on stderr either)", style="dim"))

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
        return self._take(events, offset)

    async def poll_in_thread(self) -> int:
        """:meth:`poll`, with the file read and the JSON parse on a worker thread: under a
        flood a poll's batch took the console's loop several milliseconds."""
        if self.task_id is None:
            return 0
        size = self._check_file()
        if self._path is not None and size <= self.read_offset:
            return 0  # nothing new: no thread to wake (an idle console polls 3 times a second)
        task_id, start, follows = self.task_id, self.read_offset, self._follows
        events, offset = await asyncio.to_thread(self.service.read_events, task_id, start,
                                                 BATCH_BYTES)
        if (self.task_id, self.read_offset, self._follows) != (task_id, start, follows):
            return 0  # the pane followed another task, or read on, meanwhile
        return self._take(events, offset)

    def _take(self, events: list[StreamEvent], offset: int) -> int:
        """Render events read up to ``offset``; returns the events rendered."""
        if self._skip_partial and events and isinstance(events[0], InvalidLine):
            events = events[1:]  # the cut-off line we started in the middle of
        self._skip_partial = self._skip_partial and offset == self.read_offset
        self.read_offset = offset
        return self._write(events)

    def _check_file(self) -> int:
        """Notice a new attempt's file and skip a backlog too large to show; the size."""
        assert self.task_id is not None
        path = self.service.output_path(self.task_id)
        if path != self._path:
            if self._path is not None:
                self.log_widget.write(Text("── new attempt ──", style="bold"))
            self._path, self.read_offset, self._rendered_here = path, 0, 0
            self._agent_said_failed = False
        size = _size(path)
        if size - self.read_offset > (BACKLOG_BYTES if self.read_offset else TAIL_BYTES):
            skipped = size - TAIL_BYTES - self.read_offset
            self.log_widget.write(
                Text(f"… {skipped // 1024} KB of output not shown (claudine logs "
                     f"{self.task_id} has it all)", style="dim italic")
            )
            self.read_offset, self._skip_partial = size - TAIL_BYTES, True
        return size

    def _write(self, events: list[StreamEvent]) -> int:
        for event in events:
            if isinstance(event, AgentResult):
                self._agent_said_failed = not event.ok
        rendered = [text for text in map(render_rich, events[-MAX_EVENTS_PER_POLL:])
                    if text is not None]
        if len(events) > MAX_EVENTS_PER_POLL:
            skipped = len(events) - MAX_EVENTS_PER_POLL
            rendered.insert(0, Text(f"… {skipped} events not shown (claudine logs "
                                    f"{self.task_id} has them all)", style="dim italic"))
        if rendered:
            self._clear_placeholder()
            # One write per batch: RichLog measures, renders and trims its buffer per call,
            # which per line costs several times the rendering itself.
            self.log_widget.write(Text("\n").join(rendered[-MAX_LINES:]))
        self.lines_written += len(rendered)
        self._rendered_here += len(rendered)
        return len(rendered)

    def _clear_placeholder(self) -> None:
        if self._placeholder:
            self.log_widget.clear()
            self._placeholder = False

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
