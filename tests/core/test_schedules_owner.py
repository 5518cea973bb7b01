"""The owner's firing step: a schedule created by another process fires in the owner,
its task runs, an idle owner does not read the schedules on every tick, and an owner that
stops with an active schedule hands the home over."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from engine_helpers import agent_env, make_config, wait_for_state, wait_until

from claudine_core import engine as engine_module
from claudine_core.engine import Engine
from claudine_core.models import TaskState
from claudine_core.schedules.service import ScheduleService
from claudine_core.service import TaskService


async def test_a_schedule_made_elsewhere_fires_in_the_owner_and_its_task_runs(
        engine: Engine, tmp_path: Path) -> None:
    other = TaskService(engine.config, env=agent_env())  # another connection
    try:
        schedule = other.schedules.create({"prompt": "from a schedule", "cwd": str(tmp_path)},
                                          run_at=time.time() + 1.0)
    finally:
        other.close()

    def task_id() -> str | None:
        history = engine.service.schedules.history(schedule.id)
        return history[0].task_id if history else None

    fired = await wait_until(task_id, timeout=30)
    done = await wait_for_state(engine, fired, {TaskState.COMPLETED, TaskState.FAILED})
    assert done.status is TaskState.COMPLETED, done.error
    assert done.result == "FAKE_DONE: from a schedule"
    assert done.schedule_id == schedule.id
    assert engine.firer.fired == 1
    assert engine.service.schedules.get(schedule.id).status.value == "completed"


async def test_an_idle_owner_reads_the_next_slot_only_after_a_change(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reads: list[float] = []
    original = ScheduleService.next_due_at

    def counted(self: ScheduleService) -> float | None:
        reads.append(time.monotonic())
        return original(self)

    monkeypatch.setattr(ScheduleService, "next_due_at", counted)
    engine = Engine(make_config(tmp_path / "home"), env=agent_env(), tick_s=0.01)
    await engine.start()
    try:
        engine.service.schedules.create({"prompt": "p", "cwd": str(tmp_path)},
                                        cron="0 0 1 1 *")  # far away
        ticks = engine.ticks
        await wait_until(lambda: engine.ticks >= ticks + 100, timeout=30)
        # One read after the store changed (the create), none on the idle ticks after it.
        assert 1 <= len(reads) <= 3, len(reads)
        assert engine.firer.next_due == engine.service.schedules.list()[0].next_run_at
    finally:
        await engine.stop(stop_agents=True)


async def test_an_owner_stopping_with_an_active_schedule_hands_the_home_over(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[Any] = []
    monkeypatch.setattr(engine_module, "ensure_owner", lambda config: started.append(
        config.home) or 4242)
    engine = Engine(make_config(tmp_path / "home", handoff_on_exit=True), env=agent_env())
    await engine.start()
    engine.service.schedules.create({"prompt": "p", "cwd": str(tmp_path)}, cron="0 9 * * *")
    await engine.stop()
    assert started == [tmp_path / "home"] and engine.handed_over_to == 4242


async def test_an_owner_with_only_finished_schedules_does_not(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[Any] = []
    monkeypatch.setattr(engine_module, "ensure_owner", lambda config: started.append(1))
    engine = Engine(make_config(tmp_path / "home", handoff_on_exit=True), env=agent_env())
    await engine.start()
    made = engine.service.schedules.create({"prompt": "p", "cwd": str(tmp_path)},
                                           cron="0 9 * * *")
    engine.service.schedules.cancel(made.id)
    await engine.stop()
    assert started == [] and engine.handed_over_to is None


async def test_the_owner_wakes_for_a_slot_between_its_ticks(tmp_path: Path) -> None:
    """With a tick far longer than the wait (30 s), the slot 1 s away still fires: the
    loop sleeps until the slot, not a whole tick."""
    engine = Engine(make_config(tmp_path / "home"), env=agent_env(), tick_s=30)
    engine.service.schedules.create({"prompt": "p", "cwd": str(tmp_path)},
                                    run_at=time.time() + 1.0)
    await engine.start()
    try:
        engine.wake()  # the first tick, which reads the next slot
        await wait_until(lambda: engine.firer.fired == 1, timeout=15)
    finally:
        await engine.stop(stop_agents=True)


async def test_after_an_unexpected_firing_error_the_owner_waits_instead_of_spinning(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(self: ScheduleService, now: float | None = None) -> int:
        raise RuntimeError("a bug")

    monkeypatch.setattr(ScheduleService, "fire_due", broken)
    engine = Engine(make_config(tmp_path / "home"), env=agent_env(), tick_s=0.05)
    engine.service.schedules.create({"prompt": "p", "cwd": str(tmp_path)},
                                    run_at=time.time() + 0.2)
    await engine.start()
    try:
        await wait_until(lambda: engine.firer._hold_until > 0, timeout=15)
        # The slot is still in the past; the loop sleeps out the hold, not 0 s per tick.
        assert engine.firer.seconds_until_due(time.time()) > 20
        assert engine._sleep_s() == engine.tick_s
    finally:
        await engine.stop(stop_agents=True)
