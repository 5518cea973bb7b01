"""The MCP tool catalogue: names, JSON schemas, argument checks.

This module is what the headless server needs to answer ``initialize`` and ``tools/list``
before the ``mcp`` SDK (about a second to import) and the engine have loaded, so it must
stay free of third-party imports: it builds on the task declarations (models), the request
rules (task_request) and the settings table, which the front has loaded anyway. The SDK
server (sdk_bridge.py) publishes the very same dictionaries, and a test checks that both
paths answer identically.

The task object in results is derived from the Task declaration, the ranges of delegate's
arguments from the settings table, the choices from the enums: nothing is listed twice.

The tool names are those of the original TypeScript claudine, so existing prompts work.
"""

from __future__ import annotations

import math
from typing import Any

from claudine_core.errors import EXIT_USAGE, ClaudineError
from claudine_core.mcp.schedule_tools import SCHEDULE_TOOLS
from claudine_core.mcp.schema_parts import BUDGET_USD
from claudine_core.mcp.schema_parts import nullable as _maybe
from claudine_core.mcp.schema_parts import object_schema as _schema
from claudine_core.mcp.schema_parts import result_schema as _result
from claudine_core.mcp.task_schema import task_properties
from claudine_core.models import (
    MAX_DEPENDENCIES,
    TASK_ID_PATTERN,
    DependencyPolicy,
    MergeStrategy,
    Priority,
    TaskState,
)
from claudine_core.task_request import (
    MAX_FIELD_CHARS,
    MAX_PIPELINE_STEPS,
    MAX_PROMPT_BYTES,
    setting_bounds,
)

SERVER_NAME = "claudine"
SERVER_VERSION = "0.1.0"
INSTRUCTIONS = (
    "claudine runs background Claude Code agents. DelegateTask queues work and returns a "
    "task id at once; poll TaskStatus, read TaskLogs, and CancelTask/RetryTask/ResumeTask/"
    "SendMessage/SetTaskPriority to steer. Tasks also appear in the claudine console."
)
# Mirrors mcp_types.version (checked by a test): the versions the legacy handshake accepts.
HANDSHAKE_PROTOCOL_VERSIONS = ("2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25")
LATEST_HANDSHAKE_VERSION = "2025-11-25"

STATES = tuple(state.value for state in TaskState)
PRIORITIES = tuple(str(priority) for priority in Priority)
MERGE_STRATEGIES = tuple(strategy.value for strategy in MergeStrategy)
MAX_LIST_LIMIT = 200
MAX_TAIL_LINES = 10_000
# The door checks the same limits as claudine_core.task_request (it is where they live).
_TIMEOUT_S = setting_bounds("task_timeout_s")
_OUTPUT_BYTES = setting_bounds("max_output_bytes")
NAME_MAX = 255  # bytes in one file or directory name, on Linux and macOS alike
MAX_INTEGER = 2**53 - 1  # any integer argument: what every JSON parser reads exactly
_PROMPT_FIELDS = frozenset({"prompt", "additionalContext", "steps", "message"})  # in bytes of UTF-8

_TASK_ID: dict[str, Any] = {
    "type": "string",
    "maxLength": MAX_FIELD_CHARS,
    "pattern": TASK_ID_PATTERN,
    "description": "Task id as DelegateTask returned it (task- and 12 hex digits). The "
    "8-digit short id shown in the console, or a unique prefix, is accepted too.",
}
_PRIORITY: dict[str, Any] = {
    "type": "string",
    "enum": list(PRIORITIES),
    "description": "P0 urgent, P1 high, P2 normal; P0 runs before P1 before P2.",
}




# -- output schemas (MCP 2025-06-18 structured output) ----------------------------------------
# They describe the structuredContent of successful results only: an isError result carries
# no structuredContent (some clients validate it against outputSchema even on errors).


_STATUS: dict[str, Any] = {"type": "string", "enum": list(STATES)}
_TASK_FIELDS: dict[str, Any] = task_properties()
_TASK: dict[str, Any] = {"type": "object", "properties": _TASK_FIELDS,
                         "required": list(_TASK_FIELDS)}


