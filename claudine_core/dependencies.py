"""Tasks that wait for other tasks (``depends_on``): resolved when delegated, released by
the owner.

A task with unmet dependencies is stored ``blocked``. The owner re-decides every blocked
task whenever the store changed (:class:`DependencyReleaser`): all dependencies completed
-> queued; one failed or was cancelled -> the task's policy (fail or cancel it, naming that
dependency, or run it anyway). Nothing is remembered between passes, so an owner killed
between a dependency's end and its dependents' release leaves nothing undone: the next
owner's first pass releases them. A failed dependent is itself a dependency that failed,
so ``fail`` and ``cancel`` cascade down a chain, one pass per link. A dependency waiting
for an automatic retry is queued or running, not ended, so its dependents stay blocked.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from claudine_core.events import StoreVersion, store_version
from claudine_core.models import (
    TERMINAL_STATES,
    DependencyPolicy,
    Task,
    TaskState,
    short_id,
)
from claudine_core.store import TaskRepo

log = logging.getLogger("claudine.engine")

Decision = tuple[TaskState | None, str | None]
"""The state a blocked task moves to (None: it keeps waiting) and why."""


def decide(policy: DependencyPolicy | None, states: Mapping[str, TaskState | None]) -> Decision:
    """What a task whose dependencies are in ``states`` does now (None: unknown task)."""
    waiting = False
    for task_id, state in states.items():
        if state is TaskState.COMPLETED:
            continue
        if state is None or (state in TERMINAL_STATES and policy is not DependencyPolicy.RUN):
            what = "no longer exists" if state is None else state.value
            reason = f"dependency task {short_id(task_id)} {what}"
            if policy is DependencyPolicy.CANCEL:
                return TaskState.CANCELLED, reason
            return TaskState.FAILED, reason
        if state not in TERMINAL_STATES:
            waiting = True
    return (None, None) if waiting else (TaskState.QUEUED, None)


def waiting_on(repo: TaskRepo, task: Task) -> str | None:
    """The unfinished dependencies of a blocked task, in words (None if it is not blocked)."""
    if task.status is not TaskState.BLOCKED or not task.depends_on:
        return None
    states = repo.states_of(task.depends_on)
    pending = [f"{short_id(i)} ({s.value if s else 'gone'})" for i, s in states.items()
               if s is not TaskState.COMPLETED]
    return "waiting for " + ", ".join(pending) if pending else "about to be released"


class DependencyReleaser:
    """The owner's pass over blocked tasks, run only when the store changed."""

    def __init__(self, repo: TaskRepo) -> None:
        self.repo = repo
        self._read_at: StoreVersion | None = None

    def release(self, now: float) -> int:
        """Move every blocked task whose dependencies have decided it; returns how many."""
        version = store_version(self.repo)
        if version == self._read_at:
            return 0
        self._read_at = version  # before the read: a write after it is seen next time
        moved = 0
        for task in self.repo.list_tasks(statuses=[TaskState.BLOCKED], newest_first=False):
            state, reason = decide(task.on_dependency_failure,
                                   self.repo.states_of(task.depends_on))
            if state is None:
                continue
            changes: dict[str, object] = {"status": state}
            if state is not TaskState.QUEUED:
                changes.update(ended_at=now, error=reason)
            if state is TaskState.CANCELLED:
                changes.update(cancel_requested=True, cancel_reason=reason)
            if self.repo.transition(task.id, [TaskState.BLOCKED], **changes):
                moved += 1
                log.info("task %s: %s%s", task.id, state.value, f" ({reason})" if reason else "")
        return moved
