"""Stopping a REAL `claude` agent stops every process it started, detached ones included.

The claude Bash tool runs each command in a session of its own, outside the agent's
process group, so a signal to the group alone misses it and whatever it puts in the
background. Here the agent's Bash tool starts four sleepers that each write a pid file,
sleep, then write ``<kind>.out``: one under ``setsid``, one under ``nohup ... &``, one
double-forked by ``bash -c '( ... ) &'`` and one detached and ignoring SIGTERM. The task is
stopped at moments from 0.3 s to 5 s into that tool call, by cancel, timeout, the owner
stopping its agents, ``claudine cancel`` from another process and the MCP CancelTask tool.
Every process of the agent (they all carry a marker in their environment) must be gone by
the time the task has ended, and no ``.out`` file may ever appear.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from pathlib import Path

import pytest
from detached_sleepers import KINDS, Sleepers
from engine_helpers import CLAUDINE, agent_env, cli_env, make_config, wait_for_state, wait_until

from claudine_core.config import Config
from claudine_core.engine import Engine
from claudine_core.models import TERMINAL_STATES, Task, TaskSpec, TaskState
from claudine_core.service import TaskService

pytestmark = pytest.mark.real_claude


def real_config(tmp_path: Path, real_claude_bin: Path, **overrides: object) -> Config:
    return make_config(tmp_path / "home", claude_bin=str(real_claude_bin), kill_grace_s=1,
                       **overrides)


async def start_sleepers(
    engine: Engine, sleepers: Sleepers, cwd: Path, **spec: object
) -> tuple[Task, float]:
    """Delegate the task and wait for its Bash tool call to begin; (task, when it began)."""
    prompt = f"Start the sleepers.\nBASH: {sleepers.command(then='sleep 60')}"
    task = engine.service.delegate(TaskSpec(prompt=prompt, cwd=str(cwd), **spec))  # type: ignore[arg-type]
    await wait_until(sleepers.tool_started, timeout=60, interval=0.02)
    return engine.service.get(task.id), time.monotonic()


@pytest.mark.parametrize("offset", [0.3, 1.0, 2.5, 5.0])
async def test_cancel_stops_detached_processes(
    tmp_path: Path, real_claude_bin: Path, real_claude_env: dict[str, str], offset: float
) -> None:
    sleepers = Sleepers(tmp_path / "sleepers", seconds=offset + 2.5)
    config = real_config(tmp_path, real_claude_bin)
    async with Engine(config, env=sleepers.env(agent_env(**real_claude_env)),
                      tick_s=0.05) as engine:
        task, began = await start_sleepers(engine, sleepers, tmp_path)
        await asyncio.sleep(offset)  # the moment of the cancel, not a wait for an event
        engine.service.cancel(task.id, "changed my mind")
        done = await wait_for_state(engine, task.id, TERMINAL_STATES, timeout=30)
        sleepers.assert_all_gone(engine.service.get(task.id).pid)
        record = json.loads(engine.service.output_path(task.id, "exit.json").read_text())
    assert done.status is TaskState.CANCELLED and done.error == "changed my mind"
    assert record["terminated"] is True
    await sleepers.assert_never_finish(began)
    await wait_until(lambda: not sleepers.processes(), timeout=10)


async def test_timeout_stops_detached_processes(
    tmp_path: Path, real_claude_bin: Path, real_claude_env: dict[str, str]
) -> None:
    # The real CLI needs 2 to 4 s (on a busy machine) to reach its first tool call, so the
    # timeout comes 4 to 6 s into it.
    sleepers = Sleepers(tmp_path / "sleepers", seconds=11)
    config = real_config(tmp_path, real_claude_bin)
    async with Engine(config, env=sleepers.env(agent_env(**real_claude_env)),
                      tick_s=0.05) as engine:
        task, began = await start_sleepers(engine, sleepers, tmp_path, timeout_s=8)
        done = await wait_for_state(engine, task.id, TERMINAL_STATES, timeout=30)
        sleepers.assert_all_gone(task.pid)
    assert done.status is TaskState.FAILED and "timed out after 8s" in (done.error or "")
    assert len(sleepers.recorded_pids()) == len(KINDS)  # they had all started
    await sleepers.assert_never_finish(began)
    await wait_until(lambda: not sleepers.processes(), timeout=10)


async def test_owner_stopping_its_agents_stops_detached_processes(
    tmp_path: Path, real_claude_bin: Path, real_claude_env: dict[str, str]
) -> None:
    offset = 1.0
    sleepers = Sleepers(tmp_path / "sleepers", seconds=offset + 3)
    config = real_config(tmp_path, real_claude_bin)
    engine = Engine(config, env=sleepers.env(agent_env(**real_claude_env)), tick_s=0.05)
    await engine.start()
    try:
        task, began = await start_sleepers(engine, sleepers, tmp_path)
        await asyncio.sleep(offset)  # the moment of the stop
    finally:
        await engine.stop(stop_agents=True)
    service = TaskService(config)
    try:
        done = service.get(task.id)
    finally:
        service.close()
    sleepers.assert_all_gone(task.pid)
    assert done.status is TaskState.CANCELLED
    await sleepers.assert_never_finish(began)
    await wait_until(lambda: not sleepers.processes(), timeout=10)


async def test_what_a_finished_agent_left_running_is_stopped(
    tmp_path: Path, real_claude_bin: Path, real_claude_env: dict[str, str]
) -> None:
    """The agent ends on its own with the sleepers still running in the background."""
    sleepers = Sleepers(tmp_path / "sleepers", seconds=3)
    config = real_config(tmp_path, real_claude_bin)
    async with Engine(config, env=sleepers.env(agent_env(**real_claude_env)),
                      tick_s=0.05) as engine:
        prompt = f"Start and leave.\nBASH: {sleepers.command(then='echo started')}"
        task = engine.service.delegate(TaskSpec(prompt=prompt, cwd=str(tmp_path)))
        began = time.monotonic()
        done = await wait_for_state(engine, task.id, TERMINAL_STATES, timeout=60)
        sleepers.assert_all_gone(engine.service.get(task.id).pid)
        record = json.loads(engine.service.output_path(task.id, "exit.json").read_text())
    assert done.status is TaskState.COMPLETED, done.error
    assert (done.result or "").startswith("FAKE_DONE:")  # the Bash tool call returned
    assert record["terminated"] is False and record["leftover_processes"] >= len(KINDS)
    await sleepers.assert_never_finish(began)


# -- stops that come from another process or another front end --------------------------------


def test_claudine_cancel_from_another_process(
    tmp_path: Path, real_claude_bin: Path, real_claude_env: dict[str, str]
) -> None:
    """`claudine cancel` in one process, the agent owned by `claudine serve` in another."""
    sleepers = Sleepers(tmp_path / "sleepers", seconds=6)
    home = tmp_path / "home"
    env = sleepers.env(cli_env(home, CLAUDINE_CLAUDE_BIN=str(real_claude_bin),
                               CLAUDINE_IDLE_EXIT="30", **real_claude_env))

    def claudine(*args: str, codes: tuple[int, ...] = (0,)) -> str:
        result = subprocess.run([*CLAUDINE, *args], env=env, capture_output=True, text=True,
                                timeout=60, cwd=tmp_path)
        assert result.returncode in codes, (result.returncode, result.stderr)
        return result.stdout

    serve = subprocess.Popen([*CLAUDINE, "serve"], env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        prompt = f"Start the sleepers.\nBASH: {sleepers.command(then='sleep 60')}"
        task_id = json.loads(claudine("delegate", prompt, "--no-serve", "--json"))["id"]
        asyncio.run(wait_until(sleepers.tool_started, timeout=60, interval=0.02))
        began = time.monotonic()
        claudine("cancel", task_id, "from the command line")
        # `wait` exits 1 when a task ended other than completed.
        done = json.loads(claudine("wait", task_id, "--timeout", "30", "--json", codes=(1,)))[0]
        sleepers.assert_all_gone(done.get("pid"), serve.pid)
        assert done["status"] == "cancelled", done
    finally:
        serve.terminate()
        serve.wait(timeout=30)
    asyncio.run(sleepers.assert_never_finish(began))
    assert not sleepers.processes()


async def test_mcp_cancel_task(
    tmp_path: Path, real_claude_bin: Path, real_claude_env: dict[str, str]
) -> None:
    from mcp import Client

    from claudine_core.mcp.front import build_server

    sleepers = Sleepers(tmp_path / "sleepers", seconds=4)
    config = real_config(tmp_path, real_claude_bin)
    async with Engine(config, kind="mcp", env=sleepers.env(agent_env(**real_claude_env)),
                      tick_s=0.05) as engine:
        task, began = await start_sleepers(engine, sleepers, tmp_path)
        async with Client(build_server(config, engine=engine)) as client:
            result = await client.call_tool("CancelTask", {"taskId": task.id,
                                                           "reason": "over MCP"})
            assert not result.is_error, result.content
        done = await wait_for_state(engine, task.id, TERMINAL_STATES, timeout=30)
        sleepers.assert_all_gone(task.pid)
    assert done.status is TaskState.CANCELLED and done.error == "over MCP"
    await sleepers.assert_never_finish(began)
    await wait_until(lambda: not sleepers.processes(), timeout=10)
