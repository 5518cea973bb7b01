"""Dispatch: which queued tasks start now, and starting their agents.

Each owner tick asks the autoscaler how many of the dispatchable tasks fit, claims that
many (a guarded ``queued -> running`` update) and starts their agents. A task whose
isolation hook must prepare it (a worktree, a setup command) is prepared on a thread
first: that can take minutes and must not freeze the loop, or the console sharing it.
On a remote backend (Ray) the start itself runs on a thread too (placing a run takes a
second or more), and the cluster's free agent slots decide how many start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import sys
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from claudine_core.agents.claude import (
    AgentNotFound,
    agent_input,
    build_argv,
    build_env,
    resolve_executable,
)
from claudine_core.autoscaler import Admission, AdmissionLimits, decide_admission
from claudine_core.config import Config
from claudine_core.continuation import plan_continuation
from claudine_core.events import StoreVersion, state_version
from claudine_core.faults import crash_point
from claudine_core.finishing import RunFinisher
from claudine_core.models import Task, TaskState
from claudine_core.ownership import OwnerLock
from claudine_core.resources import ResourceMonitor
from claudine_core.run_dirs import run_dir_for
from claudine_core.service import InvalidRequest, validate_cwd
from claudine_core.store import StoreError, TaskRepo
from claudine_core.supervisor import RunningAgent, Supervisor
from claudine_core.usage_limits import Gate

if TYPE_CHECKING:  # the local backend never loads the remote machinery
    from claudine_core.backends.remote import Placement, RemoteAgent, RemoteSupervisor

log = logging.getLogger("claudine.engine")

PREPARE_WORKERS = 2  # worktree creations (and setup commands) at once
START_WORKERS = 8  # runs being placed on a remote backend at once (each waits on the network)
NO_ROOM_WAIT_S = 2.0  # a task whose run found no free agent slot is tried again after this
CONNECTING_REASON = "waiting: connecting to the cluster"
NO_SLOTS_REASON = ("waiting: no live node of the cluster has agent slots (ray start "
                   "--resources '{\"agent_slot\": N}')")
DISPATCH_SCAN = 1_000  # queued tasks looked at per tick


@dataclass
class Preparation:
    """A claimed task whose isolation hook runs on a thread before its agent can start,
    or whose run a thread is starting on a remote backend."""

    task: Task
    future: Future[Any]
    """Its result: the prepared directory (str or None), or the started RemoteAgent."""
    claimed_at: float


class StartFailed(Exception):
    """A remote start failed; the message says why, as the task's error."""


