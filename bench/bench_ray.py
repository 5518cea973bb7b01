"""Backend benchmark: prints figures, asserts nothing.
Run: ``/tmp/rayvenv/bin/python bench/bench_ray.py [--runs 100] [--slots 6]`` (needs ray).

At the backend level (the engine is not wired to the seam yet): ``--runs`` instant agents
(``true`` under the wrapper), at most ``--slots`` per node at once, through

1. ``LocalBackend`` on this machine (concurrency: 3 x slots, as the cluster's), and
2. ``RayBackend`` on a local cluster of a head and two worker nodes on loopback, runs
   spread round-robin over the three nodes (``NodeAffinitySchedulingStrategy``).

For each: the time ``start()`` takes (p50/p99: for Ray, creating the detached actor until
it answers with its wrapper's pid), the throughput (runs from first start to last end,
per second) and the owner's RSS afterwards.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections import deque
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from claudine_core.backends import ExecutionBackend, RunPhase, RunSpec  # noqa: E402
from claudine_core.backends.local import LocalBackend  # noqa: E402

TRUE = shutil.which("true") or "/bin/true"


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def run_all(backend: ExecutionBackend, runs: int, at_once: int,
            nodes: list[str | None]) -> dict[str, float]:
    """Start ``runs`` instant agents, ``at_once`` at most, polling and releasing ended ones."""
    start_times: list[float] = []
    failed = 0
    waiting = deque(range(runs))
    running: list[Any] = []
    began = time.monotonic()
    while waiting or running:
        while waiting and len(running) < at_once:
            n = waiting.popleft()
            spec = RunSpec(task_id=f"b{n}", attempt=1, argv=[TRUE], env=dict(os.environ),
                           cwd=os.getcwd(), max_output_bytes=1 << 20,
                           node_id=nodes[n % len(nodes)])
            t0 = time.monotonic()
            try:
                running.append(backend.start(spec))
            except OSError as exc:  # a start that timed out is a figure too
                failed += 1
                print(f"  b{n} did not start: {exc}", file=sys.stderr)
            start_times.append(time.monotonic() - t0)
        for ref in list(running):
            phase = backend.poll(ref).phase
            if phase is not RunPhase.RUNNING:
                if phase is RunPhase.LOST:
                    print(f"  {ref.name} lost", file=sys.stderr)
                backend.release(ref)
                running.remove(ref)
        time.sleep(0.01)
    elapsed = time.monotonic() - began
    ordered = sorted(start_times)
    return {"start_p50_ms": 1000 * statistics.median(ordered),
            "start_p99_ms": 1000 * ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))],
            "runs_per_s": (runs - failed) / elapsed, "wall_s": elapsed,
            "owner_rss_mb": rss_mb(), "failed_starts": failed}


def show(label: str, figures: dict[str, float]) -> None:
    print(f"{label:>6}: start p50 {figures['start_p50_ms']:.0f} ms, p99 "
          f"{figures['start_p99_ms']:.0f} ms; {figures['runs_per_s']:.1f} runs/s "
          f"({figures['wall_s']:.1f} s); owner RSS {figures['owner_rss_mb']:.0f} MB; "
          f"{figures['failed_starts']:.0f} starts failed", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--slots", type=int, default=6, help="agents at once per node")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-ray-"))
    print(f"{args.runs} instant agents, {args.slots} per node at once, "
          f"load average {os.getloadavg()[0]:.1f} at start", flush=True)
    local = LocalBackend(tmp / "local-runs", kill_grace_s=1.0)
    show("local", run_all(local, args.runs, 3 * args.slots, [None]))

    from ray_cluster import LocalRayCluster

    with LocalRayCluster(tmp / "ray", slots_per_node=args.slots) as cluster:
        backend = cluster.backend(tmp / "ray-runs", 1.0)
        nodes = [cluster.cluster.head_node.node_id, *[n.node_id for n in cluster.workers]]
        show("ray", run_all(backend, args.runs, 3 * args.slots, nodes))
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
