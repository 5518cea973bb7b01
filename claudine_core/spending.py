"""What the home's agents spent: the ledger behind budgets and ``claudine costs``.

Agents report their cost themselves (the ``total_cost_usd`` of each ``result`` line; with
several turns in one run it is the run's total so far). The owner writes the latest figure
of each attempt to the ``spend`` table (migration v10): one row per attempt, on the local
day that attempt started. A task's own ``cost_usd`` is its current attempt's; the ledger
keeps every attempt's, so a retried or parked-and-resumed task is counted in full.

Budgets (``daily_budget_usd``, ``monthly_budget_usd``) compare the sum of a day's or a
month's rows with the setting. A run's cost is known only at the end of each of its turns,
so a budget is a stop for new work, not a hard cap: agents already running may go past it
(``budget_stop`` stops them once it is reached; a task's own ``--max-budget-usd`` is
enforced by its agent).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import peewee

from claudine_core.errors import StoreError
from claudine_core.store.db import describe_sqlite_error

# The attempt's start day in the owner's local time; SQLite's 'localtime' and Python's
# datetime.fromtimestamp both follow the process's TZ, so the two agree.
_RECORD = (
    "INSERT INTO spend (task_id, attempt, day, cwd, cost_usd, updated_at) "
    "SELECT id, attempt, date(COALESCE(started_at, created_at), 'unixepoch', 'localtime'), "
    "cwd, ?, ? FROM task WHERE id = ? "
    "ON CONFLICT (task_id, attempt) DO UPDATE SET cost_usd = excluded.cost_usd, "
    "updated_at = excluded.updated_at"
)


def local_day(epoch: float) -> str:
    """``YYYY-MM-DD`` of ``epoch`` in local time."""
    return datetime.fromtimestamp(epoch).date().isoformat()


def next_midnight(epoch: float) -> float:
    """When the local day of ``epoch`` ends."""
    day = datetime.fromtimestamp(epoch).date() + timedelta(days=1)
    return datetime(day.year, day.month, day.day).timestamp()


def next_month_start(epoch: float) -> float:
    """When the local month of ``epoch`` ends."""
    today = datetime.fromtimestamp(epoch).date()
    first = date(today.year + today.month // 12, today.month % 12 + 1, 1)
    return datetime(first.year, first.month, first.day).timestamp()


@dataclass(frozen=True)
class CostLine:
    """What was spent on one day or in one working directory."""

    key: str  # the day (YYYY-MM-DD) or the directory
    cost_usd: float
    tasks: int  # tasks with a cost in it

    def to_json(self, key_name: str) -> dict[str, Any]:
        return {key_name: self.key, "cost_usd": round(self.cost_usd, 6), "tasks": self.tasks}


@dataclass(frozen=True)
class Budget:
    """The home's spending against its budgets, at one instant."""

    today_usd: float
    month_usd: float
    daily_budget_usd: float | None
    monthly_budget_usd: float | None
    now: float

    def reached(self) -> str | None:
        """Why no new agent may start (a budget is spent), or None."""
        if self.daily_budget_usd is not None and self.today_usd >= self.daily_budget_usd:
            return (f"daily budget reached: ${self.today_usd:.2f} of "
                    f"${self.daily_budget_usd:.2f} spent today; new agents start after "
                    f"midnight ({_clock(next_midnight(self.now))}) or when the budget is "
                    "raised (daily_budget_usd)")
        if self.monthly_budget_usd is not None and self.month_usd >= self.monthly_budget_usd:
            return (f"monthly budget reached: ${self.month_usd:.2f} of "
                    f"${self.monthly_budget_usd:.2f} spent this month; new agents start "
                    f"on {local_day(next_month_start(self.now))} or when the budget is "
                    "raised (monthly_budget_usd)")
        return None

    def to_json(self) -> dict[str, Any]:
        return {"today_usd": round(self.today_usd, 6), "month_usd": round(self.month_usd, 6),
                "daily_budget_usd": self.daily_budget_usd,
                "monthly_budget_usd": self.monthly_budget_usd, "reached": self.reached()}


