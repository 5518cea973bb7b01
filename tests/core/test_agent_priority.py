"""Agents run at a lower scheduling priority than the console and the user's shell.

Linux shares the CPU between sessions (autogroups) before processes, and every agent has
a session of its own: the agent's nice value and its session group's both carry
``agent_nice``. Real agent processes (the fake ``claude``) under the real wrapper; what is
checked is what ``ps`` and ``/proc`` say of the running agent.
"""

from __future__ import annotations

import os
from pathlib import Path

import psutil
import pytest
from engine_helpers import agent_env, make_config, wait_for_state, wait_until

from claudine_core.engine import Engine
from claudine_core.models import TaskSpec, TaskState

AUTOGROUPS = Path("/proc/self/autogroup").exists()


def the_agent(engine: Engine, task_id: str) -> psutil.Process | None:
    """The agent process under the task's wrapper, once it exists."""
    agent = engine.supervisor.agents.get(task_id)
    if agent is None or agent.pid is None:
        return None
    children = psutil.Process(agent.pid).children()
    return children[0] if children else None


def group_nice(process: psutil.Process) -> int:
    text = Path(f"/proc/{process.pid}/autogroup").read_text()  # "/autogroup-123 nice 10"
    return int(text.split("nice")[1])


async def run_and_look(tmp_path: Path, **settings: object) -> tuple[int, int | None]:
    """Start one sleeping agent; its nice value and its session group's."""
    config = make_config(tmp_path / "home", **settings)
    async with Engine(config, env=agent_env()) as engine:
        task = engine.service.delegate(TaskSpec("[sleep:60]", cwd=str(tmp_path)))
        agent = await wait_until(lambda: the_agent(engine, task.id), timeout=30)
        seen = agent.nice(), group_nice(agent) if AUTOGROUPS else None
        engine.service.cancel(task.id)
        await wait_for_state(engine, task.id, [TaskState.CANCELLED])
    return seen


async def test_agents_run_at_nice_10_by_default_their_session_too(tmp_path: Path) -> None:
    own = os.getpriority(os.PRIO_PROCESS, 0)
    nice, group = await run_and_look(tmp_path)
    assert nice == min(19, own + 10)
    if AUTOGROUPS:
        assert group == 10


async def test_agent_nice_0_leaves_agents_at_the_owners_priority(tmp_path: Path) -> None:
    own = os.getpriority(os.PRIO_PROCESS, 0)
    nice, group = await run_and_look(tmp_path, agent_nice=0)
    assert nice == own
    if AUTOGROUPS:
        assert group == 0


def test_agent_nice_out_of_range_is_refused_with_the_range(tmp_path: Path) -> None:
    from claudine_core.config.values import ConfigError

    with pytest.raises(ConfigError, match="agent_nice=25 is invalid.*19"):
        make_config(tmp_path / "home", agent_nice=25)
