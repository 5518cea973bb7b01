"""Messages to a task's agent: the next turn of a running agent, a resume of a finished
one, refused before a task has a conversation. Real engine, wrapper and agent processes
(the fake agent, which reads stream-json turns as the real CLI does)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from engine_helpers import FAKE_CLAUDE, agent_env, make_config, wait_for_state, wait_until

from claudine_core.agents import inbox
from claudine_core.agents.output_capture import CappedWriter
from claudine_core.agents.wrapper import __file__ as WRAPPER
from claudine_core.engine import Engine
from claudine_core.errors import InvalidTransition
from claudine_core.messages import InvalidMessage, Message, Messages, describe
from claudine_core.models import TERMINAL_STATES, TaskSpec, TaskState
from claudine_core.service import TaskService


def agent_answers(run_dir: Path) -> list[str]:
    """The results of the agent's turns, in order."""
    lines = [json.loads(line) for line in (run_dir / "stdout.jsonl").read_text().splitlines()]
    return [line["result"] for line in lines if line.get("type") == "result"]


def user_turns(run_dir: Path) -> list[str]:
    """The messages the wrapper recorded in the log as it delivered them."""
    lines = [json.loads(line) for line in (run_dir / "stdout.jsonl").read_text().splitlines()]
    return [line["message"]["content"] for line in lines
            if line.get("type") == "user" and isinstance(line["message"]["content"], str)]


async def test_a_message_reaches_the_running_agent_at_its_next_turn(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    env = agent_env(FAKE_CLAUDE_LEDGER=str(ledger))
    async with Engine(make_config(tmp_path / "home"), env=env, tick_s=0.05) as eng:
        task = eng.service.delegate(TaskSpec(prompt="[sleep:2] first", cwd=str(tmp_path)))
        running = await wait_for_state(eng, task.id, (TaskState.RUNNING,))
        run_dir = eng.service.attempt_dirs(task.id)[-1]
        await wait_until(lambda: inbox.delivered_at(str(run_dir), inbox.PROMPT_KEY))
        sent = eng.service.send_message(task.id, "- now say goodbye")
        assert sent.delivered_at is None and sent.attempt == running.attempt
        done = await wait_for_state(eng, task.id, TERMINAL_STATES)
        messages = eng.service.task_messages(task.id)
    assert done.status is TaskState.COMPLETED, done.error
    assert done.result == "FAKE_DONE: - now say goodbye"  # the last turn's answer
    assert [m.id for m in messages] == [sent.id] and messages[0].delivered_at is not None
    assert agent_answers(run_dir)[-1] == "FAKE_DONE: - now say goodbye"
    assert user_turns(run_dir) == ["- now say goodbye"]  # the log shows the user's turn
    starts = [json.loads(line) for line in ledger.read_text().splitlines()
              if json.loads(line)["event"] == "start"]
    assert len(starts) == 1  # one agent process: it was not restarted


async def test_a_message_to_a_finished_task_continues_its_conversation(tmp_path: Path) -> None:
    env = agent_env(CLAUDE_CONFIG_DIR=str(tmp_path / "claude-config"))
    async with Engine(make_config(tmp_path / "home"), env=env, tick_s=0.05) as eng:
        task = eng.service.delegate(TaskSpec(prompt="first turn", cwd=str(tmp_path)))
        first = await wait_for_state(eng, task.id, TERMINAL_STATES)
        sent = eng.service.send_message(task.id, "and one more thing")
        assert sent.resume_task_id is not None
        resumed = await wait_for_state(eng, sent.resume_task_id, TERMINAL_STATES)
        (message,) = eng.service.task_messages(task.id)
    assert resumed.status is TaskState.COMPLETED, resumed.error
    assert resumed.session_id == first.session_id and resumed.parent_id == task.id
    assert resumed.result == "RESUMED FAKE_DONE: and one more thing"
    assert message.delivered_at is not None


def test_a_task_that_has_not_started_refuses_a_message(tmp_path: Path) -> None:
    service = TaskService(make_config(tmp_path / "home"))  # no owner: the task stays queued
    try:
        task = service.delegate(TaskSpec(prompt="later", cwd=str(tmp_path)))
        with pytest.raises(InvalidTransition, match="queued and has no conversation yet"):
            service.send_message(task.id, "hello")
        with pytest.raises(InvalidMessage, match="message: the message is empty"):
            service.send_message(task.id, "  \n")
        with pytest.raises(InvalidMessage, match="message: 1048578 bytes is more than"):
            service.send_message(task.id, "é" * (1024 * 1024 // 2 + 1))
        assert service.task_messages(task.id) == []  # nothing stored
    finally:
        service.close()


def test_the_wrapper_closes_the_conversation_and_refuses_later_messages(
    tmp_path: Path,
) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "prompt.txt").write_text("-rf the prompt")
    wrapper = subprocess.run(
        [sys.executable, "-I", WRAPPER, str(run_dir), "1000000", "--stdin",
         str(run_dir / "prompt.txt"), "--input", "stream-json", "--",
         str(FAKE_CLAUDE), "-p", "--input-format", "stream-json", "--output-format",
         "stream-json", "--verbose"],
        env=agent_env(), capture_output=True, timeout=60)
    assert wrapper.returncode == 0, wrapper.stderr
    assert json.loads((run_dir / "exit.json").read_text())["exit_code"] == 0
    assert agent_answers(run_dir) == ["FAKE_DONE: -rf the prompt"]
    assert inbox.delivered_at(str(run_dir), inbox.PROMPT_KEY) is not None
    assert not inbox.accepting(str(run_dir))
    assert inbox.post(str(run_dir), "msg-late", "too late") is False
    assert not os.listdir(run_dir / "inbox")
    # A message that was accepted but that the agent ended before reading (here: one
    # that was never posted to this closed run) is shown as such, not as waiting.
    messages = Messages(None, resume=None, run_dir=lambda task_id, attempt: run_dir)  # type: ignore[arg-type]
    lost = Message(id="msg-late", task_id="task-0123456789ab", text="too late",
                   created_at=1.0, attempt=1)
    assert not messages.may_still_arrive(lost)
    assert describe(lost, now_open=False) == (
        "msg-late not delivered: the agent ended first: too late")



def test_a_delivered_message_never_splits_a_line_the_agent_is_writing(tmp_path: Path) -> None:
    out = CappedWriter(str(tmp_path / "stdout.jsonl"), 1_000_000)
    out.feed(b'{"type":"assistant","message":{"content":[{"type":"text","te')
    out.write_own_line(inbox.logged_message_line("msg-1", "meanwhile"))
    out.feed(b'xt":"hi"}]}}\n')
    out.finish()
    lines = [json.loads(line) for line in (tmp_path / "stdout.jsonl").read_text().splitlines()]
    assert [line["type"] for line in lines] == ["user", "assistant"]
    assert lines[0]["message"]["content"] == "meanwhile"
    assert lines[0]["claudine_message_id"] == "msg-1"
