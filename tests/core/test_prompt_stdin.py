"""The prompt reaches the agent on stdin, never as an argv word; the agent's own usage
errors fail at once; run files are private. Real wrapper and agent processes (the fake)."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from engine_helpers import agent_env, make_config, wait_for_state

from claudine_core.engine import Engine
from claudine_core.models import TaskSpec, TaskState
from claudine_core.outcomes import classify

DONE = (TaskState.COMPLETED, TaskState.FAILED, TaskState.CANCELLED)
BIG_PROMPT = "日本語☃" * 22_500  # 90,000 characters, 270,000 bytes of UTF-8


def ledger_markers(path: Path) -> list[str]:
    """The prompts the fake agent read, in the order its runs started."""
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    return [line["marker"] for line in lines if line["event"] == "start"]


@pytest.mark.parametrize(
    "prompt",
    ["-rf everything", "- fix the bug\n- add a test", "--model opus please", BIG_PROMPT],
    ids=["dash", "bullets", "flag-like", "90k-non-ascii"],
)
async def test_prompt_reaches_the_agent_whole_and_never_as_an_argument(
    tmp_path: Path, prompt: str
) -> None:
    calls, ledger = tmp_path / "calls.jsonl", tmp_path / "ledger.jsonl"
    env = agent_env(FAKE_CLAUDE_LOG=str(calls), FAKE_CLAUDE_LEDGER=str(ledger))
    async with Engine(make_config(tmp_path / "home"), env=env, tick_s=0.05) as eng:
        task = eng.service.delegate(TaskSpec(prompt=prompt, cwd=str(tmp_path)))
        done = await wait_for_state(eng, task.id, DONE)
    assert done.status is TaskState.COMPLETED, done.error
    assert done.result == f"FAKE_DONE: {prompt[:40]}"
    assert ledger_markers(ledger) == [prompt.strip()]
    (argv,) = [json.loads(line)["argv"] for line in calls.read_text().splitlines()]
    assert argv[:6] == ["-p", "--input-format", "stream-json", "--output-format",
                        "stream-json", "--verbose"]
    assert all(prompt not in word for word in argv)


async def test_resumed_session_reads_the_follow_up_on_stdin(tmp_path: Path) -> None:
    calls, ledger = tmp_path / "calls.jsonl", tmp_path / "ledger.jsonl"
    env = agent_env(FAKE_CLAUDE_LOG=str(calls), FAKE_CLAUDE_LEDGER=str(ledger),
                    CLAUDE_CONFIG_DIR=str(tmp_path / "claude-config"))
    async with Engine(make_config(tmp_path / "home"), env=env, tick_s=0.05) as eng:
        first = eng.service.delegate(TaskSpec(prompt="first turn", cwd=str(tmp_path)))
        done = await wait_for_state(eng, first.id, DONE)
        follow_up = eng.service.resume(first.id, "- now add a test\n- and run it")
        resumed = await wait_for_state(eng, follow_up.id, DONE)
    assert resumed.status is TaskState.COMPLETED, resumed.error
    assert resumed.session_id == done.session_id
    assert resumed.result == "RESUMED FAKE_DONE: - now add a test\n- and run it"
    assert ledger_markers(ledger) == ["first turn", "- now add a test\n- and run it"]
    argv = json.loads(calls.read_text().splitlines()[1])["argv"]
    assert argv[argv.index("--resume") + 1] == done.session_id
    assert not any("now add a test" in word for word in argv)


async def test_run_files_are_private_to_the_owner(tmp_path: Path) -> None:
    async with Engine(make_config(tmp_path / "home"), env=agent_env(), tick_s=0.05) as eng:
        task = eng.service.delegate(TaskSpec(prompt="[text:hello]", cwd=str(tmp_path)))
        done = await wait_for_state(eng, task.id, DONE)
        run_dir = eng.service.attempt_dirs(task.id)[-1]
    assert done.status is TaskState.COMPLETED, done.error
    for folder in (run_dir.parent, run_dir):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
    files = sorted(p.name for p in run_dir.iterdir())
    assert {"prompt.txt", "stdout.jsonl", "stderr.log", "exit.json", "wrapper.log"} <= set(files)
    assert {"inbox", "delivered", "inbox.lock", "inbox.closed"} <= set(files)
    for path in [*run_dir.iterdir(), *(run_dir / "delivered").iterdir()]:
        private = 0o700 if path.is_dir() else 0o600
        assert stat.S_IMODE(path.stat().st_mode) == private, path.name


# -- the agent's CLI refusing its command line -------------------------------------------------

# What the real CLI (2.1.197) prints for `claude -p --bogus-flag` and `claude -p --model`.
UNKNOWN_OPTION = "error: unknown option '--bogus-flag'\n"
MISSING_VALUE = "error: option '--model <model>' argument missing\n"
DID_YOU_MEAN = "error: unknown option '--verbos'\n(Did you mean --verbose?)\n"


@pytest.mark.parametrize(
    ("stderr", "quoted"),
    [
        (UNKNOWN_OPTION, "error: unknown option '--bogus-flag'"),
        (MISSING_VALUE, "error: option '--model <model>' argument missing"),
        (DID_YOU_MEAN, "error: unknown option '--verbos' (Did you mean --verbose?)"),
    ],
    ids=["unknown-option", "missing-value", "did-you-mean"],
)
def test_usage_error_is_permanent_and_quotes_the_agent(stderr: str, quoted: str) -> None:
    outcome = classify(exit_record={"exit_code": 1, "signal": None}, result=None,
                       stop_state=None, stop_reason=None, stderr_tail=stderr)
    assert outcome.state is TaskState.FAILED and not outcome.transient
    assert quoted in (outcome.error or "")


def test_a_crash_that_merely_says_error_is_still_retried() -> None:
    outcome = classify(exit_record={"exit_code": 1, "signal": None}, result=None,
                       stop_state=None, stop_reason=None,
                       stderr_tail="Error: connect ECONNREFUSED 127.0.0.1:443\n")
    assert outcome.transient


async def test_agent_refusing_its_command_line_fails_at_once(tmp_path: Path) -> None:
    """A stand-in for the CLI that answers any unknown flag as the real one does."""
    agent = tmp_path / "strict-claude"
    agent.write_text(
        "#!/bin/sh\n"
        'for arg in "$@"; do case "$arg" in --bogus-flag) '
        "echo \"error: unknown option '--bogus-flag'\" >&2; exit 1;; esac; done\n"
        "exit 3\n"
    )
    agent.chmod(0o755)
    config = make_config(tmp_path / "home", claude_bin=str(agent), max_retries=3,
                         extra_agent_args=("--bogus-flag",))
    async with Engine(config, env=agent_env(), tick_s=0.05) as eng:
        task = eng.service.delegate(TaskSpec(prompt="hello", cwd=str(tmp_path)))
        done = await wait_for_state(eng, task.id, DONE)
    assert done.status is TaskState.FAILED
    assert done.attempt == 1  # not retried
    assert "error: unknown option '--bogus-flag'" in (done.error or "")
