"""Everything a screen shows, read from the store only when the store changed.

A console refreshes a few times a second, and most of the time nothing changed: reading
every active row and the recent finished ones each time cost more than the rest of an
idle console. The task list is kept, keyed on :func:`~claudine_core.events.store_version`,
and read again only
once that moves.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from claudine_core.autoscaler import AdmissionLimits, decide_admission
from claudine_core.config import Config
from claudine_core.events import StoreVersion, store_version
from claudine_core.models import (
    ACTIVE_STATES,
    TERMINAL_STATES,
    EngineSnapshot,
    ResourceSample,
    Task,
    TaskState,
)
from claudine_core.ownership import current_owner, published_admission
from claudine_core.resources import ResourceMonitor
from claudine_core.spending import Budget, local_day
from claudine_core.store import ListCache, TaskRepo
from claudine_core.usage_limits import HomePause, read_pause

if TYPE_CHECKING:  # the local engine loads none of the backends' modules
    from claudine_core.backends.base import NodeCapacity

RECENT_FINISHED_IN_SNAPSHOT = 300


@dataclass(frozen=True)
class TaskList:
    """The tasks a screen shows: every active one and the newest finished ones, and the
    home's usage-limit pause and budget as of the same read."""

    tasks: tuple[Task, ...]
    running: int
    queued: int
    parked: int = 0
    pause: HomePause | None = None
    budget: Budget | None = None


class SnapshotReader:
    """Builds :class:`EngineSnapshot` s, re-reading task rows only after a change.

    Args:
        config: the home's settings (the limits shown on the gauges).
        repo: the home's store.
        monitor: the engine's resource monitor (its history feeds the sparklines).
        limits: this process's admission limits, for a client whose owner published none.
        clock: wall-clock source.
    """

    def __init__(
        self, config: Config, repo: TaskRepo, monitor: ResourceMonitor,
        limits: AdmissionLimits, clock: Callable[[], float],
        budget: Callable[[float], Budget] | None = None,
    ) -> None:
        self.config = config
        self.budget = budget
        self.limits = limits
        self.repo = repo
        self.monitor = monitor
        self.clock = clock
        self.reads = 0  # task-list reads from the store: lets tests see idle costs nothing
        self._version: tuple[StoreVersion, str] | None = None
        self._list = TaskList((), 0, 0)
        # A running agent's row changes twice a second: the rows are read again without
        # their prompts, and unchanged rows give back the same Task objects.
        self._cache = ListCache()
        # A console reads on the engine's reader thread, other callers on the loop.
        self._lock = threading.Lock()

    def task_list(self) -> TaskList:
        """The tasks as of now; from memory unless the store changed since the last read."""
        with self._lock:
            # The day too: today's spending starts again at midnight with no write.
            version = (store_version(self.repo), local_day(self.clock()))
            if version != self._version:
                self._list = self._read()
                # The version read before the rows: a write landing in between is seen
                # next time.
                self._version = version
            return self._list

    def _read(self) -> TaskList:
        self.reads += 1
        active = self.repo.list_tasks(statuses=ACTIVE_STATES, cache=self._cache)
        finished = self.repo.list_tasks(statuses=TERMINAL_STATES,
                                        limit=RECENT_FINISHED_IN_SNAPSHOT, cache=self._cache)
        self._cache.forget_unlisted()
        tasks = sorted(active + finished, key=lambda t: t.seq, reverse=True)
        budgeted = (self.config.daily_budget_usd is not None
                    or self.config.monthly_budget_usd is not None)
        return TaskList(
            tasks=tuple(tasks),
            running=sum(1 for t in active if t.status is TaskState.RUNNING),
            queued=sum(1 for t in active if t.status is TaskState.QUEUED),
            parked=sum(1 for t in active if t.status is TaskState.PARKED),
            pause=read_pause(self.repo),
            budget=self.budget(self.clock()) if self.budget and budgeted else None,
        )

    def take(
        self, *, role: str, owner_pid: int | None, sample: ResourceSample,
        owner_reason: Callable[[], str | None],
        nodes: Sequence[NodeCapacity] | None = None,
    ) -> EngineSnapshot:
        """One snapshot. ``owner_reason`` gives the owner's own admission reason (an owner
        only; a client reads what the owner published). ``nodes``: the cluster's nodes when
        the agents run on one, None on this machine."""
        listed = self.task_list()
        if not listed.queued:
            reason = None
        elif role == "owner":
            reason = owner_reason()
        else:
            reason = self.client_waiting_reason(listed.queued, listed.running, sample)
        return EngineSnapshot(
            taken_at=self.clock(),
            role=role,
            owner_pid=owner_pid,
            tasks=listed.tasks,
            resources=sample,
            running=listed.running,
            queued=listed.queued,
            max_agents=self.config.max_agents,
            cpu_threshold=self.config.cpu_threshold,
            memory_reserve=self.config.memory_reserve,
            waiting_reason=reason,
            cpu_history=tuple(self.monitor.cpu_history),
            memory_history=tuple(self.monitor.memory_history),
            pause=listed.pause,
            budget=listed.budget,
            parked=listed.parked,
            nodes=None if nodes is None else tuple(nodes),
        )

    def client_waiting_reason(
        self, queued: int, running: int, sample: ResourceSample
    ) -> str | None:
        """Why the queue waits, as a client sees it.

        A client cannot see the owner's decision: it reads what the owner published,
        else (an older owner, or none) re-derives it from the same inputs, with the
        owner's limits when its lock record carries them.
        """
        lock_path = self.config.lock_path
        owner = current_owner(lock_path)
        published = published_admission(lock_path, owner)
        if published is not None:
            reason = published.get("reason")
            return None if reason is None else str(reason)
        settings = (owner or {}).get("settings")
        limits = AdmissionLimits.from_settings(settings) if settings else self.limits
        decision = decide_admission(
            queued=queued, running=running, sample=sample, started_at=(),
            limits=limits, now=self.clock(),
        )
        return decision.reason
