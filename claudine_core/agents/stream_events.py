"""The events an agent's ``stream-json`` output turns into, and two text helpers.

Small frozen dataclasses, one per kind of line a person or a screen cares about (the
contract is in ``CLAUDE_CLI.md``). Parsing is in :mod:`stream_parse`, the running summary
in :mod:`summary`, the text form in :mod:`log_text`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

ACTIVITY_LIMIT = 120


@dataclass(frozen=True, slots=True)
class StreamEvent:
    """Base of every event :func:`parse_line` returns."""


@dataclass(frozen=True, slots=True)
class AgentInit(StreamEvent):
    """The ``system``/``init`` line that opens every run."""

    session_id: str | None
    model: str | None
    cwd: str | None
    permission_mode: str | None
    version: str | None


@dataclass(frozen=True, slots=True)
class AssistantText(StreamEvent):
    """One ``text`` block of an assistant message."""

    text: str


@dataclass(frozen=True, slots=True)
class UserText(StreamEvent):
    """A message sent to the agent (recorded by the wrapper as it delivers it), or a user
    turn the CLI echoed (``--replay-user-messages``)."""

    text: str


@dataclass(frozen=True, slots=True)
class ToolUse(StreamEvent):
    """One ``tool_use`` block; ``summary`` is its key argument as a one-liner."""

    tool_use_id: str
    name: str
    summary: str
    input: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ToolResult(StreamEvent):
    """One ``tool_result`` block of a user message, flattened to text."""

    tool_use_id: str
    content: str
    is_error: bool


@dataclass(frozen=True, slots=True)
class ApiRetry(StreamEvent):
    """A ``system``/``api_retry`` line: the CLI is retrying a 429/5xx/529."""

    attempt: int
    max_retries: int | None
    retry_delay_ms: float | None
    error_status: int | None
    error: str | None


@dataclass(frozen=True, slots=True)
class ModelFallback(StreamEvent):
    """A ``system``/``model_fallback`` line: the CLI switched to ``--fallback-model``."""

    fallback_model: str | None
    trigger: str | None  # "overloaded" (529s) or "last_resort"
    text: str | None  # the CLI's own words ("Switched to Haiku 4.5 due to ...")


@dataclass(frozen=True, slots=True)
class RateLimitEvent(StreamEvent):
    """A ``rate_limit_event`` line (subscription auth only): the account's usage limit
    status; ``rejected`` means the limit is reached until ``resets_at``."""

    status: str | None
    resets_at: float | None
    limit_type: str | None


@dataclass(frozen=True, slots=True)
class AgentResult(StreamEvent):
    """The final ``result`` line. Success is ``not is_error`` (API errors say "success")."""

    subtype: str
    is_error: bool
    api_error_status: int | None
    num_turns: int | None
    result: str | None
    session_id: str | None
    total_cost_usd: float | None
    duration_ms: float | None
    permission_denials: int

    @property
    def ok(self) -> bool:
        return not self.is_error and self.subtype == "success"


@dataclass(frozen=True, slots=True)
class OtherEvent(StreamEvent):
    """Valid JSON we do not render; ``type`` is e.g. ``stream_event`` or ``system:hook``."""

    type: str


@dataclass(frozen=True, slots=True)
class InvalidLine(StreamEvent):
    """A line that is not a JSON object (garbage, or cut by a crash)."""

    raw: str
    error: str


# Text helpers shared by the parser, the summary and the renderer.


def clip(text: str, limit: int) -> str:
    """``text`` at most ``limit`` characters, marking a cut with an ellipsis."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def last_line(text: str) -> str | None:
    """The last non-blank line of ``text``, stripped and clipped; None if all blank."""
    for line in reversed(text.splitlines()):
        if line.strip():
            return clip(line.strip(), ACTIVITY_LIMIT)
    return None
