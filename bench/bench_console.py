#!/usr/bin/env python3
"""Console responsiveness under load: key-to-screen latency and the console's CPU use.

    python bench/bench_console.py [--agents 50] [--seconds 10]

Starts the real console (in-process, headless, 120x36) owning a temporary home, with N fake
agents each printing a few hundred stream-json lines a second. Then it presses keys that move
the selection (the table cursor and the log pane must follow) and measures the time from the
key press to the screen being updated, while sampling this process's CPU (the console *is*
the owner here: engine, table diff, log pane). Prints the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from engine_helpers import agent_env, make_config  # noqa: E402

from claudine_core.engine import Engine  # noqa: E402
from claudine_core.models import TaskSpec  # noqa: E402
from claudine_tui.app import ClaudineApp  # noqa: E402

LINE = "[text:flood line lorem ipsum]"
BURST, PAUSE = 50, 0.2  # 50 lines then 0.2 s: ~250 lines/s per agent


def flood_prompt(blocks: int) -> str:
    return f"bench agent {(LINE * BURST + f'[sleep:{PAUSE}]') * blocks}"


async def until(pilot, condition, limit_s: float) -> None:
    deadline = time.monotonic() + limit_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not reached")
        await pilot.pause(0.01)


async def probe(pilot, app: ClaudineApp, key: str) -> float:
    """Seconds from pressing ``key`` to the new row highlighted and its log pane refilled."""
    before = app.table.cursor_row
    start = time.perf_counter()
    await pilot.press(key)
    await until(pilot, lambda: app.table.cursor_row != before
                and app.pane.task_id == app.table.selected_id, 5)
    await pilot.pause()  # the refresh that puts it on screen
    return time.perf_counter() - start


async def run(agents: int, seconds: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="claudine-bench-") as tmp:
        home = Path(tmp) / "home"
        engine = Engine(make_config(home), kind="console", env=agent_env())
        for _ in range(agents):
            engine.delegate(TaskSpec(flood_prompt(blocks=60), cwd=tmp))
        app = ClaudineApp(engine)
        async with app.run_test(size=(120, 36)) as pilot:
            await until(pilot, lambda: app.last_snapshot is not None
                        and app.last_snapshot.running == agents, 60)
            await pilot.pause(1.0)
            me = psutil.Process()
            me.cpu_percent()
            running = app.last_snapshot.running if app.last_snapshot else 0
            output_before = _output_bytes(home)
            latencies: list[float] = []
            start = time.monotonic()
            while time.monotonic() - start < seconds:
                key = "down" if len(latencies) % 10 < 5 else "up"
                latencies.append(await probe(pilot, app, key))
                await pilot.pause(0.1)
            elapsed = time.monotonic() - start
            cpu = me.cpu_percent()
            rate = (_output_bytes(home) - output_before) / elapsed
            await pilot.press("q", "s")
            await until(pilot, lambda: not app.is_running, 60)
    latencies.sort()
    return {
        "agents running at start": running,
        "agent output MB/s": rate / 1e6,
        "agent lines/s (approx)": rate / 330,
        "key presses": len(latencies),
        "latency median ms": statistics.median(latencies) * 1000,
        "latency p95 ms": latencies[int(len(latencies) * 0.95) - 1] * 1000,
        "latency max ms": latencies[-1] * 1000,
        "console CPU %": cpu,
        "cores": psutil.cpu_count() or 0,
    }


def _output_bytes(home: Path) -> int:
    return sum(p.stat().st_size for p in (home / "runs").rglob("stdout.jsonl"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=8.0)
    args = parser.parse_args()
    figures = asyncio.run(run(args.agents, args.seconds))
    for name, value in figures.items():
        print(f"{name:24} {value:10.1f}")


if __name__ == "__main__":
    main()
