"""A fake engine for console tests: fixed clock, fixed resources, recorded calls.

It implements the part of ``Engine`` the console calls (``FakeEngine``) and of its
``TaskService`` (``FakeService``), over an in-memory list of tasks, so snapshot tests are
deterministic (no real CPU figures, no wall clock). Both are type-checked against the
console's ports at the end of this module.
"""

from __future__ import annotations

import builtins
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from claudine_core.agents.stream_events import (
    AgentInit,
    AgentResult,
    ApiRetry,
    AssistantText,
    StreamEvent,
    ToolResult,
    ToolUse,
)
from claudine_core.backends.base import NodeCapacity
from claudine_core.models import (
    WAITING_STATES,
    EngineSnapshot,
    Priority,
    ResourceSample,
    Task,
    TaskSpec,
    TaskState,
)
from claudine_core.schedules.model import (
    ExecutionOutcome,
    MissedRunPolicy,
    Schedule,
    ScheduleExecution,
    ScheduleKind,
    ScheduleStatus,
    UnknownSchedule,
)
from claudine_core.service import InvalidRequest, InvalidTransition, UnknownTask
from claudine_core.spending import Budget, CostReport
from claudine_core.usage_limits import HomePause

NOW = 1_767_225_600.0  # 2026-01-01T00:00:00Z
GIB = 1024**3
HOME = Path("/home/dev/.local/share/claudine")


class FakeService:
    """The task commands and queries of ``TaskService`` over an in-memory dict of tasks.

    Every command is recorded in ``calls``; ``read_events`` reads in-memory event lists,
    its offset counting events.
    """

    def __init__(self, tasks: list[Task] | None = None) -> None:
        self.tasks: dict[str, Task] = {t.id: t for t in tasks or []}
        self.calls: list[tuple[Any, ...]] = []
        self.logs: dict[str, list[StreamEvent]] = {}
        self.stderr: dict[str, str] = {}
        self.schedules = FakeSchedules(self.calls)
        self.budget = Budget(0.0, 0.0, None, None, NOW)  # no budget set
        self.cost_report = CostReport("2025-12-03", "2026-01-01", (), (), self.budget)

    def read_events(
        self, task_id: str, offset: int = 0, max_bytes: int | None = None
    ) -> tuple[list[StreamEvent], int]:
        events = self.logs.get(task_id, [])
        return events[offset:], len(events)

    def output_path(self, task_id: str, name: str = "stdout.jsonl") -> Path | None:
        return None

    def stderr_tail(self, task_id: str, max_bytes: int = 4096) -> str:
        return self.stderr.get(task_id, "")[-max_bytes:]

    def worktrees(self) -> FakeReview:
        return FakeReview()

    def waiting_reason(self, task: Task | None = None) -> str | None:
        if task is not None and task.status is TaskState.BLOCKED:
            return "waiting for " + ", ".join(d.removeprefix("task-")[:8]
                                               for d in task.depends_on)
        return None

    def _find(self, ref: str) -> Task:
        for task in self.tasks.values():
            if task.id == ref or task.short_id.startswith(ref.removeprefix("task-")):
                return task
        raise UnknownTask(f"no task {ref}")

    def get(self, ref: str) -> Task:
        return self._find(ref)

    def delegate(self, spec: TaskSpec) -> Task:
        self.calls.append(("delegate", spec))
        if not spec.prompt.strip():
            raise InvalidRequest("the prompt is empty")
        seq = max((t.seq for t in self.tasks.values()), default=0) + 1
        task = make_task(seq, TaskState.QUEUED, spec.prompt, priority=spec.priority,
                         cwd=spec.cwd, model=spec.model, timeout_s=spec.timeout_s)
        self.tasks[task.id] = task
        return task

    def cancel(self, ref: str, reason: str | None = None) -> Task:
        self.calls.append(("cancel", ref, reason))
        task = self._find(ref)
        if task.status.is_terminal:
            raise InvalidTransition(f"task {task.short_id} is {task.status.value}")
        return self._put(replace(task, status=TaskState.CANCELLED, ended_at=NOW,
                                 cancel_reason=reason))

    def cancel_pipeline(self, ref: str, reason: str | None = None) -> tuple[str, list[Task]]:
        self.calls.append(("cancel_pipeline", ref, reason))
        pipeline_id = self._find(ref).pipeline_id
        if pipeline_id is None:
            raise UnknownTask(f"task {ref} is not a step of a pipeline")
        steps = sorted((t for t in self.tasks.values() if t.pipeline_id == pipeline_id),
                       key=lambda t: t.pipeline_step or 0)
        return pipeline_id, [self._put(replace(t, status=TaskState.CANCELLED,
                                               cancel_reason=reason))
                             if not t.status.is_terminal else t for t in steps]

    def set_priority(self, ref: str, priority: Priority | str) -> Task:
        self.calls.append(("set_priority", ref, Priority.parse(priority)))
        task = self._find(ref)
        if task.status not in WAITING_STATES:  # as the core: queued, blocked or parked
            raise InvalidTransition(
                f"task {task.short_id} is {task.status.value}: priority only matters while "
                "a task waits in the queue")
        return self._put(replace(task, priority=Priority.parse(priority)))

    def retry(self, ref: str) -> Task:
        self.calls.append(("retry", ref))
        task = self._find(ref)
        if not task.status.is_terminal:
            raise InvalidTransition(f"task {task.short_id} is {task.status.value}: only a "
                                    "finished task can be retried")
        return self.delegate(TaskSpec(prompt=task.prompt, priority=task.priority, cwd=task.cwd))

    def resume(self, ref: str, additional_context: str | None = None) -> Task:
        raise InvalidTransition("not in the fake")

    def release(self, ref: str) -> Task:
        self.calls.append(("release", ref))
        task = self._find(ref)
        if task.status is not TaskState.PARKED:
            raise InvalidTransition(f"task {task.short_id} is {task.status.value}: only a "
                                    "parked task can be released")
        return self._put(replace(task, status=TaskState.QUEUED, resuming=True,
                                 parked_until=None))

    def costs(self, days: int = 30) -> CostReport:
        self.calls.append(("costs", days))
        return self.cost_report

    def _put(self, task: Task) -> Task:
        self.tasks[task.id] = task
        return task


