"""A usage-limit pause across processes: the owner is `kill -9`ed while a task is parked,
and the next owner (another process) keeps the pause, starts nothing before the reset, and
then runs the parked task's session on and the queue after it, each agent run once."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import psutil
import pytest
from engine_helpers import cli_env

from claudine_core.ownership import current_owner

pytestmark = pytest.mark.slow
CLAUDINE = str(Path(sys.executable).with_name("claudine"))


def run(env: dict[str, str], *args: str) -> str:
    result = subprocess.run([CLAUDINE, *args], env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def status(env: dict[str, str], task_id: str) -> dict:
    return dict(json.loads(run(env, "status", task_id, "--json")))


def serve(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([CLAUDINE, "serve"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)


def wait_owner(home: Path, not_pid: int | None = None) -> int:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        owner = current_owner(home / "engine.lock")
        if owner and owner.get("pid") and owner["pid"] != not_pid:
            return int(owner["pid"])
        time.sleep(0.05)
    raise AssertionError("no owner took the home")


def wait_state(env: dict[str, str], task_id: str, wanted: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        task = status(env, task_id)
        if task["status"] == wanted:
            return task
        time.sleep(0.1)
    raise AssertionError(f"{task_id} never became {wanted}: {status(env, task_id)}")


def epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def test_the_pause_survives_kill_9_of_the_owner_and_each_run_happens_once(
        tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    ledger = tmp_path / "ledger.jsonl"
    env = cli_env(home, FAKE_CLAUDE_LEDGER=str(ledger),
                  FAKE_CLAUDE_LIMIT_FILE=str(tmp_path / "limit.json"),
                  CLAUDINE_MAX_RETRIES="0", CLAUDINE_MAX_AGENTS="1")
    first_owner = serve(env)
    owners = [first_owner]
    try:
        pid = wait_owner(home)
        limited = json.loads(run(env, "delegate", "[usage-limit:8] first", "--no-serve",
                                 "--json"))["id"]
        parked = wait_state(env, limited, "parked")
        waiting = json.loads(run(env, "delegate", "second", "--no-serve", "--json"))["id"]
        os.kill(pid, signal.SIGKILL)
        first_owner.wait(timeout=10)
        owners.append(serve(env))
        wait_owner(home, not_pid=pid)
        reset = epoch(parked["parked_until"])
        # The next owner reads the pause from the store: the queue stays put until the reset.
        with sqlite3.connect(home / "claudine.db") as db:
            (fact,) = db.execute("SELECT value FROM meta WHERE key = 'usage_pause'").fetchone()
        assert json.loads(fact)["until"] == reset
        while True:
            states = (status(env, waiting)["status"], status(env, limited)["status"])
            if time.time() >= reset:
                break  # these answers may come from after the reset (a slow machine)
            assert states == ("queued", "parked")
            time.sleep(0.2)
        done = wait_state(env, limited, "completed")
        second = wait_state(env, waiting, "completed")
    finally:
        for owner in owners:
            if owner.poll() is None:
                owner.send_signal(signal.SIGTERM)
                owner.wait(timeout=15)
        for proc in psutil.process_iter(["cmdline"]):
            if str(home) in " ".join(proc.info.get("cmdline") or []):
                proc.kill()
    assert (done["attempt"], done["parks"]) == (2, 1)
    assert epoch(done["started_at"]) >= reset
    assert epoch(second["started_at"]) >= epoch(done["started_at"])
    starts = [json.loads(line) for line in ledger.read_text().splitlines()]
    starts = [run for run in starts if run["event"] == "start"]
    assert [(Path(r["run"]).parent.name, r["resumed"]) for r in starts] == [
        (limited, False), (limited, True), (waiting, False)]
