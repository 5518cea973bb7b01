"""A schedule never fires twice for one slot, and never loses one, whatever owners do.

Separate processes throughout: two processes firing the same store at once, both
ignoring the engine lock (what a bug, or a lock on a network file system that does not
work, would allow); an owner SIGKILLed after writing a firing's execution row and task but
before the commit (crash point ``schedule_firing``); and one SIGKILLed right after the
commit (``schedule_fired``). The fake agent's ledger counts the agents that really ran.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from engine_helpers import make_config
from fault_harness import FaultHome

from claudine_core.service import TaskService

# Fires every due schedule of a home at a given moment, many times over, as an owner's
# ticks would, but without taking the engine lock; it starts when the go file appears.
FIRER = """
import sys, time
from pathlib import Path
from engine_helpers import make_config
from claudine_core.service import TaskService

home, go, now, rounds = Path(sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
service = TaskService(make_config(home))
Path(sys.argv[5]).touch()  # ready: imported, store open
while not go.exists():
    time.sleep(0.001)
created = 0
for n in range(rounds):
    created += service.schedules.fire_due(now + n)
print(created)
"""

T0 = datetime(2026, 3, 2, 8, 0, 30, tzinfo=UTC).timestamp()


def store_rows(home: Path, sql: str) -> list[tuple[Any, ...]]:
    con = sqlite3.connect(f"file:{home / 'claudine.db'}?mode=ro", uri=True, timeout=30)
    try:
        return [tuple(row) for row in con.execute(sql)]
    finally:
        con.close()


def make_schedules(home: Path, work: Path) -> dict[str, int]:
    """Schedules created at T0 (a clock the test sets); the slots each has due by T0 +
    2 h 10 min: the number of tasks it must create, exactly."""
    service = TaskService(make_config(home), clock=lambda: T0)
    try:
        expected: dict[str, int] = {}
        for n in range(10):  # one-time schedules, all due (late: caught up)
            made = service.schedules.create({"prompt": f"once {n}", "cwd": str(work)},
                                            run_at=T0 + 60 + n, missed_run_policy="catchup")
            expected[made.id] = 1
        for n in range(5):  # every 10 minutes, missed slots caught up: 13 each
            made = service.schedules.create({"prompt": f"cron {n}", "cwd": str(work)},
                                            cron="*/10 * * * *", missed_run_policy="catchup")
            expected[made.id] = 13
        return expected
    finally:
        service.close()


def test_two_processes_firing_one_store_at_once_create_one_task_per_slot(
        tmp_path: Path) -> None:
    home = tmp_path / "home"
    work = tmp_path / "work"
    work.mkdir()
    expected = make_schedules(home, work)
    go = tmp_path / "go"
    tests_dir = str(Path(__file__).resolve().parents[1])
    now = T0 + 2 * 3600 + 600  # 10:10:30: slots 08:10 .. 10:10 are due
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        filter(None, [tests_dir, os.environ.get("PYTHONPATH")]))}
    ready = [tmp_path / f"ready-{n}" for n in range(2)]
    firers = [subprocess.Popen([sys.executable, "-c", FIRER, str(home), str(go), str(now),
                                "40", str(flag)], stdout=subprocess.PIPE, text=True, env=env)
              for flag in ready]
    deadline = time.monotonic() + 60
    while not all(flag.exists() for flag in ready):  # both imported and the store open
        assert time.monotonic() < deadline and all(p.poll() is None for p in firers)
        time.sleep(0.01)
    go.touch()  # then they start at once
    created = [int(process.communicate(timeout=120)[0]) for process in firers]
    assert all(process.returncode == 0 for process in firers)

    tasks = Counter(row[0] for row in store_rows(
        home, "SELECT schedule_id FROM task WHERE schedule_id IS NOT NULL"))
    assert dict(tasks) == expected  # none twice, none lost
    assert sum(created) == sum(expected.values())  # each task counted by the one who made it
    executions = store_rows(home, "SELECT schedule_id, scheduled_for, task_id, outcome "
                                  "FROM schedule_execution")
    assert len({(s, slot) for s, slot, _, _ in executions}) == len(executions)
    assert {task for _, _, task, _ in executions} == {
        row[0] for row in store_rows(home, "SELECT id FROM task")}
    assert {outcome for *_, outcome in executions} == {"created"}


def one_time_soon(home: FaultHome, seconds: float) -> str:
    at = (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()
    out = home.run("schedule", "add", "scheduled work", "--at", at, "--cwd",
                   str(home.root), "--no-serve", "--json").stdout
    return str(json.loads(out)["id"])


def firing_record(home: FaultHome, schedule_id: str) -> tuple[list[Any], list[Any], str]:
    executions = store_rows(home.path, "SELECT scheduled_for, task_id, outcome FROM "
                            f"schedule_execution WHERE schedule_id = '{schedule_id}'")
    tasks = store_rows(home.path, f"SELECT id, status FROM task WHERE schedule_id = "
                       f"'{schedule_id}'")
    [(status,)] = store_rows(home.path, f"SELECT status FROM schedule WHERE id = "
                             f"'{schedule_id}'")
    return executions, tasks, status


def run_owner_until_idle(home: FaultHome) -> None:
    """A normal owner that exits once nothing is left to run or fire."""
    result = home.run("serve", "--idle-exit", "0.5", timeout=120)
    assert result.returncode == 0, result.stderr


def test_an_owner_killed_before_a_firing_commits_leaves_it_to_the_next_owner(
        home: FaultHome) -> None:
    schedule_id = one_time_soon(home, 1.5)
    crashing = home.serve(CLAUDINE_CRASH_AT="schedule_firing")
    assert crashing.wait(timeout=60) == -9  # died with the rows written, not committed
    executions, tasks, status = firing_record(home, schedule_id)
    assert (executions, tasks, status) == ([], [], "active")  # nothing of it committed

    run_owner_until_idle(home)
    executions, tasks, status = firing_record(home, schedule_id)
    assert [outcome for *_, outcome in executions] == ["created"]
    assert [state for _, state in tasks] == ["completed"] and status == "completed"
    started = [r for r in home.ledger_lines() if r["event"] == "start"]
    assert [r["marker"] for r in started] == ["scheduled work"]  # its agent ran once


def test_an_owner_killed_right_after_a_firing_commits_is_not_followed_by_a_second(
        home: FaultHome) -> None:
    schedule_id = one_time_soon(home, 1.5)
    crashing = home.serve(CLAUDINE_CRASH_AT="schedule_fired")
    assert crashing.wait(timeout=60) == -9
    executions, tasks, status = firing_record(home, schedule_id)
    assert len(executions) == 1 and len(tasks) == 1 and status == "completed"

    run_owner_until_idle(home)
    executions, tasks, _ = firing_record(home, schedule_id)
    assert len(executions) == 1 and [state for _, state in tasks] == ["completed"]
    started = [r for r in home.ledger_lines() if r["event"] == "start"]
    assert len(started) == 1