class Dispatcher:
    """Admits queued tasks and starts their agents, preparing them first when needed.

    Args:
        config: the owner's settings.
        repo: the home's store.
        supervisor: where agents are started.
        finisher: ends the tasks whose start fails.
        hooks: the isolation hooks (``prepare``, ``needs_prepare``), or None.
        monitor: the resource readings admission decides on.
        lock: the owner's lock, next to which the admission reason is published.
        limits: admission limits from the settings.
        env: the environment agents inherit.
        wake: called (from a thread) when a preparation ends, to run a tick at once.
        gate: whether new agents may start at all (a usage-limit pause, a budget);
            None: always.
    """

    def __init__(
        self,
        config: Config,
        repo: TaskRepo,
        supervisor: Supervisor,
        finisher: RunFinisher,
        *,
        hooks: Any,
        monitor: ResourceMonitor,
        lock: OwnerLock,
        limits: AdmissionLimits,
        env: Mapping[str, str],
        wake: Callable[[], None],
        gate: Callable[[float], Gate] | None = None,
    ) -> None:
        self.config = config
        self.repo = repo
        self.supervisor = supervisor
        self.finisher = finisher
        self.hooks = hooks
        self.monitor = monitor
        self.lock = lock
        self.limits = limits
        self.env = env
        self.wake = wake
        self.gate = gate or (lambda now: Gate())
        self.admission: Admission | None = None
        self._held_at: tuple[StoreVersion, str] | None = None  # when _hold last counted
        self._held_waiting = False
        self.preparing: dict[str, Preparation] = {}
        self._prepare_pool: ThreadPoolExecutor | None = None
        self._start_pool: ThreadPoolExecutor | None = None
        # When the last look found nothing to start: the store's version then, and when
        # the first task in retry back-off becomes due (inf: none is).
        self._empty_at: StoreVersion | None = None
        self._next_due = math.inf

    def _queue_unchanged(self, now: float) -> bool:
        """Nothing can have become dispatchable since the last look found nothing."""
        return (self._empty_at is not None and now < self._next_due
                and state_version(self.repo) == self._empty_at)

    def dispatch(self, now: float) -> bool:
        """Start the queued tasks that fit now; True if any task was waiting to start.

        While tasks wait, admission is decided every tick (a slot or the CPU may free up);
        with none waiting, the queue is read again only once the store changed or a task
        in retry back-off is due.
        """
        gate = self.gate(now)
        if gate.stop_running:
            self._stop_running(gate.reason or "a budget is reached", now)
        if not gate.open and not gate.resuming_only:
            return self._hold(gate.reason)
        if gate.open and self._queue_unchanged(now):
            return False
        version = state_version(self.repo)  # before the read: a write after it is seen next
        candidates = self.repo.dispatchable(limit=DISPATCH_SCAN, now=now,
                                            resuming_only=gate.resuming_only)
        if not candidates and not gate.open:
            return self._hold(gate.reason)
        if not candidates:
            self.admission = None
            self.lock.publish_admission(None)
            self._empty_at, self._next_due = version, self._first_back_off_end(now)
            return False
        self._empty_at = None
        if self.supervisor.remote:
            self.admission = self._remote_admission(cast("RemoteSupervisor", self.supervisor),
                                                    len(candidates))
        else:
            # Averaged over the last few readings so one spike does not stall admission.
            sample = self.monitor.smoothed()
            self.admission = decide_admission(
                queued=len(candidates),
                running=len(self.supervisor.agents) + len(self.preparing),
                sample=sample,
                started_at=[a.started_at for a in self.supervisor.agents.values()]
                + [p.claimed_at for p in self.preparing.values()],
                limits=self.limits,
                now=now,
            )
        self.lock.publish_admission(self.admission.reason)  # a file write only on change
        for task in candidates[: self.admission.start]:
            self._start(task, now)
        return True

    def _remote_admission(self, supervisor: RemoteSupervisor, queued: int) -> Admission:
        """On a cluster the nodes' agent slots (and ``max_agents``) decide, not this
        machine's CPU and memory: the agents run elsewhere."""
        free = supervisor.free_slots()
        if not supervisor.slots_known:
            return Admission(0, CONNECTING_REASON)
        room = queued if free is None else max(0, free - len(self.preparing))
        start = min(queued, room)
        if start == queued:
            return Admission(start, None)
        if supervisor.slots_total == 0:
            return Admission(0, NO_SLOTS_REASON)
        return Admission(start, f"waiting: all agent slots in use ({len(supervisor.agents)} "
                                "running)")

    def _hold(self, reason: str | None) -> bool:
        """Nothing may start (a pause, a budget): say why while tasks wait; True if any do.

        The queued count is read again only when the store or the reason changed."""
        self._empty_at = None  # once the gate opens, look at the queue again
        key = (state_version(self.repo), reason or "")
        if key != self._held_at:
            self._held_at = key
            self._held_waiting = bool(self.repo.count_by_status().get(TaskState.QUEUED))
        self.admission = Admission(start=0, reason=reason) if self._held_waiting else None
        self.lock.publish_admission(reason if self._held_waiting else None)
        return self._held_waiting

    def _stop_running(self, reason: str, now: float) -> None:
        """``budget_stop``: end the running agents, saying why (no retry follows)."""
        for agent in self.supervisor.agents.values():
            if agent.stop_state is None:
                log.warning("task %s: stopping it, %s", agent.task_id, reason)
                self.supervisor.request_stop(agent, TaskState.FAILED, f"stopped: {reason}",
                                             now)

    def _first_back_off_end(self, now: float) -> float:
        """When the first queued task in retry back-off may start (inf: none waits so)."""
        queued = self.repo.list_tasks(statuses=[TaskState.QUEUED])
        return min((t.not_before for t in queued if t.not_before is not None
                    and t.not_before > now), default=math.inf)

    def _start(self, task: Task, now: float) -> None:
        attempt = task.attempt + 1
        claimed = self.repo.transition(
            task.id, [TaskState.QUEUED], status=TaskState.RUNNING, started_at=now,
            attempt=attempt, pid=None, ended_at=None, exit_code=None, not_before=None,
            resuming=False, node=None,
        )
        if not claimed:
            return  # cancelled or taken meanwhile
        crash_point("claimed")
        if task.continue_from and task.attempt == 0 and not task.resume_session_id:
            # Its first attempt: the continued task has ended by now (it is a dependency),
            # so its session (or what it left) is known. Automatic retries keep the choice.
            self.repo.transition(task.id, [TaskState.RUNNING],
                                 **plan_continuation(self.repo, task))
        task = self.repo.get(task.id)
        try:
            if self._needs_prepare(task):
                validate_cwd(task.cwd)  # fail fast, before a thread and a worktree
                self._begin_preparation(task, now)
                return
        except InvalidRequest as exc:
            self.finisher.fail_to_start(task.id, str(exc), now)
            return
        except Exception as exc:  # one bad task must never stop the owner's tick
            log.exception("task %s: unexpected error while preparing it", task.id)
            self.finisher.fail_to_start(task.id, f"could not prepare the task: {exc}", now)
            return
        self._launch(task, None, now)

    def _needs_prepare(self, task: Task) -> bool:
        if self.hooks is None:
            return False
        needs = getattr(self.hooks, "needs_prepare", None)
        return True if needs is None else bool(needs(task))

    def _begin_preparation(self, task: Task, now: float) -> None:
        if self._prepare_pool is None:
            self._prepare_pool = ThreadPoolExecutor(PREPARE_WORKERS,
                                                    thread_name_prefix="claudine-prepare")
        self._on_thread(self._prepare_pool, task, now, self.hooks.prepare, task)

    def _on_thread(self, pool: ThreadPoolExecutor, task: Task, now: float,
                   work: Callable[..., Any], *args: Any) -> None:
        """Run ``work(*args)`` for a claimed task on ``pool``; a tick sees it end."""
        loop = asyncio.get_running_loop()
        future = pool.submit(work, *args)
        future.add_done_callback(lambda _: loop.call_soon_threadsafe(self.wake))
        self.preparing[task.id] = Preparation(task, future, now)

    def launch_prepared(self, now: float) -> None:
        """Start the agents whose preparation ended (or fail / cancel their tasks), and
        follow the remote runs whose start ended."""
        for task_id, prep in list(self.preparing.items()):
            if not prep.future.done():
                continue
            del self.preparing[task_id]
            task = self.repo.get(task_id)
            error = prep.future.exception()
            result = None if error is not None else prep.future.result()
            if isinstance(result, RunningAgent):  # a run a remote backend started
                self._follow_remote(task, result, now)
            elif _no_room(error) and not task.cancel_requested:
                log.info("task %s waits: %s", task_id, error)
                unclaim(self.repo, task, not_before=now + NO_ROOM_WAIT_S)
            elif task.cancel_requested:
                self.finisher.cancel_unstarted(task, now)
            elif error is not None:
                self.finisher.fail_to_start(task_id, str(error), now)
            else:
                self._launch(task, result, now)

    async def settle_preparations(self) -> None:
        """Let running preparations end, then give their tasks back to the queue.

        A stopping owner starts no agent; the worktree stays recorded on the task, so the
        next owner's ``prepare`` reuses it instead of making another. A run a remote
        backend already started stays the task's: it is recorded, and the next owner
        re-attaches it.
        """
        futures = [p.future for p in self.preparing.values()]
        if futures:
            await asyncio.to_thread(wait_futures, futures)
        for pool in (self._prepare_pool, self._start_pool):
            if pool is not None:
                pool.shutdown(wait=False)
        self._prepare_pool = self._start_pool = None
        for prep in self.preparing.values():
            started = None if prep.future.exception() else prep.future.result()
            with contextlib.suppress(StoreError):
                if isinstance(started, RunningAgent):
                    # It runs: recorded, it stays the task's run for the next owner.
                    self._follow_remote(self.repo.get(prep.task.id), started,
                                        self.finisher.clock())
                else:
                    unclaim(self.repo, prep.task)
        self.preparing.clear()

    def _launch(self, task: Task, prepared_cwd: str | None, now: float) -> None:
        """Spawn the agent of a claimed task, in ``prepared_cwd`` when a hook made one (on
        a remote backend: begin starting its run, on a thread)."""
        if self.supervisor.remote:
            if self._start_pool is None:
                self._start_pool = ThreadPoolExecutor(START_WORKERS,
                                                      thread_name_prefix="claudine-start")
            # Read here, on the loop: the start threads keep off the store.
            owner = self._session_owner(task)
            self._on_thread(self._start_pool, task, now, self._start_remote,
                            self.supervisor, task, prepared_cwd, owner, now)
            return
        try:
            agent = self._spawn(task, prepared_cwd, now)
        except Exception as exc:  # one bad task must never stop the owner's tick
            self.finisher.fail_to_start(task.id, start_failure(task.id, exc), now)
            return
        crash_point("spawned")
        # Outside the catch-all above: a store error here is the loop's to back off from,
        # not a reason to fail a task whose agent is running.
        self._record_started(task, agent)

    def _record_started(self, task: Task, agent: RunningAgent) -> None:
        run = getattr(agent, "run", None)  # where a remote backend placed it
        where = {"node": run.node_id} if run is not None else {}
        self.repo.transition(task.id, [TaskState.RUNNING], pid=agent.pid,
                             pid_started_at=agent.pid_started_at, **where)
        crash_point("pid_recorded")

    def _spawn(self, task: Task, prepared_cwd: str | None, now: float) -> RunningAgent:
        argv, options = self._agent_launch(task, prepared_cwd, now)
        return self.supervisor.spawn(
            task.id, run_dir_for(self.config.runs_dir, task.id, task.attempt), argv, **options)

    def _start_remote(self, supervisor: RemoteSupervisor, task: Task, prepared_cwd: str | None,
                      session_owner: Task | None, now: float) -> RemoteAgent:
        """On a start thread: place the task's run on the backend (StartFailed if not).
        ``session_owner``: the task whose agent session the run resumes, if any."""
        try:
            argv, options = self._agent_launch(task, prepared_cwd, now)
            return supervisor.start_run(
                task.id, task.attempt, run_dir_for(self.config.runs_dir, task.id, task.attempt),
                argv, placement=self._placement(task, options["cwd"], session_owner),
                **options)
        except Exception as exc:
            if _no_room(exc):
                raise  # not a failure: the task waits in the queue
            raise StartFailed(start_failure(task.id, exc)) from exc

    def _placement(self, task: Task, cwd: str, owner: Task | None) -> Placement:
        """Where a task's run may go: anywhere when the nodes share this machine's files;
        else, for a task in a worktree of a repository with a remote, anywhere its code
        travels to by git; else only this machine's node. A run that resumes ``owner``'s
        session goes to the node holding it. Blocks (a git push)."""
        from claudine_core.backends import git_travel
        from claudine_core.backends.base import run_name
        from claudine_core.backends.remote import Placement

        session_node = _ran_on(owner) if owner is not None else None
        if self.config.ray_shared_fs:
            return Placement(session_node=session_node)
        if not (task.worktree_path and task.worktree):
            return Placement(here_because="it runs in place, not in a worktree")
        try:
            checkout = git_travel.send(task.worktree_path, cwd, run_name(task.id, task.attempt),
                                       work_name=(owner or task).id)
        except git_travel.TravelError as exc:
            raise OSError(str(exc)) from None
        if checkout is None:
            return Placement(here_because="its repository has no remote for the other nodes "
                             "to fetch it from")
        return Placement(git=checkout, worktree=task.worktree_path, session_node=session_node)

    def _session_owner(self, task: Task) -> Task | None:
        """The task whose agent session this run resumes (itself on a retry, the task it
        resumes or continues), None when it starts a new session."""
        if not task.resume_session_id:
            return None
        for candidate_id in (task.id, task.parent_id, task.continue_from):
            if candidate_id is None:
                continue
            candidate = task if candidate_id == task.id else self._get_or_none(candidate_id)
            if candidate is not None and candidate.session_id == task.resume_session_id:
                return candidate
        return None

    def _get_or_none(self, task_id: str) -> Task | None:
        try:
            return self.repo.get(task_id)
        except LookupError:
            return None

    def _follow_remote(self, task: Task, agent: RunningAgent, now: float) -> None:
        """Follow a run that started on the remote backend, and record it on its task."""
        supervisor = cast("RemoteSupervisor", self.supervisor)
        supervisor.register(cast("RemoteAgent", agent))
        crash_point("spawned")
        self._record_started(task, agent)
        if task.cancel_requested:  # while it was being placed
            supervisor.request_stop(agent, TaskState.CANCELLED,
                                         task.cancel_reason or "cancelled", now)

    def _agent_launch(self, task: Task, prepared_cwd: str | None,
                      now: float) -> tuple[list[str], dict[str, Any]]:
        """The agent's command line, and how it runs (the supervisor's start options)."""
        config = self.config
        cwd = prepared_cwd or validate_cwd(task.cwd)
        # The task's own settings, fixed when it was delegated; the owner's only for
        # rows older than that (schema version 4).
        executable = resolve_executable(task.claude_bin or config.claude_bin, self.env)
        argv = build_argv(
            task, executable,
            default_permission_mode=config.permission_mode,
            default_allowed_tools=config.allowed_tools,
            extra_args=task.agent_args if task.claude_bin else config.extra_agent_args,
        )
        return argv, {
            "env": build_env({**self.env, **task.agent_env}),
            "cwd": cwd,
            "max_output_bytes": task.max_output_bytes or config.max_output_bytes,
            "started_at": now,
            "deadline": agent_deadline(task, now, config.task_timeout_s),
            "prompt": agent_input(task),
            "stream_input": True,
        }