TASK_RESULT_SCHEMA = _result({
    "taskId": _TASK_FIELDS["taskId"],
    "status": _STATUS,
    "task": _TASK,
})
TASK_PAGE_SCHEMA = _result({
    "tasks": {"type": "array", "items": _TASK, "description": "Newest first."},
    "total": {"type": "integer", "minimum": 0, "description": "Tasks matching the filter."},
    "offset": {"type": "integer", "minimum": 0},
    "limit": {"type": "integer", "minimum": 1},
    "hasMore": {"type": "boolean"},
    "nextOffset": _maybe("integer", "The offset of the next page (null: no more)."),
    "counts": _result({state: {"type": "integer", "minimum": 0} for state in STATES}),
    "usagePause": {
        "type": ["object", "null"],
        "description": "The home's pause after a usage limit: no new agent starts until "
        "`until` (tasks the limit stopped are parked and continue then); null: not paused.",
        "properties": {
            "until": {"type": "string", "description": "When the limit resets (ISO 8601 in "
                      "UTC)."},
            "kind": {"type": "string", "enum": ["usage", "rate"],
                     "description": "usage: the subscription's usage limit; rate: an API "
                     "rate limit."},
            "reason": {"type": "string", "description": "What hit the limit, in words."},
            "since": {"type": "string", "description": "When the pause began (ISO 8601 in "
                      "UTC)."},
            "task_id": _maybe("string", "The task whose run hit the limit first."),
        },
        "required": ["until", "kind", "reason", "since", "task_id"],
    },
})
LOGS_RESULT_SCHEMA = _result({
    "taskId": _TASK_FIELDS["taskId"],
    "status": _STATUS,
    "lines": {"type": "array", "items": {"type": "string"},
              "description": "Readable lines, the last `tail` of them."},
    "totalLines": {"type": "integer", "minimum": 0,
                   "description": "Readable lines found reading back from the end: all of "
                   "them unless truncated (then at least this many)."},
    "truncated": {"type": "boolean", "description": "Earlier lines were left out."},
    "stderr": _maybe("string", "The end of the agent's stderr."),
    "path": _maybe("string", "The raw stream-json file (null: not started)."),
})
TASK_STATUS_SCHEMA = _result({
    **TASK_RESULT_SCHEMA["properties"],
    "waitingReason": _maybe("string", "Why a queued task has not started, as the engine "
                            "owner decided it (e.g. 'CPU 91% > 80%', '2/2 agents running "
                            "(max)', a memory shortage, a retry back-off, the home's "
                            "usage-limit pause, or no owner running), or until when a "
                            "parked task waits for a usage limit to reset; null when it is "
                            "not waiting or is about to start."),
    "agentEnded": {"type": "boolean", "description": "The task is still recorded as running "
                   "but its agent has ended: an owner has not recorded the outcome yet."},
})
_MESSAGE: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "description": "Message id (msg-...)."},
        "task_id": {"type": "string", "description": "The task it was sent to."},
        "text": {"type": "string", "description": "What was sent."},
        "created_at": _maybe("string", "When it was sent (ISO 8601)."),
        "attempt": _maybe("integer", "The attempt it was posted to (null: none yet)."),
        "resume_task_id": _maybe("string", "The task continuing the conversation with it "
                                 "(it was sent to a finished task)."),
        "delivered_at": _maybe("string", "When the agent was handed it (null: not yet)."),
    },
    "required": ["id", "task_id", "text", "created_at", "attempt", "resume_task_id",
                 "delivered_at"],
}
TASK_STATUS_SCHEMA["properties"]["messages"] = {
    "type": "array", "items": _MESSAGE,
    "description": "Messages sent to the task (SendMessage), oldest first, with delivery."}
SEND_MESSAGE_RESULT_SCHEMA = _result({
    "taskId": _TASK_FIELDS["taskId"],
    "message": _MESSAGE,
    "resumeTaskId": _maybe("string", "The new task that continues a finished task's "
                           "conversation with the message (null: sent to the running agent)."),
})
STATUS_RESULT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "oneOf": [TASK_STATUS_SCHEMA, TASK_PAGE_SCHEMA],
    "description": "One task (with taskId) or a page of tasks (without).",
}


