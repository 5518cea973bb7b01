"""Measure the Ray facts docs/ray-backend.md records (Ray 2.60, one machine).

Run with a Python that has ray: ``/tmp/rayvenv/bin/python bench/ray_facts.py``. It starts a
head and two worker nodes on loopback (``ray.cluster_utils.Cluster``, auth disabled, its
temp dir under a fresh directory), measures, and shuts everything down.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time

NAMESPACE = "claudine-facts"

DRIVER_A = r'''
import os, sys, time, subprocess, ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
ray.init(address=sys.argv[1], namespace=sys.argv[2], logging_level="ERROR",
         _node_ip_address="127.0.0.1")

@ray.remote(num_cpus=0, max_restarts=0, max_task_retries=0, lifetime="detached")
class Run:
    def __init__(self):
        self.child = subprocess.Popen(["sleep", "600"], start_new_session=True)
    def pids(self):
        return os.getpid(), self.child.pid
    def block(self, seconds):
        time.sleep(seconds)
        return "done"

started = time.monotonic()
actor = Run.options(name="run-facts-1", scheduling_strategy=NodeAffinitySchedulingStrategy(
    sys.argv[3], soft=False)).remote()
pids = ray.get(actor.pids.remote())
print(f"{time.monotonic() - started:.3f} {pids[0]} {pids[1]}", flush=True)
time.sleep(600)
'''


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


def main() -> None:
    os.environ["RAY_AUTH_MODE"] = "disabled"
    # Without this Ray turns 127.0.0.1 into the host's outward address (services.py
    # resolve_ip_for_localhost) and a driver dials a GCS that listens on loopback only.
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    tmp = tempfile.mkdtemp(prefix="rf-")
    os.environ["RAY_TMPDIR"] = tmp
    facts: dict[str, object] = {}
    rss_before = rss_mb(os.getpid())
    started = time.monotonic()
    import ray
    from ray.cluster_utils import Cluster
    facts["import_ray_s"] = round(time.monotonic() - started, 3)
    facts["rss_before_import_mb"] = round(rss_before, 1)
    facts["rss_after_import_mb"] = round(rss_mb(os.getpid()), 1)

    started = time.monotonic()
    head_args = {"num_cpus": 1, "resources": {"agent_slot": 2}, "node_ip_address": "127.0.0.1",
                 "include_dashboard": False}
    cluster = Cluster(initialize_head=True, head_node_args=head_args)
    workers = [cluster.add_node(num_cpus=1, resources={"agent_slot": 2},
                                node_ip_address="127.0.0.1") for _ in range(2)]
    cluster.wait_for_nodes()
    facts["cluster_3_nodes_start_s"] = round(time.monotonic() - started, 3)
    try:
        measure(cluster, workers, facts, ray)
    finally:
        started = time.monotonic()
        ray.shutdown()
        cluster.shutdown()
        facts["cluster_shutdown_s"] = round(time.monotonic() - started, 3)
        print(json.dumps(facts, indent=2))


def measure(cluster, workers, facts, ray) -> None:  # type: ignore[no-untyped-def]
    target = workers[0]
    driver = subprocess.Popen(
        [sys.executable, "-c", DRIVER_A, cluster.address, NAMESPACE, target.node_id],
        stdout=subprocess.PIPE, text=True)
    line = driver.stdout.readline().split()
    facts["detached_actor_first_call_s_from_fresh_driver"] = float(line[0])
    actor_pid, child_pid = int(line[1]), int(line[2])
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    facts["actor_alive_after_driver_kill9"] = alive(actor_pid)

    started = time.monotonic()
    ray.init(address=cluster.address, namespace=NAMESPACE, logging_level="ERROR",
             _node_ip_address="127.0.0.1")
    facts["ray_init_connect_s"] = round(time.monotonic() - started, 3)
    facts["rss_after_ray_init_mb"] = round(rss_mb(os.getpid()), 1)
    started = time.monotonic()
    actor = ray.get_actor("run-facts-1")
    same = ray.get(actor.pids.remote())
    facts["get_actor_and_call_after_driver_kill9_s"] = round(time.monotonic() - started, 3)
    facts["reattached_same_actor_process"] = same[0] == actor_pid

    started = time.monotonic()
    try:
        ray.get_actor("run-does-not-exist")
    except ValueError as exc:
        facts["get_actor_missing_raises"] = f"ValueError: {str(exc)[:120]}"
    facts["get_actor_missing_s"] = round(time.monotonic() - started, 3)

    pending = actor.block.remote(60)
    time.sleep(0.5)  # let the call reach the actor before the node dies
    killed_at = time.monotonic()
    cluster.remove_node(target, allow_graceful=False)
    facts["remove_node_sigkill_s"] = round(time.monotonic() - killed_at, 3)
    try:
        ray.get(pending, timeout=120)
        facts["pending_call_after_node_kill"] = "returned"
    except Exception as exc:  # noqa: BLE001 - the type is the fact
        facts["pending_call_after_node_kill"] = f"{type(exc).__name__}: {str(exc)[:200]}"
    facts["pending_call_failed_after_s"] = round(time.monotonic() - killed_at, 3)
    started = time.monotonic()
    try:
        ray.get(actor.pids.remote(), timeout=60)
        facts["new_call_after_node_kill"] = "returned"
    except Exception as exc:  # noqa: BLE001
        facts["new_call_after_node_kill"] = f"{type(exc).__name__}"
    facts["new_call_failed_after_s"] = round(time.monotonic() - started, 3)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        dead = [n for n in ray.nodes() if n["NodeID"] == target.node_id and not n["Alive"]]
        if dead:
            break
        time.sleep(0.05)
    facts["node_reported_dead_in_ray_nodes_after_s"] = round(time.monotonic() - killed_at, 3)
    try:
        again = ray.get_actor("run-facts-1")
        facts["get_actor_after_node_kill"] = f"found {again}"
    except ValueError:
        facts["get_actor_after_node_kill"] = "ValueError (gone)"
    facts["agent_child_survives_node_kill"] = alive(child_pid)
    if alive(child_pid):
        os.killpg(child_pid, signal.SIGKILL)


if __name__ == "__main__":
    main()
