"""Where a task's run goes on a Ray cluster whose nodes do not share this machine's disk
(``ray_shared_fs = false``, the default), with the real engine on a local cluster:

- a task isolated in a worktree of a repository with a remote runs on a worker node, in a
  checkout of the code fetched there by git, and its work comes back by push: the merge
  step merges it into the user's branch as if the agent had run here;
- a task that runs in place stays on this machine's node.

The nodes share one disk in this test; what proves the run did not use the head's files
is the agent's own working directory (a checkout under the node's run root)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from engine_helpers import agent_env, make_config, wait_for_state, wait_until
from git_helpers import git, repo_with_remote
from ray_engine import TASK_DEADLINE_S, hold_slots, ray_settings, worker_ids

from claudine_core.backend_choice import RAY_RUNS
from claudine_core.engine import Engine
from claudine_core.models import TERMINAL_STATES, Task, TaskSpec, TaskState

pytestmark = pytest.mark.ray


async def run_and_merge(engine: Engine, prompt: str, repo: Path) -> tuple[Task, Task]:
    """Delegate a worktree task merged back with ``auto``: the task once it ended, and
    once its merge step recorded its outcome."""
    task = engine.service.delegate(TaskSpec(prompt=prompt, cwd=str(repo), worktree=True,
                                            merge_strategy="auto"))
    ended = await wait_for_state(engine, task.id, TERMINAL_STATES, TASK_DEADLINE_S)
    merged = await wait_until(
        lambda: (engine.service.get(task.id).merge or {}).get("status") not in
        (None, "pending") and engine.service.get(task.id), TASK_DEADLINE_S)
    return ended, merged


def agent_cwds(log: Path) -> list[str]:
    """Where each agent ran (the fake claude logs its cwd per run)."""
    return [json.loads(line)["cwd"] for line in log.read_text().splitlines()]


async def test_a_worktree_task_runs_on_a_worker_from_git_and_its_work_is_merged_back(
        ray_cluster: Any, head_held: None, tmp_path: Path) -> None:
    user, remote = repo_with_remote(tmp_path)
    home, log = tmp_path / "home", tmp_path / "agents.log"
    engine = Engine(make_config(home, **ray_settings(ray_cluster, ray_shared_fs=False)),
                    env=agent_env(FAKE_CLAUDE_LOG=str(log)), tick_s=0.05)
    async with engine:
        ended, merged = await run_and_merge(
            engine, "[write:from-node.txt=made on a worker][text:done]", user)
    assert ended.status is TaskState.COMPLETED, ended.error
    assert ended.node in worker_ids(ray_cluster)
    [cwd] = agent_cwds(log)
    assert cwd.startswith(str(home / RAY_RUNS / "checkouts")), cwd  # not the head's worktree
    assert merged.merge["status"] == "merged", merged.merge
    assert git(user, "show", "main:from-node.txt") == "made on a worker"
    assert git(remote, "for-each-ref", "refs/claudine") == ""  # the run's ref was removed
    await wait_until(lambda: not Path(cwd).exists(), TASK_DEADLINE_S)  # checkout released


async def test_a_task_in_place_stays_on_this_machines_node(ray_cluster: Any,
                                                           tmp_path: Path) -> None:
    home, log = tmp_path / "home", tmp_path / "agents.log"
    engine = Engine(make_config(home, **ray_settings(ray_cluster, ray_shared_fs=False)),
                    env=agent_env(FAKE_CLAUDE_LOG=str(log)), tick_s=0.05)
    async with engine:
        tasks = [engine.service.delegate(TaskSpec(prompt=f"[text:in place {n}]",
                                                  cwd=str(tmp_path))) for n in range(3)]
        ended = [await wait_for_state(engine, task.id, TERMINAL_STATES, TASK_DEADLINE_S)
                 for task in tasks]
    head = str(ray_cluster.cluster.head_node.node_id)
    assert [(task.status, task.node) for task in ended] == [(TaskState.COMPLETED, head)] * 3
    assert agent_cwds(log) == [str(tmp_path)] * 3


async def test_a_task_held_here_waits_while_this_machines_node_is_full(
        ray_cluster: Any, tmp_path: Path) -> None:
    """Its slots taken by something else (another home sharing the cluster): the task
    stays queued, nothing fails, and it runs once a slot is free."""
    import ray

    head = str(ray_cluster.cluster.head_node.node_id)
    hold = hold_slots(ray_cluster, head)
    engine = Engine(make_config(tmp_path / "home",
                                **ray_settings(ray_cluster, ray_shared_fs=False)),
                    env=agent_env(), tick_s=0.05)
    try:
        async with engine:
            task = engine.service.delegate(TaskSpec(prompt="[text:at last]",
                                                    cwd=str(tmp_path)))
            # Tried, no slot found: back in the queue until a moment later, again and again.
            await wait_until(lambda: engine.service.get(task.id).not_before is not None,
                             TASK_DEADLINE_S)
            waiting = engine.service.get(task.id)
            assert waiting.status is TaskState.QUEUED and waiting.attempt == 0
            ray.kill(hold)
            hold = None
            ended = await wait_for_state(engine, task.id, TERMINAL_STATES, TASK_DEADLINE_S)
    finally:
        if hold is not None:
            ray.kill(hold)
    assert ended.status is TaskState.COMPLETED, ended.error
    assert ended.node == head and ended.attempt == 1 and not ended.attempts[:-1]


async def test_a_node_short_of_memory_starts_no_agent_and_the_task_waits(
        ray_cluster: Any, tmp_path: Path) -> None:
    """Each node checks its own memory just before it starts an agent (the owner's
    memory_reserve and agent_memory_cost): none has a petabyte free, so nothing starts
    and the task waits in the queue instead of failing."""
    log = tmp_path / "agents.log"
    settings = ray_settings(ray_cluster, memory_reserve=2**50)
    engine = Engine(make_config(tmp_path / "home", **settings),
                    env=agent_env(FAKE_CLAUDE_LOG=str(log)), tick_s=0.05)
    async with engine:
        task = engine.service.delegate(TaskSpec(prompt="[text:never]", cwd=str(tmp_path)))
        await wait_until(lambda: engine.service.get(task.id).not_before is not None,
                         TASK_DEADLINE_S)
        waiting = engine.service.get(task.id)
        engine.service.cancel(task.id, "no room anywhere")
        ended = await wait_for_state(engine, task.id, TERMINAL_STATES, TASK_DEADLINE_S)
    assert (waiting.status, waiting.attempt, waiting.error) == (TaskState.QUEUED, 0, None)
    assert ended.status is TaskState.CANCELLED and not log.exists()  # no agent ran


async def test_the_real_claude_on_a_worker_edits_a_checkout_and_its_edit_is_merged(
        ray_cluster: Any, head_held: None, tmp_path: Path, real_claude_bin: Path,
        real_claude_env: dict[str, str]) -> None:
    """The real CLI (against the fake Messages API on loopback) runs a Bash command on a
    worker node, in the git checkout there; the file it made lands in the user's branch."""
    user, _ = repo_with_remote(tmp_path)
    home = tmp_path / "home"
    settings = ray_settings(ray_cluster, ray_shared_fs=False, claude_bin=str(real_claude_bin))
    engine = Engine(make_config(home, **settings), env=agent_env(**real_claude_env),
                    tick_s=0.05)
    async with engine:
        ended, merged = await run_and_merge(
            engine, "BASH: pwd > where.txt && echo made by the real claude >> where.txt", user)
    assert ended.status is TaskState.COMPLETED, ended.error
    assert ended.node in worker_ids(ray_cluster)
    assert merged.merge["status"] == "merged", merged.merge
    where, said = git(user, "show", "main:where.txt").splitlines()
    assert where.startswith(str(home / RAY_RUNS / "checkouts")), where
    assert said == "made by the real claude"


