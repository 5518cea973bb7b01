"""Events as text: one list of (text, style) parts per event, and its plain form.

The parts are the one rendering of an event: :func:`render_plain` joins them for
``claudine logs`` and the MCP TaskLogs tool; the console styles the same parts with
``rich`` (``claudine_tui.log_render``), so the core never imports a rendering library.
"""

from __future__ import annotations

from datetime import datetime

from claudine_core.agents.stream_events import (
    AgentInit,
    AgentResult,
    ApiRetry,
    AssistantText,
    InvalidLine,
    ModelFallback,
    RateLimitEvent,
    StreamEvent,
    ToolResult,
    ToolUse,
    UserText,
    clip,
    last_line,
)

RENDER_RESULT_LINES = 5
LIMIT_STATUS = 429  # a run that ends on it is parked, not failed (usage_limits.py)

Parts = list[tuple[str, str]]

STYLE_TOOL = "bold cyan"
STYLE_TOOL_OUTPUT = "dim"
STYLE_ERROR = "red"
STYLE_RETRY = "yellow"
STYLE_OK = "green"
STYLE_FAILED = "bold red"
STYLE_INIT = "dim"
STYLE_INVALID = "yellow"
STYLE_USER = "bold magenta"


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
        part for part in (str(event.error_status or ""), clip(event.error or "", 100)) if part
    )
    if reason:
        text += f" ({reason})"
    if event.retry_delay_ms is not None:
        text += f" in {format_duration(event.retry_delay_ms)}"
    return [(text, STYLE_RETRY)]


def _rate_limit_parts(event: RateLimitEvent) -> Parts | None:
    """A rejected limit is worth a line (the run ends on it); "allowed" ones are not."""
    if event.status != "rejected":
        return None
    window = f" ({event.limit_type.replace('_', '-')})" if event.limit_type else ""
    resets = ""
    if event.resets_at is not None:
        resets = " · resets " + datetime.fromtimestamp(event.resets_at).strftime("%Y-%m-%d %H:%M")
    return [(f"◷ usage limit reached{window}{resets}", STYLE_RETRY)]


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
    detail = last_line(event.result or "")
    if detail:
        reasons.append(detail)
    return reasons or ["error"]


def _result_parts(event: AgentResult) -> Parts:
    stats = _result_stats(event)
    if event.ok:
        took = f" in {format_duration(event.duration_ms)}" if event.duration_ms is not None else ""
        return [(" · ".join([f"■ completed{took}", *stats]), STYLE_OK)]
    duration = [format_duration(event.duration_ms)] if event.duration_ms is not None else []
    if event.api_error_status == LIMIT_STATUS:
        # Not a failure: the owner parks the task until the limit resets.
        head = "■ stopped by a usage limit: " + " · ".join(_failure_reason(event)[1:] or ["429"])
        return [(" · ".join([head, *duration, *stats]), STYLE_RETRY)]
    head = "■ failed: " + " · ".join(_failure_reason(event))
    return [(" · ".join([head, *duration, *stats]), STYLE_FAILED)]


def event_parts(event: StreamEvent) -> Parts | None:
    """The (text, style) parts of ``event``; None for events not worth showing.

    A style is a ``rich`` style string ("" for none): plain text drops it.
    """
    match event:
        case AgentInit():
            return _init_parts(event)
        case AssistantText(text=text):
            return [(text, "")] if text.strip() else None
        case UserText(text=text):
            return [("you: ", STYLE_USER), (text, "")] if text.strip() else None
        case ToolUse():
            return _tool_use_parts(event)
        case ToolResult():
            return _tool_result_parts(event)
        case ApiRetry():
            return _retry_parts(event)
        case RateLimitEvent():
            return _rate_limit_parts(event)
        case ModelFallback(fallback_model=model, text=text):
            return [(f"↯ {text or f'switched to the fallback model {model}'}", STYLE_RETRY)]
        case AgentResult():
            return _result_parts(event)
        case InvalidLine(raw=raw, error=error):
            return [(f"⚠ invalid output line: {raw} ({error})", STYLE_INVALID)]
    return None


def render_plain(event: StreamEvent) -> str | None:
    """A human rendering for ``claudine logs``; None for events not worth showing."""
    parts = event_parts(event)
    return None if parts is None else "".join(text for text, _ in parts)
