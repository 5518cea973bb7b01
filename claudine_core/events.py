"""How a front end learns that the home changed, at no cost while nothing does.

The engine checks once a tick whether the store changed (:func:`store_version`: ``PRAGMA
data_version`` for other connections' commits, the repo's write count for its own): one
cheap query, no rows read. When it did, :class:`StoreChanges` wakes whoever waits; what
changed is read from ``engine.snapshot()``, which re-reads rows only then too, as the
owner re-reads cancel requests and the queue. A screen refreshes from the
snapshot by a keyed diff on a timer, so a burst of changes costs one refresh, not one
per change.

An earlier version published typed events (state changes, agent output, scale) on a bus
with per-subscriber queues. No front end subscribed, and feeding it cost a query of the
changed rows every tick: it is gone.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from claudine_core.store import TaskRepo

StoreVersion = tuple[int, int]


def store_version(repo: TaskRepo) -> StoreVersion:
    """Changes whenever anybody committed to the store: one cheap query, no rows read.

    ``PRAGMA data_version`` counts other connections' commits only, so the repo's own
    write count covers what this process wrote through it.
    """
    return repo.data_version(), repo.writes


def state_version(repo: TaskRepo) -> StoreVersion:
    """Like :func:`store_version`, blind to this process's own output-summary writes.

    For the owner's passes that look at task states (cancels, the queue, dependencies,
    endings, usage limits): the summary flush every half second changes no state, yet
    re-ran each of those reads, several queries each, on the loop a console shares.
    Another process's commit of any kind still moves it.
    """
    return repo.data_version(), repo.writes - repo.summary_writes


class StoreChanges:
    """A count of the store changes the engine has seen, that coroutines can wait on."""

    def __init__(self) -> None:
        self.count = 0
        self._changed = asyncio.Event()

    def __repr__(self) -> str:
        return f"StoreChanges(count={self.count})"

    def notify(self) -> None:
        """One more change: wake every waiter."""
        self.count += 1
        self._changed.set()
        # Waiters hold the event they woke on; later waits need a fresh one.
        self._changed = asyncio.Event()

    async def wait(self, after: int) -> int:
        """Wait until the count is past ``after`` (at once if it already is); the count."""
        while self.count <= after:
            await self._changed.wait()
        return self.count
