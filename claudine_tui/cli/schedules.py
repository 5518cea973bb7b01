"""``claudine schedule add|list|show|pause|resume|cancel``: schedules from scripts.

``create`` and ``get`` are accepted for ``add`` and ``show``, the words the original
claudine's users know. ``add`` takes delegate's task options for the template, checked by
the same validation; every wrong flag is named at once (exit status 2) and nothing is
stored. ``add`` and ``resume`` make sure an owner runs (a background ``claudine serve``,
which stays while a schedule is active) unless ``--no-serve``: only an owner fires.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import datetime
from typing import Any

from claudine_core.errors import InvalidRequest
from claudine_core.models import MergeStrategy, PermissionMode
from claudine_tui.cli.common import add_limit_options, ensure_owner, open_service
from claudine_tui.task_text import format_money

FIRES_ONLY_WITH_AN_OWNER = "the schedule fires only while a console or 'claudine serve' runs"

# The flag behind each of the schedule's own settings, to name it in errors (the
# template's fields are named by main.FLAGS, as delegate's are).
SCHEDULE_FLAGS = {"kind": "--cron/--at", "cron": "--cron", "run_at": "--at",
                  "timezone": "--timezone", "missed_run_policy": "--missed-run-policy",
                  "max_runs": "--max-runs", "expires_at": "--expires-at",
                  "after_schedule": "--after", "status": "--status"}
POLICIES = ("skip", "catchup", "fail")
STATUSES = ("active", "paused", "completed", "cancelled", "expired")


def add_parsers(sub: Any, handlers: dict[str, Callable[[argparse.Namespace], int]]) -> None:
    """Add the ``schedule`` command to the ``claudine`` parser and its handler to
    ``handlers``."""
    p = sub.add_parser(
        "schedule", help="create and manage schedules: tasks by cron or at a set time",
        description="A schedule creates a task from its template at each slot of a cron "
        "expression, or once at a set time. Only a running owner (console, headless MCP "
        "server or 'claudine serve') fires schedules.")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    _add_add(actions)

    q = actions.add_parser("list", help="schedules, newest first")
    q.add_argument("--status", "-s", choices=STATUSES, help="only schedules in this state")
    q.add_argument("--limit", "-n", type=int, default=50, help="rows (default 50)")
    q.add_argument("--offset", type=int, default=0, help="rows to skip")
    _add_json(q)

    q = actions.add_parser("show", aliases=["get"], help="one schedule and its history")
    q.add_argument("schedule", help="schedule id (full, short or unique prefix)")
    q.add_argument("--history", type=int, default=10, metavar="N",
                   help="show the last N firings (default 10)")
    _add_json(q)

    q = actions.add_parser("pause", help="stop a schedule firing until it is resumed")
    q.add_argument("schedule", help="schedule id")
    _add_json(q)

    q = actions.add_parser("resume", help="fire a paused schedule again from its next slot")
    q.add_argument("schedule", help="schedule id")
    q.add_argument("--no-serve", action="store_true",
                   help="do not start a background owner if none is running")
    _add_json(q)

    q = actions.add_parser("cancel", help="end a schedule (its tasks are left as they are)")
    q.add_argument("schedule", help="schedule id")
    q.add_argument("reason", nargs="?", help="why (recorded on the schedule)")
    _add_json(q)
    handlers["schedule"] = run


def _add_json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")


def _add_add(actions: Any) -> None:
    p = actions.add_parser(
        "add", aliases=["create"], help="create a schedule",
        description="Create a schedule: --cron for a recurring one, --at for a one-time one.")
    p.add_argument("prompt", help="what each task's agent should do")
    when = p.add_mutually_exclusive_group()
    when.add_argument("--cron", metavar="EXPR",
                      help="5-field cron expression, e.g. '0 9 * * 1-5' (minute hour "
                      "day-of-month month day-of-week)")
    when.add_argument("--at", metavar="TIME",
                      help="ISO 8601 time to run once, in the future, e.g. "
                      "2026-12-01T09:00 (read in --timezone without an offset)")
    p.add_argument("--timezone", "--tz", metavar="IANA",
                   help="time zone of --cron and --at, e.g. Europe/Paris (default UTC)")
    p.add_argument("--missed-run-policy", metavar="|".join(POLICIES),
                   help="slots missed while no owner ran: skip (default), catchup (a task "
                   "for each, up to 24) or fail (a failed execution for each)")
    p.add_argument("--max-runs", metavar="N", help="stop after N tasks")
    p.add_argument("--expires-at", metavar="TIME", help="ISO 8601 time after which it "
                   "fires no more")
    p.add_argument("--after", metavar="SCHEDULE",
                   help="each new task depends on that schedule's latest task")
    # The task template: delegate's options, checked by the same validation.
    p.add_argument("--priority", "-p", default="P2", help="P0 (urgent), P1 or P2 (default)")
    p.add_argument("--cwd", default=".", help="working directory of the agents (default: "
                   "here)")
    p.add_argument("--timeout", help="seconds before an agent is stopped")
    p.add_argument("--model", help="model for the agents (claude --model)")
    add_limit_options(p, each="each agent")
    p.add_argument("--permission-mode", metavar="|".join(m.value for m in PermissionMode),
                   help="how the agents get past permission prompts")
    p.add_argument("--allowed-tools", help="comma-separated tools for --permission-mode "
                   "allowedTools")
    p.add_argument("--max-output", help="bytes of agent output kept per task")
    isolation = p.add_mutually_exclusive_group()
    isolation.add_argument("--worktree", dest="worktree", action="store_const", const=True,
                           default=None, help="run each task in a new git worktree")
    isolation.add_argument("--no-worktree", dest="worktree", action="store_const",
                           const=False, help="run in --cwd itself")
    p.add_argument("--base", help="base branch for --worktree")
    p.add_argument("--merge", metavar="|".join(s.value for s in MergeStrategy),
                   help="what to do with each task's branch when it finishes")
    p.add_argument("--no-commit", dest="commit", action="store_false", default=None,
                   help="leave what a worktree agent did not commit uncommitted")
    p.add_argument("--depends-on", action="append", metavar="ID",
                   help="every task waits for task ID to complete (repeatable)")
    p.add_argument("--on-dependency-failure", metavar="fail|cancel|run",
                   help="when a dependency fails or is cancelled: fail, cancel, or run")
    p.add_argument("--no-serve", action="store_true",
                   help="do not start a background owner if none is running")
    _add_json(p)


def run(args: argparse.Namespace) -> int:
    action = {"create": "add", "get": "show"}.get(args.action, args.action)
    return ACTIONS[action](args)


def _template_values(args: argparse.Namespace) -> dict[str, Any]:
    """The task flags as raw values keyed by TaskSpec field (checked by the core)."""
    return {"prompt": args.prompt, "priority": args.priority, "cwd": args.cwd,
            "timeout_s": args.timeout, "model": args.model,
            "fallback_model": args.fallback_model, "max_budget_usd": args.max_budget_usd,
            "max_output_bytes": args.max_output, "permission_mode": args.permission_mode,
            "allowed_tools": args.allowed_tools, "worktree": args.worktree,
            "base_branch": args.base, "merge_strategy": args.merge,
            "commit_changes": args.commit, "depends_on": args.depends_on,
            "on_dependency_failure": args.on_dependency_failure}


def add(args: argparse.Namespace) -> int:
    service = open_service(args)
    try:
        try:
            schedule = service.schedules.create(
                _template_values(args), cron=args.cron, run_at=args.at,
                timezone=args.timezone, missed_run_policy=args.missed_run_policy,
                max_runs=args.max_runs, expires_at=args.expires_at,
                after_schedule=args.after)
        except InvalidRequest as exc:
            raise _named(exc) from None
        if not args.no_serve:
            ensure_owner(service.config, meanwhile=FIRES_ONLY_WITH_AN_OWNER)
    finally:
        service.close()
    if args.json:
        print(json.dumps(schedule.to_json()))
    else:
        print(schedule.id)
        print(f"next run: {_local(schedule.next_run_at, schedule.timezone)}",
              file=sys.stderr)
    return 0


def _named(exc: InvalidRequest) -> InvalidRequest:
    """The schedule's own problems named by flag; the template's keep their TaskSpec
    field, which the CLI's one error report names as delegate's."""
    if not exc.problems:
        return exc
    return InvalidRequest(problems={SCHEDULE_FLAGS.get(field, field): message
                                    for field, message in exc.problems.items()},
                          exit_status=exc.exit_status)



def list_schedules(args: argparse.Namespace) -> int:
    service = open_service(args)
    try:
        schedules = service.schedules.list(args.status, limit=max(1, args.limit),
                                           offset=max(0, args.offset))
    finally:
        service.close()
    if args.json:
        print(json.dumps([s.to_json() for s in schedules]))
        return 0
    if not schedules:
        print("no schedules" + (f" {args.status}" if args.status else "") +
              ": create one with 'claudine schedule add PROMPT --cron EXPR'")
        return 0
    rows = [("ID", "STATUS", "WHEN", "NEXT RUN", "RUNS", "PROMPT")]
    rows += [(s.short_id, s.status.value, _when(s), _local(s.next_run_at, s.timezone),
              _runs(s), _excerpt(s.template.prompt, 40)) for s in schedules]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False))
              + "  " + row[-1])
    return 0


def show(args: argparse.Namespace) -> int:
    service = open_service(args)
    try:
        schedule = service.schedules.get(args.schedule)
        history = service.schedules.history(schedule.id, max(0, args.history))
    finally:
        service.close()
    if args.json:
        print(json.dumps({**schedule.to_json(), "history": [e.to_json() for e in history]}))
        return 0
    zone = schedule.timezone
    lines = [
        f"schedule  {schedule.id}",
        f"status    {schedule.status.value}"
        + (f" ({schedule.cancel_reason})" if schedule.cancel_reason else ""),
        f"when      {_when(schedule)}",
        f"missed    {schedule.missed_run_policy.value}",
        f"next run  {_local(schedule.next_run_at, zone)}",
        f"last run  {_local(schedule.last_run_at, zone)}",
        f"runs      {_runs(schedule)}",
    ]
    if schedule.expires_at is not None:
        lines.append(f"expires   {_local(schedule.expires_at, zone)}")
    if schedule.after_schedule:
        lines.append(f"after     {schedule.after_schedule} (each task waits for its "
                     "latest task)")
    template = schedule.template
    lines.append(f"task      {template.priority} in {template.cwd}"
                 + (f", model {template.model}" if template.model else "")
                 + (f", fallback {template.fallback_model}" if template.fallback_model else "")
                 + (f", at most {format_money(template.max_budget_usd)}" if template.max_budget_usd
                    else "")
                 + (", worktree" if template.worktree else ""))
    lines.append(f"prompt    {_excerpt(template.prompt, 200)}")
    lines.append("history" + ("" if history else "   no firings yet"))
    for execution in history:
        task = f" {execution.task_id}" if execution.task_id else ""
        error = f": {execution.error}" if execution.error else ""
        lines.append(f"  {_local(execution.scheduled_for, zone)}  "
                     f"{execution.outcome.value}{task}{error}")
    print("\n".join(lines))
    return 0


def _command(args: argparse.Namespace, act: Callable[[Any], Any], verb: str,
             *, start_owner: bool = False) -> int:
    service = open_service(args)
    try:
        schedule = act(service.schedules)
        if start_owner and not getattr(args, "no_serve", False):
            ensure_owner(service.config, meanwhile=FIRES_ONLY_WITH_AN_OWNER)
    finally:
        service.close()
    if args.json:
        print(json.dumps(schedule.to_json()))
    else:
        print(f"{verb} {schedule.id} ({schedule.status.value}; next run "
              f"{_local(schedule.next_run_at, schedule.timezone)})")
    return 0


def pause(args: argparse.Namespace) -> int:
    return _command(args, lambda s: s.pause(args.schedule), "paused")


def resume(args: argparse.Namespace) -> int:
    return _command(args, lambda s: s.resume(args.schedule), "resumed", start_owner=True)


def cancel(args: argparse.Namespace) -> int:
    return _command(args, lambda s: s.cancel(args.schedule, args.reason), "cancelled")


ACTIONS: dict[str, Callable[[argparse.Namespace], int]] = {
    "add": add, "list": list_schedules, "show": show, "pause": pause, "resume": resume,
    "cancel": cancel,
}


# -- text ---------------------------------------------------------------------------------------


def _when(schedule: Any) -> str:
    if schedule.cron:
        return f"cron '{schedule.cron}' {schedule.timezone}"
    return f"once at {_local(schedule.run_at, schedule.timezone)}"


def _runs(schedule: Any) -> str:
    return f"{schedule.runs}/{schedule.max_runs}" if schedule.max_runs else str(schedule.runs)


def _local(epoch: float | None, zone_name: str) -> str:
    """A time in the schedule's zone, as people read it (``-`` for none)."""
    if epoch is None:
        return "-"
    from zoneinfo import ZoneInfo

    return datetime.fromtimestamp(epoch, ZoneInfo(zone_name)).strftime("%Y-%m-%d %H:%M %Z")


def _excerpt(text: str, width: int) -> str:
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1] + "…"
