"""Schedules through the ScheduleService, on a real store with a clock the test moves.

What a user relies on: a bad request is refused whole (every problem named, nothing
stored); each slot creates one task from the template, with every task option; missed
slots follow the policy; maxRuns, expiresAt, pause, resume and cancel do what they say;
afterSchedule makes each new task depend on the other schedule's latest task; a template
that no longer holds is a failed execution, not a crash.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from claudine_core.config import Config
from claudine_core.errors import InvalidRequest, InvalidTransition
from claudine_core.models import (
    DependencyPolicy,
    MergeStrategy,
    PermissionMode,
    Priority,
    TaskSpec,
    TaskState,
)
from claudine_core.schedules.model import (
    MAX_MISSED_SLOTS,
    ExecutionOutcome,
    ScheduleStatus,
    UnknownSchedule,
)
from claudine_core.service import TaskService

START = datetime(2026, 3, 2, 8, 0, 30, tzinfo=UTC).timestamp()  # a Monday, 08:00:30 UTC
HOUR = 3600.0


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(START)


@pytest.fixture
def service(tmp_path: Path, clock: Clock) -> Any:
    service = TaskService(Config(home=tmp_path / "home", claude_bin="/bin/true"),
                          clock=clock, env={"ANTHROPIC_BASE_URL": "http://127.0.0.1:9"})
    yield service
    service.close()


@pytest.fixture
def workdir(tmp_path: Path) -> str:
    path = tmp_path / "work"
    path.mkdir()
    return str(path)


def at(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def schedule_tasks(service: TaskService, schedule_id: str) -> list[Any]:
    return [t for t in service.list_tasks() if t.schedule_id == schedule_id]


# -- creating ------------------------------------------------------------------------------------


def test_a_bad_request_names_every_problem_and_stores_nothing(service: TaskService) -> None:
    with pytest.raises(InvalidRequest) as caught:
        service.schedules.create({"prompt": "", "cwd": "/no/such/dir", "timeout_s": "0"},
                                 cron="61 * * * *", timezone="Mars/Olympus",
                                 missed_run_policy="later", max_runs=0,
                                 after_schedule="sched-0123456789ab")
    problems = caught.value.problems
    assert set(problems) == {"prompt", "cwd", "timeout_s", "cron", "timezone",
                             "missed_run_policy", "max_runs", "after_schedule"}
    assert "Mars/Olympus" in problems["timezone"]
    assert "61" in problems["cron"] or "minute" in problems["cron"]
    assert service.schedules.list() == [] and service.list_tasks() == []


@pytest.mark.parametrize(("cron", "at_time", "field", "words"), [
    ("* * * *", None, "cron", "needs 5"),
    ("0 0 * * * *", None, "cron", "needs 5"),  # cronsim would take seconds: we do not
    (None, "2026-03-02T07:00:00Z", "run_at", "not in the future"),
    (None, "next tuesday", "run_at", "ISO 8601"),
    ("0 9 * * *", "2026-03-03T09:00:00Z", "kind", "not both"),
    (None, None, "kind", "cron expression"),
])
def test_the_timing_is_checked(service: TaskService, workdir: str, cron: str | None,
                               at_time: str | None, field: str, words: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        service.schedules.create({"prompt": "p", "cwd": workdir}, cron=cron, run_at=at_time)
    assert words in caught.value.problems[field]
    assert service.schedules.list() == []


def test_an_expiry_before_the_first_run_is_refused(service: TaskService, workdir: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        service.schedules.create({"prompt": "p", "cwd": workdir}, cron="0 9 * * *",
                                 expires_at="2026-03-02T08:30:00Z")
    assert "never run" in caught.value.problems["expires_at"]


def test_the_template_keeps_every_task_option_and_each_task_gets_them(
        service: TaskService, workdir: str) -> None:
    dependency = service.delegate(TaskSpec(prompt="first", cwd=workdir))
    schedule = service.schedules.create(
        TaskSpec(prompt="nightly", cwd=workdir, priority=Priority.P0, timeout_s=120,
                 model="opus", max_output_bytes=65536,
                 permission_mode=PermissionMode.ACCEPT_EDITS,
                 depends_on=(dependency.short_id,),
                 on_dependency_failure=DependencyPolicy.RUN),
        cron="0 9 * * *")
    assert schedule.template.depends_on == (dependency.id,)  # fixed by full id
    assert schedule.template.claude_bin == "/bin/true"  # prepared: settings of the creator
    assert schedule.template.agent_env == {"ANTHROPIC_BASE_URL": "http://127.0.0.1:9"}
    assert "agent_env" not in schedule.to_json()["template"]  # keys never shown

    fired = service.schedules.fire_due(at("2026-03-02T09:00:05+00:00"))
    assert fired == 1
    [task] = schedule_tasks(service, schedule.id)
    assert (task.prompt, task.cwd, task.priority, task.timeout_s, task.model,
            task.max_output_bytes, task.permission_mode, task.depends_on,
            task.on_dependency_failure, task.claude_bin, task.agent_env) == (
        "nightly", workdir, Priority.P0, 120, "opus", 65536, PermissionMode.ACCEPT_EDITS,
        (dependency.id,), DependencyPolicy.RUN, "/bin/true",
        {"ANTHROPIC_BASE_URL": "http://127.0.0.1:9"})
    assert task.status is TaskState.BLOCKED  # waits for its dependency, as delegated ones


def test_a_worktree_template_keeps_its_merge_strategy(service: TaskService,
                                                     tmp_path: Path) -> None:
    from git_helpers import make_repo

    repo = make_repo(tmp_path / "repo")
    schedule = service.schedules.create(
        {"prompt": "p", "cwd": str(repo), "worktree": True, "merge_strategy": "patch",
         "base_branch": "main"}, cron="0 9 * * *")
    service.schedules.fire_due(at("2026-03-02T09:00:00+00:00"))
    [task] = schedule_tasks(service, schedule.id)
    assert (task.worktree, task.merge_strategy, task.base_branch) == (
        True, MergeStrategy.PATCH, "main")


# -- firing --------------------------------------------------------------------------------------


def test_each_cron_slot_creates_one_task_and_the_next_slot_follows(
        service: TaskService, workdir: str) -> None:
    schedule = service.schedules.create({"prompt": "p", "cwd": workdir}, cron="0 * * * *")
    assert schedule.next_run_at == at("2026-03-02T09:00:00+00:00")
    assert service.schedules.fire_due(at("2026-03-02T08:59:59+00:00")) == 0
    assert service.schedules.fire_due(at("2026-03-02T09:00:00+00:00")) == 1
    assert service.schedules.fire_due(at("2026-03-02T09:00:10+00:00")) == 0  # same slot
    assert service.schedules.fire_due(at("2026-03-02T10:00:01+00:00")) == 1
    again = service.schedules.get(schedule.id)
    assert again.runs == 2 and again.next_run_at == at("2026-03-02T11:00:00+00:00")
    history = service.schedules.history(schedule.id)
    assert [(e.scheduled_for, e.outcome) for e in history] == [
        (at("2026-03-02T10:00:00+00:00"), ExecutionOutcome.CREATED),
        (at("2026-03-02T09:00:00+00:00"), ExecutionOutcome.CREATED)]
    assert {e.task_id for e in history} == {t.id for t in schedule_tasks(service, schedule.id)}


def test_a_one_time_schedule_fires_once_then_is_completed(service: TaskService,
                                                         workdir: str) -> None:
    schedule = service.schedules.create({"prompt": "p", "cwd": workdir},
                                        run_at="2026-03-02T10:00:00")  # UTC by default
    assert schedule.kind.value == "one_time" and schedule.run_at == at(
        "2026-03-02T10:00:00+00:00")
    assert service.schedules.fire_due(at("2026-03-02T10:00:01+00:00")) == 1
    assert service.schedules.get(schedule.id).status is ScheduleStatus.COMPLETED
    assert service.schedules.fire_due(at("2026-03-03T10:00:01+00:00")) == 0
    assert len(schedule_tasks(service, schedule.id)) == 1
    assert not service.schedules.has_active()


def test_a_one_time_without_an_offset_is_read_in_its_time_zone(service: TaskService,
                                                              workdir: str) -> None:
    schedule = service.schedules.create({"prompt": "p", "cwd": workdir},
                                        run_at="2026-03-02T20:00", timezone="Asia/Tokyo")
    assert schedule.run_at == at("2026-03-02T11:00:00+00:00")


def missed_setup(service: TaskService, workdir: str, policy: str) -> Any:
    """An hourly schedule whose owner was away from 09:00 to 14:00:20: five slots (09
    to 13) missed, 14:00 on time."""
    return service.schedules.create({"prompt": "p", "cwd": workdir}, cron="0 * * * *",
                                    missed_run_policy=policy)


def test_skip_runs_only_the_slot_on_time_and_says_how_many_it_skipped(
        service: TaskService, workdir: str) -> None:
    schedule = missed_setup(service, workdir, "skip")
    assert service.schedules.fire_due(at("2026-03-02T14:00:20+00:00")) == 1
    history = service.schedules.history(schedule.id)
    assert [(e.outcome, e.scheduled_for) for e in history] == [
        (ExecutionOutcome.CREATED, at("2026-03-02T14:00:00+00:00")),
        (ExecutionOutcome.SKIPPED, at("2026-03-02T13:00:00+00:00"))]
    assert "missed 5 run(s)" in (history[1].error or "")


def test_skip_with_no_slot_on_time_runs_nothing(service: TaskService, workdir: str) -> None:
    schedule = missed_setup(service, workdir, "skip")
    assert service.schedules.fire_due(at("2026-03-02T14:30:00+00:00")) == 0
    assert schedule_tasks(service, schedule.id) == []
    assert service.schedules.get(schedule.id).next_run_at == at("2026-03-02T15:00:00+00:00")


def test_catchup_runs_each_missed_slot_once(service: TaskService, workdir: str) -> None:
    schedule = missed_setup(service, workdir, "catchup")
    assert service.schedules.fire_due(at("2026-03-02T14:00:20+00:00")) == 6
    history = service.schedules.history(schedule.id, limit=None)
    assert sorted(e.scheduled_for for e in history) == [
        at(f"2026-03-02T{hour:02d}:00:00+00:00") for hour in range(9, 15)]
    assert all(e.outcome is ExecutionOutcome.CREATED for e in history)
    assert service.schedules.fire_due(at("2026-03-02T14:10:00+00:00")) == 0  # not again


def test_catchup_is_bounded_and_keeps_the_newest_slots(service: TaskService,
                                                      workdir: str) -> None:
    schedule = service.schedules.create({"prompt": "p", "cwd": workdir}, cron="* * * * *",
                                        missed_run_policy="catchup")
    away_until = START + 10 * HOUR  # 600 minutes missed
    created = service.schedules.fire_due(away_until)
    # The newest missed slots, then the one on time (30 s ago); the 575 older ones dropped.
    assert created == MAX_MISSED_SLOTS + 1
    slots = sorted(e.scheduled_for for e in service.schedules.history(schedule.id, None))
    assert slots == [away_until - 30 - 60 * n for n in range(MAX_MISSED_SLOTS, -1, -1)]


def test_fail_records_one_failed_execution_per_missed_slot(service: TaskService,
                                                          workdir: str) -> None:
    schedule = missed_setup(service, workdir, "fail")
    assert service.schedules.fire_due(at("2026-03-02T14:00:20+00:00")) == 1
    history = service.schedules.history(schedule.id, limit=None)
    failed = [e for e in history if e.outcome is ExecutionOutcome.FAILED]
    assert sorted(e.scheduled_for for e in failed) == [
        at(f"2026-03-02T{hour:02d}:00:00+00:00") for hour in range(9, 14)]
    assert all(e.task_id is None and "missed" in (e.error or "") for e in failed)
    assert len(schedule_tasks(service, schedule.id)) == 1  # the 14:00 slot, on time
    assert service.schedules.get(schedule.id).runs == 1


def test_a_missed_one_time_schedule_under_fail_is_recorded_failed(service: TaskService,
                                                                 workdir: str) -> None:
    schedule = service.schedules.create({"prompt": "p", "cwd": workdir},
                                        run_at="2026-03-02T09:00:00Z",
                                        missed_run_policy="fail")
    assert service.schedules.fire_due(at("2026-03-02T12:00:00+00:00")) == 0
    [execution] = service.schedules.history(schedule.id)
    assert execution.outcome is ExecutionOutcome.FAILED
    assert service.schedules.get(schedule.id).status is ScheduleStatus.COMPLETED


def test_max_runs_completes_the_schedule(service: TaskService, workdir: str) -> None:
    schedule = service.schedules.create({"prompt": "p", "cwd": workdir}, cron="0 * * * *",
                                        max_runs=2, missed_run_policy="catchup")
    assert service.schedules.fire_due(at("2026-03-02T13:00:05+00:00")) == 2  # 5 were due
    again = service.schedules.get(schedule.id)
    assert (again.status, again.runs, again.next_run_at) == (ScheduleStatus.COMPLETED, 2,
                                                             None)


def test_expires_at_ends_the_schedule(service: TaskService, workdir: str) -> None:
    schedule = service.schedules.create({"prompt": "p", "cwd": workdir}, cron="0 * * * *",
                                        expires_at="2026-03-02T10:30:00Z")
    assert service.schedules.fire_due(at("2026-03-02T09:00:01+00:00")) == 1
    assert service.schedules.get(schedule.id).status is ScheduleStatus.ACTIVE
    assert service.schedules.fire_due(at("2026-03-02T10:00:01+00:00")) == 1
    expired = service.schedules.get(schedule.id)
    assert (expired.status, expired.next_run_at) == (ScheduleStatus.EXPIRED, None)
    assert service.schedules.fire_due(at("2026-03-02T11:00:01+00:00")) == 0


def test_a_template_that_no_longer_holds_is_a_failed_execution(
        service: TaskService, tmp_path: Path) -> None:
    gone = tmp_path / "gone"
    gone.mkdir()
    broken = service.schedules.create({"prompt": "p", "cwd": str(gone)}, cron="0 * * * *")
    fine_dir = tmp_path / "fine"
    fine_dir.mkdir()
    fine = service.schedules.create({"prompt": "p", "cwd": str(fine_dir)}, cron="0 * * * *")
    shutil.rmtree(gone)
    assert service.schedules.fire_due(at("2026-03-02T09:00:01+00:00")) == 1  # the other
    [execution] = service.schedules.history(broken.id)
    assert execution.outcome is ExecutionOutcome.FAILED and execution.task_id is None
    assert "does not exist" in (execution.error or "")
    assert service.schedules.get(broken.id).next_run_at == at("2026-03-02T10:00:00+00:00")
    assert len(schedule_tasks(service, fine.id)) == 1


def test_a_system_refusal_is_a_failed_execution_too(service: TaskService, workdir: str,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    schedule = service.schedules.create({"prompt": "p", "cwd": workdir}, cron="0 * * * *")

    def refused(spec: TaskSpec) -> Any:
        raise PermissionError(13, "Permission denied", workdir)

    monkeypatch.setattr(service.schedules, "delegate", refused)
    assert service.schedules.fire_due(at("2026-03-02T09:00:01+00:00")) == 0
    [execution] = service.schedules.history(schedule.id)
    assert execution.outcome is ExecutionOutcome.FAILED
    assert execution.error == f"could not use {workdir}: Permission denied"
    assert service.schedules.get(schedule.id).next_run_at == at("2026-03-02T10:00:00+00:00")


def test_after_schedule_makes_each_task_depend_on_its_latest_task(
        service: TaskService, workdir: str) -> None:
    build = service.schedules.create({"prompt": "build", "cwd": workdir}, cron="0 * * * *")
    deploy = service.schedules.create({"prompt": "deploy", "cwd": workdir},
                                      cron="5 * * * *", after_schedule=build.short_id)
    assert deploy.after_schedule == build.id
    service.schedules.fire_due(at("2026-03-02T09:00:01+00:00"))
    service.schedules.fire_due(at("2026-03-02T09:05:01+00:00"))
    [built] = schedule_tasks(service, build.id)
    [deployed] = schedule_tasks(service, deploy.id)
    assert deployed.depends_on == (built.id,) and deployed.status is TaskState.BLOCKED
    service.schedules.fire_due(at("2026-03-02T10:00:01+00:00"))
    service.schedules.fire_due(at("2026-03-02T10:05:01+00:00"))
    newest_build = schedule_tasks(service, build.id)[0]
    newest_deploy = schedule_tasks(service, deploy.id)[0]
    assert newest_deploy.depends_on == (newest_build.id,)


# -- pause, resume, cancel, look-up ----------------------------------------------------------------


def test_a_paused_schedule_does_not_fire_and_resumes_from_the_next_slot(
        service: TaskService, workdir: str, clock: Clock) -> None:
    schedule = service.schedules.create({"prompt": "p", "cwd": workdir}, cron="0 * * * *",
                                        missed_run_policy="catchup")
    assert service.schedules.pause(schedule.short_id).status is ScheduleStatus.PAUSED
    assert service.schedules.fire_due(at("2026-03-02T12:00:01+00:00")) == 0
    with pytest.raises(InvalidTransition, match="only an active schedule"):
        service.schedules.pause(schedule.id)
    clock.now = at("2026-03-02T12:30:00+00:00")
    resumed = service.schedules.resume(schedule.id)
    # The slots while paused are not missed runs: nothing is caught up.
    assert (resumed.status, resumed.next_run_at) == (ScheduleStatus.ACTIVE,
                                                     at("2026-03-02T13:00:00+00:00"))
    assert service.schedules.fire_due(at("2026-03-02T13:00:01+00:00")) == 1
    assert len(schedule_tasks(service, schedule.id)) == 1


def test_cancel_ends_it_for_good_and_keeps_its_tasks(service: TaskService,
                                                    workdir: str) -> None:
    schedule = service.schedules.create({"prompt": "p", "cwd": workdir}, cron="0 * * * *")
    service.schedules.fire_due(at("2026-03-02T09:00:01+00:00"))
    cancelled = service.schedules.cancel(schedule.id, "not needed")
    assert (cancelled.status, cancelled.cancel_reason, cancelled.next_run_at) == (
        ScheduleStatus.CANCELLED, "not needed", None)
    assert service.schedules.fire_due(at("2026-03-02T10:00:01+00:00")) == 0
    assert [t.status for t in schedule_tasks(service, schedule.id)] == [TaskState.QUEUED]
    for action in (service.schedules.cancel, service.schedules.resume,
                   service.schedules.pause):
        with pytest.raises(InvalidTransition):
            action(schedule.id)


def test_ids_prefixes_and_unknown_ones(service: TaskService, workdir: str) -> None:
    schedule = service.schedules.create({"prompt": "p", "cwd": workdir}, cron="0 * * * *")
    digits = schedule.id.removeprefix("sched-")
    for ref in (schedule.id, digits, schedule.short_id, digits[:4], digits.upper()):
        assert service.schedules.get(ref).id == schedule.id
    for ref, words in (("abc", "too short"), ("sched-zzzz", "not a schedule id"),
                       ("", "not a schedule id"), ("ffffffff", "no schedule")):
        with pytest.raises(UnknownSchedule, match=words):
            service.schedules.get(ref)


def test_list_filters_and_pages_newest_first(service: TaskService, workdir: str) -> None:
    made = [service.schedules.create({"prompt": f"p{n}", "cwd": workdir}, cron="0 * * * *")
            for n in range(3)]
    service.schedules.pause(made[1].id)
    assert [s.id for s in service.schedules.list()] == [m.id for m in reversed(made)]
    assert [s.id for s in service.schedules.list("paused")] == [made[1].id]
    assert [s.id for s in service.schedules.list(limit=1, offset=1)] == [made[1].id]
    with pytest.raises(InvalidRequest):
        service.schedules.list("sleeping")
    assert service.schedules.has_active()
