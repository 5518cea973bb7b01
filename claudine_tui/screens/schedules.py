"""The schedules of the home: when each runs, how its last run went; pause, resume, cancel.

Opened with ``S`` from the task table. Everything goes through ``service.schedules`` (the
store is never imported here). The list is read again once a second, on a timer like the
task table's: a few dozen rows are a cheap read, and a schedule that fires, or one another
front end pauses, shows up without a key press. The last outcome of each schedule is its
newest execution, read again only when the schedule's record changed (a firing updates it).
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Label, Static

from claudine_core.errors import ClaudineError
from claudine_core.schedules.model import Schedule, ScheduleExecution
from claudine_tui.screens.confirm import ConfirmScreen
from claudine_tui.widgets.footer import KeyFooter
from claudine_tui.widgets.ports import SchedulePort

REFRESH_S = 1.0
LIST_LIMIT = 200  # newest first; more than a screen shows, a bounded read
HISTORY_SHOWN = 5
# (key, header, width); the prompt takes the width the others leave (ScheduleTable).
COLUMNS = (("id", "ID", 8), ("when", "When", 22), ("zone", "Time zone", 16),
           ("status", "Status", 9), ("next", "Next run", 16), ("last", "Last", 8),
           ("runs", "Runs", 6), ("prompt", "Prompt", 0))
MIN_PROMPT_WIDTH = 16
STATUS_STYLES = {"active": "green", "paused": "yellow", "completed": "dim",
                 "cancelled": "dim red", "expired": "dim"}
OUTCOME_STYLES = {"created": "green", "failed": "bold red", "skipped": "yellow"}
EMPTY = ("No schedules. Create one with  claudine schedule add PROMPT --cron '0 3 * * *'  "
         "or the ScheduleTask MCP tool.")

Row = tuple[str | Text, ...]


class ScheduleTable(DataTable[str | Text]):
    """Rows keyed by schedule id; the prompt column fits the table's width."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(cursor_type="row", id=id)
        self.prompt_width = MIN_PROMPT_WIDTH

    def on_mount(self) -> None:
        for key, label, width in COLUMNS:
            self.add_column(label, key=key, width=width or MIN_PROMPT_WIDTH)

    def on_resize(self) -> None:
        fixed = sum(width for _, _, width in COLUMNS)
        free = self.size.width - fixed - 2 * self.cell_padding * len(COLUMNS) - 1
        self.prompt_width = max(MIN_PROMPT_WIDTH, free)
        self.columns["prompt"].width = self.prompt_width  # type: ignore[index]
        # As TaskTable.fit_columns: DataTable has no public way to resize a column.
        self._clear_caches()
        self._require_update_dimensions = True
        self.refresh()
        self.post_message(self.Fitted())

    class Fitted(Message):
        """The prompt column changed width: its excerpts are cut again."""


