"""Telling the user a task has ended: a desktop notification and the ``on_finish`` command.

A task a usage limit parks is told about too (status ``parked``, once per park: releasing
it clears ``notified_at``), so a user away from the console learns the queue has paused.

The owner does it, whichever front end is open (a console, ``claudine serve``, a headless
MCP server), once per task. :class:`Notifier` is one more version-keyed pass of the owner's
tick, like :class:`~claudine_core.dependencies.DependencyReleaser`: when the store changed,
it looks for ended tasks whose ``notified_at`` is still empty, claims each with a guarded
write (``notified_at`` set only where it is still NULL), and tells about the ones it
claimed on a worker thread, so a slow or hanging command never holds up the loop.

**At most once.** The claim is committed *before* anything is told. Two processes that
both run the pass (an owner and a stray one, or a restart) cannot both claim a task, so
nothing is ever told twice. The price is a narrow window: an owner killed (``kill -9``)
after the claim and before it has started the notifier or the command leaves that task
untold. Once started, both run in a session of their own, so they finish even if the
owner dies meanwhile (only the timeout is then no longer enforced). At-least-once (claim
after telling) would instead repeat a hook that had already run whenever an owner died
while it ran, and an ``on_finish`` that posts a message or opens a ticket must not do
that twice.

A worktree task is told about once its merge step has recorded an outcome, so the JSON
the command reads says what became of the branch. Tasks that ended before schema 8 count
as told (the migration marks them).
"""

from __future__ import annotations

import functools
import json
import logging
import os
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence

import peewee

from claudine_core.config import Config
from claudine_core.events import StoreVersion, state_version
from claudine_core.models import TERMINAL_STATES, TOLD_STATES, Task, TaskState
from claudine_core.store import StoreError, TaskRepo

log = logging.getLogger("claudine.notify")

DESKTOP_TIMEOUT_S = 10.0
"""A desktop notifier returns at once; one that does not is killed after this long."""
STDERR_SHOWN = 400
"""How much of a failed command's stderr the log quotes (its end)."""
MAX_SEPARATE_NOTIFICATIONS = 3
"""More tasks than this told in one pass get one desktop notification that counts them."""
STOP_WAIT_S = 5.0
"""How long a stopping owner waits for commands still running before it lets them be."""


def desktop_notifier(env: Mapping[str, str], platform: str = sys.platform) -> list[str] | None:
    """The command that shows a desktop notification here (title and body to be appended),
    or None when this machine has none: ``notify-send`` on Linux and the BSDs, ``osascript``
    on macOS, looked up on the owner's PATH."""
    path = env.get("PATH", os.defpath)
    if platform == "darwin":
        osascript = shutil.which("osascript", path=path)
        if osascript is None:
            return None
        # The text goes in as arguments, never into the script, so no quoting can break it.
        return [osascript, "-e", "on run argv", "-e",
                "display notification (item 2 of argv) with title (item 1 of argv)",
                "-e", "end run"]
    notify_send = shutil.which("notify-send", path=path)
    return None if notify_send is None else [notify_send, "--app-name=claudine"]


def notification_text(task: Task) -> tuple[str, str]:
    """The title and body of a task's desktop notification."""
    title = f"claudine: task {task.short_id} {task.status.value}"
    prompt = " ".join(task.prompt.split())
    body = prompt if len(prompt) <= 120 else prompt[:119] + "…"
    if task.error and task.status is not TaskState.COMPLETED:
        body += f"\n{task.error[:200]}"
    return title, body


def summary_text(tasks: Sequence[Task]) -> tuple[str, str]:
    """One notification for several tasks: ``claudine: 9 tasks ended`` and the count of
    each outcome."""
    counts = {state: sum(1 for t in tasks if t.status is state) for state in TOLD_STATES}
    each = ", ".join(f"{n} {state.value}" for state, n in sorted(
        counts.items(), key=lambda item: item[0].value) if n)
    if counts[TaskState.PARKED] == len(tasks):
        return f"claudine: {len(tasks)} tasks parked by a usage limit", each
    return f"claudine: {len(tasks)} tasks ended", each


