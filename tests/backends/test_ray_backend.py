"""What only the Ray backend must show, on a local cluster: runs go to the nodes they are
pinned to; a stop on a worker node leaves no survivor; a run on a node that is killed or
frozen is reported lost by our own watchdog (not after Ray's 14 s or more) and never re-run
by Ray; runs outlive an owner killed with SIGKILL and a new owner re-attaches them."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from backend_kit import (
    DEADLINE_S,
    GRACE_S,
    STOP_DEADLINE_S,
    pids_alive,
    poll_until_done,
    read_until,
    spec,
)

from claudine_core.backends import NodeChange, RunPhase, RunRef
from claudine_core.backends.base import RunSpec

pytestmark = pytest.mark.ray

OWNER = Path(__file__).resolve().parent / "ray_owner.py"
LOST_AFTER_S = 3.0  # the watchdog's setting here (20 s by default)
LOST_DEADLINE_S = 5.0  # the promise for a node that dies under a run


@pytest.fixture
def backend(ray_cluster: Any, tmp_path: Path) -> Iterator[Any]:
    made = ray_cluster.backend(tmp_path / "runs", GRACE_S, lost_after_s=LOST_AFTER_S)
    yield made
    for followed in list(made.followed.values()):
        made.kill(followed.ref)
        made.release(followed.ref)
    made.close()


def pinned(run: RunSpec, node_id: str) -> RunSpec:
    return dataclasses.replace(run, node_id=node_id)


def test_runs_go_to_the_nodes_they_are_pinned_to(ray_cluster: Any, backend: Any,
                                                 tmp_path: Path) -> None:
    nodes = [node.node_id for node in ray_cluster.workers]
    refs = [backend.start(pinned(spec(f"t-spread{i}", "ticker", str(tmp_path / f"p{i}")),
                                 node)) for i, node in enumerate(nodes)]
    assert [ref.node_id for ref in refs] == nodes
    by_node = {node.node_id: node.slots_used for node in backend.capacity()}
    assert [by_node[node] for node in nodes] == [1, 1]


def test_an_agent_ignoring_sigterm_on_a_worker_node_is_stopped_with_no_survivor(
        ray_cluster: Any, backend: Any, tmp_path: Path) -> None:
    pidfile = tmp_path / "pids"
    worker = ray_cluster.workers[-1].node_id
    ref = backend.start(pinned(spec("t-remote-stubborn", "stubborn", str(pidfile)), worker))
    assert ref.node_id == worker
    read_until(backend, ref, 0, b'"started"')
    backend.stop(ref)
    status = poll_until_done(backend, ref, STOP_DEADLINE_S)
    assert status.phase is RunPhase.ENDED and status.exit_record is not None
    assert status.exit_record["signal"] == signal.SIGKILL
    agent_and_detached_grandchild = [int(p) for p in pidfile.read_text().split()]
    assert pids_alive(agent_and_detached_grandchild) == []


def test_a_node_killed_mid_run_gets_its_run_reported_lost_and_not_rerun(
        ray_cluster: Any, backend: Any, tmp_path: Path) -> None:
    import ray

    # A node of its own, so the session's cluster keeps its two workers whatever happens.
    victim = ray_cluster.add_worker()
    pidfile = tmp_path / "pids"
    ref = backend.start(pinned(spec("t-node-dies", "ticker", str(pidfile)), victim))
    read_until(backend, ref, 0, b'"started"')
    agent_pids = [int(p) for p in pidfile.read_text().split()]
    assert backend.poll(ref).phase is RunPhase.RUNNING

    backend.node_events()  # what came before: the victim's arrival
    killed_at = time.monotonic()
    ray_cluster.kill_worker(victim)
    status = poll_until_lost(backend, ref, LOST_DEADLINE_S)
    assert "heartbeat" in (status.reason or "") or "down" in (status.reason or "")
    assert time.monotonic() - killed_at <= LOST_DEADLINE_S
    # Ray gives the actor up (max_restarts=0) and never starts the agent again.
    wait_for_actor_gone(ray, ref, backend.namespace)
    assert pidfile.read_text().split() == [str(p) for p in agent_pids]
    # Ray itself declares the node dead later (missed heartbeats): then it is an event.
    assert wait_for_node_events(backend) == [(victim, NodeChange.DOWN)]
    assert pids_alive(agent_pids) == []


def poll_until_lost(backend: Any, ref: RunRef, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = backend.poll(ref)
        if status.phase is RunPhase.LOST:
            return status
        assert status.phase is RunPhase.RUNNING, status
        time.sleep(0.05)
    raise AssertionError(f"{ref.name} not reported lost within {timeout} s")


def wait_for_node_events(backend: Any) -> list[tuple[str, NodeChange]]:
    deadline = time.monotonic() + DEADLINE_S * 2
    while time.monotonic() < deadline:
        events = backend.node_events()
        if events:
            return [(event.node_id, event.change) for event in events]
        time.sleep(0.2)
    raise AssertionError("no node event")


def wait_for_actor_gone(ray: Any, ref: RunRef, namespace: str) -> None:
    deadline = time.monotonic() + DEADLINE_S * 2
    while time.monotonic() < deadline:
        try:
            ray.get_actor(ref.name, namespace=namespace)
        except ValueError:
            return
        time.sleep(0.2)
    raise AssertionError(f"{ref.name} still known to Ray")


def test_runs_outlive_an_owner_killed_with_sigkill_and_are_reattached(
        ray_cluster: Any, backend: Any, tmp_path: Path) -> None:
    nodes = [ray_cluster.cluster.head_node.node_id] + [n.node_id for n in ray_cluster.workers]
    owner = subprocess.Popen(
        [sys.executable, str(OWNER), ray_cluster.address, ray_cluster.namespace,
         str(tmp_path / "runs"), str(tmp_path), *nodes],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": os.pathsep.join(
            [str(Path(__file__).resolve().parents[2]), os.environ.get("PYTHONPATH", "")])})
    try:
        stored = json.loads(owner.stdout.readline() if owner.stdout else "")
    finally:
        owner.send_signal(signal.SIGKILL)
        owner.wait()
    pids_before = [(tmp_path / f"p{i}").read_text() for i in range(len(nodes))]

    for i, row in enumerate(stored):
        ref = backend.reattach(RunRef(**row["ref"]))
        assert ref is not None, f"run {i} not found after the owner died"
        assert ref.node_id == nodes[i]
        rest, _ = read_until(backend, ref, row["offset"], b'"n": 30}')
        whole = backend.read_output(ref, 0, limit=row["offset"]) + rest
        backend.stop(ref)
        assert poll_until_done(backend, ref, STOP_DEADLINE_S).phase is RunPhase.ENDED
        ticks = [json.loads(line)["n"] for line in whole.splitlines() if b"tick" in line]
        assert ticks[: ticks.index(30) + 1] == list(range(31))
        assert whole.count(b'"started"') == 1, "the agent was started more than once"
    assert [(tmp_path / f"p{i}").read_text() for i in range(len(nodes))] == pids_before


def test_a_frozen_node_gets_its_run_reported_lost_by_the_watchdog(
        ray_cluster: Any, backend: Any, tmp_path: Path) -> None:
    victim = ray_cluster.add_worker()
    ref = backend.start(pinned(spec("t-frozen", "ticker", str(tmp_path / "pids")), victim))
    read_until(backend, ref, 0, b'"started"')
    frozen = ray_cluster.freeze_worker(victim)
    try:
        status = poll_until_lost(backend, ref, LOST_AFTER_S + DEADLINE_S)
        assert "heartbeat" in (status.reason or "")
    finally:
        ray_cluster.thaw(frozen)
        ray_cluster.kill_worker(victim)
