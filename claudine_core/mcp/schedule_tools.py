"""The schedule tools of the MCP catalogue (ScheduleTask, ListSchedules, ...): names and
JSON schemas. tools.py adds them to the catalogue; like it, no third-party imports.

The names and arguments are the original TypeScript claudine's (v0.4.0 task scheduling),
so prompts written for it keep working; ScheduleTask also takes DelegateTask's other task
options for the template. The schedule object in results is derived from the Schedule
declaration (claudine_core.schedules.model), as the task object is from Task's.
"""

from __future__ import annotations

from typing import Any

from claudine_core.mcp.schema_parts import BUDGET_USD, nullable, object_schema, result_schema
from claudine_core.mcp.task_schema import _field_schema
from claudine_core.models import (
    MAX_DEPENDENCIES,
    DependencyPolicy,
    MergeStrategy,
    Priority,
    field_types,
)
from claudine_core.schedules.model import (
    SCHEDULE_ID_PATTERN,
    MissedRunPolicy,
    Schedule,
    ScheduleExecution,
    ScheduleKind,
    ScheduleStatus,
    public_fields,
)
from claudine_core.task_request import MAX_FIELD_CHARS, MAX_PROMPT_BYTES, setting_bounds

MAX_SCHEDULE_LIST = 100
MAX_HISTORY = 100
_TIMEOUT_S = setting_bounds("task_timeout_s")
_OUTPUT_BYTES = setting_bounds("max_output_bytes")

_SCHEDULE_ID: dict[str, Any] = {
    "type": "string",
    "minLength": 1,
    "maxLength": MAX_FIELD_CHARS,
    "description": "Schedule id as ScheduleTask returned it (sched- and 12 hex digits); "
    "the 8-digit short id or a unique prefix of at least 4 digits works too.",
}
_TEXT: dict[str, Any] = {"type": "string", "minLength": 1, "maxLength": MAX_FIELD_CHARS}
_STATUSES = [s.value for s in ScheduleStatus]



# -- the schedule object in results, derived from its declaration ------------------------------


def _record_properties(cls: type) -> dict[str, Any]:
    hints = field_types(cls)
    properties: dict[str, Any] = {}
    for declared in public_fields(cls):
        if declared.name == "template":
            properties["template"] = {
                "type": "object",
                "description": "The task each firing creates: DelegateTask's fields (prompt, "
                "priority, cwd, timeout_s, model, worktree, merge_strategy, depends_on, ...) "
                "as the task shows them, without the agent's environment.",
            }
            continue
        properties[declared.name] = _field_schema(declared, hints[declared.name])
    return properties


def schedule_properties() -> dict[str, Any]:
    """The properties of the schedule object in results: scheduleId, then every public
    field of Schedule."""
    properties = {"scheduleId": {"type": "string", "pattern": SCHEDULE_ID_PATTERN,
                                 "description": "The schedule id."}}
    properties.update(_record_properties(Schedule))
    properties["id"]["description"] = "Same as scheduleId."
    return properties


_SCHEDULE_FIELDS = schedule_properties()
_SCHEDULE: dict[str, Any] = {"type": "object", "properties": _SCHEDULE_FIELDS,
                             "required": list(_SCHEDULE_FIELDS)}
_EXECUTION_FIELDS = _record_properties(ScheduleExecution)
_EXECUTION: dict[str, Any] = {"type": "object", "properties": _EXECUTION_FIELDS,
                              "required": list(_EXECUTION_FIELDS)}
_STATUS: dict[str, Any] = {"type": "string", "enum": _STATUSES}

SCHEDULE_RESULT_SCHEMA = result_schema({
    "scheduleId": _SCHEDULE_FIELDS["scheduleId"],
    "status": _STATUS,
    "nextRunAt": nullable("string", "Its next slot, ISO 8601 in UTC (null: none)."),
    "schedule": _SCHEDULE,
})
SCHEDULE_PAGE_SCHEMA = result_schema({
    "schedules": {"type": "array", "items": _SCHEDULE, "description": "Newest first."},
    "total": {"type": "integer", "minimum": 0, "description": "Schedules matching the "
              "filter."},
    "offset": {"type": "integer", "minimum": 0},
    "limit": {"type": "integer", "minimum": 1},
    "hasMore": {"type": "boolean"},
    "nextOffset": nullable("integer", "The offset of the next page (null: no more)."),
})
SCHEDULE_DETAIL_SCHEMA = result_schema({
    **SCHEDULE_RESULT_SCHEMA["properties"],
    "history": {"type": ["array", "null"], "items": _EXECUTION,
                "description": "Its handled slots, newest first: when each was due, when "
                "it fired, the task it created and the outcome (created, failed, "
                "skipped); null unless includeHistory."},
})


# -- ScheduleTask's arguments ----------------------------------------------------------------

