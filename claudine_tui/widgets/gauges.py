"""The dashboard: CPU and memory gauges with history, agents running and tasks queued,
and, under them, one row per node when the agents run on a cluster (widgets/nodes.py),
the usage-limit pause and the spending against the budgets.

The figures are the ones the admission decision uses (the snapshot's resource sample,
threshold and reserve); the gauge marks the limit so a person sees why work waits. The
limits line shows only when there is something to say (a pause, parked tasks, a budget),
worded from the snapshot's ``taken_at``, so "in 38 min" counts down with each refresh.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.reactive import reactive
from textual.widget import Widget
from textual.widgets import Sparkline, Static

from claudine_core.models import EngineSnapshot
from claudine_tui.task_text import STATUS_GLYPHS, clock_time, format_money
from claudine_tui.widgets.bars import GIB, render_bar
from claudine_tui.widgets.nodes import NodeRows


class Gauge(Widget):
    """One gauge: a caption, a bar with its limit marked, and a sparkline of history."""

    DEFAULT_CSS = """
    Gauge { height: 2; width: 1fr; padding: 0 1; }
    Gauge > .gauge--bar { height: 1; }
    Gauge > Sparkline { height: 1; }
    """

    percent: reactive[float] = reactive(0.0)
    mark: reactive[float | None] = reactive(None)
    caption: reactive[str] = reactive("")
    short_caption: reactive[str] = reactive("")
    history: reactive[Sequence[float]] = reactive(tuple)

    def __init__(self, label: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.label = label
        self._shown: Text | None = None

    def compose(self) -> ComposeResult:
        yield Static(classes="gauge--bar")
        yield Sparkline([], summary_function=max).data_bind(data=Gauge.history)

    def _refresh_bar(self) -> None:
        if not self.is_mounted:
            return
        head = Text(f"{self.label} ", style="bold")
        tail = Text(f" {self.caption}")
        room = self.size.width - head.cell_len - tail.cell_len - 2
        if room < 8 and self.short_caption:  # narrow terminal: keep the bar readable
            tail = Text(f" {self.short_caption}")
            room = self.size.width - head.cell_len - tail.cell_len - 2
        line = Text.assemble(head, render_bar(self.percent, self.mark, room), tail)
        if line != self._shown:
            self._shown = line
            # One line high by CSS: a new text never changes the layout, so skip that pass.
            self.query_one(".gauge--bar", Static).update(line, layout=False)

    def watch_percent(self) -> None:
        self._refresh_bar()

    def watch_mark(self) -> None:
        self._refresh_bar()

    def watch_caption(self) -> None:
        self._refresh_bar()

    def on_resize(self) -> None:
        self._refresh_bar()


def agents_text(snapshot: EngineSnapshot) -> Text:
    """``Agents 3/8 · 5 queued`` and, when the next task waits, why."""
    cap = "∞" if snapshot.max_agents is None else str(snapshot.max_agents)
    text = Text.assemble(
        ("Agents ", "bold"), (f"{snapshot.running}/{cap}", "bold green"), " running · ",
        (str(snapshot.queued), "bold cyan"), " queued",
    )
    if snapshot.waiting_reason:
        # The admission decision words its reason as "waiting: ..." already.
        reason = _short_hold(snapshot, snapshot.waiting_reason)
        if not reason.startswith("waiting"):
            reason = f"waiting: {reason}"
        text.append(f"\n{reason}", style="yellow")
    elif snapshot.queued:
        text.append("\nadmitting", style="dim")
    else:
        text.append("\nidle" if not snapshot.running else "\nall admitted", style="dim")
    return text


def _short_hold(snapshot: EngineSnapshot, reason: str) -> str:
    """The agents box is narrow: a pause or a budget is said in full on the limits line,
    so here it is only named."""
    if snapshot.pause is not None and reason.startswith("paused"):
        return "waiting: usage-limit pause"
    if snapshot.budget is not None and reason == snapshot.budget.reached():
        return "waiting: " + reason.split(":", 1)[0]  # "daily budget reached"
    return reason


def pause_text(snapshot: EngineSnapshot) -> Text:
    """The pause with the parked count (``◷ paused: usage limit reached (five-hour) until
    14:05, in 38 min · 2 parked (u: unpark)``), the parked tasks alone when the home is
    not paused, or nothing."""
    glyph = STATUS_GLYPHS["parked"]
    now, pause = snapshot.taken_at, snapshot.pause
    # The key is off the footer (no room): named here, where a person looks for it.
    parked = f" · {snapshot.parked} parked (u: unpark)" if snapshot.parked else ""
    if pause is not None and pause.until > now:
        return Text(f"{glyph} {pause.describe(now)}{parked}", style="bold yellow")
    if pause is not None:  # the owner releases them at its next pass
        return Text(f"{glyph} usage limit reset at {clock_time(pause.until, now)}: "
                    f"parked tasks go on first{parked}", style="bold bright_blue")
    if snapshot.parked:
        return Text(f"{glyph} {snapshot.parked} parked (u: unpark)", style="bold bright_blue")
    return Text()


def budget_text(snapshot: EngineSnapshot) -> Text:
    """``$1.23 of $5.00 today · $12.40 of $100.00 this month``; once a budget is reached,
    the owner's reason instead, in red (no new agent starts). Empty with no budget set."""
    budget = snapshot.budget
    if budget is None:
        return Text()
    reached = budget.reached()
    if reached:
        return Text(f"⛔ {reached}", style="bold red")
    spent = []
    if budget.daily_budget_usd is not None:
        spent.append(f"{format_money(budget.today_usd)} of "
                     f"{format_money(budget.daily_budget_usd)} today")
    if budget.monthly_budget_usd is not None:
        spent.append(f"{format_money(budget.month_usd)} of "
                     f"{format_money(budget.monthly_budget_usd)} this month")
    return Text(" · ".join(spent), style="green")


