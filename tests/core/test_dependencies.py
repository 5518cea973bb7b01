"""Dependencies between tasks through a real engine: blocked until met, the failure policy
cascading down a chain, ids resolved at delegate time, and the schema upgrade that added
them keeping every row."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from engine_helpers import agent_env, make_config, wait_for_state, wait_until

from claudine_core.engine import Engine
from claudine_core.errors import InvalidRequest
from claudine_core.models import (
    MAX_DEPENDENCIES,
    TERMINAL_STATES,
    DependencyPolicy,
    TaskSpec,
    TaskState,
)
from claudine_core.store import open_database
from claudine_core.store.migrations import SCHEMA_VERSION, current_version, migrate
from claudine_core.store.repo import TaskRepo


def spec(prompt: str, cwd: Path, *deps: str, **extra: object) -> TaskSpec:
    return TaskSpec(prompt=prompt, cwd=str(cwd), depends_on=deps, **extra)  # type: ignore[arg-type]


async def test_a_dependent_waits_blocked_then_runs_after_its_dependency(
        engine: Engine, tmp_path: Path) -> None:
    first = engine.service.delegate(spec("[sleep:1] first", tmp_path))
    second = engine.service.delegate(spec("second", tmp_path, first.short_id))
    assert second.status is TaskState.BLOCKED and second.depends_on == (first.id,)
    assert "waiting for " + first.short_id in (engine.service.waiting_reason(second) or "")
    done = await wait_for_state(engine, second.id, TERMINAL_STATES)
    assert done.status is TaskState.COMPLETED
    assert done.started_at is not None
    assert done.started_at >= (engine.service.get(first.id).ended_at or 0)


@pytest.mark.parametrize(("policy", "end"), [(DependencyPolicy.FAIL, TaskState.FAILED),
                                             (DependencyPolicy.CANCEL, TaskState.CANCELLED)])
async def test_a_failed_dependency_ends_the_whole_chain_naming_it(
        engine: Engine, tmp_path: Path, policy: DependencyPolicy, end: TaskState) -> None:
    root = engine.service.delegate(spec("[sleep:0.5][fail] breaks", tmp_path))
    middle = engine.service.delegate(spec("b", tmp_path, root.id, on_dependency_failure=policy))
    last = engine.service.delegate(spec("c", tmp_path, middle.id, on_dependency_failure=policy))
    assert (await wait_for_state(engine, root.id, TERMINAL_STATES)).status is TaskState.FAILED
    ended_middle = await wait_for_state(engine, middle.id, TERMINAL_STATES)
    ended_last = await wait_for_state(engine, last.id, TERMINAL_STATES)
    assert ended_middle.status is end and ended_last.status is end
    assert ended_middle.error == f"dependency task {root.short_id} failed"
    assert ended_last.error == f"dependency task {middle.short_id} {end.value}"
    assert ended_middle.pid is None and ended_last.pid is None  # no agent ever ran


async def test_policy_run_starts_the_dependent_anyway(engine: Engine, tmp_path: Path) -> None:
    root = engine.service.delegate(spec("[sleep:0.5][fail] breaks", tmp_path))
    after = engine.service.delegate(spec("after", tmp_path, root.id,
                                         on_dependency_failure=DependencyPolicy.RUN))
    assert (await wait_for_state(engine, after.id, TERMINAL_STATES)).status \
        is TaskState.COMPLETED


async def test_a_dependency_being_retried_keeps_its_dependents_blocked(
        tmp_path: Path) -> None:
    """A transient failure is not an end: the dependent waits for the retry, then runs."""
    marker = tmp_path / "failed-once"
    config = make_config(tmp_path / "home", max_retries=2, retry_base_delay_s=1)
    async with Engine(config, env=agent_env(), tick_s=0.05) as eng:
        flaky = eng.service.delegate(spec(f"[api-error-once:529:{marker}] flaky", tmp_path))
        after = eng.service.delegate(spec("after", tmp_path, flaky.id))
        await wait_until(lambda: eng.service.get(flaky.id).attempt == 1
                         and eng.service.get(flaky.id).status is TaskState.QUEUED)
        assert eng.service.get(after.id).status is TaskState.BLOCKED  # waits for the retry
        done = await wait_for_state(eng, after.id, TERMINAL_STATES)
        flaky_done = eng.service.get(flaky.id)
    assert flaky_done.status is TaskState.COMPLETED and flaky_done.attempt == 2
    assert done.status is TaskState.COMPLETED
    assert (done.started_at or 0) >= (flaky_done.ended_at or 0)


async def test_dependencies_already_ended_are_decided_at_delegate_time(
        engine: Engine, tmp_path: Path) -> None:
    done = engine.service.delegate(spec("done", tmp_path))
    failed = engine.service.delegate(spec("[fail] fails", tmp_path))
    await wait_for_state(engine, done.id, TERMINAL_STATES)
    await wait_for_state(engine, failed.id, TERMINAL_STATES)
    assert engine.service.delegate(spec("met", tmp_path, done.id)).status is TaskState.QUEUED
    doomed = engine.service.delegate(spec("doomed", tmp_path, done.id, failed.id))
    assert doomed.status is TaskState.FAILED
    assert doomed.error == f"dependency task {failed.short_id} failed"


async def test_unknown_or_too_many_dependencies_store_nothing(
        engine: Engine, tmp_path: Path) -> None:
    with pytest.raises(InvalidRequest) as refused:
        engine.service.delegate(spec("x", tmp_path, "task-0123456789ab"))
    assert set(refused.value.problems) == {"depends_on"}
    assert "no task with id" in refused.value.problems["depends_on"]
    many = tuple(f"task-{n:012x}" for n in range(MAX_DEPENDENCIES + 1))
    with pytest.raises(InvalidRequest, match=f"at most {MAX_DEPENDENCIES}"):
        engine.service.delegate(spec("x", tmp_path, *many))
    assert engine.service.list_tasks() == []


async def test_a_blocked_task_can_be_cancelled_and_reprioritized(
        engine: Engine, tmp_path: Path) -> None:
    first = engine.service.delegate(spec("[sleep:5] long", tmp_path))
    blocked = engine.service.delegate(spec("later", tmp_path, first.id))
    assert engine.service.set_priority(blocked.id, "P0").priority.name == "P0"
    assert engine.service.cancel(blocked.id).status is TaskState.CANCELLED
    engine.service.cancel(first.id)


def test_the_upgrade_to_dependencies_keeps_every_row(tmp_path: Path) -> None:
    db = open_database(tmp_path / "claudine.db")
    migrate(db, target=SCHEMA_VERSION - 1)
    columns = [row[1] for row in db.execute_sql("PRAGMA table_info(task)").fetchall()]
    rows = []
    for n in range(50):
        values = {name: None for name in columns if name != "seq"}
        values.update(id=f"task-{n:012x}", prompt=f"old {n}", priority=n % 3,
                      status=["queued", "completed", "failed", "running"][n % 4], cwd="/",
                      created_at=1_700_000_000.0 + n, updated_at=1_700_000_000.0 + n,
                      attempt=n % 2, cancel_requested=0, output_bytes=n, output_truncated=0,
                      worktree=n % 2, merge=json.dumps({"status": "kept"}) if n % 5 else None,
                      allowed_tools=json.dumps(["Read"]), attempts=json.dumps([]),
                      parks=0, resuming=0)
        names = ", ".join(values)
        db.execute_sql(f"INSERT INTO task ({names}) VALUES ({', '.join('?' * len(values))})",
                       list(values.values()))
        rows.append(values)
    before = db.execute_sql("SELECT * FROM task ORDER BY seq").fetchall()
    migrate(db)
    assert current_version(db) == SCHEMA_VERSION
    after = db.execute_sql(f"SELECT {', '.join(columns)} FROM task ORDER BY seq").fetchall()
    assert after == before  # every old value, unchanged
    tasks = TaskRepo(db).list_tasks(newest_first=False)
    assert [t.id for t in tasks] == [r["id"] for r in rows]
    assert all(t.depends_on == () and t.on_dependency_failure is None for t in tasks)
    db.close()
