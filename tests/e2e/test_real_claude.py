"""The engine driving the REAL `claude` CLI against a fake Messages API on 127.0.0.1."""

from __future__ import annotations

import os
from pathlib import Path

import psutil
import pytest
from engine_helpers import make_config, wait_for_state, wait_until

from claudine_core.engine import Engine
from claudine_core.models import TaskSpec, TaskState

pytestmark = pytest.mark.real_claude
DONE = (TaskState.COMPLETED, TaskState.FAILED, TaskState.CANCELLED)


@pytest.fixture
async def real_engine(tmp_path: Path, real_claude_bin: Path, real_claude_env: dict[str, str]):
    env = {**os.environ, **real_claude_env}
    env.pop("CLAUDECODE", None)
    config = make_config(tmp_path / "home", claude_bin=str(real_claude_bin))
    engine = Engine(config, env=env, tick_s=0.05)
    await engine.start()
    yield engine
    await engine.stop(stop_agents=True)


async def test_text_task(real_engine: Engine, tmp_path: Path) -> None:
    task = real_engine.service.delegate(TaskSpec(prompt="say something nice", cwd=str(tmp_path)))
    done = await wait_for_state(real_engine, task.id, DONE, timeout=60)
    assert done.status is TaskState.COMPLETED, done.error
    assert done.result == "FAKE_DONE: say something nice"
    assert done.session_id and done.num_turns == 1 and done.cost_usd is not None


async def test_bash_tool_writes_a_file(real_engine: Engine, tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    prompt = "Write the file.\nBASH: echo made-by-real-claude > made.txt && cat made.txt"
    task = real_engine.service.delegate(TaskSpec(prompt=prompt, cwd=str(work)))
    done = await wait_for_state(real_engine, task.id, DONE, timeout=60)
    assert done.status is TaskState.COMPLETED, done.error
    assert (work / "made.txt").read_text().strip() == "made-by-real-claude"
    events, _ = real_engine.service.read_events(task.id)
    names = [type(e).__name__ for e in events]
    assert "ToolUse" in names and "ToolResult" in names
    assert done.num_turns == 2


async def test_api_error_fails_with_status(real_engine: Engine, tmp_path: Path) -> None:
    task = real_engine.service.delegate(TaskSpec(prompt="API_ERROR: 400", cwd=str(tmp_path)))
    done = await wait_for_state(real_engine, task.id, DONE, timeout=60)
    assert done.status is TaskState.FAILED
    assert done.api_error_status == 400 and done.exit_code == 1
    assert "API error 400" in (done.error or "")


async def test_cancel_during_a_bash_sleep_kills_the_sleep(
    real_engine: Engine, tmp_path: Path
) -> None:
    marker = "claudine-cancel-marker-4711"
    task = real_engine.service.delegate(
        TaskSpec(prompt=f"BASH: sleep 300 && echo {marker}", cwd=str(tmp_path))
    )

    def sleeping() -> list[psutil.Process]:
        return [p for p in psutil.process_iter(["cmdline"])
                if "sleep 300" in " ".join(p.info.get("cmdline") or [])
                and marker in " ".join(p.info.get("cmdline") or [])]

    await wait_until(sleeping, timeout=60)
    real_engine.service.cancel(task.id, "stop the sleep")
    done = await wait_for_state(real_engine, task.id, DONE, timeout=30)
    assert done.status is TaskState.CANCELLED
    await wait_until(lambda: not sleeping(), timeout=15)
