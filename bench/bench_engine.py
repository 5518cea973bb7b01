"""Engine benchmark: prints figures, asserts nothing. Run: python bench/bench_engine.py

Measures, on a temporary home:
1. dispatch throughput and submit-to-running latency (p50/p99) with an instant agent,
   beside the cost of starting the same agent with bare ``subprocess``;
2. the engine's RSS with 100 running agents and 10,000 finished tasks in the store;
3. owner start-up time (lock, recovery, first snapshot) with 10,000 tasks stored.

``--watch`` measures instead how a process that does not own the home notices a change,
polling against ``watchfiles`` (inotify): a commit to the store from another connection
(polling ``PRAGMA data_version`` every 0.1 s, the engine's tick), and new lines in a run's
``stdout.jsonl`` (polling its size every 0.25 s, the console's log pane and
``logs --follow``). For each: the CPU of the watching process over an idle window, and the
delay from a write to its notice.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from engine_helpers import agent_env, make_config  # noqa: E402

from claudine_core.engine import Engine  # noqa: E402
from claudine_core.models import TaskSpec, TaskState  # noqa: E402

RESULT_LINE = (
    '{"type":"result","subtype":"success","is_error":false,"num_turns":1,'
    '"result":"ok","session_id":"bench","total_cost_usd":0}'
)
INSTANT_AGENT = f"""#!/bin/sh
echo '{{"type":"system","subtype":"init","session_id":"bench"}}'
echo '{RESULT_LINE}'
"""
SLEEPING_AGENT = """#!/bin/sh
echo '{"type":"system","subtype":"init","session_id":"bench"}'
exec sleep 600
"""


def write_agent(directory: Path, name: str, body: str) -> Path:
    path = directory / name
    path.write_text(body)
    path.chmod(0o755)
    return path


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


def bare_spawn_cost(agent: Path, count: int) -> float:
    started = time.perf_counter()
    for _ in range(count):
        subprocess.run([str(agent)], stdout=subprocess.DEVNULL, check=True)
    return (time.perf_counter() - started) / count


async def dispatch_throughput(root: Path, agent: Path, count: int) -> None:
    config = make_config(root / "home-throughput", claude_bin=str(agent))
    engine = Engine(config, env=agent_env(), tick_s=0.02)
    ids = [engine.service.delegate(TaskSpec(prompt=f"t{n}", cwd=str(root))).id
           for n in range(count)]
    started = time.perf_counter()
    await engine.start()
    while engine.service.repo.count_by_status().get(TaskState.COMPLETED, 0) < count:
        await asyncio.sleep(0.02)
    elapsed = time.perf_counter() - started
    await engine.stop()
    print(f"  {count} queued tasks run to completion in {elapsed:.2f}s: "
          f"{count / elapsed:.1f} tasks/s ({len(ids)} agents started)")


async def submit_latency(root: Path, agent: Path, count: int, rate: float) -> None:
    config = make_config(root / "home-latency", claude_bin=str(agent))
    engine = Engine(config, env=agent_env(), tick_s=0.1)
    await engine.start()
    ids = []
    for n in range(count):
        ids.append(engine.service.delegate(TaskSpec(prompt=f"t{n}", cwd=str(root))).id)
        await asyncio.sleep(1 / rate)
    while engine.service.repo.count_by_status().get(TaskState.COMPLETED, 0) < count:
        await asyncio.sleep(0.05)
    tasks = [engine.service.get(task_id) for task_id in ids]
    await engine.stop()
    latencies = [(t.started_at or 0) - t.created_at for t in tasks]
    print(f"  submit-to-running at {rate:g} submissions/s (in-process, tick 0.1s): "
          f"p50 {percentile(latencies, 50) * 1000:.0f} ms, "
          f"p99 {percentile(latencies, 99) * 1000:.0f} ms")


def store_finished_tasks(engine: Engine, count: int) -> None:
    now = time.time()
    rows = [
        {"id": f"task-{n:012x}", "prompt": f"finished task {n} " + "x" * 100, "priority": n % 3,
         "status": "completed", "cwd": "/tmp", "created_at": now - count + n,
         "updated_at": now - count + n, "started_at": now - count + n,
         "ended_at": now - count + n + 1, "exit_code": 0, "num_turns": 3, "cost_usd": 0.01}
        for n in range(count)
    ]
    task_row = engine.service.repo.TaskRow  # the engine's own store's table
    with engine.service.db.atomic():
        for start in range(0, count, 500):
            task_row.insert_many(rows[start:start + 500]).execute()


async def rss_with_running_agents(root: Path, agent: Path, running: int, finished: int) -> None:
    config = make_config(root / "home-rss", claude_bin=str(agent), kill_grace_s=0)
    engine = Engine(config, env=agent_env(), tick_s=0.1)
    store_finished_tasks(engine, finished)
    await engine.start()
    for n in range(running):
        engine.service.delegate(TaskSpec(prompt=f"r{n}", cwd=str(root)))
    while len(engine.supervisor.agents) < running:
        await asyncio.sleep(0.05)
    for _ in range(20):  # let the loop follow them for a couple of seconds
        engine.snapshot()
        await asyncio.sleep(0.1)
    rss = psutil.Process().memory_info().rss / 2**20
    cpu_before = psutil.Process().cpu_times()
    await asyncio.sleep(3)
    cpu_after = psutil.Process().cpu_times()
    busy = (cpu_after.user + cpu_after.system - cpu_before.user - cpu_before.system) / 3 * 100
    print(f"  engine RSS with {running} running agents and {finished:,} finished tasks: "
          f"{rss:.0f} MiB; engine CPU while following them: {busy:.1f}% of one core")
    await engine.stop(stop_agents=True)


async def owner_startup(root: Path, agent: Path, stored: int) -> None:
    config = make_config(root / "home-startup", claude_bin=str(agent))
    seed = Engine(config, env=agent_env())
    store_finished_tasks(seed, stored)
    seed.service.close()
    timings = []
    for _ in range(5):
        started = time.perf_counter()
        engine = Engine(config, env=agent_env())
        await engine.start()
        engine.snapshot()
        timings.append(time.perf_counter() - started)
        await engine.stop()
    print(f"  owner start-up with {stored:,} tasks stored (lock, recovery, first snapshot): "
          f"median {statistics.median(timings) * 1000:.0f} ms")


Watcher = Callable[[threading.Event, Callable[[], None]], None]


def poll_watcher(changed: Callable[[], bool], every_s: float) -> Watcher:
    def run(stop: threading.Event, notice: Callable[[], None]) -> None:
        changed()  # the baseline, on this thread's own connection
        while not stop.wait(every_s):
            if changed():
                notice()
    return run


def inotify_watcher(path: Path, changed: Callable[[], bool]) -> Watcher:
    import watchfiles

    def run(stop: threading.Event, notice: Callable[[], None]) -> None:
        changed()  # the baseline, on this thread's own connection
        # watchfiles' defaults: a batch is yielded once no event came for ``step`` ms.
        for _ in watchfiles.watch(path, stop_event=stop, recursive=False):
            if changed():
                notice()
    return run


def measure_watcher(watcher: Watcher, write: Callable[[], None], idle_s: float,
                    writes: int) -> tuple[float, float, float]:
    """(CPU % of a core while idle, median and max ms from a write to its notice)."""
    stop, noticed = threading.Event(), threading.Event()
    thread = threading.Thread(target=watcher, args=(stop, noticed.set), daemon=True)
    thread.start()
    time.sleep(0.3)  # the watch is set up
    me = psutil.Process()
    before = me.cpu_times()
    time.sleep(idle_s)
    after = me.cpu_times()
    idle_cpu = max(0.0, after.user + after.system - before.user - before.system) / idle_s * 100
    delays = []
    for _ in range(writes):
        noticed.clear()
        started = time.perf_counter()
        write()
        if noticed.wait(5):
            delays.append(time.perf_counter() - started)
        time.sleep(random.uniform(0.2, 0.5))  # writes at any phase of the poll
    stop.set()
    thread.join(5)
    return idle_cpu, statistics.median(delays) * 1000, max(delays) * 1000


def watch_figures(root: Path, idle_s: float, writes: int) -> None:
    """Polling against watchfiles, for the store and for a run's output file."""
    from claudine_core.service import TaskService

    try:
        import watchfiles  # noqa: F401 (only checked here: not a claudine dependency)
    except ImportError:
        sys.exit("--watch compares against watchfiles, which claudine does not depend on: "
                 "pip install watchfiles, then run it again")
    config = make_config(root / "home-watch")
    writer = TaskService(config, env=agent_env())  # "another process": its own connection
    reader = TaskService(config, env=agent_env())
    seen = [-1]

    def store_changed() -> bool:
        version = reader.repo.data_version()
        changed, seen[0] = version != seen[0], version
        return changed

    def commit() -> None:
        writer.delegate(TaskSpec(prompt="watched", cwd=str(root)))

    log = root / "stdout.jsonl"
    log.write_text("")
    size = [0]

    def log_grew() -> bool:
        now = log.stat().st_size
        grew, size[0] = now != size[0], now
        return grew

    def append() -> None:
        with log.open("a") as handle:
            handle.write('{"type":"assistant"}\n')

    cases = [
        ("store, poll data_version every 0.1 s", poll_watcher(store_changed, 0.1), commit),
        ("store, watchfiles on the home", inotify_watcher(config.home, store_changed), commit),
        ("run log, poll its size every 0.25 s", poll_watcher(log_grew, 0.25), append),
        ("run log, watchfiles on its folder", inotify_watcher(root, log_grew), append),
    ]
    print(f"noticing a change without owning the home ({idle_s:g} s idle, {writes} writes):")
    print(f"  {'':40}{'idle CPU %':>11}{'median ms':>11}{'max ms':>9}")
    for name, watcher, write in cases:
        cpu, median, worst = measure_watcher(watcher, write, idle_s, writes)
        print(f"  {name:40}{cpu:11.2f}{median:11.0f}{worst:9.0f}")
    writer.close()
    reader.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--running", type=int, default=100)
    parser.add_argument("--finished", type=int, default=10_000)
    parser.add_argument("--watch", action="store_true",
                        help="only the polling against watchfiles figures")
    args = parser.parse_args()
    if args.watch:
        with tempfile.TemporaryDirectory() as tmp:
            watch_figures(Path(tmp), idle_s=10, writes=20)
        return
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        instant = write_agent(root, "instant-agent", INSTANT_AGENT)
        sleeping = write_agent(root, "sleeping-agent", SLEEPING_AGENT)
        print(f"machine: {os.cpu_count()} cores, "
              f"{psutil.virtual_memory().total / 2**30:.0f} GiB; python {sys.version.split()[0]}")
        print("dispatch:")
        print(f"  bare subprocess.run of the instant agent: "
              f"{bare_spawn_cost(instant, 50) * 1000:.1f} ms per agent")
        await dispatch_throughput(root, instant, args.tasks)
        await submit_latency(root, instant, 100, rate=20)
        print("memory:")
        await rss_with_running_agents(root, sleeping, args.running, args.finished)
        print("start-up:")
        await owner_startup(root, instant, args.finished)


if __name__ == "__main__":
    asyncio.run(main())
