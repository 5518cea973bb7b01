"""Commands and queries every front end shares, validated, durable on return.

A command is a committed row (a new task, a cancel request, a new priority), so it works
the same whether this process owns the engine or not: the owner applies it on its next
tick. Nothing here starts or signals a process.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path

from claudine_core.agents.stream import StreamEvent, iter_file_events
from claudine_core.config import Config
from claudine_core.models import (
    TERMINAL_STATES,
    MergeStrategy,
    PermissionMode,
    Priority,
    Task,
    TaskSpec,
    TaskState,
)
from claudine_core.store import TaskRepo, open_database
from claudine_core.store.migrations import migrate
from claudine_core.store.repo import InvalidTransition, UnknownTask
from claudine_core.supervisor import attempt_dirs, latest_run_dir

MAX_PROMPT_CHARS = 100_000  # far above any real prompt; stops a pasted file by mistake
__all__ = ["InvalidRequest", "InvalidTransition", "TaskService", "UnknownTask"]


class InvalidRequest(ValueError):
    """The request itself is wrong (empty prompt, missing directory, ...)."""


class TaskService:
    """The store plus the rules for changing it.

    Args:
        config: the loaded configuration (home, defaults).
        clock: timestamp source (tests pass a fake).
    """

    def __init__(self, config: Config, *, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        config.home.mkdir(mode=0o700, parents=True, exist_ok=True)
        config.runs_dir.mkdir(mode=0o700, exist_ok=True)
        self.db = open_database(config.db_path)
        migrate(self.db)
        self.repo = TaskRepo(self.db, clock=clock)
        self.on_command: Callable[[], None] | None = None  # the owner's wake-up

    def close(self) -> None:
        self.db.close()

    # -- commands ----------------------------------------------------------------------------

    def delegate(self, spec: TaskSpec) -> Task:
        """Validate and queue a task; returns it once committed."""
        if not spec.prompt.strip():
            raise InvalidRequest("the prompt is empty: say what the agent should do")
        if len(spec.prompt) > MAX_PROMPT_CHARS:
            raise InvalidRequest(
                f"the prompt is {len(spec.prompt):,} characters; the limit is "
                f"{MAX_PROMPT_CHARS:,}. Put long material in a file and refer to it."
            )
        cwd = validate_cwd(spec.cwd)
        if spec.timeout_s is not None and not 1 <= spec.timeout_s <= 86_400:
            raise InvalidRequest(
                f"timeout {spec.timeout_s:g}s is out of range: use 1 to 86400 seconds"
            )
        if spec.max_output_bytes is not None and not (
            1024 <= spec.max_output_bytes <= 1_073_741_824
        ):
            raise InvalidRequest(
                f"max output {spec.max_output_bytes} bytes is out of range: 1024 to 1073741824"
            )
        _check_isolation_fields(spec, worktree=spec.worktree or self.config.default_worktree)
        task = self.repo.insert(spec, cwd=cwd)
        self._notify()
        return task

    def cancel(self, ref: str, reason: str | None = None) -> Task:
        task = self.repo.request_cancel(self.repo.resolve(ref).id, reason)
        self._notify()
        return task

    def set_priority(self, ref: str, priority: Priority | str) -> Task:
        task = self.repo.set_priority(self.repo.resolve(ref).id, Priority.parse(priority))
        self._notify()
        return task

    def retry(self, ref: str) -> Task:
        """Queue a fresh run of a finished task as a new task (the old one stays as it was)."""
        old = self.repo.resolve(ref)
        if old.status not in TERMINAL_STATES:
            raise InvalidTransition(
                f"task {old.short_id} is {old.status.value}: only a finished task can be retried"
            )
        return self.delegate(_spec_from(old, parent_id=old.id))

    def resume(self, ref: str, additional_context: str | None = None) -> Task:
        """Continue a finished task's agent session (``claude --resume``) as a new task."""
        old = self.repo.resolve(ref)
        if old.status not in TERMINAL_STATES:
            raise InvalidTransition(
                f"task {old.short_id} is {old.status.value}: only a finished task can be resumed"
            )
        if not old.session_id:
            raise InvalidTransition(
                f"task {old.short_id} has no agent session to resume (its agent never "
                "started a session); use retry instead"
            )
        follow_up = (additional_context or "").strip() or "Continue the task."
        spec = replace(
            _spec_from(old, parent_id=old.id),
            resume_session_id=old.session_id,
            resume_prompt=follow_up,
        )
        return self.delegate(spec)

    # -- queries -----------------------------------------------------------------------------

    def get(self, ref: str) -> Task:
        return self.repo.resolve(ref)

    def list_tasks(
        self,
        statuses: Iterable[TaskState] | None = None,
        *,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[Task]:
        return self.repo.list_tasks(statuses=statuses, limit=limit, offset=offset)

    def read_events(
        self, task_id: str, offset: int = 0, max_bytes: int | None = None
    ) -> tuple[list[StreamEvent], int]:
        """Stream events of the task's latest attempt from a byte offset (any process)."""
        run_dir = latest_run_dir(self.config.runs_dir, task_id)
        if run_dir is None:
            return [], offset
        return iter_file_events(run_dir / "stdout.jsonl", offset, max_bytes)

    def attempt_dirs(self, task_id: str) -> list[Path]:
        """The run folders of every attempt that started, oldest first."""
        return attempt_dirs(self.config.runs_dir, task_id)

    def output_path(self, task_id: str, name: str = "stdout.jsonl") -> Path | None:
        run_dir = latest_run_dir(self.config.runs_dir, task_id)
        return None if run_dir is None else run_dir / name

    def stderr_tail(self, task_id: str, max_bytes: int = 4096) -> str:
        path = self.output_path(task_id, "stderr.log")
        return read_tail(path, max_bytes) if path else ""

    def _notify(self) -> None:
        if self.on_command is not None:
            self.on_command()


def validate_cwd(cwd: str) -> str:
    """Absolute, existing directory the agent can enter; InvalidRequest otherwise."""
    path = Path(os.path.expanduser(cwd or ".")).resolve()
    if not path.exists():
        raise InvalidRequest(f"working directory {path} does not exist: create it or pick another")
    if not path.is_dir():
        raise InvalidRequest(f"working directory {path} is not a directory")
    if not os.access(path, os.R_OK | os.X_OK):
        raise InvalidRequest(f"working directory {path} is not accessible (check permissions)")
    return str(path)


def _check_isolation_fields(spec: TaskSpec, *, worktree: bool) -> None:
    """Refuse isolation settings on a task that will not get a worktree (never ignore them)."""
    given = [name for name, value in (("a base branch", spec.base_branch),
                                      ("a merge strategy", spec.merge_strategy),
                                      ("a commit choice", spec.commit_changes))
             if value is not None]
    if given and not worktree:
        raise InvalidRequest(f"{' and '.join(given)} only apply to a task isolated in a git "
                             "worktree: ask for one (--worktree / useWorktree) or drop them")


def read_tail(path: Path, max_bytes: int) -> str:
    try:
        with open(path, "rb") as source:
            size = source.seek(0, os.SEEK_END)
            source.seek(max(0, size - max_bytes))
            return source.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return ""


def _spec_from(task: Task, *, parent_id: str) -> TaskSpec:
    return TaskSpec(
        prompt=task.prompt,
        priority=task.priority,
        cwd=task.cwd,
        timeout_s=task.timeout_s,
        model=task.model,
        max_output_bytes=task.max_output_bytes,
        permission_mode=PermissionMode(task.permission_mode) if task.permission_mode else None,
        allowed_tools=task.allowed_tools,
        parent_id=parent_id,
        worktree=task.worktree,
        base_branch=task.base_branch,
        merge_strategy=MergeStrategy(task.merge_strategy) if task.merge_strategy else None,
        commit_changes=task.commit_changes,
    )
