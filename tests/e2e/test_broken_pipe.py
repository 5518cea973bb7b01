"""Output into a pipe whose reader stops early (``claudine status | head -3``) ends the
command quietly, as Unix tools do: nothing on stderr, exit status 141 (SIGPIPE's), and
``logs --follow`` stops as soon as its reader has gone, not when the agent next prints."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from engine_helpers import cli_env, make_config

from claudine_core.models import TaskSpec
from claudine_core.service import TaskService

CLAUDINE = str(Path(sys.executable).with_name("claudine"))
EXIT_SIGPIPE = 141


def claudine(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CLAUDINE, *args], env=env, capture_output=True, text=True,
                          timeout=60)


def through_head(env: dict[str, str], command: str, head: str) -> tuple[str, str, int]:
    """``claudine COMMAND | head HEAD`` in bash: what head printed, what claudine wrote on
    stderr, and claudine's exit status."""
    script = f"set -o pipefail; {shlex.quote(CLAUDINE)} {command} | head {head}"
    done = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True,
                          timeout=60)
    return done.stdout, done.stderr, done.returncode


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, str], str]]:
    """A home with one completed task whose transcript is 1 MB, and its environment."""
    home = tmp_path_factory.mktemp("pipes") / "home"
    env = cli_env(home)
    task_id = claudine(env, "delegate", "[flood:1] a long transcript").stdout.strip()
    assert claudine(env, "wait", task_id).returncode == 0
    yield env, task_id


@pytest.fixture(scope="module")
def many_tasks(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A home holding 50 queued tasks with long prompts (no owner runs them)."""
    home = tmp_path_factory.mktemp("many") / "home"
    service = TaskService(make_config(home))
    try:
        for n in range(50):
            service.delegate(TaskSpec(prompt=f"task {n} " + "x" * 4000, cwd=str(home)))
    finally:
        service.close()
    return cli_env(home)


def test_big_status_json_into_head_c_10(many_tasks: dict[str, str]) -> None:
    out, err, code = through_head(many_tasks, "status --json", "-c 10")
    assert out == '[{"id": "t'
    assert err == ""
    assert code == EXIT_SIGPIPE


def test_long_logs_into_head_1(finished: tuple[dict[str, str], str]) -> None:
    env, task_id = finished
    for flags in ("", "--raw"):
        out, err, code = through_head(env, f"logs {task_id} {flags}", "-1")
        assert len(out.splitlines()) == 1
        assert err == ""
        assert code == EXIT_SIGPIPE


@pytest.mark.parametrize("args", [
    ["status", "{id}"],
    ["status", "{id}", "--json"],
    ["status"],
    ["logs", "{id}", "--tail", "3"],
    ["wait", "{id}", "--json"],
    ["config"],
    ["--version"],
], ids=lambda args: " ".join(args).replace("{id}", "ID"))
def test_reader_gone_before_any_output(finished: tuple[dict[str, str], str],
                                       args: list[str]) -> None:
    """``claudine status ID | head -3`` when head is gone first: the reader's end of the
    pipe is closed before claudine writes its first byte."""
    env, task_id = finished
    process = subprocess.Popen([CLAUDINE, *(a.format(id=task_id) for a in args)], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout is not None
    process.stdout.close()
    _, err = process.communicate(timeout=60)
    assert err == ""
    assert process.returncode == EXIT_SIGPIPE


def test_logs_follow_stops_when_its_reader_goes(tmp_path: Path) -> None:
    env = cli_env(tmp_path / "home")
    task_id = claudine(env, "delegate", "[text:first] [sleep:120] [text:never seen]").stdout
    task_id = task_id.strip()
    follow = subprocess.Popen([CLAUDINE, "logs", task_id, "--follow"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert follow.stdout is not None
    try:
        first = follow.stdout.readline()  # what `| head -1` reads before it exits
        assert first.startswith("● session"), first
        follow.stdout.close()
        started = time.monotonic()
        _, err = follow.communicate(timeout=20)  # not the 120 s the agent still sleeps
        assert err == ""
        assert follow.returncode == EXIT_SIGPIPE
        status = json.loads(claudine(env, "status", task_id, "--json").stdout)
        assert status["status"] == "running", (status, time.monotonic() - started)
    finally:
        if follow.poll() is None:
            follow.kill()
            follow.wait()
        claudine(env, "cancel", task_id)
        claudine(env, "wait", task_id)
