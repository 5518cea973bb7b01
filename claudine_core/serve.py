"""``claudine serve``: the engine with no UI, in the foreground or started detached.

The CLI starts a detached ``serve --auto`` when a task is delegated and nobody owns the
home, so a task never waits for a console that nobody opened. That one exits once the
home has been idle for ``idle_exit_s`` (nothing queued or running, and no active schedule:
a schedule's next slot needs an owner to fire it).
"""

from __future__ import annotations

import contextlib
import logging
import os
from typing import TYPE_CHECKING

from claudine_core.config import Config
from claudine_core.handover import ensure_owner, wait_for_owner
from claudine_core.ownership import current_owner

if TYPE_CHECKING:
    from claudine_core.engine import Engine

# ensure_owner and wait_for_owner are re-exported: the CLI starts owners through them.
__all__ = ["ensure_owner", "serve", "wait_for_owner"]

log = logging.getLogger("claudine.serve")


async def serve(config: Config, *, auto: bool = False, idle_exit_s: float | None = None,
                stop_agents_on_exit: bool = False) -> int:
    """Run the engine until SIGTERM/SIGINT, or until idle when ``idle_exit_s`` is set.

    Args:
        auto: started by the CLI; exit at once if another process already owns the home.
        idle_exit_s: exit after this many seconds with nothing queued or running.
        stop_agents_on_exit: stop running agents when exiting (default: leave them for
            the next owner to adopt).
    """
    # Here, not at the top: every CLI command that makes sure an owner runs imports this
    # module for ensure_owner, and must not pay for the engine and asyncio.
    import asyncio
    import signal

    from claudine_core.engine import Engine

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    engine = Engine(config, kind="serve")
    await engine.start()
    if auto and engine.role != "owner":
        await engine.stop()
        return 0
    if engine.role == "owner":
        log.info("claudine serve: owner of %s (pid %d)", config.home, os.getpid())
    else:
        owner = current_owner(config.lock_path) or {}
        log.warning("claudine serve: %s is owned by pid %s (%s); waiting as a client and "
                    "taking over when it exits", config.home, owner.get("pid", "?"),
                    owner.get("kind", "unknown kind"))
    idleness = Idleness(engine)
    try:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=0.5)
            idle = idleness.seconds()
            if idle_exit_s is not None and idle is not None and idle >= idle_exit_s:
                log.info("idle for %gs: exiting", idle_exit_s)
                break
    finally:
        await engine.stop(stop_agents=stop_agents_on_exit)
    return 0


class Idleness:
    """How long the home has had nothing queued, blocked or running, and no active
    schedule (its next slot needs an owner).

    Whether tasks are left is asked of the store only after the engine saw it change
    (``engine.changes``), not every half second of an idle day.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._changes_seen = -1
        self._unfinished = True

    def seconds(self) -> float | None:
        """Seconds idle; None while there is work, and for a client (only an owner's
        idleness may end it)."""
        engine = self.engine
        if engine.role != "owner":
            return None
        if engine.changes.count != self._changes_seen:
            self._changes_seen = engine.changes.count  # before the read: a later change counts
            self._unfinished = (engine.service.has_unfinished_tasks()
                                or engine.service.schedules.has_active())
        if engine.supervisor.agents or self._unfinished:
            engine.last_busy_at = engine.clock()
            return None
        return engine.clock() - engine.last_busy_at
