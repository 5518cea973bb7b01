"""The engine running its agents through an execution backend (the in-memory FakeBackend):
a task runs to success, a lost run is retried as a new attempt (or fails once the retries
are used up), an owner that restarts re-attaches its runs and their output stays whole,
a cancel stops the run through the backend, and the ``backend`` setting picks the
supervisor (with a clear error when Ray is missing)."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import signal
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from engine_helpers import agent_env, make_config, wait_for_state, wait_until
from git_helpers import git, make_repo, repo_with_remote

from claudine_core.agents import inbox
from claudine_core.backends import RunRef, RunSpec, run_name
from claudine_core.backends.base import NodeCapacity, NoRoom
from claudine_core.backends.fake import FakeBackend, FakeProgram, FakeWorld
from claudine_core.backends.remote import RemoteSupervisor
from claudine_core.config import ConfigError
from claudine_core.engine import Engine
from claudine_core.models import TaskSpec, TaskState
from claudine_core.run_dirs import run_dir_for
from claudine_core.service import TaskService
from claudine_core.supervisor import Supervisor


def line(obj: dict[str, object]) -> bytes:
    return (json.dumps(obj) + "\n").encode()


def init(session: str) -> bytes:
    return line({"type": "system", "subtype": "init", "session_id": session})


def text(words: str) -> bytes:
    return line({"type": "assistant", "message": {"role": "assistant", "content": [
        {"type": "text", "text": words}]}})


def result(answer: str, session: str) -> bytes:
    return line({"type": "result", "subtype": "success", "is_error": False, "num_turns": 1,
                 "result": answer, "session_id": session, "total_cost_usd": 0.01})


def finishes(answer: str) -> FakeProgram:
    return FakeProgram(lines=(init("s-1"), text("working"), result(answer, "s-1")))


RUNS_ON = FakeProgram(lines=(init("s-1"), text("working")), exits=False)


class OneSlotBackend(FakeBackend):
    """A fake cluster of one node with room for one agent."""

    def capacity(self) -> list[NodeCapacity]:
        return [NodeCapacity("fake", alive=True, slots_total=1, slots_used=len(self.attached))]


class SlowStartBackend(FakeBackend):
    """A start that waits (as a Ray start waits about two seconds for its actor) until the
    test lets it go on."""

    go_on = threading.Event()

    def start(self, spec: RunSpec) -> RunRef:
        assert self.go_on.wait(timeout=10), "the start was never let go on"
        return super().start(spec)


class NoSlotBackend(FakeBackend):
    """A fake cluster whose only node declared no agent slots."""

    def capacity(self) -> list[NodeCapacity]:
        return [NodeCapacity("fake", alive=True, slots_total=0, slots_used=0)]


def engine_on(home: Path, world: FakeWorld, program_for: Callable[[RunSpec], FakeProgram],
              backend_class: type[FakeBackend] = FakeBackend, **settings: object) -> Engine:
    backend = backend_class(program_for, kill_grace_s=1.0, world=world)
    config = make_config(home, **settings)
    return Engine(config, env=agent_env(), tick_s=0.05, backend=backend)


def local_copy(home: Path, task_id: str, attempt: int) -> bytes:
    """The run's output as the engine keeps it on this machine (what ``claudine logs``
    reads)."""
    return (run_dir_for(home / "runs", task_id, attempt) / "stdout.jsonl").read_bytes()


async def test_a_task_runs_to_success_through_the_backend(tmp_path: Path) -> None:
    world = FakeWorld()
    home = tmp_path / "home"
    engine = engine_on(home, world, lambda spec: finishes("all done"))
    async with engine:
        task = engine.service.delegate(TaskSpec(prompt="do it", cwd=str(tmp_path)))
        ended = await wait_for_state(engine, task.id, [TaskState.COMPLETED, TaskState.FAILED])
        assert isinstance(engine.supervisor, RemoteSupervisor)
    assert ended.status is TaskState.COMPLETED, ended.error
    assert ended.result == "all done" and ended.attempt == 1
    assert ended.node == "fake"  # where the backend placed it, for the console
    run = world.runs[run_name(task.id, 1)]
    assert local_copy(home, task.id, 1) == bytes(run.output)
    assert ended.output_bytes == len(run.output)
    assert list(world.runs) == [run_name(task.id, 1)]  # the backend ran it, once


async def test_a_lost_run_is_retried_as_a_new_attempt(tmp_path: Path) -> None:
    world = FakeWorld()
    home = tmp_path / "home"

    def program(spec: RunSpec) -> FakeProgram:
        return RUNS_ON if spec.attempt == 1 else finishes("second time lucky")

    engine = engine_on(home, world, program, max_retries=1, recovery_policy="requeue")
    async with engine:
        task = engine.service.delegate(TaskSpec(prompt="do it", cwd=str(tmp_path)))
        await wait_until(lambda: local_copy_exists(home, task.id, 1))
        world.crash(run_name(task.id, 1))  # its node died
        ended = await wait_for_state(engine, task.id, [TaskState.COMPLETED, TaskState.FAILED])
    assert ended.status is TaskState.COMPLETED, ended.error
    assert ended.attempt == 2 and ended.result == "second time lucky"
    first = ended.attempts[0]
    assert first["attempt"] == 1 and first["state"] == "failed"
    assert first["error"] == ("the agent's run was lost, nothing recorded how it ended: "
                              "the run vanished")
    assert set(world.runs) == {run_name(task.id, 1), run_name(task.id, 2)}


async def test_a_lost_run_fails_the_task_once_its_retries_are_used_up(tmp_path: Path) -> None:
    world = FakeWorld()
    home = tmp_path / "home"
    engine = engine_on(home, world, lambda spec: RUNS_ON, max_retries=0)
    async with engine:
        task = engine.service.delegate(TaskSpec(prompt="do it", cwd=str(tmp_path)))
        await wait_until(lambda: local_copy_exists(home, task.id, 1))
        world.crash(run_name(task.id, 1))
        ended = await wait_for_state(engine, task.id, [TaskState.COMPLETED, TaskState.FAILED])
    assert ended.status is TaskState.FAILED and ended.attempt == 1
    assert "run was lost" in (ended.error or "") and "vanished" in (ended.error or "")
    assert list(world.runs) == [run_name(task.id, 1)]  # never started again


async def test_an_owner_that_restarts_reattaches_and_the_output_stays_whole(
        tmp_path: Path) -> None:
    world = FakeWorld()
    home = tmp_path / "home"
    first = engine_on(home, world, lambda spec: RUNS_ON)
    async with first:
        task = first.service.delegate(TaskSpec(prompt="do it", cwd=str(tmp_path)))
        await wait_until(lambda: local_copy(home, task.id, 1) == b"".join(RUNS_ON.lines)
                         if local_copy_exists(home, task.id, 1) else False)
    # No owner now; the run goes on, prints more and ends.
    run = world.runs[run_name(task.id, 1)]
    run.output += text("while nobody watched") + result("finished alone", "s-1")
    run.exit_record = {"exit_code": 0, "signal": None, "terminated": False,
                       "output_bytes": len(run.output)}
    second = engine_on(home, world, lambda spec: finishes("never asked"))
    async with second:
        ended = await wait_for_state(second, task.id, [TaskState.COMPLETED, TaskState.FAILED])
    assert ended.status is TaskState.COMPLETED, ended.error
    assert ended.result == "finished alone" and ended.attempt == 1
    assert local_copy(home, task.id, 1) == bytes(run.output)  # each byte once, in order
    assert ended.output_bytes == len(run.output)
    assert list(world.runs) == [run_name(task.id, 1)]  # the run was not started again


async def test_a_run_the_restarted_owner_cannot_find_is_lost_and_retried(
        tmp_path: Path) -> None:
    world = FakeWorld()
    home = tmp_path / "home"

    def program(spec: RunSpec) -> FakeProgram:
        return RUNS_ON if spec.attempt == 1 else finishes("again")

    first = engine_on(home, world, program, max_retries=1)
    async with first:
        task = first.service.delegate(TaskSpec(prompt="do it", cwd=str(tmp_path)))
        await wait_until(lambda: local_copy_exists(home, task.id, 1))
    del world.runs[run_name(task.id, 1)]  # gone with its node while no owner watched
    second = engine_on(home, world, program, max_retries=1)
    async with second:
        ended = await wait_for_state(second, task.id, [TaskState.COMPLETED, TaskState.FAILED])
    assert ended.status is TaskState.COMPLETED and ended.attempt == 2, ended.error
    assert ended.attempts[0]["state"] == "failed"
    assert "not found on the cluster" in ended.attempts[0]["error"]


async def test_a_cancel_stops_the_run_through_the_backend(tmp_path: Path) -> None:
    world = FakeWorld()
    home = tmp_path / "home"
    engine = engine_on(home, world, lambda spec: RUNS_ON)
    async with engine:
        task = engine.service.delegate(TaskSpec(prompt="do it", cwd=str(tmp_path)))
        await wait_until(lambda: local_copy_exists(home, task.id, 1))
        engine.service.cancel(task.id, "changed my mind")
        ended = await wait_for_state(engine, task.id, [TaskState.CANCELLED, TaskState.FAILED])
        backend = engine.supervisor.backend()  # type: ignore[attr-defined]
        await wait_until(lambda: run_name(task.id, 1) not in backend.attached)
    assert ended.status is TaskState.CANCELLED and ended.error == "changed my mind"
    run = world.runs[run_name(task.id, 1)]
    assert run.term_at is not None
    assert run.exit_record is not None and run.exit_record["signal"] == signal.SIGTERM


async def test_the_clusters_agent_slots_decide_how_many_start(tmp_path: Path) -> None:
    world = FakeWorld()
    home = tmp_path / "home"
    engine = engine_on(home, world, lambda spec: RUNS_ON, backend_class=OneSlotBackend)
    async with engine:
        first = engine.service.delegate(TaskSpec(prompt="first", cwd=str(tmp_path)))
        second = engine.service.delegate(TaskSpec(prompt="second", cwd=str(tmp_path)))
        await wait_until(lambda: local_copy_exists(home, first.id, 1))
        await wait_until(lambda: engine.admission is not None and engine.admission.reason)
        assert engine.service.get(second.id).status is TaskState.QUEUED
        assert engine.admission is not None and engine.admission.start == 0
        assert (engine.admission.reason or "").startswith("waiting: all agent slots in use")
        engine.service.cancel(first.id)
        await wait_until(lambda: local_copy_exists(home, second.id, 1))
        engine.service.cancel(second.id)
        await wait_for_state(engine, second.id, [TaskState.CANCELLED])
    assert list(world.runs) == [run_name(first.id, 1), run_name(second.id, 1)]


async def test_a_slow_start_does_not_hold_up_the_engines_loop(tmp_path: Path) -> None:
    world = FakeWorld()
    home = tmp_path / "home"
    SlowStartBackend.go_on.clear()
    engine = engine_on(home, world, lambda spec: finishes("done"),
                       backend_class=SlowStartBackend)
    async with engine:
        task = engine.service.delegate(TaskSpec(prompt="do it", cwd=str(tmp_path)))
        await wait_until(lambda: engine.dispatcher.preparing)  # its start has begun
        ticks = engine.ticks
        # The loop (and a console sharing it) goes on while the start waits.
        await wait_until(lambda: engine.ticks >= ticks + 5, timeout=5)
        assert engine.service.get(task.id).status is TaskState.RUNNING
        SlowStartBackend.go_on.set()
        ended = await wait_for_state(engine, task.id, [TaskState.COMPLETED, TaskState.FAILED])
    assert ended.status is TaskState.COMPLETED, ended.error


async def test_a_run_started_while_the_owner_stops_stays_the_tasks_and_is_reattached(
        tmp_path: Path) -> None:
    world = FakeWorld()
    home = tmp_path / "home"
    SlowStartBackend.go_on.clear()
    first = engine_on(home, world, lambda spec: RUNS_ON, backend_class=SlowStartBackend)
    await first.start()
    task = first.service.delegate(TaskSpec(prompt="do it", cwd=str(tmp_path)))
    await wait_until(lambda: first.dispatcher.preparing)  # its start has begun
    stopping = asyncio.create_task(first.stop())  # it waits for the start to end
    SlowStartBackend.go_on.set()
    await stopping
    service = TaskService(make_config(home))
    try:
        recorded = service.get(task.id)
    finally:
        service.close()
    assert recorded.status is TaskState.RUNNING and recorded.node == "fake"
    run = world.runs[run_name(task.id, 1)]
    run.output += result("ended under the next owner", "s-1")
    run.exit_record = {"exit_code": 0, "signal": None, "terminated": False}
    second = engine_on(home, world, lambda spec: finishes("never asked"))
    async with second:
        ended = await wait_for_state(second, task.id, [TaskState.COMPLETED, TaskState.FAILED])
    assert ended.status is TaskState.COMPLETED and ended.attempt == 1, ended.error
    assert ended.result == "ended under the next owner"
    assert list(world.runs) == [run_name(task.id, 1)]


async def test_a_cluster_without_agent_slots_says_how_to_declare_them(tmp_path: Path) -> None:
    engine = engine_on(tmp_path / "home", FakeWorld(), lambda spec: RUNS_ON,
                       backend_class=NoSlotBackend)
    async with engine:
        task = engine.service.delegate(TaskSpec(prompt="do it", cwd=str(tmp_path)))
        await wait_until(lambda: engine.admission is not None and "agent_slot" in
                         (engine.admission.reason or ""))
        assert engine.service.get(task.id).status is TaskState.QUEUED


def test_a_remote_run_is_not_taken_for_ended_because_its_pid_is_not_here(
        tmp_path: Path) -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()
    service = TaskService(make_config(tmp_path / "home"))
    try:
        task = service.delegate(TaskSpec(prompt="p", cwd=str(tmp_path)))
        service.repo.transition(task.id, [TaskState.QUEUED], status=TaskState.RUNNING,
                                attempt=1, pid=gone.pid, node="node-1")
        assert not service.agent_has_ended(service.get(task.id))  # its pid is on node-1
        service.repo.transition(task.id, [TaskState.RUNNING], node=None)
        assert service.agent_has_ended(service.get(task.id))  # here, and gone
    finally:
        service.close()


async def test_a_run_that_ignores_the_stop_is_killed_after_the_grace(tmp_path: Path) -> None:
    world = FakeWorld()
    home = tmp_path / "home"
    stubborn = FakeProgram(lines=(init("s-1"),), exits=False, ignores_term=True)
    engine = engine_on(home, world, lambda spec: stubborn)
    async with engine:
        task = engine.service.delegate(TaskSpec(prompt="do it", cwd=str(tmp_path)))
        await wait_until(lambda: local_copy_exists(home, task.id, 1))
        engine.service.cancel(task.id)
        ended = await wait_for_state(engine, task.id, [TaskState.CANCELLED, TaskState.FAILED])
    assert ended.status is TaskState.CANCELLED
    record = world.runs[run_name(task.id, 1)].exit_record
    assert record is not None and record["signal"] == signal.SIGKILL


async def test_a_refused_command_line_is_told_from_the_runs_stderr_and_not_retried(
        tmp_path: Path) -> None:
    world = FakeWorld()
    home = tmp_path / "home"
    refused = FakeProgram(stderr=b"error: unknown option '--bogus'\n", exit_code=1)
    engine = engine_on(home, world, lambda spec: refused, max_retries=1)
    async with engine:
        task = engine.service.delegate(TaskSpec(prompt="do it", cwd=str(tmp_path)))
        ended = await wait_for_state(engine, task.id, [TaskState.COMPLETED, TaskState.FAILED])
        assert engine.service.stderr_tail(task.id) == "error: unknown option '--bogus'\n"
    assert ended.status is TaskState.FAILED and ended.attempt == 1  # the same would fail again
    assert "refused its command line: error: unknown option '--bogus'" in (ended.error or "")


async def test_a_message_reaches_the_agent_on_its_node_and_its_delivery_is_recorded(
        tmp_path: Path) -> None:
    world = FakeWorld()
    home = tmp_path / "home"
    engine = engine_on(home, world, lambda spec: RUNS_ON)
    async with engine:
        task = engine.service.delegate(TaskSpec(prompt="do it", cwd=str(tmp_path)))
        run_dir = str(run_dir_for(home / "runs", task.id, 1))
        await wait_until(lambda: inbox.accepting(run_dir))
        engine.service.send_message(task.id, "also fix the README")
        delivered = await wait_until(lambda: [m for m in engine.service.task_messages(task.id)
                                              if m.delivered_at is not None])
        assert [m.text for m in delivered] == ["also fix the README"]
        assert world.runs[run_name(task.id, 1)].messages == ["also fix the README"]
        assert inbox.delivered_at(run_dir, inbox.PROMPT_KEY) is not None
        engine.service.cancel(task.id)
        await wait_for_state(engine, task.id, [TaskState.CANCELLED])
    assert not inbox.accepting(run_dir)  # a message from now on is a resume


def local_copy_exists(home: Path, task_id: str, attempt: int) -> bool:
    path = run_dir_for(home / "runs", task_id, attempt) / "stdout.jsonl"
    return path.exists() and path.stat().st_size > 0


def test_the_local_backend_is_todays_supervisor(tmp_path: Path) -> None:
    engine = Engine(make_config(tmp_path / "home"), env=agent_env())
    assert type(engine.supervisor) is Supervisor
    engine.service.close()


def test_the_ray_backend_without_ray_installed_says_how_to_install_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "ray" else real_find_spec(name, *a))
    config = make_config(tmp_path / "home", backend="ray", ray_address="127.0.0.1:6379")
    with pytest.raises(ConfigError, match=r"needs Ray.*pip install 'claudine\[ray\]'"):
        Engine(config, env=agent_env())


# -- where a run may go: this machine's node, anywhere, or anywhere its code travels to -----


class TwoNodeBackend(FakeBackend):
    """A fake cluster of this machine's node and another, each with room for agents."""

    here_slots = 2

    def capacity(self) -> list[NodeCapacity]:
        return [NodeCapacity("fake", alive=True, slots_total=self.here_slots, slots_used=0),
                NodeCapacity("elsewhere", alive=True, slots_total=2, slots_used=0)]


