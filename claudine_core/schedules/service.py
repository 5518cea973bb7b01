"""The schedule commands and queries every front end shares (``TaskService.schedules``).

A schedule keeps a task template, checked and with its task-scoped settings fixed when the
schedule is created (``prepare``), and creates a task from it at each slot. Commands are
conditional updates of the schedule's row, so they work from any process; only an owner
fires (:meth:`ScheduleService.fire_due`).

**Exactly once per slot.** Each slot handled is a row of ``schedule_execution`` (UNIQUE on
schedule and slot), written in the same transaction as the task it creates and the
schedule's next slot. The transaction takes SQLite's write lock first (BEGIN IMMEDIATE)
and re-reads the schedule under it, so two owners racing (which the engine lock already
prevents) serialise and the second finds nothing due; an owner killed before the commit
leaves neither row nor task, and the next owner fires that slot.
"""

from __future__ import annotations

import builtins
import contextlib
import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import peewee

from claudine_core.config import Config
from claudine_core.errors import ClaudineError, InvalidRequest, InvalidTransition, StoreError
from claudine_core.faults import crash_point
from claudine_core.models import Task, TaskSpec
from claudine_core.schedules.model import (
    MAX_MISSED_SLOTS,
    ON_TIME_GRACE_S,
    ExecutionOutcome,
    MissedRunPolicy,
    Schedule,
    ScheduleExecution,
    ScheduleKind,
    ScheduleStatus,
    UnknownSchedule,
    new_schedule_id,
)
from claudine_core.schedules.store import ScheduleRepo
from claudine_core.schedules.timing import (
    TimingError,
    check_cron,
    next_slot,
    read_time,
    read_zone,
    slots_back,
)
from claudine_core.store import TaskRepo
from claudine_core.store.db import describe_sqlite_error

log = logging.getLogger("claudine.schedules")

MIN_PREFIX_DIGITS = 4
MAX_LIST_LIMIT = 100


