"""peewee models: the schema of the store (see migrations.py for how it evolves).

The task table's columns are derived from the :class:`claudine_core.models.Task`
declaration (one column per field, typed from the field's annotation), so a field is
declared once; tests/core/test_task_fields.py checks that the migrations create exactly
these columns.

The model classes are declared inside :func:`bind_tables`, which each store calls with its
own database, as huey's SqlStorage does: two homes open in one process then each have
their own classes, and no query can reach a database through a process-global binding.
Declaring them costs about 1 ms per opened store, the cost that declaring them at import
had (so start-up is unchanged); subclassing shared classes instead would deep-copy every
field, about twice that.
"""

from __future__ import annotations

from dataclasses import MISSING, Field
from enum import Enum, IntEnum
from typing import Any, NamedTuple

import peewee

from claudine_core.models import Task, field_kind, field_types, task_fields


class Tables(NamedTuple):
    """One store's model classes, bound to that store's database."""

    meta: Any
    task: Any


def _peewee_field(declared: Field[Any], annotation: Any) -> peewee.Field:
    kind, nullable = field_kind(annotation)
    options: dict[str, Any] = {"null": nullable}
    if declared.metadata.get("unique"):
        options["unique"] = True
    if declared.metadata.get("index"):
        options["index"] = True
    if declared.default is not MISSING and declared.default is not None \
            and not isinstance(declared.default, (tuple, dict)):
        options["default"] = _stored_default(declared.default)
    if declared.metadata.get("auto"):
        return peewee.AutoField()
    if issubclass(kind, bool):
        return peewee.BooleanField(**options)
    if issubclass(kind, (int, IntEnum)):
        return peewee.IntegerField(**options)
    if issubclass(kind, float):
        return peewee.FloatField(**options)
    return peewee.TextField(**options)  # str, StrEnum, JSON containers


def _stored_default(value: Any) -> Any:
    if isinstance(value, IntEnum):
        return int(value)
    if isinstance(value, Enum):
        return value.value
    return value


def task_columns() -> dict[str, peewee.Field]:
    """The task table's peewee fields, one per declared :class:`Task` field."""
    hints = field_types(Task)
    return {f.name: _peewee_field(f, hints[f.name]) for f in task_fields()}


def bind_tables(db: peewee.Database) -> Tables:
    """Declare the model classes bound to ``db`` (and to nothing else)."""

    class BaseModel(peewee.Model):
        class Meta:
            database = db

    class MetaRow(BaseModel):
        """Key/value facts about the store itself."""

        key = peewee.TextField(primary_key=True)
        value = peewee.TextField()

        class Meta:
            table_name = "meta"

    task_meta = type("Meta", (), {
        "table_name": "task",
        "indexes": ((("status", "priority", "seq"), False),),
    })
    # One row per task; ``seq`` gives FIFO order within a priority, across restarts.
    TaskRow = type("TaskRow", (BaseModel,), {**task_columns(), "Meta": task_meta})
    return Tables(meta=MetaRow, task=TaskRow)
