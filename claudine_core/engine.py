"""The engine: one home's owner loop (or a client's), its lifecycle and its snapshot.

One process per home owns the engine (it holds ``engine.lock``); it alone starts, stops
and finishes agents. Every other process runs the same class as a *client*: its commands
are committed rows (see service.py) that the owner applies on its next tick, and it
follows the store to show the same state. A client keeps trying the lock and takes
over, recovering every running task, as soon as the owner exits or dies.

Front ends command tasks and query them through ``engine.service`` (service.py); the
engine itself offers its lifecycle (start, stop), its role and :meth:`Engine.snapshot`.
The loop's parts live beside it: dispatch.py (admission, starting agents), finishing.py
(following agents, ending runs, retries), recovery.py (a new owner's first look) and
snapshot.py (what a screen shows).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from claudine_core.autoscaler import Admission, AdmissionLimits
from claudine_core.backend_choice import make_supervisor
from claudine_core.config import Config, owner_settings
from claudine_core.dependencies import DependencyReleaser
from claudine_core.dispatch import Dispatcher
from claudine_core.events import StoreChanges, StoreVersion, store_version
from claudine_core.finishing import RunFinisher
from claudine_core.handover import ensure_owner
from claudine_core.models import EngineSnapshot, ResourceSample
from claudine_core.notify import Notifier
from claudine_core.ownership import OwnerLock, current_owner
from claudine_core.recovery import recover
from claudine_core.resources import ResourceMonitor
from claudine_core.schedules.owner import ScheduleFirer
from claudine_core.service import TaskService
from claudine_core.snapshot import SnapshotReader
from claudine_core.store import StoreError, TaskRepo
from claudine_core.supervisor import ESCALATION_MARGIN_S
from claudine_core.usage_limits import LimitKeeper

if TYPE_CHECKING:
    from claudine_core.backends import ExecutionBackend

log = logging.getLogger("claudine.engine")

SAMPLE_EVERY_S = 1.0
TAKEOVER_EVERY_S = 0.5


FOLLOW_BATCH = 8
"""Agents followed between two yields of the owner's tick to the event loop it shares."""