class ScheduleService:
    """Schedules of one home.

    Args:
        config: the home's configuration.
        repo: the home's store.
        prepare: checks a task template and fixes its task-scoped settings from the
            calling process (TaskService.prepare).
        delegate: creates a task from a request (TaskService.delegate).
    """

    def __init__(self, config: Config, repo: TaskRepo, *,
                 prepare: Callable[[TaskSpec], TaskSpec],
                 delegate: Callable[[TaskSpec], Task]) -> None:
        self.config = config
        self.repo = repo
        self.prepare = prepare
        self.delegate = delegate
        self.store = ScheduleRepo(repo.db, self._count_write)

    def _count_write(self) -> None:
        self.repo.writes += 1  # the owner's change probe counts this process's writes so

    @property
    def clock(self) -> Callable[[], float]:
        return self.repo.clock

    # -- commands ----------------------------------------------------------------------------

    def create(self, template: TaskSpec | Mapping[str, Any], *, kind: str | None = None,
               cron: str | None = None, run_at: str | float | datetime | None = None,
               timezone: str | None = None, missed_run_policy: str | None = None,
               max_runs: int | str | None = None,
               expires_at: str | float | datetime | None = None,
               after_schedule: str | None = None) -> Schedule:
        """Check and store a schedule; returns it once committed.

        ``template`` is a TaskSpec, or raw values keyed by TaskSpec field as a front end
        has them (checked by claudine_core.task_request, as delegate's are). Times are ISO
        8601 text (read in ``timezone`` when they carry no offset), datetimes or epoch
        seconds.

        Raises:
            InvalidRequest: every problem at once, keyed by TaskSpec field for the
                template and by ``kind``, ``cron``, ``run_at``, ``timezone``,
                ``missed_run_policy``, ``max_runs``, ``expires_at``, ``after_schedule``
                for the schedule's own settings.
        """
        problems: dict[str, str] = {}
        spec = self._checked_template(template, problems)
        timing = _Timing.read(kind=kind, cron=cron, run_at=run_at, timezone=timezone,
                              missed_run_policy=missed_run_policy, max_runs=max_runs,
                              expires_at=expires_at, now=self.clock(), problems=problems)
        after = self._after_schedule(after_schedule, problems)
        if problems or spec is None or timing is None:
            raise InvalidRequest(problems=problems)
        now = self.clock()
        schedule = Schedule(
            id=new_schedule_id(), seq=0, kind=timing.kind, cron=timing.cron,
            run_at=timing.run_at, timezone=timing.zone.key,
            missed_run_policy=timing.policy, template=spec, max_runs=timing.max_runs,
            expires_at=timing.expires_at, after_schedule=after,
            next_run_at=timing.first_slot, created_at=now, updated_at=now)
        with self._transaction():
            self.store.insert(schedule)
        return self.get(schedule.id)

    def _checked_template(self, template: TaskSpec | Mapping[str, Any],
                          problems: dict[str, str]) -> TaskSpec | None:
        from claudine_core.task_request import read_request

        try:
            if not isinstance(template, TaskSpec):
                template = read_request(
                    template, default_worktree=self.config.default_worktree,
                    dependency_policy=self.config.on_dependency_failure)
            spec = self.prepare(template)
        except InvalidRequest as exc:
            problems.update(exc.problems or {"prompt": exc.message})
            return None
        if spec.continue_from or spec.schedule_id or spec.pipeline_id:
            problems["prompt"] = ("a schedule's task template cannot continue another task "
                                  "or belong to a pipeline")
            return None
        # Dependencies are fixed now, by full id: a prefix could match another task later.
        ids, unknown = [], []
        for ref in spec.depends_on:
            try:
                ids.append(self.repo.resolve(ref).id)
            except ClaudineError as exc:
                unknown.append(str(exc))
        if unknown:
            problems["depends_on"] = "; ".join(unknown)
            return None
        return replace(spec, depends_on=tuple(dict.fromkeys(ids)))

    def _after_schedule(self, ref: str | None, problems: dict[str, str]) -> str | None:
        if ref is None or not str(ref).strip():
            return None
        try:
            return self.get(ref).id
        except UnknownSchedule as exc:
            problems["after_schedule"] = str(exc)
            return None

    def pause(self, ref: str) -> Schedule:
        """Stop firing until resumed; the slots meanwhile are not missed runs."""
        schedule = self.get(ref)
        if schedule.status is not ScheduleStatus.ACTIVE:
            raise InvalidTransition(f"schedule {schedule.short_id} is {schedule.status.value}: "
                                    "only an active schedule can be paused")
        if not self._update(schedule, (ScheduleStatus.ACTIVE,), status=ScheduleStatus.PAUSED):
            return self.pause(ref)  # it fired or changed meanwhile: decide again
        return self.get(schedule.id)

    def resume(self, ref: str) -> Schedule:
        """Fire again from the next slot (cron), or at its time (one-time: if that passed
        while paused, the missed-run policy says what happens)."""
        schedule = self.get(ref)
        if schedule.status is not ScheduleStatus.PAUSED:
            raise InvalidTransition(f"schedule {schedule.short_id} is {schedule.status.value}: "
                                    "only a paused schedule can be resumed")
        now = self.clock()
        next_at = schedule.run_at if schedule.kind is ScheduleKind.ONE_TIME \
            else _next_slot(schedule, now)
        status = ScheduleStatus.ACTIVE
        if next_at is None or (schedule.expires_at is not None
                               and next_at >= schedule.expires_at):
            status, next_at = ScheduleStatus.EXPIRED, None
        if not self._update(schedule, (ScheduleStatus.PAUSED,), status=status,
                            next_run_at=next_at):
            return self.resume(ref)
        return self.get(schedule.id)

    def cancel(self, ref: str, reason: str | None = None) -> Schedule:
        """End the schedule for good; tasks it already created are left as they are."""
        schedule = self.get(ref)
        if schedule.status.is_final:
            raise InvalidTransition(f"schedule {schedule.short_id} is already "
                                    f"{schedule.status.value}: nothing to cancel")
        text = (reason or "").strip() or "cancelled by user"
        if not self._update(schedule, (ScheduleStatus.ACTIVE, ScheduleStatus.PAUSED),
                            status=ScheduleStatus.CANCELLED, next_run_at=None,
                            cancel_reason=text):
            return self.cancel(ref, reason)
        return self.get(schedule.id)

    def _update(self, schedule: Schedule, allowed: tuple[ScheduleStatus, ...],
                **changes: Any) -> bool:
        with self._transaction():
            return self.store.update(schedule.id, allowed, updated_at=self.clock(), **changes)

    # -- queries -----------------------------------------------------------------------------

    def get(self, ref: str) -> Schedule:
        """A schedule by full id, its 8-digit short id or a unique prefix of at least 4
        hex digits (``sched-`` optional).

        Raises:
            UnknownSchedule: nothing matches, the prefix is too short, or it is ambiguous.
        """
        text = (ref or "").strip().lower()
        digits = text.removeprefix("sched-")
        if not digits or any(c not in "0123456789abcdef" for c in digits) or len(digits) > 12:
            raise UnknownSchedule(f"{ref!r} is not a schedule id: ids look like "
                                  "sched-3f9c2a1b7e40 (the sched- part is optional); "
                                  "list them with 'claudine schedule list'")
        if len(digits) < MIN_PREFIX_DIGITS:
            raise UnknownSchedule(f"schedule id {ref!r} is too short: give at least "
                                  f"{MIN_PREFIX_DIGITS} hex digits of the id")
        found = self.store.get("sched-" + digits)
        if found is not None:
            return found
        matches = self.store.with_prefix("sched-" + digits)
        if len(matches) == 1:
            return matches[0]
        if matches:
            raise UnknownSchedule(f"schedule id {ref!r} is ambiguous: give more of the id")
        raise UnknownSchedule(f"no schedule with id {ref!r}: list them with "
                              "'claudine schedule list'")

    def list(self, status: str | ScheduleStatus | None = None, limit: int | None = 50,
             offset: int = 0) -> builtins.list[Schedule]:
        """Schedules, newest first, optionally of one status."""
        wanted = None
        if status is not None:
            try:
                wanted = ScheduleStatus(status)
            except ValueError:
                raise InvalidRequest(problems={"status": (
                    f"{status!r} is not a schedule status: use one of "
                    f"{', '.join(s.value for s in ScheduleStatus)}")}) from None
        return self.store.list(wanted, limit, max(0, offset))

    def count(self, status: str | ScheduleStatus | None = None) -> int:
        return self.store.count(ScheduleStatus(status) if status is not None else None)

    def history(self, ref: str, limit: int | None = 10) -> builtins.list[ScheduleExecution]:
        """The schedule's handled slots, newest first."""
        return self.store.history(self.get(ref).id, limit)

    def tasks(self, ref: str, limit: int = 10) -> builtins.list[Task]:
        """Tasks the schedule created, newest first."""
        schedule_id = self.get(ref).id
        TaskRow = self.repo.TaskRow
        query = (TaskRow.select(TaskRow.id).where(TaskRow.schedule_id == schedule_id)
                 .order_by(TaskRow.seq.desc()).limit(limit))
        return [self.repo.get(row.id) for row in query]

    def has_active(self) -> bool:
        """Whether any schedule may still fire (an owner should keep running for it)."""
        return self.store.count(ScheduleStatus.ACTIVE) > 0

    def next_due_at(self) -> float | None:
        """The earliest next slot of any active schedule (None: nothing will fire)."""
        return self.store.next_due_at()

    # -- firing (the owner only) ----------------------------------------------------------------

    def fire_due(self, now: float | None = None) -> int:
        """Handle every slot that has come, of every active schedule; tasks created.

        Only the owner calls this. Each schedule is handled in its own transaction, so a
        template that no longer holds (its directory removed) is recorded as a failed
        execution of that schedule and the others still fire.
        """
        moment = self.clock() if now is None else now
        created = 0
        for schedule in self.store.due(moment):
            created += self._fire(schedule.id, moment)
        return created

    def _fire(self, schedule_id: str, now: float) -> int:
        try:
            with self._transaction(immediate=True):
                # Re-read under the write lock: another process may have fired it already.
                schedule = self.store.get(schedule_id)
                if schedule is None or schedule.status is not ScheduleStatus.ACTIVE \
                        or schedule.next_run_at is None or schedule.next_run_at > now:
                    return 0
                created = self._handle_slots(schedule, now)
                crash_point("schedule_firing")  # rows written, not committed
        except peewee.IntegrityError:
            # UNIQUE(schedule_id, scheduled_for): a process that ignored the engine lock
            # handled that slot first; everything of this attempt was rolled back.
            log.warning("schedule %s: a slot was already handled by another process",
                        schedule_id)
            return 0
        crash_point("schedule_fired")
        return created

    def _handle_slots(self, schedule: Schedule, now: float) -> int:
        plan = _plan(schedule, now)
        created = 0
        runs = schedule.runs
        last_run_at = schedule.last_run_at
        for slot in plan.failed:
            self._record(schedule, slot, now, ExecutionOutcome.FAILED,
                         error=f"missed: no owner was running at {_show(slot, schedule)}")
        if plan.skipped is not None:
            slot, count = plan.skipped
            self._record(schedule, slot, now, ExecutionOutcome.SKIPPED,
                         error=f"missed {count} run(s) while no owner was running "
                         "(missed-run policy: skip)")
        for slot in plan.run:
            if schedule.max_runs is not None and runs >= schedule.max_runs:
                break
            task, problem = self._create_task(schedule)
            outcome = ExecutionOutcome.CREATED if task else ExecutionOutcome.FAILED
            self._record(schedule, slot, now, outcome, task_id=task.id if task else None,
                         error=problem)
            last_run_at = now
            if task is not None:
                runs += 1
                created += 1
        status, next_at = _after_firing(schedule, now, runs)
        self.store.update(schedule.id, (ScheduleStatus.ACTIVE,), status=status,
                          next_run_at=next_at, runs=runs, last_run_at=last_run_at,
                          updated_at=self.clock())
        return created

    def _create_task(self, schedule: Schedule) -> tuple[Task | None, str | None]:
        """A task from the template, or why not (a template that no longer holds)."""
        spec = replace(schedule.template, schedule_id=schedule.id)
        if schedule.after_schedule:
            latest = self._latest_task_id(schedule.after_schedule)
            if latest is not None:
                spec = replace(spec, depends_on=tuple(dict.fromkeys((*spec.depends_on,
                                                                      latest))))
        try:
            return self.delegate(spec), None
        except StoreError:
            raise  # the store itself failed: nothing of this firing may commit
        except ClaudineError as exc:
            return None, exc.message
        except OSError as exc:  # the system refused a path the template leads to
            where = f" {exc.filename}" if exc.filename else ""
            return None, f"could not use{where}: {exc.strerror or exc}"

    def _latest_task_id(self, schedule_id: str) -> str | None:
        TaskRow = self.repo.TaskRow
        row = (TaskRow.select(TaskRow.id).where(TaskRow.schedule_id == schedule_id)
               .order_by(TaskRow.seq.desc()).first())
        return None if row is None else str(row.id)

    def _record(self, schedule: Schedule, slot: float, now: float,
                outcome: ExecutionOutcome, *, task_id: str | None = None,
                error: str | None = None) -> None:
        self.store.record(ScheduleExecution(seq=0, schedule_id=schedule.id,
                                            scheduled_for=slot, fired_at=now,
                                            task_id=task_id, outcome=outcome, error=error))

    @contextlib.contextmanager
    def _transaction(self, *, immediate: bool = False) -> Iterator[None]:
        """Writes that commit together. ``immediate`` takes the write lock before reading
        (when no transaction is open yet), so what is read cannot change before the write."""
        db = self.repo.db
        try:
            with db.atomic("IMMEDIATE") if immediate else db.atomic():
                yield
        except peewee.IntegrityError:
            raise
        except (peewee.OperationalError, peewee.DatabaseError) as exc:
            raise StoreError(describe_sqlite_error(exc, db.database)) from exc


