"""Worktree tasks across slow set-ups, owner stops and restarts, and resumes.

Real Engine, fake agent, real git. A repository's setup command that waits for a file
stands in for a slow ``npm ci``: the test decides when it ends, so nothing depends on timing.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from engine_helpers import (
    agent_env,
    make_config,
    wait_for_merge,
    wait_for_state,
    wait_until,
)
from git_helpers import git, make_repo, wt_path

from claudine_core.engine import Engine
from claudine_core.isolation.worktrees import Worktrees
from claudine_core.models import MergeStrategy, TaskSpec, TaskState

DONE = (TaskState.COMPLETED, TaskState.FAILED, TaskState.CANCELLED)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo")


def blocking_setup(repo: Path, gate: Path) -> None:
    """A setup command that runs until ``gate`` exists (and leaves a mark of each run)."""
    (repo / ".gitignore").write_text(".claudine.toml\n")
    git(repo, "add", ".gitignore")
    git(repo, "commit", "-q", "-m", "ignore settings")
    command = f"echo setup-ran >> {gate}.runs; while [ ! -e {gate} ]; do sleep 0.02; done"
    (repo / ".claudine.toml").write_text(f"[worktree]\nsetup = {json.dumps(command)}\n")


def setup_runs(gate: Path) -> str:
    """What the blocking setup command logged: a line per run."""
    runs = Path(f"{gate}.runs")
    return runs.read_text() if runs.exists() else ""


def new_engine(home: Path) -> Engine:
    return Engine(make_config(home), env=agent_env(CLAUDE_CONFIG_DIR=str(home / "claude-config")),
                  tick_s=0.05)


def isolated(prompt: str, repo: Path, strategy: str = "manual", **kw: object) -> TaskSpec:
    return TaskSpec(prompt=prompt, cwd=str(repo), worktree=True,
                    merge_strategy=MergeStrategy(strategy), **kw)


async def test_slow_setup_does_not_hold_up_other_tasks(repo: Path, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    blocking_setup(repo, gate)
    engine = new_engine(tmp_path / "home")
    await engine.start()
    try:
        slow = engine.service.delegate(isolated("[write:slow.txt=1] slow set-up", repo))
        await wait_until(lambda: setup_runs(gate))  # its setup is running
        quick = engine.service.delegate(TaskSpec(prompt="quick answer", cwd=str(tmp_path)))
        done = await wait_for_state(engine, quick.id, DONE)
        assert done.status is TaskState.COMPLETED, done.error
        assert engine.service.get(slow.id).status is TaskState.RUNNING  # still setting up
        assert engine.service.get(slow.id).pid is None  # no agent yet
        gate.touch()
        finished = await wait_for_merge(engine, slow.id)
        assert finished.status is TaskState.COMPLETED, finished.error
        assert git(repo, "show", f"{finished.branch}:slow.txt") == "1"
    finally:
        await engine.stop(stop_agents=True)


async def test_cancel_during_setup_starts_no_agent(repo: Path, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    blocking_setup(repo, gate)
    engine = new_engine(tmp_path / "home")
    await engine.start()
    try:
        task = engine.service.delegate(isolated("[write:never.txt=1] cancelled early", repo))
        await wait_until(lambda: setup_runs(gate))
        engine.service.cancel(task.id, "changed my mind")
        gate.touch()
        done = await wait_for_merge(engine, task.id)
        assert done.status is TaskState.CANCELLED and done.error == "changed my mind"
        assert done.pid is None and done.session_id is None  # the agent never ran
        assert not (wt_path(done) / "never.txt").exists()
        assert (done.merge or {})["status"] == "empty"  # nothing to keep: worktree removed
        assert not wt_path(done).exists()
    finally:
        await engine.stop(stop_agents=True)


async def test_owner_stopping_during_setup_requeues_and_next_owner_reuses_worktree(
        repo: Path, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    blocking_setup(repo, gate)
    home = tmp_path / "home"
    first = new_engine(home)
    await first.start()
    task = first.service.delegate(isolated("[write:once.txt=1] survive a restart", repo))
    await wait_until(lambda: setup_runs(gate))
    prepared_path = await wait_until(lambda: first.service.get(task.id).worktree_path)
    gate.touch()  # the set-up can end while the owner stops
    await first.stop()
    second = new_engine(home)
    await second.start()
    try:
        assert second.service.get(task.id).status in (TaskState.QUEUED, TaskState.RUNNING)
        done = await wait_for_merge(second, task.id)
        assert done.status is TaskState.COMPLETED, done.error
        assert done.attempt == 1  # the agent ran once, by the second owner
        assert done.worktree_path == prepared_path  # the same worktree, not a second one
        assert setup_runs(gate) == "setup-ran\n"  # set up once
        assert git(repo, "show", f"{done.branch}:once.txt") == "1"
        assert git(repo, "worktree", "list").count("\n") == 1  # the repo and that one
    finally:
        await second.stop(stop_agents=True)


@pytest.mark.parametrize("merged_before_crash", [False, True])
async def test_next_owner_finishes_an_interrupted_merge_step(
        repo: Path, tmp_path: Path, merged_before_crash: bool) -> None:
    home = tmp_path / "home"
    engine = new_engine(home)
    await engine.start()
    strategy = "auto" if merged_before_crash else "manual"
    done = await wait_for_merge(engine, engine.service.delegate(
        isolated("[write:m.txt=merged] merge me", repo, strategy)).id)
    # What an owner killed mid-step leaves: the outcome still "pending" in the store.
    engine.service.repo.transition(done.id, list(DONE), merge_strategy="auto",
                                   merge={"strategy": "auto", "status": "pending"})
    main_before = git(repo, "rev-parse", "main")
    await engine.stop()

    successor = new_engine(home)
    await successor.start()
    try:
        again = await wait_for_merge(successor, done.id)
        merge = again.merge or {}
        assert merge["status"] == "merged", merge
        assert (repo / "m.txt").read_text() == "merged"
        if merged_before_crash:
            assert merge.get("recovered") is True
            assert git(repo, "rev-parse", "main") == main_before  # not merged a second time
        else:
            assert git(repo, "rev-parse", "main") != main_before
        assert not wt_path(again).exists()
    finally:
        await successor.stop(stop_agents=True)


@pytest.mark.parametrize("parent_strategy", ["manual", "auto"])
async def test_resume_continues_the_session_in_the_parents_worktree(
        repo: Path, tmp_path: Path, parent_strategy: str) -> None:
    engine = new_engine(tmp_path / "home")
    await engine.start()
    try:
        parent = await wait_for_merge(engine, engine.service.delegate(
            isolated("[write:first.txt=1] first part", repo, parent_strategy)).id)
        assert parent.status is TaskState.COMPLETED and parent.session_id
        child = engine.service.resume(parent.id, "[write:second.txt=2] second part")
        done = await wait_for_merge(engine, child.id)
        # The fake agent, like claude, finds a session only from the directory it ran in.
        assert done.status is TaskState.COMPLETED, done.error
        assert done.session_id == parent.session_id
        assert done.worktree_path == parent.worktree_path
        if parent_strategy == "manual":
            assert done.branch == parent.branch
            assert git(repo, "show", f"{done.branch}:first.txt") == "1"
            assert git(repo, "show", f"{done.branch}:second.txt") == "2"
        else:  # the parent was merged and its branch deleted: a new branch from main,
            assert done.branch != parent.branch  # merged in turn when the resume ends
            assert (done.merge or {})["status"] == "merged", done.merge
            assert (repo / "first.txt").read_text() == "1"
            assert (repo / "second.txt").read_text() == "2"
    finally:
        await engine.stop(stop_agents=True)


async def test_a_resumed_tasks_worktree_cannot_be_discarded_under_it(
        repo: Path, tmp_path: Path) -> None:
    engine = new_engine(tmp_path / "home")
    await engine.start()
    try:
        parent = await wait_for_merge(engine, engine.service.delegate(
            isolated("[write:first.txt=1] first part", repo)).id)
        child = engine.service.resume(parent.id, "[sleep:30] long second part")
        await wait_for_state(engine, child.id, [TaskState.RUNNING])
        await wait_until(lambda: engine.service.get(child.id).pid)
        with pytest.raises(RuntimeError, match="is working in"):
            Worktrees(engine.config, engine.service.repo).discard(parent, force=True)
        assert wt_path(parent).is_dir()
    finally:
        await engine.stop(stop_agents=True)
