#!/usr/bin/env python3
"""Drive the real console (real engine, fake `claude` agent, temporary home) and save SVGs.

    python scripts/screenshots.py [--out screenshots]

Writes console.svg (120x36, busy), console-log.svg (a failed task's log), new-task.svg
(the form with a validation error), narrow.svg (80x24), wide.svg (180x44), review.svg
(the diff review of a worktree task, on a git repository made for it), schedules.svg
(the schedules view, S), message.svg (the message box, m), narrow-search.svg (80x24:
`/` in the log pane, a hit of a search of the whole log) and paused.svg (a home of its
own, paused by a usage limit two agents hit: the limits line under the gauges, the parked
rows, a daily budget). PNGs are written too when ``rsvg-convert`` is installed.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from engine_helpers import agent_env, make_config  # noqa: E402
from git_helpers import make_repo  # noqa: E402
from textual.widgets import Input  # noqa: E402

from claudine_core.engine import Engine  # noqa: E402
from claudine_core.models import Priority, TaskSpec, TaskState  # noqa: E402
from claudine_tui.app import ClaudineApp  # noqa: E402

TASKS = [
    ("Write the changelog for 2.3", "[text:Reading the git log.] [tool:Read] [text:Done.]",
     Priority.P2),
    ("Fix the flaky migration test", "[tool-error:Bash] [api-retry:1] [fail]", Priority.P1),
    ("Add pagination to GET /users", "[tool:Read] [tool:Edit] [sleep:60]", Priority.P1),
    ("Profile the search endpoint", "[text:Profiling.] [tool:Bash] [sleep:60]", Priority.P2),
    ("Translate the README to French", "[text:Bonjour.] [sleep:60]", Priority.P2),
    ("Upgrade Django to 5.2", "[sleep:60]", Priority.P0),
    ("Write tests for the CSV exporter", "[sleep:60]", Priority.P2),
]
# (prompt, schedule settings, paused): none is due while the shots are taken.
SCHEDULES = [
    ("Nightly: run the full test suite and list the flaky tests",
     {"cron": "30 2 * * 1-5", "timezone": "Europe/Amsterdam", "max_runs": 60}, False),
    ("Weekly: upgrade the dependencies and run the tests",
     {"cron": "0 9 * * 1", "timezone": "America/New_York", "missed_run_policy": "catchup"},
     True),
    ("Draft the 2.3 release notes from the merged pull requests",
     {"run_at": time.time() + 2 * 86_400, "timezone": "UTC"}, False),
]
# The paused shot's own home: two agents hit the subscription's usage limit (the fake
# agent's, resetting in 38 minutes), one finished first, one waits for the reset.
PAUSED_TASKS = [
    # It ends after the others are parked: its slot is then held by the pause.
    ("Write the changelog for 2.3", "[text:Reading the git log.] [cost:0.61] [tool:Read] "
     "[sleep:7] [text:Done.]", Priority.P2),
    # Both run a few seconds, so both have started before the first hits the limit (the
    # pause then holds the rest of the queue).
    ("Migrate the settings page to the new forms API", "[tool:Read] [cost:0.31] [sleep:4] "
     "[usage-limit:2280]", Priority.P1),
    ("Split the orders service into read and write paths", "[tool:Grep] [cost:0.31] "
     "[sleep:4] [usage-limit:2280]", Priority.P1),
    ("Upgrade Django to 5.2", "[sleep:60]", Priority.P2),
]
PAUSED_BUDGET_USD = 5.0
# Runs in its own worktree of a small repository; kept on its branch for review.
REVIEW_TASK = ("Document the pagination of GET /users",
               "[write:README.md=# api\\n\\nGET /users?page=2&size=50 returns the second page "
               "of users.\\n] [write:CHANGELOG.md=## 2.3\\n\\n- GET /users is paginated "
               "(page, size).\\n] [text:Documented the page and size parameters.]")


async def _until(pilot, condition, limit_s: float = 30.0) -> None:
    deadline = time.monotonic() + limit_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the console did not reach the expected state")
        await pilot.pause(0.05)


async def shoot_paused(out: Path, home: Path, work: Path) -> Path:
    """paused.svg: the console of a home a usage limit paused, a parked task selected."""
    engine = Engine(make_config(home, max_agents=3, daily_budget_usd=PAUSED_BUDGET_USD),
                    kind="console", env=agent_env(), tick_s=0.05)
    for title, script, priority in PAUSED_TASKS:
        engine.service.delegate(TaskSpec(f"{title} {script}", cwd=str(work), priority=priority))
    app = ClaudineApp(engine)
    async with app.run_test(size=(120, 36)) as pilot:
        await _until(pilot, lambda: app.engine_started and app.last_snapshot is not None
                     and app.last_snapshot.parked == 2 and app.last_snapshot.pause is not None
                     and app.last_snapshot.running == 0 and app.last_snapshot.queued == 1
                     and app.last_snapshot.waiting_reason is not None)
        parked = next(t for t in app.table.tasks.values() if t.status is TaskState.PARKED)
        app.table.move_cursor(row=app.table.get_row_index(parked.id))
        await _until(pilot, lambda: app.pane.lines_written >= 3)
        await pilot.pause(1.0)  # a few resource samples
        path = Path(app.save_screenshot(filename="paused.svg", path=str(out)))
        await pilot.press("q")
        if app.screen.__class__.__name__ == "QuitScreen":
            await pilot.press("s")
    return path


async def shoot(out: Path, home: Path, work: Path, size: tuple[int, int], name: str,
                mode: str) -> Path:
    engine = Engine(make_config(home, max_agents=3), kind="console", env=agent_env(),
                    tick_s=0.05)
    app = ClaudineApp(engine)
    async with app.run_test(size=size) as pilot:
        await _until(pilot, lambda: app.engine_started
                     and app.table.row_count == len(TASKS) + 1)
        await _until(pilot, lambda: app.last_snapshot is not None
                     and app.last_snapshot.running == 3)
        await pilot.pause(1.0)  # let a few resource samples and log lines arrive
        if mode == "log":
            failed = next(t for t in app.table.tasks.values() if t.status is TaskState.FAILED)
            app.table.move_cursor(row=app.table.get_row_index(failed.id))
            await _until(pilot, lambda: app.pane.lines_written >= 4)
        elif mode == "review":
            task = next(t for t in app.table.tasks.values() if t.branch)
            await _until(pilot, lambda: (engine.service.get(task.id).merge or {}).get("status")
                         == "kept")
            app.table.move_cursor(row=app.table.get_row_index(task.id))
            await pilot.press("d")
            await _until(pilot, lambda: getattr(app.screen, "loaded", False))
        elif mode == "search":
            done = next(t for t in app.table.tasks.values()
                        if t.status is TaskState.COMPLETED and not t.branch)
            app.table.move_cursor(row=app.table.get_row_index(done.id))
            await _until(pilot, lambda: app.pane.lines_written >= 4)
            app.pane.log_widget.focus()
            await pilot.press("slash", *"git log", "enter")
            await _until(pilot, lambda: "hit 1 of" in app.pane.search.status_text)
        elif mode == "schedules":
            await pilot.press("S")
            await _until(pilot, lambda: app.screen.query_one("#schedules").row_count
                         == len(SCHEDULES))
        elif mode == "message":
            running = next(t for t in app.table.tasks.values()
                           if t.status is TaskState.RUNNING)
            app.table.move_cursor(row=app.table.get_row_index(running.id))
            await pilot.press("m", *"also update the changelog")
            await _until(pilot, lambda: app.screen.__class__.__name__ == "MessageScreen")
        elif mode == "form":
            await pilot.press("n")
            app.screen.query_one("#field-cwd", Input).value = str(work)
            app.screen.query_one("#field-timeout", Input).value = "ten minutes"
            await pilot.press("ctrl+s")
        await pilot.pause(0.3)
        path = Path(app.save_screenshot(filename=f"{name}.svg", path=str(out)))
        if mode in ("form", "review", "schedules", "search", "message"):
            await pilot.press("escape")
        await pilot.press("q")
        if app.screen.__class__.__name__ == "QuitScreen":
            await pilot.press("l")  # the next shot's console adopts the agents
    return path


async def main(out: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="claudine-shots-") as tmp:
        home, work = Path(tmp) / "home", Path(tmp) / "work"
        work.mkdir()
        seed = Engine(make_config(home, max_agents=3), kind="console", env=agent_env())
        for title, script, priority in TASKS:
            seed.service.delegate(TaskSpec(f"{title} {script}", cwd=str(work), priority=priority))
        repo = make_repo(work / "api")
        seed.service.delegate(TaskSpec(" ".join(REVIEW_TASK), cwd=str(repo), priority=Priority.P0,
                               worktree=True))
        for prompt, timing, paused in SCHEDULES:
            schedule = seed.service.schedules.create(TaskSpec(prompt, cwd=str(work)), **timing)
            if paused:
                seed.service.schedules.pause(schedule.id)
        seed.service.close()
        shots = [((120, 36), "console", "busy"), ((120, 36), "console-log", "log"),
                 ((120, 36), "new-task", "form"), ((80, 24), "narrow", "busy"),
                 ((180, 44), "wide", "log"), ((120, 36), "review", "review"),
                 ((120, 36), "schedules", "schedules"), ((80, 24), "narrow-search", "search"),
                 ((120, 36), "message", "message")]
        paths = [await shoot(out, home, work, size, name, mode) for size, name, mode in shots]
        final = Engine(make_config(home), kind="console", env=agent_env())
        await final.start()
        await final.stop(stop_agents=True)
        paths.append(await shoot_paused(out, Path(tmp) / "paused-home", work))
    for path in paths:
        print(path)


def to_png(paths: list[Path]) -> None:
    if shutil.which("rsvg-convert"):
        for path in paths:
            subprocess.run(["rsvg-convert", str(path), "-o", str(path.with_suffix(".png"))],
                           check=False)


async def only_paused(out: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="claudine-shots-") as tmp:
        work = Path(tmp) / "work"
        work.mkdir()
        print(await shoot_paused(out, Path(tmp) / "home", work))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "screenshots")
    parser.add_argument("--only-paused", action="store_true",
                        help="take only paused.svg (a home of its own)")
    args = parser.parse_args()
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    asyncio.run(only_paused(out) if args.only_paused else main(out))
    to_png(sorted(out.glob("paused.svg") if args.only_paused else out.glob("*.svg")))
