"""Tasks that wait for other tasks (``depends_on``): resolved when delegated, released by
the owner.

A task with unmet dependencies is stored ``blocked``. The owner re-decides every blocked
task whenever the store changed (:class:`DependencyReleaser`): all dependencies completed
-> queued; one failed or was cancelled -> the task's policy (fail or cancel it, naming that
dependency, or run it anyway). Nothing is remembered between passes, so an owner killed
between a dependency's end and its dependents' release leaves nothing undone: the next
owner's first pass releases them. A failed dependent is itself a dependency that failed,
so ``fail`` and ``cancel`` cascade down a chain, one pass per link. A dependency waiting
for an automatic retry is queued or running, not ended, so its dependents stay blocked,
and so does one whose worktree merge step is still running (its work is not in the base
branch yet, and a task continuing its conversation would lose the worktree under it).

A pipeline's steps always use the ``fail`` policy, with a reason naming the step that
stopped the pipeline rather than a task id alone.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from claudine_core.events import StoreVersion, state_version
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


def dependency_states(repo: TaskRepo, task_ids: tuple[str, ...]) -> dict[str, TaskState | None]:
    """The states :func:`decide` decides on: as stored, except that a task whose merge step
    is still pending counts as running (it has not finished ending)."""
    states = repo.states_of(task_ids)
    for task_id in repo.merging(task_ids):
        states[task_id] = TaskState.RUNNING
    return states


def waiting_on(repo: TaskRepo, task: Task) -> str | None:
    """The unfinished dependencies of a blocked task, in words (None if it is not blocked)."""
    if task.status is not TaskState.BLOCKED or not task.depends_on:
        return None
    states = repo.states_of(task.depends_on)
    merging = repo.merging(task.depends_on)
    pending = [f"{short_id(i)} ({_state_words(s, i in merging)})" for i, s in states.items()
               if s is not TaskState.COMPLETED or i in merging]
    return "waiting for " + ", ".join(pending) if pending else "about to be released"


def _state_words(state: TaskState | None, merging: bool) -> str:
    if state is None:
        return "gone"
    return f"{state.value}, merging its branch" if merging else state.value


def pipeline_reason(repo: TaskRepo, task: Task, reason: str) -> str:
    """Why a pipeline step ends without running, naming the step that stopped the pipeline:
    the failed or cancelled step it waited for, or (down the chain) the one that step
    named."""
    previous = task.depends_on[0] if task.depends_on else None  # a step's one dependency
    try:
        before = repo.get(previous) if previous else None
    except LookupError:
        before = None
    if before is None or before.pipeline_id != task.pipeline_id:
        return reason
    if before.error and before.error.startswith(PIPELINE_STOPPED):
        return before.error  # it never ran either: the step it names stopped the pipeline
    what = before.status.value if before.status.is_terminal else "ended"
    return (f"{PIPELINE_STOPPED} step {before.pipeline_step} (task {before.short_id}) "
            f"{what}")


PIPELINE_STOPPED = "pipeline stopped:"


class DependencyReleaser:
    """The owner's pass over blocked tasks, run only when the store changed."""

    def __init__(self, repo: TaskRepo) -> None:
        self.repo = repo
        self._read_at: StoreVersion | None = None

    def release(self, now: float) -> int:
        """Move every blocked task whose dependencies have decided it; returns how many."""
        version = state_version(self.repo)
        if version == self._read_at:
            return 0
        self._read_at = version  # before the read: a write after it is seen next time
        moved = 0
        for task in self.repo.list_tasks(statuses=[TaskState.BLOCKED], newest_first=False):
            state, reason = decide(task.on_dependency_failure,
                                   dependency_states(self.repo, task.depends_on))
            if state is None:
                continue
            if reason and task.pipeline_id:
                reason = pipeline_reason(self.repo, task, reason)
            changes: dict[str, object] = {"status": state}
            if state is not TaskState.QUEUED:
                changes.update(ended_at=now, error=reason)
            if state is TaskState.CANCELLED:
                changes.update(cancel_requested=True, cancel_reason=reason)
            if self.repo.transition(task.id, [TaskState.BLOCKED], **changes):
                moved += 1
                log.info("task %s: %s%s", task.id, state.value, f" ({reason})" if reason else "")
        return moved