_TEMPLATE_OPTIONS: dict[str, Any] = {
    "priority": {"type": "string", "enum": [str(p) for p in Priority], "default": "P2",
                 "description": "P0 urgent, P1 high, P2 normal, for each task it creates."},
    "workingDirectory": {"type": "string", "maxLength": MAX_FIELD_CHARS,
                         "description": "Existing directory each task runs in (absolute "
                         "path; default: the directory the server was started in)."},
    "timeout": {"type": "integer", "minimum": int(_TIMEOUT_S[0] * 1000),
                "maximum": int(_TIMEOUT_S[1] * 1000),
                "description": "Milliseconds before each task's agent is stopped."},
    "maxOutputBuffer": {"type": "integer", "minimum": int(_OUTPUT_BYTES[0]),
                        "maximum": int(_OUTPUT_BYTES[1]),
                        "description": "Bytes of agent output kept per task."},
    "model": {**_TEXT, "description": "Model for the agents (claude --model), e.g. sonnet."},
    "maxBudgetUsd": {**BUDGET_USD, "description": "Most each task's agent may spend, in US "
                     "dollars (claude --max-budget-usd)."},
    "fallbackModel": {**_TEXT, "description": "Model each agent falls back to when its model "
                      "is overloaded (claude --fallback-model)."},
    "useWorktree": {"type": "boolean", "description": "Run each task in a new git worktree "
                    "on its own branch (default: the CLAUDINE_WORKTREE setting)."},
    "baseBranch": {**_TEXT, "description": "Branch each worktree starts from (needs "
                   "useWorktree)."},
    "mergeStrategy": {"type": "string", "enum": [m.value for m in MergeStrategy],
                      "description": "What happens to each task's branch when it ends "
                      "(needs useWorktree)."},
    "autoCommit": {"type": "boolean", "description": "Commit what each agent left "
                   "uncommitted in its worktree (needs useWorktree)."},
    "dependsOn": {"type": "array", "maxItems": MAX_DEPENDENCIES, "items": _TEXT,
                  "description": "Task ids every task it creates waits for."},
    "onDependencyFailure": {"type": "string", "enum": [p.value for p in DependencyPolicy],
                            "description": "When a dependency fails or is cancelled: fail "
                            "(default), cancel, or run anyway."},
}

SCHEDULE_TOOLS: list[dict[str, Any]] = [
    {
        "name": "ScheduleTask",
        "description": "Schedule a task for future or recurring execution using cron "
        "expressions or one-time timestamps. Each firing creates a task (follow it with "
        "TaskStatus); an owner must be running for a schedule to fire.",
        "inputSchema": object_schema(
            {
                "prompt": {"type": "string", "minLength": 1, "maxLength": MAX_PROMPT_BYTES,
                           "description": "Task prompt to execute."},
                "scheduleType": {"type": "string", "enum": [k.value for k in ScheduleKind],
                                 "description": "cron for recurring, one_time for single "
                                 "execution."},
                "cronExpression": {**_TEXT, "description": "Cron expression (5-field: "
                                   "minute hour day-of-month month day-of-week), e.g. "
                                   "'0 9 * * 1-5'; for scheduleType cron."},
                "scheduledAt": {**_TEXT, "description": "ISO 8601 datetime for one-time "
                                "schedules, in the future (without an offset: read in "
                                "timezone)."},
                "timezone": {**_TEXT, "default": "UTC",
                             "description": "IANA timezone (default: UTC), e.g. "
                             "Europe/Paris."},
                "missedRunPolicy": {"type": "string",
                                    "enum": [p.value for p in MissedRunPolicy],
                                    "default": "skip",
                                    "description": "Slots missed while no owner ran: skip "
                                    "them, catchup (a task for each, up to 24), or fail "
                                    "(a failed execution for each)."},
                "maxRuns": {"type": "integer", "minimum": 1,
                            "description": "Maximum number of runs for cron schedules."},
                "expiresAt": {**_TEXT, "description": "ISO 8601 datetime when the schedule "
                              "expires."},
                "afterSchedule": {**_SCHEDULE_ID, "description": "Schedule ID to chain "
                                  "after (new tasks depend on this schedule's latest task)."},
                **_TEMPLATE_OPTIONS,
            },
            ("prompt", "scheduleType"),
        ),
        "outputSchema": SCHEDULE_RESULT_SCHEMA,
    },
    {
        "name": "ListSchedules",
        "description": "List all schedules with optional status filter (newest first).",
        "inputSchema": object_schema({
            "status": {"type": "string", "enum": _STATUSES,
                       "description": "Only schedules in this state."},
            "limit": {"type": "integer", "minimum": 1, "maximum": MAX_SCHEDULE_LIST,
                      "default": 50, "description": "Max results (default 50)."},
            "offset": {"type": "integer", "minimum": 0, "default": 0,
                       "description": "Pagination offset; use nextOffset."},
        }),
        "outputSchema": SCHEDULE_PAGE_SCHEMA,
    },
    {
        "name": "GetSchedule",
        "description": "Get details of a specific schedule including execution history.",
        "inputSchema": object_schema({
            "scheduleId": _SCHEDULE_ID,
            "includeHistory": {"type": "boolean", "default": False,
                               "description": "Include execution history."},
            "historyLimit": {"type": "integer", "minimum": 1, "maximum": MAX_HISTORY,
                             "default": 10, "description": "Max history entries."},
        }, ("scheduleId",)),
        "outputSchema": SCHEDULE_DETAIL_SCHEMA,
    },
    {
        "name": "CancelSchedule",
        "description": "Cancel an active or paused schedule (tasks it already created are "
        "left as they are).",
        "inputSchema": object_schema({
            "scheduleId": _SCHEDULE_ID,
            "reason": {"type": "string", "maxLength": MAX_FIELD_CHARS,
                       "description": "Reason for cancellation."},
        }, ("scheduleId",)),
        "outputSchema": SCHEDULE_RESULT_SCHEMA,
    },
    {
        "name": "PauseSchedule",
        "description": "Pause a schedule (can be resumed later).",
        "inputSchema": object_schema({"scheduleId": _SCHEDULE_ID}, ("scheduleId",)),
        "outputSchema": SCHEDULE_RESULT_SCHEMA,
    },
    {
        "name": "ResumeSchedule",
        "description": "Resume a paused schedule from its next slot.",
        "inputSchema": object_schema({"scheduleId": _SCHEDULE_ID}, ("scheduleId",)),
        "outputSchema": SCHEDULE_RESULT_SCHEMA,
    },
]