class FakeSchedules:
    """The schedule queries and commands of ``ScheduleService`` over an in-memory list;
    every command is recorded in ``calls`` (the service's)."""

    def __init__(self, calls: list[tuple[Any, ...]]) -> None:
        self.calls = calls
        self.schedules: dict[str, Schedule] = {}
        self.executions: dict[str, list[ScheduleExecution]] = {}

    def list(self, status: str | ScheduleStatus | None = None, limit: int | None = 50,
             offset: int = 0) -> list[Schedule]:
        found = sorted(self.schedules.values(), key=lambda s: s.seq, reverse=True)
        found = [s for s in found if status is None or s.status.value == status]
        return found[offset:None if limit is None else offset + limit]

    def get(self, ref: str) -> Schedule:
        for schedule in self.schedules.values():
            if schedule.id == ref or schedule.short_id.startswith(ref.removeprefix("sched-")):
                return schedule
        raise UnknownSchedule(f"no schedule with id {ref!r}")

    def history(self, ref: str, limit: int | None = 10) -> builtins.list[ScheduleExecution]:
        return self.executions.get(self.get(ref).id, [])[:limit]

    def _move(self, ref: str, verb: str, allowed: tuple[ScheduleStatus, ...],
              status: ScheduleStatus) -> Schedule:
        self.calls.append((verb + "_schedule", ref))
        schedule = self.get(ref)
        if schedule.status not in allowed:
            raise InvalidTransition(f"schedule {schedule.short_id} is "
                                    f"{schedule.status.value}")
        moved = replace(schedule, status=status, updated_at=schedule.updated_at + 1)
        self.schedules[schedule.id] = moved
        return moved

    def pause(self, ref: str) -> Schedule:
        return self._move(ref, "pause", (ScheduleStatus.ACTIVE,), ScheduleStatus.PAUSED)

    def resume(self, ref: str) -> Schedule:
        return self._move(ref, "resume", (ScheduleStatus.PAUSED,), ScheduleStatus.ACTIVE)

    def cancel(self, ref: str, reason: str | None = None) -> Schedule:
        return self._move(ref, "cancel", (ScheduleStatus.ACTIVE, ScheduleStatus.PAUSED),
                          ScheduleStatus.CANCELLED)


