"""The behaviour every execution backend owes the engine, checked on each of them (local,
fake, and Ray on a local cluster in the ``ray`` tier) with the same tests."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import time
from pathlib import Path

from backend_kit import (
    DEADLINE_S,
    GRACE_S,
    STOP_DEADLINE_S,
    BackendKit,
    pids_alive,
    poll_until_done,
    read_until,
    spec,
)

from claudine_core.backends import (
    ExecutionBackend,
    NodeChange,
    RunPhase,
    RunRef,
)


def read_all(backend: ExecutionBackend, ref: RunRef) -> bytes:
    """The whole output of a run that is still being written, read 97 bytes at a time."""
    data = b""
    ended = False
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        chunk = backend.read_output(ref, len(data), limit=97)
        data += chunk
        if not chunk and ended:
            return data
        if not chunk:
            ended = backend.poll(ref).phase is not RunPhase.RUNNING
    raise AssertionError(f"{ref.name} output not finished after {DEADLINE_S} s")


def tick_numbers(data: bytes) -> list[int]:
    return [json.loads(line)["n"] for line in data.splitlines()
            if line.startswith(b'{"type": "tick"')]


def test_output_read_by_offset_is_contiguous(kit: BackendKit) -> None:
    backend = kit.new()
    ref = kit.start(backend, spec("t-lines", "lines", "400"))
    data = read_all(backend, ref)
    numbers = [json.loads(line)["n"] for line in data.splitlines()]
    assert numbers == list(range(400))
    assert backend.read_output(ref, len(data)) == b""
    status = backend.poll(ref)
    assert status.phase is RunPhase.ENDED and status.exit_record is not None
    assert status.exit_record["exit_code"] == 0
    assert backend.read_stderr(ref, 0) == b"wrote 400 lines\n"  # what explains failures
    assert backend.read_stderr(ref, 6, limit=3) == b"400"


def test_stop_ends_a_run_that_honours_sigterm(kit: BackendKit, tmp_path: Path) -> None:
    backend = kit.new()
    ref = kit.start(backend, spec("t-stop", "ticker", str(tmp_path / "pids")))
    read_until(backend, ref, 0, b'"started"')
    backend.stop(ref)
    status = poll_until_done(backend, ref, STOP_DEADLINE_S)
    assert status.phase is RunPhase.ENDED and status.exit_record is not None
    assert status.exit_record["signal"] == signal.SIGTERM
    assert status.exit_record["terminated"]


def test_an_agent_ignoring_sigterm_is_killed_after_the_grace_with_no_survivor(
        kit: BackendKit, tmp_path: Path) -> None:
    backend = kit.new()
    pidfile = tmp_path / "pids"
    ref = kit.start(backend, spec("t-stubborn", "stubborn", str(pidfile)))
    read_until(backend, ref, 0, b'"started"')
    stop_sent = time.monotonic()
    backend.stop(ref)
    status = poll_until_done(backend, ref, STOP_DEADLINE_S)
    assert time.monotonic() - stop_sent >= GRACE_S, "ended before the grace was over"
    assert status.phase is RunPhase.ENDED and status.exit_record is not None
    assert status.exit_record["signal"] == signal.SIGKILL
    assert status.exit_record["survivors"] == []
    if kit.runs_processes:
        agent_and_detached_grandchild = [int(p) for p in pidfile.read_text().split()]
        assert len(agent_and_detached_grandchild) == 2
        assert pids_alive(agent_and_detached_grandchild) == []


def test_kill_ends_a_run_at_once_with_no_survivor(kit: BackendKit, tmp_path: Path) -> None:
    backend = kit.new()
    pidfile = tmp_path / "pids"
    ref = kit.start(backend, spec("t-kill", "stubborn", str(pidfile)))
    read_until(backend, ref, 0, b'"started"')
    backend.kill(ref)
    status = poll_until_done(backend, ref, DEADLINE_S)
    assert status.phase in (RunPhase.ENDED, RunPhase.LOST)
    if kit.runs_processes:
        pids = [int(p) for p in pidfile.read_text().split()]
        deadline = time.monotonic() + DEADLINE_S
        while pids_alive(pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert pids_alive(pids) == []


def test_reattach_finds_a_live_run_and_its_output_continues(
        kit: BackendKit, tmp_path: Path) -> None:
    first_owner = kit.new()
    recorded = kit.start(first_owner, spec("t-live", "ticker", str(tmp_path / "pids")))
    before, offset = read_until(first_owner, recorded, 0, b'"n": 5}')
    first_owner.close()  # the owner goes; the store kept `recorded` and `offset`

    second_owner = kit.new()
    ref = kit.reattach(second_owner, recorded)
    assert ref is not None, "a live run was not found again"
    assert ref.name == recorded.name and ref.node_id == recorded.node_id
    assert second_owner.poll(ref).phase is RunPhase.RUNNING
    after, _ = read_until(second_owner, ref, offset, b'"n": 40}')
    second_owner.stop(ref)
    poll_until_done(second_owner, ref, STOP_DEADLINE_S)
    # Cut at a byte offset, the two reads still join into whole lines, none twice.
    numbers = tick_numbers(before + after)
    assert numbers[: numbers.index(40) + 1] == list(range(41))


def test_reattach_reports_a_gone_run_as_lost(kit: BackendKit, tmp_path: Path) -> None:
    first_owner = kit.new()
    recorded = kit.start(first_owner, spec("t-gone", "ticker", str(tmp_path / "pids")))
    read_until(first_owner, recorded, 0, b'"started"')
    vanish(kit, first_owner, recorded)
    never_started = RunRef("t-never", 1, recorded.node_id, pid=None)

    second_owner = kit.new()
    assert kit.reattach(second_owner, recorded) is None
    assert kit.reattach(second_owner, never_started) is None


def vanish(kit: BackendKit, backend: ExecutionBackend, ref: RunRef) -> None:
    """Make a run disappear with no exit record: its whole process group SIGKILLed (the
    wrapper leads it), or the fake world's crash."""
    if not kit.runs_processes:
        backend.world.crash(ref.name)  # type: ignore[attr-defined]
        return
    assert ref.pid is not None
    os.killpg(ref.pid, signal.SIGKILL)
    deadline = time.monotonic() + DEADLINE_S
    while pids_alive([ref.pid]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert poll_until_done(backend, ref, DEADLINE_S).phase is RunPhase.LOST


def test_capacity_counts_the_runs_on_each_node(kit: BackendKit, tmp_path: Path) -> None:
    backend = kit.new()
    before = {node.node_id: node for node in backend.capacity()}
    assert before and all(node.alive for node in before.values())
    ref = kit.start(backend, spec("t-slot", "ticker", str(tmp_path / "pids")))
    during = {node.node_id: node for node in backend.capacity()}
    assert during[ref.node_id].slots_used == before[ref.node_id].slots_used + 1
    backend.kill(ref)
    poll_until_done(backend, ref, DEADLINE_S)
    backend.release(ref)
    after = {node.node_id: node for node in backend.capacity()}
    assert after[ref.node_id].slots_used == before[ref.node_id].slots_used


def test_node_events_list_every_node_up_once(kit: BackendKit) -> None:
    backend = kit.new()
    nodes = {node.node_id for node in backend.capacity()}
    events = backend.node_events()
    assert {event.node_id for event in events} == nodes
    assert all(event.change is NodeChange.UP for event in events)
    assert backend.node_events() == []


def test_messages_are_taken_once_while_the_run_lasts(kit: BackendKit, tmp_path: Path) -> None:
    backend = kit.new()
    conversation = dataclasses.replace(spec("t-inbox", "ticker", str(tmp_path / "pids")),
                                       prompt="first turn", stream_input=True)
    ref = kit.start(backend, conversation)
    read_until(backend, ref, 0, b'"started"')
    assert wait_for_delivery(backend, ref, "prompt") > 0  # the prompt reached the agent
    assert backend.post_message(ref, "msg-1", "a second turn")
    assert backend.post_message(ref, "msg-1", "a second turn")  # again: nothing new
    backend.stop(ref)
    assert poll_until_done(backend, ref, STOP_DEADLINE_S).phase is RunPhase.ENDED
    assert not backend.post_message(ref, "msg-2", "too late")


def wait_for_delivery(backend: ExecutionBackend, ref: RunRef, key: str) -> float:
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        at = backend.delivered(ref).get(key)
        if at is not None:
            return at
        time.sleep(0.05)
    raise AssertionError(f"{key} never delivered to {ref.name}")
