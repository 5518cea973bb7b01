"""The console: a Textual app that hosts (or follows) the engine of one claudine home.

The app is lifecycle, bindings and screen switching. It takes its engine by constructor
injection (tests pass a fake), starts it in a worker on mount, refreshes the screen from
``engine.snapshot()`` on a timer, and awaits the engine's shutdown before it exits. Task
commands and queries go through ``engine.service``; the engine itself is asked only for
its lifecycle, its role and kind, and the snapshot.
"""

from __future__ import annotations

import asyncio
import faulthandler
import gc
import logging
import os
import shlex
import subprocess
import time
from collections.abc import Callable, Iterable
from typing import Any

# Textual composes a frame on the next slot of its frame clock (60 a second by default),
# and right after a frame on the second next: up to 33 ms of a key's latency with nothing
# else going on. 120 halves that; frames are still made only when something changed, so
# an idle console costs no more. A TEXTUAL_FPS the user set wins. Set before Textual is
# imported: it reads the variable once.
os.environ.setdefault("TEXTUAL_FPS", "120")

from textual import events  # noqa: E402
from textual.app import App, ComposeResult, SuspendNotSupported, SystemCommand  # noqa: E402
from textual.binding import Binding  # noqa: E402
from textual.containers import Container  # noqa: E402
from textual.screen import Screen  # noqa: E402
from textual.widgets import Header, Input  # noqa: E402
from textual.worker import Worker, WorkerState  # noqa: E402

from claudine_core.config import Config
from claudine_core.errors import ClaudineError
from claudine_core.models import EngineSnapshot, Priority, Task, TaskState
from claudine_tui.screens.confirm import ChoiceScreen, ConfirmScreen
from claudine_tui.screens.costs import CostsScreen
from claudine_tui.screens.diff_view import DiffScreen
from claudine_tui.screens.message import MessageScreen
from claudine_tui.screens.new_task import NewTaskScreen
from claudine_tui.screens.quit import STOP, QuitScreen
from claudine_tui.screens.schedules import SchedulesScreen
from claudine_tui.task_text import parked_text
from claudine_tui.widgets.footer import KeyFooter
from claudine_tui.widgets.gauges import Dashboard
from claudine_tui.widgets.log_pane import LogPane
from claudine_tui.widgets.ports import EnginePort, ReviewPort, ServicePort
from claudine_tui.widgets.task_rows import SORT_MODES, STATUS_FILTERS, TaskFilter
from claudine_tui.widgets.task_table import TaskTable

# The table's keyed diff and the log pane's poll, in one tick so their changes share one
# frame (a frame costs the same whatever it holds, under a flood about 20 ms of CPU);
# 3 Hz is calm and still "within a second".
REFRESH_S = 1 / 3
PRIORITY = Binding.Group("Priority", compact=True)
# Under 120 columns the footer cannot hold every key; these stay (the rest: palette, `?`).
FOOTER_KEEP = ("new_task", "cancel_task", "retry_task", "review_task", "filter", "quit",
               "toggle_help")  # (the log search's own keys are on its status line)
STEP, PIPELINE = "step", "pipeline"  # what a cancel of a pipeline step applies to
# Actions on the task table: off while a full screen (the diff review) covers it.
TABLE_ACTIONS = frozenset({"new_task", "cancel_task", "bump_priority", "set_priority",
                           "retry_task", "follow_log", "review_task", "filter", "cycle_status",
                           "cycle_sort", "close_filter", "details", "schedules", "open_shell",
                           "open_editor", "release_task", "costs"})


