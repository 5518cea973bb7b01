"""Reading the ``claude -p --output-format stream-json --verbose`` output of an agent.

An agent writes one JSON object per line (the contract is in ``CLAUDE_CLI.md``). This
module turns those lines into small frozen events, keeps a running :class:`StreamSummary`
for the screens, and renders events for ``claudine logs`` (plain text) and the console's
log pane (``rich`` text).

Everything here is defensive: the bytes come from a child process that may crash mid-line,
print garbage, or be a newer CLI with fields we do not know. :func:`parse_line` never
raises and :class:`LineSplitter` keeps memory bounded whatever the agent prints.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO

if TYPE_CHECKING:  # rich only for the console's log pane (render_rich), not for the CLI
    from rich.text import Text

DEFAULT_MAX_LINE_BYTES = 4 * 1024 * 1024
SUMMARY_LIMIT = 200
RESULT_CONTENT_LIMIT = 2000
RAW_LIMIT = 200
ACTIVITY_LIMIT = 120
RENDER_RESULT_LINES = 5

# ---------------------------------------------------------------------------------------
# Events
# ---------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------
# Small coercions: the stream is untrusted, so every field is checked for its type.
# ---------------------------------------------------------------------------------------


def _cut(text: str, limit: int) -> str:
    """``text`` at most ``limit`` characters, marking a cut with an ellipsis."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


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
    return _cut(text, SUMMARY_LIMIT)


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
    if isinstance(message, dict) and isinstance(message.get("content"), list):
        for block in message["content"]:
            if isinstance(block, dict) and block.get("type") == "tool_result":
                content = _cut(_flatten_content(block.get("content")), RESULT_CONTENT_LIMIT)
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
            return [InvalidLine(_cut(text, RAW_LIMIT), f"not a JSON object: {type(obj).__name__}")]
        return _events_of(obj)
    except Exception as exc:  # noqa: BLE001 - garbage in must never stop the reader
        return [InvalidLine(_cut(text, RAW_LIMIT), _cut(f"{type(exc).__name__}: {exc}", 200))]


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


# ---------------------------------------------------------------------------------------
# Reading a growing log file
# ---------------------------------------------------------------------------------------

_SCAN_BLOCK = 64 * 1024


def _skip_to_newline(handle: BinaryIO, position: int) -> int | None:
    """The offset just past the next newline at or after ``position``; None if none yet."""
    handle.seek(position)
    while block := handle.read(_SCAN_BLOCK):
        newline = block.find(b"\n")
        if newline >= 0:
            return position + newline + 1
        position += len(block)
    return None


def iter_file_events(
    path: str | os.PathLike[str], start_offset: int = 0, max_bytes: int | None = None
) -> tuple[list[StreamEvent], int]:
    """Events of the complete lines of ``path`` from ``start_offset``, and the new offset.

    Only whole lines are consumed, so a writer mid-line is safe: call again with the
    returned offset. ``max_bytes`` bounds one read; a single line longer than that is
    reported as one :class:`InvalidLine` and skipped once its newline is written. A file
    that does not exist yet gives no events.
    """
    try:
        with open(path, "rb") as handle:
            handle.seek(start_offset)
            data = handle.read(-1 if max_bytes is None else max_bytes)
            last_newline = data.rfind(b"\n")
            if last_newline >= 0:
                lines = data[:last_newline].split(b"\n")
                return parse_lines(lines), start_offset + last_newline + 1
            if max_bytes is None or len(data) < max_bytes:
                return [], start_offset  # the writer is mid-line
            return _skip_long_line(handle, start_offset, data, max_bytes)
    except FileNotFoundError:
        return [], start_offset