async def test_the_repositorys_setup_command_runs_in_the_nodes_checkout(
        ray_cluster: Any, head_held: None, tmp_path: Path) -> None:
    """What a setup command builds is not tracked, so it does not travel: the node runs
    it in its checkout too, before the agent starts."""
    user, _ = repo_with_remote(tmp_path)
    setups = tmp_path / "setups.log"
    (user / ".claudine.toml").write_text(f'[worktree]\nsetup = "pwd >> {setups}"\n')
    git(user, "add", ".claudine.toml")
    git(user, "commit", "-q", "-m", "setup")
    home = tmp_path / "home"
    engine = Engine(make_config(home, **ray_settings(ray_cluster, ray_shared_fs=False)),
                    env=agent_env(), tick_s=0.05)
    async with engine:
        task = engine.service.delegate(TaskSpec(prompt="[text:done]", cwd=str(user),
                                                worktree=True))
        ended = await wait_for_state(engine, task.id, TERMINAL_STATES, TASK_DEADLINE_S)
    assert ended.status is TaskState.COMPLETED, ended.error
    here, there = setups.read_text().splitlines()
    assert here == ended.worktree_path  # the head's worktree, as without a cluster
    assert there == str(home / RAY_RUNS / "checkouts" / task.id)  # then on the node