def hook_environment(base: Mapping[str, str], task: Task, home: str) -> dict[str, str]:
    """The ``on_finish`` command's environment: the owner's, plus the task's id and status."""
    return {**base, "CLAUDINE_TASK_ID": task.id, "CLAUDINE_TASK_STATUS": task.status.value,
            "CLAUDINE_HOME": home}


class Notifier:
    """The owner's pass over ended tasks nobody has been told about yet.

    Args:
        config: the owner's settings (``desktop_notifications``, ``on_finish``,
            ``on_finish_timeout_s``).
        repo: the home's store.
        clock: the source of ``notified_at``.
        env: the environment the notifier and the command run with (the owner's).
    """

    def __init__(self, config: Config, repo: TaskRepo, clock: Callable[[], float] = time.time,
                 env: Mapping[str, str] | None = None) -> None:
        self.config = config
        self.repo = repo
        self.clock = clock
        self.env = dict(os.environ if env is None else env)
        self._read_at: StoreVersion | None = None
        self._ended_seen: int | None = None  # how many tasks had ended at the last full read
        self._merging = False  # an untold task waited for its merge step at the last read
        self._checked = False  # whether on_finish was checked (at the first pass)
        self._threads: list[threading.Thread] = []
        self._desktop: list[str] | None = (
            desktop_notifier(self.env) if config.desktop_notifications else None)

    def tick(self) -> int:
        """Claim and tell about every newly ended task; returns how many were claimed.

        Reads nothing unless the store changed since the last pass.
        """
        version = state_version(self.repo)
        if version == self._read_at:
            return 0
        if not self._checked:
            self._checked = True
            self._check_command()  # once, when this process first owns the home
        self._read_at = version  # before the read: a write after it is seen next time
        # Ended tasks never come back, so while their number stays the same (the summary
        # flushes of running agents move the version twice a second) there is no new one;
        # the count reads the status index only (about 1 ms with 10,000 ended tasks, where
        # the full query takes 25 ms). A task held back for its merge step is looked at
        # again on every change until it is told.
        counts = self.repo.count_by_status()
        ended = sum(counts.get(state, 0) for state in TOLD_STATES)
        if ended == self._ended_seen and not self._merging:
            return 0
        told: list[Task] = []
        try:
            untold, self._merging = self._untold()
            for task_id in untold:
                if self._claim(task_id):  # else another process claimed it first
                    told.append(self.repo.get(task_id))
        except StoreError:
            self._read_at = None  # a locked or full store: read again on the next tick
            raise
        finally:
            self._tell(told)  # what this pass claimed is told, whatever came after
        self._ended_seen = ended
        return len(told)

    def close(self, wait_s: float = STOP_WAIT_S) -> None:
        """Wait a little for commands still running; they finish on their own after that."""
        deadline = time.monotonic() + wait_s
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        left = [t.name for t in self._threads if t.is_alive()]
        if left:
            log.warning("on_finish still running at exit (%s): it goes on without its "
                        "timeout", ", ".join(left))

    # -- the pass ------------------------------------------------------------------------------

    def _check_command(self) -> None:
        """Say at once, not at the first task's end, that on_finish names no program."""
        if not self.config.on_finish:
            return
        program = self.config.on_finish[0]
        found = (os.access(program, os.X_OK) if os.sep in program
                 else shutil.which(program, path=self.env.get("PATH", os.defpath)))
        if not found:
            log.error("on_finish names %r, which is not an executable program%s: tasks that "
                      "end will not be reported to it; fix the on_finish setting", program,
                      "" if os.sep in program else " on PATH")

    def _untold(self) -> tuple[list[str], bool]:
        """Ended tasks not yet claimed, oldest first, but for worktree tasks whose merge step
        has not recorded an outcome yet; and whether there were such tasks."""
        row = self.repo.TaskRow
        merge_status = peewee.fn.json_extract(row.merge, "$.status")
        merging = (row.status.in_([s.value for s in TERMINAL_STATES])
                   & row.branch.is_null(False) & row.worktree_path.is_null(False)
                   & (row.merge.is_null() | (merge_status == "pending")))
        query = row.select(row.id, merging.alias("merging")).where(
            row.status.in_([s.value for s in TOLD_STATES]) & row.notified_at.is_null()
        ).order_by(row.seq).tuples()
        try:
            rows = list(query)
        except (peewee.OperationalError, peewee.DatabaseError) as exc:
            raise StoreError(f"could not read the ended tasks to notify about: {exc}") from exc
        return [task_id for task_id, held in rows if not held], any(held for _, held in rows)

    def _claim(self, task_id: str) -> bool:
        """Set ``notified_at`` where it is still empty; True if this process set it."""
        row = self.repo.TaskRow
        query = row.update(notified_at=self.clock()).where(
            (row.id == task_id) & row.notified_at.is_null())
        self.repo.writes += 1  # our own commit moves the version the other passes key on
        try:
            return int(query.execute()) == 1
        except (peewee.OperationalError, peewee.DatabaseError) as exc:
            raise StoreError(f"could not record that task {task_id} was told about: "
                             f"{exc}") from exc

    def _tell(self, tasks: list[Task]) -> None:
        """Notify about ``tasks`` and run on_finish for each, on worker threads. More than
        :data:`MAX_SEPARATE_NOTIFICATIONS` at once (a pipeline stopped, the first pass after
        a long stop) make one desktop notification that counts them, not a flood."""
        if not tasks:
            return
        if self._desktop is not None:
            texts = ([notification_text(task) for task in tasks]
                     if len(tasks) <= MAX_SEPARATE_NOTIFICATIONS else [summary_text(tasks)])
            self._start("notify-desktop", [functools.partial(
                run_command, [*self._desktop, title, body], self.env, DESKTOP_TIMEOUT_S,
                what="desktop notifier", about=title) for title, body in texts])
        for task in tasks if self.config.on_finish else ():
            self._start(f"notify-{task.short_id}", [functools.partial(
                run_command, list(self.config.on_finish),
                hook_environment(self.env, task, str(self.config.home)),
                self.config.on_finish_timeout_s, what="on_finish",
                about=f"task {task.short_id}", stdin=json.dumps(task.to_json()).encode())])

    def _start(self, name: str, work: list[Callable[[], object]]) -> None:
        self._threads = [t for t in self._threads if t.is_alive()]
        thread = threading.Thread(target=_run_all, args=(work,), daemon=True, name=name)
        self._threads.append(thread)
        thread.start()