def make_schedule(seq: int, prompt: str, *, cron: str | None = None,
                  run_at: float | None = None, **fields: Any) -> Schedule:
    """A schedule with a deterministic id and times relative to NOW."""
    values: dict[str, Any] = dict(
        id=f"sched-{seq:04x}5c4ed{seq:03x}", seq=seq,
        kind=ScheduleKind.CRON if cron else ScheduleKind.ONE_TIME, cron=cron, run_at=run_at,
        template=TaskSpec(prompt, cwd="/srv/repo/api"), created_at=NOW - 86_400 * seq,
        updated_at=NOW - 3600 * seq)
    values.update(fields)
    return Schedule(**values)


def scheduled_engine() -> FakeEngine:
    """The busy engine with four schedules in different states, one with a failed firing."""
    engine = busy_engine()
    fakes = engine.service.schedules
    nightly = make_schedule(1, "Nightly: run the full test suite and list the flaky tests",
                            cron="30 2 * * 1-5", timezone="Europe/Amsterdam", max_runs=20,
                            runs=6, next_run_at=NOW + 5400, last_run_at=NOW - 81_000)
    weekly = make_schedule(2, "Weekly dependency upgrade: bump and run the tests",
                           cron="0 9 * * 1", timezone="America/New_York", runs=3,
                           status=ScheduleStatus.PAUSED, last_run_at=NOW - 4 * 86_400,
                           missed_run_policy=MissedRunPolicy.CATCHUP)
    release = make_schedule(3, "Draft the 2.3 release notes from the merged PRs",
                            run_at=NOW + 86_400 * 2, next_run_at=NOW + 86_400 * 2)
    audit = make_schedule(4, "Audit the permissions of the S3 buckets", cron="0 6 1 * *",
                          status=ScheduleStatus.CANCELLED, runs=1,
                          cancel_reason="cancelled from the console",
                          last_run_at=NOW - 30 * 86_400)
    for schedule in (nightly, weekly, release, audit):
        fakes.schedules[schedule.id] = schedule
    fakes.executions[nightly.id] = [
        ScheduleExecution(seq=2, schedule_id=nightly.id, scheduled_for=NOW - 81_000,
                          fired_at=NOW - 81_000, outcome=ExecutionOutcome.FAILED,
                          error="working directory /srv/repo/api does not exist: create it "
                          "or pick another"),
        ScheduleExecution(seq=1, schedule_id=nightly.id, scheduled_for=NOW - 167_400,
                          fired_at=NOW - 167_400, task_id=engine.service.get("0001").id,
                          outcome=ExecutionOutcome.CREATED),
    ]
    fakes.executions[weekly.id] = [
        ScheduleExecution(seq=3, schedule_id=weekly.id, scheduled_for=NOW - 4 * 86_400,
                          fired_at=NOW - 4 * 86_400, task_id=engine.service.get("0003").id,
                          outcome=ExecutionOutcome.CREATED)]
    fakes.executions[audit.id] = [
        ScheduleExecution(seq=0, schedule_id=audit.id, scheduled_for=NOW - 30 * 86_400,
                          fired_at=NOW - 30 * 86_400, task_id=engine.service.get("0002").id,
                          outcome=ExecutionOutcome.CREATED)]
    return engine