class NoSlotsHereBackend(TwoNodeBackend):
    here_slots = 0


def recording(specs: list[RunSpec]) -> Callable[[RunSpec], FakeProgram]:
    def program(spec: RunSpec) -> FakeProgram:
        specs.append(spec)
        return finishes("done")
    return program


async def test_a_task_in_place_runs_only_on_this_machines_node(tmp_path: Path) -> None:
    specs: list[RunSpec] = []
    engine = engine_on(tmp_path / "home", FakeWorld(), recording(specs), TwoNodeBackend)
    async with engine:
        task = engine.service.delegate(TaskSpec(prompt="do it", cwd=str(tmp_path)))
        ended = await wait_for_state(engine, task.id, [TaskState.COMPLETED, TaskState.FAILED])
    assert ended.status is TaskState.COMPLETED, ended.error
    assert [(spec.node_id, spec.git) for spec in specs] == [("fake", None)]


async def test_with_a_shared_disk_a_task_in_place_may_run_anywhere(tmp_path: Path) -> None:
    specs: list[RunSpec] = []
    engine = engine_on(tmp_path / "home", FakeWorld(), recording(specs), TwoNodeBackend,
                       ray_shared_fs=True)
    async with engine:
        task = engine.service.delegate(TaskSpec(prompt="do it", cwd=str(tmp_path)))
        await wait_for_state(engine, task.id, [TaskState.COMPLETED, TaskState.FAILED])
    assert [(spec.node_id, spec.git) for spec in specs] == [(None, None)]


