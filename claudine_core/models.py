"""The task vocabulary shared by the engine, the store and every front end.

Everything here is plain data: frozen dataclasses and string enums whose values are
what the store keeps and what ``--json`` prints, so a front end never needs the store.
"""

from __future__ import annotations

import functools
import re
import secrets
import types
import typing
from dataclasses import MISSING, Field, dataclass, field, fields
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
    PARKED = "parked"  # stopped by a usage limit; continues its session at the reset
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATES


TERMINAL_STATES = frozenset({TaskState.COMPLETED, TaskState.FAILED, TaskState.CANCELLED})
ACTIVE_STATES = frozenset({TaskState.QUEUED, TaskState.BLOCKED, TaskState.RUNNING,
                           TaskState.PARKED})
WAITING_STATES = (TaskState.QUEUED, TaskState.BLOCKED, TaskState.PARKED)
"""States with no agent running: cancelled at once, reprioritized freely."""
TOLD_STATES = TERMINAL_STATES | {TaskState.PARKED}
"""The states the owner tells the user about (a notification, the on_finish hook)."""


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


class DependencyPolicy(StrEnum):
    """What a task does when a task it depends on fails or is cancelled."""

    FAIL = "fail"  # end failed, naming the dependency (and so do its own dependents)
    CANCEL = "cancel"  # end cancelled, naming the dependency
    RUN = "run"  # run anyway: the dependency only orders the two


MAX_DEPENDENCIES = 100
"""Most tasks one task may depend on."""


class MergeStrategy(StrEnum):
    MANUAL = "manual"
    AUTO = "auto"
    PATCH = "patch"
    PR = "pr"


# -- the task record, declared once ------------------------------------------------------------
# Each field of TaskSpec (a request) and Task (the stored record) is declared here and only
# here: the store's columns and row mapping (store/tables.py, store/repo.py), ``--json``
# (Task.to_json), TaskStatus's outputSchema (task_json_schema) and the copy a retry or a
# resume starts from (spec_from_task) are all derived from these declarations, and
# tests/core/test_task_fields.py fails when a field is added in one place only (a migration
# that does not add its column, for instance).


def _field(default: Any = None, doc: str = "", *, factory: Any = None, time: bool = False,
           public: bool = True, carried: bool = True, **column: Any) -> Any:
    """A declared field.

    Args:
        default / factory: the value when not given (a factory for mutable values).
        doc: what the field means, for TaskStatus's outputSchema.
        time: an epoch time, shown as ISO 8601 in ``--json`` and MCP results.
        public: shown in ``--json`` and MCP results (False: internal or secret).
        carried: (TaskSpec) a retry or resume copies it from the task it repeats.
        column: extras for the store's column (``index``, ``unique``) or the JSON schema
            (``schema``: more keywords, e.g. ``{"minimum": 0}``).
    """
    metadata = {"doc": doc, "time": time, "public": public, "carried": carried, **column}
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


_NO_DEFAULT: Any = MISSING


@dataclass(frozen=True)
class TaskSpec:
    """What a user asks for when delegating; validated before it reaches the store.

    Every field is also a :class:`Task` field of the same name, which the store fills from
    it (a test checks this).
    """

    prompt: str = _field(_NO_DEFAULT)
    priority: Priority = _field(Priority.P2)
    cwd: str = _field(".")
    timeout_s: float | None = _field(None)  # None: the configured default
    model: str | None = _field(None)
    max_output_bytes: int | None = _field(None)
    permission_mode: PermissionMode | None = _field(None)
    allowed_tools: tuple[str, ...] = _field(())
    resume_session_id: str | None = _field(None, carried=False)
    resume_prompt: str | None = _field(None, carried=False)  # what to tell the resumed session
    parent_id: str | None = _field(None, carried=False)  # the task this one retries or resumes
    # None: the delegating process's default_worktree setting decides, at delegate time.
    worktree: bool | None = _field(None)
    base_branch: str | None = _field(None)
    merge_strategy: MergeStrategy | None = _field(None)
    commit_changes: bool | None = _field(None)  # None: the repository's setting (default: commit)
    claude_bin: str | None = _field(None)  # None: the delegating process's setting, resolved
    agent_env: dict[str, str] = _field(factory=dict)  # filled from the delegator
    agent_args: tuple[str, ...] | None = _field(None)  # None: the delegating process's setting
    depends_on: tuple[str, ...] = _field(())  # task ids or unique prefixes, resolved at delegate
    # None: the delegating process's on_dependency_failure setting, decided at delegate time.
    on_dependency_failure: DependencyPolicy | None = _field(None)
    # A task id or unique prefix: run in that task's conversation (implies a dependency).
    continue_from: str | None = _field(None)
    # Passed to the agent's own --max-budget-usd: it stops once its cost passes this.
    max_budget_usd: float | None = _field(None, schema={"exclusiveMinimum": 0})
    # None: the delegating process's fallback_model setting, fixed at delegate time.
    fallback_model: str | None = _field(None)
    # Set by the schedule or pipeline that creates the task, never by a user's request.
    schedule_id: str | None = _field(None, carried=False)
    pipeline_id: str | None = _field(None, carried=False)
    pipeline_step: int | None = _field(None, carried=False)


