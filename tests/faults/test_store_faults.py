"""The store's disk misbehaving under a running owner: locked, full, read-only.

Real processes throughout: ``claudine`` CLI clients, one ``claudine serve`` owner, fake
agents. What a user checks: a command that cannot work says why in one sentence (no
traceback) and exits non-zero; the owner's log says what is wrong without flooding; once
the disk is usable again every acknowledged task ends, none is lost, none hangs.

Disk-full and read-only homes need ``mount`` (root in CI); the tests skip with the reason
where it is not permitted, and always unmount.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from engine_helpers import poll
from fault_harness import FaultHome, verdict
from system_helpers import small_tmpfs

pytestmark = pytest.mark.slow

BUSY_TIMEOUT_S = 10  # claudine_core/store/db.py: busy_timeout
CLI = str(Path(sys.executable).with_name("claudine"))


def assert_clear_failure(result: subprocess.CompletedProcess[str], *words: str) -> None:
    """A failed command as a person should see it: non-zero, one clear sentence."""
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    assert result.stderr.startswith("claudine: error: "), result.stderr
    assert any(w in result.stderr for w in words), result.stderr


def store_errors(log: str) -> list[str]:
    return [line for line in log.splitlines() if "store error" in line]


def ledger_started(home: FaultHome, marker: str) -> bool:
    return any(line["event"] == "start" and line["marker"].startswith(marker)
               for line in home.ledger_lines())


# -- a lock held longer than the busy timeout ----------------------------------------------------


@contextlib.contextmanager
def exclusive_lock(db: Path) -> Iterator[None]:
    """Another process holding ``BEGIN EXCLUSIVE`` on the store until the block ends."""
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sqlite3, sys\n"
         "con = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)\n"
         "con.execute('BEGIN EXCLUSIVE')\n"
         "print('locked', flush=True)\n"
         "sys.stdin.read()\n"
         "con.execute('COMMIT')\n", str(db)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        yield
    finally:
        if holder.stdin is not None:
            holder.stdin.close()
        try:
            holder.wait(timeout=10)
        except subprocess.TimeoutExpired:
            holder.kill()
            holder.wait()


def test_store_locked_longer_than_busy_timeout_commands_fail_clearly_owner_recovers(
        home: FaultHome) -> None:
    home.serve()
    home.wait_owner()
    running = home.delegate("running through the lock [sleep:2]")
    poll(lambda: ledger_started(home, "running through the lock"), 30, "the agent")
    started = time.monotonic()
    with exclusive_lock(home.path / "claudine.db"):
        # Two writes from two clients at once: each waits out the busy timeout, then says so.
        clients = [subprocess.Popen([CLI, *args], env=home.env, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True)
                   for args in (["delegate", "while locked", "--no-serve", "--json"],
                                ["cancel", running])]
        results = []
        for client in clients:
            out, err = client.communicate(timeout=60)
            results.append(subprocess.CompletedProcess(client.args, client.returncode, out, err))
        reading = home.run("status", running, "--json", check=False)
        # The owner, meanwhile, has met the lock too (its agent ended while it was held).
        poll(lambda: store_errors(home.serve_log()), 30, "the owner to report the lock")
    held = time.monotonic() - started
    assert held > BUSY_TIMEOUT_S
    for result in results:
        assert_clear_failure(result, "is locked by another process")
    assert reading.returncode == 0  # reading does not need the write lock (WAL)
    after = home.delegate("after the lock")
    rows = home.wait_settled([running, after], timeout=60)
    assert rows[running]["status"] == "completed"  # the cancel was refused, not half-done
    assert rows[after]["status"] == "completed"
    assert set(rows) == {running, after}  # the refused delegate left no row
    result = verdict(home, [running, after])
    assert result.ok, result.summary()
    log = home.serve_log()
    assert "Traceback" not in log, log
    assert all("is locked by another process" in line for line in store_errors(log)), log


# -- a full disk ---------------------------------------------------------------------------------




@contextlib.contextmanager
def disk_filled(directory: Path) -> Iterator[int]:
    """Fill the file system holding ``directory`` to the last byte; free it afterwards."""
    filler = directory / "filler"
    written = 0
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        block = b"\0" * 65536
        while True:
            try:
                written += os.write(fd, block)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                if len(block) == 1:
                    break
                block = block[: len(block) // 16 or 1]
    finally:
        os.close(fd)
    try:
        yield written
    finally:
        filler.unlink()


@pytest.fixture
def tmpfs_home(tmp_path: Path) -> Iterator[FaultHome]:
    """A home on its own 4 MB tmpfs (a disk the test can fill)."""
    with small_tmpfs(tmp_path / "home", "4m") as mount:
        h = FaultHome(tmp_path, home=mount, CLAUDINE_MAX_AGENTS="1")
        try:
            yield h
        finally:
            h.close()


def delegate_until_refused(home: FaultHome, prompt: str, tries: int = 20) -> tuple[
        list[str], subprocess.CompletedProcess[str]]:
    """Delegate until the store refuses (a full disk may still fit a row or two in the
    WAL's existing pages); returns the ids acknowledged meanwhile and the refusal."""
    acknowledged = []
    for n in range(tries):
        result = home.run("delegate", f"{prompt} {n}", "--no-serve", "--json", check=False)
        if result.returncode != 0:
            return acknowledged, result
        acknowledged.append(str(json.loads(result.stdout)["id"]))
    raise AssertionError(f"{tries} delegates fitted on a full disk")


def test_disk_full_before_and_during_agent_output_clear_errors_then_all_tasks_end(
        tmpfs_home: FaultHome) -> None:
    home = tmpfs_home
    home.serve()
    home.wait_owner()
    first = home.delegate("before the disk fills [sleep:0.2]")
    assert home.wait_settled([first], 30)[first]["status"] == "completed"
    # One agent at a time: `writing` is mid-output when the disk fills, `waiting` has to
    # start (claim, run folder, wrapper records) on the full disk.
    writing = home.delegate("writing while the disk fills " + "[sleep:0.2] " * 15)
    waiting = home.delegate("starting on a full disk [sleep:0.2]")
    poll(lambda: ledger_started(home, "writing while"), 30, "the writing agent")
    with disk_filled(home.path):
        acknowledged, refused = delegate_until_refused(home, "on a full disk")
        assert_clear_failure(refused, "is full")
        listing = home.run("status", check=False)
        assert "Traceback" not in listing.stderr
        poll(lambda: any("is full" in line for line in store_errors(home.serve_log())),
             30, "the owner to say the disk is full")
        # The agent ends (its result line has nowhere to go) before the disk has room again.
        poll(lambda: any(line["event"] == "end" and line["marker"].startswith("writing")
                         for line in home.ledger_lines()), 30, "the writing agent to end")
    after = home.delegate("after the disk has room again")
    ids = [first, writing, waiting, *acknowledged, after]
    rows = home.wait_settled(ids, timeout=90)
    # The agent mid-output when the disk filled ended before it had room again, so its
    # result line was never stored: the owner cannot know it succeeded, and says why.
    assert rows[writing]["status"] == "failed", rows[writing]
    assert "could not be stored" in rows[writing]["error"], rows[writing]["error"]
    others = [i for i in ids if i != writing]
    assert {i: rows[i]["status"] for i in others} == dict.fromkeys(others, "completed"), rows
    result = verdict(home, others)
    assert result.ok, result.summary()  # each ran once, in attempt 1
    assert not verdict(home, [writing]).run_twice
    log = home.serve_log()
    assert "Traceback" not in log, log
    assert "cannot rollback" not in log, log


def test_owner_backs_off_while_the_disk_stays_full(tmpfs_home: FaultHome) -> None:
    home = tmpfs_home
    home.serve()
    home.wait_owner()
    talker = home.delegate("talking while the disk is full " + "[sleep:0.2] " * 40)
    poll(lambda: ledger_started(home, "talking while"), 30, "the agent")
    with disk_filled(home.path):
        poll(lambda: store_errors(home.serve_log()), 30, "the first store error")
        first = time.monotonic()
        poll(lambda: time.monotonic() - first > 6, 10, "six seconds of a full disk")
        errors = store_errors(home.serve_log())
    attempts = [int(m.group(1)) for line in errors
                if (m := re.search(r"attempt (\d+)", line))]
    home.wait_settled([talker], timeout=60)
    # Back-off that grows while the same write keeps failing: attempts 1, 2, 3, ...
    assert attempts == sorted(set(attempts)), attempts
    assert len(errors) <= 10, errors


# -- a read-only home ----------------------------------------------------------------------------


def test_read_only_home_commands_fail_clearly_and_work_once_writable(
        tmp_path: Path) -> None:
    """A tmpfs home remounted read-only (between owners: Linux refuses to remount a file
    system read-only while a process has a file open on it for writing, and an owner
    always has the store open, so a home goes read-only under a live owner only through a
    file-system error; see the ext4 test below)."""
    with small_tmpfs(tmp_path / "home", "16m") as mount:
        home = FaultHome(tmp_path, home=mount)
        try:
            owner = home.serve()
            home.wait_owner()
            first = home.delegate("before the home goes read-only [sleep:0.2]")
            assert home.wait_settled([first], 30)[first]["status"] == "completed"
            owner.terminate()
            assert owner.wait(timeout=30) == 0
            remount = subprocess.run(["mount", "-o", "remount,ro", str(mount)],
                                     capture_output=True, text=True)
            assert remount.returncode == 0, remount.stderr
            try:
                assert_clear_failure(home.run("delegate", "x", "--no-serve", check=False),
                                     "read-only")
                assert_clear_failure(home.run("serve", check=False, timeout=30), "read-only")
                status = home.run("status", check=False)
                assert "Traceback" not in status.stderr
            finally:
                subprocess.run(["mount", "-o", "remount,rw", str(mount)], check=True)
            home.serve()
            after = home.delegate("once the home is writable again")
            rows = home.wait_settled([first, after], timeout=60)
            assert rows[first]["status"] == rows[after]["status"] == "completed"
            result = verdict(home, [first, after])
            assert result.ok, result.summary()
        finally:
            home.close()


@contextlib.contextmanager
def ext4_home(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """A 32 MB ext4 image loop-mounted as the home: ``(mount point, image)``."""
    image, mount = tmp_path / "home.img", tmp_path / "home"
    mount.mkdir()
    with open(image, "wb") as fh:
        fh.truncate(32 * 1024 * 1024)
    made = subprocess.run(["mkfs.ext4", "-q", "-F", str(image)], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"cannot make an ext4 image here: {made.stderr.strip()}")
    mounted = subprocess.run(["mount", "-o", "loop", str(image), str(mount)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot loop-mount an ext4 image here: {mounted.stderr.strip()}")
    try:
        yield mount, image
    finally:
        subprocess.run(["umount", str(mount)], capture_output=True)


def test_home_gone_read_only_mid_run_fails_clearly_and_loses_no_row(tmp_path: Path) -> None:
    """What really makes a home read-only under a running owner: ext4 meets an error and
    remounts itself read-only (``errors=remount-ro``; ``remount,abort`` does the same on
    purpose). Every later write fails; getting it writable means stopping what uses it,
    repairing and mounting again; then every acknowledged task must still be there, and end."""
    with ext4_home(tmp_path) as (mount, image):
        home = FaultHome(tmp_path, home=mount)
        try:
            home.serve()
            home.wait_owner()
            first = home.delegate("before the file system fails [sleep:0.2]")
            assert home.wait_settled([first], 30)[first]["status"] == "completed"
            running = home.delegate("running when it fails " + "[sleep:0.2] " * 10)
            poll(lambda: ledger_started(home, "running when"), 30, "the agent")
            aborted = subprocess.run(["mount", "-o", "remount,abort", str(mount)],
                                     capture_output=True, text=True)
            if aborted.returncode != 0:
                pytest.skip(f"this kernel cannot abort an ext4 mount: {aborted.stderr}")
            assert_clear_failure(home.run("delegate", "x", "--no-serve", check=False),
                                 "read-only", "failed a read or write")
            assert "Traceback" not in home.run("status", check=False).stderr
            poll(lambda: store_errors(home.serve_log()), 30, "the owner to notice")
            log = home.serve_log()
            assert "Traceback" not in log, log
            assert all("read-only" in line or "failed a read or write" in line
                       for line in store_errors(log)), log
            # An administrator's repair: stop claudine, fsck, mount again.
            home.close()
            subprocess.run(["umount", str(mount)], check=True)
            subprocess.run(["e2fsck", "-fy", str(image)], capture_output=True)
            subprocess.run(["mount", "-o", "loop", str(image), str(mount)], check=True)
            home.serve()
            after = home.delegate("once the home is writable again")
            rows = home.wait_settled([first, running, after], timeout=90)
            assert {rows[i]["status"] for i in (first, running, after)} == {"completed"}, rows
            result = verdict(home, [first, running, after])
            assert not result.lost and not result.stuck, result.summary()
            # The interrupted agent's end could not be recorded: it may be resumed, once.
            assert set(result.run_twice) <= {running}, result.summary()
        finally:
            home.close()