class FakeEngine:
    """The engine's lifecycle and snapshot over a :class:`FakeService`'s tasks."""

    def __init__(self, tasks: list[Task] | None = None, *, role: str = "owner") -> None:
        self.role = role
        self.kind = "console"
        self.config = SimpleNamespace(home=HOME, default_worktree=False,
                                      on_dependency_failure="fail")
        self.service = FakeService(tasks)
        self.tasks = self.service.tasks  # the same dict: tests edit tasks in place
        self.calls = self.service.calls  # one record of start, stop and every command
        self.cpu = 37.0
        self.waiting_reason: str | None = None
        self.pause: HomePause | None = None
        self.budget: Budget | None = None  # only when a budget is set, as the engine's
        self.now = NOW  # the snapshot's taken_at: a test moves it to let minutes pass
        # The cluster's nodes when the agents run on one.
        self.nodes: tuple[NodeCapacity, ...] | None = None

    async def start(self) -> None:
        self.calls.append(("start",))

    async def stop(self, *, stop_agents: bool = False) -> None:
        self.calls.append(("stop", stop_agents))

    def snapshot(self) -> EngineSnapshot:
        tasks = sorted(self.tasks.values(), key=lambda t: t.seq, reverse=True)
        count = lambda s: sum(1 for t in tasks if t.status is s)  # noqa: E731
        return EngineSnapshot(
            taken_at=self.now,
            role=self.role,
            owner_pid=4242,
            tasks=tuple(tasks),
            resources=ResourceSample(self.cpu, 9 * GIB, 16 * GIB, NOW),
            running=count(TaskState.RUNNING),
            queued=count(TaskState.QUEUED),
            max_agents=8,
            cpu_threshold=80.0,
            memory_reserve=2 * GIB,
            waiting_reason=self.waiting_reason,
            cpu_history=(12, 30, 45, 38, 52, 61, 70, 64, 48, 37) * 3,
            memory_history=(40, 41, 41, 42, 44, 45, 44, 43, 44, 44) * 3,
            pause=self.pause,
            budget=self.budget,
            parked=count(TaskState.PARKED),
            nodes=self.nodes,
        )

    async def snapshot_in_thread(self) -> EngineSnapshot:
        return self.snapshot()  # in memory: nothing to keep off the loop


class FakeReview:
    """A ReviewPort with a fixed diff; merge succeeds, and every action is recorded."""

    DIFF = (
        "diff --git a/app/users.py b/app/users.py\n--- a/app/users.py\n+++ b/app/users.py\n"
        "@@ -10,7 +10,12 @@ def list_users(request):\n"
        "-    users = User.objects.all()\n"
        "-    return JsonResponse({\"users\": [u.as_dict() for u in users]})\n"
        "+    page = int(request.GET.get(\"page\", 1))\n"
        "+    size = min(int(request.GET.get(\"size\", 50)), 200)\n"
        "+    users = User.objects.order_by(\"id\")[(page - 1) * size:page * size]\n"
        "+    return JsonResponse({\"users\": [u.as_dict() for u in users], \"page\": page})\n"
        "diff --git a/tests/test_users.py b/tests/test_users.py\nnew file mode 100644\n"
        "--- /dev/null\n+++ b/tests/test_users.py\n@@ -0,0 +1,3 @@\n"
        "+def test_second_page(client):\n"
        "+    assert client.get(\"/users?page=2&size=1\").json()[\"page\"] == 2\n"
    )

    def __init__(self) -> None:
        self.calls: list[str] = []

    def changed_files(self, task: Task) -> list[tuple[str, str]]:
        return [("M", "app/users.py"), ("A", "tests/test_users.py")]

    def diff(self, task: Task) -> str:
        return self.DIFF

    def merge(self, task: Task) -> dict[str, Any]:
        self.calls.append("merge")
        return {"status": "merged", "commit": "0" * 40, "base": task.base_branch}

    def export_patch(self, task: Task) -> dict[str, Any]:
        self.calls.append("patch")
        return {"status": "kept", "reason": "not in the fake"}

    def open_pr(self, task: Task) -> dict[str, Any]:
        self.calls.append("pr")
        return {"status": "kept", "reason": "not in the fake"}

    def discard(self, task: Task, force: bool = False) -> dict[str, Any]:
        self.calls.append("discard")
        return {"status": "kept", "reason": "not in the fake"}


