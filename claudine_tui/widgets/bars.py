"""A gauge's bar: the dashboard's CPU and memory gauges and the per-node rows draw it."""

from __future__ import annotations

from rich.text import Text

GIB = 1024**3


def render_bar(percent: float, mark: float | None, width: int) -> Text:
    """A bar ``width`` cells wide filled to ``percent``, with the limit drawn as ``┃``."""
    width = max(1, width)
    filled = round(min(max(percent, 0.0), 100.0) / 100 * width)
    mark_at = None if mark is None else min(width - 1, round(mark / 100 * width))
    over = mark is not None and percent > mark
    bar = Text()
    for cell in range(width):
        if cell == mark_at:
            bar.append("┃", style="bold yellow")
        elif cell < filled:
            bar.append("█", style="red" if over else "green")
        else:
            bar.append("░", style="dim")
    return bar