async def test_a_task_held_here_by_a_node_without_slots_fails_saying_what_to_do(
        tmp_path: Path) -> None:
    specs: list[RunSpec] = []
    engine = engine_on(tmp_path / "home", FakeWorld(), recording(specs), NoSlotsHereBackend)
    async with engine:
        task = engine.service.delegate(TaskSpec(prompt="do it", cwd=str(tmp_path)))
        ended = await wait_for_state(engine, task.id, [TaskState.COMPLETED, TaskState.FAILED])
    assert ended.status is TaskState.FAILED and specs == []
    error = ended.error or ""
    assert "can run only on this machine's node (it runs in place, not in a worktree)" in error
    assert "declares no agent slots" in error and "ray_shared_fs = true" in error


async def test_a_worktree_task_travels_by_git_and_work_that_does_not_come_back_fails_it(
        tmp_path: Path) -> None:
    """The fake backend runs nothing on a node, so nothing carries the work back: the
    task must fail saying so, never end "completed" with its work missing."""
    user, remote = repo_with_remote(tmp_path)
    specs: list[RunSpec] = []
    engine = engine_on(tmp_path / "home", FakeWorld(), recording(specs), TwoNodeBackend)
    async with engine:
        task = engine.service.delegate(TaskSpec(prompt="do it", cwd=str(user), worktree=True))
        ended = await wait_for_state(engine, task.id, [TaskState.COMPLETED, TaskState.FAILED])
    [spec] = specs
    assert spec.node_id is None and spec.git is not None  # any node: the code travels
    assert spec.git.url == str(remote) and spec.git.ref == f"refs/claudine/runs/{spec_name(spec)}"
    assert spec.git.sent_from == git(user, "rev-parse", "main")
    assert ended.status is TaskState.FAILED
    assert "did not come back from its node: the node reported nothing" in (ended.error or "")
    # The run's ref was pushed for the node, then removed once the run was over.
    assert git(remote, "for-each-ref", "refs/claudine") == ""