def make_task(seq: int, status: TaskState, prompt: str, **fields: Any) -> Task:
    """A task with a deterministic id and times relative to NOW."""
    started = NOW - 60 * seq if status is not TaskState.QUEUED else None
    ended = started + 42 if started and status.is_terminal else None
    values: dict[str, Any] = dict(
        id=f"task-{seq:04x}c0ffee{seq:02x}", seq=seq, prompt=prompt, priority=Priority.P2,
        status=status, cwd="/srv/repo/api", created_at=NOW - 61 * seq - 5,
        started_at=started, ended_at=ended,
    )
    values.update(fields)
    return Task(**values)


FAILED_LOG: list[StreamEvent] = [
    AgentInit("5b1e7c2a-93f0", "claude-sonnet-4-5", "/srv/repo/api", "bypassPermissions",
              "2.1.197"),
    AssistantText("I'll run the migration test suite first."),
    ToolUse("tu_1", "Bash", "pytest tests/migrations -q", {"command": "pytest"}),
    ToolResult("tu_1", "E   sqlite3.OperationalError: no such table: users\n1 failed", True),
    ApiRetry(1, 10, 2000.0, 529, "overloaded_error"),
    AssistantText("The users table is created after the migration runs; fixing the order."),
    AgentResult("success", True, 529, 3, "API Error: 529 overloaded", "5b1e7c2a-93f0",
                0.0412, 73_000.0, 0),
]


def busy_engine() -> FakeEngine:
    """Eight tasks in every status, the failed one with a log."""
    engine = FakeEngine([
        make_task(1, TaskState.COMPLETED, "Write the changelog for 2.3", num_turns=4,
                  cost_usd=0.0831, result="Changelog written to CHANGELOG.md"),
        make_task(2, TaskState.FAILED, "Fix the flaky migration test in tests/migrations",
                  num_turns=3, cost_usd=0.0412, error="API error 529: overloaded",
                  priority=Priority.P1),
        make_task(3, TaskState.CANCELLED, "Rename the billing module",
                  error="cancelled from the console"),
        make_task(4, TaskState.RUNNING, "Add pagination to GET /users", num_turns=7,
                  cost_usd=0.1203, last_activity="Bash: pytest tests/api -q",
                  branch="claudine/users-paging"),
        make_task(5, TaskState.RUNNING, "Profile the search endpoint and fix N+1 queries",
                  num_turns=2, cost_usd=0.0210, last_activity="Read: app/search.py",
                  priority=Priority.P1),
        make_task(6, TaskState.RUNNING, "Translate the README to French", num_turns=1,
                  cost_usd=0.0052, last_activity="Writing the introduction…"),
        make_task(7, TaskState.QUEUED, "Upgrade Django to 5.2 and fix deprecations",
                  priority=Priority.P0),
        make_task(8, TaskState.QUEUED, "Write tests for the CSV exporter"),
    ])
    engine.service.logs[engine.service.get("0002").id] = list(FAILED_LOG)
    engine.waiting_reason = "CPU 91% > 80%"
    engine.cpu = 91.0
    return engine


# Three nodes: two machines of their own, and a third that hosts two nodes (their host
# name cannot tell them apart, so they go by the start of their ids).
NODE_A = "a3f0c2" + "0" * 50
NODE_B = "7be91d" + "1" * 50
NODE_C = "c41d5e" + "2" * 50
NODE_D = "c41d77" + "3" * 50


