"""Messages to a running agent with the REAL `claude` CLI (stream-json input) against the
fake Messages API on 127.0.0.1: delivered during a tool call, and with its owner killed;
the prompt, up to 1 MiB, as the first turn."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import psutil
import pytest
from engine_helpers import cli_env, make_config, poll, wait_for_state, wait_until
from fakes.fake_anthropic import FakeAnthropic

from claudine_core.agents import inbox
from claudine_core.engine import Engine
from claudine_core.models import TERMINAL_STATES, TaskSpec, TaskState
from claudine_core.service import TaskService

pytestmark = pytest.mark.real_claude
CLAUDINE = str(Path(sys.executable).with_name("claudine"))


def texts(request: dict[str, Any]) -> list[str]:
    """Every text and tool result of a request to the API, in conversation order."""
    found = []
    for message in (request.get("body") or {}).get("messages", []):
        content = message["content"]
        blocks = content if isinstance(content, list) else [{"type": "text", "text": content}]
        for block in blocks:
            if block.get("type") == "text":
                found.append(block["text"])
            elif block.get("type") == "tool_result":
                found.append(f"tool_result: {block.get('content')}")
    return found


def sleeping(marker: str) -> list[psutil.Process]:
    return [p for p in psutil.process_iter(["cmdline"])
            if marker in " ".join(p.info.get("cmdline") or [])]


async def test_a_message_sent_during_a_bash_call_reaches_the_model_after_it(
    tmp_path: Path, fake_api: FakeAnthropic, real_claude_bin: Path,
    real_claude_env: dict[str, str],
) -> None:
    env = {**os.environ, **real_claude_env}
    env.pop("CLAUDECODE", None)
    config = make_config(tmp_path / "home", claude_bin=str(real_claude_bin))
    async with Engine(config, env=env, tick_s=0.05) as eng:
        task = eng.service.delegate(TaskSpec(
            prompt="BASH: sleep 3 && echo first-done-4711", cwd=str(tmp_path)))
        await wait_until(lambda: sleeping("first-done-4711"), timeout=60)
        sent = eng.service.send_message(task.id, "also mention the weather")
        done = await wait_for_state(eng, task.id, TERMINAL_STATES, timeout=60)
        (message,) = eng.service.task_messages(task.id)
        events, _ = eng.service.read_events(task.id)
    assert done.status is TaskState.COMPLETED, done.error
    assert message.id == sent.id and message.delivered_at is not None
    seen = [texts(r) for r in fake_api.requests if r.get("path", "").startswith("/v1/messages")]
    first_seen = next(i for i, found in enumerate(seen)
                      if any("also mention the weather" in t for t in found))
    request = seen[first_seen]
    after_tool = request.index("tool_result: first-done-4711")
    assert any("also mention the weather" in t for t in request[after_tool + 1:])
    assert not any("tool_result: first-done-4711" in t for r in seen[:first_seen] for t in r)
    said = [e.text for e in events if type(e).__name__ == "UserText"]
    assert "also mention the weather" in said  # the log shows the user's turn


def test_a_message_reaches_a_real_agent_whose_owner_was_killed(
    tmp_path: Path, fake_api: FakeAnthropic, real_claude_bin: Path,
    real_claude_env: dict[str, str],
) -> None:
    home = tmp_path / "home"
    env = cli_env(home, **real_claude_env, CLAUDINE_CLAUDE_BIN=str(real_claude_bin))
    made = subprocess.run([CLAUDINE, "delegate", "BASH: sleep 4 && echo owner-gone-4711",
                           "--cwd", str(tmp_path), "--no-serve", "--json"],
                          env=env, capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    task_id = json.loads(made.stdout)["id"]
    run_dir = home / "runs" / task_id / "attempt-1"
    owner = subprocess.Popen([CLAUDINE, "serve"], env=env, stderr=subprocess.DEVNULL)
    try:
        poll(lambda: sleeping("owner-gone-4711"), 60, "the agent's sleep to start")
    finally:
        owner.send_signal(signal.SIGKILL)
        assert owner.wait(timeout=30) == -9

    sent = subprocess.run([CLAUDINE, "send", task_id, "reply with a poem", "--json"],
                          env=env, capture_output=True, text=True, timeout=60)
    assert sent.returncode == 0, sent.stderr
    poll(lambda: (run_dir / "exit.json").exists(), 60, "the agent to exit")
    assert json.loads((run_dir / "exit.json").read_text())["exit_code"] == 0
    assert any("reply with a poem" in t for r in fake_api.requests for t in texts(r))
    service = TaskService(make_config(home))
    try:
        assert service.get(task_id).status is TaskState.RUNNING  # no owner recorded the end
        (message,) = service.task_messages(task_id)
        assert message.delivered_at is not None
        assert inbox.delivered_at(str(run_dir), message.id) == message.delivered_at
    finally:
        service.close()
    finished = subprocess.run([CLAUDINE, "wait", task_id, "--timeout", "60"], env=env,
                              capture_output=True, text=True, timeout=90)
    assert finished.returncode == 0, finished.stderr + finished.stdout


async def test_a_one_mib_prompt_is_the_first_stream_json_turn(
    tmp_path: Path, fake_api: FakeAnthropic, real_claude_bin: Path,
    real_claude_env: dict[str, str],
) -> None:
    prompt = "-rf " + "word " * (1024 * 1024 // 5 - 1)  # just under the 1 MiB limit
    env = {**os.environ, **real_claude_env}
    env.pop("CLAUDECODE", None)
    config = make_config(tmp_path / "home", claude_bin=str(real_claude_bin))
    async with Engine(config, env=env, tick_s=0.05) as eng:
        task = eng.service.delegate(TaskSpec(prompt=prompt, cwd=str(tmp_path)))
        done = await wait_for_state(eng, task.id, TERMINAL_STATES, timeout=90)
    assert done.status is TaskState.COMPLETED, done.error
    assert done.result == f"FAKE_DONE: {prompt[:40]}"
    assert any(t.strip() == prompt.strip() for r in fake_api.requests for t in texts(r))
