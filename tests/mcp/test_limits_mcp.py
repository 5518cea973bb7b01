"""Usage limits and budgets through the MCP tools: maxBudgetUsd and fallbackModel reach the
agent, bad values are refused naming the argument, and a parked task (stopped by the
subscription's usage limit, ``[usage-limit:S]`` of the fake agent) shows in TaskStatus
with the home's pause and can be cancelled. In memory with the SDK's client, and
DelegateTask once over the real stdio of ``claudine --headless``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from engine_helpers import agent_env, wait_for_state
from mcp_helpers import StdioServer, assert_matches_output_schema
from test_tools import call, call_error

from claudine_core.engine import Engine
from claudine_core.models import TaskState

DONE = {TaskState.COMPLETED, TaskState.FAILED, TaskState.CANCELLED}


@pytest.fixture
def runs_log(tmp_path: Path) -> Path:
    return tmp_path / "agent-runs.jsonl"


@pytest.fixture
def agent_environment(runs_log: Path) -> dict[str, str]:
    """The fake agents of ``engine`` log their argv to ``runs_log``."""
    return agent_env(FAKE_CLAUDE_LOG=str(runs_log))


def runs(runs_log: Path) -> list[list[str]]:
    """Each agent run's argv, in the order they started."""
    return [json.loads(line)["argv"] for line in runs_log.read_text().splitlines()]


def flag_value(argv: list[str], flag: str) -> str | None:
    return argv[argv.index(flag) + 1] if flag in argv else None


async def test_budget_and_fallback_reach_the_agent(
        connect: Any, engine: Engine, workdir: str, runs_log: Path) -> None:
    async with connect() as client:
        structured, _ = await call(client, "DelegateTask", prompt="hi", workingDirectory=workdir,
                                   model="opus", maxBudgetUsd=2.5, fallbackModel="haiku")
        task = structured["task"]
        assert (task["max_budget_usd"], task["fallback_model"]) == (2.5, "haiku")
        done = await wait_for_state(engine, structured["taskId"], DONE)
        assert done.status is TaskState.COMPLETED, done.error
        argv = runs(runs_log)[-1]
        assert flag_value(argv, "--max-budget-usd") == "2.5"
        assert flag_value(argv, "--fallback-model") == "haiku"

        # An integer number of dollars is a number too.
        structured, _ = await call(client, "DelegateTask", prompt="whole",
                                   workingDirectory=workdir, maxBudgetUsd=3)
        await wait_for_state(engine, structured["taskId"], DONE)
        assert flag_value(runs(runs_log)[-1], "--max-budget-usd") == "3"
        assert "--fallback-model" not in runs(runs_log)[-1]


async def test_pipeline_and_schedule_take_them_for_each_task(
        connect_waiting: Any, workdir: str) -> None:
    async with connect_waiting() as client:
        made, _ = await call(client, "CreatePipeline", steps=["one", "two"],
                             workingDirectory=workdir, maxBudgetUsd=0.5,
                             fallbackModel="sonnet")
        assert [(t["max_budget_usd"], t["fallback_model"]) for t in made["tasks"]] == [
            (0.5, "sonnet"), (0.5, "sonnet")]
        scheduled, _ = await call(client, "ScheduleTask", prompt="nightly",
                                  scheduleType="cron", cronExpression="0 3 * * *",
                                  workingDirectory=workdir, maxBudgetUsd=1.25,
                                  fallbackModel="haiku")
        template = scheduled["schedule"]["template"]
        assert (template["max_budget_usd"], template["fallback_model"]) == (1.25, "haiku")


