"""The schedule vocabulary: a schedule, one firing of it, and their states.

Plain data, like claudine_core.models: each field is declared once here, with the same
metadata as a Task field (``doc``, ``time``, ``public``, and column extras such as
``unique`` or ``index``). The store's columns (schedules/store.py), ``--json`` and the MCP
results (``to_json``) are derived from these declarations; tests/core/test_schedule_fields.py
checks that migration v7 creates exactly these columns.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import MISSING, Field, dataclass, field, fields
from enum import Enum, StrEnum
from typing import Any

from claudine_core.errors import ClaudineError
from claudine_core.models import (
    Priority,
    TaskSpec,
    field_kind,
    field_types,
    iso_time,
)

SCHEDULE_ID_PATTERN = r"^sched-[0-9a-f]{12}$"
"""The format of every schedule id; the MCP schemas publish it."""
_SCHEDULE_ID_RE = re.compile(SCHEDULE_ID_PATTERN)


def new_schedule_id() -> str:
    """A fresh schedule id: ``sched-`` and 12 random hex digits."""
    return "sched-" + secrets.token_hex(6)


def is_schedule_id(text: str) -> bool:
    return bool(_SCHEDULE_ID_RE.match(text))


class UnknownSchedule(ClaudineError, LookupError):
    """No schedule matches the id the user gave."""


class ScheduleKind(StrEnum):
    CRON = "cron"  # recurring, by a 5-field cron expression
    ONE_TIME = "one_time"  # once, at run_at


class ScheduleStatus(StrEnum):
    """Where a schedule is in its life. Only an active one fires."""

    ACTIVE = "active"
    PAUSED = "paused"
    COMPLETED = "completed"  # its one time came, or it made max_runs tasks
    CANCELLED = "cancelled"
    EXPIRED = "expired"  # expires_at passed, or no slot is left before it

    @property
    def is_final(self) -> bool:
        return self in (ScheduleStatus.COMPLETED, ScheduleStatus.CANCELLED,
                        ScheduleStatus.EXPIRED)


class MissedRunPolicy(StrEnum):
    """What a schedule does with the slots that passed while no owner ran."""

    SKIP = "skip"  # run none of them; one 'skipped' execution says how many were missed
    CATCHUP = "catchup"  # a task for each missed slot, oldest first, up to MAX_MISSED_SLOTS
    FAIL = "fail"  # a failed execution for each missed slot (up to MAX_MISSED_SLOTS), no task


class ExecutionOutcome(StrEnum):
    """How one slot of a schedule was handled."""

    CREATED = "created"  # a task was created for the slot
    FAILED = "failed"  # no task: the template no longer holds, or a missed slot under 'fail'
    SKIPPED = "skipped"  # missed slots dropped by the 'skip' policy (one row per catch-up)


MAX_MISSED_SLOTS = 24
"""Most missed slots one catch-up acts on (tasks under 'catchup', failed rows under
'fail'): an owner that was away for a month does not flood the queue with an
every-minute schedule's 40,000 runs. The newest ones are kept."""

ON_TIME_GRACE_S = 60.0
"""A slot noticed this late or less is on time, not missed: an owner's tick, a busy
machine or a slow store may delay a firing a little, and that is no missed run."""


def _field(default: Any = None, doc: str = "", *, factory: Any = None, time: bool = False,
           public: bool = True, **column: Any) -> Any:
    """A declared schedule field (see claudine_core.models for the metadata)."""
    metadata = {"doc": doc, "time": time, "public": public, "carried": False, **column}
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


_NO_DEFAULT: Any = MISSING


