"""``claudine release`` and ``claudine costs``, and what ``status`` says about the home's
usage-limit pause and its budgets.

A usage limit parks the task it stopped and pauses the home until the reset (see
claudine_core.usage_limits); ``release ID`` lets one parked task go on now, ``release
--all`` lifts the pause and lets every parked task go on. ``costs`` totals what the agents
reported spending, per day and per working directory, against the daily and monthly
budgets (claudine_core.spending).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from typing import Any

from claudine_core.errors import InvalidTransition
from claudine_core.models import Task, TaskState
from claudine_tui.cli.common import CommandError, ensure_owner, open_service
from claudine_tui.task_text import format_money, parked_text

DEFAULT_DAYS = 30
MAX_DAYS = 36_600  # a century: further back than any ledger, short of date arithmetic's end


def add_parsers(sub: Any, handlers: dict[str, Callable[[argparse.Namespace], int]]) -> None:
    """Add ``release`` and ``costs`` to the ``claudine`` parser and their handlers."""
    p = sub.add_parser(
        "release", help="let parked tasks go on now, before a usage limit resets",
        description="A task a usage limit stopped is parked until the limit resets, and "
        "the home starts no new agent until then. 'release ID' lets that task continue "
        "its session now (the home stays paused for the others); 'release --all' lifts "
        "the pause and lets every parked task go on.")
    p.add_argument("tasks", nargs="*", metavar="ID", help="parked task ids (full, short "
                   "or unique prefix)")
    p.add_argument("--all", action="store_true",
                   help="lift the home's pause and release every parked task")
    p.add_argument("--json", action="store_true",
                   help="print the released tasks as a JSON array")
    handlers["release"] = release

    p = sub.add_parser(
        "costs", help="what the agents spent, per day and per directory, and the budgets",
        description="What the agents reported spending (every attempt of every task), "
        "per day and per working directory, and today's and this month's spending "
        "against the daily_budget_usd and monthly_budget_usd settings.")
    p.add_argument("--days", type=int, default=DEFAULT_DAYS, metavar="N",
                   help=f"the last N days, today included (default {DEFAULT_DAYS})")
    p.add_argument("--json", action="store_true", help="print JSON for scripts")
    handlers["costs"] = costs


# -- release ---------------------------------------------------------------------------------


def release(args: argparse.Namespace) -> int:
    """Print each released task's id (``--json``: a JSON array of the tasks)."""
    if args.all and args.tasks:
        raise CommandError("--all releases every parked task: give it no ids", 2)
    if not args.all and not args.tasks:
        raise CommandError("give the ids of the parked tasks to release, or --all "
                           "('claudine status --status parked' lists them)", 2)
    service = open_service(args)
    try:
        if args.all:
            paused = service.usage_pause() is not None
            released = [service.get(task_id) for task_id in service.release_all()]
            note = _all_note(len(released), paused)
        else:
            # Every id checked before any is released: a typo releases nothing.
            parked = [_parked(service, ref) for ref in dict.fromkeys(args.tasks)]
            released = [service.release(task.id) for task in parked]
            note = "it continues its session now, before the queue"
            if service.usage_pause() is not None:
                note += "; the home stays paused"
        if released or args.all:
            ensure_owner(service.config, meanwhile="released tasks wait until a console or "
                         "'claudine serve' runs")
    finally:
        service.close()
    _print_released(released, args.json, note)
    return 0


def _parked(service: Any, ref: str) -> Task:
    task = service.get(ref)  # UnknownTask names the id
    if task.status is not TaskState.PARKED:
        raise InvalidTransition(f"task {task.short_id} is {task.status.value}: only a parked "
                                "task can be released ('claudine status --status parked' "
                                "lists them)")
    return task


def _all_note(count: int, paused: bool) -> str:
    lifted = "the pause is lifted" if paused else "the home was not paused"
    if not count:
        return f"no task was parked; {lifted}"
    tasks = "1 parked task continues" if count == 1 else f"{count} parked tasks continue"
    return f"{lifted}; {tasks} first, then the queue"


def _print_released(tasks: list[Task], as_json: bool, note: str) -> None:
    """Bare ids on stdout, one a line (or a JSON array); the note for a person on stderr,
    only when that is a terminal, as the other task commands do."""
    if as_json:
        print(json.dumps([task.to_json() for task in tasks]))
    else:
        for task in tasks:
            print(task.id)
    if note and sys.stderr.isatty():
        print(f"({note})", file=sys.stderr)