# The task options DelegateTask and CreatePipeline share (a pipeline applies them to each
# of its steps).
_TASK_OPTIONS: dict[str, Any] = {
    "priority": {**_PRIORITY, "default": "P2"},
    "workingDirectory": {
        "type": "string",
        "maxLength": MAX_FIELD_CHARS,
        "description": "Existing directory the agent runs in (absolute path; default: the "
        "directory the server was started in, or for continueFrom the continued task's).",
    },
    "timeout": {"type": "integer", "minimum": int(_TIMEOUT_S[0] * 1000),
                "maximum": int(_TIMEOUT_S[1] * 1000),
                "description": "Milliseconds before the agent is stopped (default: the "
                "configured TASK_TIMEOUT)."},
    "model": {"type": "string", "minLength": 1, "maxLength": MAX_FIELD_CHARS,
              "description": "Model for the agent (claude --model), e.g. sonnet."},
    "maxBudgetUsd": {**BUDGET_USD, "description": "Most the agent may spend, in US dollars "
                     "(claude --max-budget-usd): a run stopped by it fails and is not "
                     "retried. Default: no limit."},
    "fallbackModel": {"type": "string", "minLength": 1, "maxLength": MAX_FIELD_CHARS,
                      "description": "Model the agent falls back to when its model is "
                      "overloaded (claude --fallback-model); not the same as model. "
                      "Default: the configured fallback_model setting."},
    "useWorktree": {"type": "boolean",
                    "description": "Run in a new git worktree on its own branch (true), or "
                    "not (false); default: the configured CLAUDINE_WORKTREE setting."},
    "baseBranch": {"type": "string", "minLength": 1, "maxLength": MAX_FIELD_CHARS,
                   "description": "Branch the worktree starts from (needs useWorktree; "
                   "default: the current branch)."},
    "mergeStrategy": {"type": "string", "enum": list(MERGE_STRATEGIES),
                      "description": "What happens to the worktree branch when the task "
                      "ends (needs useWorktree)."},
    "autoCommit": {"type": "boolean",
                   "description": "Whether to commit what the agent left uncommitted in its "
                   "worktree when it ends (needs useWorktree; default: the repository's "
                   ".claudine.toml setting, which defaults to true)."},
}
_PIPELINE_ID: dict[str, Any] = {"type": "string", "pattern": r"^pipe-[0-9a-f]{12}$",
                                "description": "The pipeline id (pipe- and 12 hex digits)."}
PIPELINE_RESULT_SCHEMA = _result({
    "pipelineId": _PIPELINE_ID,
    "tasks": {"type": "array", "items": _TASK,
              "description": "The steps' tasks, first step first."},
})


