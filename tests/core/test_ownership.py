"""What an owner publishes for clients: its settings in the lock record, and its admission
decision in a small file that only counts while that owner holds the lock."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from claudine_core.ownership import (
    ADMISSION_FILE,
    OwnerLock,
    current_owner,
    published_admission,
)


@pytest.fixture
def lock(tmp_path: Path) -> Iterator[OwnerLock]:
    owner = OwnerLock(tmp_path / "engine.lock", kind="test", settings={"max_agents": 2})
    yield owner
    owner.release()


def test_the_lock_record_carries_the_owner_settings(lock: OwnerLock) -> None:
    assert current_owner(lock.path) is None
    assert lock.try_acquire()
    record = current_owner(lock.path)
    assert record is not None
    assert record["pid"] == os.getpid() and record["kind"] == "test"
    assert record["settings"] == {"max_agents": 2}
    assert len(lock.path.read_bytes()) < 512  # small: one pread reads it whole


def test_a_lock_without_settings_writes_the_old_record(tmp_path: Path) -> None:
    bare = OwnerLock(tmp_path / "engine.lock", kind="test")
    assert bare.try_acquire()
    try:
        assert set(current_owner(bare.path) or {}) == {"pid", "kind", "since"}
    finally:
        bare.release()


def test_the_decision_is_published_only_while_held_and_only_when_it_changes(
    lock: OwnerLock,
) -> None:
    path = lock.path.with_name(ADMISSION_FILE)
    lock.publish_admission("waiting: CPU 91% > 80%")
    assert not path.exists()  # not the owner: nothing to say
    assert lock.try_acquire()
    lock.publish_admission("waiting: CPU 91% > 80%")
    published = published_admission(lock.path)
    assert published is not None and published["reason"] == "waiting: CPU 91% > 80%"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600

    path.unlink()
    lock.publish_admission("waiting: CPU 91% > 80%")
    assert not path.exists()  # unchanged reason: no write
    lock.publish_admission(None)
    assert published_admission(lock.path) == {**json.loads(path.read_text()), "reason": None}
    assert [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")] == []

    lock.release()
    assert not path.exists()
    assert published_admission(lock.path) is None


def test_a_file_left_by_an_earlier_owner_is_ignored(lock: OwnerLock) -> None:
    assert lock.try_acquire()
    path = lock.path.with_name(ADMISSION_FILE)
    path.write_text(json.dumps({"pid": os.getpid(), "since": 1.0, "reason": "waiting: old"}))
    assert published_admission(lock.path) is None  # same pid, another owner's start time
    lock.publish_admission("waiting: new")
    assert (published_admission(lock.path) or {})["reason"] == "waiting: new"


OWNER_SCRIPT = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from claudine_core.ownership import OwnerLock
    lock = OwnerLock(Path(sys.argv[1]), kind="test", settings={"max_agents": 1})
    assert lock.try_acquire()
    lock.publish_admission("waiting: 1/1 agents running (max)")
    print("ready", flush=True)
    time.sleep(600)
    """
)


def test_another_process_reads_a_live_owner_and_not_a_dead_one(tmp_path: Path) -> None:
    lock_path = tmp_path / "engine.lock"
    owner = subprocess.Popen([sys.executable, "-c", OWNER_SCRIPT, str(lock_path)],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert owner.stdout is not None and owner.stdout.readline().strip() == "ready"
        record = current_owner(lock_path)
        assert record is not None and record["pid"] == owner.pid
        assert record["settings"] == {"max_agents": 1}
        published = published_admission(lock_path)
        assert published is not None and published["pid"] == owner.pid
        assert published["reason"] == "waiting: 1/1 agents running (max)"
    finally:
        owner.send_signal(signal.SIGKILL)
        owner.wait()
    # kill -9: the file stays behind, but no live owner stands behind it.
    assert lock_path.with_name(ADMISSION_FILE).exists()
    assert current_owner(lock_path) is None
    assert published_admission(lock_path) is None


PROBER_SCRIPT = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from claudine_core.ownership import current_owner
    path = Path(sys.argv[1])
    print("ready", flush=True)
    while True:
        current_owner(path)
    """
)


def test_a_would_be_owner_is_not_turned_away_by_clients_probing(tmp_path: Path) -> None:
    """`status`, a console starting and every delegate ask who owns the home with a brief
    shared lock. Nobody owns it, so each attempt to take it must succeed all the same:
    a would-be owner that gave up would leave the queue with no owner at all."""
    lock_path = tmp_path / "engine.lock"
    lock_path.touch()
    probers = [subprocess.Popen([sys.executable, "-c", PROBER_SCRIPT, str(lock_path)],
                                stdout=subprocess.PIPE, text=True) for _ in range(2)]
    try:
        for prober in probers:
            assert prober.stdout is not None and prober.stdout.readline().strip() == "ready"
        turned_away = 0
        for _ in range(300):
            owner = OwnerLock(lock_path, kind="test")
            if owner.try_acquire():
                owner.release()
            else:
                turned_away += 1
        assert turned_away == 0
    finally:
        for prober in probers:
            prober.kill()
            prober.wait()


def test_a_real_owner_still_turns_a_second_one_away(lock: OwnerLock) -> None:
    assert lock.try_acquire()
    second = OwnerLock(lock.path, kind="test")
    assert not second.try_acquire()
    assert current_owner(lock.path) is not None