def _skip_long_line(
    handle: BinaryIO, start_offset: int, head: bytes, max_bytes: int
) -> tuple[list[StreamEvent], int]:
    # Without this a line longer than max_bytes would stall the reader forever.
    after = _skip_to_newline(handle, start_offset + len(head))
    if after is None:
        return [], start_offset
    raw = _cut(head.decode("utf-8", errors="replace"), RAW_LIMIT)
    return [InvalidLine(raw, f"line longer than {max_bytes} bytes")], after


# ---------------------------------------------------------------------------------------
# Running summary for the screens
# ---------------------------------------------------------------------------------------


# Compact JSON with ``type`` first, as the CLI writes it; the comma closes the value, so a
# prefix names the type exactly (an escaped or spaced spelling just misses the fast path).
_ASSISTANT_PREFIX = b'{"type":"assistant",'
_SKIP_PREFIXES = (b'{"type":"user",', b'{"type":"stream_event",')  # no summary case
# A JSON string token, never text inside a string (there a quote is written \"): any line
# with a tool_use block has it, whatever the spacing (a stop_reason costs a parse, no more).
_TOOL_USE = b'"tool_use"'


def _last_line(text: str) -> str | None:
    for line in reversed(text.splitlines()):
        if line.strip():
            return _cut(line.strip(), ACTIVITY_LIMIT)
    return None


def _retry_activity(event: ApiRetry) -> str:
    attempt = f"{event.attempt}/{event.max_retries}" if event.max_retries else str(event.attempt)
    status = f", {event.error_status}" if event.error_status is not None else ""
    return f"retrying API (attempt {attempt}{status})"


