"""The names other modules import from the agent stream, kept in one place for them.

The stream code is split by job: event types (:mod:`stream_events`), parsing and line
splitting (:mod:`stream_parse`), the running summary (:mod:`summary`), the text form
(:mod:`log_text`) and the run-log reader (:mod:`run_log`). New code imports from those
modules; this one re-exports what existing callers use. The console's ``rich`` form of an
event is in ``claudine_tui.log_render``: the core does not import rich.
"""

from __future__ import annotations

from claudine_core.agents.log_text import format_duration, render_plain
from claudine_core.agents.run_log import read_events as iter_file_events
from claudine_core.agents.stream_events import (
    AgentInit,
    AgentResult,
    ApiRetry,
    AssistantText,
    InvalidLine,
    OtherEvent,
    StreamEvent,
    ToolResult,
    ToolUse,
)
from claudine_core.agents.stream_parse import (
    DEFAULT_MAX_LINE_BYTES,
    LineSplitter,
    parse_line,
    parse_lines,
    tool_summary,
)
from claudine_core.agents.summary import StreamSummary

__all__ = [
    "DEFAULT_MAX_LINE_BYTES",
    "AgentInit",
    "AgentResult",
    "ApiRetry",
    "AssistantText",
    "InvalidLine",
    "LineSplitter",
    "OtherEvent",
    "StreamEvent",
    "StreamSummary",
    "ToolResult",
    "ToolUse",
    "format_duration",
    "iter_file_events",
    "parse_line",
    "parse_lines",
    "render_plain",
    "tool_summary",
]
