"""Commands and queries every front end shares, validated, durable on return.

A command is a committed row (a new task, a cancel request, a new priority), so it works
the same whether this process owns the engine or not: the owner applies it on its next
tick. Nothing here starts or signals a process.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from claudine_core.agents.claude import (
    NESTED_SESSION_VARIABLES,
    AgentNotFound,
    resolve_executable,
)
from claudine_core.config import Config
from claudine_core.errors import InvalidRequest, InvalidTransition, UnknownTask
from claudine_core.models import (
    ACTIVE_STATES,
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

if TYPE_CHECKING:
    from claudine_core.agents.stream import StreamEvent
    from claudine_core.isolation.worktrees import Worktrees

MAX_PROMPT_BYTES = 1_048_576
"""The largest prompt, in bytes of UTF-8: far above any real prompt (it goes to the agent
on its stdin, so no argv limit applies), it stops a pasted binary or log by mistake."""
MAX_FIELD_CHARS = 4_096  # a model name, a branch, a tool name: never longer in practice

# Variables a task takes from the process that delegates it, so any owner runs its agent
# the same way: the API endpoint and key, the CLI's own switches, cloud-provider access.
AGENT_ENV_PREFIXES = ("ANTHROPIC_", "CLAUDE_", "DISABLE_", "AWS_", "GOOGLE_", "CLOUD_ML_")
AGENT_ENV_NAMES = frozenset({"IS_SANDBOX", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY"})
__all__ = ["InvalidRequest", "InvalidTransition", "TaskService", "UnknownTask"]


class TaskService:
    """The store plus the rules for changing it.

    Args:
        config: the loaded configuration (home, defaults).
        clock: timestamp source (tests pass a fake).
        env: the environment a delegated task's agent-facing variables are taken from
            (default: this process's).
    """

    def __init__(
        self,
        config: Config,
        *,
        clock: Callable[[], float] = time.time,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.config = config
        self.env = dict(os.environ if env is None else env)
        # Private: prompts and logs can hold secrets. A folder someone chose for the home
        # keeps its mode; claudine's own default one is narrowed (older consoles made it
        # 0755).
        config.home.mkdir(mode=0o700, parents=True, exist_ok=True)
        if config.sources.get("home") == "default" and (
            config.home.stat().st_mode & 0o077
        ):
            config.home.chmod(0o700)
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
        _check_text_fields(spec)
        if not spec.prompt.strip():
            raise InvalidRequest("the prompt is empty: say what the agent should do")
        check_prompt_size(spec.prompt)
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
        worktree = spec.worktree or self.config.default_worktree
        _check_isolation_fields(spec, worktree=worktree)
        if spec.worktree and not _inside_git_repository(Path(cwd)):
            raise InvalidRequest(
                f"{cwd} is not inside a git repository: a worktree task needs one (run "
                "'git init' and commit there, or drop --worktree / useWorktree)"
            )
        task = self.repo.insert(self._with_task_settings(spec), cwd=cwd)
        self._notify()
        return task

    def _with_task_settings(self, spec: TaskSpec) -> TaskSpec:
        """Fix the task-scoped agent settings now, from this (the delegating) process.

        Whichever owner runs the task later (a console started hours ago, a background
        owner another shell started with other settings) runs it as asked here: the
        agent binary, resolved now so a wrong one is refused at once, its extra
        arguments, and the agent-facing environment variables.
        """
        if spec.claude_bin is not None:
            return spec  # a retry or resume keeps the settings of the task it repeats
        try:
            binary = resolve_executable(self.config.claude_bin, self.env)
        except AgentNotFound as exc:
            raise InvalidRequest(str(exc)) from None
        return replace(
            spec,
            claude_bin=binary,
            agent_args=self.config.extra_agent_args,
            agent_env=agent_facing_env(self.env),
        )

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
        # The stream parser and the supervisor's helpers are imported where they are used,
        # so a CLI status or delegate does not load them (issue 9).
        from claudine_core.agents.stream import iter_file_events
        from claudine_core.supervisor import latest_run_dir

        run_dir = latest_run_dir(self.config.runs_dir, task_id)
        if run_dir is None:
            return [], offset
        return iter_file_events(run_dir / "stdout.jsonl", offset, max_bytes)

    def attempt_dirs(self, task_id: str) -> list[Path]:
        """The run folders of every attempt that started, oldest first."""
        from claudine_core.supervisor import attempt_dirs

        return attempt_dirs(self.config.runs_dir, task_id)

    def output_path(self, task_id: str, name: str = "stdout.jsonl") -> Path | None:
        from claudine_core.supervisor import latest_run_dir

        run_dir = latest_run_dir(self.config.runs_dir, task_id)
        return None if run_dir is None else run_dir / name

    def agent_has_ended(self, task: Task) -> bool:
        """Whether the store says ``running`` but the task's agent is gone.

        Only an owner records how an agent ended; until one does (it takes over within a
        second, see the hand-over), front ends must not show such a task as working:
        they say its agent has ended and the outcome is not recorded yet.
        """
        if task.status is not TaskState.RUNNING:
            return False
        from claudine_core.supervisor import process_matches, run_dir_for

        run_dir = run_dir_for(self.config.runs_dir, task.id, max(task.attempt, 1))
        if (run_dir / "exit.json").exists():
            return True
        if task.pid is None:
            return False  # being prepared or just starting: nothing to look at yet
        return not process_matches(task.pid, task.extra.get("pid_started_at"))

    def stderr_tail(self, task_id: str, max_bytes: int = 4096) -> str:
        path = self.output_path(task_id, "stderr.log")
        return read_tail(path, max_bytes) if path else ""

    def _notify(self) -> None:
        if self.on_command is not None:
            self.on_command()

    # -- what front ends ask of the store (they never import it) ------------------------------

    def queue_position(self, task: Task) -> int | None:
        """1-based place of a queued task in the run order; None unless it is queued."""
        return self.repo.queue_position(task)

    def count_by_status(self) -> dict[TaskState, int]:
        """How many tasks there are in each state (states with none are left out)."""
        return self.repo.count_by_status()

    def has_unfinished_tasks(self) -> bool:
        """Whether any task is queued, blocked or running: work an owner must act on."""
        counts = self.repo.count_by_status()
        return any(counts.get(state) for state in ACTIVE_STATES)

    def waiting_reason(self, task: Task | None = None) -> str | None:
        """Why ``task`` (default: the queue's next task) has not started; None: no wait.

        Without a published decision of the running owner this takes a resource reading,
        which blocks for a moment (see :mod:`claudine_core.waiting`).
        """
        from claudine_core.waiting import queue_waiting_reason, task_waiting_reason

        if task is None:
            return queue_waiting_reason(self.config, self.repo)
        return task_waiting_reason(self.config, self.repo, task)

    def worktrees(self) -> Worktrees:
        """The review actions on worktree tasks (diff, merge, patch, PR, discard, clean),
        recording their outcomes in this store. Imported on use: git is slow to load."""
        from claudine_core.isolation.worktrees import Worktrees

        return Worktrees(self.config, self.repo)


def agent_facing_env(env: Mapping[str, str]) -> dict[str, str]:
    """The variables of ``env`` that shape how the agent runs (see AGENT_ENV_PREFIXES)."""
    return {
        name: value for name, value in env.items()
        if (name.startswith(AGENT_ENV_PREFIXES) or name in AGENT_ENV_NAMES)
        and name not in NESTED_SESSION_VARIABLES
    }


def check_prompt_size(prompt: str) -> None:
    """InvalidRequest when the prompt is over :data:`MAX_PROMPT_BYTES` in UTF-8."""
    size = len(prompt.encode("utf-8", "surrogatepass"))
    if size > MAX_PROMPT_BYTES:
        raise InvalidRequest(
            # Word for word what the MCP door says (mcp_tools.check_arguments).
            f"the prompt is {size:,} bytes of UTF-8: the limit is {MAX_PROMPT_BYTES:,}; put "
            "long material in a file in the working directory and refer to it"
        )


def _check_text_fields(spec: TaskSpec) -> None:
    """Refuse text no agent can be given: NUL bytes, lone surrogates, absurd lengths."""
    fields: list[tuple[str, str | None]] = [
        ("prompt", spec.prompt), ("working directory", spec.cwd), ("model", spec.model),
        ("base branch", spec.base_branch), ("resume message", spec.resume_prompt),
    ]
    fields += [("allowed tool", tool) for tool in spec.allowed_tools]
    for name, value in fields:
        if value is None:
            continue
        if "\x00" in value:
            raise InvalidRequest(f"the {name} contains a NUL byte (\\0): remove it")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidRequest(
                f"the {name} is not valid Unicode text (it holds a lone surrogate): "
                "send it as UTF-8"
            ) from None
        if name not in ("prompt", "resume message") and len(value) > MAX_FIELD_CHARS:
            raise InvalidRequest(f"the {name} is {len(value):,} characters long; the limit "
                                 f"is {MAX_FIELD_CHARS:,}")
    if spec.resume_prompt is not None:
        check_prompt_size(spec.resume_prompt)


def _inside_git_repository(path: Path) -> bool:
    """Whether ``path`` is in a git work tree, found the way git does (a ``.git`` entry
    in it or a parent), without loading git or GitPython into a short-lived CLI call."""
    return any((folder / ".git").exists() for folder in (path, *path.parents))


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
        claude_bin=task.claude_bin,
        agent_env=task.agent_env,
        agent_args=task.agent_args if task.claude_bin else None,
    )
