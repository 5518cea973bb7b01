"""A message reaches an agent whose owner was kill -9ed: the wrapper delivers it alone.
Separate ``claudine`` processes (owner, ``send``), the fake agent, a real SIGKILL."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

from engine_helpers import cli_env, make_config, poll

from claudine_core.agents import inbox
from claudine_core.models import TaskState
from claudine_core.service import TaskService

CLAUDINE = str(Path(sys.executable).with_name("claudine"))


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CLAUDINE, *args], env=env, capture_output=True, text=True,
                          timeout=60)


def test_a_message_to_an_agent_whose_owner_was_killed(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = cli_env(home)
    made = run(env, "delegate", "[sleep:3] first", "--cwd", str(tmp_path), "--no-serve",
               "--json")
    assert made.returncode == 0, made.stderr
    task_id = json.loads(made.stdout)["id"]
    run_dir = home / "runs" / task_id / "attempt-1"

    owner = subprocess.Popen([CLAUDINE, "serve"], env=env, stderr=subprocess.DEVNULL)
    try:
        poll(lambda: inbox.delivered_at(str(run_dir), inbox.PROMPT_KEY), 60,
             "the agent to take its prompt")
    finally:
        owner.send_signal(signal.SIGKILL)
        assert owner.wait(timeout=30) == -9

    sent = run(env, "send", task_id, "said after the owner died", "--json")
    assert sent.returncode == 0, sent.stderr
    message_id = json.loads(sent.stdout)["id"]
    poll(lambda: (run_dir / "exit.json").exists(), 60, "the agent to exit")

    answers = [json.loads(line) for line in (run_dir / "stdout.jsonl").read_text().splitlines()]
    results = [line["result"] for line in answers if line.get("type") == "result"]
    assert results == ["FAKE_DONE: [sleep:3] first", "FAKE_DONE: said after the owner died"]
    service = TaskService(make_config(home))  # a client: no owner has run since the kill
    try:
        assert service.get(task_id).status is TaskState.RUNNING  # its end not recorded yet
        (message,) = service.task_messages(task_id)
        assert message.id == message_id and message.delivered_at is not None
    finally:
        service.close()
    finished = run(env, "wait", task_id, "--timeout", "60")  # a new owner records the end
    assert finished.returncode == 0, finished.stderr + finished.stdout
