"""The JSON schema of a task in MCP results, derived from the Task declaration.

``Task.to_json()`` plus ``taskId``, field by field: the type from the field's annotation,
the description from its declaration (claudine_core.models), times as ISO 8601 strings.
tests/core/test_task_fields.py validates a real task against it. The object is left open
by the caller (no additionalProperties: false), so a field added in a later version does
not make older clients reject every result.
"""

from __future__ import annotations

import typing
from enum import Enum
from typing import Any

from claudine_core.models import TASK_ID_PATTERN, Task, field_kind, field_types, public_fields

_TIME = "ISO 8601 time in UTC"
_JSON_TYPES = {bool: "boolean", str: "string", int: "integer", float: "number",
               tuple: "array", dict: "object"}


def _field_schema(declared: Any, annotation: Any) -> dict[str, Any]:
    """A Task field's JSON schema, from its declaration in claudine_core.models."""
    kind, nullable = field_kind(annotation)
    spec: dict[str, Any]
    if declared.metadata["time"]:
        spec = {"type": "string"}
    elif issubclass(kind, Enum):
        values = [str(member) for member in kind]  # P0..P2, or the StrEnum's values
        spec = {"type": "string", "enum": values + [None] if nullable else values}
    else:
        spec = {"type": next(v for k, v in _JSON_TYPES.items() if issubclass(kind, k))}
    if kind is tuple:
        item = typing.get_args(annotation)[0]
        spec["items"] = {"type": "object" if typing.get_origin(item) is dict else "string"}
    if nullable and kind not in (tuple,):
        spec["type"] = [spec["type"], "null"]
    doc = declared.metadata["doc"]
    spec["description"] = f"{doc.rstrip('.')} ({_TIME})." if declared.metadata["time"] else doc
    return {**spec, **declared.metadata.get("schema", {})}


def task_properties() -> dict[str, Any]:
    """The properties of the task object in results: taskId, then every public field."""
    hints = field_types(Task)
    schema = {"taskId": {"type": "string", "pattern": TASK_ID_PATTERN,
                         "description": "The task id."}}
    schema.update({f.name: _field_schema(f, hints[f.name]) for f in public_fields()})
    schema["id"]["description"] = "Same as taskId."
    return schema
