"""What the agents spent: the last 30 days per day and per working directory, and the budget.

Opened with ``$`` from the task table; Escape closes it. The figures come from
``service.costs`` (the cost ledger behind ``claudine costs``): what each attempt's agent
reported, so a retried or parked-and-resumed task counts in full. It is read once when the
view opens; a running agent's cost grows at the end of each of its turns, and ``r`` reads
again.
"""

from __future__ import annotations

from collections.abc import Callable

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Label, Static

from claudine_core.errors import ClaudineError
from claudine_core.spending import Budget, CostLine, CostReport
from claudine_tui.task_text import format_money
from claudine_tui.widgets.footer import KeyFooter

COST_DAYS = 30
NONE_SPENT = "nothing spent"


def budget_lines(budget: Budget) -> Text:
    """Today's and this month's spending, each against its budget when one is set; once
    one is reached, the owner's reason in red."""
    def against(spent: float, limit: float | None, when: str, setting: str) -> str:
        if limit is None:
            return f"{format_money(spent)} {when} (no {setting})"
        return f"{format_money(spent)} of {format_money(limit)} {when}"

    text = Text.assemble(
        ("Budget  ", "bold"),
        against(budget.today_usd, budget.daily_budget_usd, "today", "daily_budget_usd"),
        " · ",
        against(budget.month_usd, budget.monthly_budget_usd, "this month",
                "monthly_budget_usd"),
    )
    reached = budget.reached()
    if reached:
        text.append(f"\n⛔ {reached}", style="bold red")
    return text


class CostTable(DataTable[str | Text]):
    """One column of keys (days or directories), their cost and how many tasks."""

    def __init__(self, key_label: str, *, id: str | None = None) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, id=id)
        self.key_label = key_label

    def on_mount(self) -> None:
        self.add_column(self.key_label, key="key")
        self.add_column("Cost", key="cost")
        self.add_column("Tasks", key="tasks")

    def show(self, lines: tuple[CostLine, ...]) -> None:
        self.clear()
        for line in lines:
            self.add_row(Text(line.key), Text(format_money(line.cost_usd), justify="right"),
                         Text(str(line.tasks), justify="right"), key=line.key)


class CostsScreen(Screen[None]):
    """The cost report of the last :data:`COST_DAYS` days.

    Args:
        costs: ``service.costs`` (days -> CostReport).
    """

    BINDINGS = [
        Binding("r", "reload", "Read again"),
        Binding("escape", "close", "Back"),
    ]

    def __init__(self, costs: Callable[[int], CostReport]) -> None:
        super().__init__()
        self.costs = costs
        self.report: CostReport | None = None

    def compose(self) -> ComposeResult:
        yield Label(f"Costs · last {COST_DAYS} days", id="costs-title")
        yield Static(id="costs-summary")
        with Horizontal(id="costs-tables"):
            with Vertical(id="costs-by-day"):
                yield CostTable("Day", id="by-day")
            with Vertical(id="costs-by-dir"):
                yield CostTable("Working directory", id="by-directory")
        yield KeyFooter(keep=("reload", "close", "toggle_help"))

    def on_mount(self) -> None:
        self.query_one("#by-day", CostTable).border_title = "Per day"
        self.query_one("#by-directory", CostTable).border_title = "Per directory"
        self.action_reload()
        self.query_one("#by-day", CostTable).focus()

    def action_reload(self) -> None:
        try:
            report = self.costs(COST_DAYS)
        except ClaudineError as exc:  # the store unreadable, say: said, not a crash
            self.notify(exc.message, severity="error", timeout=6)
            return
        self.report = report
        summary = Text.assemble(
            ("Total  ", "bold"), format_money(report.total_usd) if report.by_day else NONE_SPENT,
            f"  ({report.first_day} to {report.last_day})\n")
        summary.append_text(budget_lines(report.budget))
        self.query_one("#costs-summary", Static).update(summary)
        # Newest day first: today is what one looks for.
        self.query_one("#by-day", CostTable).show(tuple(reversed(report.by_day)))
        self.query_one("#by-directory", CostTable).show(report.by_directory)

    def action_close(self) -> None:
        self.dismiss(None)