def _no_room(error: BaseException | None) -> bool:
    """Whether a remote start found no room for its run (backends.base.NoRoom). Only a
    remote backend raises it, so the local engine never loads the backends package."""
    if error is None or "claudine_core.backends.base" not in sys.modules:
        return False
    from claudine_core.backends.base import NoRoom

    return isinstance(error, NoRoom)


def _ran_on(task: Task) -> str | None:
    """The node a task's latest attempt ran on (its own field is cleared when a retry is
    claimed; the attempt history keeps it)."""
    if task.node:
        return task.node
    return next((str(a["node"]) for a in reversed(task.attempts) if a.get("node")), None)


def start_failure(task_id: str, exc: Exception) -> str:
    """Why an agent could not start, as its task's error."""
    if isinstance(exc, AgentNotFound | InvalidRequest | RuntimeError):
        return str(exc)  # already says what is wrong and what to do
    if isinstance(exc, OSError):
        return f"could not start the agent: {exc}"
    log.exception("task %s: unexpected error while starting its agent", task_id,
                  exc_info=exc)
    return f"could not start the agent: {type(exc).__name__}: {exc}"


def agent_deadline(task: Task, started_at: float, default_timeout_s: float | None) -> float | None:
    """When the task's agent is stopped as timed out (None: never)."""
    timeout = task.timeout_s or default_timeout_s
    return started_at + timeout if timeout else None


def unclaim(repo: TaskRepo, task: Task, not_before: float | None = None) -> None:
    """Undo a claim whose agent never started: queued again (not before ``not_before``),
    its attempt given back."""
    repo.transition(
        task.id, [TaskState.RUNNING], status=TaskState.QUEUED, attempt=task.attempt - 1,
        started_at=None, not_before=not_before,
    )
