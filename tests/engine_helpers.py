"""Helpers for tests that drive a real Engine with the fake agent on a temporary home."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from claudine_core.config import Config, load_config
from claudine_core.engine import Engine
from claudine_core.models import TERMINAL_STATES, Task, TaskState

TESTS_DIR = Path(__file__).resolve().parent
FAKE_CLAUDE = TESTS_DIR / "fakes" / "fake_claude.py"


def agent_env(**extra: str) -> dict[str, str]:
    """The environment agents inherit in tests: IS_SANDBOX so root may skip permissions."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLAUDINE_")}
    env.update({"IS_SANDBOX": "1", "PYTHONUNBUFFERED": "1"}, **extra)
    return env


def make_config(home: Path, **overrides: Any) -> Config:
    """Settings that leave admission unconstrained and make retries quick."""
    values: dict[str, Any] = {
        "home": home,
        "claude_bin": str(FAKE_CLAUDE),
        "cpu_threshold": 100,
        "memory_reserve": 0,
        "agent_cpu_cost": 0,
        "agent_memory_cost": 0,
        "kill_grace_s": 1,
        "retry_base_delay_s": 0,
        "max_retries": 0,
        "default_worktree": False,
        # In-process engines stop with work left on purpose; a test of the hand-over
        # turns it on (or runs separate processes, which keep the default).
        "handoff_on_exit": False,
        # A developer's desktop must not pop a notification per test task; the notifier's
        # tests turn them on with a fake notify-send on PATH.
        "desktop_notifications": False,
    }
    values.update(overrides)
    return load_config(env={}, config_file=_empty_toml(home), **values)


def _empty_toml(home: Path) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    path = home.parent / f"{home.name}-config.toml"
    path.write_text("")
    return path


def cli_env(home: Path, **extra: str) -> dict[str, str]:
    """Environment for running the installed ``claudine`` command against ``home``."""
    env = agent_env(**extra)
    env.update(
        {
            "CLAUDINE_HOME": str(home),
            "CLAUDINE_CLAUDE_BIN": str(FAKE_CLAUDE),
            "CLAUDINE_CONFIG": str(_empty_toml(home)),
            "CLAUDINE_CPU_THRESHOLD": "100",
            "CLAUDINE_MEMORY_RESERVE": "0",
            "CLAUDINE_AGENT_CPU": "0",
            "CLAUDINE_AGENT_MEMORY": "0",
            "CLAUDINE_KILL_GRACE": "1",
            "CLAUDINE_IDLE_EXIT": "2",  # background owners a test starts leave soon
            # An owner a test stops with work left would hand it to a background owner
            # that outlives the test; the hand-over tests turn this back on.
            "CLAUDINE_HANDOFF_ON_EXIT": "0",
            "CLAUDINE_DESKTOP_NOTIFICATIONS": "0",  # see make_config
        }
    )
    env.update(extra)
    return env


CLAUDINE = [sys.executable, "-m", "claudine_tui"]


async def wait_for_state(
    engine: Engine, task_id: str, states: Iterable[TaskState], timeout: float = 30.0
) -> Task:
    """Wait on the engine's store changes until the task reaches one of ``states``."""
    wanted = set(states)
    seen = engine.changes.count
    async with asyncio.timeout(timeout):
        while True:
            task = engine.service.get(task_id)
            if task.status in wanted:
                return task
            seen = await engine.changes.wait(seen)


async def wait_for_merge(engine: Engine, task_id: str, timeout: float = 30.0) -> Task:
    """The task once it ended and its worktree merge step stored an outcome."""
    await wait_for_state(engine, task_id, TERMINAL_STATES, timeout)

    def outcome() -> Task | None:
        task = engine.service.get(task_id)
        return task if task.merge and task.merge.get("status") != "pending" else None

    return await wait_until(outcome, timeout)


async def wait_until(predicate: Any, timeout: float = 30.0, interval: float = 0.05) -> Any:
    """Poll a condition that no engine event announces (a file, a process)."""
    async with asyncio.timeout(timeout):
        while True:
            value = predicate()
            if value:
                return value
            await asyncio.sleep(interval)


def poll(condition: Callable[[], object], timeout: float, what: str,
         screen: Callable[[], str] | None = None) -> object:
    """Check ``condition`` every 0.1 s until it holds and return its value; after
    ``timeout`` seconds fail, naming ``what`` and showing ``screen()`` (a tmux pane) if given.

    The blocking ``wait_until``, for tests that watch other processes (a console in tmux,
    the CLI): nothing in the test process announces what they do."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    shown = f"; screen:\n{screen()}" if screen else ""
    raise AssertionError(f"timed out after {timeout}s waiting for {what}{shown}")


def wait_pid_file(path: Path, timeout: float = 20) -> int:
    """The pid a fake agent wrote at start (``[pid-file:PATH]``): proof it is running.

    For tests that watch separate processes, with no engine event to wait on."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return int(path.read_text())
        time.sleep(0.05)
    raise AssertionError(f"the agent never wrote {path}")
