"""The engine: the facade every front end uses, and the owner's dispatch loop.

One process per home owns the engine (it holds ``engine.lock``); it alone starts, stops
and finishes agents. Every other process runs the same class as a *client*: its commands
are committed rows (see service.py) that the owner applies on its next tick, and it
follows the store to publish the same events. A client keeps trying the lock and takes
over, recovering every running task, as soon as the owner exits or dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass
from typing import Any

from claudine_core.agents.claude import (
    RESUME_AFTER_INTERRUPTION,
    AgentNotFound,
    agent_input,
    build_argv,
    build_env,
    resolve_executable,
)
from claudine_core.agents.stream import StreamEvent, parse_line
from claudine_core.autoscaler import Admission, AdmissionLimits, decide_admission
from claudine_core.config import Config, owner_settings
from claudine_core.events import EventBus, RoleChanged, ScaleChanged, TaskOutput, TaskStateChanged
from claudine_core.faults import crash_point
from claudine_core.models import (
    ACTIVE_STATES,
    TERMINAL_STATES,
    EngineSnapshot,
    Priority,
    ResourceSample,
    Task,
    TaskSpec,
    TaskState,
    iso_time,
)
from claudine_core.outcomes import Outcome, classify, retry_delay
from claudine_core.ownership import OwnerLock, current_owner, published_admission
from claudine_core.resources import ResourceMonitor
from claudine_core.service import InvalidRequest, TaskService, read_tail, validate_cwd
from claudine_core.store import StoreError, TaskRepo
from claudine_core.supervisor import RunningAgent, Supervisor, run_dir_for, spawn_began

log = logging.getLogger("claudine.engine")

SUMMARY_FLUSH_S = 0.5  # batch output summaries: screens need ~2 Hz, SQLite thanks us
SAMPLE_EVERY_S = 1.0
TAKEOVER_EVERY_S = 0.5
RECENT_FINISHED_IN_SNAPSHOT = 300
PREPARE_WORKERS = 2  # worktree creations (and setup commands) at once


@dataclass
class Preparation:
    """A claimed task whose isolation hook runs on a thread before its agent can start."""

    task: Task
    future: Future[str | None]
    claimed_at: float


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
    ) -> None:
        self.config = config
        self.kind = kind
        self.clock = clock
        self.tick_s = tick_s
        self.env = dict(os.environ if env is None else env)
        self.bus = EventBus()
        self.service = TaskService(config, clock=clock, env=self.env)
        # The hooks record outcomes in this engine's own store, never in another home's.
        self.hooks = hooks if hooks is not None else _default_hooks(config, self.service.repo)
        self.service.on_command = self.wake
        self.supervisor = Supervisor(kill_grace_s=config.kill_grace_s)
        self.monitor = monitor or ResourceMonitor()
        self.lock = OwnerLock(config.lock_path, kind=kind, settings=owner_settings(config))
        self.role = "client"
        self.limits = AdmissionLimits.from_settings(owner_settings(config))
        self.sample: ResourceSample | None = None
        self.admission: Admission | None = None
        self.last_busy_at = clock()
        self._wake = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        self._stopping = False
        self._data_version = -1
        self._known: dict[str, TaskState] = {}
        self._last_flush = 0.0
        self._last_sample = 0.0
        self._last_takeover_try = 0.0
        self._last_diff_at = 0.0
        self._writes_seen = 0
        self._preparing: dict[str, Preparation] = {}
        self._prepare_pool: ThreadPoolExecutor | None = None
        self.handoff_on_exit = config.handoff_on_exit
        self.handed_over_to: int | None = None  # pid of the owner this one handed over to
        self.ticks = 0

    def __repr__(self) -> str:
        return (
            f"Engine(role={self.role}, kind={self.kind}, running={len(self.supervisor.agents)}, "
            f"spawned={self.supervisor.spawned}, ticks={self.ticks}, {self.bus!r})"
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
        self._publish_changes(full=True)
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
            await self._settle_preparations()
            with contextlib.suppress(StoreError):
                self._flush_summaries(force=True)
            # Merge steps still running must end before another owner may take the lock
            # (it would run them again); queued ones stay pending and that owner runs them.
            close_hooks = getattr(self.hooks, "close", None)
            if close_hooks is not None:
                await asyncio.to_thread(close_hooks)
        self.lock.release()
        self.role = "client"
        try:
            if was_owner and self.handoff_on_exit and not stop_agents:
                self.handed_over_to = self._hand_over()
        finally:
            self.service.close()

    def _hand_over(self) -> int | None:
        """Start a background owner if work is left and nobody owns the home now."""
        try:
            if not self.service.has_unfinished_tasks():
                return None
        except StoreError as exc:
            log.error("cannot check for work left behind: %s", exc)
            return None
        from claudine_core.serve import ensure_owner  # serve imports this module

        try:
            pid = ensure_owner(self.config)
        except OSError as exc:
            log.error("could not hand the home over to a background owner: %s; the work "
                      "left waits until a console or 'claudine serve' runs", exc)
            return None
        if pid is not None:
            log.info("handed %s over to a background owner (pid %d)", self.config.home, pid)
        return pid

    async def _settle_preparations(self) -> None:
        """Let running preparations end, then give their tasks back to the queue.

        A stopping owner starts no agent; the worktree stays recorded on the task, so the
        next owner's ``prepare`` reuses it instead of making another.
        """
        if self._prepare_pool is not None:
            futures = [p.future for p in self._preparing.values()]
            if futures:
                await asyncio.to_thread(wait_futures, futures)
            self._prepare_pool.shutdown(wait=False)
            self._prepare_pool = None
        for prep in self._preparing.values():
            with contextlib.suppress(StoreError):
                self._unclaim(prep.task)
        self._preparing.clear()

    async def wait_closed(self) -> None:
        if self._loop_task is not None:
            await self._loop_task

    def wake(self) -> None:
        """Run the next tick now (a local command arrived)."""
        self._wake.set()

    # -- the facade front ends call ------------------------------------------------------------

    def delegate(self, spec: TaskSpec) -> Task:
        return self.service.delegate(spec)

    def cancel(self, ref: str, reason: str | None = None) -> Task:
        return self.service.cancel(ref, reason)

    def set_priority(self, ref: str, priority: Priority | str) -> Task:
        return self.service.set_priority(ref, priority)

    def retry(self, ref: str) -> Task:
        return self.service.retry(ref)

    def resume(self, ref: str, additional_context: str | None = None) -> Task:
        return self.service.resume(ref, additional_context)

    def get(self, ref: str) -> Task:
        return self.service.get(ref)

    def tail(self, task_id: str) -> list[StreamEvent]:
        """Recent events of a task this process is supervising (empty otherwise)."""
        agent = self.supervisor.agents.get(task_id)
        return list(agent.tail) if agent else []

    def owner_info(self) -> dict[str, Any] | None:
        if self.role == "owner":
            return {"pid": os.getpid(), "kind": self.kind}
        return current_owner(self.config.lock_path)

    def snapshot(self) -> EngineSnapshot:
        """Everything a screen shows, read in one go."""
        repo = self.service.repo
        active = repo.list_tasks(statuses=ACTIVE_STATES)
        finished = repo.list_tasks(statuses=TERMINAL_STATES, limit=RECENT_FINISHED_IN_SNAPSHOT)
        tasks = sorted(active + finished, key=lambda t: t.seq, reverse=True)
        running = sum(1 for t in active if t.status is TaskState.RUNNING)
        queued = sum(1 for t in active if t.status is TaskState.QUEUED)
        owner = self.owner_info()
        sample = self.sample or self.monitor.sample()
        return EngineSnapshot(
            taken_at=self.clock(),
            role=self.role,
            owner_pid=owner.get("pid") if owner else None,
            tasks=tuple(tasks),
            resources=sample,
            running=running,
            queued=queued,
            max_agents=self.config.max_agents,
            cpu_threshold=self.config.cpu_threshold,
            memory_reserve=self.config.memory_reserve,
            waiting_reason=self._waiting_reason(queued, running, sample),
            cpu_history=tuple(self.monitor.cpu_history),
            memory_history=tuple(self.monitor.memory_history),
        )

    def _waiting_reason(self, queued: int, running: int, sample: ResourceSample) -> str | None:
        if not queued:
            return None
        if self.role == "owner" and self.admission is not None:
            return self.admission.reason
        # A client cannot see the owner's decision: read what the owner published, else
        # (an older owner, or none) re-derive it from the same inputs, with the owner's
        # limits when its lock record carries them.
        owner = current_owner(self.config.lock_path)
        published = published_admission(self.config.lock_path, owner)
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

    # -- the loop ----------------------------------------------------------------------------

    async def _run(self) -> None:
        failures = 0
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.tick_s)
            self._wake.clear()
            if self._stopping:
                break
            writes_before = self.service.repo.writes
            try:
                self._tick()
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

    def _tick(self) -> None:
        self.ticks += 1
        now = self.clock()
        if self.role == "client" and now - self._last_takeover_try >= TAKEOVER_EVERY_S:
            self._last_takeover_try = now
            self._try_take_ownership()
        if now - self._last_sample >= SAMPLE_EVERY_S:
            self._last_sample = now
            self.sample = self.monitor.sample()
        external = self._store_changed()
        if self.role == "owner":
            self._owner_tick(now)
        # Re-read changed rows only when some process (this one included) wrote since.
        if external or self.service.repo.writes != self._writes_seen:
            self._writes_seen = self.service.repo.writes
            self._publish_changes()

    def _owner_tick(self, now: float) -> None:
        self._apply_cancel_requests(now)
        self._launch_prepared(now)
        for agent in list(self.supervisor.agents.values()):
            self._follow(agent, now)
        self.supervisor.enforce_stops(now)
        self._flush_summaries()
        self._dispatch(now)
        if self.supervisor.agents:
            self.last_busy_at = now

    def _store_changed(self) -> bool:
        version = self.service.repo.data_version()
        changed = version != self._data_version
        self._data_version = version
        return changed

    def _try_take_ownership(self) -> None:
        if self.role == "owner" or not self.lock.try_acquire():
            return
        self.role = "owner"
        log.info("owning %s as %s (pid %d)", self.config.home, self.kind, os.getpid())
        self._recover()
        self.bus.publish(RoleChanged("owner"))

    # -- recovery ----------------------------------------------------------------------------

    def _recover(self) -> None:
        """Follow every task the store says is running; the first tick decides each one.

        A live agent (same pid and start time) is adopted; a dead one with an exit record
        is finished from it; one that vanished goes through the recovery policy. Nothing
        is failed or re-queued wholesale.
        """
        for task in self.service.repo.list_tasks(statuses=[TaskState.RUNNING], newest_first=False):
            if task.id in self.supervisor.agents:
                continue
            run_dir = run_dir_for(self.config.runs_dir, task.id, max(task.attempt, 1))
            if task.pid is None and not spawn_began(run_dir):
                self._requeue_unstarted(task)
                continue
            agent = self.supervisor.adopt(
                task.id,
                run_dir,
                pid=task.pid,
                pid_started_at=task.extra.get("pid_started_at"),
                started_at=task.started_at or self.clock(),
                deadline=self._deadline(task, task.started_at or self.clock()),
            )
            if agent.pid is None and not (run_dir / "exit.json").exists():
                # Spawn began but no wrapper ever ran: none is in the process table (it
                # holds the owner's lock until it has exec'd, so it would be found) and
                # none wrote wrapper.json, which it does before starting the agent. So
                # no agent ran: back to the queue without using up an attempt.
                self.supervisor.agents.pop(task.id, None)
                self._requeue_unstarted(task)
                continue
            log.info("recovering task %s (pid %s)", task.id, agent.pid)
        for task in self.service.repo.unsettled_merges():
            log.info("task %s: running its interrupted merge step again", task.id)
            self._after_finish(task.id)

    def _unclaim(self, task: Task) -> None:
        """Undo a claim whose agent never started: queued again, its attempt given back."""
        self.service.repo.transition(
            task.id, [TaskState.RUNNING], status=TaskState.QUEUED, attempt=task.attempt - 1,
            started_at=None,
        )

    def _requeue_unstarted(self, task: Task) -> None:
        """A task claimed by an owner that died before starting its agent (say, during a
        worktree's setup): nothing ran, so it goes back to the queue without using up an
        attempt or a retry."""
        self._unclaim(task)
        log.info("task %s: its owner stopped before the agent started; queued again", task.id)

    # -- following agents --------------------------------------------------------------------

    def _follow(self, agent: RunningAgent, now: float) -> None:
        # Every line is parsed only for a TaskOutput subscriber; otherwise the supervisor
        # parses just the lines that can change the summary (the console reads the files).
        publish = self.bus.wants(TaskOutput)
        events = self.supervisor.read_output(agent, events=publish)
        if events:
            self.bus.publish(TaskOutput(agent.task_id, tuple(events)))
        if agent.deadline is not None and now >= agent.deadline and agent.stop_state is None:
            limit = agent.deadline - agent.started_at
            self.supervisor.request_stop(
                agent, TaskState.FAILED, f"timed out after {limit:g}s", now
            )
        record = self.supervisor.exit_record(agent)
        if record is None and self.supervisor.is_alive(agent):
            return
        if record is None:
            # It may have written the record between our two looks.
            record = self.supervisor.exit_record(agent)
        while self.supervisor.has_unread_output(agent):
            offset = agent.offset
            more = self.supervisor.read_output(agent, events=publish)
            if more:
                self.bus.publish(TaskOutput(agent.task_id, tuple(more)))
            if agent.offset == offset:
                break
        for line in agent.splitter.flush():  # a last line cut off by the agent's death
            for event in parse_line(line):
                agent.summary.update(event)
        self._finish(agent, record, now)

    def _finish(self, agent: RunningAgent, record: dict[str, Any] | None, now: float) -> None:
        repo = self.service.repo
        task = repo.get(agent.task_id)
        stderr_tail = read_tail(agent.run_dir / "stderr.log", 4096)
        outcome = classify(
            exit_record=record,
            result=agent.summary.result,
            stop_state=agent.stop_state,
            stop_reason=agent.stop_reason,
            stderr_tail=stderr_tail,
        )
        fields = self._summary_fields(agent)
        fields.update(
            ended_at=now,
            exit_code=outcome.exit_code,
            output_bytes=(record or {}).get("output_bytes", agent.offset),
            output_truncated=bool((record or {}).get("dropped_bytes")),
        )
        fields["attempts"] = _with_attempt(task, outcome.state, outcome.error,
                                           outcome.exit_code, now)
        if self._should_retry(task, outcome, record):
            self._requeue(task, agent, outcome, fields, now)
        else:
            final = outcome.state
            repo.transition(task.id, [TaskState.RUNNING], status=final, error=outcome.error,
                            **fields)
            crash_point("finished")
            self._after_finish(task.id)
        self.supervisor.forget(agent)

    def _should_retry(
        self, task: Task, outcome: Outcome, record: dict[str, Any] | None
    ) -> bool:
        if outcome.state is not TaskState.FAILED or not outcome.transient:
            return False
        if record is None and self.config.recovery_policy == "fail":
            return False
        return task.attempt <= self.config.max_retries

    def _requeue(
        self, task: Task, agent: RunningAgent, outcome: Outcome, fields: dict[str, Any],
        now: float,
    ) -> None:
        delay = retry_delay(
            task.attempt, base_s=self.config.retry_base_delay_s, cap_s=self.config.retry_max_delay_s
        )
        session = agent.summary.session_id or task.session_id
        resume = session if self.config.recovery_policy == "resume" and session else None
        fields.pop("ended_at", None)
        self.service.repo.transition(
            task.id,
            [TaskState.RUNNING],
            status=TaskState.QUEUED,
            not_before=now + delay,
            error=f"attempt {task.attempt} failed: {outcome.error}; retrying in {delay:g}s",
            pid=None,
            resume_session_id=resume or task.resume_session_id,
            resume_prompt=RESUME_AFTER_INTERRUPTION if resume else task.extra.get("resume_prompt"),
            **fields,
        )
        log.warning("task %s: %s; retry in %gs", task.id, outcome.error, delay)

    def _after_finish(self, task_id: str) -> None:
        if self.hooks is not None:
            try:
                self.hooks.finish(self.service.repo.get(task_id))
            except Exception:
                log.exception("finishing hook failed for %s", task_id)

    def _summary_fields(self, agent: RunningAgent) -> dict[str, Any]:
        summary = agent.summary
        fields: dict[str, Any] = {
            "last_activity": summary.last_activity,
            "last_activity_at": self.clock() if summary.last_activity else None,
            "output_bytes": agent.offset,
        }
        if summary.session_id:
            fields["session_id"] = summary.session_id
        if summary.num_turns is not None:
            fields["num_turns"] = summary.num_turns
        if summary.cost_usd is not None:
            fields["cost_usd"] = summary.cost_usd
        result = summary.result
        if result is not None:
            fields.update(
                result=result.result, is_error=result.is_error,
                api_error_status=result.api_error_status,
            )
        return fields

    def _flush_summaries(self, *, force: bool = False) -> None:
        now = self.clock()
        if not force and now - self._last_flush < SUMMARY_FLUSH_S:
            return
        self._last_flush = now
        dirty = [a for a in self.supervisor.agents.values() if a.dirty]
        self.service.repo.update_summaries({a.task_id: self._summary_fields(a) for a in dirty})
        for agent in dirty:
            agent.dirty = False

    def _apply_cancel_requests(self, now: float) -> None:
        for task in self.service.repo.cancel_requests():
            agent = self.supervisor.agents.get(task.id)
            if agent is not None:
                self.supervisor.request_stop(
                    agent, TaskState.CANCELLED, task.cancel_reason or "cancelled", now
                )
            elif task.id not in self._preparing:
                # Claimed but with no agent to stop (its start failed half-way, or it is
                # a row no owner follows): nothing runs, so it is cancelled at once.
                self._cancel_unstarted(task, now)

    def _cancel_unstarted(self, task: Task, now: float) -> None:
        reason = task.cancel_reason or "cancelled"
        if self.service.repo.transition(
            task.id, [TaskState.RUNNING], status=TaskState.CANCELLED, ended_at=now, error=reason,
            attempts=_with_attempt(task, TaskState.CANCELLED, reason, None, now),
        ):
            self._after_finish(task.id)

    # -- dispatch ----------------------------------------------------------------------------

    def _dispatch(self, now: float) -> None:
        repo = self.service.repo
        candidates = repo.dispatchable(limit=1_000, now=now)
        if not candidates:
            self.admission = None
            self.lock.publish_admission(None)
            return
        self.last_busy_at = now
        # Averaged over the last few readings so one spike does not stall admission.
        sample = self.monitor.smoothed()
        self.admission = decide_admission(
            queued=len(candidates),
            running=len(self.supervisor.agents) + len(self._preparing),
            sample=sample,
            started_at=[a.started_at for a in self.supervisor.agents.values()]
            + [p.claimed_at for p in self._preparing.values()],
            limits=self.limits,
            now=now,
        )
        self.lock.publish_admission(self.admission.reason)  # a file write only on change
        started = 0
        for task in candidates[: self.admission.start]:
            started += self._start_agent(task, now)
        if started:
            self.bus.publish(ScaleChanged(len(self.supervisor.agents), len(candidates) - started,
                                          self.admission.reason))

    def _start_agent(self, task: Task, now: float) -> int:
        repo = self.service.repo
        attempt = task.attempt + 1
        claimed = repo.transition(
            task.id, [TaskState.QUEUED], status=TaskState.RUNNING, started_at=now,
            attempt=attempt, pid=None, ended_at=None, exit_code=None, not_before=None,
        )
        if not claimed:
            return 0  # cancelled or taken meanwhile
        crash_point("claimed")
        task = repo.get(task.id)
        try:
            if self._needs_prepare(task):
                validate_cwd(task.cwd)  # fail fast, before a thread and a worktree
                self._begin_preparation(task, now)
                return 1
        except InvalidRequest as exc:
            self._fail_to_start(task.id, str(exc), now)
            return 0
        except Exception as exc:  # one bad task must never stop the owner's tick
            log.exception("task %s: unexpected error while preparing it", task.id)
            self._fail_to_start(task.id, f"could not prepare the task: {exc}", now)
            return 0
        return self._launch(task, None, now)

    def _needs_prepare(self, task: Task) -> bool:
        if self.hooks is None:
            return False
        needs = getattr(self.hooks, "needs_prepare", None)
        return True if needs is None else bool(needs(task))

    def _begin_preparation(self, task: Task, now: float) -> None:
        if self._prepare_pool is None:
            self._prepare_pool = ThreadPoolExecutor(PREPARE_WORKERS,
                                                    thread_name_prefix="claudine-prepare")
        loop = asyncio.get_running_loop()
        future = self._prepare_pool.submit(self.hooks.prepare, task)
        future.add_done_callback(lambda _: loop.call_soon_threadsafe(self.wake))
        self._preparing[task.id] = Preparation(task, future, now)

    def _launch_prepared(self, now: float) -> None:
        """Start the agents whose preparation ended (or fail / cancel their tasks)."""
        for task_id, prep in list(self._preparing.items()):
            if not prep.future.done():
                continue
            del self._preparing[task_id]
            task = self.service.repo.get(task_id)
            error = prep.future.exception()
            if task.cancel_requested:
                self._cancel_unstarted(task, now)
            elif error is not None:
                self._fail_to_start(task_id, str(error), now)
            else:
                self._launch(task, prep.future.result(), now)

    def _fail_to_start(self, task_id: str, reason: str, now: float) -> None:
        task = self.service.repo.get(task_id)
        self.service.repo.transition(
            task_id, [TaskState.RUNNING], status=TaskState.FAILED, ended_at=now, error=reason,
            attempts=_with_attempt(task, TaskState.FAILED, reason, None, now),
        )
        log.error("task %s failed to start: %s", task_id, reason)
        self._after_finish(task_id)  # e.g. remove a worktree prepared for it

    def _launch(self, task: Task, prepared_cwd: str | None, now: float) -> int:
        """Spawn the agent of a claimed task, in ``prepared_cwd`` when a hook made one."""
        repo = self.service.repo
        attempt = task.attempt
        reason: str | None = None
        try:
            cwd = prepared_cwd or validate_cwd(task.cwd)
            # The task's own settings, fixed when it was delegated; the owner's only for
            # rows older than that (schema version 4).
            executable = resolve_executable(task.claude_bin or self.config.claude_bin, self.env)
            argv = build_argv(
                task, executable,
                default_permission_mode=self.config.permission_mode,
                default_allowed_tools=self.config.allowed_tools,
                extra_args=task.agent_args if task.claude_bin else self.config.extra_agent_args,
            )
            agent = self.supervisor.spawn(
                task.id,
                run_dir_for(self.config.runs_dir, task.id, attempt),
                argv,
                env=build_env({**self.env, **task.agent_env}),
                cwd=cwd,
                max_output_bytes=task.max_output_bytes or self.config.max_output_bytes,
                started_at=now,
                deadline=self._deadline(task, now),
                prompt=agent_input(task),
            )
        except (AgentNotFound, InvalidRequest, RuntimeError) as exc:
            reason = str(exc)  # already says what is wrong and what to do
        except OSError as exc:
            reason = f"could not start the agent: {exc}"
        except Exception as exc:  # one bad task must never stop the owner's tick
            log.exception("task %s: unexpected error while starting its agent", task.id)
            reason = f"could not start the agent: {type(exc).__name__}: {exc}"
        if reason is not None:
            self._fail_to_start(task.id, reason, now)
            return 0
        crash_point("spawned")
        repo.transition(task.id, [TaskState.RUNNING], pid=agent.pid,
                        pid_started_at=agent.pid_started_at)
        crash_point("pid_recorded")
        return 1

    def _deadline(self, task: Task, started_at: float) -> float | None:
        timeout = task.timeout_s or self.config.task_timeout_s
        return started_at + timeout if timeout else None

    async def _stop_all_agents(self) -> None:
        now = self.clock()
        self.supervisor.stop_all(now)
        deadline = time.monotonic() + self.config.kill_grace_s + 5
        while self.supervisor.agents and time.monotonic() < deadline:
            self._owner_tick(self.clock())
            await asyncio.sleep(0.05)

    # -- events ------------------------------------------------------------------------------

    def _publish_changes(self, *, full: bool = False) -> None:
        """Publish a TaskStateChanged for each task whose status moved since last look."""
        repo = self.service.repo
        now = self.clock()
        changed = repo.active() if full else repo.changed_since(self._last_diff_at - 2.0)
        self._last_diff_at = now
        for task in changed:
            previous = self._known.get(task.id)
            if previous is task.status:
                continue
            self._known[task.id] = task.status
            if not full:
                self.bus.publish(TaskStateChanged(task, previous))


def _with_attempt(
    task: Task, state: TaskState, error: str | None, exit_code: int | None, now: float
) -> list[dict[str, Any]]:
    """The task's attempt history with the attempt now ending appended."""
    entry = {"attempt": task.attempt, "started_at": iso_time(task.started_at),
             "ended_at": iso_time(now), "state": state.value, "error": error,
             "exit_code": exit_code}
    return [*task.attempts, entry]


def _default_hooks(config: Config, repo: TaskRepo) -> Any:
    """Worktree isolation, when that module is present (it needs git on the machine)."""
    try:
        from claudine_core.isolation.worktrees import default_hooks
    except ImportError:
        return None
    return default_hooks(config, repo)