# -- planning a firing ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Plan:
    run: list[float]  # slots to create a task for, oldest first
    failed: list[float]  # missed slots recorded as failed ('fail' policy)
    skipped: tuple[float, int] | None  # newest missed slot and how many were skipped


def _plan(schedule: Schedule, now: float) -> _Plan:
    """Which of the slots that have come get a task, a failed row, or are skipped."""
    slots = _due_slots(schedule, now)  # newest first, at most MAX_MISSED_SLOTS + 1
    if not slots:
        return _Plan([], [], None)
    on_time = slots[0] if now - slots[0] <= ON_TIME_GRACE_S else None
    missed = slots[1:] if on_time is not None else slots
    missed = sorted(missed[:MAX_MISSED_SLOTS])
    run = [on_time] if on_time is not None else []
    policy = schedule.missed_run_policy
    if not missed:
        return _Plan(run, [], None)
    if policy is MissedRunPolicy.CATCHUP:
        return _Plan(missed + run, [], None)
    if policy is MissedRunPolicy.FAIL:
        return _Plan(run, missed, None)
    return _Plan(run, [], (missed[-1], len(missed)))


def _due_slots(schedule: Schedule, now: float) -> builtins.list[float]:
    """Slots from the schedule's next one up to now (and before expires_at), newest first;
    at most MAX_MISSED_SLOTS + 1 of them: older ones are dropped."""
    first = schedule.next_run_at
    if first is None:
        return []
    until = now if schedule.expires_at is None else min(now, schedule.expires_at - 1)
    if schedule.kind is ScheduleKind.ONE_TIME or schedule.cron is None:
        return [first] if first <= until else []
    slots: list[float] = []
    for slot in slots_back(schedule.cron, read_zone(schedule.timezone), until):
        if slot < first or len(slots) > MAX_MISSED_SLOTS:
            break
        slots.append(slot)
    return slots


