"""What each ``claudine`` sub-command does. Errors become CommandError with advice."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from typing import Any

from claudine_core.config import Config
from claudine_core.models import (
    Task,
    TaskState,
)
from claudine_tui.cli import limits, output
from claudine_tui.cli.common import CommandError, ensure_owner, load, open_service
from claudine_tui.cli.common import guard as _guard

EXTRA_HANDLERS: dict[str, Callable[[argparse.Namespace], int]] = {}
POLL_S = 0.1


def add_extra_parsers(sub: Any) -> None:
    """Hook for commands other modules contribute (worktrees)."""
    try:
        from claudine_tui.cli import worktrees as cli_worktrees
    except ImportError:
        return
    cli_worktrees.add_parsers(sub, EXTRA_HANDLERS)
    from claudine_tui.cli import schedules as cli_schedules

    cli_schedules.add_parsers(sub, EXTRA_HANDLERS)
    from claudine_tui.cli import messages as cli_messages

    cli_messages.add_parsers(sub, EXTRA_HANDLERS)
    from claudine_tui.cli import limits as cli_limits

    cli_limits.add_parsers(sub, EXTRA_HANDLERS)


def _resolve(service: Any, ref: str) -> Task:
    return _guard(lambda: service.get(ref))


def _task_ids(service: Any, ref: str) -> list[str]:
    """The task ``ref`` names, or every step of the pipeline a ``pipe-`` id names."""
    if ref.strip().lower().startswith("pipe-"):
        return [step.id for step in service.pipeline(ref)[1]]
    return [_resolve(service, ref).id]


def _print_task_result(task: Task, as_json: bool, note: str) -> None:
    """The one output convention of the commands that act on a task: its bare id on stdout
    (the new task's, for retry and resume), or with ``--json`` the whole task. ``note``, a
    sentence for a person, goes to stderr, and only when that is a terminal: a script
    reading the output gets the id and nothing else."""
    if as_json:
        print(json.dumps(task.to_json()))
    else:
        print(task.id)
    if note and sys.stderr.isatty():
        print(f"({note})", file=sys.stderr)


# -- commands ----------------------------------------------------------------------------------


def delegate(args: argparse.Namespace) -> int:
    service = open_service(args)
    try:
        # One validation for every front end: every wrong flag is named at once (exit 2),
        # an unknown --depends-on / --continue-from id with them.
        spec = service.read_request(_request_values(args))
        task = service.delegate(spec)
        warn_owner_mismatch(service.config)
        if not args.no_serve:
            ensure_owner(service.config)
    finally:
        service.close()
    if args.json:
        print(json.dumps(task.to_json()))
    else:
        print(task.id)
    return 0


def _request_values(args: argparse.Namespace) -> dict[str, Any]:
    """The delegate flags as raw values keyed by TaskSpec field (checked by the core)."""
    return {"prompt": getattr(args, "prompt", None), "priority": args.priority, "cwd": args.cwd,
            "timeout_s": args.timeout, "model": args.model,
            "fallback_model": args.fallback_model, "max_budget_usd": args.max_budget_usd,
            "max_output_bytes": args.max_output, "permission_mode": args.permission_mode,
            "allowed_tools": args.allowed_tools, "worktree": args.worktree,
            "base_branch": args.base, "merge_strategy": args.merge,
            "commit_changes": args.commit,
            "depends_on": getattr(args, "depends_on", None),
            "on_dependency_failure": getattr(args, "on_dependency_failure", None),
            "continue_from": getattr(args, "continue_from", None)}


def pipeline(args: argparse.Namespace) -> int:
    """Queue the steps as a pipeline, in one transaction; prints its id and the steps'."""
    from claudine_core.task_request import read_pipeline_request

    service = open_service(args)
    try:
        # Every wrong flag and step is named at once (exit 2), as for delegate.
        template = read_pipeline_request(
            _request_values(args), list(args.steps),
            default_worktree=service.config.default_worktree,
            dependency_policy=service.config.on_dependency_failure)
        pipeline_id, tasks = service.create_pipeline(
            list(args.steps), template, continue_conversation=args.continue_conversation)
        warn_owner_mismatch(service.config)
        if not args.no_serve:
            ensure_owner(service.config)
    finally:
        service.close()
    if args.json:
        print(json.dumps({"pipeline_id": pipeline_id,
                          "tasks": [task.to_json() for task in tasks]}))
    else:
        print(pipeline_id)
        for task in tasks:
            print(f"  {task.pipeline_step}. {task.id} {task.status.value}")
    return 0


def status(args: argparse.Namespace) -> int:
    if args.limit < 1:
        raise CommandError(f"--limit: {args.limit} rows: give 1 or more", 2)
    if args.tmux:
        if args.task or args.status or args.json:
            raise CommandError("--tmux prints the counts of the whole home: give it no task "
                               "id, --status or --json", 2)
        return tmux_status(args)
    service = open_service(args)
    try:
        warn_owner_mismatch(service.config)
        if args.task and args.task.strip().lower().startswith("pipe-"):
            return _pipeline_status(service, args)
        if args.task:
            return _task_status(service, args)
        statuses = [_parse_state(s) for s in args.status] if args.status else None
        tasks = service.list_tasks(statuses, limit=args.limit)
        ended_ids = frozenset(t.id for t in tasks if service.agent_has_ended(t))
        if args.json:
            print(json.dumps([{**t.to_json(), "agent_ended": t.id in ended_ids}
                              for t in tasks]))
            return 0
        # The home's usage-limit pause and its budget first: they say why nothing starts.
        for line in limits.home_lines(service):
            print(line)
        # A pipeline's header counts all its steps, shown or not.
        pipelines = {pid: service.pipeline(pid)[1]
                     for pid in dict.fromkeys(t.pipeline_id for t in tasks if t.pipeline_id)}
        if not tasks:
            print(output.no_tasks(service.count_by_status(), statuses))
            return 0
        print(output.task_table(tasks, now=time.time(), ended=ended_ids, pipelines=pipelines))
        if any(t.status is TaskState.QUEUED for t in tasks):
            waiting = service.waiting_reason()
            if waiting:
                print(f"queued tasks are waiting: {waiting}")
        return 0
    finally:
        service.close()


def _task_status(service: Any, args: argparse.Namespace) -> int:
    """``status ID``: the task's details, why it waits (a parked task: until when), its
    messages; ``--json`` adds the home's usage-limit pause and budget."""
    task = _guard(lambda: service.get(args.task))
    position = service.queue_position(task)
    waiting = service.waiting_reason(task) or limits.parked_reason(task)
    ended = service.agent_has_ended(task)
    messages = service.task_messages(task.id)
    if args.json:
        data = task.to_json()
        data["queue_position"] = position
        data["waiting_reason"] = waiting
        data["agent_ended"] = ended
        data["messages"] = [m.to_json() for m in messages]
        data.update(limits.home_json(service))
        print(json.dumps(data))
    else:
        print(output.task_details(task, position, waiting, agent_ended=ended))
        _print_messages(service, messages)
    return 0


def _print_messages(service: Any, messages: list[Any]) -> None:
    """The messages sent to a task's agent and whether each was delivered."""
    if not messages:
        return
    from claudine_core.messages import describe

    print("messages:")
    for message in messages:
        print(f"  {describe(message, now_open=service.messages.may_still_arrive(message))}")


def tmux_status(args: argparse.Namespace) -> int:
    """``status --tmux``: one short line for tmux's status-right, ``●2 ◌5 ✘1`` (running,
    queued, failed in the last day); an empty line when there is nothing to say."""
    service = open_service(args)
    try:
        counts = service.count_by_status()
        recent_failures = 0
        if counts.get(TaskState.FAILED):
            since = time.time() - output.TMUX_FAILED_WINDOW_S
            recent = service.list_tasks([TaskState.FAILED], limit=output.TMUX_MAX_COUNT)
            recent_failures = sum(1 for t in recent if (t.ended_at or 0) >= since)
    finally:
        service.close()
    print(output.tmux_line(counts, recent_failures))
    return 0


def _pipeline_status(service: Any, args: argparse.Namespace) -> int:
    """``status pipe-...``: the pipeline's steps in order (``--json``: one object a task)."""
    pipeline_id, steps = service.pipeline(args.task)  # its refusals go to main's handler
    ended_ids = frozenset(t.id for t in steps if service.agent_has_ended(t))
    if args.json:
        print(json.dumps([{**t.to_json(), "agent_ended": t.id in ended_ids} for t in steps]))
        return 0
    print(output.task_table(steps, now=time.time(), ended=ended_ids,
                            pipelines={pipeline_id: steps}))
    return 0


def warn_owner_mismatch(config: Config) -> None:
    """Warn on stderr, one line per setting, when this process's environment or config
    file sets an owner setting (config.py, scope ``owner``) differently from the running
    owner: those come from the owner, so the client's value has no effect. Defaults are
    never compared; nothing is printed when this process is the owner or none runs."""
    import os

    from claudine_core.config import owner_mismatches
    from claudine_core.ownership import current_owner

    owner = current_owner(config.lock_path)
    if not owner or owner.get("pid") == os.getpid():
        return
    for mismatch in owner_mismatches(config, owner.get("settings")):
        print(f"claudine: warning: {mismatch.warning(owner.get('pid'))}", file=sys.stderr)


def _parse_state(text: str) -> TaskState:
    try:
        return TaskState(text.lower())
    except ValueError:
        choices = ", ".join(s.value for s in TaskState)
        raise CommandError(f"unknown status {text!r}: use one of {choices}", 2) from None


def logs(args: argparse.Namespace) -> int:
    if args.tail is not None and args.tail < 0:
        raise CommandError("--tail must be 0 or more lines", 2)
    if args.attempt is not None and args.attempt < 1:
        raise CommandError(f"--attempt: {args.attempt}: attempts are numbered from 1", 2)
    service = open_service(args)
    try:
        task = _guard(lambda: service.get(args.task))
        if args.stderr:
            print(service.stderr_tail(task.id, 1024 * 1024), end="")
            return 0
        try:
            status = output.print_logs(service, task, tail=args.tail, follow=args.follow,
                                       raw=args.raw, poll_s=POLL_S, attempt=args.attempt)
        except ValueError as exc:  # no such attempt
            raise CommandError(str(exc)) from exc
        if not args.raw and args.attempt in (None, task.attempt):
            _print_verdict(service.get(task.id))
        _point_to_stderr(service, task.id)
        return status
    finally:
        service.close()


def _print_verdict(task: Task) -> None:
    """How a failed or cancelled task ended, under its log: the agent's own last line may
    say it succeeded (a result written as it was being stopped), or there may be none."""
    if task.status in (TaskState.FAILED, TaskState.CANCELLED):
        reason = task.error or task.cancel_reason or task.status.value
        print(f"{output.STATUS_GLYPHS[task.status.value]} {task.status.value}: {reason}")


def _point_to_stderr(service: Any, task_id: str) -> None:
    """Say so (on stderr) when the latest attempt's agent wrote to its stderr: a task that
    failed before printing anything on stdout has its only explanation there."""
    path = service.output_path(task_id, "stderr.log")
    try:
        size = path.stat().st_size if path is not None else 0
    except OSError:
        return
    if size:
        short = task_id.removeprefix("task-")[:8]
        print(f"(its agent also wrote {size} byte{'s' if size != 1 else ''} to stderr: "
              f"claudine logs {short} --stderr)", file=sys.stderr)


def _task_command(args: argparse.Namespace, action: Callable[[Any], Task]) -> Task:
    """Run one command against the store, then make sure an owner exists to act on it:
    a cancel with nobody to stop the agent, or a queued retry with nobody to start it,
    would otherwise wait for whoever opens a console next."""
    service = open_service(args)
    try:
        task = _guard(lambda: action(service))
        warn_owner_mismatch(service.config)
        ensure_owner(service.config)
        return task
    finally:
        service.close()


def cancel(args: argparse.Namespace) -> int:
    if args.pipeline:
        return _cancel_pipeline(args)
    was_parked = False

    def cancel_it(service: Any) -> Task:
        nonlocal was_parked
        was_parked = service.get(args.task).status is TaskState.PARKED
        return service.cancel(args.task, args.reason)

    task = _task_command(args, cancel_it)
    if task.status is not TaskState.CANCELLED:
        note = "cancel requested: its agent is being stopped"
    elif was_parked:
        note = "cancelled; it was parked after a usage limit and will not continue"
    else:
        note = "cancelled"
    _print_task_result(task, args.json, note)
    return 0


def _cancel_pipeline(args: argparse.Namespace) -> int:
    """``cancel --pipeline ID``: every unfinished step of the pipeline, at once."""
    service = open_service(args)
    try:
        pipeline_id, steps = service.cancel_pipeline(args.task, args.reason)
        warn_owner_mismatch(service.config)
        ensure_owner(service.config)
    finally:
        service.close()
    if args.json:
        print(json.dumps({"pipeline_id": pipeline_id,
                          "tasks": [task.to_json() for task in steps]}))
        return 0
    print(f"cancelled pipeline {pipeline_id}")
    for task in steps:
        stopping = " (being stopped)" if task.status is TaskState.RUNNING else ""
        print(f"  {task.pipeline_step}. {task.id} {task.status.value}{stopping}")
    return 0


def retry(args: argparse.Namespace) -> int:
    task = _task_command(args, lambda s: s.retry(args.task))
    _print_task_result(task, args.json, f"queued as a new task, {task.status.value}")
    return 0


def resume(args: argparse.Namespace) -> int:
    task = _task_command(args, lambda s: s.resume(args.task, args.context))
    _print_task_result(task, args.json, f"resumed as a new task, {task.status.value}")
    return 0


def priority(args: argparse.Namespace) -> int:
    from claudine_core.models import Priority

    try:  # a wrong word is a usage error (exit 2), as delegate's --priority is
        wanted = Priority.parse(args.priority)
    except ValueError as exc:
        raise CommandError(f"PRIORITY: {exc}", 2) from None
    task = _task_command(args, lambda s: s.set_priority(args.task, wanted))
    _print_task_result(task, args.json, f"now {task.priority}")
    return 0


def wait(args: argparse.Namespace) -> int:
    if args.timeout is not None and not args.timeout >= 0:
        raise CommandError(f"--timeout: {args.timeout:g} seconds: give 0 or more", 2)
    service = open_service(args)
    try:
        ids = list(dict.fromkeys(task_id for ref in args.tasks
                                 for task_id in _task_ids(service, ref)))
        deadline = None if args.timeout is None else time.monotonic() + args.timeout
        next_owner_check = 0.0
        while True:
            tasks = [service.get(task_id) for task_id in ids]
            if all(t.status.is_terminal for t in tasks):
                break
            if time.monotonic() >= next_owner_check:
                # Waiting on tasks nobody runs would never end: keep an owner alive
                # (one killed meanwhile is replaced within a second).
                next_owner_check = time.monotonic() + 1.0
                ensure_owner(service.config)
            if deadline is not None and time.monotonic() >= deadline:
                pending = ", ".join(t.short_id for t in tasks if not t.status.is_terminal)
                raise CommandError(f"timed out waiting for {pending}", 3)
            time.sleep(POLL_S)
    finally:
        service.close()
    if args.json:
        print(json.dumps([t.to_json() for t in tasks]))
    else:
        for task in tasks:
            print(output.one_line(task))
    return 0 if all(t.status is TaskState.COMPLETED for t in tasks) else 1


def serve(args: argparse.Namespace) -> int:
    if args.idle_exit is not None and not args.idle_exit >= 0:
        raise CommandError(f"--idle-exit: {args.idle_exit:g} seconds: give 0 or more", 2)
    config = load(args)
    _configure_logging(config)
    if args.detach:
        from claudine_core.serve import ensure_owner, wait_for_owner

        pid = ensure_owner(config)
        if pid is None:
            print("an owner is already running for this home")
            return 0
        wait_for_owner(config)
        print(f"claudine serve started in the background (pid {pid})")
        return 0
    from claudine_core.ownership import current_owner

    if args.auto and current_owner(config.lock_path) is not None:
        # Started by a client that raced others to start an owner, and lost: leave before
        # loading the engine, so a burst of clients does not leave a crowd of starters.
        return 0
    import asyncio

    from claudine_core.serve import serve as run_serve

    idle = args.idle_exit
    if args.auto and idle is None:
        idle = config.idle_exit_s
    # A StoreError (a ClaudineError) goes up to the one handler in main.
    return asyncio.run(run_serve(config, auto=args.auto, idle_exit_s=idle,
                                 stop_agents_on_exit=args.stop_agents_on_exit))


def show_config(args: argparse.Namespace) -> int:
    """Each setting's effective value, where it came from and whose it is (--json too)."""
    from claudine_core.config import config_file_path, describe_settings, format_value

    config = load(args)
    rows = describe_settings(config)
    warn_owner_mismatch(config)
    if getattr(args, "json", False):
        print(json.dumps(rows))
        return 0
    path = config_file_path()
    print(f"config file: {path}{'' if path.exists() else ' (not present)'}")
    print("scope: task = copied into each task when delegated; owner = the running "
          "engine owner's value counts; local = this process")
    for row in rows:
        value = format_value(row["name"], row["value"])
        print(f"{row['name']} = {value}   [{row['source']}, {row['scope']}]")
        env = f" Environment: {', '.join(row['env'])}." if row["env"] else ""
        print(f"    {row['description']}{env} Default: {row['default']}.")
    return 0


def _configure_logging(config: Config) -> None:
    import logging

    level = {"warn": "WARNING"}.get(config.log_level, config.log_level.upper())
    logging.basicConfig(level=level, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")


def console(args: argparse.Namespace) -> int:
    config = load(args)
    try:
        from claudine_tui.app import run_console
    except ImportError as exc:
        raise CommandError(f"the console is not available: {exc}") from exc
    return int(run_console(config) or 0)


def headless(args: argparse.Namespace) -> int:
    config = load(args)
    try:
        from claudine_core.mcp.front import run_stdio
    except ImportError as exc:
        raise CommandError(f"the MCP server is not available: {exc}") from exc
    return int(run_stdio(config) or 0)


def mcp(args: argparse.Namespace) -> int:
    if args.action == "start":
        return headless(args)
    try:
        from claudine_tui.cli import mcp_setup as cli_mcp
    except ImportError as exc:
        raise CommandError(f"'claudine mcp {args.action}' is not available: {exc}") from exc
    return int(cli_mcp.run(args.action, load(args)))