@pytest.mark.parametrize(
    ("arguments", "words"),
    [
        ({"maxBudgetUsd": 0}, "maxBudgetUsd 0 is out of range: give more than 0 and at most "
         "10000"),
        ({"maxBudgetUsd": -1.5}, "maxBudgetUsd -1.5 is out of range"),
        ({"maxBudgetUsd": 10000.01}, "maxBudgetUsd 10000.01 is out of range"),
        ({"maxBudgetUsd": "2"}, "maxBudgetUsd must be a number, not a string"),
        ({"maxBudgetUsd": True}, "maxBudgetUsd must be a number, not a boolean"),
        ({"maxBudgetUsd": 10**400}, "maxBudgetUsd must be a finite number"),
        ({"fallbackModel": "my model"}, "fallbackModel: 'my model' is not a model name"),
        ({"fallbackModel": ""}, "fallbackModel is empty"),
        ({"model": "sonnet", "fallbackModel": "sonnet"},
         "fallbackModel: the fallback model 'sonnet' is the model itself"),
    ],
)
async def test_a_bad_value_is_refused_naming_its_argument(
        connect_waiting: Any, workdir: str, arguments: dict[str, Any], words: str) -> None:
    async with connect_waiting() as client:
        for tool, own in (("DelegateTask", {"prompt": "x"}),
                          ("CreatePipeline", {"steps": ["x"]}),
                          ("ScheduleTask", {"prompt": "x", "scheduleType": "cron",
                                            "cronExpression": "0 3 * * *"})):
            text = await call_error(client, tool, **own, workingDirectory=workdir,
                                    **arguments)
            assert words in text, (tool, text)
        page, _ = await call(client, "TaskStatus")
        assert page["total"] == 0
        schedules, _ = await call(client, "ListSchedules")
        assert schedules["total"] == 0


async def test_a_parked_task_and_the_pause_in_task_status(
        connect: Any, engine: Engine, workdir: str) -> None:
    async with connect() as client:
        page, text = await call(client, "TaskStatus")
        assert page["usagePause"] is None and not text.startswith("The home is paused")

        structured, _ = await call(client, "DelegateTask", prompt="[usage-limit:600] report",
                                   workingDirectory=workdir)
        task_id = structured["taskId"]
        parked = await wait_for_state(engine, task_id, {TaskState.PARKED, *DONE})
        assert parked.status is TaskState.PARKED, parked.error

        one, text = await call(client, "TaskStatus", taskId=task_id)
        assert one["status"] == "parked" and one["task"]["parks"] == 1
        until = one["task"]["parked_until"]
        assert until and until.endswith("Z")
        assert one["waitingReason"] == (f"parked until {until} (usage limit reached "
                                        "(five-hour)); it continues its session then")
        assert f"A usage limit stopped it; it is parked until {until}" in text
        assert "CancelTask cancels it" in text

        page, text = await call(client, "TaskStatus")
        assert page["usagePause"]["kind"] == "usage"
        assert page["usagePause"]["until"] == until
        assert page["usagePause"]["task_id"] == task_id
        assert page["counts"]["parked"] == 1
        assert text.startswith(f"The home is paused: usage limit reached (five-hour) until "
                               f"{until} (1 task(s) parked); no new agent starts until then.")

        cancelled, text = await call(client, "CancelTask", taskId=task_id)
        assert cancelled["status"] == "cancelled"
        assert "It was parked after a usage limit and will not continue" in text
        page, _ = await call(client, "TaskStatus", status=["parked"])
        assert page["total"] == 0
        assert page["usagePause"] is not None  # the home waits for the reset all the same


def test_delegate_with_a_budget_over_stdio(home_env: tuple[Path, dict[str, str]],
                                           tmp_path: Path) -> None:
    _, env = home_env
    server = StdioServer(env, cwd=str(tmp_path))
    try:
        server.initialize()
        result = server.call("DelegateTask", prompt="over stdio", maxBudgetUsd=0.25,
                             fallbackModel="haiku")
        assert not result["isError"], result
        assert_matches_output_schema("DelegateTask", result["structuredContent"])
        task_id = result["structuredContent"]["taskId"]
        assert server.wait_for_status(task_id, {"completed", "failed"})["status"] == \
            "completed"
        refused = server.call("DelegateTask", prompt="x", maxBudgetUsd=0)
        assert refused["isError"]
        assert "maxBudgetUsd 0 is out of range" in refused["content"][0]["text"]
    finally:
        assert server.close() == 0
    argv = runs(tmp_path / "agent-runs.jsonl")[-1]
    assert flag_value(argv, "--max-budget-usd") == "0.25"
    assert flag_value(argv, "--fallback-model") == "haiku"
