"""What each schedule tool does, over the TaskService's schedules (see handlers.py for the
conventions: a ToolOutcome per call, a ClaudineError for every refusal)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from claudine_core.errors import InvalidRequest
from claudine_core.mcp.outcome import ToolOutcome
from claudine_core.models import iso_time
from claudine_core.schedules.model import Schedule, ScheduleKind, UnknownSchedule
from claudine_core.service import TaskService

# ScheduleTask's argument behind each template (TaskSpec) field; handlers.py names the
# template's problems with its own copy of the same names, these are for the values.
TEMPLATE_ARGUMENTS = {"prompt": "prompt", "priority": "priority", "cwd": "workingDirectory",
                      "timeout_s": "timeout", "model": "model",
                      "fallback_model": "fallbackModel", "max_budget_usd": "maxBudgetUsd",
                      "max_output_bytes": "maxOutputBuffer", "worktree": "useWorktree",
                      "base_branch": "baseBranch", "merge_strategy": "mergeStrategy",
                      "commit_changes": "autoCommit", "depends_on": "dependsOn",
                      "on_dependency_failure": "onDependencyFailure"}
# The argument behind each of the schedule's own settings, to name it in errors.
SCHEDULE_ARGUMENTS = {"kind": "scheduleType", "cron": "cronExpression", "run_at": "scheduledAt",
                      "timezone": "timezone", "missed_run_policy": "missedRunPolicy",
                      "max_runs": "maxRuns", "expires_at": "expiresAt",
                      "after_schedule": "afterSchedule", "status": "status"}


def schedule_view(schedule: Schedule) -> dict[str, Any]:
    view = schedule.to_json()
    view["scheduleId"] = schedule.id
    return view


def _result(schedule: Schedule, text: str, **more: Any) -> ToolOutcome:
    return ToolOutcome(text=text, structured={
        "scheduleId": schedule.id, "status": schedule.status.value,
        "nextRunAt": iso_time(schedule.next_run_at), "schedule": schedule_view(schedule),
        **more})


def _when(schedule: Schedule) -> str:
    if schedule.kind is ScheduleKind.CRON:
        return f"cron '{schedule.cron}' in {schedule.timezone}"
    return f"once at {iso_time(schedule.run_at)}"


def _next(schedule: Schedule) -> str:
    if schedule.next_run_at is None:
        return "it will not fire again"
    return f"next run {iso_time(schedule.next_run_at)}"


def schedule_task(service: TaskService, args: dict[str, Any]) -> ToolOutcome:
    values = {field: args.get(argument) for field, argument in TEMPLATE_ARGUMENTS.items()}
    values["cwd"] = args.get("workingDirectory") or os.getcwd()
    if values["timeout_s"] is not None:
        values["timeout_s"] = values["timeout_s"] / 1000  # milliseconds, as DelegateTask
    try:
        schedule = service.schedules.create(
            values, kind=args["scheduleType"], cron=args.get("cronExpression"),
            run_at=args.get("scheduledAt"), timezone=args.get("timezone"),
            missed_run_policy=args.get("missedRunPolicy"), max_runs=args.get("maxRuns"),
            expires_at=args.get("expiresAt"), after_schedule=args.get("afterSchedule"))
    except InvalidRequest as exc:
        raise _named(exc) from None
    return _result(schedule, f"Scheduled {schedule.id} ({_when(schedule)}); "
                             f"{_next(schedule)}. Each firing creates a task; see them with "
                             "GetSchedule (includeHistory) and TaskStatus.")


def _named(exc: InvalidRequest) -> InvalidRequest:
    """The schedule's own problems named by argument; the template's keep their TaskSpec
    field, which handlers.py names (workingDirectory, timeout, ...)."""
    return InvalidRequest(problems={SCHEDULE_ARGUMENTS.get(field, field): message.replace(
        "list them with 'claudine schedule list'", "call ListSchedules to list them")
        for field, message in exc.problems.items()},
                          exit_status=exc.exit_status) if exc.problems else exc


def list_schedules(service: TaskService, args: dict[str, Any]) -> ToolOutcome:
    status, limit, offset = args.get("status"), args["limit"], args["offset"]
    schedules = service.schedules.list(status, limit=limit + 1, offset=offset)
    has_more = len(schedules) > limit
    schedules = schedules[:limit]
    total = service.schedules.count(status)
    structured = {"schedules": [schedule_view(s) for s in schedules], "total": total,
                  "offset": offset, "limit": limit, "hasMore": has_more,
                  "nextOffset": offset + len(schedules) if has_more else None}
    if not schedules:
        text = "No schedules match." if service.schedules.count() else \
            "No schedules yet: use ScheduleTask."
    else:
        lines = [f"{total} schedule(s); showing {offset + 1}-{offset + len(schedules)}:"]
        lines += [f"- {s.id} {s.status.value} {_when(s)}; {_next(s)}" for s in schedules]
        if has_more:
            lines.append(f"More: call ListSchedules with offset {offset + len(schedules)}.")
        text = "\n".join(lines)
    return ToolOutcome(text=text, structured=structured)


def get_schedule(service: TaskService, args: dict[str, Any]) -> ToolOutcome:
    schedule = service.schedules.get(args["scheduleId"])
    history = None
    text = (f"Schedule {schedule.id} is {schedule.status.value} ({_when(schedule)}); "
            f"{schedule.runs} run(s) so far; {_next(schedule)}.")
    if args["includeHistory"]:
        executions = service.schedules.history(schedule.id, args["historyLimit"])
        history = [e.to_json() for e in executions]
        lines = [f"- {e['scheduled_for']} {e['outcome']}"
                 + (f" {e['task_id']}" if e["task_id"] else "")
                 + (f": {e['error']}" if e["error"] else "") for e in history]
        text += "\nHistory (newest first):\n" + "\n".join(lines) if lines else \
            "\nNo firings yet."
    return _result(schedule, text, history=history)


def cancel_schedule(service: TaskService, args: dict[str, Any]) -> ToolOutcome:
    schedule = service.schedules.cancel(args["scheduleId"], args.get("reason"))
    return _result(schedule, f"Cancelled schedule {schedule.id}; tasks it created are left "
                             "as they are (CancelTask stops one).")


def pause_schedule(service: TaskService, args: dict[str, Any]) -> ToolOutcome:
    schedule = service.schedules.pause(args["scheduleId"])
    return _result(schedule, f"Paused schedule {schedule.id}; ResumeSchedule starts it "
                             "again from its next slot.")


def resume_schedule(service: TaskService, args: dict[str, Any]) -> ToolOutcome:
    schedule = service.schedules.resume(args["scheduleId"])
    return _result(schedule, f"Resumed schedule {schedule.id} ({schedule.status.value}); "
                             f"{_next(schedule)}.")


Handler = Callable[[TaskService, dict[str, Any]], ToolOutcome]


def _in_tool_words(handler: Handler) -> Handler:
    """The handler, with an unknown schedule's advice naming the tool, not the CLI."""

    def run(service: TaskService, args: dict[str, Any]) -> ToolOutcome:
        try:
            return handler(service, args)
        except UnknownSchedule as exc:
            raise UnknownSchedule(exc.message.replace(
                "list them with 'claudine schedule list'",
                "call ListSchedules to list the schedule ids")) from None

    return run


SCHEDULE_HANDLERS: dict[str, Handler] = {
    name: _in_tool_words(handler) for name, handler in (
        ("ScheduleTask", schedule_task),
        ("ListSchedules", list_schedules),
        ("GetSchedule", get_schedule),
        ("CancelSchedule", cancel_schedule),
        ("PauseSchedule", pause_schedule),
        ("ResumeSchedule", resume_schedule),
    )
}
