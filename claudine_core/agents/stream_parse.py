"""Parsing ``claude -p --output-format stream-json --verbose`` lines into events.

Everything here is defensive: the bytes come from a child process that may crash mid-line,
print garbage, or be a newer CLI with fields we do not know. :func:`parse_line` never
raises and :class:`LineSplitter` keeps memory bounded whatever the agent prints.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from claudine_core.agents.stream_events import (
    AgentInit,
    AgentResult,
    ApiRetry,
    AssistantText,
    InvalidLine,
    ModelFallback,
    OtherEvent,
    RateLimitEvent,
    StreamEvent,
    ToolResult,
    ToolUse,
    UserText,
    clip,
)

DEFAULT_MAX_LINE_BYTES = 4 * 1024 * 1024
SUMMARY_LIMIT = 200
RESULT_CONTENT_LIMIT = 2000
RAW_LIMIT = 200

# ---------------------------------------------------------------------------------------
# Small coercions: the stream is untrusted, so every field is checked for its type.
# ---------------------------------------------------------------------------------------


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _int(value: Any) -> int | None:
    # bool is an int subclass but never a count or a status.
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _compact_json(value: Any) -> str:
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
    except (TypeError, ValueError, RecursionError):
        return repr(value)


# ---------------------------------------------------------------------------------------
# Parsing
# ---------------------------------------------------------------------------------------

# Tool name -> the input key a person wants to see first.
_KEY_ARGUMENT = {
    "Bash": "command",
    "Read": "file_path",
    "Write": "file_path",
    "Edit": "file_path",
    "MultiEdit": "file_path",
    "NotebookEdit": "notebook_path",
    "Grep": "pattern",
    "Glob": "pattern",
    "WebFetch": "url",
    "WebSearch": "query",
    "Task": "description",
    "Agent": "description",
}


def tool_summary(name: str, tool_input: dict[str, Any]) -> str:
    """The key argument of a tool call as a one-liner of at most 200 characters."""
    key = _KEY_ARGUMENT.get(name)
    value = tool_input.get(key) if key else None
    if isinstance(value, str):
        text = _one_line(value)
    else:
        # mcp__server__tool and unknown tools: the whole input is the best summary.
        text = _compact_json(tool_input) if tool_input else ""
    return clip(text, SUMMARY_LIMIT)


def _flatten_content(content: Any) -> str:
    """A tool_result ``content`` (string or list of blocks) as plain text."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return "" if content is None else _compact_json(content)
    parts: list[str] = []
    for block in content:
        if isinstance(block, str):
            parts.append(block)
        elif isinstance(block, dict) and isinstance(block.get("text"), str):
            parts.append(block["text"])
        elif isinstance(block, dict) and block.get("type") == "image":
            parts.append("[image]")
    return "\n".join(parts)


def _blocks(message: Any) -> list[Any]:
    content = message.get("content") if isinstance(message, dict) else None
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return content if isinstance(content, list) else []


def _assistant_events(obj: dict[str, Any]) -> list[StreamEvent]:
    events: list[StreamEvent] = []
    for block in _blocks(obj.get("message")):
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind == "text" and isinstance(block.get("text"), str) and block["text"]:
            events.append(AssistantText(block["text"]))
        elif kind == "tool_use":
            raw_input = block.get("input")
            tool_input = raw_input if isinstance(raw_input, dict) else {}
            name = _str(block.get("name")) or "?"
            summary = tool_summary(name, tool_input)
            events.append(ToolUse(_str(block.get("id")) or "", name, summary, tool_input))
        # thinking / redacted_thinking / unknown blocks: nothing a person follows.
    return events


def _user_events(obj: dict[str, Any]) -> list[StreamEvent]:
    events: list[StreamEvent] = []
    message = obj.get("message")
    if isinstance(message, dict) and isinstance(message.get("content"), str):
        # A message delivered to the agent (the wrapper's record of it), or a user turn the
        # CLI echoes (--replay-user-messages).
        return [UserText(clip(message["content"], RESULT_CONTENT_LIMIT))]
    if isinstance(message, dict) and isinstance(message.get("content"), list):
        for block in message["content"]:
            if isinstance(block, dict) and block.get("type") == "tool_result":
                content = clip(_flatten_content(block.get("content")), RESULT_CONTENT_LIMIT)
                tool_use_id = _str(block.get("tool_use_id")) or ""
                events.append(ToolResult(tool_use_id, content, block.get("is_error") is True))
    # A user line without tool results is an echoed prompt: known, not rendered.
    return events or [OtherEvent("user")]


def _system_event(obj: dict[str, Any]) -> StreamEvent:
    subtype = obj.get("subtype")
    if subtype == "init":
        return AgentInit(
            session_id=_str(obj.get("session_id")),
            model=_str(obj.get("model")),
            cwd=_str(obj.get("cwd")),
            permission_mode=_str(obj.get("permissionMode")),
            version=_str(obj.get("claude_code_version")),
        )
    if subtype == "api_retry":
        error = obj.get("error")
        return ApiRetry(
            attempt=_int(obj.get("attempt")) or 0,
            max_retries=_int(obj.get("max_retries")),
            retry_delay_ms=_float(obj.get("retry_delay_ms")),
            error_status=_int(obj.get("error_status")),
            error=error if isinstance(error, str) or error is None else _compact_json(error),
        )
    if subtype == "model_fallback":
        return ModelFallback(fallback_model=_str(obj.get("fallback_model")),
                             trigger=_str(obj.get("trigger")), text=_str(obj.get("content")))
    return OtherEvent(f"system:{subtype}" if isinstance(subtype, str) else "system")


