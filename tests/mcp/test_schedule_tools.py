"""The schedule tools over MCP: the original claudine's names and arguments, results that
fit their outputSchema, errors that name the argument, a schedule the owner really fires,
and the same answer from the fast front as from the SDK server."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from engine_helpers import agent_env, make_config, wait_for_state, wait_until
from mcp import Client
from mcp_helpers import INIT_PARAMS, StdioServer
from test_tools import call as sdk_call

from claudine_core.engine import Engine
from claudine_core.mcp.fast_front import StdioFront
from claudine_core.mcp.sdk_bridge import StreamBridge, build_server
from claudine_core.mcp.tools import TOOLS_BY_NAME
from claudine_core.models import TaskState

SCHEDULE_TOOLS = ("ScheduleTask", "ListSchedules", "GetSchedule", "CancelSchedule",
                  "PauseSchedule", "ResumeSchedule")


def in_seconds(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


def test_the_names_and_arguments_are_the_originals() -> None:
    """Prompts written for the TypeScript claudine must keep working."""
    original = {
        "ScheduleTask": {"prompt", "scheduleType", "cronExpression", "scheduledAt", "timezone",
                         "missedRunPolicy", "priority", "workingDirectory", "maxRuns",
                         "expiresAt", "afterSchedule"},
        "ListSchedules": {"status", "limit", "offset"},
        "GetSchedule": {"scheduleId", "includeHistory", "historyLimit"},
        "CancelSchedule": {"scheduleId", "reason"},
        "PauseSchedule": {"scheduleId"},
        "ResumeSchedule": {"scheduleId"},
    }
    for name, arguments in original.items():
        schema = TOOLS_BY_NAME[name]["inputSchema"]
        assert arguments <= set(schema["properties"]), name
        assert schema["additionalProperties"] is False
    assert TOOLS_BY_NAME["ScheduleTask"]["inputSchema"]["required"] == ["prompt",
                                                                        "scheduleType"]
    assert TOOLS_BY_NAME["ScheduleTask"]["inputSchema"]["properties"]["missedRunPolicy"][
        "enum"] == ["skip", "catchup", "fail"]
    assert TOOLS_BY_NAME["ListSchedules"]["inputSchema"]["properties"]["status"]["enum"] == [
        "active", "paused", "completed", "cancelled", "expired"]
    # The other DelegateTask task options are taken for the template too (all but
    # continueFrom: a template continues no task), so a new one fails here until added.
    delegate = set(TOOLS_BY_NAME["DelegateTask"]["inputSchema"]["properties"])
    assert delegate - {"continueFrom"} <= set(
        TOOLS_BY_NAME["ScheduleTask"]["inputSchema"]["properties"])


async def test_every_schedule_tool_succeeds_within_its_schema_and_the_owner_fires(
        tmp_path: Path) -> None:
    config = make_config(tmp_path / "home")
    work = tmp_path / "work"
    work.mkdir()
    engine = Engine(config, kind="mcp", env=agent_env(), tick_s=0.05)
    await engine.start()
    seen: set[str] = set()

    async def ok(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
        structured, _ = await sdk_call(client, tool, **arguments)  # the SDK client checks it too
        seen.add(tool)
        return structured

    try:
        async with Client(build_server(config, engine=engine)) as client:
            nightly = await ok(client, "ScheduleTask", prompt="nightly", scheduleType="cron",
                               cronExpression="0 3 * * *", timezone="Europe/Paris",
                               workingDirectory=str(work), model="sonnet", timeout=60000,
                               maxRuns=5, missedRunPolicy="catchup",
                               expiresAt=in_seconds(86400 * 30))
            assert nightly["schedule"]["template"]["model"] == "sonnet"
            assert nightly["schedule"]["template"]["timeout_s"] == 60
            assert nightly["nextRunAt"].endswith(("T01:00:00.000Z", "T02:00:00.000Z"))
            soon = await ok(client, "ScheduleTask", prompt="soon", scheduleType="one_time",
                            scheduledAt=in_seconds(1.5), workingDirectory=str(work),
                            afterSchedule=nightly["scheduleId"][:10])
            assert soon["schedule"]["after_schedule"] == nightly["scheduleId"]

            def fired() -> dict[str, Any] | None:
                history = engine.service.schedules.history(soon["scheduleId"])
                return history[0].to_json() if history else None

            execution = await wait_until(fired, timeout=30)
            assert execution["outcome"] == "created"
            task = await wait_for_state(engine, execution["task_id"], {TaskState.COMPLETED})
            assert task.schedule_id == soon["scheduleId"]
            detail = await ok(client, "GetSchedule", scheduleId=soon["scheduleId"],
                              includeHistory=True)
            assert detail["status"] == "completed" and detail["schedule"]["runs"] == 1
            assert [e["task_id"] for e in detail["history"]] == [task.id]
            plain = await ok(client, "GetSchedule", scheduleId=nightly["scheduleId"])
            assert plain["history"] is None
            page = await ok(client, "ListSchedules", limit=1)
            assert page["total"] == 2 and page["hasMore"] and page["nextOffset"] == 1
            assert (await ok(client, "ListSchedules", status="completed"))["total"] == 1
            paused = await ok(client, "PauseSchedule", scheduleId=nightly["scheduleId"])
            assert paused["status"] == "paused" and paused["nextRunAt"] is not None
            assert (await ok(client, "ResumeSchedule", scheduleId=nightly["scheduleId"])
                    )["status"] == "active"
            cancelled = await ok(client, "CancelSchedule", scheduleId=nightly["scheduleId"],
                                 reason="no longer needed")
            assert cancelled["schedule"]["cancel_reason"] == "no longer needed"
    finally:
        await engine.stop(stop_agents=True)
    assert seen == set(SCHEDULE_TOOLS)


@pytest.mark.parametrize(("arguments", "words"), [
    ({"scheduleType": "cron"}, ["scheduleType: a cron schedule needs a cron expression"]),
    ({"scheduleType": "cron", "cronExpression": "* * *"}, ["cronExpression:", "needs 5"]),
    ({"scheduleType": "one_time", "scheduledAt": "2020-01-01T00:00:00Z"},
     ["scheduledAt:", "not in the future"]),
    ({"scheduleType": "one_time", "scheduledAt": "soon"}, ["scheduledAt:", "ISO 8601"]),
    ({"scheduleType": "cron", "cronExpression": "0 9 * * *", "timezone": "Mars/Base"},
     ["timezone:", "IANA"]),
    ({"scheduleType": "cron", "cronExpression": "0 9 * * *", "workingDirectory": "/no/dir",
      "timezone": "Mars"}, ["workingDirectory: working directory /no/dir does not exist",
                            "timezone:"]),
    ({"scheduleType": "cron", "cronExpression": "0 9 * * *", "afterSchedule": "sched-ffff"},
     ["afterSchedule:", "ListSchedules"]),
    ({"scheduleType": "cron", "cronExpression": "0 9 * * *", "maxRuns": 0},
     ["maxRuns"]),
    ({"scheduleType": "weekly"}, ["scheduleType", "cron, one_time"]),
])
async def test_bad_arguments_are_error_results_naming_them(
        connect: Callable[[], Client], workdir: str, engine: Engine, arguments: dict[str, Any],
        words: list[str]) -> None:
    async with connect() as client:
        result = await client.call_tool("ScheduleTask", {"prompt": "p",
                                                         "workingDirectory": workdir,
                                                         **arguments})
    assert result.is_error and result.structured_content is None
    text = result.content[0].text  # type: ignore[union-attr]
    for word in words:
        assert word in text, text
    assert engine.service.schedules.list() == []


async def test_unknown_and_finished_schedules_are_error_results(
        connect: Callable[[], Client], workdir: str, engine: Engine) -> None:
    schedule = engine.service.schedules.create({"prompt": "p", "cwd": workdir},
                                               cron="0 9 * * *")
    engine.service.schedules.cancel(schedule.id)
    async with connect() as client:
        unknown = await client.call_tool("GetSchedule", {"scheduleId": "sched-ffffffffffff"})
        again = await client.call_tool("CancelSchedule", {"scheduleId": schedule.id})
        resume = await client.call_tool("ResumeSchedule", {"scheduleId": schedule.short_id})
    assert unknown.is_error and "call ListSchedules" in unknown.content[0].text  # type: ignore[union-attr]
    assert again.is_error and "already cancelled" in again.content[0].text  # type: ignore[union-attr]
    assert resume.is_error and "only a paused" in resume.content[0].text  # type: ignore[union-attr]


# -- the fast front answers as the SDK does -----------------------------------------------


def _line(message: dict[str, Any]) -> bytes:
    return json.dumps(message).encode()


async def front_and_sdk(engine: Engine, params: Callable[[], dict[str, Any]]
                        ) -> tuple[dict[str, Any], dict[str, Any]]:
    """One call answered by the fast front and by the SDK server behind its bridge."""
    init = {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": INIT_PARAMS}
    initialized = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    front_out: list[bytes] = []
    front = StdioFront(engine.config, front_out.append)
    front.engine, front.service = engine, engine.service
    await front._handle(_line(init))
    await front._handle(_line(initialized))
    front_out.clear()
    await front._handle(_line({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
                               "params": params()}))
    assert len(front_out) == 1 and not front.pending, "the front did not answer itself"
    sdk_out: list[bytes] = []
    bridge = StreamBridge(build_server(engine.config, engine=engine), sdk_out.append)
    run = asyncio.ensure_future(bridge.run())
    for message in (init, initialized, {"jsonrpc": "2.0", "id": 7, "method": "tools/call",
                                        "params": params()}):
        await bridge.feed(_line(message))
    deadline = time.monotonic() + 30
    while not any(json.loads(raw).get("id") == 7 for raw in sdk_out):
        assert time.monotonic() < deadline, sdk_out
        await asyncio.sleep(0.01)
    sdk = next(json.loads(raw) for raw in sdk_out if json.loads(raw).get("id") == 7)
    await bridge.close_input()
    await asyncio.wait_for(run, 10)
    return json.loads(front_out[0]), sdk


_IDS = re.compile(r"(sched|task)-[0-9a-f]{12}|\b[0-9a-f]{8}\b")
_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)?")
_SEQ = re.compile(r'"(seq|created_at|updated_at)": [^,}]+')


def normalized(reply: dict[str, Any]) -> Any:
    text = _SEQ.sub(r'"\1": 0', json.dumps(reply, sort_keys=True))
    return json.loads(_IDS.sub("ID", _TIME.sub("TIME", text)))


def cron_schedule(engine: Engine, workdir: str) -> str:
    return engine.service.schedules.create({"prompt": "p", "cwd": workdir},
                                           cron="0 9 * * *").id


CASES: list[tuple[str, Callable[[Engine, str], dict[str, Any]]]] = [
    ("ScheduleTask", lambda e, w: {"prompt": "go", "scheduleType": "cron",
                                   "cronExpression": "*/5 * * * *", "workingDirectory": w,
                                   "priority": "P1"}),
    ("ScheduleTask", lambda e, w: {"prompt": "go", "scheduleType": "one_time",
                                   "scheduledAt": "yesterday", "workingDirectory": w}),
    ("ListSchedules", lambda e, w: {"limit": 2}),
    ("GetSchedule", lambda e, w: {"scheduleId": cron_schedule(e, w), "includeHistory": True}),
    ("GetSchedule", lambda e, w: {"scheduleId": "sched-000000000000"}),
    ("PauseSchedule", lambda e, w: {"scheduleId": cron_schedule(e, w)}),
    ("ResumeSchedule", lambda e, w: {"scheduleId": cron_schedule(e, w)}),
    ("CancelSchedule", lambda e, w: {"scheduleId": cron_schedule(e, w), "reason": "why"}),
]


@pytest.mark.parametrize(("tool", "arguments"), CASES,
                         ids=[f"{n}-{tool}" for n, (tool, _) in enumerate(CASES)])
async def test_the_front_and_the_sdk_answer_a_schedule_call_alike(
        client_engine: Engine, workdir: str, tool: str,
        arguments: Callable[[Engine, str], dict[str, Any]]) -> None:
    for _ in range(3):  # something to list
        cron_schedule(client_engine, workdir)
    front, sdk = await front_and_sdk(
        client_engine, lambda: {"name": tool, "arguments": arguments(client_engine, workdir)})
    assert set(front["result"]) == set(sdk["result"]), (front, sdk)
    assert normalized(front) == normalized(sdk)
    if tool == "ListSchedules":
        assert front == sdk  # read-only: identical


def test_a_real_headless_server_lists_and_answers_the_schedule_tools(
        tmp_path: Path, workdir: str) -> None:
    from engine_helpers import cli_env

    server = StdioServer(cli_env(tmp_path / "home"))
    try:
        server.initialize()
        listed = server.request("tools/list")["result"]["tools"]
        assert [t["name"] for t in listed][-6:] == list(SCHEDULE_TOOLS)
        result = server.call("ScheduleTask", prompt="weekly report", scheduleType="cron",
                             cronExpression="0 9 * * 1", timezone="America/New_York",
                             workingDirectory=workdir)
        assert not result["isError"], result
        schedule_id = result["structuredContent"]["scheduleId"]
        shown = server.call("GetSchedule", scheduleId=schedule_id)
        assert shown["structuredContent"]["schedule"]["timezone"] == "America/New_York"
    finally:
        server.close()


# -- a third-party client that checks results against the outputSchema ------------------------

@pytest.mark.slow
def test_the_inspector_takes_the_schedule_results(
        inspector: Path, home_env: tuple[Path, dict[str, str]], workdir: str) -> None:
    """The TypeScript SDK's client rejects structured content that does not fit the
    outputSchema: a second, independent reading of the schedule schemas."""
    import subprocess

    from mcp_helpers import CLAUDINE

    from claudine_core.ownership import current_owner

    home, env = home_env

    def call(tool: str, *arguments: str) -> Any:
        # The hand-over off, said explicitly: each short-lived server would otherwise
        # leave a background owner behind for the active schedule.
        env_args = [arg for name in ("CLAUDINE_HOME", "CLAUDINE_CLAUDE_BIN", "CLAUDINE_CONFIG",
                                     "CLAUDINE_HANDOFF_ON_EXIT")
                    for arg in ("-e", f"{name}={env[name]}")]
        tool_args = [arg for pair in arguments for arg in ("--tool-arg", pair)]
        result = subprocess.run([str(inspector), "--cli", *env_args, CLAUDINE, "--headless",
                                 "--method", "tools/call", "--tool-name", tool, *tool_args],
                                capture_output=True, text=True, env=env, timeout=120)
        assert result.returncode == 0, result.stderr
        reply = json.loads(result.stdout)
        assert not reply.get("isError"), reply
        return reply["structuredContent"]

    made = call("ScheduleTask", "prompt=from the inspector", "scheduleType=cron",
                "cronExpression=15 4 * * *", "timezone=Asia/Kolkata",
                f"workingDirectory={workdir}")
    assert made["schedule"]["timezone"] == "Asia/Kolkata"
    shown = call("GetSchedule", f"scheduleId={made['scheduleId']}", "includeHistory=true")
    assert shown["history"] == []
    assert call("ListSchedules")["total"] == 1
    assert call("PauseSchedule", f"scheduleId={made['scheduleId']}")["status"] == "paused"
    assert not current_owner(home / "engine.lock")  # no owner was left behind