_TIME = "ISO 8601 time in UTC"


@dataclass(frozen=True, kw_only=True)
class Task:
    """A stored task as every front end sees it."""

    id: str = _field(_NO_DEFAULT, "The task id.", unique=True,
                     schema={"pattern": TASK_ID_PATTERN})
    seq: int = _field(_NO_DEFAULT, "Submit order (FIFO within a priority).", auto=True)
    prompt: str = _field(_NO_DEFAULT, "What the agent was asked to do.")
    priority: Priority = _field(Priority.P2, "P0 urgent, P1 high, P2 normal.")
    status: TaskState = _field(TaskState.QUEUED, "Where the task is in its life.", index=True)
    cwd: str = _field(_NO_DEFAULT, "Directory the agent runs in.")
    created_at: float = _field(_NO_DEFAULT, "When it was delegated.", time=True)
    updated_at: float = _field(0.0, "When the record last changed.", time=True, public=False,
                               index=True)
    model: str | None = _field(None, "Model for the agent (null: the CLI's default).")
    timeout_s: float | None = _field(None, "Seconds before the agent is stopped (null: the "
                                     "default).")
    max_output_bytes: int | None = _field(None, "Bytes of agent output kept (null: the "
                                          "default).")
    permission_mode: PermissionMode | None = _field(
        None, "skip, acceptEdits, allowedTools or default (null: the configured one).")
    allowed_tools: tuple[str, ...] = _field((), "Tools the agent may use with allowedTools.")
    started_at: float | None = _field(None, "When the latest attempt started.", time=True)
    ended_at: float | None = _field(None, "When it finished.", time=True)
    exit_code: int | None = _field(None, "Exit status of the agent.")
    error: str | None = _field(None, "Why it failed, in words.")
    session_id: str | None = _field(None, "The agent's Claude session id (what ResumeTask "
                                    "resumes).")
    num_turns: int | None = _field(None, "Agent turns so far.")
    cost_usd: float | None = _field(None, "What the agent's API use cost, as it reported.")
    pid: int | None = _field(None, "Process id of the agent's wrapper, which leads its "
                             "process group.")
    pid_started_at: float | None = _field(None, "The wrapper's process start time: tells a "
                                          "reused pid apart.", public=False)
    attempt: int = _field(0, "Attempts started so far.", schema={"minimum": 0})
    not_before: float | None = _field(None, "A retry waits until then.", time=True)
    last_activity: str | None = _field(None, "What the agent did last (tool in use, ...).")
    last_activity_at: float | None = _field(None, "When it did that.", time=True)
    result: str | None = _field(None, "The agent's final answer.")
    is_error: bool | None = _field(None, "Whether the final result was an error.")
    api_error_status: int | None = _field(None, "HTTP status of the API error that ended it.")
    resume_session_id: str | None = _field(None, "The session this task continues.")
    resume_prompt: str | None = _field(None, "What the resumed session is told (for a "
                                       "continuation without a session: the context "
                                       "block put before its prompt).")
    parent_id: str | None = _field(None, "The task this one retries or resumes.")
    cancel_requested: bool = _field(False, "A cancel was asked for.")
    cancel_reason: str | None = _field(None, "Why it was cancelled.")
    output_bytes: int = _field(0, "Bytes of agent output kept so far.", schema={"minimum": 0})
    output_truncated: bool = _field(False, "Output beyond max_output_bytes was dropped.")
    worktree: bool = _field(False, "Isolated in a git worktree.")
    base_branch: str | None = _field(None, "Branch the worktree started from.")
    branch: str | None = _field(None, "The task's worktree branch.")
    worktree_path: str | None = _field(None, "Where its worktree is.")
    merge_strategy: MergeStrategy | None = _field(None, "What happens to the branch when the "
                                                  "task ends (null: the configured default).")
    merge: dict[str, Any] | None = _field(None, "Outcome of the merge strategy: strategy, "
                                          "status (pending, merged, kept, ...) and details.")
    commit_changes: bool | None = _field(None, "Commit what the agent left uncommitted (null: "
                                         "the repository's setting).")
    claude_bin: str | None = _field(None, "The agent executable, fixed when the task was "
                                    "delegated (null: the owner's).")
    agent_env: dict[str, str] = _field(factory=dict, public=False,
                                       doc="Agent-facing variables of the delegating process "
                                       "(never shown: they hold keys).")
    agent_args: tuple[str, ...] = _field((), "Extra agent arguments, fixed when it was "
                                         "delegated.")
    attempts: tuple[dict[str, Any], ...] = _field((), "How each earlier attempt ended: "
                                                  "attempt, started_at, ended_at, state, "
                                                  "error, exit_code.")
    depends_on: tuple[str, ...] = _field((), "Tasks that must complete before this one starts "
                                         "(it is blocked until then).")
    on_dependency_failure: DependencyPolicy | None = _field(
        None, "fail, cancel or run: what happens when a dependency fails or is cancelled.")
    continue_from: str | None = _field(None, "The task whose conversation this one continues "
                                       "(it is also a dependency).")
    end_state: dict[str, Any] | None = _field(None, "What the task left when it ended, for a "
                                              "task continuing from it: its directory's git "
                                              "branch, commit and changed files.")
    schedule_id: str | None = _field(None, "The schedule that created this task.")
    pipeline_id: str | None = _field(None, "The pipeline this task is a step of.", index=True)
    pipeline_step: int | None = _field(None, "Its place in that pipeline (1 = first step).",
                                       schema={"minimum": 1})
    notified_at: float | None = _field(None, "When the owner told about its end (desktop "
                                       "notification, on_finish hook): once per task, and "
                                       "once per park.", time=True)
    max_budget_usd: float | None = _field(None, "Most its agent may spend, in US dollars "
                                          "(the agent's --max-budget-usd; null: no limit).",
                                          schema={"exclusiveMinimum": 0})
    fallback_model: str | None = _field(None, "Model the agent falls back to when its model "
                                        "is overloaded (null: none).")
    parked_until: float | None = _field(None, "While parked: when the usage limit resets and "
                                        "the task continues its session.", time=True)
    parks: int = _field(0, "Times a usage limit parked it (those attempts use up no retry).",
                        schema={"minimum": 0})
    resuming: bool = _field(False, "Released from a park: it starts before the rest of the "
                            "queue, even while the home is paused.")
    node: str | None = _field(None, "The cluster node its latest attempt runs or ran on "
                              "(the ray backend; null: this machine).")

    @property
    def short_id(self) -> str:
        return short_id(self.id)

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` / MCP form: public fields, plain values, times in ISO 8601."""
        return {f.name: _json_value(f, getattr(self, f.name)) for f in public_fields()}


def task_fields() -> tuple[Field[Any], ...]:
    """Every declared field of :class:`Task`, in declaration order."""
    return fields(Task)


def public_fields() -> tuple[Field[Any], ...]:
    """The fields ``--json`` and MCP results show."""
    return _PUBLIC_FIELDS


_PUBLIC_FIELDS = tuple(f for f in fields(Task) if f.metadata["public"])


@functools.cache
def field_types(cls: type) -> dict[str, Any]:
    """The resolved type of each field of a declared dataclass (TaskSpec or Task).

    Cached: every store a process opens derives its columns from these."""
    return typing.get_type_hints(cls)


def field_kind(annotation: Any) -> tuple[type, bool]:
    """The plain type of a declared field's annotation and whether it may be None.

    ``str | None`` is (str, True); containers are (tuple, True) or (dict, True): the store
    keeps them as JSON text, NULL for none.
    """
    nullable = False
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        nullable = len(members) < len(typing.get_args(annotation))
        annotation = members[0]
    origin = typing.get_origin(annotation) or annotation
    if origin in (tuple, list, dict):
        return (dict if origin is dict else tuple), True
    return origin, nullable


def _json_value(declared: Field[Any], value: Any) -> Any:
    if declared.metadata["time"]:
        return iso_time(value)
    if isinstance(value, Priority):
        return str(value)
    if isinstance(value, StrEnum):
        return value.value
    if isinstance(value, tuple):
        return [dict(item) if isinstance(item, dict) else item for item in value]
    if isinstance(value, dict):
        return dict(value)
    return value


def spec_from_task(task: Task, **changes: Any) -> TaskSpec:
    """The request a retry or resume of ``task`` starts from: every carried TaskSpec field
    copied from the task (then ``changes`` applied)."""
    copied = {f.name: getattr(task, f.name) for f in fields(TaskSpec) if f.metadata["carried"]}
    return TaskSpec(**{**copied, **changes})


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
    # The home's usage-limit pause (claudine_core.usage_limits.HomePause) and its spending
    # against its budgets (claudine_core.spending.Budget); None: no pause / no budget set.
    pause: Any = None
    budget: Any = None
    parked: int = 0
    # The cluster's live nodes (claudine_core.backends.base.NodeCapacity) as last counted
    # when the agents run on one: a gauge row each and the task table's node column;
    # None when they run on this machine.
    nodes: tuple[Any, ...] | None = None