# -- costs -----------------------------------------------------------------------------------


def costs(args: argparse.Namespace) -> int:
    if not 1 <= args.days <= MAX_DAYS:
        raise CommandError(f"--days: {args.days} days: give 1 to {MAX_DAYS}", 2)
    service = open_service(args)
    try:
        report = service.costs(args.days)
    finally:
        service.close()
    if args.json:
        print(json.dumps(report.to_json()))
        return 0
    print("\n".join(cost_lines(report)))
    return 0


def cost_lines(report: Any) -> list[str]:
    """``claudine costs`` as text: the total, per day, per directory, then the budgets."""
    days = "today" if report.first_day == report.last_day else \
        f"{report.first_day} to {report.last_day}"
    lines = [f"spent {days}: {format_money(report.total_usd)}"]
    if not report.by_day:
        lines[0] += " (no agent reported a cost)"
    else:
        lines.append("by day:")
        lines += _table(report.by_day)
        lines.append("by directory:")
        lines += _table(report.by_directory)
    lines.append(budget_line(report.budget, always=True))
    return lines


def _table(lines: Any) -> list[str]:
    width = max(len(line.key) for line in lines)
    money = max(len(format_money(line.cost_usd)) for line in lines)
    return [f"  {line.key:{width}}  {format_money(line.cost_usd):>{money}}  "
            f"{line.tasks} task{'s' if line.tasks != 1 else ''}" for line in lines]


def budget_line(budget: Any, *, always: bool = False) -> str:
    """Today's and this month's spending against the budgets; when one is reached, what
    that means (no new agent starts) instead. ``always``: a line even with no budget set."""
    reached = budget.reached()
    if reached:
        return f"budget: {reached}"
    daily, monthly = budget.daily_budget_usd, budget.monthly_budget_usd
    if daily is None and monthly is None:
        return (f"budget: no budget set (daily_budget_usd, monthly_budget_usd): "
                f"{format_money(budget.today_usd)} today, {format_money(budget.month_usd)} "
                "this month") if always else ""
    return (f"budget: {_against(budget.today_usd, daily, 'today', 'daily')} · "
            f"{_against(budget.month_usd, monthly, 'this month', 'monthly')}")


def _against(spent: float, limit: float | None, when: str, kind: str) -> str:
    if limit is None:
        return f"{format_money(spent)} {when} (no {kind} budget)"
    return f"{format_money(spent)} of {format_money(limit)} {when}"


# -- status ----------------------------------------------------------------------------------


def usage_pause(service: Any) -> Any:
    """The home's usage-limit pause (a HomePause), or None."""
    return service.usage_pause()


def home_lines(service: Any, now: float | None = None) -> list[str]:
    """What ``status`` says first about the home: its usage-limit pause (with the count
    of parked tasks) and, when a budget is set, the spending against it."""
    now = time.time() if now is None else now
    lines = []
    parked = service.count_by_status().get(TaskState.PARKED, 0)
    pause = usage_pause(service)
    if pause is not None:
        line = pause.describe(now)
        if pause.until <= now:
            line += " (the limit has reset: the parked tasks go on once an owner runs)"
        lines.append(line + (f" · {parked} parked" if parked else ""))
    elif parked:
        lines.append(f"{parked} task{'s' if parked != 1 else ''} parked after a usage limit")
    config = service.config
    if config.daily_budget_usd is not None or config.monthly_budget_usd is not None:
        lines.append(budget_line(service.budget(now)))
    return lines


def home_json(service: Any, now: float | None = None) -> dict[str, Any]:
    """The pause and the budget for ``status ID --json`` (null when none)."""
    now = time.time() if now is None else now
    pause = usage_pause(service)
    config = service.config
    budgeted = config.daily_budget_usd is not None or config.monthly_budget_usd is not None
    return {"usage_pause": pause.to_json() if pause is not None else None,
            "budget": service.budget(now).to_json() if budgeted else None}


def parked_reason(task: Task, now: float | None = None) -> str | None:
    """Why a parked task waits, where ``status ID`` puts a waiting reason: ``until 14:05 ·
    usage limit reached (five-hour); 'claudine release 1a2b3c4d' starts it now``; None
    for a task that is not parked."""
    if task.status is not TaskState.PARKED:
        return None
    now = time.time() if now is None else now
    return f"{parked_text(task, now)}; 'claudine release {task.short_id}' starts it now"