class SchedulesScreen(Screen[None]):
    """The schedules table and the selected schedule's details and recent firings."""

    BINDINGS = [
        Binding("p", "pause", "Pause"),
        Binding("r", "resume", "Resume"),
        Binding("c", "cancel_schedule", "Cancel schedule"),
        Binding("escape", "close", "Back"),
    ]

    def __init__(self, schedules: SchedulePort) -> None:
        super().__init__()
        self.schedules = schedules
        self.rows: dict[str, Schedule] = {}  # by id, in the table's order
        self._cells: dict[str, Row] = {}
        # schedule id -> (its updated_at when read, its newest execution)
        self._last: dict[str, tuple[float, ScheduleExecution | None]] = {}

    def compose(self) -> ComposeResult:
        yield Label("Schedules", id="schedules-title")
        yield ScheduleTable(id="schedules")
        with VerticalScroll(id="schedule-details-scroll"):
            yield Static(id="schedule-details")
        yield KeyFooter(keep=("pause", "resume", "cancel_schedule", "close", "toggle_help"))

    @property
    def table(self) -> ScheduleTable:
        return self.query_one(ScheduleTable)

    def on_mount(self) -> None:
        self.table.focus()
        self.refresh_rows()
        self.set_interval(REFRESH_S, self.refresh_rows, name="schedules")

    # -- reading ----------------------------------------------------------------------------

    @property
    def selected(self) -> Schedule | None:
        if not self.rows or self.table.row_count == 0:
            return None
        key = self.table.coordinate_to_cell_key(self.table.cursor_coordinate).row_key.value
        return self.rows.get(key) if key is not None else None

    def refresh_rows(self) -> None:
        """Read the schedules and update the table (only the cells that changed)."""
        if not self.is_attached:
            return
        try:
            schedules = self.schedules.list(limit=LIST_LIMIT)
        except ClaudineError as exc:  # a locked or broken store: said, and tried again
            self.query_one("#schedules-title", Label).update(f"Schedules · {exc.message}")
            return
        cells = {s.id: self._row(s) for s in schedules}
        table = self.table
        if list(cells) != list(self._cells):
            selected = self.selected
            table.clear()
            for schedule_id, row in cells.items():
                table.add_row(*row, key=schedule_id)
            if selected is not None and selected.id in cells:
                table.move_cursor(row=table.get_row_index(selected.id))
        else:
            for schedule_id, row in cells.items():
                for (key, _, _), old, new in zip(COLUMNS, self._cells[schedule_id], row,
                                              strict=True):
                    if old != new:
                        table.update_cell(schedule_id, key, new)
        self.rows = {s.id: s for s in schedules}
        self._cells = cells
        active = sum(1 for s in schedules if s.status.value == "active")
        self.query_one("#schedules-title", Label).update(
            f"Schedules · {len(schedules)} · {active} active")
        self.show_details()

    def _row(self, schedule: Schedule) -> Row:
        status = schedule.status.value
        last = self._last_execution(schedule)
        outcome = Text(last.outcome.value, OUTCOME_STYLES.get(last.outcome.value, "")) \
            if last else Text("-", "dim")
        return (schedule.short_id, describe_when(schedule), schedule.timezone,
                Text(status, STATUS_STYLES.get(status, "")),
                local_time(next_run(schedule), schedule.timezone), outcome,
                describe_runs(schedule),
                excerpt(schedule.template.prompt, self.table.prompt_width))

    def _last_execution(self, schedule: Schedule) -> ScheduleExecution | None:
        cached = self._last.get(schedule.id)
        if cached is not None and cached[0] == schedule.updated_at:
            return cached[1]
        history = self.schedules.history(schedule.id, 1)
        last = history[0] if history else None
        self._last[schedule.id] = (schedule.updated_at, last)
        return last

    def show_details(self) -> None:
        details = self.query_one("#schedule-details", Static)
        schedule = self.selected
        if schedule is None:
            details.update(Text(EMPTY, "dim"))
            return
        try:
            history = self.schedules.history(schedule.id, HISTORY_SHOWN)
        except ClaudineError as exc:
            details.update(Text(exc.message, "red"))
            return
        details.update(Text(schedule_details(schedule, history)))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        self.show_details()

    def on_schedule_table_fitted(self, event: ScheduleTable.Fitted) -> None:
        self.refresh_rows()

    # -- commands ---------------------------------------------------------------------------

    def _selected_or_warn(self) -> Schedule | None:
        schedule = self.selected
        if schedule is None:
            self.notify("No schedule selected.", severity="warning", timeout=3)
        return schedule

    def _act(self, verb: str, schedule: Schedule, command: str) -> None:
        try:
            if command == "pause":
                done = self.schedules.pause(schedule.id)
            elif command == "resume":
                done = self.schedules.resume(schedule.id)
            else:
                done = self.schedules.cancel(schedule.id, "cancelled from the console")
        except ClaudineError as exc:  # not active, already ended, gone: the core's words
            self.notify(exc.message, severity="error", timeout=6)
            return
        upcoming = next_run(done)
        self.notify(f"schedule {done.short_id} {verb}" + (
            f"; next run {local_time(upcoming, done.timezone, zone_name=True)}"
            if upcoming is not None else ""), timeout=4)
        self.refresh_rows()

    def action_pause(self) -> None:
        if (schedule := self._selected_or_warn()) is not None:
            self._act("paused", schedule, "pause")

    def action_resume(self) -> None:
        if (schedule := self._selected_or_warn()) is not None:
            self._act("resumed", schedule, "resume")

    def action_cancel_schedule(self) -> None:
        schedule = self._selected_or_warn()
        if schedule is None:
            return
        if schedule.status.is_final:
            self.notify(f"schedule {schedule.short_id} is already {schedule.status.value}.",
                        severity="warning", timeout=4)
            return

        def confirmed(yes: bool | None) -> None:
            if yes:
                self._act("cancelled", schedule, "cancel")

        question = (f"Cancel schedule {schedule.short_id} ({describe_when(schedule)})?\n"
                    f"{excerpt(schedule.template.prompt, 120)}\n"
                    "Tasks it already created are left as they are.")
        self.app.push_screen(ConfirmScreen(question, yes="Cancel schedule", no="Keep"),
                             confirmed)

    def action_close(self) -> None:
        self.dismiss(None)


