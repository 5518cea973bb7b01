"""Small builders of the JSON schemas tools publish, shared by every tool catalogue
(tools.py, schedule_tools.py). Free of third-party imports, like the catalogues."""

from __future__ import annotations

from typing import Any

from claudine_core.task_request import MAX_BUDGET_USD

BUDGET_USD: dict[str, Any] = {"type": "number", "exclusiveMinimum": 0,
                              "maximum": MAX_BUDGET_USD}
"""An amount of US dollars one task may spend (maxBudgetUsd of the task tools), in the
range the core's request validation checks."""


def object_schema(properties: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    """An object with exactly these properties (no others accepted)."""
    return {
        "type": "object",
        "properties": properties,
        "required": list(required),
        "additionalProperties": False,
    }


def nullable(kind: str, description: str | None = None, **extra: Any) -> dict[str, Any]:
    """A value of ``kind`` or null."""
    spec: dict[str, Any] = {"type": [kind, "null"], **extra}
    if description:
        spec["description"] = description
    return spec


def result_schema(properties: dict[str, Any]) -> dict[str, Any]:
    """A result object: every property present (null where it has no value)."""
    return object_schema(properties, tuple(properties))
