"""What each MCP tool does, as plain functions over the engine's TaskService.

Independent of the ``mcp`` SDK so it can be tested and reused directly: every tool returns
a :class:`ToolOutcome` (structured content plus a short text). Bad input, unknown tasks
and impossible transitions become error outcomes whose message tells the calling model
what to do next; nothing here raises for a user mistake.

Every command is a committed row (see service.py), so a tool works the same whether this
server owns the home or runs as a client of a console that does.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from claudine_core.agents.log_text import render_plain
from claudine_core.agents.run_log import end_of_last_line, iter_lines_backward
from claudine_core.agents.stream_parse import parse_line
from claudine_core.errors import ClaudineError, InvalidRequest, StoreError
from claudine_core.mcp.outcome import ToolOutcome, error
from claudine_core.mcp.schedule_handlers import SCHEDULE_HANDLERS
from claudine_core.mcp.tools import ToolInputError, check_arguments
from claudine_core.messages import Message
from claudine_core.models import Task, TaskState, iso_time
from claudine_core.service import TaskService
from claudine_core.task_request import (
    describe_problems,
    read_pipeline_request,
)

if TYPE_CHECKING:
    from claudine_core.usage_limits import HomePause

log = logging.getLogger("claudine.mcp")

LOG_READ_BYTES = 4 * 1024 * 1024  # TaskLogs reads back at most this much from the end of a file
STDERR_TAIL_BYTES = 2048


def run_tool(service: TaskService, name: str, arguments: dict[str, Any] | None) -> ToolOutcome:
    """Validate the arguments, run the tool, and turn every expected failure into an error."""
    try:
        args = check_arguments(name, arguments)
        return HANDLERS[name](service, args)
    except ClaudineError as exc:  # every refusal with a message for the user
        return error(_refusal(name, exc))
    except OSError as exc:  # the system refused a path the arguments led to
        log.info("%s: %s", name, exc)
        where = f" {exc.filename}" if exc.filename else ""
        return error(f"{name} could not use{where}: {exc.strerror or exc}")


# The argument of DelegateTask behind each TaskSpec field, to name it in errors.
ARGUMENTS = {"prompt": "prompt", "priority": "priority", "cwd": "workingDirectory",
             "timeout_s": "timeout", "model": "model", "fallback_model": "fallbackModel",
             "max_budget_usd": "maxBudgetUsd", "max_output_bytes": "maxOutputBuffer",
             "worktree": "useWorktree", "base_branch": "baseBranch",
             "merge_strategy": "mergeStrategy", "commit_changes": "autoCommit",
             "depends_on": "dependsOn", "on_dependency_failure": "onDependencyFailure",
             "continue_from": "continueFrom"}


def _refusal(name: str, exc: ClaudineError) -> str:
    if isinstance(exc, StoreError):
        log.error("store error in %s: %s", name, exc)
        return f"the claudine store is unavailable ({exc}); try again shortly"
    if isinstance(exc, InvalidRequest) and exc.problems:
        named = describe_problems(exc, ARGUMENTS, worktree="useWorktree: true")
        return "; ".join(f"{argument}: {_for_tools(message)}" for argument, message in named)
    return _clean(exc)


def _clean(exc: Exception) -> str:
    # KeyError-style str() quotes the message.
    return _for_tools(str(exc.args[0]) if len(exc.args) == 1 else str(exc))


def _for_tools(text: str) -> str:
    """The core's advice names the CLI; a tool's caller is pointed at the tools instead."""
    return text.replace("run 'claudine status' to list the task ids",
                        "call TaskStatus without taskId to list the task ids")


def task_view(task: Task) -> dict[str, Any]:
    view = task.to_json()
    view["taskId"] = task.id
    return view


def _task_outcome(task: Task, text: str) -> ToolOutcome:
    return ToolOutcome(text=text, structured={"taskId": task.id, "status": task.status.value,
                                              "task": task_view(task)})


# -- the tools ------------------------------------------------------------------------------


def delegate(service: TaskService, args: dict[str, Any]) -> ToolOutcome:
    task = service.delegate(_read_task_request(service, args))
    return _task_outcome(task, f"Delegated task {task.id} ({task.priority}, "
                               f"{task.status.value}). Check it with TaskStatus; read its "
                               "output with TaskLogs.")


def _read_task_request(service: TaskService, args: dict[str, Any]) -> Any:
    """The TaskSpec of DelegateTask's (or CreatePipeline's) arguments, checked by the same
    validation as the CLI's and the console form's (claudine_core.task_request); its
    problems come back named by argument (see _refusal)."""
    if args.get("useWorktree") and \
            importlib.util.find_spec("claudine_core.isolation.worktrees") is None:
        raise ToolInputError("worktree isolation is not available in this claudine build: "
                             "drop useWorktree (the task then runs in workingDirectory)")
    values = _request_values(args)
    if "steps" in args:
        return read_pipeline_request(values, list(args["steps"]),
                                     default_worktree=service.config.default_worktree,
                                     dependency_policy=service.config.on_dependency_failure)
    return service.read_request(values)


def _request_values(args: dict[str, Any]) -> dict[str, Any]:
    """The arguments as raw values keyed by TaskSpec field (see task_request)."""
    values = {field: args.get(argument) for field, argument in ARGUMENTS.items()}
    # Without a directory a continuation runs in the continued task's (see the service).
    values["cwd"] = args.get("workingDirectory") or (
        None if args.get("continueFrom") else os.getcwd())
    if values["timeout_s"] is not None:
        values["timeout_s"] = values["timeout_s"] / 1000  # milliseconds, as the original
    return values


def create_pipeline(service: TaskService, args: dict[str, Any]) -> ToolOutcome:
    template = _read_task_request(service, args)
    pipeline_id, tasks = service.create_pipeline(
        list(args["steps"]), template, continue_conversation=args["continueConversation"])
    how = " each continuing the previous one's conversation," if \
        args["continueConversation"] else ""
    text = (f"Created pipeline {pipeline_id}: {len(tasks)} step(s),{how} each starting once "
            "the one before completed; a failed step fails the rest. Steps: "
            + ", ".join(f"{t.pipeline_step}. {t.id}" for t in tasks)
            + ". Cancel them all with CancelTask wholePipeline: true.")
    return ToolOutcome(text=text, structured={"pipelineId": pipeline_id,
                                              "tasks": [task_view(t) for t in tasks]})


def status(service: TaskService, args: dict[str, Any]) -> ToolOutcome:
    if "taskId" in args:
        task = service.get(args["taskId"])
        waiting = service.waiting_reason(task) or _parked_reason(task)
        ended = service.agent_has_ended(task)
        text = _describe(task) + (f" Waiting: {waiting}." if waiting else "") + (
            " Its agent has ended; the outcome is not recorded yet (an owner records it "
            "as soon as one runs)." if ended else "")
        messages = service.task_messages(task.id)
        text += _describe_messages(messages)
        structured: dict[str, Any] = {"taskId": task.id, "status": task.status.value,
                                      "task": task_view(task), "waitingReason": waiting,
                                      "agentEnded": ended,
                                      "messages": [m.to_json() for m in messages]}
        return ToolOutcome(text=text, structured=structured)
    states = [TaskState(s) for s in args.get("status") or []] or None
    limit, offset = args["limit"], args["offset"]
    tasks = service.list_tasks(states, limit=limit + 1, offset=offset)
    has_more = len(tasks) > limit
    tasks = tasks[:limit]
    counts = service.count_by_status()
    total = sum(n for state, n in counts.items() if states is None or state in states)
    pause = service.usage_pause()
    structured = {
        "tasks": [task_view(t) for t in tasks],
        "total": total,
        "offset": offset,
        "limit": limit,
        "hasMore": has_more,
        "nextOffset": offset + len(tasks) if has_more else None,
        "counts": {state.value: counts.get(state, 0) for state in TaskState},
        "usagePause": pause.to_json() if pause is not None else None,
    }
    paused = _describe_pause(pause, counts.get(TaskState.PARKED, 0))
    if not tasks:
        text = paused + ("No tasks match." if any(counts.values())
                         else "No tasks yet: use DelegateTask.")
    else:
        lines = [f"{paused}{total} task(s); showing {offset + 1}-{offset + len(tasks)}:"]
        lines += [f"- {t.id} {t.status.value} {t.priority} {_headline(t.prompt)}" for t in tasks]
        if has_more:
            lines.append(f"More: call TaskStatus with offset {offset + len(tasks)}.")
        text = "\n".join(lines)
    return ToolOutcome(text=text, structured=structured)


def _parked_reason(task: Task) -> str | None:
    """Until when a parked task waits, and why (TaskStatus's waitingReason)."""
    if task.status is not TaskState.PARKED:
        return None
    reason = (task.error or "a usage limit").split(";", 1)[0].strip()
    return f"parked until {iso_time(task.parked_until) or 'the limit resets'} ({reason}); " \
        "it continues its session then"


def _describe_pause(pause: HomePause | None, parked: int) -> str:
    """The first words of the task list while the home is paused by a usage limit."""
    if pause is None:
        return ""
    return (f"The home is paused: {pause.reason} until {iso_time(pause.until)} "
            f"({parked} task(s) parked); no new agent starts until then. ")


def logs(service: TaskService, args: dict[str, Any]) -> ToolOutcome:
    task = service.get(args["taskId"])
    tail = args["tail"]
    path = service.output_path(task.id)
    lines, truncated = _read_log_lines(path, tail) if path is not None else ([], False)
    shown = lines[-tail:]
    stderr = service.stderr_tail(task.id, STDERR_TAIL_BYTES).strip()
    structured = {
        "taskId": task.id,
        "status": task.status.value,
        "lines": shown,
        "totalLines": len(lines),
        "truncated": truncated or len(lines) > len(shown),
        "stderr": stderr or None,
        "path": str(path) if path is not None else None,
    }
    if path is None:
        text = f"Task {task.id} is {task.status.value} and has not started yet: no output."
    elif not shown:
        text = f"Task {task.id} is {task.status.value}; its agent has printed nothing yet."
    else:
        text = "\n".join(shown)
    if stderr and task.status is TaskState.FAILED:
        text += f"\n[stderr]\n{stderr}"
    return ToolOutcome(text=text, structured=structured)


def cancel(service: TaskService, args: dict[str, Any]) -> ToolOutcome:
    if args["wholePipeline"]:
        return _cancel_pipeline(service, args)
    was_parked = service.get(args["taskId"]).status is TaskState.PARKED
    task = service.cancel(args["taskId"], args.get("reason"))
    if task.status is TaskState.CANCELLED:
        return _task_outcome(task, f"Cancelled task {task.id}."
                                   + (_after_park(task) if was_parked else ""))
    return _task_outcome(task, f"Cancel requested for running task {task.id}; its agent is "
                               "being stopped (TaskStatus shows when it is cancelled).")


def _after_park(task: Task) -> str:
    resume = " (ResumeTask continues its session as a new task)" if task.session_id else ""
    return f" It was parked after a usage limit and will not continue{resume}."


def _cancel_pipeline(service: TaskService, args: dict[str, Any]) -> ToolOutcome:
    task = service.get(args["taskId"])
    if task.pipeline_id is None:
        raise InvalidRequest(f"task {task.id} is not a step of a pipeline: drop wholePipeline "
                             "to cancel the task alone")
    pipeline_id, steps = service.cancel_pipeline(task.pipeline_id, args.get("reason"))
    states = ", ".join(f"step {s.pipeline_step} {s.status.value}"
                       + (" (being stopped)" if s.cancel_requested
                          and s.status is TaskState.RUNNING else "") for s in steps)
    return _task_outcome(service.get(task.id), f"Cancelled pipeline {pipeline_id}: {states}.")


def retry(service: TaskService, args: dict[str, Any]) -> ToolOutcome:
    task = service.retry(args["taskId"])
    return _task_outcome(task, f"Queued {task.id}, a new run of {task.parent_id}.")


def resume(service: TaskService, args: dict[str, Any]) -> ToolOutcome:
    task = service.resume(args["taskId"], args.get("additionalContext"))
    return _task_outcome(task, f"Queued {task.id}, continuing the agent session of "
                               f"{task.parent_id}.")


def send_message(service: TaskService, args: dict[str, Any]) -> ToolOutcome:
    message = service.send_message(args["taskId"], args["message"])
    if message.resume_task_id:
        text = (f"Task {message.task_id} had ended: its conversation continues with the "
                f"message as task {message.resume_task_id} (follow it with TaskStatus).")
    else:
        text = (f"Sent {message.id} to task {message.task_id}: its agent reads it at its "
                "next turn. TaskStatus shows when it was delivered.")
    return ToolOutcome(text=text, structured={"taskId": message.task_id,
                                              "message": message.to_json(),
                                              "resumeTaskId": message.resume_task_id})


def _describe_messages(messages: list[Message]) -> str:
    if not messages:
        return ""
    delivered = sum(m.delivered_at is not None for m in messages)
    return f" Messages sent: {len(messages)}, delivered: {delivered}."


def set_priority(service: TaskService, args: dict[str, Any]) -> ToolOutcome:
    task = service.set_priority(args["taskId"], args["priority"])
    return _task_outcome(task, f"Task {task.id} is now {task.priority}.")


HANDLERS: dict[str, Callable[[TaskService, dict[str, Any]], ToolOutcome]] = {
    "DelegateTask": delegate,
    "TaskStatus": status,
    "TaskLogs": logs,
    "CancelTask": cancel,
    "RetryTask": retry,
    "ResumeTask": resume,
    "SendMessage": send_message,
    "SetTaskPriority": set_priority,
    "CreatePipeline": create_pipeline,
    **SCHEDULE_HANDLERS,
}


# -- helpers --------------------------------------------------------------------------------


def _headline(prompt: str, width: int = 60) -> str:
    line = " ".join(prompt.split())
    return line if len(line) <= width else line[: width - 1] + "…"


def _describe(task: Task) -> str:
    parts = [f"Task {task.id} is {task.status.value} ({task.priority})."]
    if task.pipeline_id:
        parts.append(f"Step {task.pipeline_step} of pipeline {task.pipeline_id}.")
    if task.continue_from:
        parts.append(f"It continues the conversation of {task.continue_from}.")
    if task.status is TaskState.PARKED:
        parts.append(f"A usage limit stopped it; it is {_parked_reason(task)}. CancelTask "
                     "cancels it.")
    elif task.status is TaskState.RUNNING and task.last_activity:
        parts.append(f"Last activity: {task.last_activity}.")
    if task.error and task.status is not TaskState.PARKED:  # said above, with its time
        parts.append(f"Error: {task.error}.")
    if task.result:
        parts.append(f"Result: {_headline(task.result, 400)}")
    if task.status.is_terminal and task.status is not TaskState.COMPLETED:
        parts.append("RetryTask runs it again; ResumeTask continues its session.")
    return " ".join(parts)


def _read_log_lines(path: os.PathLike[str], tail: int) -> tuple[list[str], bool]:
    """Rendered lines of the end of a run's stdout, oldest first: read back from the end
    until there are more than ``tail`` (or LOG_READ_BYTES were read); (lines, cut off?).

    A line the agent is still writing is left out.
    """
    end = end_of_last_line(path)
    newest_first: list[str] = []
    for start, raw_line in iter_lines_backward(path, end):
        for event in reversed(parse_line(raw_line)):
            rendered = render_plain(event)
            if rendered:
                newest_first += reversed(rendered.rstrip("\n").split("\n"))
        if len(newest_first) > tail or (start and end - start >= LOG_READ_BYTES):
            return newest_first[::-1], bool(start) or len(newest_first) > tail
    return newest_first[::-1], False
