"""The schedule and schedule_execution tables: columns derived from the declarations in
schedules/model.py (with store/tables.py's rule for a field's column), and the row
reads and guarded writes the schedule service needs.

The tables are created by migration v7 (store/migrations.py); tests check that it creates
exactly the declared columns.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Callable, Iterable
from dataclasses import MISSING, Field, fields
from enum import Enum
from typing import Any, NamedTuple

import peewee

from claudine_core.errors import StoreError
from claudine_core.models import Priority, TaskSpec, field_kind, field_types
from claudine_core.schedules.model import (
    Schedule,
    ScheduleExecution,
    ScheduleStatus,
    template_from_json,
    template_to_json,
)
from claudine_core.store.db import describe_sqlite_error
from claudine_core.store.tables import _peewee_field


def declared_columns(cls: type) -> dict[str, peewee.Field]:
    """The peewee fields of a declared record (Schedule, ScheduleExecution)."""
    hints = field_types(cls)
    return {f.name: _peewee_field(f, hints[f.name]) for f in fields(cls)}


class ScheduleTables(NamedTuple):
    schedule: Any
    execution: Any


def bind_schedule_tables(db: peewee.Database) -> ScheduleTables:
    """Declare the two model classes bound to ``db`` only (as store/tables.py does)."""

    class BaseModel(peewee.Model):
        class Meta:
            database = db

    schedule_meta = type("Meta", (), {"table_name": "schedule"})
    execution_meta = type("Meta", (), {
        "table_name": "schedule_execution",
        "indexes": ((("schedule_id", "scheduled_for"), True),),
    })
    ScheduleRow = type("ScheduleRow", (BaseModel,),
                       {**declared_columns(Schedule), "Meta": schedule_meta})
    ExecutionRow = type("ExecutionRow", (BaseModel,),
                        {**declared_columns(ScheduleExecution), "Meta": execution_meta})
    return ScheduleTables(schedule=ScheduleRow, execution=ExecutionRow)


def _converter(declared: Field[Any], annotation: Any) -> Callable[[Any], Any]:
    kind, _ = field_kind(annotation)
    if kind is TaskSpec:
        return template_from_json
    empty = declared.default if declared.default is not MISSING else None

    def convert(value: Any) -> Any:
        if value is None:
            return empty
        return kind(value)

    return convert


def _row_reader(cls: type) -> Callable[[Any], Any]:
    hints = field_types(cls)
    converters = {f.name: _converter(f, hints[f.name]) for f in fields(cls)}

    def read(row: Any) -> Any:
        data = row.__data__
        return cls(**{name: convert(data.get(name)) for name, convert in converters.items()})

    return read


row_to_schedule: Callable[[Any], Schedule] = _row_reader(Schedule)
row_to_execution: Callable[[Any], ScheduleExecution] = _row_reader(ScheduleExecution)


def to_column(value: Any) -> Any:
    if isinstance(value, TaskSpec):
        return json.dumps(template_to_json(value))
    if isinstance(value, Priority):
        return int(value)
    if isinstance(value, Enum):
        return value.value
    return value


class ScheduleRepo:
    """Schedule reads and writes on one store. Writes are counted in ``writes`` of the
    task repo they share a database with, so the owner's change probe sees them."""

    def __init__(self, db: peewee.SqliteDatabase, count_write: Callable[[], None]) -> None:
        self.db = db
        self.tables = bind_schedule_tables(db)
        self.Row = self.tables.schedule
        self.ExecRow = self.tables.execution
        self._count_write = count_write

    # -- reads -------------------------------------------------------------------------------

    def get(self, schedule_id: str) -> Schedule | None:
        row = self.Row.get_or_none(self.Row.id == schedule_id)
        return None if row is None else row_to_schedule(row)

    def with_prefix(self, prefix: str, limit: int = 3) -> builtins.list[Schedule]:
        query = self.Row.select().where(self.Row.id.startswith(prefix)).limit(limit)
        return [row_to_schedule(row) for row in query]

    def list(self, status: ScheduleStatus | None, limit: int | None,
             offset: int) -> builtins.list[Schedule]:
        query = self.Row.select()
        if status is not None:
            query = query.where(self.Row.status == status.value)
        query = query.order_by(self.Row.seq.desc()).offset(offset)
        if limit is not None:
            query = query.limit(limit)
        return [row_to_schedule(row) for row in query]

    def count(self, status: ScheduleStatus | None = None) -> int:
        query = self.Row.select()
        if status is not None:
            query = query.where(self.Row.status == status.value)
        return int(query.count())

    def due(self, now: float) -> builtins.list[Schedule]:
        """Active schedules whose next slot has come, earliest first."""
        Row = self.Row
        query = Row.select().where(
            (Row.status == ScheduleStatus.ACTIVE.value) & Row.next_run_at.is_null(False)
            & (Row.next_run_at <= now)
        ).order_by(Row.next_run_at, Row.seq)
        return [row_to_schedule(row) for row in query]

    def next_due_at(self) -> float | None:
        """The earliest next slot of any active schedule (None: nothing will fire)."""
        Row = self.Row
        value = Row.select(peewee.fn.MIN(Row.next_run_at)).where(
            Row.status == ScheduleStatus.ACTIVE.value).scalar()
        return None if value is None else float(value)

    def history(self, schedule_id: str, limit: int | None) -> builtins.list[ScheduleExecution]:
        ExecRow = self.ExecRow
        query = (ExecRow.select().where(ExecRow.schedule_id == schedule_id)
                 .order_by(ExecRow.scheduled_for.desc(), ExecRow.seq.desc()))
        if limit is not None:
            query = query.limit(limit)
        return [row_to_execution(row) for row in query]

    # -- writes ------------------------------------------------------------------------------

    def insert(self, schedule: Schedule) -> None:
        values = {f.name: to_column(getattr(schedule, f.name)) for f in fields(Schedule)
                  if f.name != "seq"}
        self._write(lambda: self.Row.insert(**values).execute())

    def update(self, schedule_id: str, allowed_from: Iterable[ScheduleStatus],
               **changes: Any) -> bool:
        """Apply ``changes`` only while the schedule is in one of ``allowed_from``."""
        Row = self.Row
        values = {name: to_column(value) for name, value in changes.items()}
        query = Row.update(**values).where(
            (Row.id == schedule_id) & Row.status.in_([s.value for s in allowed_from]))
        return int(self._write(query.execute)) == 1

    def record(self, execution: ScheduleExecution) -> None:
        """Write one execution row. Raises peewee.IntegrityError when that slot of that
        schedule already has one (UNIQUE(schedule_id, scheduled_for))."""
        values = {f.name: to_column(getattr(execution, f.name))
                  for f in fields(ScheduleExecution) if f.name != "seq"}
        self._count_write()
        self.ExecRow.insert(**values).execute()

    def _write(self, operation: Callable[[], Any]) -> Any:
        self._count_write()
        try:
            return operation()
        except (peewee.OperationalError, peewee.DatabaseError) as exc:
            raise StoreError(describe_sqlite_error(exc, self.db.database)) from exc
