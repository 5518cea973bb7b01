"""Continue-from and pipelines with the REAL `claude` CLI against the fake Messages API on
127.0.0.1: the continuation's first model request carries the continued conversation, and
that conversation's own session is left as it was (``--fork-session``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from engine_helpers import agent_env, make_config, wait_for_state
from fakes.fake_anthropic import FakeAnthropic

from claudine_core.engine import Engine
from claudine_core.models import TERMINAL_STATES, TaskSpec, TaskState

pytestmark = pytest.mark.real_claude


@pytest.fixture
async def real_engine(tmp_path: Path, real_claude_bin: Path, real_claude_env: dict[str, str]):
    config = make_config(tmp_path / "home", claude_bin=str(real_claude_bin))
    engine = Engine(config, env=agent_env(**real_claude_env), tick_s=0.05)
    await engine.start()
    yield engine
    await engine.stop(stop_agents=True)


def texts(message: dict[str, Any]) -> str:
    """A message's text, system reminders the CLI adds left out."""
    content = message["content"]
    if isinstance(content, str):
        return content
    return "\n".join(block.get("text", "") for block in content if block.get("type") == "text"
                     and not block.get("text", "").lstrip().startswith("<system-"))


def conversation(body: dict[str, Any]) -> list[tuple[str, str]]:
    """(role, text) of each user or assistant message of a model request that has text (the
    CLI also sends notes of its own, under other roles)."""
    return [(m["role"], texts(m).strip()) for m in body["messages"]
            if m["role"] in ("user", "assistant") and texts(m).strip()]


def session_lines(config_dir: Path, session_id: str) -> str:
    """The text of the CLI's stored session (one JSON line per entry)."""
    [path] = list(config_dir.glob(f"projects/*/{session_id}.jsonl"))
    return path.read_text()


async def test_the_continuation_sends_the_continued_conversation(
        real_engine: Engine, fake_api: FakeAnthropic, tmp_path: Path,
        real_claude_env: dict[str, str]) -> None:
    first = real_engine.service.delegate(TaskSpec(prompt="remember the word papaya",
                                                  cwd=str(tmp_path)))
    follow = real_engine.service.delegate(TaskSpec(prompt="which word was it?",
                                                   continue_from=first.id))
    done_first = await wait_for_state(real_engine, first.id, TERMINAL_STATES, timeout=60)
    done = await wait_for_state(real_engine, follow.id, TERMINAL_STATES, timeout=60)
    assert done_first.status is TaskState.COMPLETED, done_first.error
    assert done.status is TaskState.COMPLETED, (done.error,
                                                real_engine.service.stderr_tail(done.id))
    *_, continued = fake_api.message_requests()
    assert conversation(continued) == [
        ("user", "remember the word papaya"),
        ("assistant", "FAKE_DONE: remember the word papaya"),
        ("user", "which word was it?"),
    ]
    assert done.result == "FAKE_DONE: which word was it?"
    # A fork: a new session holds both turns; the continued one still ends at its own.
    assert done.session_id and done.session_id != done_first.session_id
    config_dir = Path(real_claude_env["CLAUDE_CONFIG_DIR"])
    assert "which word was it?" in session_lines(config_dir, done.session_id)
    assert "which word was it?" not in session_lines(config_dir, done_first.session_id)


async def test_a_continued_pipeline_carries_the_conversation_step_to_step(
        real_engine: Engine, fake_api: FakeAnthropic, tmp_path: Path) -> None:
    _, steps = real_engine.service.create_pipeline(
        ["write the plan", "implement the plan", "review it"],
        TaskSpec(prompt="-", cwd=str(tmp_path)), continue_conversation=True)
    ends = [await wait_for_state(real_engine, s.id, TERMINAL_STATES, timeout=60)
            for s in steps]
    assert [e.status for e in ends] == [TaskState.COMPLETED] * 3, [e.error for e in ends]
    requests = fake_api.message_requests()
    assert [turn for turn in conversation(requests[-1]) if turn[0] == "user"] == [
        ("user", "write the plan"), ("user", "implement the plan"), ("user", "review it")]
    assert len({e.session_id for e in ends}) == 3
    assert json.dumps(requests[0]).count("implement the plan") == 0
