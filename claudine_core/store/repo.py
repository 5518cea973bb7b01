"""Task queries and guarded state transitions.

Every transition is a conditional UPDATE (``... WHERE id=? AND status IN (...)``) whose row
count says whether it happened, so a stale decision, or a second process acting on the
same row, can never resurrect a finished task or start one twice.
"""

from __future__ import annotations

import contextlib
import json
import re
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import MISSING, fields
from enum import StrEnum
from typing import Any

import peewee

from claudine_core.errors import InvalidTransition, StoreError, UnknownTask
from claudine_core.models import (
    ACTIVE_STATES,
    TERMINAL_STATES,
    WAITING_STATES,
    Priority,
    Task,
    TaskSpec,
    TaskState,
    field_kind,
    field_types,
    new_task_id,
    task_fields,
)
from claudine_core.store.db import SYNCHRONOUS, describe_sqlite_error
from claudine_core.store.tables import bind_tables

MIN_PREFIX_DIGITS = 4
"""Hex digits a task id prefix needs before it may stand for a task."""
_HEX_RE = re.compile(r"[0-9a-f]{1,32}")
PIPELINE_PREFIX = "pipe-"
_IDS_PER_QUERY = 500  # SQLite's bound on a statement's parameters may be as low as 999


def _converters() -> dict[str, Callable[[Any], Any]]:
    """For each declared Task field, how a column value becomes the field's value."""
    hints = field_types(Task)
    converters: dict[str, Callable[[Any], Any]] = {}
    for declared in task_fields():
        kind, _ = field_kind(hints[declared.name])
        converters[declared.name] = _converter(kind, declared)
    return converters


def _converter(kind: type, declared: Any) -> Callable[[Any], Any]:
    empty = declared.default_factory() if declared.default_factory is not MISSING \
        else declared.default
    if kind is tuple:
        return lambda value: tuple(json.loads(value)) if value else ()
    if kind is dict:
        return lambda value: json.loads(value) if value else empty

    def convert(value: Any) -> Any:
        if value is None:
            return None if empty is MISSING else empty
        return kind(value)  # bool, int, float, str and the enums take the stored value

    return convert


_FROM_COLUMN: dict[str, Callable[[Any], Any]] = {}  # built on the first row read


def _row_to_task(row: Any) -> Task:
    return _data_to_task(row.__data__)


def _data_to_task(data: dict[str, Any]) -> Task:
    if not _FROM_COLUMN:  # not at import: a status of an empty home never needs it
        _FROM_COLUMN.update(_converters())
    return Task(**{name: convert(data.get(name)) for name, convert in _FROM_COLUMN.items()})


class ListCache:
    """What a reader that lists the same tasks again and again keeps between two lists.

    The rows are read without their prompt (a prompt never changes once written, and
    may be 100,000 characters) as plain dicts (several times cheaper than peewee's model
    instances), and a row equal to the one read last time gives back the same
    :class:`Task` object, so a reader can tell an unchanged task by identity.
    """

    def __init__(self) -> None:
        self.prompts: dict[str, str] = {}
        self._rows: dict[str, tuple[dict[str, Any], Task]] = {}
        self._seen: dict[str, tuple[dict[str, Any], Task]] = {}

    def task(self, row: dict[str, Any]) -> Task:
        """The task of ``row`` (a dict of columns without the prompt)."""
        kept = self._rows.get(row["id"])
        if kept is not None and kept[0] == row:
            task = kept[1]
        else:
            task = _data_to_task({**row, "prompt": self.prompts.get(row["id"], "")})
        self._seen[row["id"]] = (row, task)
        return task

    def forget_unlisted(self) -> None:
        """Keep only the tasks listed since the last call: memory stays bounded."""
        self._rows, self._seen = self._seen, {}
        self.prompts = {task_id: self.prompts[task_id] for task_id in self._rows
                        if task_id in self.prompts}


