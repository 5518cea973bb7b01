"""Plain-text rendering for the command line (tables, task details, logs)."""

from __future__ import annotations

import errno
import select
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from claudine_core.models import Task, TaskState, iso_time
from claudine_tui.task_text import (  # noqa: F401 (task_details: used as output.task_details)
    ENDED_UNRECORDED,
    STATUS_GLYPHS,
    clock_time,
    format_elapsed,
    format_money,
    task_details,
)

if TYPE_CHECKING:
    from claudine_core.agents.run_log import RunLogFollower

OUTPUT_FILE = "stdout.jsonl"


def elapsed(task: Task, now: float) -> float | None:
    # A parked task's run has ended but the task has not: no time that means anything.
    if task.started_at is None or task.status is TaskState.PARKED:
        return None
    return (task.ended_at or now) - task.started_at


def excerpt(text: str, width: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def task_table(tasks: list[Task], *, now: float, ended: frozenset[str] = frozenset(),
               pipelines: dict[str, list[Task]] | None = None) -> str:
    """The tasks, one a row; ``ended``: ids of running tasks whose agent is gone.

    The steps of a pipeline in ``pipelines`` (its id -> all its steps) are grouped where
    its first shown step would be: a header line with the count of its steps in each
    state, then its shown steps indented, first step first.
    """
    if not tasks:
        return "no tasks yet: claudine delegate \"PROMPT\" queues one"
    header = f"{'ID':8}  {'STATUS':11}  {'PRI':3}  {'TIME':>7}  {'TURNS':>5}  {'COST':>7}  PROMPT"
    rows = [header]
    grouped = pipelines or {}
    shown: set[str] = set()
    for task in tasks:
        pipeline_id = task.pipeline_id
        if pipeline_id is None or pipeline_id not in grouped:
            rows.append(_task_row(task, now, ended))
            continue
        if pipeline_id in shown:
            continue
        shown.add(pipeline_id)
        rows.append(pipeline_header(pipeline_id, grouped[pipeline_id]))
        steps = sorted((t for t in tasks if t.pipeline_id == pipeline_id),
                       key=lambda t: t.pipeline_step or 0)
        rows += ["  " + _task_row(step, now, ended, f"{step.pipeline_step}. ", 58)
                 for step in steps]
    if ended:
        rows.append(f"* {ENDED_UNRECORDED}")
    return "\n".join(rows)


def no_tasks(counts: dict[TaskState, int], statuses: list[TaskState] | None) -> str:
    """What ``status`` says when no row is shown: an empty home, or none in those states."""
    stored = sum(counts.values())
    if not stored:
        return "no tasks yet: claudine delegate \"PROMPT\" queues one"
    wanted = " or ".join(s.value for s in statuses or ())
    return f"no {wanted} tasks ({stored} task{'s' if stored != 1 else ''} stored)"


TMUX_FAILED_WINDOW_S = 24 * 3600
"""``status --tmux`` counts the failures of the last day, so the segment clears by itself."""
TMUX_MAX_COUNT = 100
"""Failures looked at (newest first) for that count; more shows as ``99+``."""


def tmux_line(counts: dict[TaskState, int], recent_failures: int) -> str:
    """``●2 ◌5 ✘1`` (the console's glyphs): running, queued (blocked ones with ``⏸``,
    parked ones, waiting for a usage limit to reset, with ``◷``), recent failures; states
    with none are left out, so an idle home prints nothing."""
    parts = [(TaskState.RUNNING, counts.get(TaskState.RUNNING, 0)),
             (TaskState.QUEUED, counts.get(TaskState.QUEUED, 0)),
             (TaskState.BLOCKED, counts.get(TaskState.BLOCKED, 0)),
             (TaskState.PARKED, counts.get(TaskState.PARKED, 0)),
             (TaskState.FAILED, recent_failures)]
    return " ".join(f"{STATUS_GLYPHS[state.value]}{_count(n)}" for state, n in parts if n)


def _count(number: int) -> str:
    return f"{TMUX_MAX_COUNT - 1}+" if number >= TMUX_MAX_COUNT else str(number)


def pipeline_header(pipeline_id: str, steps: list[Task]) -> str:
    """``pipe-... pipeline, 3 steps: 1 completed, 1 running, 1 blocked``."""
    counts = {state: sum(1 for s in steps if s.status is state) for state in TaskState}
    each = ", ".join(f"{n} {state.value}" for state, n in counts.items() if n)
    return f"{pipeline_id}  pipeline, {len(steps)} step{'s' if len(steps) != 1 else ''}: {each}"


def _task_row(task: Task, now: float, ended: frozenset[str], prefix: str = "",
              width: int = 60) -> str:
    if task.status is TaskState.PARKED and task.parked_until is not None:
        # Until when it waits, where its prompt starts: the row stays as wide.
        prefix = f"{prefix}until {clock_time(task.parked_until, now)}: "
    glyph = STATUS_GLYPHS.get(task.status.value, " ")
    cost = format_money(task.cost_usd) if task.cost_usd is not None else "-"
    turns = str(task.num_turns) if task.num_turns is not None else "-"
    took = format_elapsed(elapsed(task, now)) or "-"
    state = task.status.value + ("*" if task.id in ended else "")
    return (f"{task.short_id:8}  {glyph} {state:9}  {task.priority!s:3}  "
            f"{took:>7}  {turns:>5}  {cost:>7}  {prefix}{excerpt(task.prompt, width)}")


def one_line(task: Task) -> str:
    detail = f": {task.error}" if task.error else ""
    return f"{task.id} {task.status.value}{detail}"


def print_logs(service: Any, task: Task, *, tail: int | None, follow: bool, raw: bool,
               poll_s: float, attempt: int | None = None) -> int:
    """Print a task's output, every attempt in order (or only ``attempt``), rendered or as
    raw JSON lines; with ``follow``, keep printing (into later attempts too) until it ends.
    ``tail`` reads only as much of the end of the files as the last lines need."""
    runs = service.attempt_dirs(task.id)
    if attempt is not None:
        runs = [run for run in runs if attempt_number(run) == attempt]
        if not runs:
            raise ValueError(f"task {task.short_id} has no attempt {attempt} (it has "
                              f"{task.attempt or 'none yet'}); try without --attempt")
    if not runs and not follow:
        print(f"(task {task.short_id} is {task.status.value}; no output yet)", file=sys.stderr)
        return 0
    reader = _AttemptReader(raw, several=len(runs) > 1)
    lines = reader.read_tail(runs, tail) if tail is not None else reader.read_all(runs)
    for line in lines:
        print(line)
    sys.stdout.flush()
    while follow:
        current = service.get(task.id)
        latest = runs[-1] if attempt is not None and runs else _latest(service, task.id)
        moved = reader.read(latest, _print_flush) if latest is not None else False
        if not moved and current.status.is_terminal:
            break
        if output_closed():
            # Like ``tail -f | head``: a reader that is gone ends the command now, not
            # whenever the agent next prints.
            raise BrokenPipeError(errno.EPIPE, "the reader of stdout went away")
        time.sleep(poll_s)
    if follow:
        final = service.get(task.id)
        print(f"— {final.status.value}" + (f": {final.error}" if final.error else ""))
    return 0


def output_closed() -> bool:
    """True when stdout is a pipe whose reader has closed it (poll reports an error)."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, ValueError, OSError):
        return False  # not a real file (a test's capture)
    poller = select.poll()
    poller.register(fd, 0)  # errors and hang-ups are reported whatever the mask
    return any(events & (select.POLLERR | select.POLLHUP) for _, events in poller.poll(0))


def attempt_number(run_dir: Path) -> int:
    return int(run_dir.name.removeprefix("attempt-"))


def _latest(service: Any, task_id: str) -> Path | None:
    runs = service.attempt_dirs(task_id)
    return runs[-1] if runs else None


def _print_flush(line: str) -> None:
    print(line, flush=True)


class _AttemptReader:
    """Reads attempts' ``stdout.jsonl`` files through the run-log reader, announcing each
    new attempt; remembers where it is in the latest one, for following it."""

    def __init__(self, raw: bool, several: bool) -> None:
        # The stream parser is imported where logs are read, so that status and delegate
        # do not load it (issue 9); once here, not per line.
        from claudine_core.agents.log_text import render_plain
        from claudine_core.agents.stream_parse import parse_line

        self._parse_line, self._render_plain = parse_line, render_plain
        self.raw = raw
        self.several = several  # announce attempts only when there is more than one
        self.run: Path | None = None
        self.follower: RunLogFollower | None = None

    def read_all(self, runs: list[Path]) -> list[str]:
        """Every line of every attempt, oldest first."""
        lines: list[str] = []
        for run in runs:
            self.read(run, lines.append)
        return lines

    def read_tail(self, runs: list[Path], count: int) -> list[str]:
        """The last ``count`` lines of ``runs`` (attempt headings count as lines), reading
        the files back from their ends only as far as those lines need."""
        from claudine_core.agents.run_log import end_of_last_line

        if not runs:
            return []
        # Where the latest run's complete lines end now: the tail ends there and following
        # resumes there, so a line written meanwhile is printed once.
        latest_end = end_of_last_line(runs[-1] / OUTPUT_FILE)
        newest_first: list[str] = []
        for index in range(len(runs) - 1, -1, -1):
            if len(newest_first) >= count:
                break
            # A run before the latest has ended: its cut-off last line is shown too.
            end = latest_end if index == len(runs) - 1 else None
            path = runs[index] / OUTPUT_FILE
            newest_first += self._lines_backward(path, end, count - len(newest_first))
            if self.several and not self.raw:
                newest_first.append(_attempt_heading(runs[index]))
        self._start(runs[-1], latest_end)
        return newest_first[:count][::-1]

    def _lines_backward(self, path: Path, end: int | None, count: int) -> list[str]:
        from claudine_core.agents.run_log import iter_lines_backward

        newest_first: list[str] = []
        for _, line in iter_lines_backward(path, end):
            newest_first += reversed(self._render(line))
            if len(newest_first) >= count:
                break
        return newest_first

    def read(self, run: Path, emit: Any) -> bool:
        """Emit what is new in ``run``; True if anything was read."""
        if run != self.run:
            if self.follower is not None:
                self._emit_lines(self.follower.flush(), emit)  # a cut-off last line
                self.several = True
            self._start(run, 0)
            if self.several and not self.raw:
                emit(_attempt_heading(run))
        assert self.follower is not None
        offset = self.follower.offset
        self._emit_lines(self.follower.read_lines(), emit)
        return self.follower.offset != offset

    def _start(self, run: Path, offset: int) -> None:
        from claudine_core.agents.run_log import RunLogFollower

        self.run, self.follower = run, RunLogFollower(run / OUTPUT_FILE, offset)

    def _emit_lines(self, lines: list[bytes], emit: Any) -> None:
        for line in lines:
            for text in self._render(line):
                emit(text)

    def _render(self, line: bytes) -> list[str]:
        """The printed lines of one output line: itself when raw, else its events'."""
        if self.raw:
            return [line.decode("utf-8", "replace")]
        printed: list[str] = []
        for event in self._parse_line(line):
            text = self._render_plain(event)
            if text is not None:
                printed += text.splitlines()
        return printed


def _attempt_heading(run: Path) -> str:
    return f"── attempt {attempt_number(run)} ──"


def timestamp(epoch: float | None) -> str:
    return iso_time(epoch) or "-"
