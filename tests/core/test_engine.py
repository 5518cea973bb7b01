"""The engine end to end with real agent processes (the fake `claude`) and real SQLite."""

from __future__ import annotations

import json
import os
import shutil
from datetime import datetime
from pathlib import Path

import psutil
import pytest
from engine_helpers import FAKE_CLAUDE, agent_env, make_config, wait_for_state, wait_until

from claudine_core.engine import Engine
from claudine_core.models import Priority, TaskSpec, TaskState
from claudine_core.service import InvalidRequest, TaskService
from claudine_core.store.repo import InvalidTransition, UnknownTask

DONE = (TaskState.COMPLETED, TaskState.FAILED, TaskState.CANCELLED)


def spec(prompt: str, cwd: Path, **kw) -> TaskSpec:
    return TaskSpec(prompt=prompt, cwd=str(cwd), **kw)


async def test_text_task_completes_with_summary(engine: Engine, tmp_path: Path) -> None:
    task = engine.service.delegate(spec("say hello", tmp_path))
    assert engine.role == "owner"
    done = await wait_for_state(engine, task.id, DONE)
    assert done.status is TaskState.COMPLETED, done.error
    assert done.exit_code == 0
    assert done.session_id and done.num_turns == 1
    assert done.cost_usd is not None and done.cost_usd > 0
    assert done.result == "FAKE_DONE: say hello"
    assert done.started_at and done.ended_at and done.ended_at >= done.started_at


