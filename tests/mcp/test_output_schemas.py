"""Every tool publishes an outputSchema, and what it returns on success conforms to it.

Hosts validate structured content against the schema (the TypeScript SDK rejects a result
that does not fit), so a wrong schema breaks a tool for every user of that host.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from engine_helpers import agent_env, make_config, wait_for_state, wait_until
from mcp import Client
from mcp_helpers import assert_matches_output_schema
from test_tools import call

from claudine_core.agents import inbox
from claudine_core.engine import Engine
from claudine_core.mcp import tools as mcp_tools
from claudine_core.mcp.front import build_server
from claudine_core.mcp.handlers import task_view
from claudine_core.mcp.tools import TOOLS, TOOLS_BY_NAME
from claudine_core.models import DependencyPolicy, Priority, Task, TaskState

DONE = {TaskState.COMPLETED, TaskState.FAILED, TaskState.CANCELLED}


def a_task(**fields: Any) -> Task:
    return Task(id="task-0123456789ab", seq=1, prompt="p", priority=Priority.P1,
                status=TaskState.QUEUED, cwd="/tmp", created_at=1_700_000_000.0, **fields)


def test_every_tool_has_an_object_output_schema() -> None:
    assert [tool["name"] for tool in TOOLS if "outputSchema" not in tool] == []
    for tool in TOOLS:
        assert tool["outputSchema"]["type"] == "object", tool["name"]  # what MCP requires


def test_the_task_schema_names_every_field_of_a_task() -> None:
    """A field added to Task (or dropped) must be described, or hosts would reject results."""
    schema = TOOLS_BY_NAME["TaskStatus"]["outputSchema"]["oneOf"][0]["properties"]["task"]
    assert set(schema["properties"]) == set(task_view(a_task()))
    assert set(schema["required"]) == set(task_view(a_task()))


def test_a_task_with_every_field_set_fits_the_schema() -> None:
    """Both the defaults (mostly null) and every optional field filled in."""
    full = a_task(
        model="sonnet", timeout_s=60.5, max_output_bytes=4096, permission_mode="acceptEdits",
        allowed_tools=("Read", "Bash"), started_at=1_700_000_001.0, ended_at=1_700_000_002.0,
        exit_code=-15, error="stopped", session_id="s-1", num_turns=3, cost_usd=0.25, pid=42,
        attempt=2, not_before=1_700_000_003.0, last_activity="Bash: ls",
        last_activity_at=1_700_000_004.0, result="done", is_error=False, api_error_status=529,
        resume_session_id="s-0", parent_id="task-ba9876543210", cancel_requested=True,
        cancel_reason="why", output_bytes=10, output_truncated=True, worktree=True,
        base_branch="main", branch="claudine/01234567-p", worktree_path="/w",
        merge_strategy="patch", merge={"strategy": "patch", "status": "kept", "at": 1.5},
        commit_changes=False, claude_bin="/usr/bin/claude", agent_env={"IS_SANDBOX": "1"},
        agent_args=("--verbose",), updated_at=1_700_000_005.0, pid_started_at=1_700_000_000.5,
        resume_prompt="go on", depends_on=("task-ba9876543210",),
        on_dependency_failure=DependencyPolicy.CANCEL, continue_from="task-ba9876543210",
        end_state={"branch": "main", "commit": "0123abc", "changed_files": ["a.py"]},
        schedule_id="sched-0123456789ab", pipeline_id="pipe-0123456789ab", pipeline_step=2,
        notified_at=1_700_000_006.0, max_budget_usd=2.5, fallback_model="haiku",
        parked_until=1_700_000_007.0, parks=1, resuming=True, node="node-3f2a",
        attempts=({"attempt": 1, "started_at": "2026-01-01T00:00:00.000Z",
                   "ended_at": "2026-01-01T00:00:01.000Z", "state": "failed",
                   "error": "API error 529", "exit_code": 1},),
    )
    unset = [f.name for f in dataclasses.fields(Task)
             if getattr(full, f.name) == getattr(a_task(), f.name)
             and f.name not in {"id", "seq", "prompt", "priority", "status", "cwd",
                                "created_at"}]
    assert unset == []  # the test really fills every optional field
    for task in (a_task(), full):
        view = task_view(task)
        assert_matches_output_schema("DelegateTask",
                                     {"taskId": view["id"], "status": view["status"],
                                      "task": view})


@pytest.mark.parametrize(
    "breakage",
    [
        lambda r: r.update(status="done"),
        lambda r: r.pop("counts"),
        lambda r: r.update(nextOffset="2"),
        lambda r: r["tasks"][0].update(priority="urgent"),
        lambda r: r["tasks"][0].pop("cost_usd"),
        lambda r: r.update(taskId="task-0123456789ab"),  # mixes the two shapes of TaskStatus
        lambda r: r.update(usagePause={"until": "soon"}),
    ],
)
def test_the_check_rejects_a_result_that_does_not_fit(breakage: Any) -> None:
    view = task_view(a_task())
    page = {"tasks": [view], "total": 1, "offset": 0, "limit": 20, "hasMore": False,
            "nextOffset": None, "counts": {state: 0 for state in mcp_tools.STATES},
            "usagePause": None}
    assert_matches_output_schema("TaskStatus", page)
    breakage(page)
    with pytest.raises(AssertionError, match="breaks its outputSchema"):
        assert_matches_output_schema("TaskStatus", page)


async def test_every_tool_succeeds_within_its_schema(tmp_path: Path) -> None:
    """One real success of each tool (both TaskStatus modes, logs before and after a run),
    each checked against the schema published in tools/list."""
    config = make_config(tmp_path / "home", max_agents=1)  # later tasks stay queued
    work = tmp_path / "work"
    work.mkdir()
    engine = Engine(config, kind="mcp", env=agent_env())
    await engine.start()
    seen: set[str] = set()

    async def ok(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
        structured, _ = await call(client, tool, **arguments)  # the SDK client checks it too
        seen.add(tool)
        return structured

    try:
        async with Client(build_server(config, engine=engine)) as client:
            published = {t.name: t.output_schema for t in (await client.list_tools()).tools}
            assert published == {t["name"]: t["outputSchema"] for t in TOOLS}
            first = (await ok(client, "DelegateTask", prompt="[crash]",
                              workingDirectory=str(work)))["taskId"]
            await wait_for_state(engine, first, DONE)
            await ok(client, "TaskLogs", taskId=first)  # with stderr and a path
            hang = (await ok(client, "DelegateTask", prompt="[hang]", priority="P0",
                             workingDirectory=str(work), useWorktree=False))["taskId"]
            await wait_for_state(engine, hang, {TaskState.RUNNING})
            await wait_until(lambda: any(inbox.accepting(str(d))
                                         for d in engine.service.attempt_dirs(hang)))
            await ok(client, "SendMessage", taskId=hang, message="and then?")
            await ok(client, "TaskStatus", taskId=hang)  # with its message
            queued = (await ok(client, "RetryTask", taskId=first))["taskId"]
            await ok(client, "TaskLogs", taskId=queued)  # not started: nulls
            await ok(client, "SetTaskPriority", taskId=queued, priority="P1")
            await ok(client, "ResumeTask", taskId=first, additionalContext="go on")
            await ok(client, "TaskStatus", taskId=queued)
            page = await ok(client, "TaskStatus", limit=2)
            assert page["hasMore"] and page["nextOffset"] == 2
            await ok(client, "CancelTask", taskId=queued)
            await ok(client, "CancelTask", taskId=hang)  # running: cancel requested
            made = await ok(client, "CreatePipeline", steps=["a", "b"],
                            workingDirectory=str(work), continueConversation=True)
            await ok(client, "CancelTask", taskId=made["tasks"][1]["taskId"],
                     wholePipeline=True)
    finally:
        await engine.stop(stop_agents=True)
    # The schedule tools' successes are checked in test_schedule_tools.py.
    from claudine_core.mcp.schedule_handlers import SCHEDULE_HANDLERS

    assert seen == set(TOOLS_BY_NAME) - set(SCHEDULE_HANDLERS)
