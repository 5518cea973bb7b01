"""What a tool handler returns (shared by handlers.py and schedule_handlers.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ToolOutcome:
    """One tool result: ``structured`` for programs, ``text`` for the model.

    ``structured`` conforms to the tool's ``outputSchema`` (tools.py). An error has
    none: the MCP spec does not ask errors to match the schema, but the TypeScript SDK's
    client (the MCP Inspector's, for one) validates any structuredContent it gets, even on
    an isError result, and would replace the message with a schema complaint.
    """

    text: str
    structured: dict[str, Any] | None = field(default_factory=dict)
    is_error: bool = False


def error(message: str) -> ToolOutcome:
    return ToolOutcome(text=message, structured=None, is_error=True)
