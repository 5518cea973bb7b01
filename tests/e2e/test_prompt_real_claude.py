"""The REAL `claude` CLI reads its prompt on stdin (plain text after ``-p`` with no prompt
word): prompts that look like flags, huge ones, resumed sessions; and its usage errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from engine_helpers import agent_env, make_config, wait_for_state
from fakes.fake_anthropic import FakeAnthropic

from claudine_core.engine import Engine
from claudine_core.models import TaskSpec, TaskState

pytestmark = pytest.mark.real_claude
DONE = (TaskState.COMPLETED, TaskState.FAILED, TaskState.CANCELLED)


def prompts_seen(api: FakeAnthropic) -> list[str]:
    """The prompt text of the last human turn of every model request, in order."""
    seen = []
    for body in api.message_requests():
        human = [m for m in body["messages"] if m["role"] == "user"
                 and not any(isinstance(b, dict) and b.get("type") == "tool_result"
                             for b in m["content"])]
        content = human[-1]["content"] if human else ""
        if isinstance(content, list):
            content = "\n".join(b.get("text", "") for b in content if b.get("type") == "text"
                                and not b.get("text", "").lstrip().startswith("<system-"))
        seen.append(content)
    return seen


@pytest.fixture
async def real_engine(tmp_path: Path, real_claude_bin: Path, real_claude_env: dict[str, str]):
    config = make_config(tmp_path / "home", claude_bin=str(real_claude_bin))
    engine = Engine(config, env=agent_env(**real_claude_env), tick_s=0.05)
    await engine.start()
    yield engine
    await engine.stop(stop_agents=True)


@pytest.mark.parametrize(
    "prompt",
    ["-rf everything", "- fix the bug\n- add a test", "日本語☃" * 22_500],
    ids=["dash", "bullets", "90k-non-ascii"],
)
async def test_prompt_that_an_argv_word_would_break(
    real_engine: Engine, fake_api: FakeAnthropic, tmp_path: Path, prompt: str
) -> None:
    task = real_engine.service.delegate(TaskSpec(prompt=prompt, cwd=str(tmp_path)))
    done = await wait_for_state(real_engine, task.id, DONE, timeout=60)
    assert done.status is TaskState.COMPLETED, (done.error, real_engine.service.stderr_tail(
        task.id))
    assert done.result == f"FAKE_DONE: {prompt[:40]}"
    assert [seen.strip() for seen in prompts_seen(fake_api)] == [prompt]


async def test_resume_reads_the_follow_up_on_stdin(
    real_engine: Engine, fake_api: FakeAnthropic, tmp_path: Path
) -> None:
    first = real_engine.service.delegate(TaskSpec(prompt="first turn", cwd=str(tmp_path)))
    done = await wait_for_state(real_engine, first.id, DONE, timeout=60)
    assert done.status is TaskState.COMPLETED, done.error
    follow_up = real_engine.service.resume(first.id, "- second turn\n- starts with a dash")
    resumed = await wait_for_state(real_engine, follow_up.id, DONE, timeout=60)
    assert resumed.status is TaskState.COMPLETED, (
        resumed.error, real_engine.service.stderr_tail(follow_up.id))
    assert resumed.session_id == done.session_id
    assert resumed.result == "FAKE_DONE: - second turn\n- starts with a dash"
    assert [seen.strip() for seen in prompts_seen(fake_api)] == [
        "first turn", "- second turn\n- starts with a dash"]
    # The resumed request carried the first turn's history.
    assert len(fake_api.message_requests()[-1]["messages"]) >= 3


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--bogus-flag",), "error: unknown option '--bogus-flag'"),
        (("--model",), "error: option '--model <model>' argument missing"),
    ],
    ids=["unknown-option", "missing-value"],
)
async def test_usage_error_fails_at_once_with_the_cli_message(
    tmp_path: Path, real_claude_bin: Path, real_claude_env: dict[str, str],
    extra: tuple[str, ...], message: str,
) -> None:
    config = make_config(tmp_path / "home", claude_bin=str(real_claude_bin), max_retries=3,
                         extra_agent_args=extra)
    async with Engine(config, env=agent_env(**real_claude_env), tick_s=0.05) as eng:
        task = eng.service.delegate(TaskSpec(prompt="hello", cwd=str(tmp_path)))
        done = await wait_for_state(eng, task.id, DONE, timeout=60)
    assert done.status is TaskState.FAILED
    assert done.attempt == 1 and done.exit_code == 1  # never retried
    assert message in (done.error or "")