class StreamSummary:
    """What the screens show about one agent, folded from its events.

    ``num_turns`` is an estimate until the result arrives: tool uses of the current run
    + 1 (each tool use costs one more model turn). The result's ``num_turns`` replaces it.
    An :class:`AgentInit` after a result means a resumed run started: ``result`` is cleared
    and the estimate restarts. ``cost_usd`` is the last result's ``total_cost_usd``.
    """

    def __init__(self) -> None:
        self.session_id: str | None = None
        self.model: str | None = None
        self.num_turns: int | None = None
        self.cost_usd: float | None = None
        self.last_activity: str | None = None
        self.result: AgentResult | None = None
        self.tool_uses = 0
        self.invalid_lines = 0
        self.api_retries = 0
        self._run_tool_uses = 0

    def _snapshot(self) -> tuple[Any, ...]:
        return (
            self.session_id,
            self.model,
            self.num_turns,
            self.cost_usd,
            self.last_activity,
            self.result,
            self.tool_uses,
            self.invalid_lines,
            self.api_retries,
        )

    def update(self, event: StreamEvent) -> bool:
        """Fold in one event; True when something a screen shows changed."""
        before = self._snapshot()
        self._apply(event)
        return self._snapshot() != before

    def update_all(self, events: Iterable[StreamEvent]) -> bool:
        changed = False
        for event in events:
            changed = self.update(event) or changed
        return changed

    def update_from_lines(self, lines: Iterable[bytes]) -> bool:
        """Fold in raw output lines, parsing only the ones that can change the summary.

        The same summary as ``update_all(parse_lines(lines))`` (the tests check it on the
        real transcript and on floods), at a fraction of the cost: the owner follows every
        agent, and most of what an agent prints (tool results, streamed text) changes
        nothing here. A cheap look at each line's start (the CLI writes compact JSON with
        ``type`` first) sorts it:

        - ``user`` and ``stream_event`` (tool results, partial messages): skipped, they
          have no summary case;
        - ``assistant`` without a ``tool_use`` block: only the last one with text before
          the next parsed line can set ``last_activity``, so only that one is parsed;
        - everything else (``system``, ``result``, tool calls, anything unexpected): parsed.

        A line that does not end in ``}`` (cut by a crash, garbage) is always parsed, so
        ``invalid_lines`` still counts those; a skipped line that ends in ``}`` but is not
        valid JSON inside is not counted.
        """
        changed = False
        texts: list[bytes] = []  # assistant text lines since the last parsed line
        for line in lines:
            if line.endswith(b"}"):
                if line.startswith(_ASSISTANT_PREFIX):
                    if _TOOL_USE not in line:
                        texts.append(line)
                        continue
                elif line.startswith(_SKIP_PREFIXES):
                    continue
            if texts:
                changed = self._fold_texts(texts) or changed
                texts.clear()
            changed = self.update_all(parse_line(line)) or changed
        if texts:
            changed = self._fold_texts(texts) or changed
        return changed

    def _fold_texts(self, lines: list[bytes]) -> bool:
        """Apply a run of text-only assistant lines: the latest with a visible last line.

        Between two tool calls or runs, text only sets ``last_activity`` (to the last
        non-blank line of the latest text) and the turn estimate (the same for all of
        them), so the latest line that sets the activity decides; a blank text still
        counts for the estimate.
        """
        changed = False
        for line in reversed(lines):
            events = parse_line(line)
            texts = [e for e in events if isinstance(e, AssistantText)]
            if texts or any(isinstance(e, InvalidLine) for e in events):
                changed = self.update_all(events) or changed
            if any(_last_line(e.text) for e in texts):
                break
        return changed

    def _apply(self, event: StreamEvent) -> None:
        match event:
            case AgentInit():
                self._start_run(event)
            case AssistantText(text=text):
                self.last_activity = _last_line(text) or self.last_activity
                self._estimate_turns()
            case ToolUse(name=name, summary=summary):
                self.tool_uses += 1
                self._run_tool_uses += 1
                self.last_activity = _cut(f"{name}: {summary}" if summary else name, ACTIVITY_LIMIT)
                self._estimate_turns()
            case ApiRetry():
                self.api_retries += 1
                self.last_activity = _retry_activity(event)
            case AgentResult():
                self._finish_run(event)
            case InvalidLine():
                self.invalid_lines += 1

    def _start_run(self, event: AgentInit) -> None:
        self.session_id = event.session_id or self.session_id
        self.model = event.model or self.model
        if self.result is not None:
            self.result = None
            self._run_tool_uses = 0

    def _estimate_turns(self) -> None:
        if self.result is None:
            self.num_turns = self._run_tool_uses + 1

    def _finish_run(self, event: AgentResult) -> None:
        self.result = event
        self.session_id = event.session_id or self.session_id
        if event.num_turns is not None:
            self.num_turns = event.num_turns
        if event.total_cost_usd is not None:
            self.cost_usd = event.total_cost_usd


# ---------------------------------------------------------------------------------------
# Rendering: one list of (text, style) parts feeds both the plain and the rich form.
# ---------------------------------------------------------------------------------------

Parts = list[tuple[str, str]]

STYLE_TOOL = "bold cyan"
STYLE_TOOL_OUTPUT = "dim"
STYLE_ERROR = "red"
STYLE_RETRY = "yellow"
STYLE_OK = "green"
STYLE_FAILED = "bold red"
STYLE_INIT = "dim"
STYLE_INVALID = "yellow"


def format_duration(ms: float) -> str:
    """``0.4s``, ``12.0s``, ``2m 05s`` or ``1h 02m``."""
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    if whole < 3600:
        return f"{whole // 60}m {whole % 60:02d}s"
    return f"{whole // 3600}h {whole % 3600 // 60:02d}m"


def _short_session(session_id: str) -> str:
    return session_id if len(session_id) <= 8 else session_id[:8] + "…"


def _init_parts(event: AgentInit) -> Parts:
    fields: list[str] = []
    if event.session_id:
        fields.append(f"session {_short_session(event.session_id)}")
    if event.model:
        fields.append(f"model {event.model}")
    if event.permission_mode:
        fields.append(f"mode {event.permission_mode}")
    return [("● " + ("  ".join(fields) or "session started"), STYLE_INIT)]