def _after_firing(schedule: Schedule, now: float, runs: int) -> tuple[ScheduleStatus,
                                                                      float | None]:
    """The schedule's status and next slot once the slots up to ``now`` are handled."""
    if schedule.kind is ScheduleKind.ONE_TIME:
        return ScheduleStatus.COMPLETED, None
    if schedule.max_runs is not None and runs >= schedule.max_runs:
        return ScheduleStatus.COMPLETED, None
    next_at = _next_slot(schedule, now)
    if next_at is None:
        return ScheduleStatus.COMPLETED, None
    if schedule.expires_at is not None and next_at >= schedule.expires_at:
        return ScheduleStatus.EXPIRED, None
    return ScheduleStatus.ACTIVE, next_at


def _next_slot(schedule: Schedule, after: float) -> float | None:
    if schedule.cron is None:
        return None
    return next_slot(schedule.cron, read_zone(schedule.timezone), after)


def _show(slot: float, schedule: Schedule) -> str:
    return datetime.fromtimestamp(slot, read_zone(schedule.timezone)).isoformat()


# -- reading a request ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Timing:
    kind: ScheduleKind
    cron: str | None
    run_at: float | None
    zone: Any
    policy: MissedRunPolicy
    max_runs: int | None
    expires_at: float | None
    first_slot: float

    @classmethod
    def read(cls, *, kind: str | None, cron: str | None, run_at: Any, timezone: str | None,
             missed_run_policy: str | None, max_runs: Any, expires_at: Any, now: float,
             problems: dict[str, str]) -> _Timing | None:
        """The schedule's own settings checked; each problem is added to ``problems``."""
        before = len(problems)
        zone = _read(problems, "timezone", lambda: read_zone(timezone or "UTC"))
        policy = _read(problems, "missed_run_policy", lambda: _read_policy(missed_run_policy))
        runs = _read(problems, "max_runs", lambda: _read_max_runs(max_runs))
        chosen = _read(problems, "kind", lambda: _read_kind(kind, cron, run_at))
        cron_text = run_epoch = expiry = None
        if chosen is ScheduleKind.CRON:
            cron_text = _read(problems, "cron", lambda: check_cron(str(cron)))
        if zone is not None and chosen is ScheduleKind.ONE_TIME:
            run_epoch = _read(problems, "run_at", lambda: _read_moment(run_at, zone, "run_at"))
            if run_epoch is not None and run_epoch <= now:
                problems["run_at"] = (f"{_iso(run_epoch)} is not in the future: a one-time "
                                      "schedule needs a time to come")
        if zone is not None and expires_at not in (None, ""):
            expiry = _read(problems, "expires_at",
                           lambda: _read_moment(expires_at, zone, "expires_at"))
            if expiry is not None and expiry <= now:
                problems["expires_at"] = f"{_iso(expiry)} is not in the future"
        if len(problems) > before or chosen is None or zone is None or policy is None:
            return None
        if chosen is ScheduleKind.CRON:
            first = next_slot(str(cron_text), zone, now)
        else:
            first = run_epoch
        if first is None:
            problems["cron"] = f"cron expression {cron!r} has no time in the next 50 years"
            return None
        if expiry is not None and first >= expiry:
            problems["expires_at"] = (f"{_iso(expiry)} comes before the first run "
                                      f"({_iso(first)}): the schedule would never run")
            return None
        return cls(kind=chosen, cron=cron_text, run_at=run_epoch, zone=zone, policy=policy,
                   max_runs=runs, expires_at=expiry, first_slot=first)