TOOLS: list[dict[str, Any]] = [
    {
        "name": "DelegateTask",
        "description": "Queue a task for a background Claude Code agent and return its id at "
        "once (the agent runs asynchronously; follow it with TaskStatus and TaskLogs).",
        "inputSchema": _schema(
            {
                "prompt": {"type": "string", "minLength": 1, "maxLength": MAX_PROMPT_BYTES,
                           "description": "What the agent should do, self-contained."},
                **_TASK_OPTIONS,
                "maxOutputBuffer": {"type": "integer", "minimum": int(_OUTPUT_BYTES[0]),
                                    "maximum": int(_OUTPUT_BYTES[1]),
                                    "description": "Bytes of agent output kept (default: "
                                    "the configured MAX_OUTPUT_BUFFER)."},
                "dependsOn": {"type": "array", "maxItems": MAX_DEPENDENCIES,
                              "items": {"type": "string", "minLength": 1,
                                        "maxLength": MAX_FIELD_CHARS},
                              "description": "Task ids this task waits for: it stays "
                              "blocked until all of them completed."},
                "onDependencyFailure": {"type": "string",
                                        "enum": [p.value for p in DependencyPolicy],
                                        "description": "When a dependency fails or is "
                                        "cancelled: fail (default; run with continueFrom), "
                                        "cancel, or run anyway."},
                "continueFrom": {**_TASK_ID,
                                 "description": "A task whose conversation this one "
                                 "continues (claude --resume --fork-session, in its "
                                 "directory or worktree) once it has ended; it is also a "
                                 "dependency. Without a session to resume, the agent starts "
                                 "afresh told what that task left."},
            },
            ("prompt",),
        ),
        "outputSchema": TASK_RESULT_SCHEMA,
    },
    {
        "name": "TaskStatus",
        "description": "One task's status and result by taskId; without taskId, a page of "
        "tasks (newest first), optionally filtered by status.",
        "inputSchema": _schema(
            {
                "taskId": _TASK_ID,
                "status": {
                    "type": "array",
                    "items": {"type": "string", "enum": list(STATES)},
                    "description": "Only tasks in these states (list mode).",
                },
                "limit": {"type": "integer", "minimum": 1, "maximum": MAX_LIST_LIMIT,
                          "default": 20, "description": "Tasks per page (list mode)."},
                "offset": {"type": "integer", "minimum": 0, "maximum": MAX_INTEGER,
                           "default": 0,
                           "description": "Tasks to skip (list mode); use nextOffset."},
            }
        ),
        "outputSchema": STATUS_RESULT_SCHEMA,
    },
    {
        "name": "TaskLogs",
        "description": "Readable output of a task's agent (latest attempt): assistant text, "
        "tool calls and results, the final result.",
        "inputSchema": _schema(
            {
                "taskId": _TASK_ID,
                "tail": {"type": "integer", "minimum": 1, "maximum": MAX_TAIL_LINES,
                         "default": 100, "description": "Only the last N lines."},
            },
            ("taskId",),
        ),
        "outputSchema": LOGS_RESULT_SCHEMA,
    },
    {
        "name": "CancelTask",
        "description": "Cancel a queued, parked or running task (a running agent is "
        "stopped); with "
        "wholePipeline, every unfinished step of the pipeline the task is a step of.",
        "inputSchema": _schema(
            {"taskId": _TASK_ID,
             "reason": {"type": "string", "maxLength": MAX_FIELD_CHARS,
                        "description": "Why; recorded on the task."},
             "wholePipeline": {"type": "boolean", "default": False,
                               "description": "Cancel every unfinished step of the task's "
                               "pipeline (the result is the given task)."}},
            ("taskId",),
        ),
        "outputSchema": TASK_RESULT_SCHEMA,
    },
    {
        "name": "RetryTask",
        "description": "Run a finished task again from scratch, as a new task.",
        "inputSchema": _schema({"taskId": _TASK_ID}, ("taskId",)),
        "outputSchema": TASK_RESULT_SCHEMA,
    },
    {
        "name": "ResumeTask",
        "description": "Continue a finished task's agent session (claude --resume) as a new "
        "task, with optional extra instructions.",
        "inputSchema": _schema(
            {"taskId": _TASK_ID,
             "additionalContext": {"type": "string", "maxLength": MAX_PROMPT_BYTES,
                                   "description": "What to tell the resumed agent "
                                   "(default: 'Continue the task.')."}},
            ("taskId",),
        ),
        "outputSchema": TASK_RESULT_SCHEMA,
    },
    {
        "name": "SendMessage",
        "description": "Send a message to a task's agent. A running agent reads it at its "
        "next turn (without restarting); a finished task's conversation continues with it "
        "as a new task (like ResumeTask). Refused for a task that has not started. "
        "TaskStatus shows whether it has been delivered.",
        "inputSchema": _schema(
            {"taskId": _TASK_ID,
             "message": {"type": "string", "minLength": 1, "maxLength": MAX_PROMPT_BYTES,
                         "description": "What to tell the agent."}},
            ("taskId", "message"),
        ),
        "outputSchema": SEND_MESSAGE_RESULT_SCHEMA,
    },
    {
        "name": "SetTaskPriority",
        "description": "Change the priority of a task still waiting in the queue.",
        "inputSchema": _schema({"taskId": _TASK_ID, "priority": _PRIORITY},
                               ("taskId", "priority")),
        "outputSchema": TASK_RESULT_SCHEMA,
    },
    {
        "name": "CreatePipeline",
        "description": "Queue a pipeline: one task per step, each starting once the one "
        "before it completed (a failed step fails the rest), all created at once. With "
        "continueConversation each step continues the previous step's conversation.",
        "inputSchema": _schema(
            {
                "steps": {"type": "array", "minItems": 1, "maxItems": MAX_PIPELINE_STEPS,
                          # An empty prompt is refused by the core, naming its step.
                          "items": {"type": "string", "maxLength": MAX_PROMPT_BYTES},
                          "description": "The steps' prompts, in order."},
                "continueConversation": {"type": "boolean", "default": False,
                                         "description": "Each step continues the previous "
                                         "step's agent conversation (claude --resume)."},
                **_TASK_OPTIONS,
            },
            ("steps",),
        ),
        "outputSchema": PIPELINE_RESULT_SCHEMA,
    },
]
TOOLS.extend(SCHEDULE_TOOLS)
TOOLS_BY_NAME = {tool["name"]: tool for tool in TOOLS}


