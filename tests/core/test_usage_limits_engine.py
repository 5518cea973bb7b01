"""Usage limits and budgets through a real engine and real agent processes (the fake
`claude`, which prints the real CLI's limit and budget lines): a limit parks the task and
pauses the home, the reset releases it into its own session first and then the queue, no
retry is used; a task's budget and the home's budgets stop what they should."""

from __future__ import annotations

import json
from pathlib import Path

from engine_helpers import agent_env, make_config, wait_for_state

from claudine_core.engine import Engine
from claudine_core.models import TERMINAL_STATES, TaskSpec, TaskState


def spec(prompt: str, cwd: Path, **extra: object) -> TaskSpec:
    return TaskSpec(prompt=prompt, cwd=str(cwd), **extra)  # type: ignore[arg-type]


def runs(ledger: Path) -> list[dict]:
    """Every agent run the fake recorded, in order (start and end lines)."""
    if not ledger.exists():
        return []
    return [json.loads(line) for line in ledger.read_text().splitlines()]


async def test_a_usage_limit_parks_pauses_the_home_and_the_reset_resumes_first(
        tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    env = agent_env(FAKE_CLAUDE_LIMIT_FILE=str(tmp_path / "limit.json"),
                    FAKE_CLAUDE_LEDGER=str(ledger))
    # No retries at all: a limit that used one would fail the task for good.
    config = make_config(tmp_path / "home", max_retries=0, max_agents=1)
    async with Engine(config, env=env, tick_s=0.05) as eng:
        limited = eng.service.delegate(spec("[usage-limit:3] first", tmp_path))
        parked = await wait_for_state(eng, limited.id, [TaskState.PARKED, *TERMINAL_STATES])
        assert parked.status is TaskState.PARKED, parked.error
        waiting = eng.service.delegate(spec("second", tmp_path))
        pause = eng.service.usage_pause()
        assert pause is not None and pause.until == parked.parked_until
        assert parked.error is not None and parked.error.startswith(
            "usage limit reached (five-hour); continues at ")
        assert parked.session_id and parked.resume_session_id == parked.session_id
        # The home is paused: the queue says so and nothing starts before the reset.
        snapshot = eng.snapshot()
        assert snapshot.pause is not None and snapshot.parked == 1
        first = await wait_for_state(eng, limited.id, TERMINAL_STATES, timeout=30)
        second = await wait_for_state(eng, waiting.id, TERMINAL_STATES, timeout=30)
    assert first.status is TaskState.COMPLETED, first.error
    assert second.status is TaskState.COMPLETED, second.error
    assert (first.attempt, first.parks) == (2, 1)
    assert [a["state"] for a in first.attempts] == ["parked", "completed"]
    assert first.session_id == parked.session_id  # the same conversation went on
    assert first.result is not None and first.result.startswith("RESUMED")
    assert (first.started_at or 0) >= (parked.parked_until or 0)
    assert (second.started_at or 0) >= (first.started_at or 0)
    started = [r for r in runs(ledger) if r["event"] == "start"]
    assert [r["resumed"] for r in started] == [False, True, False]  # each once, in order


async def test_an_api_rate_limit_parks_for_the_retry_delay(tmp_path: Path) -> None:
    env = agent_env(CLAUDE_CODE_MAX_RETRIES="1")
    config = make_config(tmp_path / "home", max_retries=0)
    async with Engine(config, env=env, tick_s=0.05) as eng:
        task = eng.service.delegate(spec("[rate-limit:1] once", tmp_path))
        parked = await wait_for_state(eng, task.id, [TaskState.PARKED, *TERMINAL_STATES])
        assert parked.status is TaskState.PARKED, parked.error
        assert parked.error is not None and parked.error.startswith("API rate limit reached")
        # The last api_retry said 1 s: parked about that long from when the run ended.
        assert parked.parked_until is not None
        done = await wait_for_state(eng, task.id, TERMINAL_STATES, timeout=30)
    assert done.status is TaskState.COMPLETED, done.error
    assert done.parks == 1


async def test_a_task_over_its_own_budget_fails_and_is_not_retried(tmp_path: Path) -> None:
    config = make_config(tmp_path / "home", max_retries=2)
    async with Engine(config, env=agent_env(), tick_s=0.05) as eng:
        task = eng.service.delegate(spec("[cost:0.02][sleep:0][sleep:0] spend", tmp_path,
                                         max_budget_usd=0.03))
        done = await wait_for_state(eng, task.id, TERMINAL_STATES)
    assert done.status is TaskState.FAILED and done.attempt == 1
    assert done.error is not None and done.error.startswith(
        "stopped by its budget (max_budget_usd): the agent had spent $0.04")
    assert done.max_budget_usd == 0.03


async def test_a_reached_daily_budget_holds_the_queue_and_budget_stop_stops_agents(
        tmp_path: Path) -> None:
    config = make_config(tmp_path / "home", daily_budget_usd=0.05, budget_stop=True,
                         max_retries=2)
    async with Engine(config, env=agent_env(), tick_s=0.05) as eng:
        long_one = eng.service.delegate(spec("[sleep:60] long", tmp_path))
        await wait_for_state(eng, long_one.id, [TaskState.RUNNING])
        spender = eng.service.delegate(spec("[cost:0.06] spend", tmp_path))
        spent = await wait_for_state(eng, spender.id, TERMINAL_STATES)
        assert spent.status is TaskState.COMPLETED
        stopped = await wait_for_state(eng, long_one.id, TERMINAL_STATES, timeout=30)
        later = eng.service.delegate(spec("later", tmp_path))
        # Nothing starts while the budget is spent: the queue says why.
        await eng.changes.wait(eng.changes.count)
        reason = eng.admission.reason if eng.admission else None
        assert eng.service.get(later.id).status is TaskState.QUEUED
    assert stopped.status is TaskState.FAILED and stopped.attempt == 1
    assert stopped.error is not None and stopped.error.startswith(
        "stopped: daily budget reached: $0.06 of $0.05 spent today")
    assert reason is not None and reason.startswith("daily budget reached")


async def test_the_fallback_model_reaches_the_agent(tmp_path: Path) -> None:
    log = tmp_path / "argv.jsonl"
    config = make_config(tmp_path / "home", fallback_model="claude-haiku-4-5")
    async with Engine(config, env=agent_env(FAKE_CLAUDE_LOG=str(log)), tick_s=0.05) as eng:
        task = eng.service.delegate(spec("[overloaded] busy", tmp_path))
        done = await wait_for_state(eng, task.id, TERMINAL_STATES)
    assert done.status is TaskState.COMPLETED, done.error
    assert done.fallback_model == "claude-haiku-4-5"
    (argv,) = [json.loads(line)["argv"] for line in log.read_text().splitlines()]
    assert argv[argv.index("--fallback-model") + 1] == "claude-haiku-4-5"


async def test_a_parked_worktree_task_cancelled_gets_its_merge_step(tmp_path: Path) -> None:
    from engine_helpers import wait_until
    from git_helpers import make_repo

    repo = make_repo(tmp_path / "repo")
    config = make_config(tmp_path / "home", max_retries=0)
    async with Engine(config, env=agent_env(), tick_s=0.05) as eng:
        task = eng.service.delegate(spec("[write:notes.txt=half done][usage-limit:600] work",
                                         repo, worktree=True))
        parked = await wait_for_state(eng, task.id, [TaskState.PARKED, *TERMINAL_STATES])
        assert parked.status is TaskState.PARKED and parked.worktree_path
        eng.service.cancel(task.id)
        # The cancel ends it in the store; the owner still runs its merge step (manual:
        # the branch is kept with the agent's work committed, and the task is told about).
        settled = await wait_until(lambda: (t := eng.service.get(task.id)).merge
                                   and t.merge.get("status") != "pending" and t, timeout=30)
    assert settled.status is TaskState.CANCELLED
    assert settled.merge is not None and settled.merge["status"] == "kept"
