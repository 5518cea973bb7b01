"""Crash points: places where a fault test can make the owner die as ``kill -9`` would.

A test sets ``CLAUDINE_CRASH_AT=<name>`` (optionally ``CLAUDINE_CRASH_AFTER=<n>``: pass the
point n times first) in an owner's environment; when that owner reaches the named point it
sends itself SIGKILL, so nothing after it runs, no ``finally`` block, no flush. Unset (the
normal case) a crash point costs one dictionary look-up at import time and one comparison.

Names, in the order a task meets them: ``claimed`` (the claim committed, nothing started),
``spawned`` (the agent started, its pid not yet recorded), ``pid_recorded``, ``finished``
(the final state committed, the merge step not yet queued), ``merging`` (inside a merge step).
A schedule's firing has two: ``schedule_firing`` (the task and the execution row written,
not committed) and ``schedule_fired`` (committed).
"""

from __future__ import annotations

import os
import signal

_ARMED = os.environ.get("CLAUDINE_CRASH_AT") or None
_SKIP = int(os.environ.get("CLAUDINE_CRASH_AFTER") or 0)
_passes = 0


def crash_point(name: str) -> None:
    """Die here, as SIGKILL would kill us, when this point is armed."""
    global _passes
    if _ARMED != name:
        return
    _passes += 1
    if _passes > _SKIP:
        os.kill(os.getpid(), signal.SIGKILL)