def _read(problems: dict[str, str], name: str, reader: Callable[[], Any]) -> Any:
    try:
        return reader()
    except (TimingError, ValueError) as exc:
        problems[name] = str(exc)
        return None


def _read_kind(kind: str | None, cron: str | None, run_at: Any) -> ScheduleKind:
    has_cron = bool(cron and str(cron).strip())
    has_time = run_at not in (None, "")
    if kind is not None:
        try:
            chosen = ScheduleKind(kind)
        except ValueError:
            raise ValueError(f"schedule type {kind!r} is not cron or one_time") from None
        if chosen is ScheduleKind.CRON and not has_cron:
            raise ValueError("a cron schedule needs a cron expression")
        if chosen is ScheduleKind.ONE_TIME and not has_time:
            raise ValueError("a one-time schedule needs the time to run at")
        if has_cron and has_time:
            raise ValueError(f"a {chosen.value} schedule takes a cron expression or a time, "
                             "not both")
        return chosen
    if has_cron and has_time:
        raise ValueError("give a cron expression (recurring) or a time (once), not both")
    if not has_cron and not has_time:
        raise ValueError("give a cron expression (recurring) or a time to run at (once)")
    return ScheduleKind.CRON if has_cron else ScheduleKind.ONE_TIME


def _read_policy(text: str | None) -> MissedRunPolicy:
    if text in (None, ""):
        return MissedRunPolicy.SKIP
    try:
        return MissedRunPolicy(str(text).strip().lower())
    except ValueError:
        raise ValueError(f"missed-run policy {text!r} is not one of "
                         f"{', '.join(p.value for p in MissedRunPolicy)}") from None


def _read_max_runs(value: Any) -> int | None:
    if value in (None, ""):
        return None
    try:
        number = int(str(value).strip()) if not isinstance(value, int) else value
    except ValueError:
        raise ValueError(f"max runs {value!r} is not a whole number") from None
    if isinstance(value, bool) or number < 1:
        raise ValueError(f"max runs {value!r} must be at least 1")
    return number


def _read_moment(value: Any, zone: Any, what: str) -> float:
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=zone)
        return moment.timestamp()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return read_time(str(value), zone, what)


def _iso(epoch: float) -> str:
    from claudine_core.models import iso_time

    return str(iso_time(epoch))
