"""The running summary of one agent that the screens show, folded from its output.

:meth:`StreamSummary.update_from_lines` is the fast path the owner uses for every agent: it
parses only the lines that can change the summary.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from claudine_core.agents.stream_events import (
    ACTIVITY_LIMIT,
    AgentInit,
    AgentResult,
    ApiRetry,
    AssistantText,
    InvalidLine,
    ModelFallback,
    RateLimitEvent,
    StreamEvent,
    ToolUse,
    clip,
    last_line,
)
from claudine_core.agents.stream_parse import parse_line

# Compact JSON with ``type`` first, as the CLI writes it; the comma closes the value, so a
# prefix names the type exactly (an escaped or spaced spelling just misses the fast path).
_ASSISTANT_PREFIX = b'{"type":"assistant",'
_SKIP_PREFIXES = (b'{"type":"user",', b'{"type":"stream_event",')  # no summary case
# A JSON string token, never text inside a string (there a quote is written \"): any line
# with a tool_use block has it, whatever the spacing (a stop_reason costs a parse, no more).
_TOOL_USE = b'"tool_use"'


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
        # What the stream said about a usage limit (claudine_core.usage_limits): the
        # reset of the last rejected rate_limit_event, the delay of the last 429 retry.
        self.usage_resets_at: float | None = None
        self.usage_limit_type: str | None = None
        self.rate_limit_retry_s: float | None = None
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
            self.usage_resets_at,
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
            if any(last_line(e.text) for e in texts):
                break
        return changed

    def _apply(self, event: StreamEvent) -> None:
        match event:
            case AgentInit():
                self._start_run(event)
            case AssistantText(text=text):
                self.last_activity = last_line(text) or self.last_activity
                self._estimate_turns()
            case ToolUse(name=name, summary=summary):
                self.tool_uses += 1
                self._run_tool_uses += 1
                self.last_activity = clip(f"{name}: {summary}" if summary else name, ACTIVITY_LIMIT)
                self._estimate_turns()
            case ApiRetry():
                self.api_retries += 1
                self.last_activity = _retry_activity(event)
                if event.error_status == 429 and event.retry_delay_ms is not None:
                    self.rate_limit_retry_s = event.retry_delay_ms / 1000
            case ModelFallback(fallback_model=model):
                self.model = model or self.model
                self.last_activity = f"switched to {model}" if model else self.last_activity
            case RateLimitEvent(status="rejected"):
                self.usage_resets_at = event.resets_at
                self.usage_limit_type = event.limit_type
                self.last_activity = "usage limit reached"
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
            self.usage_resets_at = self.usage_limit_type = self.rate_limit_retry_s = None

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