def _run_all(work: Sequence[Callable[[], object]]) -> None:
    for step in work:
        step()


def run_command(argv: Sequence[str], env: Mapping[str, str], timeout_s: float, *, what: str,
                about: str, stdin: bytes = b"") -> int | None:
    """Run ``argv`` directly (no shell) in a session of its own, feed it ``stdin``, and kill
    its whole group at ``timeout_s``. Every failure is logged with what to do, never raised:
    telling about a task must not fail anything else. Returns the exit status (None: it did
    not start or was killed). ``about`` names what it was run for, in the log."""
    shown = shlex.join(argv)
    try:
        process = subprocess.Popen(
            list(argv), stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, env=dict(env), start_new_session=True, close_fds=True)
    except OSError as exc:
        log.error("%s: the %s command %s could not start (%s): set it to a program "
                  "that exists and is executable", about, what, shown,
                  exc.strerror or exc)
        return None
    try:
        _, stderr = process.communicate(stdin, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        _kill_group(process)
        log.error("%s: the %s command %s was still running after %g s and was killed: "
                  "make it return sooner (start long work in the background) or raise "
                  "on_finish_timeout_s", about, what, shown, timeout_s)
        return None
    if process.returncode != 0:
        tail = stderr.decode("utf-8", "replace").strip()[-STDERR_SHOWN:]
        log.warning("%s: the %s command %s exited with status %s%s; try it by hand, e.g. "
                    "claudine status ID --json | %s", about, what, shown,
                    process.returncode, f": {tail}" if tail else "", shown)
    else:
        log.info("%s: told (%s)", about, what)
    return process.returncode


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the command and whatever it started in its session, then reap it."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        process.kill()
    try:
        process.communicate(timeout=5)
    except (subprocess.TimeoutExpired, ValueError):
        pass