class ToolInputError(ClaudineError, ValueError):
    """The arguments do not fit the tool's schema; the message says how to fix them."""

    exit_status = EXIT_USAGE


def initialize_result(params: dict[str, Any] | None) -> dict[str, Any]:
    """The ``initialize`` result, negotiated the way the SDK's runner does it."""
    requested = (params or {}).get("protocolVersion")
    version = requested if requested in HANDSHAKE_PROTOCOL_VERSIONS else LATEST_HANDSHAKE_VERSION
    return {
        "protocolVersion": version,
        "capabilities": {"tools": {"listChanged": False}},
        "serverInfo": {"name": SERVER_NAME, "version": SERVER_VERSION},
        "instructions": INSTRUCTIONS,
    }


def check_arguments(name: Any, arguments: Any) -> dict[str, Any]:
    """Validate ``arguments`` against the tool's schema; defaults filled in.

    Whatever a client sends (any JSON value, or any Python value from an embedder), this
    returns clean arguments or raises ToolInputError naming the argument at fault: never
    another exception. Text is refused if no agent or store could take it (a NUL
    character, a lone UTF-16 surrogate) or it is over its maxLength; integers must be
    exact (no more than 2**53 - 1 in size) and within the schema's range.

    Raises:
        ToolInputError: unknown tool, unknown or missing fields, wrong types or ranges.
    """
    tool = TOOLS_BY_NAME.get(name) if isinstance(name, str) else None
    if tool is None:
        raise ToolInputError(f"unknown tool {_show(name)}: the tools are "
                             f"{', '.join(TOOLS_BY_NAME)}")
    if arguments is None:
        arguments = {}
    if not isinstance(arguments, dict):
        raise ToolInputError(f"{name} takes its arguments as an object (field: value), "
                             f"not {_json_type(arguments)}")
    schema = tool["inputSchema"]
    props: dict[str, Any] = schema["properties"]
    unknown = [field for field in arguments if field not in props]
    if unknown:
        shown = ", ".join(_show(field) for field in unknown[:5])
        more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        raise ToolInputError(f"{name} does not take {shown}{more}; "
                             f"its fields are {', '.join(props)}")
    missing = [field for field in schema["required"] if arguments.get(field) is None]
    if missing:
        raise ToolInputError(f"{name} needs {', '.join(map(repr, missing))}")
    clean: dict[str, Any] = {}
    for field, spec in props.items():
        value = arguments.get(field)
        if value is None:
            if "default" in spec:
                clean[field] = spec["default"]
            continue
        clean[field] = _check_value(field, value, spec)
    return clean


def _check_value(field: str, value: Any, spec: dict[str, Any]) -> Any:
    kind = spec.get("type")
    if kind == "string":
        if not isinstance(value, str):
            raise ToolInputError(f"{field} must be a string, not {_json_type(value)}")
        _check_text(field, value, spec)
        if len(value.strip()) < spec.get("minLength", 0):
            raise ToolInputError(f"{field} is empty")
        if "enum" in spec and value not in spec["enum"]:
            upper = value.strip().upper() if spec["enum"] == list(PRIORITIES) else value
            if upper in spec["enum"]:
                return upper
            raise ToolInputError(f"{field} {_show(value)} is not one of "
                                 f"{', '.join(spec['enum'])}")
        return value
    if kind == "integer":
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ToolInputError(f"{field} must be an integer, not {_json_type(value)}")
        low = spec.get("minimum", -MAX_INTEGER)
        high = min(spec.get("maximum", MAX_INTEGER), MAX_INTEGER)
        if high < MAX_INTEGER and not low <= value <= high:
            raise ToolInputError(f"{field} {_show(value)} is out of range: use {low} to {high}")
        if value < low:
            raise ToolInputError(f"{field} must be at least {low}")
        if value > high:
            raise ToolInputError(f"{field} {_show(value)} is too large: the most is {high}")
        return value
    if kind == "number":
        return _check_number(field, value, spec)
    if kind == "boolean":
        if not isinstance(value, bool):
            raise ToolInputError(f"{field} must be true or false, not {_json_type(value)}")
        return value
    if kind == "array":
        items = [value] if isinstance(value, str) else value  # a lone state is fine too
        if not isinstance(items, list):
            raise ToolInputError(f"{field} must be a list, not {_json_type(value)}")
        low, high = spec.get("minItems", 0), spec.get("maxItems")
        if len(items) < low or (high is not None and len(items) > high):
            span = f"{low} to {high}" if high is not None else f"at least {low}"
            raise ToolInputError(f"{field} has {len(items)} item(s): give {span}")
        checked = [_check_value(field, item, spec["items"]) for item in items]
        if "enum" in spec["items"]:  # a set of choices: each once, however often it is sent
            checked = list(dict.fromkeys(checked))
        return checked
    return value