def cluster_engine() -> FakeEngine:
    """The busy engine's agents on a cluster of four nodes: the running tasks on three of
    them, a finished one on a node since gone (``dd…``); one node's probe has not answered
    lately; one node is full."""
    engine = busy_engine()
    engine.nodes = (
        NodeCapacity(NODE_A, alive=True, slots_total=4, slots_used=1, name="build-01.lab",
                     cpu_percent=23.0, memory_total_bytes=32 * GIB,
                     memory_available_bytes=26 * GIB, load_1m=0.82),
        NodeCapacity(NODE_B, alive=True, slots_total=2, slots_used=2, name="10.0.3.17",
                     cpu_percent=88.0, memory_total_bytes=16 * GIB,
                     memory_available_bytes=3 * GIB, load_1m=3.91),
        NodeCapacity(NODE_C, alive=True, slots_total=4, slots_used=0, name="gpu-box",
                     cpu_percent=4.0, memory_total_bytes=64 * GIB,
                     memory_available_bytes=60 * GIB, load_1m=0.1),
        NodeCapacity(NODE_D, alive=True, slots_total=4, slots_used=0, name="gpu-box"),
    )
    placed = {"0004": NODE_A, "0005": NODE_B, "0006": NODE_B, "0001": "dd" + "4" * 54,
              "0002": NODE_A}
    for short, node in placed.items():
        task = engine.service.get(short)
        engine.tasks[task.id] = replace(task, node=node)
    return engine


LIMIT_NOW = NOW + 13 * 3600 + 27 * 60  # 13:27 UTC
LIMIT_RESET = LIMIT_NOW + 38 * 60  # 14:05 UTC: "until 14:05, in 38 min"
LIMIT_REASON = "usage limit reached (five-hour)"


def parked_engine() -> FakeEngine:
    """The busy engine at 13:27 UTC, paused by a five-hour usage limit until 14:05: two
    tasks parked, one released by hand (first in the queue), $1.23 of a $5.00 daily budget
    spent. Times are UTC: tests set TZ=UTC for the clock times."""
    engine = busy_engine()
    shift = LIMIT_NOW - NOW
    for task in list(engine.tasks.values()):
        engine.tasks[task.id] = replace(
            task, created_at=task.created_at + shift,
            started_at=None if task.started_at is None else task.started_at + shift,
            ended_at=None if task.ended_at is None else task.ended_at + shift)
    parked_error = f"{LIMIT_REASON}; continues at 2026-01-01T14:05:00.000Z"
    for seq, prompt, priority in ((9, "Migrate the settings page to the new forms API",
                                   Priority.P1),
                                  (10, "Split the orders service into read and write paths",
                                   Priority.P2)):
        task = make_task(seq, TaskState.PARKED, prompt, priority=priority, num_turns=5,
                         cost_usd=0.3104, parks=1, parked_until=LIMIT_RESET,
                         error=parked_error, session_id=f"5e55{seq:04d}-limit",
                         last_activity="Edit: app/settings/forms.py")
        engine.tasks[task.id] = replace(task, created_at=LIMIT_NOW - 1500 - seq,
                                        started_at=LIMIT_NOW - 1200 - seq)
    released = make_task(11, TaskState.QUEUED, "Document the export endpoints", parks=1,
                         resuming=True, priority=Priority.P2,
                         error="released at 2026-01-01T13:25:00.000Z after a usage limit")
    engine.tasks[released.id] = replace(released, created_at=LIMIT_NOW - 900)
    engine.now = LIMIT_NOW
    engine.pause = HomePause(until=LIMIT_RESET, kind="usage", reason=LIMIT_REASON,
                             since=LIMIT_NOW - 120, task_id=engine.service.get("0009").id)
    engine.budget = Budget(1.23, 12.40, 5.0, None, LIMIT_NOW)
    engine.waiting_reason = engine.pause.describe(LIMIT_NOW)
    engine.cpu = 37.0
    return engine


if TYPE_CHECKING:  # the fakes stand in for the ports: mypy says when they drift apart
    from claudine_tui.widgets.ports import EnginePort, ReviewPort, ServicePort

    _engine: EnginePort = FakeEngine()
    _service: ServicePort = FakeService()
    _review: ReviewPort = FakeReview()