class ClaudineApp(App[int]):
    """The console. ``engine`` is anything shaped like :class:`~claudine_core.engine.Engine`."""

    CSS_PATH = "claudine.tcss"
    TITLE = "claudine"
    # -narrow: the footer keeps FOOTER_KEEP; -wide: the table and the pane side by side.
    # Side by side only from 180: below that the table's prompt and activity would be cut.
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (120, "-medium"), (180, "-wide")]
    BINDINGS = [
        Binding("n", "new_task", "New"),
        Binding("c", "cancel_task", "Cancel"),
        Binding("plus", "bump_priority(-1)", "Raise", group=PRIORITY),
        Binding("minus", "bump_priority(1)", "Lower", group=PRIORITY),
        Binding("0", "set_priority('P0')", "P0", group=PRIORITY),
        Binding("1", "set_priority('P1')", "P1", group=PRIORITY),
        Binding("2", "set_priority('P2')", "P2", group=PRIORITY),
        Binding("r", "retry_task", "Retry"),
        # Off the footer too (one more key pushes the label of `?` out at 120 columns):
        # the gauges' limits line names it while tasks are parked; `?` and the palette
        # list it.
        Binding("u", "release_task", "Unpark", show=False),
        Binding("l", "follow_log", "Log"),
        Binding("d", "review_task", "Diff"),
        Binding("m", "message_task", "Message", show=False),
        # Off the footer (no room at 120 columns): `?` help and the palette list them.
        Binding("e", "open_shell", "Shell", show=False),
        Binding("E", "open_editor", "Editor", show=False),
        Binding("slash", "filter", "Filter"),
        Binding("s", "cycle_status", "Status"),
        Binding("o", "cycle_sort", "Sort", show=False),  # also: click a column header
        # Off the footer, which at 120 columns has no room left (it would push out `?`):
        # the `?` help and the command palette list it.
        Binding("S", "schedules", "Schedules", show=False),
        Binding("dollar_sign", "costs", "Costs", key_display="$", show=False),
        Binding("q", "quit", "Quit"),
        Binding("question_mark", "toggle_help", "Help"),
        Binding("escape", "close_filter", "Close filter", show=False),
    ]

    def __init__(self, engine: EnginePort, *, bell: bool = False,
                 review: ReviewPort | None = None) -> None:
        super().__init__()
        self.engine = engine
        self._review = review
        self.bell_on_finish = bell
        self.last_snapshot: EngineSnapshot | None = None
        self._snapshots_applied = 0
        self.engine_started = False
        self._engine_stopped = False
        self._statuses: dict[str, TaskState] = {}
        self._highlighted: str | None = None  # the row the pane last followed
        # What was left running at a "leave running" quit, for the shell (run_console).
        self.farewell: str | None = None

    def compose(self) -> ComposeResult:
        yield Header(icon="◆")
        yield Dashboard(id="dashboard")
        with Container(id="main"):
            yield TaskTable(id="tasks", on_cursor_row=self._follow_selection)
            yield LogPane(self.service, id="pane")
        yield Input(placeholder="filter: words in prompt, id, cwd… (enter keeps, esc clears)",
                    id="filter")
        yield KeyFooter(keep=FOOTER_KEEP)

    @property
    def service(self) -> ServicePort:
        """Task commands and queries: the one way in, for the console as for the others."""
        return self.engine.service

    @property
    def table(self) -> TaskTable:
        return self.query_one(TaskTable)

    @property
    def pane(self) -> LogPane:
        return self.query_one(LogPane)

    # -- lifecycle ---------------------------------------------------------------------------

    def on_mount(self) -> None:
        self.sub_title = "starting…"
        self.query_one("#filter").display = False
        self.table.focus()
        self.run_worker(self._start_engine(), name="engine", exit_on_error=False)

    async def _start_engine(self) -> None:
        await self.engine.start()
        self.engine_started = True
        self.refresh_snapshot()
        self.pane.follow(self.table.selected_id)
        self.set_interval(REFRESH_S, self._refresh_tick, name="refresh")
        # What exists now (modules, styles, widgets, the engine) lives as long as the
        # console: out of the collector's reach, a full collection walks only what came
        # since, where it walked the whole heap (under a flood a 70 to 200 ms stall).
        gc.freeze()

    def on_unmount(self) -> None:
        gc.unfreeze()  # what the console held may go now (a test process starts another)

    async def _refresh_tick(self) -> None:
        if self._refreshing():
            applied = self._snapshots_applied
            snap = await self.engine.snapshot_in_thread()
            # A command's own refresh may have shown a newer snapshot meanwhile.
            if applied == self._snapshots_applied and self._refreshing():
                self.apply_snapshot(snap)
        # A key press waiting behind the snapshot's diff gets through before the log's
        # poll; both still land in the next frame.
        await asyncio.sleep(0)
        await self.poll_log()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.name == "engine" and event.state is WorkerState.ERROR:
            self.sub_title = "engine failed to start"
            self.notify(f"The engine did not start: {event.worker.error}", title="Engine",
                        severity="error", timeout=30)

    async def _stop_and_exit(self, stop_agents: bool,
                             left: EngineSnapshot | None = None) -> None:
        if self.engine_started and not self._engine_stopped:
            self._engine_stopped = True
            if stop_agents:
                self.notify("Stopping agents…", timeout=10)
            await self.engine.stop(stop_agents=stop_agents)
            if left is not None and not stop_agents:
                self.farewell = self._left_running_text(left)
        self.exit(0)

    def _left_running_text(self, snap: EngineSnapshot) -> str:
        """What a "leave running" quit left, and who looks after it now (for the shell)."""
        waiting = [t for t in snap.tasks if t.status in (TaskState.RUNNING, TaskState.QUEUED,
                                                         TaskState.BLOCKED, TaskState.PARKED)]
        ids = " ".join(t.short_id for t in waiting[:10]) + (" …" if len(waiting) > 10 else "")
        counts = f"{snap.running} running, {snap.queued} queued"
        if snap.parked:
            counts += f", {snap.parked} parked"
        heir = getattr(self.engine, "handed_over_to", None)
        if heir:
            owner = f"a background 'claudine serve' (pid {heir}) owns them now"
        elif snap.role == "client" and snap.owner_pid:
            owner = f"they stay with their owner, pid {snap.owner_pid}"
        else:
            owner = "no owner now: the next console, 'claudine serve' or MCP server adopts them"
        home = self.engine.config.home
        return (f"claudine: left {counts} in {home} ({ids}); {owner}. "
                "'claudine status' lists them.")

    async def action_quit(self) -> None:
        # A fresh look, not the last timer's (up to a third of a second old): an agent
        # that just ended must not be offered as still running.
        live = self.engine_started and not self._engine_stopped
        snap = self.engine.snapshot() if live else self.last_snapshot
        # Parked tasks are work left too: an owner must be there at the reset.
        if snap is None or not (snap.running or snap.queued or snap.parked):
            await self._stop_and_exit(False)
            return
        owner = self.engine.role == "owner"

        async def chosen(choice: str | None) -> None:
            if choice is not None:
                await self._stop_and_exit(choice == STOP, snap)

        self.push_screen(QuitScreen(running=snap.running, queued=snap.queued, owner=owner,
                                    parked=snap.parked), chosen)

    # -- refresh -----------------------------------------------------------------------------

    def _refreshing(self) -> bool:
        # Textual clears ``is_running`` before it prunes the screens and only then stops
        # the app's timers, so a tick can land on a half-dismantled DOM at exit.
        return self.is_running and self.engine_started and not self._engine_stopped

    def refresh_snapshot(self) -> None:
        """Take a snapshot now and show it (after a command: its effect shows at once)."""
        if self._refreshing():
            self.apply_snapshot(self.engine.snapshot())

    def apply_snapshot(self, snap: EngineSnapshot) -> None:
        """Show one snapshot: gauges, keyed table diff, header, notifications."""
        previous = self.last_snapshot
        self.last_snapshot = snap
        self._snapshots_applied += 1
        with self.batch_update():
            self.query_one(Dashboard).show(snap)
            self.table.apply(snap.tasks, snap.taken_at, nodes=snap.nodes)
            self.sub_title = self._role_text(snap)
        # The engine hands back the same tuple until the store changes: no task moved.
        if previous is None or snap.tasks is not previous.tasks:
            self._notify_finished(snap.tasks)
        if self.pane.task_id is None and self.table.selected_id is not None:
            self.pane.follow(self.table.selected_id)
        if self.pane.task_id is not None:
            self.pane.observe(self.table.tasks.get(self.pane.task_id))

    async def poll_log(self) -> None:
        if self.is_running:  # see _refreshing
            await self.pane.poll_in_thread()

    def _role_text(self, snap: EngineSnapshot) -> str:
        home = str(self.engine.config.home)
        if snap.role == "owner":
            return f"owner · {self.engine.kind} pid {snap.owner_pid} · {home}"
        owner = f"pid {snap.owner_pid}" if snap.owner_pid else "no owner yet"
        return f"client of {owner} · {home}"

    def _notify_finished(self, tasks: Iterable[Task]) -> None:
        for task in tasks:
            before = self._statuses.get(task.id)
            self._statuses[task.id] = task.status
            if before is None or before.is_terminal or before is task.status:
                continue
            if task.status is TaskState.COMPLETED:
                self.notify(task.prompt[:60], title=f"✔ {task.short_id} completed")
            elif task.status is TaskState.FAILED:
                self.notify(f"{task.prompt[:40]}: {task.error or 'failed'}",
                            title=f"✘ {task.short_id} failed", severity="error", timeout=10)
            elif task.status is TaskState.PARKED:  # the limits line says the rest
                now = self.last_snapshot.taken_at if self.last_snapshot else time.time()
                self.notify(f"{task.prompt[:40]}: {parked_text(task, now)}",
                            title=f"◷ {task.short_id} parked by a usage limit",
                            severity="warning", timeout=10)
            else:
                continue
            if self.bell_on_finish:
                self.bell()

    # -- selection and the pane --------------------------------------------------------------

    def on_data_table_row_highlighted(self, event: TaskTable.RowHighlighted) -> None:
        # A key's cursor move was followed already, in the same step (the table calls
        # _follow_selection); this message still comes for a first row, or a new cursor.
        if self.is_running and event.row_key.value is not None:  # see refresh_snapshot
            self._follow_selection(event.row_key.value)

    def _follow_selection(self, task_id: str) -> None:
        """The pane shows the highlighted task: its log, or its details."""
        if task_id == self._highlighted and task_id == self.pane.task_id:
            return
        self._highlighted = task_id
        self.pane.follow(task_id)
        self.pane.observe(self.table.selected)
        if self.pane.mode == "details":
            self.pane.show_details(self.table.selected)

    def on_data_table_row_selected(self, event: TaskTable.RowSelected) -> None:
        self.action_details()

    def action_details(self) -> None:
        task = self._selected()
        if task is not None:
            self.pane.set_mode("details", self._fresh(task))

    def action_follow_log(self) -> None:
        self.pane.set_mode("log")

    # -- commands on the selected task -------------------------------------------------------

    def _selected(self) -> Task | None:
        task = self.table.selected
        if task is None:
            self.notify("No task selected.", severity="warning", timeout=3)
        return task

    def _fresh(self, task: Task) -> Task:
        return self._call(self.service.get, task.id) or task

    def _call(self, command: Callable[..., Task], *args: Any) -> Task | None:
        """Run a task command; a refused one becomes an error toast, not a crash."""
        try:
            task = command(*args)
        except ClaudineError as exc:  # every refusal the core explains, caught once
            self.notify(exc.message, severity="error", timeout=6)
            return None
        self.refresh_snapshot()
        return task

    async def action_new_task(self) -> None:
        def delegated(task: Task | None) -> None:
            if task is not None:
                self.refresh_snapshot()
                self.notify(f"{task.short_id} {task.status.value} ({task.priority})",
                            timeout=3)

        config = self.engine.config
        form = NewTaskScreen(
            cwd=os.getcwd(), delegate=self.service.delegate,
            default_worktree=config.default_worktree,
            dependency_policy=config.on_dependency_failure,
            selected=self.table.selected)
        # Focused at once, not on a later refresh as AUTO_FOCUS does: keys typed right
        # after `n` go to the prompt (see _on_key).
        await self.push_screen(form, delegated)
        form.set_focus(form.query_one("#field-prompt"))

    async def action_message_task(self) -> None:
        """A message to the selected task's agent: read at its next turn while it runs;
        a finished task's conversation continues with it (a resume)."""
        task = self._selected()
        if task is None:
            return

        def send(text: str) -> str:
            # A refusal (empty text, a queued task, a conversation just closed) raises a
            # ClaudineError: the box shows its message and stays open.
            message = self.service.send_message(task.id, text)
            self.refresh_snapshot()
            if message.resume_task_id:
                return (f"{task.short_id} had ended: its conversation continues as "
                        f"{message.resume_task_id.removeprefix('task-')[:8]}")
            return f"message sent to {task.short_id}: read at its next turn"

        def sent(outcome: str | None) -> None:
            if outcome:
                self.notify(outcome, timeout=4)

        box = MessageScreen(f"Message to task {task.short_id}", send)
        await self.push_screen(box, sent)
        box.set_focus(box.query_one("#message-input"))  # keys typed right after `m`

    async def _on_key(self, event: events.Key) -> None:
        # Keys typed right after `n` were routed to the table before the form existed and
        # bubble up here once it is open. An Input takes every printable key itself, so a
        # printable key reaching the app while one has the focus is such a late key: it
        # goes to that field (the prompt) instead of being lost, or taken as a command.
        # (Textual runs App._on_key after this one unless the default is prevented.)
        focused = self.focused
        if isinstance(focused, Input) and event.is_printable and focused.screen is self.screen:
            event.prevent_default()
            event.stop()
            focused.post_message(events.Key(event.key, event.character))

    def action_cancel_task(self) -> None:
        task = self._selected()
        if task is None:
            return
        if task.status.is_terminal:
            self.notify(f"{task.short_id} is already {task.status.value}.", severity="warning")
            return

        def confirmed(yes: bool | None) -> None:
            done = yes and self._call(self.service.cancel, task.id, "cancelled from the console")
            if done:
                verb = "cancelled" if done.status is TaskState.CANCELLED else "cancel requested"
                self.notify(f"{task.short_id} {verb}", timeout=3)

        question = f"Cancel {task.short_id} ({task.status.value})?\n{task.prompt[:120]}"
        if task.pipeline_id:
            self._ask_pipeline_cancel(task, question, confirmed)
            return
        self.push_screen(ConfirmScreen(question, yes="Cancel task", no="Keep"), confirmed)

    def _ask_pipeline_cancel(self, task: Task, question: str,
                             cancel_step: Callable[[bool | None], None]) -> None:
        """A pipeline step: cancel only it (the later steps then follow their dependency
        policy) or every unfinished step of the pipeline."""
        def chosen(choice: str | None) -> None:
            if choice == STEP:
                cancel_step(True)
            elif choice == PIPELINE:
                self._cancel_pipeline(task)

        question = (f"{question}\nIt is step {task.pipeline_step} of pipeline "
                    f"{task.pipeline_id}.")
        self.push_screen(ChoiceScreen(question, [
            ("s", "Just this step", STEP), ("p", "Whole pipeline", PIPELINE)],
            keep="Keep"), chosen)

    def _cancel_pipeline(self, task: Task) -> None:
        try:
            pipeline_id, steps = self.service.cancel_pipeline(
                task.id, "pipeline cancelled from the console")
        except ClaudineError as exc:
            self.notify(exc.message, severity="error", timeout=6)
            return
        self.refresh_snapshot()
        self.notify(f"pipeline {pipeline_id} cancelled ({len(steps)} steps)", timeout=4)

    def action_set_priority(self, priority: str) -> None:
        task = self._selected()
        if task is not None and task.priority is not Priority.parse(priority):
            self._call(self.service.set_priority, task.id, priority)

    def action_bump_priority(self, step: int) -> None:
        task = self._selected()
        if task is None:
            return
        value = int(task.priority) + step
        if 0 <= value <= 2:
            self._call(self.service.set_priority, task.id, Priority(value))
        else:
            which = "lowest" if step > 0 else "highest"
            self.notify(f"{task.short_id} is already {task.priority}, the {which} priority.",
                        severity="warning", timeout=3)

    def action_release_task(self) -> None:
        """``u``: the selected parked task goes on now, before the queue, even while the
        home is paused (``claudine release``)."""
        task = self._selected()
        if task is None:
            return
        if task.status is not TaskState.PARKED:
            self.notify(f"{task.short_id} is {task.status.value}, not parked: only a task a "
                        "usage limit parked can be released.", severity="warning", timeout=4)
            return
        if self._call(self.service.release, task.id):
            self.notify(f"{task.short_id} released: it goes on before the queue, even "
                        "while the home is paused", timeout=4)

    def action_retry_task(self) -> None:
        task = self._selected()
        if task is not None and (new := self._call(self.service.retry, task.id)):
            self.notify(f"{task.short_id} queued again as {new.short_id}", timeout=3)

    @property
    def review(self) -> ReviewPort:
        """The worktree review actions, on the engine's store (built on first use)."""
        if self._review is None:
            self._review = self.service.worktrees()
        return self._review

    def action_review_task(self) -> None:
        task = self._selected()
        if task is None:
            return
        task = self._fresh(task)
        if not task.branch:
            self.notify(f"task {task.short_id} has no worktree branch", severity="warning",
                        timeout=4)
            return
        self.push_screen(DiffScreen(task, self.review, self.service.get),
                         lambda _: self.refresh_snapshot())

    def _task_dir(self) -> tuple[Task, str] | None:
        """The selected task's worktree (or working directory), if it still exists."""
        task = self._selected()
        if task is None:
            return None
        task = self._fresh(task)
        directory = task.worktree_path or task.cwd
        if not os.path.isdir(directory):
            self.notify(f"The directory of {task.short_id} no longer exists: {directory}",
                        severity="warning", timeout=6)
            return None
        return task, directory

    def action_open_shell(self) -> None:
        """A shell in the task's directory: a new tmux window inside tmux, else this
        terminal (the console comes back when the shell exits)."""
        found = self._task_dir()
        if found is None:
            return
        task, directory = found
        if os.environ.get("TMUX"):
            done = subprocess.run(["tmux", "new-window", "-c", directory, "-n", task.short_id],
                                  capture_output=True, text=True)
            if done.returncode:
                self.notify(f"tmux new-window failed: {done.stderr.strip()}",
                            severity="error", timeout=6)
            else:
                self.notify(f"tmux window {task.short_id} opened in {directory}", timeout=3)
            return
        self._run_here([os.environ.get("SHELL") or "/bin/sh"], directory)

    def action_open_editor(self) -> None:
        """``$EDITOR`` on the task's directory, in this terminal."""
        found = self._task_dir()
        if found is None:
            return
        editor = os.environ.get("EDITOR", "").strip()
        if not editor:
            self.notify("Set $EDITOR to open a task's directory in your editor "
                        "(e.g. export EDITOR=vim).", severity="warning", timeout=6)
            return
        code = self._run_here([*shlex.split(editor), found[1]], found[1])
        if code:
            self.notify(f"{editor} exited with status {code}", severity="error", timeout=6)

    def _run_here(self, argv: list[str], directory: str) -> int | None:
        """Run ``argv`` in the terminal, the console suspended until it exits."""
        try:
            with self.suspend():
                return subprocess.run(argv, cwd=directory).returncode
        except SuspendNotSupported:
            self.notify("This terminal cannot hand the screen over; run it yourself: "
                        f"cd {shlex.quote(directory)}", severity="warning", timeout=8)
        except OSError as exc:
            self.notify(f"Could not run {argv[0]}: {exc.strerror or exc}", severity="error",
                        timeout=6)
        return None

    def action_costs(self) -> None:
        """``$``: what the agents spent, per day and directory, and the budget."""
        self.push_screen(CostsScreen(self.service.costs))

    def action_schedules(self) -> None:
        self.push_screen(SchedulesScreen(self.service.schedules),
                         lambda _: self.refresh_snapshot())

    # -- filter, sort, help ------------------------------------------------------------------

    def action_filter(self) -> None:
        # The key means what the focused part holds: the log pane searches its task's
        # whole log, the table filters its rows.
        if self.focused is not None and self.pane in self.focused.ancestors_with_self:
            self.pane.open_search()
            return
        box = self.query_one("#filter", Input)
        box.display = True
        box.focus()

    def action_close_filter(self) -> None:
        box = self.query_one("#filter", Input)
        if box.display:
            box.value = ""
            box.display = False
            self.table.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "filter":
            self._set_filter(TaskFilter(self.table.task_filter.status, event.value))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "filter":
            event.input.display = bool(event.value)
            self.table.focus()

    def action_cycle_status(self) -> None:
        current = STATUS_FILTERS.index(self.table.task_filter.status)
        status = STATUS_FILTERS[(current + 1) % len(STATUS_FILTERS)]
        self._set_filter(TaskFilter(status, self.table.task_filter.text))
        self.notify(f"showing {status or 'all'} tasks", timeout=2)

    def _set_filter(self, task_filter: TaskFilter) -> None:
        self.table.set_filter(task_filter)
        described = task_filter.describe()
        self.table.border_title = f"Tasks · {described}" if described else "Tasks"

    def action_cycle_sort(self) -> None:
        mode = SORT_MODES[(SORT_MODES.index(self.table.sort_mode) + 1) % len(SORT_MODES)]
        self.table.set_sort(mode)
        self.notify(f"sorted by {mode}", timeout=2)

    def action_toggle_help(self) -> None:
        if self.screen.query("HelpPanel"):
            self.action_hide_help_panel()
        else:
            self.action_show_help_panel()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # Under the diff review the table's keys would act on a task out of sight (and `n`
        # would open a form over the review): off, and so out of its footer and `?` help.
        return action not in TABLE_ACTIONS or not self._table_covered()

    def _table_covered(self) -> bool:
        """A full screen (not a dialog) is over the task table."""
        return any(not screen.is_modal for screen in self.screen_stack[1:])

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        covered = self._table_covered()
        for binding in self.BINDINGS:
            assert isinstance(binding, Binding)
            if covered and binding.action.split("(", 1)[0] in TABLE_ACTIONS:
                continue
            # Every key with a description, including the ones kept out of the footer.
            if binding.show or binding.action in _HELP:
                title = f"{binding.description} ({binding.key_display or binding.key})"
                yield SystemCommand(title, _HELP.get(binding.action, binding.description),
                                    _runner(self, binding.action))
        if not covered:
            yield SystemCommand("Details (enter)", "Full details of the selected task",
                                self.action_details)