class Engine:
    """Owns (or follows) one claudine home.

    Args:
        config: loaded configuration; ``config.home`` is the home.
        kind: what runs it ("serve", "console", "mcp"), recorded in the lock for others.
        clock: wall-clock source, for tests.
        monitor: resource sampler; tests pass one with scripted readings.
        env: environment the agents inherit (default: this process's).
        tick_s: how long the loop sleeps when nothing wakes it; bounds command latency.
        hooks: optional isolation hooks (worktrees) with ``prepare(task) -> cwd``,
            ``finish(task)``, and optionally ``needs_prepare(task)`` and ``close()``; see
            worktrees.py. ``prepare`` runs on a thread: creating a worktree and a repository's
            setup command can take minutes and must not freeze the loop (or the console).
        backend: run agents on this execution backend instead of the one the ``backend``
            setting names (tests pass a FakeBackend).

    Raises:
        ConfigError: the ``backend`` setting names a backend that is not installed.

    ``engine.changes`` (:class:`~claudine_core.events.StoreChanges`) counts the store
    changes the loop has seen, for whoever wants to wait for the next one.
    """

    def __init__(
        self,
        config: Config,
        *,
        kind: str = "serve",
        clock: Callable[[], float] = time.time,
        monitor: ResourceMonitor | None = None,
        env: Mapping[str, str] | None = None,
        tick_s: float = 0.1,
        hooks: Any = None,
        backend: ExecutionBackend | None = None,
    ) -> None:
        self.config = config
        self.kind = kind
        self.clock = clock
        self.tick_s = tick_s
        self.env = dict(os.environ if env is None else env)
        # First: a backend that is not installed stops the engine before it opens anything.
        self.supervisor = make_supervisor(config, backend)
        self.service = TaskService(config, clock=clock, env=self.env)
        repo = self.service.repo
        # The hooks record outcomes in this engine's own store, never in another home's.
        self.hooks = hooks if hooks is not None else _default_hooks(config, repo)
        self.service.on_command = self.wake
        self.monitor = monitor or ResourceMonitor()
        self.lock = OwnerLock(config.lock_path, kind=kind, settings=owner_settings(config))
        self.role = "client"
        self.limits = AdmissionLimits.from_settings(owner_settings(config))
        self.finisher = RunFinisher(config, repo, self.supervisor, self.hooks, clock,
                                    ledger=self.service.ledger)
        self.releaser = DependencyReleaser(repo)
        self.notifier = Notifier(config, repo, clock, env=self.env)  # ended tasks: tell once
        # Usage-limit pauses and budgets: what dispatch may start, releases at the reset.
        self.limit_keeper = LimitKeeper(config, repo, self.service.budget, clock)
        self.dispatcher = Dispatcher(
            config, repo, self.supervisor, self.finisher, hooks=self.hooks,
            monitor=self.monitor, lock=self.lock, limits=self.limits, env=self.env,
            wake=self.wake, gate=self.limit_keeper.gate,
        )
        self.firer = ScheduleFirer(lambda: self.service.schedules, clock)
        self.snapshots = SnapshotReader(config, repo, self.monitor, self.limits, clock,
                                        budget=self.service.budget)
        self.changes = StoreChanges()
        self.sample: ResourceSample | None = None
        self.last_busy_at = clock()
        self._wake = asyncio.Event()
        self._tick_lock = asyncio.Lock()
        self._reader: ThreadPoolExecutor | None = None  # see snapshot_in_thread
        self._loop_task: asyncio.Task[None] | None = None
        self._stopping = False
        self._store_seen: StoreVersion | None = None
        self._last_sample = 0.0
        self._last_takeover_try = 0.0
        self.handoff_on_exit = config.handoff_on_exit
        self.handed_over_to: int | None = None  # pid of the owner this one handed over to
        self.ticks = 0

    def __repr__(self) -> str:
        return (
            f"Engine(role={self.role}, kind={self.kind}, running={len(self.supervisor.agents)}, "
            f"spawned={self.supervisor.spawned}, ticks={self.ticks}, {self.changes!r})"
        )

    # -- lifecycle ---------------------------------------------------------------------------

    async def __aenter__(self) -> Engine:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Become the owner if nobody is, else a client; then run the loop in the background."""
        self._try_take_ownership()
        self._store_seen = store_version(self.service.repo)
        self._loop_task = asyncio.create_task(self._run(), name=f"claudine-engine-{self.kind}")

    async def stop(self, *, stop_agents: bool = False) -> None:
        """Stop the loop. Agents keep running (the next owner adopts them) unless asked.

        An owner that leaves work behind (queued, blocked or running tasks) hands the
        home over to a detached ``claudine serve`` once it has let go of the lock, unless
        ``stop_agents`` (the user chose to stop everything) or ``handoff_on_exit`` is off.
        The check comes after the release, so a task delegated while this owner was
        stopping (its delegator saw the lock still held) is found too.
        """
        was_owner = self.role == "owner"
        if stop_agents and was_owner:
            await self._stop_all_agents()
        self._stopping = True
        self.wake()
        if self._loop_task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
            self._loop_task = None
        if self.role == "owner":
            await self._finish_cancels()
            await self.dispatcher.settle_preparations()
            with contextlib.suppress(StoreError):
                self.finisher.flush_summaries(force=True)
            # Merge steps still running must end before another owner may take the lock
            # (it would run them again); queued ones stay pending and that owner runs them.
            close_hooks = getattr(self.hooks, "close", None)
            if close_hooks is not None:
                await asyncio.to_thread(close_hooks)
            await asyncio.to_thread(self.notifier.close)
        # Before the lock goes: a next owner follows the remote runs from then on.
        close_supervisor = getattr(self.supervisor, "close", None)
        if close_supervisor is not None:
            await asyncio.to_thread(close_supervisor)
        self.lock.release()
        self.role = "client"
        await self._close_reader()
        try:
            if was_owner and self.handoff_on_exit and not stop_agents:
                self.handed_over_to = self._hand_over()
        finally:
            self.service.close()

    async def _finish_cancels(self) -> None:
        """Stop the agents of cancels committed before this stop. Agents otherwise outlive
        their owner, but a cancelled one must not wait for an owner that may never come
        (hand-over off, or a cancel that landed just as the owner was told to stop)."""
        self.finisher.apply_cancel_requests(self.clock(), self.dispatcher.preparing)
        deadline = time.monotonic() + self.config.kill_grace_s + ESCALATION_MARGIN_S + 1
        while time.monotonic() < deadline and any(
                agent.stop_state is not None for agent in self.supervisor.agents.values()):
            now = self.clock()
            for agent in list(self.supervisor.agents.values()):
                self.finisher.follow(agent, now)
            self.supervisor.enforce_stops(now)
            await asyncio.sleep(0.05)

    def _hand_over(self) -> int | None:
        """Start a background owner if work is left and nobody owns the home now."""
        try:
            # An active schedule is work too: its next slot needs an owner to fire it.
            if not (self.service.has_unfinished_tasks() or self.service.schedules.has_active()):
                return None
        except StoreError as exc:
            log.error("cannot check for work left behind: %s", exc)
            return None
        try:
            pid = ensure_owner(self.config)
        except OSError as exc:
            log.error("could not hand the home over to a background owner: %s; the work "
                      "left waits until a console or 'claudine serve' runs", exc)
            return None
        if pid is not None:
            log.info("handed %s over to a background owner (pid %d)", self.config.home, pid)
        return pid

    async def wait_closed(self) -> None:
        if self._loop_task is not None:
            await self._loop_task

    def wake(self) -> None:
        """Run the next tick now (a local command arrived)."""
        self._wake.set()

    @property
    def admission(self) -> Admission | None:
        """The owner's last admission decision (None: nothing waited to start)."""
        return self.dispatcher.admission

    def owner_info(self) -> dict[str, Any] | None:
        if self.role == "owner":
            return {"pid": os.getpid(), "kind": self.kind}
        return current_owner(self.config.lock_path)

    def snapshot(self) -> EngineSnapshot:
        """Everything a screen shows, read in one go; rows are re-read only after a change."""
        owner = self.owner_info()
        return self.snapshots.take(
            role=self.role,
            owner_pid=owner.get("pid") if owner else None,
            sample=self.sample or self.monitor.sample(),
            owner_reason=self._owner_waiting_reason,
            # The remote supervisor's nodes as its pump last counted them (a list it
            # replaces whole); the local supervisor has none.
            nodes=getattr(self.supervisor, "nodes", None),
        )

    async def snapshot_in_thread(self) -> EngineSnapshot:
        """:meth:`snapshot`, taken on the engine's reader thread.

        A console refreshes from here: after a change the store read and the rows'
        conversion took its loop 10 to 40 ms under load, time in which no key was handled.
        SQLite runs the query without the GIL; the Python around it shares the GIL with
        the loop in 5 ms turns instead of holding the loop for all of it. The thread has
        its own connection (peewee keeps one per thread), closed when the engine stops.
        """
        if self._reader is None:
            self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="claudine-reader")
        return await asyncio.get_running_loop().run_in_executor(self._reader, self.snapshot)

    async def _close_reader(self) -> None:
        reader, self._reader = self._reader, None
        if reader is None:
            return
        with contextlib.suppress(Exception):  # closing a read connection has nothing to lose
            await asyncio.get_running_loop().run_in_executor(reader, self.service.repo.db.close)
        reader.shutdown(wait=True)

    def _owner_waiting_reason(self) -> str | None:
        return self.admission.reason if self.admission is not None else None

    # -- the loop ----------------------------------------------------------------------------

    async def _run(self) -> None:
        failures = 0
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._sleep_s())
            self._wake.clear()
            if self._stopping:
                break
            writes_before = self.service.repo.writes
            try:
                await self._tick()
                # Only a tick that wrote proves the store works again: most ticks write
                # nothing, and a full disk fails just the summary flush every half second.
                if self.service.repo.writes != writes_before:
                    failures = 0
            except StoreError as exc:
                # A locked or full disk must not kill the engine: say so, back off, go on.
                failures += 1
                log.error("store error (attempt %d): %s", failures, exc)
                await asyncio.sleep(min(5.0, 0.2 * failures))
            except Exception:
                failures += 1
                log.exception("engine tick failed")
                await asyncio.sleep(min(5.0, 0.2 * failures))

    def _sleep_s(self) -> float:
        """Until the next tick: ``tick_s``, or less when a schedule's slot comes sooner."""
        if self.role != "owner":
            return self.tick_s
        until_due = self.firer.seconds_until_due(self.clock())
        return self.tick_s if until_due is None else min(self.tick_s, until_due)

    async def _tick(self) -> None:
        self.ticks += 1
        now = self.clock()
        if self.role == "client" and now - self._last_takeover_try >= TAKEOVER_EVERY_S:
            self._last_takeover_try = now
            self._try_take_ownership()
        if now - self._last_sample >= SAMPLE_EVERY_S:
            self._last_sample = now
            self.sample = self.monitor.sample()
        if self.role == "owner":
            await self._owner_tick(now)
        self._notice_store_changes()

    async def _owner_tick(self, now: float) -> None:
        # One at a time: the loop's tick yields while following agents, and a stop that
        # ends every agent runs ticks of its own meanwhile.
        async with self._tick_lock:
            await self._owner_pass(now)

    async def _owner_pass(self, now: float) -> None:
        self.finisher.apply_cancel_requests(now, self.dispatcher.preparing)
        self.releaser.release(now)  # blocked tasks whose dependencies have ended
        self.dispatcher.launch_prepared(now)
        following = list(self.supervisor.agents.values())
        self.finisher.next_tick(following)
        for count, agent in enumerate(following, start=1):
            self.finisher.follow(agent, now)
            if count % FOLLOW_BATCH == 0:
                # The console shares this loop: with many busy agents, reading them all
                # at once held a key press back for tens of milliseconds.
                await asyncio.sleep(0)
        self.supervisor.enforce_stops(now)
        self.finisher.flush_summaries()
        self.notifier.tick()  # desktop notification and on_finish for tasks that ended
        # Before dispatch: a task a schedule creates now can start in this very tick.
        self.firer.tick(now, self.changes.count)
        self.limit_keeper.tick(now)  # parked tasks whose usage limit has reset go on
        if self.dispatcher.dispatch(now) or self.supervisor.agents:
            self.last_busy_at = now

    def _notice_store_changes(self) -> None:
        """Wake the waiters on :attr:`changes` when some process (this one included) wrote."""
        version = store_version(self.service.repo)
        if version != self._store_seen:
            self._store_seen = version
            self.changes.notify()

    def _try_take_ownership(self) -> None:
        if self.role == "owner" or not self.lock.try_acquire():
            return
        self.role = "owner"
        self.firer.reset()
        log.info("owning %s as %s (pid %d)", self.config.home, self.kind, os.getpid())
        recover(self.config, self.service.repo, self.supervisor, self.finisher, self.clock)

    async def _stop_all_agents(self) -> None:
        now = self.clock()
        self.supervisor.stop_all(now)
        deadline = time.monotonic() + self.config.kill_grace_s + 5
        while self.supervisor.agents and time.monotonic() < deadline:
            await self._owner_tick(self.clock())
            await asyncio.sleep(0.05)


def _default_hooks(config: Config, repo: TaskRepo) -> Any:
    """Worktree isolation, when that module is present (it needs git on the machine)."""
    try:
        from claudine_core.isolation.worktrees import default_hooks
    except ImportError:
        return None
    return default_hooks(config, repo)
