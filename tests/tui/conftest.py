"""Fixtures for the console tests: a fake engine, and a real engine on a temporary home."""

from __future__ import annotations

import sys
from pathlib import Path

TUI_TESTS = Path(__file__).resolve().parent
if str(TUI_TESTS) not in sys.path:
    sys.path.insert(0, str(TUI_TESTS))


import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

from textual.pilot import Pilot  # noqa: E402


async def wait_for(pilot: Pilot[Any], condition: Callable[[], Any], timeout: float = 10.0,
                   what: str = "condition") -> Any:
    """Let the app run until ``condition()`` is truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await pilot.pause(0.02)
