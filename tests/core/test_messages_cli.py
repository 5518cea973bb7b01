"""``claudine send``: separate processes on a temporary home. Bad input is named and
nothing is stored; a queued task refuses with advice; a finished task is resumed."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from engine_helpers import cli_env, make_config

from claudine_core.messages import Message
from claudine_core.service import TaskService

CLAUDINE = str(Path(sys.executable).with_name("claudine"))


def run(env: dict[str, str], *args: str, stdin: str | None = None,
        ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CLAUDINE, *args], env=env, capture_output=True, text=True,
                          timeout=60, input=stdin)


def messages_of(home: Path, task_id: str) -> list[Message]:
    service = TaskService(make_config(home))
    try:
        return list(service.task_messages(task_id))
    finally:
        service.close()


def test_bad_input_and_a_task_without_a_conversation_are_refused(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = cli_env(home)
    made = run(env, "delegate", "later", "--cwd", str(tmp_path), "--no-serve", "--json")
    task_id = json.loads(made.stdout)["id"]

    empty = run(env, "send", task_id, "   ")
    assert empty.returncode == 2
    assert "claudine: error: message: the message is empty" in empty.stderr
    missing = run(env, "send", task_id)
    assert missing.returncode == 2 and "message" in missing.stderr
    unknown = run(env, "send", "task-0123456789ab", "hello")
    assert unknown.returncode != 0 and "task-0123456789ab" in unknown.stderr
    queued = run(env, "send", task_id, "hello", "--json")
    assert queued.returncode == 1
    assert "queued and has no conversation yet" in json.loads(queued.stdout)["error"]
    assert messages_of(home, task_id) == []  # nothing stored


def test_a_message_read_from_stdin_resumes_a_finished_task(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = cli_env(home, CLAUDE_CONFIG_DIR=str(tmp_path / "claude-config"))
    made = run(env, "delegate", "first", "--cwd", str(tmp_path), "--json")
    task_id = json.loads(made.stdout)["id"]
    assert run(env, "wait", task_id, "--timeout", "60").returncode == 0

    sent = run(env, "send", task_id, "-", stdin="- and a second thing\n")
    assert sent.returncode == 0, sent.stderr
    resumed_id = sent.stdout.strip()  # a bare id, as every command prints for scripts
    assert resumed_id.startswith("task-") and resumed_id != task_id
    waited = run(env, "wait", resumed_id, "--timeout", "60")
    assert waited.returncode == 0, waited.stderr + waited.stdout
    status = json.loads(run(env, "status", resumed_id, "--json").stdout)
    assert status["result"] == "RESUMED FAKE_DONE: - and a second thing"
    assert status["parent_id"] == task_id
    shown = run(env, "status", task_id)  # the original task lists the message it was sent
    assert "messages:" in shown.stdout and "- and a second thing" in shown.stdout
    assert json.loads(run(env, "status", task_id, "--json").stdout)["messages"][0][
        "resume_task_id"] == resumed_id
    deadline = time.monotonic() + 30  # the resumed agent read it as its first turn
    while (found := messages_of(home, task_id))[0].delivered_at is None:
        assert time.monotonic() < deadline, found
        time.sleep(0.05)
    assert found[0].resume_task_id == resumed_id