def spec_name(spec: RunSpec) -> str:
    return run_name(spec.task_id, spec.attempt)


async def test_a_worktree_task_without_a_remote_stays_on_this_machines_node(
        tmp_path: Path) -> None:
    user = make_repo(tmp_path / "user")
    specs: list[RunSpec] = []
    engine = engine_on(tmp_path / "home", FakeWorld(), recording(specs), NoSlotsHereBackend)
    async with engine:
        task = engine.service.delegate(TaskSpec(prompt="do it", cwd=str(user), worktree=True))
        ended = await wait_for_state(engine, task.id, [TaskState.COMPLETED, TaskState.FAILED])
    assert ended.status is TaskState.FAILED and specs == []
    assert "its repository has no remote for the other nodes to fetch it from" in (
        ended.error or "")


async def test_a_retry_that_resumes_the_session_runs_on_the_node_holding_it(
        tmp_path: Path) -> None:
    specs: list[RunSpec] = []

    def program(spec: RunSpec) -> FakeProgram:
        specs.append(spec)
        if spec.attempt == 1:  # a transient failure after its session began
            return FakeProgram(lines=(init("s-1"), text("working")), exit_code=1)
        return finishes("resumed")

    engine = engine_on(tmp_path / "home", FakeWorld(), program, TwoNodeBackend,
                       ray_shared_fs=True, max_retries=1, recovery_policy="resume",
                       retry_base_delay_s=0.01)
    async with engine:
        task = engine.service.delegate(TaskSpec(prompt="do it", cwd=str(tmp_path)))
        ended = await wait_for_state(engine, task.id, [TaskState.COMPLETED, TaskState.FAILED])
    assert ended.status is TaskState.COMPLETED, ended.error
    assert [spec.node_id for spec in specs] == [None, "fake"]  # where attempt 1 ran
    assert "--resume" in specs[1].argv and "s-1" in specs[1].argv


