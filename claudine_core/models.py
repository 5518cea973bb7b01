"""The task vocabulary shared by the engine, the store and every front end.

Everything here is plain data: frozen dataclasses and string enums whose values are
what the store keeps and what ``--json`` prints, so a front end never needs the store.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import IntEnum, StrEnum
from typing import Any

TASK_ID_PATTERN = r"^task-[0-9a-f]{12}$"
"""The format of every id the engine issues; the MCP schemas publish it."""

_TASK_ID_RE = re.compile(TASK_ID_PATTERN)


def new_task_id() -> str:
    """A fresh task id: ``task-`` and 12 random hex digits."""
    return "task-" + secrets.token_hex(6)


def is_task_id(text: str) -> bool:
    return bool(_TASK_ID_RE.match(text))


def short_id(task_id: str) -> str:
    """The 8 hex digits people read and type (``task-`` dropped)."""
    return task_id.removeprefix("task-")[:8]


_TIMESTAMP_FIELDS = ("created_at", "started_at", "ended_at", "not_before", "last_activity_at")


def iso_time(epoch: float | None) -> str | None:
    """ISO 8601 in UTC with milliseconds, the form ``--json`` and MCP results use."""
    if epoch is None:
        return None
    return (
        datetime.fromtimestamp(epoch, tz=UTC).isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


class TaskState(StrEnum):
    """Where a task is in its life. The values are what the store and ``--json`` hold."""

    QUEUED = "queued"
    BLOCKED = "blocked"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATES


TERMINAL_STATES = frozenset({TaskState.COMPLETED, TaskState.FAILED, TaskState.CANCELLED})
ACTIVE_STATES = frozenset({TaskState.QUEUED, TaskState.BLOCKED, TaskState.RUNNING})


class Priority(IntEnum):
    """P0 runs before P1 before P2; lower value, more urgent."""

    P0 = 0
    P1 = 1
    P2 = 2

    @classmethod
    def parse(cls, text: str | int | Priority) -> Priority:
        """Accept ``P0``/``p1``/``2``; raise ValueError naming the valid choices."""
        if isinstance(text, Priority):
            return text
        raw = str(text).strip().upper()
        if raw.startswith("P"):
            raw = raw[1:]
        if raw in {"0", "1", "2"}:
            return cls(int(raw))
        raise ValueError(f"invalid priority {text!r}: use P0 (urgent), P1 (high) or P2 (normal)")

    def __str__(self) -> str:
        return self.name


class PermissionMode(StrEnum):
    """How an unattended agent gets past permission prompts."""

    SKIP = "skip"  # --dangerously-skip-permissions, as the original claudine did
    ACCEPT_EDITS = "acceptEdits"  # --permission-mode acceptEdits
    ALLOWED_TOOLS = "allowedTools"  # --allowedTools <list>
    DEFAULT = "default"  # no flag: risky tools are denied and reported


class MergeStrategy(StrEnum):
    MANUAL = "manual"
    AUTO = "auto"
    PATCH = "patch"
    PR = "pr"


@dataclass(frozen=True)
class TaskSpec:
    """What a user asks for when delegating; validated before it reaches the store."""

    prompt: str
    priority: Priority = Priority.P2
    cwd: str = "."
    timeout_s: float | None = None  # None: the configured default
    model: str | None = None
    max_output_bytes: int | None = None
    permission_mode: PermissionMode | None = None
    allowed_tools: tuple[str, ...] = ()
    resume_session_id: str | None = None
    resume_prompt: str | None = None  # what to tell the resumed session
    parent_id: str | None = None  # the task this one retries or resumes
    worktree: bool = False
    base_branch: str | None = None
    merge_strategy: MergeStrategy | None = None
    commit_changes: bool | None = None  # None: the repository's setting (default: commit)
    claude_bin: str | None = None  # None: the delegating process's setting, resolved
    agent_env: dict[str, str] = field(default_factory=dict)  # filled from the delegator
    agent_args: tuple[str, ...] | None = None  # None: the delegating process's setting


@dataclass(frozen=True)
class Task:
    """A stored task as every front end sees it."""

    id: str
    seq: int
    prompt: str
    priority: Priority
    status: TaskState
    cwd: str
    created_at: float
    model: str | None = None
    timeout_s: float | None = None
    max_output_bytes: int | None = None
    permission_mode: str | None = None
    allowed_tools: tuple[str, ...] = ()
    started_at: float | None = None
    ended_at: float | None = None
    exit_code: int | None = None
    error: str | None = None
    session_id: str | None = None
    num_turns: int | None = None
    cost_usd: float | None = None
    pid: int | None = None
    attempt: int = 0
    not_before: float | None = None
    last_activity: str | None = None
    last_activity_at: float | None = None
    result: str | None = None
    is_error: bool | None = None
    api_error_status: int | None = None
    resume_session_id: str | None = None
    parent_id: str | None = None
    cancel_requested: bool = False
    cancel_reason: str | None = None
    output_bytes: int = 0
    output_truncated: bool = False
    worktree: bool = False
    base_branch: str | None = None
    branch: str | None = None
    worktree_path: str | None = None
    merge_strategy: str | None = None
    merge: dict[str, Any] | None = None
    commit_changes: bool | None = None
    claude_bin: str | None = None
    """The agent executable, resolved when the task was delegated (None: the owner's)."""
    agent_env: dict[str, str] = field(default_factory=dict)
    """Agent-facing variables of the delegating process (never printed: they hold keys)."""
    agent_args: tuple[str, ...] = ()
    """Extra arguments for the agent, as configured where the task was delegated."""
    attempts: tuple[dict[str, Any], ...] = ()
    """How each earlier attempt ended: attempt, started_at, ended_at, state, error."""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def short_id(self) -> str:
        return short_id(self.id)

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` / MCP form: plain values, enums as their strings."""
        data = asdict(self)
        data["priority"] = str(self.priority)
        data["status"] = self.status.value
        data["allowed_tools"] = list(self.allowed_tools)
        data["agent_args"] = list(self.agent_args)
        data["attempts"] = [dict(a) for a in self.attempts]
        data.pop("extra", None)
        data.pop("agent_env", None)  # API keys and the like stay in the store
        for key in _TIMESTAMP_FIELDS:
            data[key] = iso_time(data[key])
        return data


@dataclass(frozen=True)
class ResourceSample:
    """One reading of the machine, as the admission decision saw it."""

    cpu_percent: float
    memory_available: int
    memory_total: int
    taken_at: float


@dataclass(frozen=True)
class EngineSnapshot:
    """Everything a screen needs for a whole refresh, taken at one instant."""

    taken_at: float
    role: str  # "owner" or "client"
    owner_pid: int | None
    tasks: tuple[Task, ...]
    resources: ResourceSample | None
    running: int
    queued: int
    max_agents: int | None
    cpu_threshold: float
    memory_reserve: int
    waiting_reason: str | None
    cpu_history: tuple[float, ...] = ()
    memory_history: tuple[float, ...] = ()
