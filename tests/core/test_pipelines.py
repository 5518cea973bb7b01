"""Pipelines through a real engine and the fake agent: created in one transaction, run step
after step, stopped by a failed step with a reason naming it, cancelled as a whole."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from engine_helpers import agent_env, make_config, wait_for_state

from claudine_core.engine import Engine
from claudine_core.errors import InvalidRequest, InvalidTransition, UnknownTask
from claudine_core.models import TERMINAL_STATES, DependencyPolicy, TaskSpec, TaskState
from claudine_core.task_request import MAX_PIPELINE_STEPS


def template(cwd: Path, **extra: object) -> TaskSpec:
    return TaskSpec(prompt="unused", cwd=str(cwd), **extra)  # type: ignore[arg-type]


async def test_steps_run_one_after_another_in_order(engine: Engine, tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    prompts = [f"[ledger:{ledger}][sleep:0.2] step {n}" for n in (1, 2, 3)]
    pipeline_id, tasks = engine.service.create_pipeline(prompts, template(tmp_path))
    assert pipeline_id.startswith("pipe-") and len(pipeline_id) == len("pipe-") + 12
    assert [t.pipeline_step for t in tasks] == [1, 2, 3]
    assert {t.pipeline_id for t in tasks} == {pipeline_id}
    assert [t.status for t in tasks] == [TaskState.QUEUED, TaskState.BLOCKED, TaskState.BLOCKED]
    assert tasks[1].depends_on == (tasks[0].id,) and tasks[2].depends_on == (tasks[1].id,)
    assert {t.on_dependency_failure for t in tasks} == {DependencyPolicy.FAIL}
    assert all(t.continue_from is None for t in tasks)
    for task in tasks:
        assert (await wait_for_state(engine, task.id, TERMINAL_STATES)).status \
            is TaskState.COMPLETED
    events = [json.loads(line) for line in ledger.read_text().splitlines()]
    assert [(e["event"], e["marker"].strip()) for e in events] == [
        (event, f"step {n}") for n in (1, 2, 3) for event in ("start", "end")]


async def test_with_continue_each_step_continues_the_previous_conversation(
        tmp_path: Path) -> None:
    log = tmp_path / "agents.jsonl"
    env = agent_env(FAKE_CLAUDE_LOG=str(log), CLAUDE_CONFIG_DIR=str(tmp_path / "claude"))
    async with Engine(make_config(tmp_path / "home"), env=env, tick_s=0.05) as eng:
        _, tasks = eng.service.create_pipeline(["one", "two", "three"], template(tmp_path),
                                               continue_conversation=True)
        assert [t.continue_from for t in tasks] == [None, tasks[0].id, tasks[1].id]
        done = [await wait_for_state(eng, t.id, TERMINAL_STATES) for t in tasks]
    assert [t.status for t in done] == [TaskState.COMPLETED] * 3
    argvs = [json.loads(line)["argv"] for line in log.read_text().splitlines()]
    resumed = [argv[argv.index("--resume") + 1] if "--resume" in argv else None
               for argv in argvs]
    assert resumed == [None, done[0].session_id, done[1].session_id]
    assert len({t.session_id for t in done}) == 3  # each step forked its own


async def test_a_failed_step_fails_the_rest_naming_it(engine: Engine, tmp_path: Path) -> None:
    _, tasks = engine.service.create_pipeline(
        ["first", "[fail] second", "third", "fourth"], template(tmp_path))
    ends = [await wait_for_state(engine, t.id, TERMINAL_STATES) for t in tasks]
    assert [t.status for t in ends] == [TaskState.COMPLETED, TaskState.FAILED,
                                        TaskState.FAILED, TaskState.FAILED]
    reason = f"pipeline stopped: step 2 (task {tasks[1].short_id}) failed"
    assert ends[2].error == reason and ends[3].error == reason
    assert ends[2].started_at is None and ends[3].started_at is None  # never ran


def test_a_bad_step_prompt_creates_nothing(engine: Engine, tmp_path: Path) -> None:
    with pytest.raises(InvalidRequest) as refused:
        engine.service.create_pipeline(["fine", "  ", "also fine", "x\x00"], template(tmp_path))
    assert refused.value.problems == {"steps": (
        "step 2: the prompt is empty: say what the agent should do; "
        "step 4: the prompt contains a NUL byte (\\0): remove it")}
    assert engine.service.list_tasks() == []


def test_wrong_shared_options_are_named_once_and_create_nothing(
        engine: Engine, tmp_path: Path) -> None:
    with pytest.raises(InvalidRequest) as refused:
        engine.service.create_pipeline(["a", ""], template(tmp_path, model="my model"))
    assert refused.value.problems == {
        "model": "'my model' is not a model name: use one without spaces, e.g. sonnet, opus "
                 "or claude-sonnet-4-5",
        "steps": "step 2: the prompt is empty: say what the agent should do"}
    assert engine.service.list_tasks() == []


@pytest.mark.parametrize("count", [0, MAX_PIPELINE_STEPS + 1])
def test_a_pipeline_has_1_to_50_steps(engine: Engine, tmp_path: Path, count: int) -> None:
    with pytest.raises(InvalidRequest) as refused:
        engine.service.create_pipeline(["step"] * count, template(tmp_path))
    assert refused.value.problems == {"steps": f"{count} steps: a pipeline has 1 to 50"}
    assert engine.service.list_tasks() == []


def test_a_store_failure_half_way_creates_no_step(engine: Engine, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """One transaction: the third insert fails, and the first two are not kept either."""
    real_insert = engine.service.repo.insert
    calls = []

    def failing_insert(*args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("disk gone")
        return real_insert(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(engine.service.repo, "insert", failing_insert)
    with pytest.raises(RuntimeError, match="disk gone"):
        engine.service.create_pipeline(["a", "b", "c"], template(tmp_path))
    monkeypatch.undo()
    assert len(calls) == 3 and engine.service.list_tasks() == []


async def test_cancelling_the_pipeline_from_any_step_ends_every_unfinished_step(
        engine: Engine, tmp_path: Path) -> None:
    first = engine.service.delegate(TaskSpec(prompt="done before", cwd=str(tmp_path)))
    await wait_for_state(engine, first.id, TERMINAL_STATES)
    pipeline_id, tasks = engine.service.create_pipeline(
        ["step one", "[hang] step two", "step three"], template(tmp_path))
    await wait_for_state(engine, tasks[1].id, {TaskState.RUNNING})
    assert engine.service.get(tasks[0].id).status is TaskState.COMPLETED
    same, steps = engine.service.cancel_pipeline(tasks[2].short_id, "changed my mind")
    assert same == pipeline_id
    assert steps[2].status is TaskState.CANCELLED and steps[2].error == "changed my mind"
    assert steps[1].cancel_requested  # running: its agent is being stopped
    stopped = await wait_for_state(engine, tasks[1].id, TERMINAL_STATES)
    assert stopped.status is TaskState.CANCELLED
    assert engine.service.get(tasks[0].id).status is TaskState.COMPLETED  # had ended
    assert engine.service.get(first.id).status is TaskState.COMPLETED  # not in it
    with pytest.raises(InvalidTransition, match="has ended"):
        engine.service.cancel_pipeline(pipeline_id)


def test_a_pipeline_is_found_by_its_id_a_prefix_or_a_step(engine: Engine,
                                                         tmp_path: Path) -> None:
    pipeline_id, tasks = engine.service.create_pipeline(["[hang] a", "b"], template(tmp_path))
    for ref in (pipeline_id, pipeline_id[:9], tasks[1].id, tasks[0].short_id):
        assert engine.service.pipeline(ref) == (pipeline_id, [engine.service.get(t.id)
                                                              for t in tasks])
    alone = engine.service.delegate(TaskSpec(prompt="[hang] alone", cwd=str(tmp_path)))
    with pytest.raises(UnknownTask, match="not a step of a pipeline"):
        engine.service.pipeline(alone.id)
    with pytest.raises(UnknownTask, match="no pipeline with id 'pipe-0000'"):
        engine.service.pipeline("pipe-0000")
    with pytest.raises(UnknownTask, match="not a pipeline id"):
        engine.service.pipeline("pipe-x")
