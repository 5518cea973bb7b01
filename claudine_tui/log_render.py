"""An agent's stream events as ``rich`` text, for the console's log pane.

The same (text, style) parts as the plain form of ``claudine logs`` and TaskLogs
(:func:`claudine_core.agents.log_text.event_parts`), styled here so that the core never
imports rich.
"""

from __future__ import annotations

from rich.text import Text

from claudine_core.agents.log_text import event_parts
from claudine_core.agents.stream_events import StreamEvent


def render_rich(event: StreamEvent) -> Text | None:
    """The event as styled text; None for events not worth showing (as in the plain form)."""
    parts = event_parts(event)
    if parts is None:
        return None
    text = Text()
    for chunk, style in parts:
        # append() never reads markup, so "[red]" in agent output stays literal.
        text.append(chunk, style=style or None)
    return text
