"""The installed `claudine` command as a script would use it, including bad input and faults."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from engine_helpers import cli_env

from claudine_core.ownership import current_owner

CLAUDINE = str(Path(sys.executable).with_name("claudine"))

STATUS_FIELDS = {
    "id", "status", "priority", "prompt", "cwd", "created_at", "started_at", "ended_at",
    "exit_code", "error", "session_id", "num_turns", "cost_usd", "pid",
}


class Cli:
    def __init__(self, home: Path) -> None:
        self.home = home
        self.env = cli_env(home)
        self.serve: subprocess.Popen[bytes] | None = None

    def __call__(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run([CLAUDINE, *args], env=self.env, capture_output=True, text=True,
                              timeout=timeout)

    def json(self, *args: str) -> object:
        result = self(*args, "--json")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    def start_owner(self) -> None:
        self.serve = subprocess.Popen([CLAUDINE, "serve"], env=self.env,
                                      stderr=subprocess.DEVNULL)

    def stop_owner(self) -> None:
        if self.serve is not None:
            self.serve.terminate()
            self.serve.wait(timeout=20)


@pytest.fixture
def cli(tmp_path: Path) -> Iterator[Cli]:
    c = Cli(tmp_path / "home")
    yield c
    c.stop_owner()


def test_wrong_flag_is_a_usage_error(cli: Cli) -> None:
    result = cli("delegate", "x", "--bogus")
    assert result.returncode == 2
    assert "unrecognized arguments: --bogus" in result.stderr
    assert "claudine delegate --help" in result.stderr


def test_unknown_task_id_is_an_error_for_every_command(cli: Cli) -> None:
    for args in (["status", "task-000000000000"], ["logs", "abcd"], ["cancel", "abcd"],
                 ["retry", "abcd"], ["priority", "abcd", "P0"], ["wait", "abcd"]):
        result = cli(*args)
        assert result.returncode == 1, args
        assert "no task with id" in result.stderr, args
    for args in (["cancel", "abc"], ["retry", "TASK-0"], ["status", "0"]):
        result = cli(*args)
        assert result.returncode == 1, args
        assert "too short: give at least 4 hex digits" in result.stderr, args


def test_bad_priority_and_cwd_are_rejected_and_nothing_is_stored(
    cli: Cli, tmp_path: Path
) -> None:
    result = cli("delegate", "x", "--priority", "P9", "--no-serve")
    assert result.returncode == 2 and "P0 (urgent)" in result.stderr
    result = cli("delegate", "x", "--cwd", str(tmp_path / "nope"), "--no-serve")
    assert result.returncode == 2 and "--cwd: working directory" in result.stderr
    assert "does not exist" in result.stderr
    result = cli("delegate", "", "--no-serve")
    assert result.returncode == 2 and "prompt is empty" in result.stderr
    assert cli.json("status") == []


def test_bad_config_value_names_the_variable(cli: Cli) -> None:
    cli.env["CPU_THRESHOLD"] = "150"
    result = cli("status")
    assert result.returncode == 2
    assert "CPU_THRESHOLD='150'" in result.stderr and "1 to 100" in result.stderr


def test_delegate_status_logs_wait_round_trip(cli: Cli, tmp_path: Path) -> None:
    cli.start_owner()
    created = cli.json("delegate", "[tool-error:Bash] [text:all good]", "--cwd", str(tmp_path),
                       "--no-serve")
    assert isinstance(created, dict) and created["status"] == "queued"
    task_id = created["id"]
    result = cli("wait", task_id, "--timeout", "60")
    assert result.returncode == 0, result.stdout + result.stderr
    status = cli.json("status", task_id)
    assert isinstance(status, dict)
    assert STATUS_FIELDS <= status.keys()
    assert status["status"] == "completed" and status["exit_code"] == 0
    table = cli("status").stdout
    assert task_id.removeprefix("task-")[:8] in table and "completed" in table
    logs = cli("logs", task_id).stdout
    assert "▸ Bash" in logs and "✗ Error: fake Bash failed" in logs
    assert "all good" in logs and "■ completed" in logs
    raw = cli("logs", task_id, "--raw").stdout.splitlines()
    assert all(json.loads(line)["type"] for line in raw)
    assert len(cli("logs", task_id, "--tail", "2").stdout.splitlines()) == 2


def test_logs_follow_streams_until_the_end(cli: Cli, tmp_path: Path) -> None:
    cli.start_owner()
    task_id = cli("delegate", "[text:first] [sleep:1] [text:second]", "--no-serve").stdout.strip()
    follow = cli("logs", task_id, "--follow")
    assert follow.returncode == 0
    out = follow.stdout
    assert out.index("first") < out.index("second") < out.index("— completed")


def test_logs_show_every_attempt_of_a_retried_task(cli: Cli, tmp_path: Path) -> None:
    cli.env.update(CLAUDINE_MAX_RETRIES="1", CLAUDINE_RETRY_BASE_DELAY="0")
    cli.start_owner()
    marker = tmp_path / "failed-once"
    task_id = cli("delegate", f"[text:trying] [api-error-once:529:{marker}]",
                  "--no-serve").stdout.strip()
    assert cli("wait", task_id, "--timeout", "60").returncode == 0
    assert cli.json("status", task_id)["attempt"] == 2  # type: ignore[index]
    logs = cli("logs", task_id).stdout
    first, second = logs.index("── attempt 1 ──"), logs.index("── attempt 2 ──")
    assert first < logs.index("trying") < logs.index("529") < second
    assert logs.index("■ completed") > second
    only_first = cli("logs", task_id, "--attempt", "1").stdout
    assert "trying" in only_first and "■ completed" not in only_first
    assert "── attempt" not in only_first
    raw = cli("logs", task_id, "--raw").stdout.splitlines()
    assert [json.loads(line)["type"] for line in raw].count("result") == 2
    missing = cli("logs", task_id, "--attempt", "3")
    assert missing.returncode == 1 and "no attempt 3" in missing.stderr


def test_wait_exit_status_reflects_outcomes(cli: Cli) -> None:
    cli.start_owner()
    ok = cli("delegate", "fine", "--no-serve").stdout.strip()
    bad = cli("delegate", "[api-error:400]", "--no-serve").stdout.strip()
    assert cli("wait", ok).returncode == 0
    result = cli("wait", ok, bad)
    assert result.returncode == 1 and "API error 400" in result.stdout
    slow = cli("delegate", "[sleep:30]", "--no-serve").stdout.strip()
    result = cli("wait", slow, "--timeout", "0.5")
    assert result.returncode == 3 and "timed out" in result.stderr
    assert cli("cancel", slow, "enough").returncode == 0


def test_priority_and_cancel_of_queued_task_without_owner(cli: Cli) -> None:
    task_id = cli("delegate", "[sleep:30] later", "--no-serve").stdout.strip()
    # Queued with nobody to run it; the priority command then makes sure an owner exists.
    assert cli.json("priority", task_id, "P0")["priority"] == "P0"  # type: ignore[index]
    requested = cli.json("cancel", task_id, "not needed")
    assert isinstance(requested, dict) and requested["cancel_requested"] is True
    assert cli("wait", task_id, "--timeout", "30").returncode == 1
    cancelled = cli.json("status", task_id)
    assert isinstance(cancelled, dict)
    assert cancelled["status"] == "cancelled" and cancelled["error"] == "not needed"
    again = cli("cancel", task_id)
    assert again.returncode == 1 and "already cancelled" in again.stderr
    retried = cli.json("retry", task_id)
    assert isinstance(retried, dict) and retried["parent_id"] == task_id
    cli("cancel", retried["id"])  # the retry's 30 s agent is not needed either
    assert cli("wait", retried["id"], "--timeout", "30").returncode == 1


def test_missing_claude_binary_is_refused_with_advice(cli: Cli) -> None:
    cli.env["CLAUDINE_CLAUDE_BIN"] = "claude-is-not-installed"
    result = cli("delegate", "hello")
    assert result.returncode == 1
    assert "not found on PATH" in result.stderr and "npm install" in result.stderr
    assert cli.json("status") == []  # nothing queued, no background owner started for it
    assert current_owner(cli.home / "engine.lock") is None


def test_logs_end_with_how_a_cancelled_or_failed_task_ended(cli: Cli, tmp_path: Path) -> None:
    """The agent's own last line may be a success written as it was stopped: the log of a
    cancelled or failed task ends with the task's verdict, as the console's pane does."""
    cli.start_owner()
    task_id = cli("delegate", "[sleep:30] long", "--cwd", str(tmp_path)).stdout.strip()
    deadline = time.monotonic() + 30
    while cli.json("status", task_id)["status"] != "running":  # type: ignore[index]
        assert time.monotonic() < deadline
        time.sleep(0.1)
    cli("cancel", task_id, "not needed")
    assert cli("wait", task_id, "--timeout", "30").returncode == 1
    shown = cli("logs", task_id)
    assert shown.stdout.rstrip().splitlines()[-1] == "⊘ cancelled: not needed"
    failed = cli("delegate", "[fail] broken", "--cwd", str(tmp_path)).stdout.strip()
    assert cli("wait", failed, "--timeout", "30").returncode == 1
    error = cli.json("status", failed)["error"]  # type: ignore[index]
    assert cli("logs", failed).stdout.rstrip().splitlines()[-1] == f"✘ failed: {error}"
    cli.stop_owner()


def test_a_missing_absolute_agent_path_is_named_as_a_path(cli: Cli) -> None:
    """A path that does not exist is not a PATH look-up: say the file is missing."""
    cli.env["CLAUDINE_CLAUDE_BIN"] = "/nope/claude"
    result = cli("delegate", "hello", "--no-serve")
    assert result.returncode == 1
    assert "/nope/claude does not exist" in result.stderr and "PATH" not in result.stderr


@pytest.fixture
def small_mount(tmp_path: Path) -> Iterator[Path]:
    """A tiny tmpfs: lets a test fill the disk or make the home read-only for real."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs as root)")
    mount = tmp_path / "mnt"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], check=True)
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_read_only_home_gives_clear_error_and_keeps_tasks(small_mount: Path) -> None:
    cli = Cli(small_mount / "home")
    first = cli("delegate", "stored before", "--no-serve").stdout.strip()
    subprocess.run(["mount", "-o", "remount,ro", str(small_mount)], check=True)
    result = cli("delegate", "after", "--no-serve")
    assert result.returncode == 1
    assert "read-only" in result.stderr and "CLAUDINE_HOME" in result.stderr
    subprocess.run(["mount", "-o", "remount,rw", str(small_mount)], check=True)
    tasks = cli.json("status")
    assert isinstance(tasks, list) and [t["id"] for t in tasks] == [first]


def test_full_disk_gives_clear_error_and_keeps_tasks(small_mount: Path) -> None:
    cli = Cli(small_mount / "home")
    first = cli("delegate", "stored before", "--no-serve").stdout.strip()
    filler = small_mount / "filler"
    # Unbuffered: a buffered file would raise the same ENOSPC again when it is closed.
    with open(filler, "wb", buffering=0) as out:
        try:
            while True:
                out.write(b"\0" * 65536)
        except OSError:
            pass
    result = cli("delegate", "x" * 50_000, "--no-serve")
    assert result.returncode == 1
    assert "full" in result.stderr
    filler.unlink()
    tasks = cli.json("status")
    assert isinstance(tasks, list) and [t["id"] for t in tasks] == [first]
