"""Being told about a task's end: the on_finish command and desktop notifications, fired by
a real owner Engine (the fake agent, real processes for the command and the notifier)."""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from engine_helpers import agent_env, make_config, wait_for_state, wait_until

from claudine_core.engine import Engine
from claudine_core.models import TERMINAL_STATES, Task, TaskSpec, TaskState
from claudine_core.notify import Notifier, desktop_notifier, notification_text, run_command
from claudine_core.service import TaskService

# The command: records its argv, the variables it was given and the JSON on its stdin.
HOOK = """\
import json, os, sys
record = {"argv": sys.argv[1:], "stdin": json.loads(sys.stdin.read()),
          "id": os.environ.get("CLAUDINE_TASK_ID"),
          "status": os.environ.get("CLAUDINE_TASK_STATUS"),
          "home": os.environ.get("CLAUDINE_HOME")}
with open(os.environ["HOOK_LEDGER"], "a") as ledger:
    ledger.write(json.dumps(record) + "\\n")
"""

# A fake notify-send: records its argv, one JSON line per call.
FAKE_NOTIFY_SEND = """\
#!{python}
import json, os, sys
with open({ledger!r}, "a") as ledger:
    ledger.write(json.dumps(sys.argv[1:]) + "\\n")
"""


def ledger_lines(path: Path) -> list[Any]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def fake_notify_send(bin_dir: Path, ledger: Path) -> Path:
    bin_dir.mkdir(parents=True, exist_ok=True)
    script = bin_dir / "notify-send"
    script.write_text(FAKE_NOTIFY_SEND.format(python=sys.executable, ledger=str(ledger)))
    script.chmod(0o755)
    return script


async def run_engine(tmp_path: Path, env: dict[str, str], **settings: Any) -> Engine:
    engine = Engine(make_config(tmp_path / "home", **settings), env=env, tick_s=0.05)
    await engine.start()
    return engine


async def test_on_finish_gets_the_task_json_and_variables_once(tmp_path: Path) -> None:
    ledger = tmp_path / "hook.jsonl"
    hook = tmp_path / "hook.py"
    hook.write_text(HOOK)
    env = agent_env(HOOK_LEDGER=str(ledger))
    engine = await run_engine(tmp_path, env, on_finish=(sys.executable, str(hook), "--flag"),
                              desktop_notifications=False)
    try:
        done = engine.service.delegate(TaskSpec(prompt="say hi", cwd=str(tmp_path)))
        failed = engine.service.delegate(TaskSpec(prompt="[fail] break", cwd=str(tmp_path)))
        for task in (done, failed):
            await wait_for_state(engine, task.id, TERMINAL_STATES)
        records = await wait_until(lambda: len(ledger_lines(ledger)) >= 2 and ledger_lines(ledger))
        # A few more ticks: nothing is told twice.
        seen = engine.changes.count
        engine.service.delegate(TaskSpec(prompt="another", cwd=str(tmp_path)))
        await engine.changes.wait(seen)
    finally:
        await engine.stop(stop_agents=True)
    by_id = {r["id"]: r for r in records}
    assert sorted(by_id) == sorted([done.id, failed.id])
    assert by_id[done.id]["status"] == "completed"
    assert by_id[failed.id]["status"] == "failed"
    assert by_id[done.id]["stdin"]["id"] == done.id
    assert by_id[done.id]["stdin"]["prompt"] == "say hi"
    assert by_id[done.id]["stdin"]["status"] == "completed"
    assert by_id[done.id]["argv"] == ["--flag"]
    assert by_id[done.id]["home"] == str(tmp_path / "home")
    assert [r["id"] for r in ledger_lines(ledger)].count(done.id) == 1
    assert engine.service.get(done.id).notified_at is not None