def limits_text(snapshot: EngineSnapshot) -> Text:
    """The limits line: the pause (or parked tasks) and the budget, either may be empty."""
    parts = [part for part in (pause_text(snapshot), budget_text(snapshot)) if part]
    return Text(" · ").join(parts)


class Dashboard(Vertical):
    """Gauges across the top of the screen; the limits line under them when it has news."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._agents: Text | None = None
        self._limits: Text | None = None

    def compose(self) -> ComposeResult:
        with Horizontal(id="gauges"):
            yield Gauge("CPU", id="cpu-gauge")
            yield Gauge("MEM", id="mem-gauge")
            yield Static(id="agents")
        yield NodeRows(id="nodes")  # agents on a cluster: one row per node
        yield Static(id="limits")

    def on_mount(self) -> None:
        self.query_one("#limits").display = False

    def show(self, snapshot: EngineSnapshot) -> None:
        cpu = self.query_one("#cpu-gauge", Gauge)
        mem = self.query_one("#mem-gauge", Gauge)
        sample = snapshot.resources
        if sample is not None:
            cpu.percent = sample.cpu_percent
            cpu.short_caption = f"{sample.cpu_percent:.0f}%"
            cpu.caption = f"{sample.cpu_percent:.0f}% (max {snapshot.cpu_threshold:g}%)"
            total = max(sample.memory_total, 1)
            mem.percent = (total - sample.memory_available) / total * 100
            free, reserve = sample.memory_available / GIB, snapshot.memory_reserve / GIB
            mem.short_caption = f"{free:.1f}G"
            mem.caption = f"{free:.1f}G free (keep {reserve:.1f}G)"
            mem.mark = max(0.0, (total - snapshot.memory_reserve) / total * 100)
        cpu.mark = snapshot.cpu_threshold
        cpu.history = tuple(snapshot.cpu_history)
        mem.history = tuple(snapshot.memory_history)
        agents = agents_text(snapshot)
        if agents != self._agents:
            self._agents = agents
            # A fixed size by CSS (#agents): no layout pass, which would redraw everything.
            self.query_one("#agents", Static).update(agents, layout=False)
        self.query_one(NodeRows).show(snapshot.nodes)
        self._show_limits(limits_text(snapshot))

    def _show_limits(self, limits: Text) -> None:
        if limits == self._limits:
            return  # the usual case: a tick with no new minute and no new spending
        line = self.query_one("#limits", Static)
        # With a layout pass (the line may come, go or wrap anew); this happens once a
        # minute at most while paused, and when the spending moves.
        line.update(limits)
        line.display = bool(limits)
        self._limits = limits
