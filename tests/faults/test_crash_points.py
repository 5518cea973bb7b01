"""An owner that dies at each crash point of a task's life, then a fresh owner.

``CLAUDINE_CRASH_AT`` makes the owner SIGKILL itself exactly there (claudine_core/faults.py),
so each window between two durable steps is hit every time, not by luck. What a user
checks: the task ends once, ``completed``, with its agent's answer; nothing is left
running; its agent ran once (ledger), in attempt 1.
"""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest
from fault_harness import FaultHome, verdict
from git_helpers import git, make_repo

pytestmark = pytest.mark.slow


def crash_at(home: FaultHome, point: str, prompt: str, *extra: str) -> str:
    """Delegate to an owner armed at ``point``; return the task once that owner died there."""
    crashing = home.serve(CLAUDINE_CRASH_AT=point)
    home.wait_owner()
    task_id = home.delegate(prompt, *extra)
    assert crashing.wait(timeout=60) == -signal.SIGKILL, home.serve_log()
    assert home.owner_pid() is None  # the kernel released the lock: no stale owner
    return task_id


def wait_ledger_end(home: FaultHome, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not any(line["event"] == "end" for line in home.ledger_lines()):
        assert time.monotonic() < deadline, "the agent never finished"
        time.sleep(0.05)


# Where the store stands when the owner dies there: (status, pid recorded?).
STATE_AT = {
    "claimed": ("running", False),
    "spawned": ("running", False),
    "pid_recorded": ("running", True),
    "finished": ("completed", True),
}


@pytest.mark.parametrize(("point", "agent"), [
    ("claimed", "never started"),
    ("spawned", "alive"),  # the next owner adopts a live agent it has no pid for
    ("spawned", "done"),  # ... or one that ended while no owner watched
    ("pid_recorded", "alive"),
    ("pid_recorded", "done"),
    ("finished", "done"),
])
def test_owner_killed_at_crash_point_task_ends_once(
        home: FaultHome, point: str, agent: str) -> None:
    sleep = "[sleep:3]" if agent == "alive" else "[sleep:0.2]"
    task_id = crash_at(home, point, f"crash at {point} {sleep}")
    status, pid_recorded = STATE_AT[point]
    row = home.rows()[task_id]
    assert row["status"] == status and (row["pid"] is not None) == pid_recorded, row
    if agent == "done":
        wait_ledger_end(home)  # it finishes while nobody owns the home
    elif agent == "alive":
        assert not any(line["event"] == "end" for line in home.ledger_lines())
    home.serve()
    done = json.loads(home.run("wait", task_id, "--timeout", "60", "--json").stdout)[0]
    assert done["status"] == "completed" and done["attempt"] == 1, done
    assert done["result"].startswith("FAKE_DONE: crash at"), done
    result = verdict(home, [task_id])
    assert result.ok, result.summary()
    assert home.attempt_dirs(task_id) == ["attempt-1"]


def test_owner_killed_in_the_middle_of_a_burst_every_task_ends_once(home: FaultHome) -> None:
    """Several tasks in flight: the owner dies at its third spawn, with two agents started
    and recorded, one started and unrecorded, and the rest still queued."""
    crashing = home.serve(CLAUDINE_CRASH_AT="spawned", CLAUDINE_CRASH_AFTER="2")
    home.wait_owner()
    ids = [home.delegate(f"burst {n} [sleep:1]") for n in range(6)]
    assert crashing.wait(timeout=60) == -signal.SIGKILL
    home.serve()
    rows = home.wait_settled(ids, timeout=60)
    assert {row["status"] for row in rows.values()} == {"completed"}, rows
    result = verdict(home, ids)
    assert result.ok, result.summary()


def test_owner_killed_while_merging_a_worktree_task_merges_once(
        home: FaultHome, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    task_id = crash_at(home, "merging", "[write:made.txt=1] merge me", "--worktree",
                       "--merge", "auto", "--cwd", str(repo))
    row = home.rows()[task_id]
    assert row["status"] == "completed" and json.loads(row["merge"])["status"] == "pending"
    home.serve()
    deadline = time.monotonic() + 60
    while json.loads(home.rows()[task_id]["merge"] or "{}").get("status") in (None, "pending"):
        assert time.monotonic() < deadline, "the interrupted merge step never ran again"
        time.sleep(0.1)
    merge = json.loads(home.rows()[task_id]["merge"])
    assert merge["status"] == "merged", merge
    assert git(repo, "show", "main:made.txt") == "1"
    merges = git(repo, "log", "main", "--format=%H", f"--grep=Task: {task_id}")
    assert len(merges.splitlines()) == 1  # merged once
    assert git(repo, "worktree", "list").count("\n") == 0  # its worktree is gone
    result = verdict(home, [task_id])
    assert result.ok, result.summary()
