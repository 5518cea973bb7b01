#!/usr/bin/env python3
"""Console responsiveness under load: key-to-screen latency and the console's CPU use.

    python bench/bench_console.py [--agents 50] [--seconds 10]
                                  [--load flood,contention,idle] [--repeat N] [--check]
                                  [--agent-nice N] [--profile FILE]
    python bench/bench_console.py --idle-cpu [--running 20] [--finished 300] [--repeat 5]

Starts the real console (in-process, headless, 120x36) owning a temporary home, with N fake
agents. Then it presses keys that move the selection (the table cursor and the log pane
must follow) and measures the time from the key press to the first frame composed with the
new row highlighted and the pane following it, scrolled to its newest line, while sampling
this process's CPU (the console *is* the owner here: engine, table diff, log pane) and the
whole machine's. It also reports how late a 10 ms sleep on the event loop wakes (the
loop's stalls) and the frames composed per second.

Each load is one run on a fresh home:

- ``flood``: the console's agents each print about 250 stream-json lines a second (the
  figure that matters);
- ``contention``: the console's agents are alive but silent (a long Bash ``sleep``), and
  the same flood runs beside it from agents the console does not follow (started the
  way the supervisor starts them, wrapper and all): the same CPU pressure on the machine,
  none of the reading;
- ``idle``: silent agents only: the console's own floor.

The agents are Python processes too, so part of any figure under load could be plain CPU
contention: ``contention`` minus ``idle`` is that part, ``flood`` minus ``contention``
what following the output costs the console.

The key is posted as the terminal driver would post it, and the end is observed in
``App._display`` (where a frame goes to the terminal), so the figure holds no test-harness
waiting. Textual's ``Pilot.press`` and ``Pilot.pause()`` wait until the whole process is
idle for 20 ms, up to 1 s each (three times per key in the first version of this script):
under load that measures how busy the process is, not the key.

``--idle-cpu`` measures something else: the CPU an idle console costs, with nobody at the
keyboard and nothing changing, on a home holding ``--finished`` finished tasks and
``--running`` agents that sleep (the console owns them). It prints the median and the
range over the repeats: what a console left open in a tmux window costs all day.

``--repeat N`` runs each load N times (round by round: flood, contention, idle, then
again) and prints the median of each figure with its [min..max] spread: other work on the
machine comes and goes, so one run proves little and the best run proves nothing. The
first line gives the 1-minute load average before and after; figures taken while other
work runs are noisy. ``--check`` exits 1, with a line per load that missed, when the
median key→frame p99 misses the goal for the load (:data:`GOALS_MS`: flood 100 ms, idle
50 ms, on a 2-core machine). A script to run by hand: no test times anything.
``--agent-nice N`` runs the agents at that ``agent_nice`` (default: the setting's default,
10); ``--agent-nice 0`` shows what the console suffers when agents compete with it equally.
``--profile FILE`` runs cProfile over the measured window of the first run (the event loop
thread) and prints the top functions to stderr.

Percentiles interpolate between the two nearest ranks of the run's key presses (about 50
in 10 s): p99 lies between the second slowest key and the slowest, so it meets a goal
only when at most one key misses it, and that one not by much.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import os
import pstats
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

# First: the console sets its frame rate before Textual loads (claudine_tui/app.py), and
# the bench measures the console as it runs.
from claudine_tui.app import ClaudineApp  # noqa: E402

# isort: split
from engine_helpers import FAKE_CLAUDE, agent_env, make_config  # noqa: E402
from textual import events  # noqa: E402

from claudine_core.config import Config  # noqa: E402
from claudine_core.engine import Engine  # noqa: E402
from claudine_core.models import TaskSpec, TaskState  # noqa: E402
from claudine_core.supervisor import WRAPPER, signal_group  # noqa: E402

LINE = "[text:flood]"  # one ~500-byte assistant line
BURST, PAUSE = 50, 0.2  # 50 lines then 0.2 s: ~250 lines/s per agent
BLOCK = LINE * BURST + f"[sleep:{PAUSE}]"
PROMPT_LIMIT = 99_000  # the engine refuses prompts over 100,000 characters
LOADS = ("flood", "contention", "idle")
KEY_P99 = "key→frame p99 ms"
# The goals for a 2-core machine: p99 of key→frame, median over the runs.
# (contention has none of its own: it tells plain CPU pressure from following the output.)
GOALS_MS = {"flood": 100.0, "idle": 50.0}


def flood_prompt(seconds: float) -> str:
    """Enough blocks to keep printing through the window (and the start-up before it)."""
    blocks = min(int((seconds + 20) / PAUSE), PROMPT_LIMIT // len(BLOCK))
    return f"bench agent {BLOCK * blocks}"


def idle_prompt() -> str:
    return "bench agent [sleep:600]"


async def until(condition: Any, limit_s: float) -> None:
    deadline = time.monotonic() + limit_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not reached")
        await asyncio.sleep(0.02)


class FrameWatch:
    """Stamps the first frame the app composes after a condition starts to hold."""

    def __init__(self, app: ClaudineApp) -> None:
        self.app = app
        self.condition: Any = None
        self.seen = asyncio.Event()
        self.frames = 0
        original = app._display

        def display(screen: Any, renderable: Any) -> None:
            original(screen, renderable)
            if renderable is None:
                return
            self.frames += 1
            # A real terminal also turns the update into escape sequences: count that work.
            render = getattr(renderable, "render_segments", None)
            if render is not None:
                render(app.console)
            if self.condition is not None and self.condition():
                self.condition = None
                self.seen.set()

        app._display = display  # type: ignore[method-assign]

    async def key_to_frame(self, key: str) -> float:
        """Seconds from posting ``key`` to the frame showing the new row and its log's end."""
        app = self.app
        before = app.table.cursor_row
        self.seen.clear()
        log = app.pane.log_widget

        def shown() -> bool:
            # The new row highlighted, the pane on its task and scrolled to the newest line.
            return (app.table.cursor_row != before
                    and app.pane.task_id == app.table.selected_id
                    and log.scroll_offset.y >= log.max_scroll_y)

        self.condition = shown
        start = time.perf_counter()
        assert app._driver is not None
        app._driver.send_message(events.Key(key, None))
        await asyncio.wait_for(self.seen.wait(), 5)
        return time.perf_counter() - start


