"""Typed events the engine publishes, and the bus that carries them to front ends.

Each subscriber has its own bounded queue. A slow subscriber (a screen that is busy)
loses the oldest events and the loss is counted, instead of the engine blocking or the
queue growing without bound; a front end can always catch up with ``engine.snapshot()``.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field

from claudine_core.agents.stream import StreamEvent
from claudine_core.models import Task, TaskState


@dataclass(frozen=True, slots=True)
class Event:
    """Base of everything on the bus."""


@dataclass(frozen=True, slots=True)
class TaskStateChanged(Event):
    task: Task
    previous: TaskState | None  # None: a task this process had not seen before


@dataclass(frozen=True, slots=True)
class TaskOutput(Event):
    task_id: str
    events: tuple[StreamEvent, ...]


@dataclass(frozen=True, slots=True)
class ScaleChanged(Event):
    running: int
    queued: int
    waiting_reason: str | None


@dataclass(frozen=True, slots=True)
class RoleChanged(Event):
    role: str  # "owner" or "client"


@dataclass(eq=False)
class Subscription:
    """One subscriber's bounded queue of events (of the ``kinds`` it asked for)."""

    maxsize: int
    kinds: tuple[type[Event], ...] | None = None  # None: every event
    dropped: int = 0
    _items: deque[Event] = field(default_factory=deque)
    _ready: asyncio.Event = field(default_factory=asyncio.Event)

    def wants(self, kind: type[Event]) -> bool:
        return self.kinds is None or issubclass(kind, self.kinds)

    def put(self, event: Event) -> None:
        if self.kinds is not None and not isinstance(event, self.kinds):
            return
        if len(self._items) >= self.maxsize:
            self._items.popleft()
            self.dropped += 1
        self._items.append(event)
        self._ready.set()

    def drain(self) -> list[Event]:
        """Everything queued now, without waiting."""
        items = list(self._items)
        self._items.clear()
        self._ready.clear()
        return items

    async def get_batch(self) -> list[Event]:
        """Wait until at least one event is queued, then take all of them."""
        while not self._items:
            await self._ready.wait()
        return self.drain()


class EventBus:
    """Fan-out of events to subscribers; publishing never blocks."""

    def __init__(self) -> None:
        self._subscribers: list[Subscription] = []
        self.published = 0

    def subscribe(
        self, maxsize: int = 10_000, kinds: tuple[type[Event], ...] | None = None
    ) -> Subscription:
        """A new subscription to every event, or only to those of ``kinds``."""
        subscription = Subscription(maxsize=maxsize, kinds=kinds)
        self._subscribers.append(subscription)
        return subscription

    def wants(self, kind: type[Event]) -> bool:
        """Whether any subscriber takes events of ``kind``: a publisher can then skip the
        work of making ones nobody would receive (the owner parses agent output only for
        :class:`TaskOutput` subscribers)."""
        return any(subscription.wants(kind) for subscription in self._subscribers)

    def unsubscribe(self, subscription: Subscription) -> None:
        if subscription in self._subscribers:
            self._subscribers.remove(subscription)

    def publish(self, event: Event) -> None:
        self.published += 1
        for subscription in self._subscribers:
            subscription.put(event)

    def __repr__(self) -> str:
        drops = sum(s.dropped for s in self._subscribers)
        return (
            f"EventBus(subscribers={len(self._subscribers)}, published={self.published}, "
            f"dropped={drops})"
        )