class TaskRepo:
    """All task reads and writes. Methods commit before they return.

    Args:
        db: an open database from ``open_database``.
        clock: the source of timestamps (tests pass a fake one).

    The repo declares its own model classes on ``db`` (``self.TaskRow``), so two repos on
    two homes in one process never write to each other's file.
    """

    def __init__(self, db: peewee.SqliteDatabase, *, clock: Callable[[], float] = time.time):
        self.db = db
        self.tables = bind_tables(db)
        self.TaskRow = self.tables.task  # this store's task table, bound to ``db`` only
        self.clock = clock
        self.writes = 0  # commits made through this repo: lets its owner skip idle re-reads
        self.summary_writes = 0  # of those, the output summaries' (see events.state_version)
        self._list_sql: dict[tuple[Any, ...], tuple[str, tuple[Any, ...], list[str]]] = {}

    # -- reads -----------------------------------------------------------------------------

    def get(self, task_id: str) -> Task:
        TaskRow = self.TaskRow
        row = TaskRow.get_or_none(TaskRow.id == task_id)
        if row is None:
            raise UnknownTask(f"no task with id {task_id!r}")
        return _row_to_task(row)

    def resolve(self, ref: str) -> Task:
        """Find a task by full id, short id or unique id prefix (``task-`` optional).

        A prefix needs at least :data:`MIN_PREFIX_DIGITS` hex digits: with fewer, a typo
        (or a placeholder such as ``TASK-0``) would pick some random task to act on.

        Raises:
            UnknownTask: nothing matches, the prefix is too short or not hex, or it
                matches several tasks.
        """
        TaskRow = self.TaskRow
        text = ref.strip().lower()
        if not text:
            raise UnknownTask("an empty task id was given")
        digits = text.removeprefix("task-")
        if not _HEX_RE.fullmatch(digits):
            raise UnknownTask(
                f"{ref!r} is not a task id: ids look like task-3f9c2a1b7e40 (the task- part "
                "is optional); run 'claudine status' to list the task ids"
            )
        if len(digits) < MIN_PREFIX_DIGITS:
            raise UnknownTask(
                f"task id {ref!r} is too short: give at least {MIN_PREFIX_DIGITS} hex digits "
                "of the id"
            )
        full = "task-" + digits
        row = TaskRow.get_or_none(TaskRow.id == full)
        if row is not None:
            return _row_to_task(row)
        matches = list(TaskRow.select().where(TaskRow.id.startswith(full)).limit(3))
        if len(matches) == 1:
            return _row_to_task(matches[0])
        if not matches:
            raise UnknownTask(
                f"no task with id {ref!r}: run 'claudine status' to list the task ids"
            )
        raise UnknownTask(f"task id {ref!r} is ambiguous: give more of the id")

    def list_tasks(
        self,
        *,
        statuses: Iterable[TaskState] | None = None,
        limit: int | None = None,
        offset: int = 0,
        newest_first: bool = True,
        cache: ListCache | None = None,
    ) -> list[Task]:
        """Tasks, newest first unless told otherwise.

        ``cache`` is for a reader that lists the same tasks again and again (the
        console's snapshot, after every change): see :class:`ListCache`.
        """
        values = None if statuses is None else tuple(sorted(s.value for s in statuses))
        if cache is not None:
            return self._list_through(cache, values, limit, offset, newest_first)
        return [_row_to_task(row) for row in
                self._list_query(values, limit, offset, newest_first)]

    def _list_query(self, statuses: tuple[str, ...] | None, limit: int | None, offset: int,
                    newest_first: bool) -> Any:
        TaskRow = self.TaskRow
        query = TaskRow.select()
        if statuses is not None:
            query = query.where(TaskRow.status.in_(statuses))
        order = TaskRow.seq.desc() if newest_first else TaskRow.seq.asc()
        query = query.order_by(order).offset(offset)
        return query if limit is None else query.limit(limit)

    def _list_through(self, cache: ListCache, *shape: Any) -> list[Task]:
        compiled = self._list_sql.get(shape)
        if compiled is None:
            # peewee builds the SQL of a 60-column select in about 2 ms, more than SQLite
            # takes to run it: a reader that lists the same shape again reuses the text.
            columns = [f for f in self.TaskRow._meta.sorted_fields if f.name != "prompt"]
            sql, params = self._list_query(*shape).select(*columns).sql()
            compiled = self._list_sql[shape] = (sql, tuple(params),
                                                [column.name for column in columns])
        sql, params, names = compiled
        # The bare cursor: peewee's dict-building wrapper costs more than the query.
        rows = [dict(zip(names, values, strict=True))
                for values in self.db.execute_sql(sql, params)]
        missing = [row["id"] for row in rows if row["id"] not in cache.prompts]
        TaskRow = self.TaskRow
        for start in range(0, len(missing), _IDS_PER_QUERY):
            chunk = missing[start:start + _IDS_PER_QUERY]
            found: Any = TaskRow.select(TaskRow.id, TaskRow.prompt).where(
                TaskRow.id.in_(chunk)).tuples()
            cache.prompts.update(found)
        return [cache.task(row) for row in rows]

    def count_by_status(self) -> dict[TaskState, int]:
        TaskRow = self.TaskRow
        query = TaskRow.select(TaskRow.status, peewee.fn.COUNT(TaskRow.seq).alias("n")).group_by(
            TaskRow.status
        )
        rows: Any = query.tuples()
        return {TaskState(status): int(n) for status, n in rows}

    def dispatchable(self, limit: int, now: float, *, resuming_only: bool = False) -> list[Task]:
        """Queued tasks in run order: tasks released from a usage-limit park first (they
        hold a conversation and were running when the limit hit), then priority, then
        submit order; back-off respected. ``resuming_only``: only those released ones (the
        home is paused, but a task released by hand may start)."""
        TaskRow = self.TaskRow
        condition = (TaskRow.status == TaskState.QUEUED.value) & (
            (TaskRow.not_before.is_null()) | (TaskRow.not_before <= now))
        if resuming_only:
            condition &= TaskRow.resuming == True  # noqa: E712
        query = (
            TaskRow.select()
            .where(condition)
            .order_by(TaskRow.resuming.desc(), TaskRow.priority.asc(), TaskRow.seq.asc())
            .limit(limit)
        )
        return [_row_to_task(row) for row in query]

    def queue_position(self, task: Task) -> int | None:
        """1-based place in the run order of a queued task."""
        TaskRow = self.TaskRow
        if task.status is not TaskState.QUEUED:
            return None
        same_rank = TaskRow.resuming == task.resuming
        ahead = (
            TaskRow.select()
            .where(
                (TaskRow.status == TaskState.QUEUED.value)
                & (
                    ((TaskRow.resuming == True) & (not task.resuming))  # noqa: E712
                    | (same_rank & (TaskRow.priority < int(task.priority)))
                    | (same_rank & (TaskRow.priority == int(task.priority))
                       & (TaskRow.seq < task.seq))
                )
            )
            .count()
        )
        return int(ahead) + 1

    def changed_since(self, since: float) -> list[Task]:
        TaskRow = self.TaskRow
        query = TaskRow.select().where(TaskRow.updated_at >= since).order_by(TaskRow.seq)
        return [_row_to_task(row) for row in query]

    def states_of(self, task_ids: Iterable[str]) -> dict[str, TaskState | None]:
        """The state of each task id (None: no such task), in the order given."""
        TaskRow = self.TaskRow
        ids = list(task_ids)
        found = dict(TaskRow.select(TaskRow.id, TaskRow.status)
                     .where(TaskRow.id.in_(ids)).tuples()) if ids else {}
        return {i: TaskState(found[i]) if i in found else None for i in ids}

    def merging(self, task_ids: Iterable[str]) -> frozenset[str]:
        """Those of ``task_ids`` that ended and whose worktree merge step is still pending.

        Their work is not in the base branch yet (an ``auto`` merge), and their worktree
        may still be removed under whoever uses it: a dependent waits for the step.
        """
        TaskRow = self.TaskRow
        ids = list(task_ids)
        if not ids:
            return frozenset()
        merge_status = peewee.fn.json_extract(TaskRow.merge, "$.status")
        query = TaskRow.select(TaskRow.id).where(
            TaskRow.id.in_(ids) & TaskRow.status.in_([s.value for s in TERMINAL_STATES])
            & (merge_status == "pending"))
        return frozenset(row.id for row in query)

    def pipeline_steps(self, pipeline_id: str) -> list[Task]:
        """The tasks of a pipeline, first step first (empty: no such pipeline)."""
        TaskRow = self.TaskRow
        query = (TaskRow.select().where(TaskRow.pipeline_id == pipeline_id)
                 .order_by(TaskRow.pipeline_step.asc(), TaskRow.seq.asc()))
        return [_row_to_task(row) for row in query]

    def resolve_pipeline(self, ref: str) -> str:
        """The pipeline id ``ref`` stands for: a pipeline id (``pipe-`` and hex digits, a
        unique prefix of at least :data:`MIN_PREFIX_DIGITS`), or any of its steps' task ids.

        Raises:
            UnknownTask: nothing matches, it is ambiguous, or the task is in no pipeline.
        """
        text = ref.strip().lower()
        if not text.startswith(PIPELINE_PREFIX):
            task = self.resolve(ref)
            if task.pipeline_id is None:
                raise UnknownTask(f"task {task.short_id} is not a step of a pipeline")
            return task.pipeline_id
        digits = text.removeprefix(PIPELINE_PREFIX)
        if not _HEX_RE.fullmatch(digits) or len(digits) < MIN_PREFIX_DIGITS:
            raise UnknownTask(f"{ref!r} is not a pipeline id: they look like "
                              "pipe-3f9c2a1b7e40 (at least 4 hex digits of it will do)")
        TaskRow = self.TaskRow
        query = (TaskRow.select(TaskRow.pipeline_id).distinct()
                 .where(TaskRow.pipeline_id.startswith(text)).limit(2))
        found = [row.pipeline_id for row in query]
        if not found:
            raise UnknownTask(f"no pipeline with id {ref!r}: run 'claudine status' to list "
                              "the pipelines")
        if len(found) > 1:
            raise UnknownTask(f"pipeline id {ref!r} is ambiguous: give more of the id")
        return str(found[0])

    def data_version(self) -> int:
        """SQLite's counter of commits made by *other* connections (cheap change probe)."""
        return int(self.db.execute_sql("PRAGMA data_version").fetchone()[0])

    # -- writes ----------------------------------------------------------------------------

    def insert(self, spec: TaskSpec, *, cwd: str, status: TaskState = TaskState.QUEUED,
               error: str | None = None) -> Task:
        """Store a validated request as a queued task; every TaskSpec field is a column.

        ``spec`` must have been through ``task_request.check_spec``, which decides the
        worktree choice; an open one (None) is a programming error, refused here.
        """
        if spec.worktree is None:
            raise ValueError("TaskRepo.insert needs a checked spec: its worktree choice is "
                             "still open (see claudine_core.task_request.check_spec)")
        TaskRow = self.TaskRow
        now = self.clock()
        task_id = new_task_id()
        values = {f.name: _to_column(getattr(spec, f.name)) for f in fields(TaskSpec)}
        values.update(id=task_id, status=status.value, cwd=cwd, created_at=now,
                      updated_at=now)
        if status.is_terminal:  # a dependency had already failed: decided at once
            values.update(ended_at=now, error=error)
        self._write(lambda: TaskRow.insert(**values).execute())
        return self.get(task_id)

    def transition(
        self, task_id: str, allowed_from: Sequence[TaskState], **changes: Any
    ) -> bool:
        """Apply ``changes`` only if the task is in one of ``allowed_from``; True if it was."""
        TaskRow = self.TaskRow
        changes = {k: _to_column(v) for k, v in changes.items()}
        changes["updated_at"] = self.clock()
        query = TaskRow.update(**changes).where(
            (TaskRow.id == task_id) & (TaskRow.status.in_([s.value for s in allowed_from]))
        )
        return self._write(query.execute) == 1

    def update_summaries(self, summaries: dict[str, dict[str, Any]]) -> None:
        """Write output summaries of running tasks in one transaction (batched by caller)."""
        if not summaries:
            return
        now = self.clock()

        # One prepared UPDATE per set of columns, run for all its tasks at once: built per
        # row by peewee, 50 running tasks cost the owner's loop 15 to 30 ms every flush.
        by_columns: dict[tuple[str, ...], list[tuple[Any, ...]]] = {}
        for task_id, summary in summaries.items():
            values = tuple(_to_column(v) for v in summary.values())
            by_columns.setdefault(tuple(summary), []).append(
                (*values, now, task_id, TaskState.RUNNING.value))

        def write() -> None:
            # Without the fsync of synchronous=FULL: under a flood of agent output that
            # fsync took 3 ms, at times 30, every half second on the loop a console shares.
            # A summary is derived from the output log and a later commit's fsync makes it
            # durable too; WAL keeps the file consistent either way. Tasks' states stay FULL.
            self.db.execute_sql("PRAGMA synchronous=NORMAL")
            try:
                self._write_summaries(by_columns)
            finally:
                self.db.execute_sql(f"PRAGMA synchronous={SYNCHRONOUS}")  # as opened

        self._write(write)
        self.summary_writes += 1

    def _write_summaries(self, by_columns: dict[tuple[str, ...], list[tuple[Any, ...]]]) -> None:
        TaskRow = self.TaskRow
        with self.db.atomic():
            cursor = self.db.cursor()
            for names, rows in by_columns.items():
                columns = [TaskRow._meta.fields[name].column_name for name in names]
                assignments = ", ".join(f'"{column}" = ?' for column in columns)
                cursor.executemany(
                    f'UPDATE "{TaskRow._meta.table_name}" SET {assignments}, '
                    '"updated_at" = ? WHERE "id" = ? AND "status" = ?', rows)

    def set_priority(self, task_id: str, priority: Priority) -> Task:
        task = self.get(task_id)
        if task.status not in WAITING_STATES:
            raise InvalidTransition(
                f"task {task.short_id} is {task.status.value}: priority only matters while "
                "a task waits in the queue"
            )
        if not self.transition(task_id, WAITING_STATES, priority=priority):
            return self.set_priority(task_id, priority)  # it moved meanwhile: re-check
        return self.get(task_id)

    def request_cancel(self, task_id: str, reason: str | None) -> Task:
        """Cancel a waiting task at once; flag a running one for its owner to stop."""
        task = self.get(task_id)
        if task.status.is_terminal:
            raise InvalidTransition(
                f"task {task.short_id} already {task.status.value}: nothing to cancel"
            )
        reason_text = reason or "cancelled by user"
        if task.status in WAITING_STATES:
            if self.transition(
                task_id,
                WAITING_STATES,
                status=TaskState.CANCELLED,
                ended_at=self.clock(),
                error=reason_text,
                cancel_requested=True,
                cancel_reason=reason_text,
            ):
                return self.get(task_id)
            return self.request_cancel(task_id, reason)  # it started meanwhile
        self.transition(
            task_id, (TaskState.RUNNING,), cancel_requested=True, cancel_reason=reason_text
        )
        return self.get(task_id)

    def cancel_requests(self) -> list[Task]:
        TaskRow = self.TaskRow
        query = TaskRow.select().where(
            (TaskRow.status == TaskState.RUNNING.value) & (TaskRow.cancel_requested == True)  # noqa: E712
        )
        return [_row_to_task(row) for row in query]

    def unsettled_merges(self) -> list[Task]:
        """Finished worktree tasks whose merge step never recorded an outcome.

        That happens only when the owner died between a task's end and the end of its merge
        step (which runs on a thread); the next owner runs the step again.
        """
        TaskRow = self.TaskRow
        merge_status = peewee.fn.json_extract(TaskRow.merge, "$.status")
        query = TaskRow.select().where(
            TaskRow.status.in_([s.value for s in TERMINAL_STATES])
            & TaskRow.branch.is_null(False)
            & TaskRow.worktree_path.is_null(False)
            & (TaskRow.merge.is_null() | (merge_status == "pending"))
        ).order_by(TaskRow.seq)
        return [_row_to_task(row) for row in query]

    # -- facts about the home (the meta table) -------------------------------------------

    def get_fact(self, key: str) -> Any:
        """The JSON value stored under ``key`` in the meta table (None: none)."""
        # Plain SQL: the owner and the snapshot read the usage pause after every store
        # change (twice a second under load), and building a peewee query costs more
        # than running it.
        try:
            row = self.db.execute_sql("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        except (peewee.OperationalError, peewee.DatabaseError) as exc:
            raise StoreError(describe_sqlite_error(exc, self.db.database)) from exc
        return None if row is None else json.loads(row[0])

    def next_parked_due(self) -> float | None:
        """When the first parked task's limit resets (None: no task is parked)."""
        try:
            row = self.db.execute_sql("SELECT MIN(parked_until), COUNT(*) FROM task "
                                      "WHERE status = ?", (TaskState.PARKED.value,)).fetchone()
        except (peewee.OperationalError, peewee.DatabaseError) as exc:
            raise StoreError(describe_sqlite_error(exc, self.db.database)) from exc
        if not row or not row[1]:
            return None
        return float(row[0]) if row[0] is not None else 0.0

    def set_fact(self, key: str, value: Any) -> None:
        """Store ``value`` (JSON) under ``key``; None removes it."""
        MetaRow = self.tables.meta
        if value is None:
            self._write(MetaRow.delete().where(MetaRow.key == key).execute)
            return
        self._write(MetaRow.replace(key=key, value=json.dumps(value)).execute)

    def unstarted_merges(self) -> list[str]:
        """Ended worktree tasks whose merge step never began: a task cancelled while it
        waited (queued for a retry, or parked) ends in the store, with no owner code
        running at its end."""
        TaskRow = self.TaskRow
        query = TaskRow.select(TaskRow.id).where(
            TaskRow.status.in_([s.value for s in TERMINAL_STATES])
            & TaskRow.branch.is_null(False)
            & TaskRow.worktree_path.is_null(False)
            & TaskRow.merge.is_null()
        ).order_by(TaskRow.seq)
        return [row.id for row in query]

    def active(self) -> list[Task]:
        return self.list_tasks(statuses=ACTIVE_STATES, newest_first=False)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Reads and writes that commit together; a failed commit (a full disk, a lock held
        too long) is a StoreError like any other write's.

        IMMEDIATE: the write lock is taken at BEGIN, waiting out other writers through the
        busy timeout. A deferred transaction that reads first and writes later cannot wait:
        in WAL mode SQLite fails its first write at once (SQLITE_BUSY) when another process
        committed after its read, which an owner writing twice a second makes likely (a
        pipeline cancel from the CLI failed so in CI). Nested, it is a savepoint."""
        try:
            with self.db.atomic("IMMEDIATE"):
                yield
        except (peewee.OperationalError, peewee.DatabaseError) as exc:
            raise StoreError(describe_sqlite_error(exc, self.db.database)) from exc

    def _write(self, operation: Callable[[], Any]) -> Any:
        self.writes += 1
        try:
            return operation()
        # sqlite3's own errors too: the summary flush writes through a bare cursor, which
        # peewee does not wrap (a full or locked disk must still read as a StoreError).
        except (peewee.OperationalError, peewee.DatabaseError, sqlite3.Error) as exc:
            raise StoreError(describe_sqlite_error(exc, self.db.database)) from exc


def _to_column(value: Any) -> Any:
    if isinstance(value, Priority):
        return int(value)
    if isinstance(value, StrEnum):
        return value.value
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value)
    return value