# -- text ---------------------------------------------------------------------------------------


def describe_when(schedule: Schedule) -> str:
    """``cron 0 3 * * *`` or ``at 2026-01-02 09:00`` (once, in the schedule's time zone)."""
    if schedule.cron:
        return f"cron {schedule.cron}"
    return f"at {local_time(schedule.run_at, schedule.timezone)}"


def next_run(schedule: Schedule) -> float | None:
    """When it fires next; None unless it is active (a paused schedule keeps the slot it
    had in the store, but will not fire then: resuming picks the next one)."""
    return schedule.next_run_at if schedule.status.value == "active" else None


def describe_runs(schedule: Schedule) -> str:
    """Tasks made so far, of at most ``max_runs``: ``3/10``, or ``3`` without a limit."""
    return f"{schedule.runs}/{schedule.max_runs}" if schedule.max_runs else str(schedule.runs)


def local_time(epoch: float | None, zone: str, *, zone_name: bool = False) -> str:
    """A time in the schedule's zone, as people read it; ``-`` for none."""
    if epoch is None:
        return "-"
    try:
        tz = ZoneInfo(zone)
    except (ValueError, LookupError):  # stored valid; a machine without that zone's data
        tz = ZoneInfo("UTC")
    return datetime.fromtimestamp(epoch, tz).strftime("%Y-%m-%d %H:%M"
                                                      + (" %Z" if zone_name else ""))


def excerpt(text: str, width: int) -> str:
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1] + "…"


def schedule_details(schedule: Schedule, history: list[ScheduleExecution]) -> str:
    """The selected schedule in full, then its newest firings."""
    zone = schedule.timezone
    template = schedule.template
    status = schedule.status.value + (f" ({schedule.cancel_reason})"
                                      if schedule.cancel_reason else "")
    lines = [
        f"{schedule.id}  {status}",
        f"  {'when:':12} {describe_when(schedule)} ({zone}); missed runs: "
        f"{schedule.missed_run_policy.value}",
        f"  {'next run:':12} {local_time(next_run(schedule), zone, zone_name=True)}"
        + (" (resuming picks the next slot)" if schedule.status.value == "paused" else ""),
        f"  {'last run:':12} {local_time(schedule.last_run_at, zone, zone_name=True)}",
        f"  {'runs:':12} {describe_runs(schedule)}",
    ]
    if schedule.expires_at is not None:
        lines.append(f"  {'expires:':12} {local_time(schedule.expires_at, zone, zone_name=True)}")
    if schedule.after_schedule:
        lines.append(f"  {'after:':12} {schedule.after_schedule} (each task waits for its "
                     "latest task)")
    lines.append(f"  {'task:':12} {template.priority} in {template.cwd}"
                 + (f", model {template.model}" if template.model else "")
                 + (", worktree" if template.worktree else ""))
    lines.append(f"  {'prompt:':12} {excerpt(template.prompt, 400)}")
    lines.append("  history:" + ("     no firings yet" if not history else ""))
    for execution in history:
        task = f" → {execution.task_id}" if execution.task_id else ""
        error = f": {execution.error}" if execution.error else ""
        lines.append(f"    {local_time(execution.scheduled_for, zone)}  "
                     f"{execution.outcome.value}{task}{error}")
    return "\n".join(lines)
