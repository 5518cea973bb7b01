"""``kill -9`` of the owner at random moments while tasks flow in from separate CLI processes.

What a user checks: every task delegated ends ``completed``, exactly once; none is lost
and none is left ``running``. The ledger the fake agents keep shows more than the store:
each task's agent process started once and completed once (the same process: an agent
whose owner died is adopted by the next owner, never started again), in attempt 1.
"""

from __future__ import annotations

import random

import pytest
from fault_harness import FaultHome, Feeder, flow_prompts, kill_owners, verdict

pytestmark = pytest.mark.slow


def test_owner_killed_at_random_moments_every_task_ends_exactly_once(
        home: FaultHome, rng: random.Random) -> None:
    feeder = Feeder(home, flow_prompts(30, rng), threads=2)
    kills = kill_owners(home, kills=10, rng=rng, max_life_s=1.5)
    ids = feeder.join()
    assert feeder.errors == []  # delegating never depends on an owner being alive
    home.serve()  # the owner that is left alive
    rows = home.wait_settled(ids, timeout=120)
    result = verdict(home, ids)
    assert kills == 10 and len(ids) == 30
    assert result.ok, result.summary()
    assert {row["status"] for row in rows.values()} == {"completed"}
    assert all(row["attempt"] == 1 for row in rows.values())
    assert all(home.attempt_dirs(i) == ["attempt-1"] for i in ids)
    listed = home.run("status", "--json", "--limit", "1000").stdout
    assert listed.count('"status": "completed"') == 30  # what `claudine status` shows