def _check_number(field: str, value: Any, spec: dict[str, Any]) -> float:
    """A finite number within the schema's range (exclusiveMinimum and maximum)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ToolInputError(f"{field} must be a number, not {_json_type(value)}")
    try:
        number = float(value)
    except OverflowError:  # an integer too large for a float
        number = math.inf
    if not math.isfinite(number):
        raise ToolInputError(f"{field} must be a finite number, not {_show(value)}")
    low, high = spec.get("exclusiveMinimum"), spec.get("maximum")
    if (low is not None and number <= low) or (high is not None and number > high):
        span = f"more than {low:g}" if low is not None else "any"
        span += f" and at most {high:g}" if high is not None else ""
        raise ToolInputError(f"{field} {_show(value)} is out of range: give {span}")
    return number


def _check_text(field: str, value: str, spec: dict[str, Any]) -> None:
    """Refuse text that no store, process or JSON encoder can carry, or that is too long."""
    limit = spec.get("maxLength")
    # A prompt's limit is in bytes of UTF-8 (checked below, in the service's words); the
    # character count can only be lower, so it would give a second, vaguer message.
    if limit is not None and len(value) > limit and field not in _PROMPT_FIELDS:
        raise ToolInputError(f"{field} is {len(value):,} characters long: the limit is "
                             f"{limit:,}")
    if "\x00" in value:
        raise ToolInputError(f"{field} contains a NUL character (\\u0000) at position "
                             f"{value.index(chr(0)):,}: remove it")
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise ToolInputError(
            f"{field} is not valid Unicode text: it holds a lone UTF-16 surrogate "
            f"({ascii(value[exc.start])[1:-1]}) at position {exc.start:,}; send the text "
            "as UTF-8 (or escape a character outside the BMP as a surrogate pair)"
        ) from None
    if field == "workingDirectory":
        longest = max(value.split("/"), key=lambda name: len(name.encode("utf-8")))
        if len(longest.encode("utf-8")) > NAME_MAX:
            raise ToolInputError(f"workingDirectory has a name of {len(longest.encode()):,} "
                                 f"bytes in it ({_show(longest, 24)}): no file system takes "
                                 f"names over {NAME_MAX} bytes")
    if field in _PROMPT_FIELDS and size > MAX_PROMPT_BYTES:
        raise ToolInputError(f"{field} is {size:,} bytes of UTF-8: the limit is "
                             f"{MAX_PROMPT_BYTES:,}; put long material in a file in the "
                             "working directory and refer to it")


def _show(value: Any, width: int = 60) -> str:
    """``repr`` of a client's value for a message: ASCII, and cut short if it is long."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INTEGER:
        try:
            return f"(a {len(str(abs(value)))}-digit number)"
        except ValueError:  # past the int-to-text conversion limit
            return "(a number of thousands of digits)"
    text = ascii(value)
    return text if len(text) <= width else text[: width - 5] + "...'"


def _json_type(value: Any) -> str:
    for kind, name in ((bool, "a boolean"), (int, "a number"), (float, "a number"),
                       (str, "a string"), (list, "a list"), (dict, "an object")):
        if isinstance(value, kind):
            return name
    return "null" if value is None else type(value).__name__