async def test_a_run_lost_with_its_node_is_retried_afresh_not_resumed(tmp_path: Path) -> None:
    """Its session was on the node that went away: resuming it elsewhere cannot work."""
    world = FakeWorld()
    home = tmp_path / "home"
    specs: list[RunSpec] = []

    def program(spec: RunSpec) -> FakeProgram:
        specs.append(spec)
        return RUNS_ON if spec.attempt == 1 else finishes("afresh")

    engine = engine_on(home, world, program, max_retries=1, recovery_policy="resume",
                       retry_base_delay_s=0.01)
    async with engine:
        task = engine.service.delegate(TaskSpec(prompt="do it", cwd=str(tmp_path)))
        await wait_until(lambda: local_copy_exists(home, task.id, 1))
        world.crash(run_name(task.id, 1))
        ended = await wait_for_state(engine, task.id, [TaskState.COMPLETED, TaskState.FAILED])
    assert ended.status is TaskState.COMPLETED and ended.attempt == 2, ended.error
    assert "--resume" not in specs[1].argv and specs[1].prompt == specs[0].prompt


class FullOnceBackend(TwoNodeBackend):
    """Every slot its run could use is taken at the first start (by another home sharing
    the cluster, say); free at the next."""

    refused: list[str] = []

    def start(self, spec: RunSpec) -> RunRef:
        if not self.refused:
            self.refused.append(run_name(spec.task_id, spec.attempt))
            raise NoRoom("no agent slot is free on node fake")
        return super().start(spec)


async def test_a_start_that_finds_no_free_slot_waits_in_the_queue(tmp_path: Path) -> None:
    specs: list[RunSpec] = []
    FullOnceBackend.refused = []
    engine = engine_on(tmp_path / "home", FakeWorld(), recording(specs), FullOnceBackend)
    async with engine:
        task = engine.service.delegate(TaskSpec(prompt="do it", cwd=str(tmp_path)))
        ended = await wait_for_state(engine, task.id, [TaskState.COMPLETED, TaskState.FAILED])
    assert FullOnceBackend.refused == [run_name(task.id, 1)]
    assert ended.status is TaskState.COMPLETED, ended.error
    assert ended.attempt == 1  # the refusal used up no attempt
    assert not any(entry["state"] == "failed" for entry in ended.attempts)
    assert [spec.attempt for spec in specs] == [1]
