"""Ray backend benchmark: prints figures, asserts nothing (needs ray).

    /tmp/rayvenv/bin/python bench/bench_ray.py [--tasks 100] [--slots 6] [--repeat N]
    /tmp/rayvenv/bin/python bench/bench_ray.py --backend-level [--tasks 100] [--slots 6]

**Through the engine** (the default): ``--tasks`` instant tasks (the fake ``claude`` of
tests/fakes with a prompt it answers at once) delegated in one burst to a real
:class:`~claudine_core.engine.Engine`, first with ``backend = "local"``, then with
``backend = "ray"`` on a local cluster of a head and two worker nodes on loopback (each
declaring ``--slots`` ``agent_slot`` resources, so the three nodes run agents;
``ray_shared_fs = true``, since they share this disk). Both run at most 3 x slots agents at
once (``max_agents``; on Ray the cluster's slots say the same). The cluster starts once
(~25 s) and stays up, idle, while the local runs go, so both see the same machine.

Each owner is a process of its own (``--owner``, which this script starts), as
``claudine serve`` is: its RSS is its own, sampled every 50 ms with psutil (the agents,
its children on the local backend, are not counted), and Ray is imported there only for
the Ray runs. Per run it prints:

- ready: from making the owner's engine to its first dispatch being possible (on Ray:
  connected and the cluster's slots counted); no task is delegated before;
- delegated → running: ``started_at - created_at`` of each task (the store's ``running``,
  set when the owner claims it for a slot): mostly the wait in the queue for a free slot,
  with 100 tasks delegated at once and 18 slots;
- running → agent up: from that claim to the fake agent's own start (its ledger line,
  ``FAKE_CLAUDE_LEDGER``, written once it has its prompt): what starting an agent costs on
  the backend (locally the wrapper and the agent start; on Ray a detached actor, a Ray
  worker process of its own, on a node, then its wrapper and the agent);
- throughput: completed tasks per second, from the first delegate to the last task's end;
- the owner's peak RSS (sampled; the kernel's own peak ``VmHWM`` beside it) and CPU time;
- the CPU the runs cost beyond the owner: locally its children (wrappers and agents,
  exact), on Ray every process of the cluster during the run (GCS, raylets, a Ray worker
  per run, the wrappers and agents), the ended ones included but sampled every 0.1 s, so
  a lower bound (see :class:`ClusterCpu`); after a local run, what the idle cluster used
  meanwhile, and for both what this script's sampling cost;
- tasks that did not complete, and why (their state and error, or "not ended" at the
  ``--timeout``), agent starts beyond one per task (a re-run), and tasks per node.

``--agent-seconds S`` makes each agent work S seconds (a Bash ``sleep``) instead of
ending at once: with ``--tasks`` no more than the slots, what following running agents
costs the owner (its CPU) instead of what starting them costs.

``--repeat N`` runs round by round (local, ray, local, ray, ...), so a busy spell on the
machine spreads over both, and ends with the median of each figure and its [min..max]. The
1-minute load average is printed before and after, and its range during each run (it
lags: a run inherits some of the one before): the machine may be shared, and figures
taken at a load above its core count are noisy. With 18 agents at once on 2 cores the
bench loads the machine itself, Ray's many threads most.
Everything listens on loopback; at the end the cluster is shut down and the script lists
any process of its own left behind (there should be none).

**At the backend level** (``--backend-level``, what this script measured before the
engine was wired to the seam): ``--tasks`` instant runs (``true`` under the wrapper),
at most ``--slots`` per node at once, through ``LocalBackend`` on this machine
(concurrency 3 x slots) and ``RayBackend`` on the same kind of cluster, runs spread
round-robin over the three nodes (``NodeAffinitySchedulingStrategy``). For each: the time
``start()`` takes (p50/p99: for Ray, creating the detached actor until it answers with its
wrapper's pid), the throughput (runs from first start to last end, per second) and the
owner's RSS afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, deque
from pathlib import Path
from typing import Any

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from claudine_core.backends import ExecutionBackend, RunPhase, RunSpec  # noqa: E402
from claudine_core.backends.local import LocalBackend  # noqa: E402

TRUE = shutil.which("true") or "/bin/true"
BACKENDS = ("local", "ray")
SAMPLE_EVERY_S = 0.05  # the owner's RSS and the load average, from the parent
CPU_SCAN_EVERY = 2  # samples between two scans of the cluster's CPU (every 0.1 s)
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
READY_TIMEOUT_S = 120.0  # connecting to the cluster on a loaded machine


# -- through the engine: one owner (a process of its own) ----------------------------------


async def owner_run(args: argparse.Namespace) -> dict[str, Any]:
    """Delegate ``args.tasks`` instant tasks to an engine owning a fresh home, wait for
    them all to end (or ``args.timeout``), and return what happened to each."""
    from engine_helpers import agent_env, make_config

    from claudine_core.engine import Engine
    from claudine_core.models import TERMINAL_STATES, TaskSpec

    started = time.monotonic()
    root = Path(args.root)
    work, ledger = root / "work", root / "ledger.jsonl"
    work.mkdir(parents=True, exist_ok=True)
    settings: dict[str, Any] = {"max_agents": 3 * args.slots}
    if args.owner == "ray":
        settings.update(backend="ray", ray_address=args.address,
                        ray_namespace=args.namespace, ray_shared_fs=True)
    engine = Engine(make_config(root / "home", **settings),
                    env=agent_env(FAKE_CLAUDE_LEDGER=str(ledger)))
    await engine.start()
    try:
        ready_s = await until_ready(engine, started)
        work_for = f"[sleep:{args.agent_seconds:g}]" if args.agent_seconds else ""
        ids = [engine.service.delegate(TaskSpec(prompt=f"bench {n} {work_for}",
                                                cwd=str(work))).id
               for n in range(args.tasks)]
        ended_in_time = await until_ended(engine, len(ids), TERMINAL_STATES, args.timeout)
        tasks = [engine.service.get(task_id) for task_id in ids]
    finally:
        # Agents still running at the timeout go too: the bench leaves nothing behind.
        await engine.stop(stop_agents=True)
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)  # local agents, once reaped
    return {"ready_s": ready_s, "ended_in_time": ended_in_time,
            "tasks": [task_record(task) for task in tasks],
            "agent_starts": agent_starts(ledger), "vm_hwm_mb": vm_hwm_mb(),
            "cpu_s": own.ru_utime + own.ru_stime,
            "children_cpu_s": children.ru_utime + children.ru_stime}


async def until_ready(engine: Any, started: float) -> float:
    """Seconds from the owner's start until it may dispatch: owner of its home and, on a
    cluster, connected with the nodes' slots counted (the remote supervisor connects on
    its first use; asking for the free slots is that use)."""
    supervisor = engine.supervisor
    deadline = time.monotonic() + READY_TIMEOUT_S
    while engine.role != "owner" or (supervisor.remote and not supervisor.slots_known):
        if supervisor.remote:
            supervisor.free_slots()
        if time.monotonic() > deadline:
            raise TimeoutError(f"the owner was not ready after {READY_TIMEOUT_S:g} s")
        await asyncio.sleep(0.05)
    return time.monotonic() - started


async def until_ended(engine: Any, count: int, terminal: Any, limit_s: float) -> bool:
    """Wait on the engine's store changes until ``count`` tasks ended; False after
    ``limit_s`` seconds."""
    seen = engine.changes.count
    try:
        async with asyncio.timeout(limit_s):
            while sum(n for state, n in engine.service.repo.count_by_status().items()
                      if state in terminal) < count:
                seen = await engine.changes.wait(seen)
    except TimeoutError:
        return False
    return True


def task_record(task: Any) -> dict[str, Any]:
    return {"id": task.id, "prompt": task.prompt, "status": str(task.status),
            "error": task.error, "node": task.node, "created_at": task.created_at,
            "started_at": task.started_at, "ended_at": task.ended_at}


def agent_starts(ledger: Path) -> dict[str, list[float]]:
    """When each agent started, by prompt (the fake agent's ledger, one line per run)."""
    starts: dict[str, list[float]] = {}
    if ledger.exists():
        for line in ledger.read_text().splitlines():
            record = json.loads(line)
            if record["event"] == "start":
                starts.setdefault(record["marker"], []).append(record["time"])
    return starts


def vm_hwm_mb() -> float:
    """This process's peak RSS as the kernel kept it."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


# -- through the engine: the parent that runs owners and sums up ---------------------------


class Cluster:
    """The local Ray cluster for the Ray runs, with names for its nodes."""

    def __init__(self, tmp: Path, slots: int) -> None:
        from ray_cluster import LocalRayCluster

        self.local = LocalRayCluster(tmp, slots_per_node=slots)

    def __enter__(self) -> Cluster:
        began = time.monotonic()
        self.local.__enter__()
        self.start_s = time.monotonic() - began
        head = self.local.cluster.head_node.node_id
        workers = [node.node_id for node in self.local.workers]
        self.names = {head: "head", **{node: f"worker{n}" for n, node in
                                       enumerate(workers, start=1)}}
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.local.__exit__(*exc_info)


def run_owner(backend: str, args: argparse.Namespace, run_root: Path,
              cluster: Cluster) -> dict[str, Any]:
    """One owner process: its figures, with its RSS and the cluster's CPU sampled from
    here meanwhile."""
    run_root.mkdir(parents=True)
    argv = [sys.executable, __file__, "--owner", backend, "--root", str(run_root),
            "--tasks", str(args.tasks), "--slots", str(args.slots),
            "--timeout", str(args.timeout), "--agent-seconds", str(args.agent_seconds),
            "--address", cluster.local.address, "--namespace", cluster.local.namespace]
    log_path = run_root / "owner.log"
    me = psutil.Process()
    sampling_before = sum(me.cpu_times()[:2])
    with open(log_path, "wb") as log, open(run_root / "figures.json", "wb") as out:
        owner = subprocess.Popen(argv, stdout=out, stderr=log)
        sampled = sample_until_exit(owner, args.timeout + 2 * READY_TIMEOUT_S)
    if owner.returncode != 0:
        tail = log_path.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"the {backend} owner exited {owner.returncode}:\n{tail}")
    raw = json.loads((run_root / "figures.json").read_text())
    raw.update(sampled, sampling_cpu_s=sum(me.cpu_times()[:2]) - sampling_before)
    # Locally the agents are the owner's children (the idle cluster's CPU meanwhile is
    # no cost of the local backend, printed apart); on Ray they run in the cluster.
    raw["elsewhere_cpu_s"] = raw["children_cpu_s"] + (
        raw["cluster_cpu_s"] if backend == "ray" else 0.0)
    return summarize(raw, backend, cluster.names)


def sample_until_exit(owner: subprocess.Popen[bytes], limit_s: float) -> dict[str, Any]:
    """Until ``owner`` exits: its peak RSS (MB), the load averages seen, and the CPU the
    cluster's processes used meanwhile (see :class:`ClusterCpu`)."""
    process = psutil.Process(owner.pid)
    cpu = ClusterCpu(exclude=owner.pid)
    peak, loads = 0.0, []
    deadline = time.monotonic() + limit_s
    while owner.poll() is None:
        if time.monotonic() > deadline:
            owner.kill()
            owner.wait()
            raise RuntimeError(f"the owner did not exit within {limit_s:g} s")
        try:
            peak = max(peak, process.memory_info().rss / 2**20)
        except psutil.NoSuchProcess:
            break
        loads.append(os.getloadavg()[0])
        if len(loads) % CPU_SCAN_EVERY == 0:
            cpu.scan()
        time.sleep(SAMPLE_EVERY_S)
    owner.wait()
    cpu.scan()
    return {"peak_rss_mb": peak, "loads": loads, "cluster_cpu_s": cpu.used_s()}


class ClusterCpu:
    """CPU seconds used by this process's descendants (the cluster: GCS, raylets, a Ray
    worker per run, its wrapper and agent) since the first scan, the owner's process tree
    excepted; sampled, so a lower bound.

    Accounting flows up: a process that waits for a child adds the child's time to its
    own "children" time (``cutime``). Each process is therefore read as its own time plus
    its reaped children's, but only the *accounting roots*: this process's children, and
    the children of a parent that ignores SIGCHLD (a raylet does: its Ray workers vanish
    unaccounted when they exit). A Ray worker reaps its run's wrapper, which reaps the
    agent. What a root used between its last scan and its end is missed.
    """

    def __init__(self, exclude: int) -> None:
        self.me = os.getpid()
        self.exclude = exclude
        self.first: dict[tuple[int, int], float] = {}
        self.last: dict[tuple[int, int], float] = {}
        self._ignores_sigchld: dict[int, bool] = {}
        self.scan()
        self.first = dict(self.last)

    def scan(self) -> None:
        table = _proc_table()
        children: dict[int, list[int]] = {}
        for pid, (ppid, _, _) in table.items():
            children.setdefault(ppid, []).append(pid)
        stack = [pid for pid in children.get(self.me, []) if pid != self.exclude]
        while stack:
            pid = stack.pop()
            ppid, used, started = table[pid]
            if ppid == self.me or self._ignores(ppid):
                self.last[(pid, started)] = used
            stack.extend(children.get(pid, []))

    def used_s(self) -> float:
        return sum(used - self.first.get(key, 0.0) for key, used in self.last.items())

    def _ignores(self, pid: int) -> bool:
        if pid not in self._ignores_sigchld:
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                return False
            ignored = next(int(line.split()[1], 16) for line in status.splitlines()
                           if line.startswith("SigIgn:"))
            self._ignores_sigchld[pid] = bool(ignored & (1 << (signal.SIGCHLD - 1)))
        return self._ignores_sigchld[pid]


def _proc_table() -> dict[int, tuple[int, float, int]]:
    """Every process: its parent, its CPU seconds with its reaped children's, its start
    (clock ticks since boot, telling a reused pid apart). Read from /proc/PID/stat
    directly: psutil costs three times as much, every 0.1 s, on the measured machine."""
    table = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            data = Path(f"/proc/{name}/stat").read_bytes()
        except OSError:
            continue  # ended meanwhile
        fields = data[data.rindex(b")") + 2:].split()  # after "pid (comm) "
        # Fields 4, 14-17 and 22 of proc(5), counted from 1 with pid and comm.
        ticks = sum(int(fields[n]) for n in (11, 12, 13, 14))
        table[int(name)] = (int(fields[1]), ticks / CLOCK_TICKS, int(fields[19]))
    return table


def summarize(raw: dict[str, Any], backend: str, node_names: dict[str, str]) -> dict[str, Any]:
    """The figures of one run (numbers, for the table) and what is only printed."""
    tasks = raw["tasks"]
    starts = raw["agent_starts"]
    claimed = [t for t in tasks if t["started_at"] is not None]
    waits = [t["started_at"] - t["created_at"] for t in claimed]
    ups = [starts[marker(t["prompt"])][0] - t["started_at"] for t in claimed
           if marker(t["prompt"]) in starts]
    completed = [t for t in tasks if t["status"] == "completed"]
    ends = [t["ended_at"] for t in tasks if t["ended_at"] is not None]
    wall = max(ends) - min(t["created_at"] for t in tasks) if ends else float("nan")
    figures = {
        "ready s": raw["ready_s"],
        "delegated→running p50 ms": 1000 * percentile(waits, 50),
        "delegated→running p95 ms": 1000 * percentile(waits, 95),
        "running→agent up p50 ms": 1000 * percentile(ups, 50),
        "running→agent up p95 ms": 1000 * percentile(ups, 95),
        "tasks/s": len(completed) / wall,
        "first delegate→last end s": wall,
        "owner peak RSS MB": raw["peak_rss_mb"],
        "owner VmHWM MB": raw["vm_hwm_mb"],
        "owner CPU s": raw["cpu_s"],
        "agents/cluster CPU s": raw["elsewhere_cpu_s"],
        "not completed": float(len(tasks) - len(completed)),
        "agent re-runs": float(sum(len(times) - 1 for times in starts.values())),
        "load average, max": max(raw["loads"], default=float("nan")),
    }
    why = Counter(f"{t['status']}: {t['error'] or 'no error recorded'}" if t["ended_at"]
                  else f"not ended ({t['status']})" for t in tasks if t not in completed)
    # A task on Ray without a node never got one (its start failed).
    unplaced = "this machine" if backend == "local" else "no node"
    nodes = Counter(node_names.get(t["node"], t["node"]) if t["node"] else unplaced
                    for t in tasks)
    loads = raw["loads"] or [float("nan")]
    return {"figures": figures, "why": why, "nodes": nodes, "load": (min(loads), max(loads)),
            "cluster_cpu_s": raw["cluster_cpu_s"], "sampling_cpu_s": raw["sampling_cpu_s"]}


def marker(prompt: str) -> str:
    """The prompt as the fake agent's ledger names it: without its directives."""
    return prompt.split("[", 1)[0].strip()


def percentile(values: list[float], pct: int) -> float:
    """Interpolated between the two nearest ranks (as bench_console.py)."""
    if not values:
        return float("nan")
    if len(values) < 2:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[pct - 1]


def show_run(backend: str, repeat: int, run: dict[str, Any]) -> None:
    f = run["figures"]
    nodes = ", ".join(f"{name} {count}" for name, count in sorted(run["nodes"].items()))
    print(f"{backend:>5} #{repeat}: ready {f['ready s']:.1f} s; delegated→running p50 "
          f"{f['delegated→running p50 ms']:.0f} / p95 {f['delegated→running p95 ms']:.0f} ms;"
          f" running→agent up p50 {f['running→agent up p50 ms']:.0f} / p95 "
          f"{f['running→agent up p95 ms']:.0f} ms; {f['tasks/s']:.2f} tasks/s "
          f"({f['first delegate→last end s']:.1f} s)\n{'':9}owner peak RSS "
          f"{f['owner peak RSS MB']:.0f} MB (VmHWM {f['owner VmHWM MB']:.0f}), CPU "
          f"{f['owner CPU s']:.1f} s; agents/cluster CPU {f['agents/cluster CPU s']:.1f} s "
          f"(this bench's sampling: {run['sampling_cpu_s']:.1f} s); "
          f"not completed {f['not completed']:.0f}; agent re-runs "
          f"{f['agent re-runs']:.0f}; per node: {nodes}; load {run['load'][0]:.1f}-"
          f"{run['load'][1]:.1f}", flush=True)
    if backend == "local":
        print(f"{'':9}(the idle Ray cluster used {run['cluster_cpu_s']:.1f} s of CPU meanwhile, "
              "not counted above)", flush=True)
    for reason, count in run["why"].most_common():
        print(f"        {count} x {reason[:300]}", flush=True)


def _short(value: float) -> str:
    return f"{value:.2f}" if abs(value) < 10 else f"{value:.0f}"


def print_table(runs: dict[str, list[dict[str, Any]]]) -> None:
    """Each figure per backend: the median over the runs, with [min..max] when repeated."""
    repeated = len(runs[BACKENDS[0]]) > 1
    width = 24 if repeated else 10
    print(f"{'':28}" + "".join(f"{backend:>{width}}" for backend in BACKENDS))
    for name in runs[BACKENDS[0]][0]["figures"]:
        cells = []
        for backend in BACKENDS:
            values = [run["figures"][name] for run in runs[backend]]
            cell = _short(statistics.median(values))
            if repeated:
                cell += f" [{_short(min(values))}..{_short(max(values))}]"
            cells.append(f"{cell:>{width}}")
        print(f"{name:28}" + "".join(cells))


def leftovers(tmp: Path) -> list[str]:
    """Processes this bench left: its descendants, and any naming its temp dir."""
    me = psutil.Process()
    left = {p.pid: p for p in me.children(recursive=True)}
    for process in psutil.process_iter(["cmdline"]):
        if any(str(tmp) in word for word in process.info.get("cmdline") or []):
            left.setdefault(process.pid, process)
    lines = []
    for pid, process in sorted(left.items()):
        try:
            lines.append(f"{pid} {' '.join(process.cmdline())[:120]}")
        except psutil.Error:
            continue  # it ended meanwhile
    return lines


def engine_bench(args: argparse.Namespace) -> None:
    import ray

    tmp = Path(tempfile.mkdtemp(prefix="bench-ray-"))
    load_before = os.getloadavg()[0]
    work = f"working {args.agent_seconds:g} s" if args.agent_seconds else "instant"
    print(f"{args.tasks} {work} tasks through the engine, at most {3 * args.slots} at once "
          f"({args.slots} agent slots per node on Ray); {psutil.cpu_count()} cores, "
          f"{psutil.virtual_memory().total / 2**30:.0f} GiB, python "
          f"{platform.python_version()}, ray {ray.__version__}; load average "
          f"{load_before:.2f} before", flush=True)
    runs: dict[str, list[dict[str, Any]]] = {backend: [] for backend in BACKENDS}
    try:
        with Cluster(tmp / "ray", args.slots) as cluster:
            print(f"cluster of a head and two workers up in {cluster.start_s:.1f} s", flush=True)
            # Round by round, so a busy spell on the machine spreads over both backends.
            for repeat in range(1, args.repeat + 1):
                for backend in BACKENDS:
                    run = run_owner(backend, args, tmp / f"{backend}-{repeat}", cluster)
                    show_run(backend, repeat, run)
                    runs[backend].append(run)
    finally:
        left = leftovers(tmp)
        shutil.rmtree(tmp, ignore_errors=True)
    repeats = f"median [min..max] of {args.repeat} runs" if args.repeat > 1 else "one run"
    print(f"\n{args.tasks} tasks, {3 * args.slots} at once, {repeats}; load average "
          f"before/after: {load_before:.2f} / {os.getloadavg()[0]:.2f}")
    print_table(runs)
    print("processes left behind: " + ("none" if not left else "\n  " + "\n  ".join(left)))


# -- at the backend level ------------------------------------------------------------------


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


def backend_bench(args: argparse.Namespace) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bench-ray-"))
    print(f"{args.tasks} instant agents at the backend level, {args.slots} per node at once, "
          f"load average {os.getloadavg()[0]:.1f} at start", flush=True)
    from ray_cluster import LocalRayCluster

    try:  # a run that fails must not leave its folders behind either
        local = LocalBackend(tmp / "local-runs", kill_grace_s=1.0)
        show("local", run_all(local, args.tasks, 3 * args.slots, [None]))
        with LocalRayCluster(tmp / "ray", slots_per_node=args.slots) as cluster:
            backend = cluster.backend(tmp / "ray-runs", 1.0)
            nodes = [cluster.cluster.head_node.node_id,
                     *[n.node_id for n in cluster.workers]]
            show("ray", run_all(backend, args.tasks, 3 * args.slots, nodes))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=100, help="instant tasks (or runs)")
    parser.add_argument("--slots", type=int, default=6,
                        help="agent slots per node; both backends run 3 x slots at once")
    parser.add_argument("--repeat", type=int, default=1,
                        help="runs per backend; each figure is the median over them")
    parser.add_argument("--timeout", type=float, default=600.0,
                        help="seconds an owner waits for its tasks to end")
    parser.add_argument("--agent-seconds", type=float, default=0.0,
                        help="each agent works (sleeps) this long instead of ending at once")
    parser.add_argument("--backend-level", action="store_true",
                        help="measure the backends' start() alone, without the engine")
    # Internal: one owner process, started by the engine mode.
    parser.add_argument("--owner", choices=BACKENDS, help=argparse.SUPPRESS)
    parser.add_argument("--root", help=argparse.SUPPRESS)
    parser.add_argument("--address", help=argparse.SUPPRESS)
    parser.add_argument("--namespace", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.owner:
        print(json.dumps(asyncio.run(owner_run(args))))
    elif args.backend_level:
        backend_bench(args)
    else:
        engine_bench(args)


if __name__ == "__main__":
    main()