def _tool_use_parts(event: ToolUse) -> Parts:
    parts: Parts = [("▸ ", STYLE_TOOL), (event.name, STYLE_TOOL)]
    if event.summary:
        parts.append((": " + event.summary, ""))
    return parts


def _tool_result_parts(event: ToolResult) -> Parts:
    mark, style = ("✗", STYLE_ERROR) if event.is_error else ("✓", STYLE_TOOL_OUTPUT)
    lines = event.content.rstrip("\n").splitlines() or ["(no output)"]
    shown = [f"  {mark} {lines[0]}"] + [f"    {line}" for line in lines[1:RENDER_RESULT_LINES]]
    hidden = len(lines) - RENDER_RESULT_LINES
    if hidden > 0:
        shown.append(f"  … ({hidden} more line{'s' if hidden != 1 else ''})")
    return [("\n".join(shown), style)]


def _retry_parts(event: ApiRetry) -> Parts:
    text = f"↻ API retry {event.attempt}"
    if event.max_retries:
        text += f"/{event.max_retries}"
    reason = " ".join(
        part for part in (str(event.error_status or ""), _cut(event.error or "", 100)) if part
    )
    if reason:
        text += f" ({reason})"
    if event.retry_delay_ms is not None:
        text += f" in {format_duration(event.retry_delay_ms)}"
    return [(text, STYLE_RETRY)]


def _result_stats(event: AgentResult) -> list[str]:
    stats: list[str] = []
    if event.num_turns is not None:
        stats.append(f"{event.num_turns} turn{'s' if event.num_turns != 1 else ''}")
    if event.total_cost_usd is not None:
        stats.append(f"${event.total_cost_usd:.4f}")
    if event.permission_denials:
        plural = "s" if event.permission_denials != 1 else ""
        stats.append(f"{event.permission_denials} permission denial{plural}")
    return stats


def _failure_reason(event: AgentResult) -> list[str]:
    reasons: list[str] = []
    if event.api_error_status is not None:
        reasons.append(f"API error {event.api_error_status}")
    elif event.subtype and event.subtype != "success":
        reasons.append(event.subtype)
    detail = _last_line(event.result or "")
    if detail:
        reasons.append(detail)
    return reasons or ["error"]


def _result_parts(event: AgentResult) -> Parts:
    stats = _result_stats(event)
    if event.ok:
        took = f" in {format_duration(event.duration_ms)}" if event.duration_ms is not None else ""
        return [(" · ".join([f"■ completed{took}", *stats]), STYLE_OK)]
    duration = [format_duration(event.duration_ms)] if event.duration_ms is not None else []
    head = "■ failed: " + " · ".join(_failure_reason(event))
    return [(" · ".join([head, *duration, *stats]), STYLE_FAILED)]


def _parts(event: StreamEvent) -> Parts | None:
    match event:
        case AgentInit():
            return _init_parts(event)
        case AssistantText(text=text):
            return [(text, "")] if text.strip() else None
        case ToolUse():
            return _tool_use_parts(event)
        case ToolResult():
            return _tool_result_parts(event)
        case ApiRetry():
            return _retry_parts(event)
        case AgentResult():
            return _result_parts(event)
        case InvalidLine(raw=raw, error=error):
            return [(f"⚠ invalid output line: {raw} ({error})", STYLE_INVALID)]
    return None


def render_plain(event: StreamEvent) -> str | None:
    """A human rendering for ``claudine logs``; None for events not worth showing."""
    parts = _parts(event)
    return None if parts is None else "".join(text for text, _ in parts)


def render_rich(event: StreamEvent) -> Text | None:
    """The same as :func:`render_plain`, styled for the console's log pane."""
    from rich.text import Text

    parts = _parts(event)
    if parts is None:
        return None
    text = Text()
    for chunk, style in parts:
        # append() never reads markup, so "[red]" in agent output stays literal.
        text.append(chunk, style=style or None)
    return text