async def test_agent_writes_file_in_its_cwd(engine: Engine, tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    task = engine.service.delegate(spec("[write:out.txt=hello from agent]", work))
    done = await wait_for_state(engine, task.id, DONE)
    assert done.status is TaskState.COMPLETED
    assert (work / "out.txt").read_text() == "hello from agent"


async def test_api_error_is_a_failure_with_reason(engine: Engine, tmp_path: Path) -> None:
    task = engine.service.delegate(spec("[api-error:400] nope", tmp_path))
    done = await wait_for_state(engine, task.id, DONE)
    assert done.status is TaskState.FAILED
    assert done.is_error is True and done.api_error_status == 400
    assert "API error 400" in (done.error or "")


async def test_crash_without_result_fails_with_stderr(engine: Engine, tmp_path: Path) -> None:
    task = engine.service.delegate(spec("[crash]", tmp_path))
    done = await wait_for_state(engine, task.id, DONE)
    assert done.status is TaskState.FAILED
    assert "code 3" in (done.error or "")


async def test_signal_death_is_a_failure(engine: Engine, tmp_path: Path) -> None:
    task = engine.service.delegate(spec("[segv]", tmp_path))
    done = await wait_for_state(engine, task.id, DONE)
    assert done.status is TaskState.FAILED
    assert "SIGSEGV" in (done.error or "")


async def test_transient_failure_is_retried_then_succeeds(tmp_path: Path) -> None:
    # The fake fails its first run (marker file absent) and succeeds on the retry.
    marker = tmp_path / "ran-once"
    config = make_config(tmp_path / "home", max_retries=2, retry_base_delay_s=0.1)
    async with Engine(config, env=agent_env(), tick_s=0.05) as eng:
        task = eng.service.delegate(spec(f"[api-error-once:529:{marker}]", tmp_path))
        done = await wait_for_state(eng, task.id, DONE)
    assert done.status is TaskState.COMPLETED, done.error
    assert done.attempt == 2
    # The retry resumed the agent's own session rather than starting over.
    assert done.resume_session_id is not None


async def test_permanent_failure_is_not_retried(tmp_path: Path) -> None:
    config = make_config(tmp_path / "home", max_retries=3, retry_base_delay_s=0)
    async with Engine(config, env=agent_env(), tick_s=0.05) as eng:
        task = eng.service.delegate(spec("[api-error:400]", tmp_path))
        done = await wait_for_state(eng, task.id, DONE)
    assert done.status is TaskState.FAILED and done.attempt == 1


async def test_timeout_stops_whole_group_including_grandchild(
    engine: Engine, tmp_path: Path
) -> None:
    pid_file = tmp_path / "grandchild.pid"
    task = engine.service.delegate(spec(f"[grandchild:{pid_file}] [hang]", tmp_path, timeout_s=2))
    grandchild = int(await wait_until(lambda: pid_file.exists() and pid_file.read_text()))
    done = await wait_for_state(engine, task.id, DONE)
    assert done.status is TaskState.FAILED
    assert "timed out after 2s" in (done.error or "")
    await wait_until(lambda: not _alive(grandchild), timeout=10)


async def test_cancel_running_agent_that_ignores_sigterm(engine: Engine, tmp_path: Path) -> None:
    pid_file = tmp_path / "agent.pid"
    task = engine.service.delegate(spec(f"[pid-file:{pid_file}] [ignore-sigterm] [hang]", tmp_path))
    agent_pid = int(await wait_until(lambda: pid_file.exists() and pid_file.read_text()))
    engine.service.cancel(task.id, "changed my mind")
    done = await wait_for_state(engine, task.id, DONE)
    assert done.status is TaskState.CANCELLED
    assert done.error == "changed my mind"
    await wait_until(lambda: not _alive(agent_pid), timeout=10)


async def test_flood_is_bounded_and_task_still_completes(tmp_path: Path) -> None:
    cap = 1024 * 1024
    config = make_config(tmp_path / "home", max_output_bytes=cap)
    async with Engine(config, env=agent_env(), tick_s=0.05) as eng:
        task = eng.service.delegate(spec("[flood:100]", tmp_path))
        done = await wait_for_state(eng, task.id, DONE, timeout=120)
        stdout = eng.service.output_path(task.id)
        assert stdout is not None
        size = stdout.stat().st_size
    assert done.status is TaskState.COMPLETED, done.error
    assert done.output_truncated
    assert size <= cap + 10_000  # the cap plus the kept result line


async def test_invalid_json_lines_do_not_break_the_task(engine: Engine, tmp_path: Path) -> None:
    task = engine.service.delegate(spec("[invalid-json:5]", tmp_path))
    done = await wait_for_state(engine, task.id, DONE)
    assert done.status is TaskState.COMPLETED
    events, _ = engine.service.read_events(task.id)
    assert sum(type(e).__name__ == "InvalidLine" for e in events) >= 5


async def test_missing_binary_is_refused_at_delegate_with_advice(tmp_path: Path) -> None:
    config = make_config(tmp_path / "home", claude_bin="no-such-claude-binary")
    async with Engine(config, env=agent_env(), tick_s=0.05) as eng:
        with pytest.raises(InvalidRequest) as refused:
            eng.service.delegate(spec("hello", tmp_path))
        assert eng.service.list_tasks() == []  # nothing queued that could never run
    assert "not found on PATH" in str(refused.value)
    assert "CLAUDINE_CLAUDE_BIN" in str(refused.value)


async def test_binary_removed_after_delegate_fails_the_task_with_advice(tmp_path: Path) -> None:
    binary = tmp_path / "claude"
    shutil.copy(FAKE_CLAUDE, binary)
    config = make_config(tmp_path / "home", claude_bin=str(binary))
    delegator = TaskService(config, env=agent_env())  # a client: no owner runs it yet
    task = delegator.delegate(spec("hello", tmp_path))
    delegator.close()
    binary.unlink()
    async with Engine(config, env=agent_env(), tick_s=0.05) as eng:
        done = await wait_for_state(eng, task.id, DONE)
    assert done.status is TaskState.FAILED
    assert str(binary) in (done.error or "")
    assert done.attempts and done.attempts[-1]["error"] == done.error


async def test_root_refusal_is_explained(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("the refusal only happens as root")
    env = agent_env()
    env.pop("IS_SANDBOX")
    async with Engine(make_config(tmp_path / "home"), env=env, tick_s=0.05) as eng:
        task = eng.service.delegate(spec("hello", tmp_path))
        done = await wait_for_state(eng, task.id, DONE)
    assert done.status is TaskState.FAILED
    assert "IS_SANDBOX=1" in (done.error or "")


async def test_nested_session_variables_are_removed(tmp_path: Path) -> None:
    env = agent_env(CLAUDECODE="1", ANTHROPIC_BASE_URL="http://127.0.0.1:9")
    async with Engine(make_config(tmp_path / "home"), env=env, tick_s=0.05) as eng:
        task = eng.service.delegate(spec("[env:CLAUDECODE] [env:ANTHROPIC_BASE_URL]", tmp_path))
        await wait_for_state(eng, task.id, DONE)
        events, _ = eng.service.read_events(task.id)
    texts = [getattr(e, "text", "") for e in events]
    assert "ENV CLAUDECODE=<unset>" in texts
    assert "ENV ANTHROPIC_BASE_URL=http://127.0.0.1:9" in texts


async def test_priority_order_and_fifo(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    config = make_config(tmp_path / "home", max_agents=1)
    eng = Engine(config, env=agent_env(FAKE_CLAUDE_LEDGER=str(ledger)), tick_s=0.05)
    # Queue everything before the engine starts so the order is the queue's alone.
    first = eng.service.delegate(spec("p2 first", tmp_path))
    second = eng.service.delegate(spec("p2 second", tmp_path))
    urgent = eng.service.delegate(spec("p0 urgent", tmp_path, priority=Priority.P0))
    moved = eng.service.delegate(spec("p2 moved up", tmp_path))
    eng.service.set_priority(moved.id, "P1")
    await eng.start()
    try:
        for task in (first, second, urgent, moved):
            await wait_for_state(eng, task.id, DONE)
    finally:
        await eng.stop()
    runs = [json.loads(line) for line in ledger.read_text().splitlines()]
    prompts = [run["marker"] for run in runs if run["event"] == "start"]
    assert prompts == ["p0 urgent", "p2 moved up", "p2 first", "p2 second"]


async def test_max_agents_limits_concurrency(tmp_path: Path) -> None:
    config = make_config(tmp_path / "home", max_agents=2)
    async with Engine(config, env=agent_env(), tick_s=0.05) as eng:
        tasks = [eng.service.delegate(spec("[sleep:1]", tmp_path)) for _ in range(5)]
        peak = 0
        seen = eng.changes.count
        while not all(eng.service.get(t.id).status.is_terminal for t in tasks):
            seen = await eng.changes.wait(seen)
            peak = max(peak, len(eng.supervisor.agents))
        finished = [eng.service.get(t.id) for t in tasks]
    assert peak == 2
    assert all(t.status is TaskState.COMPLETED for t in finished)


async def test_task_ids_need_four_hex_digits(engine: Engine, tmp_path: Path) -> None:
    task = engine.service.delegate(spec("[hang]", tmp_path, priority=Priority.P2))
    digits = task.id.removeprefix("task-")
    for too_short in (digits[:1], digits[:3], "TASK-" + digits[:1], "task-"):
        with pytest.raises(UnknownTask, match="too short|empty|not a task id"):
            engine.service.cancel(too_short)
    with pytest.raises(UnknownTask, match="not a task id"):
        engine.service.get("TASK-0zz9")
    assert engine.service.get(task.id).cancel_requested is False  # nothing was acted on
    assert engine.service.get(digits[:4]).id == task.id
    assert engine.service.get("TASK-" + digits[:4].upper()).id == task.id


async def test_bad_requests_are_rejected_clearly(engine: Engine, tmp_path: Path) -> None:
    with pytest.raises(InvalidRequest, match="empty"):
        engine.service.delegate(spec("   ", tmp_path))
    with pytest.raises(InvalidRequest, match="does not exist"):
        engine.service.delegate(spec("x", tmp_path / "missing"))
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    with pytest.raises(InvalidRequest, match="not a directory"):
        engine.service.delegate(spec("x", a_file))
    too_long = "1,048,577 bytes of UTF-8: the limit is 1,048,576; put long"
    with pytest.raises(InvalidRequest, match=too_long):
        engine.service.delegate(spec("x" * 1_048_577, tmp_path))
    with pytest.raises(InvalidRequest, match="1,048,578 bytes"):  # counted in UTF-8 bytes
        engine.service.delegate(spec("é" * 524_289, tmp_path))
    with pytest.raises(InvalidRequest, match="prompt contains a NUL byte"):
        engine.service.delegate(spec("fix\x00it", tmp_path))
    with pytest.raises(InvalidRequest, match="model contains a NUL byte"):
        engine.service.delegate(spec("x", tmp_path, model="opus\x00"))
    with pytest.raises(InvalidRequest, match="working directory contains a NUL byte"):
        engine.service.delegate(spec("x", tmp_path / "a\x00b"))
    with pytest.raises(InvalidRequest, match="lone surrogate"):
        engine.service.delegate(spec("broken \ud800 text", tmp_path))
    assert engine.service.list_tasks() == []  # none of those left a row behind
    with pytest.raises(UnknownTask, match="no task"):
        engine.service.cancel("task-000000000000")
    done = engine.service.delegate(spec("quick", tmp_path))
    await wait_for_state(engine, done.id, DONE)
    with pytest.raises(InvalidTransition, match="nothing to cancel"):
        engine.service.cancel(done.id)
    with pytest.raises(InvalidTransition, match="priority only matters"):
        engine.service.set_priority(done.id, "P0")
    with pytest.raises(ValueError, match="P0"):
        engine.service.set_priority(done.id, "P7")


async def test_retry_and_resume_create_linked_tasks(engine: Engine, tmp_path: Path) -> None:
    failed = engine.service.delegate(spec("[api-error:400]", tmp_path))
    await wait_for_state(engine, failed.id, DONE)
    retried = engine.service.retry(failed.id)
    assert retried.parent_id == failed.id and retried.prompt == failed.prompt
    ok = engine.service.delegate(spec("first part", tmp_path))
    first = await wait_for_state(engine, ok.id, DONE)
    resumed = engine.service.resume(ok.id, "now the second part")
    done = await wait_for_state(engine, resumed.id, DONE)
    assert done.status is TaskState.COMPLETED
    assert done.session_id == first.session_id
    assert (done.result or "").startswith("RESUMED")


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False



async def test_faulty_agents_do_not_stop_the_engine_serving_others(tmp_path: Path) -> None:
    async with Engine(make_config(tmp_path / "home"), env=agent_env(), tick_s=0.05) as eng:
        bad = [eng.service.delegate(spec(p, tmp_path)) for p in
               ("[exit-now]", "[crash]", "[segv]", "[invalid-json:50]", "[flood:5]")]
        good = [eng.service.delegate(spec(f"good {n}", tmp_path)) for n in range(5)]
        finished = [await wait_for_state(eng, t.id, DONE) for t in bad + good]
    by_prompt = {t.prompt: t for t in finished}
    assert by_prompt["[exit-now]"].status is TaskState.FAILED
    assert "code 2" in (by_prompt["[exit-now]"].error or "")
    assert all(by_prompt[f"good {n}"].status is TaskState.COMPLETED for n in range(5))


async def test_task_options_reach_the_agent_command_line(tmp_path: Path) -> None:
    from claudine_core.models import PermissionMode

    log, ledger = tmp_path / "calls.jsonl", tmp_path / "ledger.jsonl"
    env = agent_env(FAKE_CLAUDE_LOG=str(log), FAKE_CLAUDE_LEDGER=str(ledger))
    async with Engine(make_config(tmp_path / "home"), env=env, tick_s=0.05) as eng:
        first = eng.service.delegate(spec("with options", tmp_path, model="claude-sonnet-4-5",
                                  permission_mode=PermissionMode.ALLOWED_TOOLS,
                                  allowed_tools=("Read", "Bash(git:*)")))
        second = eng.service.delegate(spec("edits only", tmp_path,
                                   permission_mode=PermissionMode.ACCEPT_EDITS))
        third = eng.service.delegate(spec("defaults", tmp_path))
        for task in (first, second, third):
            await wait_for_state(eng, task.id, DONE)
    # The prompt is not on the command line (it goes in on stdin): the fake's ledger says
    # which prompt each agent process read.
    runs = map(json.loads, ledger.read_text().splitlines())
    prompts = {run["pid"]: run["marker"] for run in runs}
    calls = {prompts[call["pid"]]: call["argv"]
             for call in map(json.loads, log.read_text().splitlines())}
    options = calls["with options"]
    assert options[options.index("--model") + 1] == "claude-sonnet-4-5"
    assert options[options.index("--allowedTools") + 1:][:2] == ["Read", "Bash(git:*)"]
    assert "--dangerously-skip-permissions" not in options
    edits = calls["edits only"]
    assert edits[edits.index("--permission-mode") + 1] == "acceptEdits"
    assert "--dangerously-skip-permissions" in calls["defaults"]
    defaults = calls["defaults"]
    start = defaults.index("--output-format")
    assert defaults[start:start + 3] == ["--output-format", "stream-json", "--verbose"]


async def test_a_task_that_cannot_launch_fails_alone(engine: Engine, tmp_path: Path) -> None:
    # A row written before validation existed (or by an older claudine) whose model holds
    # a NUL byte: starting its agent raises inside the owner's tick.
    bad = engine.service.repo.insert(
        TaskSpec(prompt="hello", cwd=str(tmp_path), model="opus\x00", worktree=False),
        cwd=str(tmp_path),
    )
    good = engine.service.delegate(spec("after the bad one", tmp_path))
    failed = await wait_for_state(engine, bad.id, DONE)
    assert failed.status is TaskState.FAILED
    assert "could not start the agent" in (failed.error or "")
    assert "null" in (failed.error or "").lower()
    assert (await wait_for_state(engine, good.id, DONE)).status is TaskState.COMPLETED


async def test_cancel_of_a_claimed_task_with_no_agent_takes_effect(
    engine: Engine, tmp_path: Path
) -> None:
    # A running row that no agent backs (its start failed half-way in an older owner).
    task = engine.service.repo.insert(TaskSpec(prompt="x", cwd=str(tmp_path), worktree=False),
                                      cwd=str(tmp_path))
    engine.service.repo.transition(task.id, [TaskState.QUEUED], status=TaskState.RUNNING,
                                   attempt=1, started_at=1.0)
    engine.service.cancel(task.id, "not wanted")
    done = await wait_for_state(engine, task.id, DONE, timeout=10)
    assert done.status is TaskState.CANCELLED and done.error == "not wanted"


async def test_a_retried_task_keeps_each_attempts_outcome(tmp_path: Path) -> None:
    config = make_config(tmp_path / "home", max_retries=2)
    marker = tmp_path / "failed-once"
    async with Engine(config, env=agent_env(), tick_s=0.05) as eng:
        task = eng.service.delegate(spec(f"[api-error-once:529:{marker}]", tmp_path))
        done = await wait_for_state(eng, task.id, DONE)
    assert done.status is TaskState.COMPLETED and done.attempt == 2
    first, second = done.attempts
    assert first["attempt"] == 1 and first["state"] == "failed"
    assert "API error 529" in first["error"]
    assert second == {**second, "attempt": 2, "state": "completed", "error": None}
    assert done.to_json()["attempts"][0]["error"] == first["error"]


async def test_a_task_stored_before_agent_settings_runs_with_the_owners(
    engine: Engine, tmp_path: Path
) -> None:
    # A row from schema 3 has no recorded binary: the owner's claude_bin runs it.
    task = engine.service.repo.insert(TaskSpec(prompt="old row", cwd=str(tmp_path),
                                               worktree=False),
                                      cwd=str(tmp_path))
    assert task.claude_bin is None
    done = await wait_for_state(engine, task.id, DONE)
    assert done.status is TaskState.COMPLETED and done.result == "FAKE_DONE: old row"


async def test_the_delegating_process_settings_travel_with_the_task(tmp_path: Path) -> None:
    """The task runs with the binary, arguments and agent-facing variables of the process
    that delegated it, not those of whichever owner runs it."""
    marker = tmp_path / "the-clients-binary-ran"
    binary = tmp_path / "my-claude"
    binary.write_text(f'#!/bin/sh\ntouch "{marker}"\nexec "{FAKE_CLAUDE}" "$@"\n')
    binary.chmod(0o755)
    invocations = tmp_path / "invocations.jsonl"
    delegating = make_config(tmp_path / "home", claude_bin=str(binary),
                             extra_agent_args=("--model", "from-the-client"))
    client = TaskService(delegating, env={**agent_env(), "ANTHROPIC_BASE_URL": "http://x.test",
                                          "CLAUDECODE": "1", "UNRELATED": "no"})
    task = client.delegate(spec("[env:ANTHROPIC_BASE_URL]", tmp_path))
    client.close()
    assert task.claude_bin == str(binary) and "UNRELATED" not in task.agent_env
    assert "CLAUDECODE" not in task.agent_env  # a nested-session marker never travels
    assert "agent_env" not in task.to_json()  # API keys stay in the store
    owner_config = make_config(tmp_path / "home")  # the plain fake, no extra arguments
    owner_env = agent_env(FAKE_CLAUDE_LOG=str(invocations))
    async with Engine(owner_config, env=owner_env, tick_s=0.05) as eng:
        done = await wait_for_state(eng, task.id, DONE)
        events, _ = eng.service.read_events(task.id)
    assert done.status is TaskState.COMPLETED, done.error
    assert marker.exists()
    assert "ENV ANTHROPIC_BASE_URL=http://x.test" in [getattr(e, "text", "") for e in events]
    argv = json.loads(invocations.read_text().splitlines()[0])["argv"]
    assert argv[argv.index("--model") + 1] == "from-the-client"


async def test_files_the_agent_writes_keep_the_users_modes(engine: Engine,
                                                           tmp_path: Path) -> None:
    """The run files are private, but the agent works in the user's repository: what it
    writes there gets the user's umask, not claudine's 0600."""
    previous = os.umask(0o022)
    try:
        work = tmp_path / "work"
        work.mkdir()
        task = engine.service.delegate(spec("[write:made.txt=by the agent]", work))
        done = await wait_for_state(engine, task.id, DONE)
    finally:
        os.umask(previous)
    assert done.status is TaskState.COMPLETED, done.error
    assert file_mode(work / "made.txt") == 0o644
    assert file_mode(engine.config.runs_dir / task.id / "attempt-1" / "stdout.jsonl") == 0o600


def file_mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


async def test_a_spawn_that_never_reached_the_wrapper_is_not_an_attempt(
    tmp_path: Path,
) -> None:
    """An owner killed between starting a spawn (the run folder's wrapper.log exists) and
    the wrapper's first step leaves a claim with no process and no wrapper record: the
    next owner queues it again, attempt given back, and it runs once, as attempt 1."""
    config = make_config(tmp_path / "home")
    client = TaskService(config, env=agent_env())
    task = client.delegate(spec("spawn interrupted", tmp_path))
    client.repo.transition(task.id, [TaskState.QUEUED], status=TaskState.RUNNING,
                           attempt=1, started_at=1.0)
    run_dir = config.runs_dir / task.id / "attempt-1"
    run_dir.mkdir(parents=True)
    (run_dir / "wrapper.log").touch()
    client.close()
    async with Engine(config, env=agent_env(), tick_s=0.05) as eng:
        done = await wait_for_state(eng, task.id, DONE)
    assert done.status is TaskState.COMPLETED, done.error
    assert done.attempt == 1 and [a["attempt"] for a in done.attempts] == [1]


async def test_an_unchanged_store_is_not_read_again_for_a_snapshot(
    engine: Engine, tmp_path: Path
) -> None:
    """A console refreshing an idle home costs no row reads; any write shows at once."""
    queued = engine.service.delegate(spec("[hang] waits", tmp_path))
    await wait_for_state(engine, queued.id, [TaskState.RUNNING])
    first = engine.snapshot()
    reads = engine.snapshots.reads
    for _ in range(5):
        assert engine.snapshot().tasks == first.tasks
    assert engine.snapshots.reads == reads
    # A write through this engine's own connection (PRAGMA data_version misses those)...
    mine = engine.service.delegate(spec("[hang] mine", tmp_path, priority=Priority.P0))
    assert mine.id in {t.id for t in engine.snapshot().tasks}
    # ... and one from another process's connection both show in the next snapshot.
    other = TaskService(engine.config, env=agent_env())
    try:
        theirs = other.delegate(spec("[hang] theirs", tmp_path))
    finally:
        other.close()
    assert theirs.id in {t.id for t in engine.snapshot().tasks}
    assert engine.snapshots.reads > reads


async def test_waiting_on_changes_wakes_on_another_process_write(
    engine: Engine, tmp_path: Path
) -> None:
    """The owner loop notices a commit from another connection and wakes its waiters."""
    seen = engine.changes.count
    other = TaskService(engine.config, env=agent_env())
    try:
        task = other.delegate(spec("say hi", tmp_path))
    finally:
        other.close()
    assert await engine.changes.wait(seen) > seen
    done = await wait_for_state(engine, task.id, DONE)
    assert done.status is TaskState.COMPLETED


async def test_an_idle_owner_reads_no_rows_and_wakes_for_a_back_off(tmp_path: Path) -> None:
    """Nothing waiting: ticks read no task rows, yet a retry starts when its back-off ends."""
    config = make_config(tmp_path / "home", max_retries=1, retry_base_delay_s=0.5)
    marker = tmp_path / "failed-once"
    async with Engine(config, env=agent_env(), tick_s=0.02) as eng:
        reads: list[str] = []
        for name in ("dispatchable", "cancel_requests", "list_tasks"):
            counted = getattr(eng.service.repo, name)

            def counting(*args: object, _name: str = name, _read=counted, **kw: object):
                reads.append(_name)
                return _read(*args, **kw)

            setattr(eng.service.repo, name, counting)
        ticks = eng.ticks
        await wait_until(lambda: eng.ticks >= ticks + 2)  # the start-up's own look is over
        reads.clear()
        ticks = eng.ticks
        await wait_until(lambda: eng.ticks >= ticks + 10)
        assert reads == []  # ten idle ticks, no query of the rows
        task = eng.service.delegate(spec(f"[api-error-once:529:{marker}]", tmp_path))
        done = await wait_for_state(eng, task.id, DONE)
    assert done.status is TaskState.COMPLETED and done.attempt == 2
    first, second = done.attempts
    failed_at = datetime.fromisoformat(first["ended_at"]).timestamp()
    retried_at = datetime.fromisoformat(second["started_at"]).timestamp()
    assert retried_at - failed_at >= 0.49  # not before its back-off ended (ms in the record)