_HELP = {
    "new_task": "Delegate a new task (form)",
    "cancel_task": "Cancel the selected task",
    "retry_task": "Queue the selected finished task again",
    "follow_log": "Follow the selected task's log",
    "review_task": "Diff of the selected worktree task: merge, patch, PR or discard it",
    "filter": "Filter the table by text; in the log pane (tab), search the whole log",
    "open_shell": "A shell in the task's directory (a new tmux window inside tmux)",
    "open_editor": "Open the task's directory in $EDITOR",
    "cycle_status": "Show only tasks in a status (cycles)",
    "cycle_sort": "Change the table order (cycles)",
    "schedules": "Schedules: their next runs and last outcomes; pause, resume or cancel",
    "release_task": "Unpark: a task a usage limit parked goes on now, before the queue",
    "costs": "Costs of the last 30 days per day and directory, and the budget",
    "quit": "Quit; choose to leave agents running or stop them",
}


def _runner(app: App[Any], action: str) -> Callable[[], Any]:
    async def run() -> None:
        await app.run_action(action)

    return run


def run_console(config: Config) -> int:
    """Open the console on ``config.home``; returns the exit status."""
    from claudine_core.engine import Engine

    log_path = config.home / "console.log"
    config.home.mkdir(mode=0o700, parents=True, exist_ok=True)
    # The screen owns the terminal: engine logs go to a file, never over the UI. Made
    # 0600 like every file of the home (and narrowed if an older console made it 0644);
    # the process umask stays as it is, since the agents inherit it.
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        if os.fstat(fd).st_mode & 0o077:
            os.fchmod(fd, 0o600)
    finally:
        os.close(fd)
    logging.basicConfig(filename=log_path, level=logging.WARNING,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if config.backend != "local" and not faulthandler.is_enabled():
        # Ray, connecting on the remote supervisor's thread, enables Python's faulthandler
        # on sys.stderr, which in a running console is Textual's capture of it, with no
        # file descriptor: ray.init failed, and no agent ever started. Enabled now, on
        # the terminal's stderr, it is left as it is.
        faulthandler.enable()
    app = ClaudineApp(Engine(config, kind="console"),
                      bell=os.environ.get("CLAUDINE_BELL", "") not in ("", "0"))
    app.run()
    if app.farewell:
        print(app.farewell)
    return int(app.return_code or 0)
