"""The wrapper answers for every process an agent starts (stand-in agents as shell scripts).

The real-CLI versions (the claude Bash tool detaching processes) are in
tests/e2e/test_stop_real_claude.py; these cover the same machinery in a second or two.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

from engine_helpers import agent_env, make_config, wait_for_state, wait_until

from claudine_core.engine import Engine
from claudine_core.models import TERMINAL_STATES, TaskSpec, TaskState
from claudine_core.supervisor import ESCALATION_MARGIN_S


def stub_agent(folder: Path, script: str) -> Path:
    """An executable standing in for ``claude``: a shell script."""
    path = folder / "agent.sh"
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(0o755)
    return path


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except OSError:
        return False


def exit_record(engine: Engine, task_id: str) -> dict:
    path = engine.service.output_path(task_id, "exit.json")
    assert path is not None
    return dict(json.loads(path.read_text()))


async def test_agent_status_is_kept_while_the_wrapper_reaps_its_orphans(tmp_path: Path) -> None:
    """The wrapper reaps every child (orphans re-parent to it) and still records the
    agent's own exit code, not an orphan's."""
    agent = stub_agent(tmp_path, "setsid sh -c 'exit 9' & setsid sh -c 'exit 5' &\nexit 7\n")
    config = make_config(tmp_path / "home", claude_bin=str(agent))
    async with Engine(config, env=agent_env(), tick_s=0.05) as engine:
        task = engine.service.delegate(TaskSpec(prompt="hi", cwd=str(tmp_path)))
        done = await wait_for_state(engine, task.id, TERMINAL_STATES)
        record = exit_record(engine, task.id)
    assert done.status is TaskState.FAILED and done.exit_code == 7
    assert record["exit_code"] == 7 and record["signal"] is None


async def test_the_agent_reads_its_prompt_on_stdin(tmp_path: Path) -> None:
    stdin, argv = tmp_path / "stdin.txt", tmp_path / "argv.txt"
    # One line: the prompt is the first user turn of a stream-json conversation, whose
    # stdin stays open for later messages until a turn ends (this stub never ends one).
    agent = stub_agent(tmp_path, f'head -n 1 > {stdin}; echo "$@" > {argv}\n')
    config = make_config(tmp_path / "home", claude_bin=str(agent))
    async with Engine(config, env=agent_env(), tick_s=0.05) as engine:
        task = engine.service.delegate(TaskSpec(prompt="-n\n- a list\n", cwd=str(tmp_path)))
        await wait_for_state(engine, task.id, TERMINAL_STATES)
    turn = json.loads(stdin.read_text())
    assert turn == {"type": "user", "message": {"role": "user", "content": "-n\n- a list\n"}}
    assert argv.read_text().split()[:6] == [
        "-p", "--input-format", "stream-json", "--output-format", "stream-json", "--verbose"]


async def test_detached_process_left_by_a_finished_agent_is_stopped(tmp_path: Path) -> None:
    pid_file = tmp_path / "detached.pid"
    agent = stub_agent(tmp_path, (
        f"setsid sh -c 'echo $$ > {pid_file}; exec sleep 300' >/dev/null 2>&1 </dev/null &\n"
        f"while [ ! -s {pid_file} ]; do sleep 0.01; done\n"
        "exit 0\n"
    ))
    config = make_config(tmp_path / "home", claude_bin=str(agent))
    async with Engine(config, env=agent_env(), tick_s=0.05) as engine:
        task = engine.service.delegate(TaskSpec(prompt="hi", cwd=str(tmp_path)))
        await wait_for_state(engine, task.id, TERMINAL_STATES)
        record = exit_record(engine, task.id)
        detached = int(pid_file.read_text())
        assert not alive(detached)  # gone before the end was recorded
    assert record["leftover_processes"] == 1 and record["exit_code"] == 0


async def test_engine_kills_the_whole_tree_when_the_wrapper_does_not_finish(
    tmp_path: Path,
) -> None:
    """A wrapper that cannot act (stopped here) is SIGKILLed with every process under it,
    detached ones included, once the grace period and a margin are over."""
    pid_file = tmp_path / "detached.pid"
    agent = stub_agent(tmp_path, (
        f"setsid sh -c 'trap \"\" TERM; echo $$ > {pid_file}; exec sleep 300' "
        ">/dev/null 2>&1 </dev/null &\n"
        "exec sleep 300\n"
    ))
    config = make_config(tmp_path / "home", claude_bin=str(agent), kill_grace_s=0.5)
    async with Engine(config, env=agent_env(), tick_s=0.05) as engine:
        task = engine.service.delegate(TaskSpec(prompt="hi", cwd=str(tmp_path)))
        detached = int(await wait_until(lambda: pid_file.exists() and pid_file.read_text()))
        wrapper = engine.service.get(task.id).pid
        assert wrapper is not None
        os.kill(wrapper, signal.SIGSTOP)
        cancelled_at = time.monotonic()
        engine.service.cancel(task.id, "stop it")
        done = await wait_for_state(engine, task.id, TERMINAL_STATES)
        took = time.monotonic() - cancelled_at
    assert done.status is TaskState.CANCELLED
    assert took >= 0.5 + ESCALATION_MARGIN_S  # the wrapper had its chance first
    await wait_until(lambda: not alive(detached) and not alive(wrapper), timeout=5)
