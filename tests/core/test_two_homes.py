"""Two claudine homes in one process stay apart: each store is bound to its own file.

A library user (or a test) may open several homes at once; every row, read and
transition must go to the home it was asked of, never to the home opened last.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from engine_helpers import agent_env, make_config, wait_for_merge, wait_for_state
from git_helpers import make_repo

from claudine_core.engine import Engine
from claudine_core.models import TaskSpec, TaskState
from claudine_core.service import TaskService

DONE = (TaskState.COMPLETED, TaskState.FAILED, TaskState.CANCELLED)


def ids_in_file(db_path: Path) -> set[str]:
    """The task ids stored in one database file, read with sqlite3, not through claudine."""
    with sqlite3.connect(db_path) as conn:
        return {row[0] for row in conn.execute("SELECT id FROM task")}


def status_in_file(db_path: Path, task_id: str) -> str | None:
    with sqlite3.connect(db_path) as conn:
        row = conn.execute("SELECT status FROM task WHERE id = ?", (task_id,)).fetchone()
    return None if row is None else str(row[0])


def test_two_services_delegating_interleaved_write_each_row_to_its_own_file(
    tmp_path: Path,
) -> None:
    a = TaskService(make_config(tmp_path / "home-a"), env=agent_env())
    b = TaskService(make_config(tmp_path / "home-b"), env=agent_env())
    try:
        made_a, made_b = [], []
        for n in range(4):  # interleaved: a, b, a, b, ...
            made_a.append(a.delegate(TaskSpec(prompt=f"a{n}", cwd=str(tmp_path))).id)
            made_b.append(b.delegate(TaskSpec(prompt=f"b{n}", cwd=str(tmp_path))).id)
        assert ids_in_file(a.config.db_path) == set(made_a)
        assert ids_in_file(b.config.db_path) == set(made_b)

        # Reads stay apart.
        assert [t.prompt for t in a.repo.list_tasks(newest_first=False)] == [
            "a0", "a1", "a2", "a3"]
        assert [t.prompt for t in b.repo.list_tasks(newest_first=False)] == [
            "b0", "b1", "b2", "b3"]
        assert a.repo.get(made_a[0]).prompt == "a0"
        assert a.repo.resolve(made_a[1]).prompt == "a1"
        assert {t.id for t in b.repo.dispatchable(limit=10, now=1e12)} == set(made_b)

        # Transitions stay apart: a cancel and a priority change on A touch only A's file.
        a.repo.request_cancel(made_a[0], "not wanted")
        assert status_in_file(a.config.db_path, made_a[0]) == "cancelled"
        assert b.repo.count_by_status() == {TaskState.QUEUED: 4}
        assert not b.repo.transition(made_a[1], [TaskState.QUEUED], status=TaskState.RUNNING)
        assert status_in_file(a.config.db_path, made_a[1]) == "queued"
        assert b.repo.transition(made_b[1], [TaskState.QUEUED], status=TaskState.RUNNING)
        assert status_in_file(b.config.db_path, made_b[1]) == "running"
        assert a.repo.count_by_status() == {TaskState.QUEUED: 3, TaskState.CANCELLED: 1}
    finally:
        a.close()
        b.close()


async def test_owner_on_home_a_and_service_on_home_b_see_only_their_own_tasks(
    tmp_path: Path,
) -> None:
    engine = Engine(make_config(tmp_path / "home-a"), env=agent_env(), tick_s=0.05)
    await engine.start()
    # Opened after the owner: with a process-global binding this one would take A's place.
    other = TaskService(make_config(tmp_path / "home-b"), env=agent_env())
    try:
        queued_b = other.delegate(TaskSpec(prompt="waits on home b", cwd=str(tmp_path)))
        task_a = engine.service.delegate(TaskSpec(prompt="runs on home a", cwd=str(tmp_path)))
        done = await wait_for_state(engine, task_a.id, DONE, timeout=20)
        assert done.status is TaskState.COMPLETED, done.error
        assert done.result == "FAKE_DONE: runs on home a"

        assert [t.id for t in engine.service.repo.list_tasks()] == [task_a.id]
        assert [t.id for t in other.repo.list_tasks()] == [queued_b.id]
        assert ids_in_file(engine.config.db_path) == {task_a.id}
        assert ids_in_file(other.config.db_path) == {queued_b.id}
        assert status_in_file(engine.config.db_path, task_a.id) == "completed"
        # The owner on A never ran B's task: B has no owner.
        assert other.repo.get(queued_b.id).status is TaskState.QUEUED
    finally:
        other.close()
        await engine.stop(stop_agents=True)


async def test_worktree_outcome_is_recorded_in_the_owners_home(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    engine = Engine(make_config(tmp_path / "home-a"), env=agent_env(), tick_s=0.05)
    await engine.start()
    other = TaskService(make_config(tmp_path / "home-b"), env=agent_env())
    try:
        task = engine.service.delegate(TaskSpec(prompt="[write:new.txt=x] isolated", cwd=str(repo),
                                        worktree=True))
        done = await wait_for_merge(engine, task.id, timeout=20)
        assert done.status is TaskState.COMPLETED, done.error
        assert done.branch and done.merge and done.merge["status"] != "pending"
        assert ids_in_file(other.config.db_path) == set()
    finally:
        other.close()
        await engine.stop(stop_agents=True)
