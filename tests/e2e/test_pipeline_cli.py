"""`claudine pipeline`, `cancel --pipeline`, `status pipe-...` and `delegate --continue-from`
through real `claudine` processes, with the fake agent and a background owner."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from engine_helpers import cli_env

CLAUDINE = str(Path(sys.executable).with_name("claudine"))


class Cli:
    """Runs the installed ``claudine`` on one home; background owners idle-exit soon."""

    def __init__(self, home: Path, **env: str) -> None:
        self.env = cli_env(home, **env)

    def __call__(self, *args: str, cwd: Path | None = None,
                 timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run([CLAUDINE, *args], env=self.env, capture_output=True, text=True,
                              timeout=timeout, cwd=cwd)

    def json(self, *args: str, cwd: Path | None = None) -> Any:
        result = self(*args, "--json", cwd=cwd)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)


@pytest.fixture
def cli(tmp_path: Path) -> Iterator[Cli]:
    yield Cli(tmp_path / "home", FAKE_CLAUDE_LOG=str(tmp_path / "agents.jsonl"),
              CLAUDE_CONFIG_DIR=str(tmp_path / "claude"))
    # Background owners leave by themselves (CLAUDINE_IDLE_EXIT=2); the suite checks.


def test_a_pipeline_runs_its_steps_in_order_and_status_groups_them(
        cli: Cli, tmp_path: Path) -> None:
    made = cli("pipeline", "plan it", "build it", "test it", "--cwd", str(tmp_path),
               "--priority", "P1")
    assert made.returncode == 0, made.stderr
    pipeline_id, *step_lines = made.stdout.splitlines()
    assert re.fullmatch(r"pipe-[0-9a-f]{12}", pipeline_id)
    ids = [line.split()[1] for line in step_lines]
    assert [line.split()[0] for line in step_lines] == ["1.", "2.", "3."]
    assert [line.split()[2] for line in step_lines] == ["queued", "blocked", "blocked"]
    waited = cli("wait", ids[-1], timeout=90)
    assert waited.returncode == 0, waited.stdout + waited.stderr
    steps = cli.json("status", pipeline_id)
    assert [(s["id"], s["pipeline_step"], s["status"], s["priority"]) for s in steps] == [
        (task_id, n, "completed", "P1") for n, task_id in enumerate(ids, 1)]
    assert steps[1]["started_at"] >= steps[0]["ended_at"]
    assert steps[2]["started_at"] >= steps[1]["ended_at"]
    alone = cli("delegate", "not in it", "--cwd", str(tmp_path), "--no-serve")
    table = cli("status").stdout.splitlines()
    assert table[1].startswith(alone.stdout.strip()[5:13])  # newest first, as before
    assert table[2] == f"{pipeline_id}  pipeline, 3 steps: 3 completed"
    for row, (n, prompt) in zip(table[3:6], enumerate(["plan it", "build it", "test it"], 1),
                                strict=True):
        assert row.startswith(f"  {ids[n - 1][5:13]}  ") and " completed  P1 " in row
        assert row.endswith(f"  {n}. {prompt}")
    one = cli("status", pipeline_id[:9]).stdout.splitlines()
    assert one[1] == table[2] and one[2:] == table[3:6]


def test_a_failed_step_fails_the_rest_and_wait_says_so(cli: Cli, tmp_path: Path) -> None:
    made = cli("pipeline", "[fail] plan it", "build it", "--cwd", str(tmp_path), "--json")
    assert made.returncode == 0, made.stderr
    created = json.loads(made.stdout)
    first, second = (t["id"] for t in created["tasks"])
    assert [t["pipeline_id"] for t in created["tasks"]] == [created["pipeline_id"]] * 2
    waited = cli("wait", created["pipeline_id"], timeout=90)  # every step of it
    assert waited.returncode == 1
    assert waited.stdout.splitlines()[0].startswith(f"{first} failed: ")
    assert waited.stdout.splitlines()[1] == (f"{second} failed: pipeline stopped: step 1 "
                                             f"(task {first[5:13]}) failed")


def test_a_bad_step_names_it_and_nothing_is_stored(cli: Cli, tmp_path: Path) -> None:
    result = cli("pipeline", "fine", " ", "--cwd", str(tmp_path), "--timeout", "0",
                 "--no-serve")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "claudine: error: --timeout: timeout 0 seconds is out of range: it must be between "
        "1 and 86400 seconds",
        "claudine: error: STEP: step 2: the prompt is empty: say what the agent should do",
    ]
    assert cli.json("status") == []


def test_cancel_pipeline_from_a_step_cancels_every_unfinished_step(
        cli: Cli, tmp_path: Path) -> None:
    made = cli.json("pipeline", "[hang] first", "second", "third", "--cwd", str(tmp_path))
    first, second, third = (t["id"] for t in made["tasks"])
    pipeline_id = made["pipeline_id"]
    deadline_wait = cli("wait", first, "--timeout", "0.5")
    assert deadline_wait.returncode == 3  # it hangs: still running or about to
    result = cli("cancel", "--pipeline", third[5:13], "no longer needed")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"cancelled pipeline {pipeline_id}"
    assert lines[2:] == [f"  2. {second} cancelled", f"  3. {third} cancelled"]
    assert lines[1].startswith(f"  1. {first} ")
    assert cli("wait", first, timeout=60).returncode == 1
    steps = cli.json("status", pipeline_id)
    assert [s["status"] for s in steps] == ["cancelled"] * 3
    assert {s["cancel_reason"] for s in steps} == {"no longer needed"}
    again = cli("cancel", "--pipeline", pipeline_id)
    assert again.returncode == 1
    assert f"pipeline {pipeline_id} has ended" in again.stderr
    alone = cli("delegate", "alone", "--cwd", str(tmp_path), "--no-serve").stdout.strip()
    refused = cli("cancel", "--pipeline", alone)
    assert refused.returncode == 1 and "is not a step of a pipeline" in refused.stderr


def test_delegate_continue_from_runs_in_the_continued_conversation(
        cli: Cli, tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    first = cli("delegate", "first", "--cwd", str(work)).stdout.strip()
    # From another directory: the continuation runs where the conversation is.
    follow = cli.json("delegate", "second", "--continue-from", first[5:13], cwd=tmp_path)
    assert follow["continue_from"] == first and follow["depends_on"] == [first]
    assert follow["cwd"] == str(work) and follow["on_dependency_failure"] == "run"
    assert cli("wait", first, follow["id"], timeout=90).returncode == 0
    done = cli.json("status", follow["id"])
    continued = cli.json("status", first)
    assert done["session_id"] != continued["session_id"]
    runs = [json.loads(line) for line in (tmp_path / "agents.jsonl").read_text().splitlines()]
    argv = runs[-1]["argv"]
    assert argv[argv.index("--resume") + 1] == continued["session_id"]
    assert "--fork-session" in argv and runs[-1]["cwd"] == str(work)
    details = cli("status", follow["id"]).stdout
    assert f"continue_from:  {first}" in details


def test_delegate_continue_from_an_unknown_task_is_refused(cli: Cli, tmp_path: Path) -> None:
    result = cli("delegate", "go on", "--continue-from", "abcd1234", "--no-serve")
    assert result.returncode == 2
    assert result.stderr.strip() == ("claudine: error: --continue-from: no task with id "
                                     "'abcd1234': run 'claudine status' to list the task ids")
    assert cli.json("status") == []