def _count(value: Any) -> int:
    if isinstance(value, list | dict):
        return len(value)
    return max(_int(value) or 0, 0)


def _result_event(obj: dict[str, Any]) -> AgentResult:
    return AgentResult(
        subtype=_str(obj.get("subtype")) or "",
        is_error=obj.get("is_error") is True,
        api_error_status=_int(obj.get("api_error_status")),
        num_turns=_int(obj.get("num_turns")),
        result=_str(obj.get("result")),
        session_id=_str(obj.get("session_id")),
        total_cost_usd=_float(obj.get("total_cost_usd")),
        duration_ms=_float(obj.get("duration_ms")),
        permission_denials=_count(obj.get("permission_denials")),
    )


def _rate_limit_event(obj: dict[str, Any]) -> RateLimitEvent:
    info = obj.get("rate_limit_info")
    info = info if isinstance(info, dict) else {}
    return RateLimitEvent(
        status=_str(info.get("status")),
        resets_at=_float(info.get("resetsAt")),
        limit_type=_str(info.get("rateLimitType")),
    )


def _events_of(obj: dict[str, Any]) -> list[StreamEvent]:
    kind = obj.get("type")
    if kind == "assistant":
        return _assistant_events(obj)
    if kind == "user":
        return _user_events(obj)
    if kind == "system":
        return [_system_event(obj)]
    if kind == "result":
        return [_result_event(obj)]
    if kind == "rate_limit_event":
        return [_rate_limit_event(obj)]
    return [OtherEvent(kind if isinstance(kind, str) else "unknown")]


def _decode(line: Any) -> str:
    if isinstance(line, str):
        return line
    if isinstance(line, bytes | bytearray | memoryview):
        return bytes(line).decode("utf-8", errors="replace")
    return str(line)


def parse_line(line: bytes | str) -> list[StreamEvent]:
    """All events of one output line, in order. Blank lines give ``[]``. Never raises."""
    text = ""
    try:
        text = _decode(line).strip()
        if not text:
            return []
        obj = json.loads(text)
        if not isinstance(obj, dict):
            return [InvalidLine(clip(text, RAW_LIMIT), f"not a JSON object: {type(obj).__name__}")]
        return _events_of(obj)
    except Exception as exc:  # noqa: BLE001 - garbage in must never stop the reader
        return [InvalidLine(clip(text, RAW_LIMIT), clip(f"{type(exc).__name__}: {exc}", 200))]


def parse_lines(lines: Iterable[bytes | str]) -> list[StreamEvent]:
    """The events of many lines, in order."""
    return [event for line in lines for event in parse_line(line)]


# ---------------------------------------------------------------------------------------
# Splitting a byte stream into lines with bounded memory
# ---------------------------------------------------------------------------------------


class LineSplitter:
    """Cuts a byte stream into lines; no line (and no buffer) exceeds ``max_line_bytes``.

    An over-long line is yielded as its first ``max_line_bytes`` bytes (which then parse as
    an :class:`InvalidLine`) and the rest of it is dropped up to its newline.
    """

    def __init__(self, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> None:
        if max_line_bytes < 1:
            raise ValueError("max_line_bytes must be at least 1")
        self.max_line_bytes = max_line_bytes
        self._buffer = bytearray()
        self._discarding = False

    @property
    def buffered_bytes(self) -> int:
        """Bytes of the partial line held back; never more than ``max_line_bytes``."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[bytes]:
        """The lines completed by ``data``, without their newlines."""
        last = data.rfind(b"\n")
        if last < 0 or self._discarding or len(self._buffer) + last > self.max_line_bytes:
            return self._feed_capped(data)
        # No complete line can be over the cap: one split instead of a slice per line.
        lines = data[:last].split(b"\n")
        if self._buffer:
            self._buffer += lines[0]
            lines[0] = bytes(self._buffer)
            self._buffer.clear()
        if last + 1 < len(data):
            self._take(memoryview(data)[last + 1 :], lines)
        return lines

    def _feed_capped(self, data: bytes) -> list[bytes]:
        lines: list[bytes] = []
        view = memoryview(data)
        start = 0
        while start <= len(data):
            newline = data.find(b"\n", start)
            end = len(data) if newline < 0 else newline
            self._take(view[start:end], lines)
            if newline < 0:
                break
            self._end_line(lines)
            start = newline + 1
        return lines

    def _take(self, segment: memoryview, lines: list[bytes]) -> None:
        """Add newline-free bytes to the current line, cutting it at the cap."""
        if self._discarding or not segment:
            return
        room = self.max_line_bytes - len(self._buffer)
        self._buffer += segment[:room]
        if len(segment) > room:
            lines.append(bytes(self._buffer))
            self._buffer.clear()
            self._discarding = True

    def _end_line(self, lines: list[bytes]) -> None:
        if self._discarding:
            # The cut line was already yielded; its newline only ends the discarding.
            self._discarding = False
        else:
            lines.append(bytes(self._buffer))
            self._buffer.clear()

    def flush(self) -> list[bytes]:
        """The leftover partial line (at end of stream), if any."""
        rest = [bytes(self._buffer)] if self._buffer else []
        self._buffer.clear()
        self._discarding = False
        return rest
