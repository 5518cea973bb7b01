"""Usage limits and budgets on a real store with an injected clock: what a limit looks like
in the stream, parking, the home's pause, release at the reset and by hand, the budgets'
gate, the cost ledger, and the schema upgrade that added them."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest
from engine_helpers import make_config

from claudine_core.agents.stream_parse import parse_line
from claudine_core.agents.summary import StreamSummary
from claudine_core.errors import InvalidTransition
from claudine_core.models import Priority, TaskSpec, TaskState
from claudine_core.outcomes import classify
from claudine_core.service import TaskService
from claudine_core.store import open_database
from claudine_core.store.migrations import current_version, migrate
from claudine_core.usage_limits import (
    RESUME_AFTER_LIMIT,
    LimitHit,
    LimitKeeper,
    limit_hit,
    park,
    park_until,
)

# Lines as the real CLI 2.1.197 prints them (docs/claude-usage-limits.md), trimmed.
RESET = 1_796_026_393
SUBSCRIPTION_LIMIT = [
    {"type": "system", "subtype": "init", "session_id": "s-1", "model": "claude-opus-4-8"},
    {"type": "rate_limit_event", "rate_limit_info": {
        "status": "rejected", "resetsAt": RESET, "rateLimitType": "five_hour",
        "isUsingOverage": False}, "session_id": "s-1"},
    {"type": "assistant", "message": {"model": "<synthetic>", "role": "assistant", "content": [
        {"type": "text", "text": "You've hit your session limit · resets 8:13am (UTC)"}]},
     "session_id": "s-1", "error": "rate_limit"},
    {"type": "result", "subtype": "success", "is_error": True, "api_error_status": 429,
     "num_turns": 1, "result": "You've hit your session limit · resets 8:13am (UTC)",
     "session_id": "s-1", "total_cost_usd": 0},
]
API_RATE_LIMIT = [
    {"type": "system", "subtype": "init", "session_id": "s-2"},
    {"type": "system", "subtype": "api_retry", "attempt": 1, "max_retries": 2,
     "retry_delay_ms": 2000, "error_status": 429, "error": "rate_limit"},
    {"type": "system", "subtype": "api_retry", "attempt": 2, "max_retries": 2,
     "retry_delay_ms": 7000, "error_status": 429, "error": "rate_limit"},
    {"type": "result", "subtype": "success", "is_error": True, "api_error_status": 429,
     "result": "API Error: Request rejected (429) · rate limited", "session_id": "s-2",
     "total_cost_usd": 0},
]


def summary_of(lines: list[dict]) -> StreamSummary:
    summary = StreamSummary()
    summary.update_from_lines(json.dumps(line).encode() for line in lines)
    return summary


def hit_of(summary: StreamSummary) -> LimitHit | None:
    return limit_hit(summary.result, usage_resets_at=summary.usage_resets_at,
                     usage_limit_type=summary.usage_limit_type,
                     retry_delay_s=summary.rate_limit_retry_s)


# -- recognising a limit -------------------------------------------------------------------


def test_a_subscription_limit_is_recognised_with_its_reset_time() -> None:
    hit = hit_of(summary_of(SUBSCRIPTION_LIMIT))
    assert hit == LimitHit("usage", resets_at=RESET, limit_type="five_hour")
    assert hit.describe() == "usage limit reached (five-hour)"
    assert park_until(hit, now=RESET - 600, default_wait_s=60) == RESET
    # A reset already past (a slow clock) still waits a moment, never goes on at once.
    assert park_until(hit, now=RESET + 5, default_wait_s=60) == RESET + 6


def test_an_api_rate_limit_waits_for_the_last_retry_delay_or_the_setting() -> None:
    hit = hit_of(summary_of(API_RATE_LIMIT))
    assert hit == LimitHit("rate", retry_after_s=7.0)
    assert park_until(hit, now=100.0, default_wait_s=60) == 107.0
    no_retries = [API_RATE_LIMIT[0], API_RATE_LIMIT[-1]]
    hit = hit_of(summary_of(no_retries))
    assert hit == LimitHit("rate")
    assert park_until(hit, now=100.0, default_wait_s=60) == 160.0


def test_other_errors_and_a_success_after_a_429_retry_are_no_limit() -> None:
    overloaded = [*API_RATE_LIMIT[:2], {**API_RATE_LIMIT[-1], "api_error_status": 529}]
    assert hit_of(summary_of(overloaded)) is None
    recovered = [*API_RATE_LIMIT[:2], {"type": "result", "subtype": "success",
                                       "is_error": False, "result": "done"}]
    assert hit_of(summary_of(recovered)) is None


def test_a_limit_parks_and_a_budget_fails_for_good() -> None:
    summary = summary_of(SUBSCRIPTION_LIMIT)
    outcome = classify(exit_record={"exit_code": 1}, result=summary.result, stop_state=None,
                       stop_reason=None, stderr_tail="", limit=hit_of(summary))
    assert outcome.state is TaskState.PARKED and outcome.limit is not None
    # A user's cancel beats the limit.
    cancelled = classify(exit_record={"exit_code": 1}, result=summary.result,
                         stop_state=TaskState.CANCELLED, stop_reason="cancelled by user",
                         stderr_tail="", limit=hit_of(summary))
    assert cancelled.state is TaskState.CANCELLED
    budget = summary_of([{"type": "result", "subtype": "error_max_budget_usd",
                          "is_error": True, "total_cost_usd": 0.018875, "num_turns": 2}])
    outcome = classify(exit_record={"exit_code": 1}, result=budget.result, stop_state=None,
                       stop_reason=None, stderr_tail="")
    assert outcome.state is TaskState.FAILED and not outcome.transient
    assert outcome.error == ("stopped by its budget (max_budget_usd): the agent had spent "
                             "$0.0189")


def test_the_log_shows_the_limit_with_its_reset() -> None:
    from claudine_core.agents.log_text import render_plain

    (event,) = parse_line(json.dumps(SUBSCRIPTION_LIMIT[1]))
    text = render_plain(event)
    assert text is not None and text.startswith("◷ usage limit reached (five-hour) · resets ")
    assert datetime.fromtimestamp(RESET).strftime("%H:%M") in text
    (result,) = parse_line(json.dumps(SUBSCRIPTION_LIMIT[-1]))
    assert render_plain(result) == ("■ stopped by a usage limit: You've hit your session "
                                    "limit · resets 8:13am (UTC) · 1 turn · $0.0000")
    allowed = {"type": "rate_limit_event", "rate_limit_info": {"status": "allowed"}}
    assert [render_plain(e) for e in parse_line(json.dumps(allowed))] == [None]


def test_a_switch_to_the_fallback_model_shows_in_the_log_and_the_summary() -> None:
    from claudine_core.agents.log_text import render_plain

    line = {"type": "system", "subtype": "model_fallback", "trigger": "overloaded",
            "original_model": "claude-opus-4-8[1m]", "fallback_model": "claude-haiku-4-5",
            "content": "Switched to Haiku 4.5 due to high demand for Opus 4.8 (1M context)"}
    (event,) = parse_line(json.dumps(line))
    assert render_plain(event) == ("↯ Switched to Haiku 4.5 due to high demand for Opus 4.8 "
                                   "(1M context)")
    summary = summary_of([SUBSCRIPTION_LIMIT[0], line])
    assert summary.model == "claude-haiku-4-5"
    assert summary.last_activity == "switched to claude-haiku-4-5"


# -- parking, the pause and the release ----------------------------------------------------


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 11, 30, 12, 0).timestamp())


@pytest.fixture
def service(tmp_path: Path, clock: Clock):
    service = TaskService(make_config(tmp_path / "home", daily_budget_usd=5.0), clock=clock)
    yield service
    service.close()


def started(service: TaskService, prompt: str, priority: Priority = Priority.P2) -> str:
    """A task claimed as dispatch claims it, with a session."""
    task = service.delegate(TaskSpec(prompt=prompt, cwd=".", priority=priority))
    assert service.repo.transition(task.id, [TaskState.QUEUED], status=TaskState.RUNNING,
                                   attempt=1, started_at=service.clock(), session_id="s-" + prompt)
    return task.id


FIVE_HOUR = LimitHit("usage", limit_type="five_hour")


def park_now(service: TaskService, task_id: str, until: float,
             hit: LimitHit = FIVE_HOUR) -> None:
    task = service.repo.get(task_id)
    assert park(service.repo, task, hit, until, service.clock(),
                {"resume_session_id": task.session_id, "resume_prompt": RESUME_AFTER_LIMIT})


def keeper(service: TaskService, clock: Clock) -> LimitKeeper:
    return LimitKeeper(service.config, service.repo, service.budget, clock)


def test_a_parked_task_keeps_its_session_and_pauses_the_home(
        service: TaskService, clock: Clock) -> None:
    first = started(service, "first")
    park_now(service, first, clock.now + 1800)
    task = service.get(first)
    assert task.status is TaskState.PARKED and task.parks == 1
    assert task.parked_until == clock.now + 1800 and task.pid is None
    assert task.resume_session_id == "s-first" and task.resume_prompt == RESUME_AFTER_LIMIT
    assert task.to_json()["parked_until"].endswith("Z")
    pause = service.usage_pause()
    assert pause is not None and pause.until == clock.now + 1800 and pause.task_id == first
    assert pause.describe(clock.now) == (
        "paused: usage limit reached (five-hour) until 12:30, in 30 min")
    gate = keeper(service, clock).gate(clock.now)
    assert gate.resuming_only and gate.reason == pause.describe(clock.now)
    # Another run hitting the limit later moves the pause out, never in.
    second = started(service, "second")
    park_now(service, second, clock.now + 600)
    assert service.usage_pause().until == clock.now + 1800  # type: ignore[union-attr]


def test_at_the_reset_parked_tasks_go_first_in_priority_order_then_the_queue(
        service: TaskService, clock: Clock) -> None:
    low = started(service, "low", Priority.P2)
    high = started(service, "high", Priority.P0)
    park_now(service, low, clock.now + 60)
    park_now(service, high, clock.now + 60)
    waiting = service.delegate(TaskSpec(prompt="queued", cwd=".", priority=Priority.P0)).id
    limits = keeper(service, clock)
    assert limits.tick(clock.now + 59) == []
    assert service.repo.dispatchable(10, clock.now, resuming_only=True) == []
    clock.now += 60
    assert limits.tick(clock.now) == [high, low]
    assert service.usage_pause() is None
    assert limits.gate(clock.now).open
    order = [t.id for t in service.repo.dispatchable(10, clock.now)]
    assert order == [high, low, waiting]
    assert service.queue_position(service.get(waiting)) == 3
    assert service.get(low).notified_at is None  # its end is told again later


def test_a_task_released_by_hand_starts_while_the_home_stays_paused(
        service: TaskService, clock: Clock) -> None:
    first = started(service, "first")
    park_now(service, first, clock.now + 3600)
    other = service.delegate(TaskSpec(prompt="other", cwd=".")).id
    released = service.release(first)
    assert released.status is TaskState.QUEUED and released.resuming
    assert service.usage_pause() is not None
    allowed = service.repo.dispatchable(10, clock.now, resuming_only=True)
    assert [t.id for t in allowed] == [first]
    assert other not in [t.id for t in allowed]
    with pytest.raises(InvalidTransition, match="only a parked task can be released"):
        service.release(other)


def test_release_all_lifts_the_pause(service: TaskService, clock: Clock) -> None:
    first = started(service, "first")
    park_now(service, first, clock.now + 3600)
    assert service.release_all() == [first]
    assert service.usage_pause() is None
    assert keeper(service, clock).gate(clock.now).open


def test_a_parked_task_can_be_cancelled_and_reprioritized(
        service: TaskService, clock: Clock) -> None:
    first = started(service, "first")
    second = started(service, "second")
    park_now(service, first, clock.now + 3600)
    park_now(service, second, clock.now + 3600)
    assert service.set_priority(first, "P0").priority is Priority.P0
    cancelled = service.cancel(second)
    assert cancelled.status is TaskState.CANCELLED and cancelled.ended_at == clock.now


def test_parked_tasks_left_without_a_pause_go_on_at_their_own_time(
        service: TaskService, clock: Clock) -> None:
    first = started(service, "first")
    park_now(service, first, clock.now + 30)
    service.repo.set_fact("usage_pause", None)  # as a store from before a crash might be
    limits = keeper(service, clock)
    assert limits.tick(clock.now + 10) == []
    assert limits.tick(clock.now + 30) == [first]


# -- budgets and the ledger ----------------------------------------------------------------


def test_costs_count_every_attempt_per_day_and_directory(
        service: TaskService, clock: Clock, tmp_path: Path) -> None:
    a = started(service, "a")
    service.ledger.record({a: 1.25}, clock.now)
    service.ledger.record({a: 2.0}, clock.now)  # the same attempt, a later turn
    service.repo.transition(a, [TaskState.RUNNING], attempt=2)
    service.ledger.record({a: 0.5}, clock.now)  # a retry: its own row
    budget = service.budget()
    assert budget.today_usd == pytest.approx(2.5) and budget.reached() is None
    report = service.costs(days=7)
    assert report.total_usd == pytest.approx(2.5)
    assert [(line.key, line.tasks) for line in report.by_day] == [("2026-11-30", 1)]
    assert [line.key for line in report.by_directory] == [str(Path(".").resolve())]
    assert report.to_json()["budget"]["daily_budget_usd"] == 5.0


def test_a_reached_daily_budget_holds_new_agents_until_midnight(
        service: TaskService, clock: Clock) -> None:
    a = started(service, "a")
    service.ledger.record({a: 5.01}, clock.now)
    limits = keeper(service, clock)
    gate = limits.gate(clock.now)
    assert not gate.open and not gate.resuming_only and not gate.stop_running
    assert gate.reason is not None and gate.reason.startswith(
        "daily budget reached: $5.01 of $5.00 spent today; new agents start after midnight")
    clock.now = datetime(2026, 12, 1, 0, 0, 1).timestamp()
    assert limits.gate(clock.now).open  # a new day, with no store change in between


def test_a_reached_monthly_budget_names_the_month(tmp_path: Path, clock: Clock) -> None:
    service = TaskService(make_config(tmp_path / "home", monthly_budget_usd=10.0,
                                      budget_stop=True), clock=clock)
    try:
        a = started(service, "a")
        service.ledger.record({a: 12.0}, clock.now)
        gate = keeper(service, clock).gate(clock.now)
        assert gate.stop_running
        assert gate.reason is not None and "monthly budget reached: $12.00 of $10.00" in \
            gate.reason and "2026-12-01" in gate.reason
    finally:
        service.close()


def test_a_populated_v9_store_upgrades_and_counts_what_its_tasks_spent(tmp_path: Path) -> None:
    path = tmp_path / "claudine.db"
    db = open_database(path)
    migrate(db, target=9)
    started_at = datetime(2026, 11, 29, 23, 30).timestamp()
    rows = [("task-000000000001", "done", "completed", "/w", 1.0, 2.0, started_at, 1, 0.75),
            ("task-000000000002", "free", "completed", "/w", 1.0, 2.0, started_at, 1, None),
            ("task-000000000003", "queued", "queued", "/x", 1.0, 2.0, None, 0, None)]
    for row in rows:
        db.execute_sql("INSERT INTO task (id, prompt, status, cwd, created_at, updated_at, "
                       "started_at, attempt, cost_usd) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", row)
    before = [tuple(r) for r in db.execute_sql("SELECT * FROM task ORDER BY seq")]
    assert migrate(db, target=10) == 9 and current_version(db) == 10
    after = [tuple(r) for r in db.execute_sql("SELECT * FROM task ORDER BY seq")]
    assert [r[: len(before[0])] for r in after] == before
    spend = db.execute_sql("SELECT task_id, attempt, day, cwd, cost_usd FROM spend").fetchall()
    assert [tuple(r) for r in spend] == [("task-000000000001", 1, "2026-11-29", "/w", 0.75)]
    db.close()


def test_a_message_to_a_parked_task_is_refused_with_what_to_do(
        service: TaskService, clock: Clock) -> None:
    first = started(service, "first")
    park_now(service, first, clock.now + 600)
    short = service.get(first).short_id
    with pytest.raises(InvalidTransition, match=(
            f"task {short} is parked by a usage limit.*'claudine release {short}'")):
        service.send_message(first, "also fix the README")
    assert service.task_messages(first) == []


def test_the_fallback_setting_is_fixed_at_delegate_time_unless_it_is_the_tasks_model(
        tmp_path: Path, clock: Clock) -> None:
    service = TaskService(make_config(tmp_path / "home", fallback_model="claude-haiku-4-5"),
                          clock=clock)
    try:
        plain = service.delegate(TaskSpec(prompt="a", cwd=".", model="claude-opus-4-8"))
        same = service.delegate(TaskSpec(prompt="b", cwd=".", model="claude-haiku-4-5"))
        own = service.delegate(TaskSpec(prompt="c", cwd=".", fallback_model="claude-sonnet-5"))
    finally:
        service.close()
    assert plain.fallback_model == "claude-haiku-4-5"
    assert same.fallback_model is None
    assert own.fallback_model == "claude-sonnet-5"