def _clock(epoch: float) -> str:
    return datetime.fromtimestamp(epoch).strftime("%Y-%m-%d %H:%M")


class SpendLedger:
    """The ``spend`` table of one home.

    Args:
        db: the home's database (migrated to v10 or later).
        on_write: called for each commit, so the store's version moves for its owner.
    """

    def __init__(self, db: peewee.SqliteDatabase, on_write: Callable[[], None]) -> None:
        self.db = db
        self.on_write = on_write

    def record(self, costs: Mapping[str, float], now: float) -> None:
        """Set the cost of each task's current attempt (task id -> cost so far)."""
        if not costs:
            return
        self.on_write()
        try:
            with self.db.atomic():
                for task_id, cost in costs.items():
                    self.db.execute_sql(_RECORD, (float(cost), now, task_id))
        except (peewee.OperationalError, peewee.DatabaseError) as exc:
            raise StoreError(describe_sqlite_error(exc, self.db.database)) from exc

    def spent(self, first_day: str, last_day: str) -> float:
        """Total cost of the attempts started from ``first_day`` to ``last_day``."""
        row = self._query("SELECT COALESCE(SUM(cost_usd), 0) FROM spend "
                          "WHERE day BETWEEN ? AND ?", (first_day, last_day))
        return float(row[0][0])

    def budget(self, now: float, daily: float | None, monthly: float | None) -> Budget:
        today = local_day(now)
        return Budget(
            today_usd=self.spent(today, today),
            month_usd=self.spent(today[:8] + "01", today),
            daily_budget_usd=daily, monthly_budget_usd=monthly, now=now,
        )

    def by_day(self, first_day: str, last_day: str) -> list[CostLine]:
        rows = self._query(
            "SELECT day, SUM(cost_usd), COUNT(DISTINCT task_id) FROM spend "
            "WHERE day BETWEEN ? AND ? GROUP BY day ORDER BY day", (first_day, last_day))
        return [CostLine(str(day), float(cost), int(n)) for day, cost, n in rows]

    def by_directory(self, first_day: str, last_day: str) -> list[CostLine]:
        rows = self._query(
            "SELECT cwd, SUM(cost_usd), COUNT(DISTINCT task_id) FROM spend "
            "WHERE day BETWEEN ? AND ? GROUP BY cwd ORDER BY SUM(cost_usd) DESC, cwd",
            (first_day, last_day))
        return [CostLine(str(cwd), float(cost), int(n)) for cwd, cost, n in rows]

    def _query(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        try:
            return list(self.db.execute_sql(sql, params).fetchall())
        except (peewee.OperationalError, peewee.DatabaseError) as exc:
            raise StoreError(describe_sqlite_error(exc, self.db.database)) from exc


@dataclass(frozen=True)
class CostReport:
    """``claudine costs``: what was spent from one day to another, per day and directory."""

    first_day: str
    last_day: str
    by_day: tuple[CostLine, ...]
    by_directory: tuple[CostLine, ...]
    budget: Budget

    @property
    def total_usd(self) -> float:
        return sum(line.cost_usd for line in self.by_day)

    def to_json(self) -> dict[str, Any]:
        return {
            "from": self.first_day, "to": self.last_day, "total_usd": round(self.total_usd, 6),
            "by_day": [line.to_json("day") for line in self.by_day],
            "by_directory": [line.to_json("cwd") for line in self.by_directory],
            "budget": self.budget.to_json(),
        }


def cost_report(ledger: SpendLedger, budget: Budget, days: int) -> CostReport:
    """The last ``days`` local days, today included."""
    last = datetime.fromtimestamp(budget.now).date()
    first = (last - timedelta(days=days - 1)).isoformat()
    return CostReport(first, last.isoformat(), tuple(ledger.by_day(first, last.isoformat())),
                      tuple(ledger.by_directory(first, last.isoformat())), budget)
