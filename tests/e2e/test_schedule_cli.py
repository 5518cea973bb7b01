"""``claudine schedule`` as a user runs it: real processes on a real home.

add/create, list, show/get, pause, resume and cancel, with and without --json; every wrong
flag named at once (exit 2) with nothing stored; and the background owner ``add`` starts
stays while the schedule is active (its idle exit is 1 s here), fires it, runs the task,
and only then leaves.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil
from engine_helpers import cli_env, poll

from claudine_core.ownership import current_owner

CLAUDINE = str(Path(sys.executable).with_name("claudine"))


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CLAUDINE, *args], env=env, capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL)


def ok_json(env: dict[str, str], *args: str) -> Any:
    result = run(env, *args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_a_schedule_through_its_life(tmp_path: Path) -> None:
    env = cli_env(tmp_path / "home")
    made = ok_json(env, "schedule", "add", "nightly tidy-up", "--cron", "30 2 * * *",
                   "--timezone", "Europe/Paris", "--missed-run-policy", "catchup",
                   "--max-runs", "3", "--cwd", str(tmp_path), "--priority", "P1",
                   "--model", "sonnet", "--timeout", "600", "--no-serve")
    assert made["id"].startswith("sched-") and made["status"] == "active"
    assert (made["cron"], made["timezone"], made["missed_run_policy"], made["max_runs"]) == (
        "30 2 * * *", "Europe/Paris", "catchup", 3)
    assert made["template"]["priority"] == "P1" and made["template"]["model"] == "sonnet"
    assert made["template"]["timeout_s"] == 600 and made["template"]["cwd"] == str(tmp_path)
    short = made["id"][6:14]

    # create and get are the original claudine's words for add and show
    chained = ok_json(env, "schedule", "create", "report", "--at",
                      (datetime.now(UTC) + timedelta(days=1)).isoformat(), "--after", short,
                      "--cwd", str(tmp_path), "--no-serve")
    assert chained["kind"] == "one_time" and chained["after_schedule"] == made["id"]
    shown = ok_json(env, "schedule", "get", short)
    assert shown["id"] == made["id"] and shown["history"] == []

    listed = ok_json(env, "schedule", "list")
    assert [s["id"] for s in listed] == [chained["id"], made["id"]]
    table = run(env, "schedule", "list")
    assert table.returncode == 0 and short in table.stdout and "Europe/Paris" in table.stdout

    assert ok_json(env, "schedule", "pause", short)["status"] == "paused"
    assert [s["id"] for s in ok_json(env, "schedule", "list", "--status", "paused")] == [
        made["id"]]
    again = run(env, "schedule", "pause", short)
    assert again.returncode == 1 and "only an active schedule" in again.stderr
    assert ok_json(env, "schedule", "resume", short, "--no-serve")["status"] == "active"
    cancelled = ok_json(env, "schedule", "cancel", short, "not needed")
    assert (cancelled["status"], cancelled["cancel_reason"]) == ("cancelled", "not needed")

    details = run(env, "schedule", "show", made["id"])
    assert details.returncode == 0
    assert "cancelled (not needed)" in details.stdout and "30 2 * * *" in details.stdout


def test_every_wrong_flag_is_named_and_nothing_is_stored(tmp_path: Path) -> None:
    env = cli_env(tmp_path / "home")
    result = run(env, "schedule", "add", "p", "--cron", "61 * * *", "--timezone", "Nowhere",
                 "--missed-run-policy", "later", "--max-runs", "0", "--timeout", "0",
                 "--cwd", str(tmp_path / "missing"), "--no-serve")
    assert result.returncode == 2 and result.stdout == ""
    for flag in ("--cron", "--timezone", "--missed-run-policy", "--max-runs", "--timeout",
                 "--cwd"):
        assert f"claudine: error: {flag}: " in result.stderr, (flag, result.stderr)
    as_json = run(env, "schedule", "add", "p", "--at", "2001-01-01T00:00", "--json",
                  "--no-serve")
    assert as_json.returncode == 2
    assert "not in the future" in json.loads(as_json.stdout)["problems"]["--at"]
    both = run(env, "schedule", "add", "p", "--at", "2001-01-01", "--cron", "* * * * *")
    assert both.returncode == 2 and "not allowed with" in both.stderr  # argparse's words
    assert ok_json(env, "schedule", "list") == []
    unknown = run(env, "schedule", "show", "sched-0123456789ab")
    assert unknown.returncode == 1 and "no schedule with id" in unknown.stderr


def test_the_background_owner_stays_for_an_active_schedule_and_fires_it(
        tmp_path: Path) -> None:
    home = tmp_path / "home"
    ledger = tmp_path / "ledger"
    # The background owner would leave after 1 s with nothing queued or running.
    env = cli_env(home, CLAUDINE_IDLE_EXIT="1", FAKE_CLAUDE_LEDGER=str(ledger))
    at = (datetime.now(UTC) + timedelta(seconds=5)).isoformat()
    made = ok_json(env, "schedule", "add", "scheduled work", "--at", at, "--cwd",
                   str(tmp_path))
    owner = poll(lambda: current_owner(home / "engine.lock"), 20, "a background owner")
    pid = int(owner["pid"])
    assert owner["kind"] == "serve"

    owners_seen: set[Any] = set()

    def fired() -> Any:
        owners_seen.add((current_owner(home / "engine.lock") or {}).get("pid"))
        shown = ok_json(env, "schedule", "show", made["id"])
        return shown if shown["history"] else None

    # Nothing but that owner can fire it (show starts none): it stayed past its idle exit,
    # all the way to the slot 5 s after the add.
    shown = poll(fired, 60, "the schedule to fire")
    assert owners_seen == {pid}
    [execution] = shown["history"]
    assert execution["outcome"] == "created" and shown["status"] == "completed"
    waited = run(env, "wait", execution["task_id"], "--timeout", "60")
    assert waited.returncode == 0, waited.stderr
    task = ok_json(env, "status", execution["task_id"])
    assert task["schedule_id"] == made["id"] and task["cwd"] == str(tmp_path)
    started = [json.loads(line) for line in ledger.read_text().splitlines()]
    assert [r["marker"] for r in started if r["event"] == "start"] == ["scheduled work"]
    # Nothing left to run or fire: it leaves as an idle owner does.
    poll(lambda: not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie",
         30, "the background owner to leave")
