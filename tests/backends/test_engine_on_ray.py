"""The real engine with ``backend = "ray"`` on a local cluster (a head and two workers on
loopback): delegated tasks run on the worker nodes and their output reaches the home
whole; a worker node killed under a run gives a lost attempt, which the engine retries on
another node; an owner killed with SIGKILL leaves its runs running, and the next owner
re-attaches them and reads on where the copy stopped.

The head's agent slots are taken for these tests (as another home sharing the cluster
would), so every run lands on a worker node, which the tests may kill."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest
from engine_helpers import (
    CLAUDINE,
    agent_env,
    cli_env,
    make_config,
    wait_for_state,
    wait_until,
)
from ray_engine import TASK_DEADLINE_S, ray_settings, worker_ids

from claudine_core.backend_choice import RAY_RUNS
from claudine_core.engine import Engine
from claudine_core.models import TERMINAL_STATES, TaskSpec, TaskState
from claudine_core.run_dirs import run_dir_for
from claudine_core.service import TaskService

pytestmark = pytest.mark.ray

REPO = str(Path(__file__).resolve().parents[2])
AGENT_WORKS_S = 15  # how long an agent outlives its first owner's death in the kill test


def copies(home: Path, task_id: str, attempt: int) -> tuple[bytes, bytes]:
    """The run's output as the home keeps it (``claudine logs`` reads it), and as its
    node wrote it (the nodes share this machine's disk in the test)."""
    here = run_dir_for(home / "runs", task_id, attempt) / "stdout.jsonl"
    there = run_dir_for(home / RAY_RUNS, task_id, attempt) / "stdout.jsonl"
    return here.read_bytes(), there.read_bytes()


async def test_delegated_tasks_run_on_the_workers_and_their_output_is_whole(
        ray_cluster: Any, head_held: None, tmp_path: Path) -> None:
    home = tmp_path / "home"
    engine = Engine(make_config(home, **ray_settings(ray_cluster)), env=agent_env(),
                    tick_s=0.05)
    async with engine:
        ids = [engine.service.delegate(TaskSpec(
            prompt=f"[text:hello {n}][flood:1][text:bye {n}]", cwd=str(tmp_path))).id
            for n in range(3)]
        ended = [await wait_for_state(engine, task_id, TERMINAL_STATES, TASK_DEADLINE_S)
                 for task_id in ids]
    for n, task in enumerate(ended):
        assert task.status is TaskState.COMPLETED, task.error
        assert task.node in worker_ids(ray_cluster) and task.attempt == 1
        here, there = copies(home, task.id, 1)
        assert here == there and here.count(b"\n") == there.count(b"\n")
        assert f"bye {n}".encode() in here and len(here) > 1024 * 1024
        assert task.output_bytes == len(here)


async def test_a_worker_killed_mid_run_gives_a_lost_attempt_retried_on_another_node(
        ray_cluster: Any, head_held: None, tmp_path: Path) -> None:
    home = tmp_path / "home"
    pid_file, second_time = tmp_path / "agent.pid", tmp_path / "second-time"
    engine = Engine(make_config(home, **ray_settings(ray_cluster), max_retries=1),
                    env=agent_env(), tick_s=0.05)
    victim: str | None = None
    first_pid: int | None = None
    try:
        async with engine:
            # The retry starts afresh (the session went with the node); the same prompt
            # then ends at once, since the marker exists by then.
            task = engine.service.delegate(TaskSpec(
                prompt=f"[pid-file:{pid_file}][text:started][hang-unless:{second_time}]",
                cwd=str(tmp_path)))
            await wait_until(lambda: pid_file.exists() and engine.service.get(task.id).node,
                             TASK_DEADLINE_S)
            victim, first_pid = engine.service.get(task.id).node, int(pid_file.read_text())
            assert victim in worker_ids(ray_cluster)
            second_time.touch()
            ray_cluster.kill_worker(victim)
            ended = await wait_for_state(engine, task.id, TERMINAL_STATES, TASK_DEADLINE_S)
    finally:
        if victim is not None:
            # A machine that dies takes its processes with it; killing a node's Ray
            # processes leaves the agent behind, an orphan, so the test kills it.
            if first_pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(first_pid, signal.SIGKILL)
            ray_cluster.add_worker()  # the session's cluster keeps two workers
    assert ended.status is TaskState.COMPLETED, ended.error
    assert ended.attempt == 2 and ended.node != victim
    assert ended.node in worker_ids(ray_cluster)
    first = ended.attempts[0]
    assert first["state"] == "failed" and "run was lost" in first["error"]


async def test_an_owner_killed_with_sigkill_leaves_runs_that_the_next_owner_reattaches(
        ray_cluster: Any, head_held: None, tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = cli_env(home, CLAUDINE_BACKEND="ray", CLAUDINE_RAY_ADDRESS=ray_cluster.address,
                  CLAUDINE_RAY_NAMESPACE=ray_cluster.namespace, CLAUDINE_RAY_LOST_AFTER="3",
                  CLAUDINE_RAY_SHARED_FS="true",
                  RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0", RAY_AUTH_MODE="disabled",
                  PYTHONPATH=os.pathsep.join([REPO, os.environ.get("PYTHONPATH", "")]))
    config = make_config(home, **ray_settings(ray_cluster))
    service = TaskService(config, env=agent_env())  # as the delegating process's
    try:
        # Each agent prints, works on past the first owner's death, then prints more.
        ids = [service.delegate(TaskSpec(
            prompt=f"[text:before {n}][sleep:{AGENT_WORKS_S}][text:after {n}]",
            cwd=str(tmp_path))).id for n in range(2)]
    finally:
        service.close()
    owner = start_owner(env, home / "serve.log")
    try:
        await wait_until(lambda: all(_copied(home, task_id, b"before") for task_id in ids),
                         TASK_DEADLINE_S)
    finally:
        owner.send_signal(signal.SIGKILL)
        owner.wait()
    engine = Engine(config, env=agent_env(), tick_s=0.05)
    async with engine:
        ended = [await wait_for_state(engine, task_id, TERMINAL_STATES, TASK_DEADLINE_S)
                 for task_id in ids]
    for n, task in enumerate(ended):
        assert task.status is TaskState.COMPLETED and task.attempt == 1, task.error
        here, there = copies(home, task.id, 1)
        assert here == there  # each byte once, in order, across the two owners
        assert here.count(b'"subtype": "init"') + here.count(b'"subtype":"init"') == 1
        assert f"after {n}".encode() in here


def start_owner(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """``claudine serve``: the home's owner, in a process of its own (to kill)."""
    with open(log, "ab") as out:
        return subprocess.Popen([*CLAUDINE, "serve"], env=env, stdout=out, stderr=out)


def _copied(home: Path, task_id: str, needle: bytes) -> bool:
    with contextlib.suppress(FileNotFoundError):
        return needle in (run_dir_for(home / "runs", task_id, 1) / "stdout.jsonl").read_bytes()
    return False