async def test_no_shell_reads_the_prompt_or_the_command(tmp_path: Path) -> None:
    ledger = tmp_path / "hook.jsonl"
    hook = tmp_path / "hook.py"
    hook.write_text(HOOK)
    pwned = tmp_path / "pwned"
    prompt = f"$(touch {pwned}) `touch {pwned}`; touch {pwned}"
    engine = await run_engine(tmp_path, agent_env(HOOK_LEDGER=str(ledger)),
                              on_finish=(sys.executable, str(hook), "$CLAUDINE_TASK_ID",
                                         f"$(touch {pwned})"),
                              desktop_notifications=False)
    try:
        task = engine.service.delegate(TaskSpec(prompt=prompt, cwd=str(tmp_path)))
        await wait_for_state(engine, task.id, TERMINAL_STATES)
        [record] = await wait_until(lambda: ledger_lines(ledger))
    finally:
        await engine.stop(stop_agents=True)
    assert record["argv"] == ["$CLAUDINE_TASK_ID", f"$(touch {pwned})"]
    assert record["stdin"]["prompt"] == prompt
    assert not pwned.exists()


async def test_a_hanging_hook_is_killed_at_its_timeout(tmp_path: Path,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    pid_file = tmp_path / "hook.pid"
    hook = tmp_path / "hang.py"
    hook.write_text(f"import os, time\nopen({str(pid_file)!r}, 'w').write(str(os.getpid()))\n"
                    "time.sleep(600)\n")
    caplog.set_level(logging.ERROR, logger="claudine.notify")
    engine = await run_engine(tmp_path, agent_env(), on_finish=(sys.executable, str(hook)),
                              on_finish_timeout_s=1, desktop_notifications=False)
    try:
        task = engine.service.delegate(TaskSpec(prompt="quick", cwd=str(tmp_path)))
        await wait_for_state(engine, task.id, TERMINAL_STATES)
        pid = int(await wait_until(lambda: pid_file.exists() and pid_file.read_text()))
        # The loop goes on while the hook hangs: a second task runs to its end.
        second = engine.service.delegate(TaskSpec(prompt="meanwhile", cwd=str(tmp_path)))
        assert (await wait_for_state(engine, second.id, TERMINAL_STATES)).status is \
            TaskState.COMPLETED
        await wait_until(lambda: not _alive(pid), timeout=15)
        await wait_until(lambda: "was killed" in caplog.text, timeout=15)
    finally:
        await engine.stop(stop_agents=True)
    assert "on_finish_timeout_s" in caplog.text
    assert engine.service.get(task.id).status is TaskState.COMPLETED


async def test_a_failing_or_missing_hook_is_logged_and_fails_nothing(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="claudine.notify")
    engine = await run_engine(tmp_path, agent_env(),
                              on_finish=(str(tmp_path / "no-such-hook"),),
                              desktop_notifications=False)
    try:
        task = engine.service.delegate(TaskSpec(prompt="quick", cwd=str(tmp_path)))
        done = await wait_for_state(engine, task.id, TERMINAL_STATES)
        await wait_until(lambda: "could not start" in caplog.text)
    finally:
        await engine.stop(stop_agents=True)
    assert done.status is TaskState.COMPLETED
    assert "set it to a program that exists" in caplog.text
    # Said when the owner started, before any task ended.
    assert "is not an executable program" in caplog.text
    assert caplog.text.index("not an executable") < caplog.text.index("could not start")


@pytest.mark.parametrize("enabled", [True, False])
async def test_notify_send_on_path_is_called_with_the_task(tmp_path: Path,
                                                           enabled: bool) -> None:
    calls = tmp_path / "notify-send.jsonl"
    bin_dir = tmp_path / "bin"
    fake_notify_send(bin_dir, calls)
    env = agent_env()
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    hook_done = tmp_path / "hook-done"
    engine = await run_engine(
        tmp_path, env, desktop_notifications=enabled,
        on_finish=(sys.executable, "-c", f"open({str(hook_done)!r}, 'w').close()"))
    try:
        task = engine.service.delegate(TaskSpec(prompt="[fail] tidy the docs", cwd=str(tmp_path)))
        await wait_for_state(engine, task.id, TERMINAL_STATES)
        await wait_until(hook_done.exists)
        if enabled:
            await wait_until(calls.exists)
    finally:
        await engine.stop(stop_agents=True)  # waits for the notifier's threads
    if not enabled:
        assert not calls.exists()
        return
    [argv] = ledger_lines(calls)
    assert argv[0] == "--app-name=claudine"
    assert argv[1] == f"claudine: task {task.short_id} failed"
    assert argv[2].startswith("[fail] tidy the docs")


def test_no_notifier_on_the_path(tmp_path: Path) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    assert desktop_notifier({"PATH": str(empty)}, platform="linux") is None
    assert desktop_notifier({"PATH": str(empty)}, platform="darwin") is None
    fake = fake_notify_send(tmp_path / "bin", tmp_path / "calls")
    assert desktop_notifier({"PATH": str(fake.parent)}, platform="linux") == [
        str(fake), "--app-name=claudine"]


def test_osascript_gets_the_text_as_arguments_never_as_script(tmp_path: Path) -> None:
    calls = tmp_path / "osascript.jsonl"
    fake = fake_notify_send(tmp_path / "bin", calls).rename(tmp_path / "bin" / "osascript")
    command = desktop_notifier({"PATH": str(fake.parent)}, platform="darwin")
    assert command is not None and command[0] == str(fake)
    task = Task(id="task-0123456789ab", prompt='say "hi" & do shell script "touch x"',
                cwd=str(tmp_path), status=TaskState.COMPLETED, seq=1, created_at=0.0)
    title, body = notification_text(task)
    assert run_command([*command, title, body], {"PATH": str(fake.parent)}, 10,
                       what="desktop notifier", about="test") == 0
    [argv] = ledger_lines(calls)
    # The script is fixed; the title and body are its run handler's argv.
    assert argv[:6] == ["-e", "on run argv", "-e",
                        "display notification (item 2 of argv) with title (item 1 of argv)",
                        "-e", "end run"]
    assert argv[6:] == ["claudine: task 01234567 completed", task.prompt]


def test_many_ends_at_once_make_one_desktop_notification(tmp_path: Path) -> None:
    calls = tmp_path / "notify-send.jsonl"
    bin_dir = tmp_path / "bin"
    fake_notify_send(bin_dir, calls)
    ledger = tmp_path / "hook.jsonl"
    hook = tmp_path / "hook.py"
    hook.write_text(HOOK)
    config = make_config(tmp_path / "home", on_finish=(sys.executable, str(hook)),
                         desktop_notifications=True)
    service = TaskService(config)
    try:
        ids = []
        for n, state in enumerate([TaskState.FAILED] * 4 + [TaskState.COMPLETED]):
            task = service.delegate(TaskSpec(prompt=f"step {n}", cwd=str(tmp_path)))
            service.repo.transition(task.id, [TaskState.QUEUED], status=state, ended_at=1.0)
            ids.append(task.id)
        notifier = Notifier(config, service.repo,
                            env=agent_env(PATH=str(bin_dir), HOOK_LEDGER=str(ledger)))
        assert notifier.tick() == 5
        notifier.close(60)
        assert notifier.tick() == 0  # nothing new: nothing told again
    finally:
        service.close()
    assert ledger_lines(calls) == [["--app-name=claudine", "claudine: 5 tasks ended",
                                    "1 completed, 4 failed"]]
    assert sorted(r["id"] for r in ledger_lines(ledger)) == sorted(ids)  # a hook each


async def test_no_notifier_still_runs_the_hook(tmp_path: Path) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    hook_done = tmp_path / "hook-done"
    env = agent_env()
    env["PATH"] = f"{empty}{os.pathsep}{os.path.dirname(sys.executable)}"
    engine = await run_engine(
        tmp_path, env, desktop_notifications=True,
        on_finish=(sys.executable, "-c", f"open({str(hook_done)!r}, 'w').close()"))
    try:
        assert engine.notifier._desktop is None
        task = engine.service.delegate(TaskSpec(prompt="quick", cwd=str(tmp_path)))
        await wait_for_state(engine, task.id, TERMINAL_STATES)
        await wait_until(hook_done.exists)
    finally:
        await engine.stop(stop_agents=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie nobody reaped yet counts as gone.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


async def test_a_worktree_task_is_told_once_its_merge_step_recorded_an_outcome(
        tmp_path: Path) -> None:
    from git_helpers import make_repo

    repo = make_repo(tmp_path / "repo")
    ledger = tmp_path / "hook.jsonl"
    hook = tmp_path / "hook.py"
    hook.write_text(HOOK)
    engine = await run_engine(tmp_path, agent_env(HOOK_LEDGER=str(ledger)),
                              on_finish=(sys.executable, str(hook)),
                              desktop_notifications=False)
    try:
        task = engine.service.delegate(TaskSpec(prompt="[write:a.txt=x] edit", cwd=str(repo),
                                                worktree=True))
        [record] = await wait_until(lambda: ledger_lines(ledger))
    finally:
        await engine.stop(stop_agents=True)
    assert record["id"] == task.id
    assert record["stdin"]["merge"]["status"] == "kept"  # manual: kept for review
    assert record["stdin"]["branch"] == engine.service.get(task.id).branch


def test_a_store_error_mid_pass_tells_what_was_claimed_and_reads_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from claudine_core.store import StoreError

    ledger = tmp_path / "hook.jsonl"
    hook = tmp_path / "hook.py"
    hook.write_text(HOOK)
    config = make_config(tmp_path / "home", on_finish=(sys.executable, str(hook)),
                         desktop_notifications=False)
    service = TaskService(config)
    try:
        ids = []
        for n in range(4):
            task = service.delegate(TaskSpec(prompt=f"task {n}", cwd=str(tmp_path)))
            service.repo.transition(task.id, [TaskState.QUEUED], status=TaskState.COMPLETED,
                                    ended_at=1.0)
            ids.append(task.id)
        notifier = Notifier(config, service.repo, env=agent_env(HOOK_LEDGER=str(ledger)))
        claim = notifier._claim
        calls = []

        def failing_claim(task_id: str) -> bool:
            calls.append(task_id)
            if len(calls) == 3:  # the store locked in the middle of the pass
                raise StoreError("database is locked")
            return claim(task_id)

        monkeypatch.setattr(notifier, "_claim", failing_claim)
        with pytest.raises(StoreError):
            notifier.tick()
        notifier.close(60)
        assert sorted(r["id"] for r in ledger_lines(ledger)) == sorted(ids[:2])
        monkeypatch.setattr(notifier, "_claim", claim)
        assert notifier.tick() == 2  # nothing else changed the store: it reads again anyway
        notifier.close(60)
    finally:
        service.close()
    told = [r["id"] for r in ledger_lines(ledger)]
    assert sorted(told) == sorted(ids) and len(told) == 4


async def test_a_park_is_told_and_the_end_after_the_release_is_told_again(
        tmp_path: Path) -> None:
    ledger = tmp_path / "hook.jsonl"
    hook = tmp_path / "hook.py"
    hook.write_text(HOOK)
    calls = tmp_path / "notify-send.jsonl"
    bin_dir = tmp_path / "bin"
    fake_notify_send(bin_dir, calls)
    env = agent_env(HOOK_LEDGER=str(ledger), FAKE_CLAUDE_LIMIT_FILE=str(tmp_path / "limit"))
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    engine = await run_engine(tmp_path, env, on_finish=(sys.executable, str(hook)),
                              desktop_notifications=True, max_retries=0)
    try:
        task = engine.service.delegate(TaskSpec(prompt="[usage-limit:2] tidy",
                                                cwd=str(tmp_path)))
        await wait_for_state(engine, task.id, TERMINAL_STATES, timeout=30)
        records = await wait_until(lambda: len(ledger_lines(ledger)) >= 2
                                   and ledger_lines(ledger))
        notes = await wait_until(lambda: len(ledger_lines(calls)) >= 2 and ledger_lines(calls))
    finally:
        await engine.stop(stop_agents=True)
    assert [(r["id"], r["status"]) for r in records] == [(task.id, "parked"),
                                                        (task.id, "completed")]
    assert records[0]["stdin"]["parked_until"] is not None
    assert [argv[1] for argv in notes] == [f"claudine: task {task.short_id} parked",
                                           f"claudine: task {task.short_id} completed"]
    assert "usage limit reached (five-hour); continues at" in notes[0][2]
