"""A usage limit through the REAL `claude` CLI as a subscriber runs it (an OAuth token),
against the fake Messages API on 127.0.0.1 answering 429 with the subscription's
``anthropic-ratelimit-unified-*`` headers until a reset a few seconds ahead: the task is
parked, nothing else starts meanwhile, and at the reset the same conversation goes on."""

from __future__ import annotations

from pathlib import Path

import pytest
from engine_helpers import agent_env, make_config, wait_for_state
from fakes.fake_anthropic import FakeAnthropic

from claudine_core.engine import Engine
from claudine_core.models import TERMINAL_STATES, TaskSpec, TaskState

pytestmark = pytest.mark.real_claude


def prompt_texts(body: dict) -> str:
    """Every text of a model request's messages, one string (what the model is told)."""
    parts: list[str] = []
    for message in body["messages"]:
        content = message["content"]
        if isinstance(content, str):
            parts.append(content)
        else:
            parts += [block.get("text", "") for block in content if block.get("type") == "text"]
    return "\n".join(parts)


async def test_a_subscription_limit_parks_and_the_reset_continues_the_session(
        tmp_path: Path, real_claude_bin: Path, real_claude_subscription_env: dict[str, str],
        fake_api: FakeAnthropic) -> None:
    env = {k: v for k, v in agent_env(**real_claude_subscription_env).items()
           if k != "ANTHROPIC_API_KEY"}
    config = make_config(tmp_path / "home", claude_bin=str(real_claude_bin), max_retries=0,
                         max_agents=1)
    async with Engine(config, env=env, tick_s=0.05) as eng:
        limited = eng.service.delegate(TaskSpec(prompt="USAGE_LIMIT: 6\nremember papaya",
                                                cwd=str(tmp_path)))
        parked = await wait_for_state(eng, limited.id, [TaskState.PARKED, *TERMINAL_STATES],
                                      timeout=90)
        assert parked.status is TaskState.PARKED, parked.error
        assert parked.error is not None and parked.error.startswith(
            "usage limit reached (five-hour)")
        reset = fake_api.current_limit()
        assert reset is not None and parked.parked_until is not None
        # The reset the CLI reported is the one the API sent.
        assert abs(parked.parked_until - reset.until) <= 1.0
        other = eng.service.delegate(TaskSpec(prompt="another task", cwd=str(tmp_path)))
        done = await wait_for_state(eng, limited.id, TERMINAL_STATES, timeout=120)
        after = await wait_for_state(eng, other.id, TERMINAL_STATES, timeout=120)
    assert done.status is TaskState.COMPLETED, done.error
    assert after.status is TaskState.COMPLETED, after.error
    assert (done.attempt, done.parks, done.session_id) == (2, 1, parked.session_id)
    requests = [r for r in fake_api.requests if r["method"] == "POST"
                and r["path"].split("?")[0] == "/v1/messages"]
    refused = [r for r in requests if r["time"] < parked.parked_until]
    answered = [r for r in requests if r["time"] >= parked.parked_until]
    assert refused and answered
    # The first request after the reset is the parked conversation going on: it carries the
    # first prompt and the note that the limit has reset; the other task comes after it.
    first_after = prompt_texts(answered[0]["body"])
    assert "remember papaya" in first_after and "usage limit" in first_after
    assert "another task" not in first_after
    assert any("another task" in prompt_texts(r["body"]) for r in answered[1:])