class LoopLag:
    """How late a 10 ms sleep on the event loop wakes: the loop's own stalls."""

    def __init__(self) -> None:
        self.lags: list[float] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            start = time.perf_counter()
            await asyncio.sleep(0.01)
            self.lags.append(time.perf_counter() - start - 0.01)

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()


def _output(root: Path) -> dict[Path, int]:
    return {p: p.stat().st_size for p in root.rglob("stdout.jsonl")}


def start_unfollowed(root: Path, agents: int, seconds: float,
                     nice: int) -> list[subprocess.Popen[bytes]]:
    """Flooding agents under the wrapper, as the supervisor starts them (at ``nice``),
    that no engine reads."""
    processes = []
    for n in range(agents):
        run_dir = root / f"agent-{n}"
        run_dir.mkdir(parents=True)
        argv = [str(FAKE_CLAUDE), "-p", flood_prompt(seconds), "--output-format", "stream-json",
                "--verbose", "--dangerously-skip-permissions"]
        processes.append(subprocess.Popen(
            [sys.executable, "-I", str(WRAPPER), str(run_dir), str(10 * 1024 * 1024),
             "--nice", str(nice), "--", *argv],
            cwd=root, env=agent_env(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True,
        ))
    return processes


def stop_unfollowed(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        signal_group(process.pid, signal.SIGKILL)
    for process in processes:
        process.wait()


def _lines_between(before: dict[Path, int], after: dict[Path, int]) -> int:
    lines = 0
    for path, size in after.items():
        with open(path, "rb") as handle:
            handle.seek(before.get(path, 0))
            lines += handle.read(size - before.get(path, 0)).count(b"\n")
    return lines


async def run(load: str, agents: int, seconds: float, profile: str | None,
              nice: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="claudine-bench-") as tmp:
        home = Path(tmp) / "home"
        engine = Engine(make_config(home, agent_nice=nice), kind="console", env=agent_env())
        for _ in range(agents):
            prompt = flood_prompt(seconds) if load == "flood" else idle_prompt()
            engine.service.delegate(TaskSpec(prompt, cwd=tmp))
        contention = load == "contention"
        beside = (start_unfollowed(Path(tmp) / "beside", agents, seconds, nice)
                  if contention else [])
        try:
            return await measure(ClaudineApp(engine), Path(tmp), seconds, agents, profile)
        finally:
            stop_unfollowed(beside)


async def measure(
    app: ClaudineApp, tmp: Path, seconds: float, agents: int, profile: str | None
) -> dict[str, float]:
    async with app.run_test(size=(120, 36)) as pilot:
        await until(lambda: app.last_snapshot is not None
                    and app.last_snapshot.running == agents, 60)
        await pilot.pause(1.5)
        watch = FrameWatch(app)
        lag = LoopLag()
        me = psutil.Process()
        me.cpu_percent()
        machine_before = _busy_seconds()
        running = app.last_snapshot.running if app.last_snapshot else 0
        output_before = _output(tmp)
        profiler = cProfile.Profile() if profile else None
        latencies: list[float] = []
        lag.start()
        if profiler:
            profiler.enable()
        start = time.monotonic()
        while time.monotonic() - start < seconds:
            key = "down" if len(latencies) % 10 < 5 else "up"
            latencies.append(await watch.key_to_frame(key))
            await asyncio.sleep(0.15)
        elapsed = time.monotonic() - start
        if profiler:
            profiler.disable()
        lag.stop()
        cpu = me.cpu_percent()
        machine = (_busy_seconds() - machine_before) / elapsed * 100  # % of one core
        output_after = _output(tmp)
        await pilot.press("q", "s")
        await until(lambda: not app.is_running, 60)
    written = sum(output_after.values()) - sum(output_before.values())
    lines = _lines_between(output_before, output_after)
    if profiler and profile:
        profiler.dump_stats(profile)
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out).strip_dirs()
        stats.sort_stats("tottime").print_stats(25)
        stats.sort_stats("cumulative").print_stats(40)
        print(out.getvalue(), file=sys.stderr)
    latencies.sort()
    lag.lags.sort()
    return {
        "agents running": running,
        "agent output MB/s": written / elapsed / 1e6,
        "agent lines/s": lines / elapsed,
        "key presses": len(latencies),
        "key→frame median ms": statistics.median(latencies) * 1000,
        "key→frame p95 ms": _percentile(latencies, 95) * 1000,
        KEY_P99: _percentile(latencies, 99) * 1000,
        "key→frame max ms": latencies[-1] * 1000,
        "loop lag median ms": statistics.median(lag.lags) * 1000,
        "loop lag p95 ms": _percentile(lag.lags, 95) * 1000,
        "frames/s": watch.frames / elapsed,
        "console CPU % of a core": cpu,
        "rest of machine, % of a core": max(0.0, machine - cpu),
    }


def seed_finished(engine: Engine, count: int, cwd: str) -> None:
    """``count`` completed tasks, written straight to the store: no agent needs to run."""
    repo = engine.service.repo
    for n in range(count):
        task = repo.insert(TaskSpec(f"finished task {n}", cwd=cwd, worktree=False), cwd=cwd)
        repo.transition(task.id, [TaskState.QUEUED], status=TaskState.COMPLETED,
                        started_at=task.created_at, ended_at=task.created_at + 1,
                        result="done", num_turns=1, cost_usd=0.01)


async def run_idle(running: int, finished: int, seconds: float) -> float:
    """CPU (% of a core) of an idle console owning ``running`` sleeping agents."""
    with tempfile.TemporaryDirectory(prefix="claudine-bench-") as tmp:
        engine = Engine(make_config(Path(tmp) / "home"), kind="console", env=agent_env())
        seed_finished(engine, finished, tmp)
        for _ in range(running):
            engine.service.delegate(TaskSpec(idle_prompt(), cwd=tmp))
        app = ClaudineApp(engine)
        async with app.run_test(size=(120, 36)) as pilot:
            await until(lambda: app.last_snapshot is not None
                        and app.last_snapshot.running == running, 60)
            await pilot.pause(1.5)  # the agents' start-up output is read and summarised
            me = psutil.Process()
            before = me.cpu_times()
            start = time.monotonic()
            await asyncio.sleep(seconds)
            after = me.cpu_times()
            elapsed = time.monotonic() - start
            await pilot.press("q", "s")
            await until(lambda: not app.is_running, 60)
    used = (after.user - before.user) + (after.system - before.system)
    return used / elapsed * 100


def idle_cpu(args: argparse.Namespace) -> None:
    figures = [asyncio.run(run_idle(args.running, args.finished, args.seconds))
               for _ in range(args.repeat)]
    print(f"idle console, {args.running} agents running (asleep), {args.finished} finished, "
          f"{args.seconds:g} s per run, {args.repeat} runs, {psutil.cpu_count()} cores")
    print(f"console CPU % of a core: median {statistics.median(figures):.1f}, "
          f"range {min(figures):.1f}-{max(figures):.1f} "
          f"(runs: {', '.join(f'{f:.1f}' for f in figures)})")


def _load_average() -> str:
    """The machine's 1-minute load average: figures taken above about 1 are noisy."""
    return f"{os.getloadavg()[0]:.2f}"


def _busy_seconds() -> float:
    # Not psutil.cpu_percent(): the engine's resource monitor calls it too, which resets
    # the interval it measures.
    times = psutil.cpu_times()
    return sum(times) - times.idle - getattr(times, "iowait", 0.0)


def _percentile(values: list[float], percent: int) -> float:
    """The ``percent`` th percentile, interpolated between the two nearest ranks (numpy's
    default): with 50 keys, p99 lies between the second slowest and the slowest."""
    if len(values) < 2:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[percent - 1]


def missed_goals(medians: dict[str, dict[str, float]]) -> list[str]:
    """A line per load whose median key→frame p99 is over its goal (see GOALS_MS)."""
    return [f"{load}: key→frame p99 {figures[KEY_P99]:.0f} ms, over the goal of "
            f"{GOALS_MS[load]:.0f} ms" for load, figures in medians.items()
            if load in GOALS_MS and figures[KEY_P99] > GOALS_MS[load]]


def _short(value: float) -> str:
    return f"{value:.1f}" if abs(value) < 10 else f"{value:.0f}"


def print_table(loads: list[str], runs: dict[str, list[dict[str, float]]]) -> None:
    """Each figure per load: the median over the runs, with [min..max] when repeated."""
    width = 24 if len(runs[loads[0]]) > 1 else 11
    print(f"{'':30}" + "".join(f"{load:>{width}}" for load in loads))
    for name in runs[loads[0]][0]:
        cells = []
        for load in loads:
            values = [r[name] for r in runs[load]]
            cell = f"{statistics.median(values):.1f}"
            if len(values) > 1:
                cell += f" [{_short(min(values))}..{_short(max(values))}]"
            cells.append(f"{cell:>{width}}")
        print(f"{name:30}" + "".join(cells))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--load", default=",".join(LOADS),
                        help=f"comma-separated loads to run, of {', '.join(LOADS)} (default all)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="runs per load; each figure is the median over them")
    parser.add_argument("--check", action="store_true",
                        help="exit 1, saying which, when a load's median key→frame p99 "
                             "misses its goal (" + ", ".join(
                                 f"{load} {goal:.0f} ms" for load, goal in GOALS_MS.items())
                             + ")")
    parser.add_argument("--agent-nice", type=int, default=Config().agent_nice,
                        help="the agents' agent_nice setting (default: the setting's "
                             "default; 0 to compare with agents competing equally)")
    parser.add_argument("--profile", metavar="FILE",
                        help="cProfile the first load's measured window into FILE")
    parser.add_argument("--idle-cpu", action="store_true",
                        help="measure an idle console's CPU instead of key latency")
    parser.add_argument("--running", type=int, default=20,
                        help="--idle-cpu: sleeping agents the console owns")
    parser.add_argument("--finished", type=int, default=300,
                        help="--idle-cpu: finished tasks in the store")
    args = parser.parse_args()
    if args.idle_cpu:
        idle_cpu(args)
        return
    load_before = _load_average()
    loads = [load.strip() for load in args.load.split(",") if load.strip()]
    unknown = set(loads) - set(LOADS)
    if unknown:
        parser.error(f"unknown load {', '.join(sorted(unknown))}: use {', '.join(LOADS)}")
    runs: dict[str, list[dict[str, float]]] = {load: [] for load in loads}
    # Round by round (each load once per round), so a busy spell on the machine spreads
    # over the loads instead of landing on one of them.
    for repeat in range(args.repeat):
        for index, load in enumerate(loads):
            profile = args.profile if index == 0 and repeat == 0 else None
            runs[load].append(asyncio.run(run(load, args.agents, args.seconds, profile,
                                              args.agent_nice)))
    repeats = (f", median [min..max] of {args.repeat} runs" if args.repeat > 1 else "")
    print(f"{args.agents} agents at agent_nice {args.agent_nice}, {psutil.cpu_count()} cores, "
          f"{args.seconds:g} s per load{repeats}; load average before/after: {load_before} / "
          f"{_load_average()}")
    print_table(loads, runs)
    if args.check:
        medians = {load: {name: statistics.median(r[name] for r in load_runs)
                          for name in load_runs[0]} for load, load_runs in runs.items()}
        missed = missed_goals(medians)
        for line in missed:
            print(f"MISSED {line}")
        if missed:
            sys.exit(1)
        print("goals met: " + ", ".join(f"{load} p99 <= {GOALS_MS[load]:.0f} ms"
                                        for load in loads if load in GOALS_MS))


if __name__ == "__main__":
    main()