@dataclass(frozen=True, kw_only=True)
class Schedule:
    """A stored schedule as every front end sees it."""

    id: str = _field(_NO_DEFAULT, "The schedule id.", unique=True,
                     schema={"pattern": SCHEDULE_ID_PATTERN})
    seq: int = _field(_NO_DEFAULT, "Creation order.", auto=True, public=False)
    kind: ScheduleKind = _field(_NO_DEFAULT, "cron (recurring) or one_time.")
    cron: str | None = _field(None, "The 5-field cron expression (cron schedules).")
    run_at: float | None = _field(None, "When a one-time schedule runs.", time=True)
    timezone: str = _field("UTC", "IANA time zone the cron expression (and a run_at "
                           "without an offset) is read in.")
    missed_run_policy: MissedRunPolicy = _field(
        MissedRunPolicy.SKIP, "What happens to slots missed while no owner ran: skip, "
        "catchup or fail.")
    status: ScheduleStatus = _field(ScheduleStatus.ACTIVE, "active, paused, completed, "
                                    "cancelled or expired.", index=True)
    template: TaskSpec = _field(_NO_DEFAULT, "The task each firing creates.")
    max_runs: int | None = _field(None, "Tasks it makes at most (null: no limit).")
    runs: int = _field(0, "Tasks it has made so far.")
    expires_at: float | None = _field(None, "After this it fires no more.", time=True)
    after_schedule: str | None = _field(None, "Each new task depends on that schedule's "
                                        "latest task.")
    next_run_at: float | None = _field(None, "Its next slot (null: none).", time=True,
                                       index=True)
    last_run_at: float | None = _field(None, "When it last fired.", time=True)
    created_at: float = _field(_NO_DEFAULT, "When it was created.", time=True)
    updated_at: float = _field(0.0, "When the record last changed.", time=True)
    cancel_reason: str | None = _field(None, "Why it was cancelled.")

    @property
    def short_id(self) -> str:
        return short_schedule_id(self.id)

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` / MCP form: public fields, plain values, times in ISO 8601; the
        template without the agent's environment (it holds keys)."""
        return {f.name: _json_value(f, getattr(self, f.name)) for f in public_fields(Schedule)}


@dataclass(frozen=True, kw_only=True)
class ScheduleExecution:
    """One slot of a schedule and how it was handled."""

    seq: int = _field(_NO_DEFAULT, "Order of record.", auto=True, public=False)
    schedule_id: str = _field(_NO_DEFAULT, "The schedule.", index=True)
    scheduled_for: float = _field(_NO_DEFAULT, "The slot.", time=True)
    fired_at: float = _field(_NO_DEFAULT, "When it was handled.", time=True)
    task_id: str | None = _field(None, "The task it created (null: none).")
    outcome: ExecutionOutcome = _field(_NO_DEFAULT, "created, failed or skipped.")
    error: str | None = _field(None, "Why no task was created.")

    def to_json(self) -> dict[str, Any]:
        return {f.name: _json_value(f, getattr(self, f.name))
                for f in public_fields(ScheduleExecution)}


def short_schedule_id(schedule_id: str) -> str:
    """The 8 hex digits people read and type (``sched-`` dropped)."""
    return schedule_id.removeprefix("sched-")[:8]


def public_fields(cls: type) -> tuple[Field[Any], ...]:
    return tuple(f for f in fields(cls) if f.metadata["public"])


def _json_value(declared: Field[Any], value: Any) -> Any:
    if declared.metadata["time"]:
        return iso_time(value)
    if isinstance(value, TaskSpec):
        shown = template_to_json(value)
        shown.pop("agent_env", None)
        return shown
    if isinstance(value, Enum):
        return value.value
    return value


# -- the task template, kept as JSON -------------------------------------------------------------


def template_to_json(spec: TaskSpec) -> dict[str, Any]:
    """Every TaskSpec field as a plain JSON value (the store keeps this, agent_env too)."""
    return {f.name: _plain(getattr(spec, f.name)) for f in fields(TaskSpec)}


def template_from_json(data: dict[str, Any] | str) -> TaskSpec:
    """The TaskSpec :func:`template_to_json` made; unknown keys (a newer claudine's) are
    left out, absent ones take their defaults."""
    values = json.loads(data) if isinstance(data, str) else data
    hints = field_types(TaskSpec)
    known = {f.name for f in fields(TaskSpec)}
    return TaskSpec(**{name: _typed(hints[name], value) for name, value in values.items()
                       if name in known})


def _plain(value: Any) -> Any:
    if isinstance(value, Priority):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, tuple):
        return list(value)
    return value


def _typed(annotation: Any, value: Any) -> Any:
    if value is None:
        return None
    kind, _ = field_kind(annotation)
    if kind is tuple:
        return tuple(value)
    if kind is Priority:
        return Priority.parse(value)
    if isinstance(kind, type) and issubclass(kind, Enum):
        return kind(value)
    return value
