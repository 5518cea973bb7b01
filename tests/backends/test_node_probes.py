"""The Ray backend's per-node probes, on the local cluster of a head and two workers: every
live node is reported with its CPU, memory and load; a probe that stops answering holds
no capacity() call up, and its node is reported with no reading until it answers again.

(The cluster's nodes all run on this machine, so each probe reads this machine.)"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from backend_kit import GRACE_S

from claudine_core.backends.base import NodeCapacity

pytestmark = pytest.mark.ray

READINGS_DEADLINE_S = 90.0  # three probe processes to start on a loaded two-core machine
NO_WAIT_S = 5.0
"""A capacity() call while a probe is frozen returns well within this; one that waited for
the frozen probe would return only at its thaw (THAW_AFTER_S)."""
THAW_AFTER_S = 40.0


@pytest.fixture
def backend(ray_cluster: Any, tmp_path: Path) -> Iterator[Any]:
    made = ray_cluster.backend(tmp_path / "runs", GRACE_S)
    yield made
    made.close()


def every_node(ray_cluster: Any) -> set[str]:
    import ray

    return {node["NodeID"] for node in ray.nodes() if node["Alive"]}


def capacity_until(backend: Any, condition: Callable[[dict[str, NodeCapacity]], bool],
                   deadline_s: float, what: str) -> dict[str, NodeCapacity]:
    """Ask capacity() until ``condition`` holds of the nodes it reports (by node id)."""
    deadline = time.monotonic() + deadline_s
    while True:
        nodes = {node.node_id: node for node in backend.capacity()}
        if condition(nodes):
            return nodes
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} after {deadline_s:g} s: {nodes}")
        time.sleep(0.2)


def has_readings(node: NodeCapacity) -> bool:
    return node.cpu_percent is not None and node.memory_total_bytes is not None


def test_capacity_reports_every_node_with_its_readings(ray_cluster: Any, backend: Any) -> None:
    expected = every_node(ray_cluster)
    assert len(expected) == 3
    nodes = capacity_until(
        backend, lambda found: set(found) == expected and all(map(has_readings,
                                                                   found.values())),
        READINGS_DEADLINE_S, "readings from all three nodes")
    machine = psutil.virtual_memory()
    for node in nodes.values():
        assert node.alive and node.slots_total == ray_cluster.slots_per_node
        assert node.name  # the host name, for the console
        assert node.cpu_percent is not None and 0.0 <= node.cpu_percent <= 100.0
        # Every node of this cluster is this machine: its probe read this machine.
        assert node.memory_total_bytes == machine.total
        assert node.memory_available_bytes is not None
        assert 0 < node.memory_available_bytes <= machine.total
        assert node.load_1m is not None and node.load_1m >= 0.0


def test_a_frozen_probe_holds_no_call_up_and_its_node_shows_no_reading(
        ray_cluster: Any, backend: Any) -> None:
    import ray

    capacity_until(backend, lambda found: len(found) == 3 and all(map(has_readings,
                                                                       found.values())),
                   READINGS_DEADLINE_S, "readings from all three nodes")
    victim = ray_cluster.workers[-1].node_id
    probe = ray.get_actor(f"node-probe-{victim}", namespace=ray_cluster.namespace)
    pid = ray.get(probe.__ray_call__.remote(lambda _self: os.getpid()), timeout=30)
    # Only the probe's process stops (SIGSTOP), not the node: the session's cluster
    # goes on for the other tests. A safety thaw in case a call does wait for it.
    os.kill(pid, signal.SIGSTOP)
    safety = threading.Timer(THAW_AFTER_S, os.kill, (pid, signal.SIGCONT))
    safety.start()
    try:
        slowest = 0.0

        def frozen_shows_nothing(found: dict[str, NodeCapacity]) -> bool:
            return victim in found and not has_readings(found[victim])

        deadline = time.monotonic() + 30.0
        while True:
            began = time.monotonic()
            nodes = {node.node_id: node for node in backend.capacity()}
            slowest = max(slowest, time.monotonic() - began)
            if frozen_shows_nothing(nodes) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert frozen_shows_nothing(nodes), nodes
        assert slowest < NO_WAIT_S, f"a capacity() call waited {slowest:.1f} s"
        # The other nodes answer still, and the frozen one is still listed, alive.
        assert all(has_readings(node) for node_id, node in nodes.items() if node_id != victim)
        assert nodes[victim].slots_total == ray_cluster.slots_per_node
    finally:
        safety.cancel()
        os.kill(pid, signal.SIGCONT)
    capacity_until(backend, lambda found: has_readings(found[victim]), 30.0,
                   "reading from the thawed probe")
