"""``claudine worktrees [list|clean|merge|patch|pr|discard|diff] [TASK] [--force] [--json]``.

Git work happens in this process (it is a client like every script command); outcomes are
stored on the task, so ``claudine status`` and the console show them.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

from claudine_tui.cli.common import CommandError, open_service
from claudine_tui.cli.common import guard as _guard
from claudine_tui.task_text import describe_merge as describe

ACTIONS = ("list", "clean", "merge", "patch", "pr", "discard", "diff")


def add_parsers(sub: Any, handlers: dict[str, Callable[[argparse.Namespace], int]]) -> None:
    p = sub.add_parser(
        "worktrees",
        help="list, merge, export, open PRs for, or remove task worktrees",
        description="Without arguments lists the worktrees of worktree tasks and their state. "
        "clean removes those of finished tasks that hold no unmerged or uncommitted work; "
        "merge/patch/pr/discard/diff act on one finished task.",
    )
    p.add_argument("action", nargs="?", default="list", choices=ACTIONS)
    p.add_argument("task", nargs="?", help="task id (merge, patch, pr, discard, diff; "
                   "optional for clean)")
    p.add_argument("--force", action="store_true",
                   help="clean/discard even with unmerged commits or uncommitted changes")
    p.add_argument("--stat", action="store_true",
                   help="diff: a diffstat (files and lines changed) instead of the diff")
    p.add_argument("--json", action="store_true", help="print JSON for scripts")
    handlers["worktrees"] = run


# The flags that mean something to some actions only; given to another, a usage error.
_FLAG_ACTIONS = {"force": ("clean", "discard"), "stat": ("diff",)}


def _check_usage(args: argparse.Namespace) -> None:
    if args.action in ("merge", "patch", "pr", "discard", "diff") and not args.task:
        raise CommandError(f"'claudine worktrees {args.action}' needs a task id", 2)
    if args.action == "list" and args.task:
        raise CommandError("'claudine worktrees list' takes no task id: give an action, "
                           "e.g. 'claudine worktrees diff ID'", 2)
    for flag, actions in _FLAG_ACTIONS.items():
        if getattr(args, flag) and args.action not in actions:
            only = " and ".join(f"'worktrees {a}'" for a in actions)
            raise CommandError(f"--{flag} only applies to {only}, not to "
                               f"'worktrees {args.action}'", 2)


def run(args: argparse.Namespace) -> int:
    from claudine_core.isolation.worktrees import UnsafeToDiscard, WorktreeError

    _check_usage(args)
    service = open_service(args)
    try:
        manager = service.worktrees()
        task = _guard(lambda: service.get(args.task)) if args.task else None
        try:
            if args.action == "list":
                return _list(manager, service, args.json)
            if args.action == "clean":
                tasks = [task] if task else _worktree_tasks(service)
                return _clean(manager.clean(tasks, force=args.force), args.json)
            assert task is not None
            if args.action == "diff":
                print(manager.diffstat(task) if args.stat else manager.diff(task))
                return 0
            action = {"merge": manager.merge, "patch": manager.export_patch,
                      "pr": manager.open_pr}.get(args.action)
            outcome = action(task) if action else manager.discard(task, force=args.force)
        except UnsafeToDiscard as exc:
            raise CommandError(f"not discarded: {exc.problem}; add --force to discard it "
                               "anyway") from exc
        except WorktreeError as exc:
            raise CommandError(str(exc)) from exc
    finally:
        service.close()
    if args.json:
        print(json.dumps({"task": task.id, "merge": outcome}))
    else:
        print(f"{task.short_id}: {describe(outcome)}")
    return 0 if outcome.get("status") != "kept" else 1


def _worktree_tasks(service: Any) -> list[Any]:
    return [t for t in service.list_tasks() if t.branch or t.worktree_path]


def _list(manager: Any, service: Any, as_json: bool) -> int:
    rows = [manager.state(task) for task in _worktree_tasks(service)]
    if as_json:
        print(json.dumps(rows))
        return 0
    if not rows:
        print("no worktree tasks: claudine delegate --worktree \"PROMPT\" starts one")
        return 0
    print(f"{'ID':8}  {'TASK':9}  {'STATE':11}  {'AHEAD':>5}  {'BRANCH':40}  MERGE")
    for row in rows:
        short = row["task"].removeprefix("task-")[:8]
        where = "" if row["exists"] else " (worktree removed)"
        print(f"{short:8}  {row['status']:9}  {row['state']:11}  {row.get('ahead', 0):>5}  "
              f"{(row['branch'] or '-'):40}  {describe(row['merge'])}{where}")
    return 0


def _clean(results: list[dict[str, Any]], as_json: bool) -> int:
    if as_json:
        print(json.dumps(results))
    else:
        for result in results:
            short = result["task"].removeprefix("task-")[:8]
            if result["removed"]:
                print(f"{short}: removed")
            else:
                insist = "; --force removes it anyway" if result.get("needs_force") else ""
                print(f"{short}: kept ({result.get('reason')}{insist})")
        if not results:
            print("nothing to clean")
    return 0 if all(r["removed"] for r in results) else 1
