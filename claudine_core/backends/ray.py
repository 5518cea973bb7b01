"""The Ray backend: each run a detached, named actor on one node of a Ray cluster.

Optional (``pip install 'claudine[ray]'``): nothing else in claudine imports this module
or ray (an import-linter contract says so), so the local engine never pays for it.

A run is the actor ``run-<task>-<attempt>`` in the backend's namespace, created with
``lifetime="detached"`` (it outlives the owner that made it), an ``agent_slot`` of the
node's declared ones, and pinned to a node when the spec names one. The actor starts the
agent exactly as the local backend does (a :class:`Supervisor` and the same wrapper, so
the same process-group ownership and stop), in a run folder under ``run_root`` on its
node; the wrapper's ``stdout.jsonl`` there is the spill file the actor serves by offset.

Ray's own retries are off everywhere (``max_restarts=0``, ``max_task_retries=0``): a Ray
retry would start the agent again from scratch and stitch two runs' output into one
stream. A run whose node dies is reported ``lost`` and the engine's retry policy decides.

Liveness is our own watchdog, not Ray's: ``poll`` never blocks; it keeps one status call
in flight per run and reports the run lost when no answer came for ``lost_after_s``, or
at once when Ray says its actor died or its node is down. Measured (docs/ray-backend.md):
calls to an actor on a killed node fail after ~2 s as "temporarily unavailable", and Ray
marks the node dead only after ~14 s.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ray
from ray.exceptions import ActorDiedError, GetTimeoutError, RayActorError
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from claudine_core.backends.base import (
    READ_LIMIT,
    ExecutionBackend,
    NodeCapacity,
    NodeEvent,
    NodeWatch,
    NoRoom,
    RunPhase,
    RunRef,
    RunSpec,
    RunStatus,
    run_name,
)

SLOT_RESOURCE = "agent_slot"
CALL_TIMEOUT_S = 30.0  # a synchronous call to a run's actor (start, read, kill) at most
RUNNING_CALL_TIMEOUT_S = 2.0  # a call to a running run's actor from the owner's pump
NOT_NOW = object()  # no answer in time: ask again later
REAP_WAIT_S = 600.0  # how long a lost run's actor waits for its node to wake up
GIT_START_TIMEOUT_S = 1800.0  # a start that first fetches and sets up the task's code
REPO_CACHES = "repos"  # under a node's run root: a bare cache per repository URL
CHECKOUTS = "checkouts"  # under a node's run root: each travelling run's worktree
NODE_CHECK_S = 1.0  # how often the node table is read at most
# How Ray says an actor died on a dead node before its constructor (which starts the
# agent) ran, and names the node (ray/exceptions.py, ActorDiedError).
NEVER_RAN = "The actor never ran"
DEAD_NODE = re.compile(r"Node Id: ([0-9a-f]+)")
SUSPECT_FOR_S = 60.0
"""A node that lost a run gets no new run for this long unless none other has room: Ray
still lists a dead node as alive for ~14 s, and schedules new runs there meanwhile."""


@ray.remote(num_cpus=0, max_restarts=0, max_task_retries=0)
class RunActor:
    """One run on its node: the agent's wrapper, its run folder, its output by offset."""

    def __init__(self, spec: RunSpec, run_root: str, kill_grace_s: float) -> None:
        from claudine_core.run_dirs import run_dir_for
        from claudine_core.supervisor import ESCALATION_MARGIN_S, Supervisor

        self.spec = spec
        self.run_root = Path(run_root)
        self.escalate_after_s = kill_grace_s + ESCALATION_MARGIN_S
        self.supervisor = Supervisor(kill_grace_s=kill_grace_s, agent_nice=spec.nice)
        self.run_dir = run_dir_for(self.run_root, spec.task_id, spec.attempt)
        self.start_error: str | None = None
        self.agent: Any = None  # its RunningAgent, once started
        self.carried: dict[str, Any] | None = None
        """What carrying the work back reported (a run with a git checkout), once done."""
        self._carrying: threading.Thread | None = None
        self.no_room = _short_of_memory(spec.memory_needed)
        if self.no_room:
            self.start_error = self.no_room
            return
        try:
            cwd = self._check_out() if spec.git is not None else spec.cwd
        except OSError as exc:  # git_travel.TravelError: no agent to start
            self.start_error = str(exc)
            return
        self.agent = self.supervisor.spawn(
            spec.task_id, self.run_dir, spec.argv, env=spec.env, cwd=cwd,
            max_output_bytes=spec.max_output_bytes, started_at=time.time(), deadline=None,
            prompt=spec.prompt, stream_input=spec.stream_input)

    @property
    def work_dir(self) -> Path:
        """Where a run with a git checkout has it on this node."""
        git = self.spec.git
        name = git.work_name if git is not None and git.work_name else \
            run_name(self.spec.task_id, self.spec.attempt)
        return self.run_root / CHECKOUTS / name

    def _check_out(self) -> str:
        """The task's code on this node, set up as its repository says; the agent's cwd."""
        from claudine_core.backends import git_travel

        assert self.spec.git is not None
        try:
            cwd = git_travel.check_out(self.spec.git, self.run_root / REPO_CACHES,
                                       self.work_dir)
        except git_travel.TravelError as exc:
            raise OSError(str(exc)) from None
        self._set_up()
        return cwd

    def _set_up(self) -> None:
        """Run the repository's setup command (``setup`` in its .claudine.toml) in the
        checkout, as the head does in a new worktree: what it builds (dependencies, say)
        is not tracked, so it did not travel. Raises OSError when it fails."""
        from claudine_core.isolation.errors import WorktreeError
        from claudine_core.isolation.settings import RepoSettings, load_settings
        from claudine_core.isolation.worktrees import LOG_NAME, run_setup

        try:
            settings = load_settings(self.work_dir)
            # Files the head copies into a worktree (``copy``) are not on this node.
            run_setup(RepoSettings(setup=settings.setup,
                                   setup_timeout_s=settings.setup_timeout_s),
                      self.work_dir, self.work_dir, self.run_dir / LOG_NAME)
        except (WorktreeError, ValueError) as exc:
            raise OSError(f"{exc} (on this node)") from None

    def describe(self) -> tuple[str, int | None, float | None, str | None, bool]:
        """Where the run is: its node, its wrapper's pid and start time there, why its
        agent did not start (None: it did), and whether that is only a lack of room."""
        node_id = ray.get_runtime_context().get_node_id()
        if self.agent is None:
            return node_id, None, None, self.start_error, bool(self.no_room)
        return node_id, self.agent.pid, self.agent.pid_started_at, None, False

    def read(self, offset: int, limit: int, name: str = "stdout.jsonl") -> bytes:
        from claudine_core.backends.local import read_log

        return read_log(self.run_dir / name, offset, limit)

    def status(self) -> tuple[str, dict[str, Any] | None, float]:
        now = time.time()
        if self.agent is None:
            return RunPhase.ENDED.value, {"spawn_error": self.start_error}, now
        self.supervisor.enforce_stops(now)
        record = self.supervisor.exit_record(self.agent)
        if record is None and self.supervisor.is_alive(self.agent):
            return RunPhase.RUNNING.value, None, now
        record = record or self.supervisor.exit_record(self.agent)
        if record is None:
            return RunPhase.LOST.value, None, now
        if self.spec.git is not None:
            if self.carried is None:
                self._carry_back()
                return RunPhase.RUNNING.value, None, now  # not ended until it is back
            record = {**record, "git": self.carried}
        return RunPhase.ENDED.value, record, now

    def _carry_back(self) -> None:
        """Commit and push the agent's work, on a thread (a push takes seconds): status
        calls keep answering meanwhile, so the owner does not take the run for lost."""
        if self._carrying is not None:
            return
        from claudine_core.backends import git_travel

        def carry() -> None:
            assert self.spec.git is not None
            self.carried = git_travel.carry_back(self.spec.git, self.work_dir)

        self._carrying = threading.Thread(target=carry, daemon=True, name="carry-back")
        self._carrying.start()

    def post(self, message_id: str, text: str) -> bool:
        from claudine_core.agents import inbox

        return inbox.post_once(str(self.run_dir), message_id, text)

    def delivered(self) -> dict[str, float]:
        from claudine_core.agents import inbox

        return inbox.delivered_all(str(self.run_dir))

    def stop(self) -> None:
        from claudine_core.models import TaskState

        if self.agent is None:
            return
        self.supervisor.request_stop(self.agent, TaskState.CANCELLED,
                                     "stopped through the execution backend", time.time())
        # The wrapper kills what is left after the grace; should it fail to, the
        # supervisor's escalation must run even if nobody polls this actor.
        timer = threading.Timer(self.escalate_after_s + 0.1, self._escalate)
        timer.daemon = True
        timer.start()

    def _escalate(self) -> None:
        self.supervisor.enforce_stops(time.time())

    def kill(self) -> None:
        if self.agent is not None:
            self.supervisor.kill(self.agent)

    def release(self) -> None:
        if self.agent is not None:
            self.supervisor.forget(self.agent)
        if self.spec.git is not None and not (self.carried or {}).get("error"):
            # Work that did not come back stays in its checkout, for a person to rescue.
            from claudine_core.backends import git_travel

            git_travel.remove_checkout(self.spec.git, self.run_root / REPO_CACHES,
                                       self.work_dir)


def _room_in(free: dict[str, float], node_id: str | None) -> bool:
    """Whether ``free`` (slots per live node) has a slot on ``node_id`` (None: anywhere)."""
    if node_id is not None:
        return free.get(node_id, 0) >= 1
    return any(slots >= 1 for slots in free.values())


def _short_of_memory(needed: int) -> str:
    """Why this node cannot start an agent needing ``needed`` bytes now ("": it can)."""
    if needed <= 0:
        return ""
    import psutil

    available = psutil.virtual_memory().available
    if available >= needed:
        return ""
    mib = 1024 * 1024
    return (f"only {available // mib} MiB of memory available, {needed // mib} MiB needed "
            "(memory_reserve + agent_memory_cost)")


@dataclass
class _Followed:
    """A run this backend follows, and its heartbeat."""

    ref: RunRef
    actor: Any
    last_answer_at: float
    status: RunStatus
    pending: Any = None
    """The status call in flight (one at a time)."""
    asked: dict[tuple[Any, ...], Any] = field(default_factory=dict)
    """Other calls in flight, by what they ask: asked again, a call still unanswered is
    waited on again, not sent twice (a frozen node must not pile calls up)."""


class RayBackend:
    """Agents as detached actors on a Ray cluster.

    Args:
        address: the cluster's address (``host:port`` of the head's GCS).
        namespace: the Ray namespace the run actors are named in (one per home).
        run_root: where each node keeps run folders (the same path on every node).
        kill_grace_s: seconds between SIGTERM and SIGKILL of a stop.
        lost_after_s: a run whose actor has not answered for this long is lost.
        node_ip_address: this process's address for Ray (127.0.0.1 in loopback tests).
        clock: monotonic time, for heartbeats.
    """

    name = "ray"

    def __init__(self, *, address: str, namespace: str, run_root: Path, kill_grace_s: float,
                 lost_after_s: float = 20.0, node_ip_address: str | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not ray.is_initialized():
            ray.init(address=address, namespace=namespace, logging_level=logging.ERROR,
                     _node_ip_address=node_ip_address)
        self.namespace = namespace
        self.run_root = run_root
        self.kill_grace_s = kill_grace_s
        self.lost_after_s = lost_after_s
        self.clock = clock
        self.followed: dict[str, _Followed] = {}
        self._nodes = NodeWatch()
        self._node_table: list[dict[str, Any]] = []
        self._node_table_at = float("-inf")
        self._suspect: dict[str, float] = {}  # node id -> when a run there was lost
        self._reaping: dict[str, _Followed] = {}  # lost runs whose actor is not killed yet
        self._probes = _NodeProbes(namespace, clock)  # the nodes' readings, for capacity()

    def __repr__(self) -> str:
        return f"RayBackend(namespace={self.namespace!r}, following={len(self.followed)})"

    def start(self, spec: RunSpec) -> RunRef:
        try:
            return self._start_once(spec)
        except _NeverRan as exc:
            # Placed on a node that had died (Ray lists a dead node as alive for ~14 s)
            # before its actor ran: no agent started, so one more try, elsewhere.
            if exc.node_id is not None:
                self._suspect[exc.node_id] = self.clock()
            return self._start_once(spec)

    def _start_once(self, spec: RunSpec) -> RunRef:
        free = self._free_slots()
        if not _room_in(free, spec.node_id):
            where = f"node {spec.node_id[:12]}" if spec.node_id else "any live node"
            raise NoRoom(f"no agent slot is free on {where} now")
        options: dict[str, Any] = {
            "name": run_name(spec.task_id, spec.attempt), "namespace": self.namespace,
            "lifetime": "detached", "resources": {SLOT_RESOURCE: 1}}
        if spec.node_id is not None:
            options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(spec.node_id,
                                                                            soft=False)
        elif (elsewhere := self._node_not_suspect(free)) is not None:
            # Soft: should that node be full by now, Ray places the run where it fits.
            options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(elsewhere,
                                                                            soft=True)
        actor_class: Any = RunActor  # ray.remote made it an ActorClass; mypy sees the class
        actor = actor_class.options(**options).remote(spec, str(self.run_root), self.kill_grace_s)
        timeout = GIT_START_TIMEOUT_S if spec.git is not None else CALL_TIMEOUT_S
        try:
            node_id, pid, pid_started_at, start_error, no_room = ray.get(
                actor.describe.remote(), timeout=timeout)
        except (RayActorError, GetTimeoutError) as exc:
            with contextlib.suppress(Exception):
                ray.kill(actor, no_restart=True)
            if NEVER_RAN in str(exc):
                found = DEAD_NODE.search(str(exc))
                raise _NeverRan(f"the run's actor did not start: {exc}",
                                found.group(1) if found else None) from exc
            raise OSError(f"the run's actor did not start: {exc}") from exc
        if start_error is not None:
            with contextlib.suppress(Exception):
                ray.kill(actor, no_restart=True)
            raise (NoRoom if no_room else OSError)(f"on node {node_id[:12]}: {start_error}")
        ref = RunRef(spec.task_id, spec.attempt, node_id, pid, pid_started_at)
        self._follow(ref, actor)
        return ref

    def read_output(self, ref: RunRef, offset: int, limit: int = READ_LIMIT) -> bytes:
        return self._read(ref, offset, limit, "stdout.jsonl")

    def read_stderr(self, ref: RunRef, offset: int, limit: int = READ_LIMIT) -> bytes:
        return self._read(ref, offset, limit, "stderr.log")

    def _read(self, ref: RunRef, offset: int, limit: int, name: str) -> bytes:
        answer = self._ask(ref, ("read", name, offset, limit), "read", offset, limit, name)
        return b"" if answer is NOT_NOW else bytes(answer)  # poll() decides if it is lost

    def post_message(self, ref: RunRef, message_id: str, text: str) -> bool:
        answer = self._ask(ref, ("post", message_id), "post", message_id, text)
        return False if answer is NOT_NOW else bool(answer)  # not now: asked again later

    def delivered(self, ref: RunRef) -> dict[str, float]:
        answer = self._ask(ref, ("delivered",), "delivered")
        return {} if answer is NOT_NOW else dict(answer)

    def stop(self, ref: RunRef) -> None:
        self._call(ref, "stop")

    def kill(self, ref: RunRef) -> None:
        self._call(ref, "kill")

    def poll(self, ref: RunRef) -> RunStatus:
        followed = self._followed(ref)
        if followed.status.phase is not RunPhase.RUNNING:
            return followed.status
        now = self.clock()
        if ref.node_id not in self._alive_nodes():
            return self._lose(followed, f"its node {ref.node_id[:12]} is down")
        if followed.pending is None:
            followed.pending = followed.actor.status.remote()
        ready, _ = ray.wait([followed.pending], timeout=0)
        if ready:
            call, followed.pending = followed.pending, None
            try:
                phase, record, at = ray.get(call)
            except ActorDiedError as exc:
                return self._lose(followed, f"its actor died: {str(exc)[:200]}")
            except RayActorError:
                pass  # "temporarily unavailable": the watchdog below decides
            else:
                followed.last_answer_at = now
                followed.status = _status(phase, record, at)
                return followed.status
        if now - followed.last_answer_at > self.lost_after_s:
            return self._lose(followed, f"no heartbeat for {self.lost_after_s:g} s")
        return followed.status

    def reattach(self, recorded: RunRef) -> RunRef | None:
        try:
            actor = ray.get_actor(recorded.name, namespace=self.namespace)
        except ValueError:
            return None
        phase: str
        node_id: str
        pid: int | None
        pid_started_at: float | None
        try:
            phase, _, _ = ray.get(actor.status.remote(), timeout=CALL_TIMEOUT_S)
            node_id, pid, pid_started_at, _, _ = ray.get(actor.describe.remote(),
                                                         timeout=CALL_TIMEOUT_S)
        except (RayActorError, GetTimeoutError):
            phase = RunPhase.LOST.value
        if phase == RunPhase.LOST.value:
            # Its agent is gone: free the node's slot; the engine's policy takes it on.
            with contextlib.suppress(Exception):
                ray.kill(actor, no_restart=True)
            return None
        ref = RunRef(recorded.task_id, recorded.attempt, node_id, pid, pid_started_at)
        self._follow(ref, actor)
        return ref

    def release(self, ref: RunRef) -> None:
        followed = self.followed.get(ref.name)
        if followed is None:
            return
        if followed.status.phase is RunPhase.LOST:
            del self.followed[ref.name]
            self._reap_later(followed)
            return
        self._ask(ref, ("release",), "release")
        del self.followed[ref.name]
        with contextlib.suppress(Exception):
            ray.kill(followed.actor, no_restart=True)

    def capacity(self) -> list[NodeCapacity]:
        """The live nodes: their agent slots, and their probes' last fresh readings (the
        probes are asked without waiting: a node that does not answer holds nothing up)."""
        used: dict[str, int] = {}
        # A copy: runs are started (and so followed) on other threads meanwhile.
        for followed in list(self.followed.values()):
            used[followed.ref.node_id] = used.get(followed.ref.node_id, 0) + 1
        alive = [node for node in self._node_rows(fresh=True) if node["Alive"]]
        readings = self._probes.readings({node["NodeID"] for node in alive})
        return [_node_capacity(node, used.get(node["NodeID"], 0), readings.get(node["NodeID"]))
                for node in alive]

    def local_node_id(self) -> str | None:
        """The node this owner's driver is attached to (the raylet on this machine)."""
        return str(ray.get_runtime_context().get_node_id())

    def node_events(self) -> list[NodeEvent]:
        return self._nodes.changes(self._alive_nodes(fresh=True), time.time())

    def close(self) -> None:
        """Stop following; the runs' actors live on (they are detached), but for lost
        ones still waiting to be reaped: nobody would free their slots later."""
        self.followed.clear()
        for followed in list(self._reaping.values()):
            with contextlib.suppress(Exception):
                ray.kill(followed.actor, no_restart=True)

    def _follow(self, ref: RunRef, actor: Any) -> None:
        self.followed[ref.name] = _Followed(ref, actor, self.clock(),
                                            RunStatus(RunPhase.RUNNING))

    def _followed(self, ref: RunRef) -> _Followed:
        try:
            return self.followed[ref.name]
        except KeyError:
            raise LookupError(f"{ref.name} was not started or re-attached here") from None

    def _call(self, ref: RunRef, method: str) -> None:
        """A command to a run's actor; one on a dead node is lost already (poll says so)."""
        self._ask(ref, (method,), method)

    def _ask(self, ref: RunRef, key: tuple[Any, ...], method: str, *args: Any) -> Any:
        """Call ``method`` of a run's actor and wait for its answer: NOT_NOW when none
        came in time. While the run runs, "in time" is a moment (RUNNING_CALL_TIMEOUT_S):
        the owner asks from one thread for all its runs, and a node that froze must not
        hold up the others (nor the watchdog) for CALL_TIMEOUT_S."""
        followed = self._followed(ref)
        call = followed.asked.get(key)
        if call is None:
            if key[0] == "read":  # one read in flight: a new offset replaces the old one
                for old in [k for k in followed.asked if k[0] == "read"]:
                    del followed.asked[old]
            call = followed.asked[key] = getattr(followed.actor, method).remote(*args)
        running = followed.status.phase is RunPhase.RUNNING
        ready, _ = ray.wait([call], timeout=RUNNING_CALL_TIMEOUT_S if running
                            else CALL_TIMEOUT_S)
        if not ready:
            return NOT_NOW
        del followed.asked[key]
        try:
            return ray.get(call)
        except RayActorError:
            return NOT_NOW

    def _free_slots(self) -> dict[str, float]:
        """Agent slots free now on each live node, whoever holds the others (another
        home, anything else holding agent_slot): an actor created on a node without one
        would wait there, not fail, even with soft affinity, and its start would give up
        after CALL_TIMEOUT_S."""
        from ray._private.state import available_resources_per_node

        alive = self._alive_nodes()
        return {node: float(resources.get(SLOT_RESOURCE, 0))
                for node, resources in available_resources_per_node().items() if node in alive}

    def _node_not_suspect(self, free: dict[str, float]) -> str | None:
        """While a node that lost a run is suspect: the live node with the most free agent
        slots among the others (None: no node is suspect, or no other has room)."""
        now = self.clock()
        suspect = {node for node, at in list(self._suspect.items())
                   if now - at < SUSPECT_FOR_S}
        if not suspect:
            return None
        others = {node: slots for node, slots in free.items() if node not in suspect}
        best = max(others, key=lambda node: others[node], default=None)
        return best if best is not None and others[best] >= 1 else None

    def _lose(self, followed: _Followed, reason: str) -> RunStatus:
        """Mark a run lost and ask its actor to kill the agent's tree, should its node
        wake up (a frozen node may). Not ``ray.kill`` first: that ends the actor's worker,
        whose exit SIGKILLs only its direct child, the wrapper, and leaves the agent
        working on, orphaned. The actor goes once the kill was carried out (release)."""
        self._suspect[followed.ref.node_id] = self.clock()
        followed.status = RunStatus(RunPhase.LOST, reason=reason)
        if ("kill",) not in followed.asked:
            with contextlib.suppress(Exception):
                followed.asked[("kill",)] = followed.actor.kill.remote()
        return followed.status

    def _reap_later(self, followed: _Followed) -> None:
        """Kill a lost run's actor once its agent was killed (its node woke up), or once
        Ray gave up on the node, or after REAP_WAIT_S: on a thread, since that may take
        minutes. An owner that closes first kills the actor at once (close)."""
        kill = followed.asked.get(("kill",))

        def reap() -> None:
            if kill is not None:
                with contextlib.suppress(Exception):
                    ray.wait([kill], timeout=REAP_WAIT_S)
            with contextlib.suppress(Exception):
                ray.kill(followed.actor, no_restart=True)
            self._reaping.pop(followed.ref.name, None)

        self._reaping[followed.ref.name] = followed
        threading.Thread(target=reap, daemon=True, name=f"reap-{followed.ref.name}").start()

    def _node_rows(self, fresh: bool = False) -> list[dict[str, Any]]:
        now = self.clock()
        if fresh or now - self._node_table_at >= NODE_CHECK_S:
            self._node_table, self._node_table_at = ray.nodes(), now
        return self._node_table

    def _alive_nodes(self, fresh: bool = False) -> set[str]:
        return {node["NodeID"] for node in self._node_rows(fresh) if node["Alive"]}


# -- the nodes' probes: CPU, memory and load for the console's per-node gauges -------------

PROBE_EVERY_S = 1.0  # a node's probe is asked at most this often
PROBE_FRESH_S = 5.0
"""A reading older than this is not reported: its probe (or its node) stopped answering."""
_log = logging.getLogger("claudine.engine")


@ray.remote(num_cpus=0, max_restarts=0, max_task_retries=0)
class NodeProbe:
    """Reads its node's CPU use, memory and load; one per node, pinned there, holding no
    CPU nor agent slot."""

    def __init__(self) -> None:
        import psutil

        psutil.cpu_percent(None)  # the first call only starts the count (it returns 0.0)

    def read(self) -> tuple[float, int, int, float]:
        """CPU use since the last read (percent), memory total and available (bytes), and
        the load average over the last minute."""
        import os

        import psutil

        memory = psutil.virtual_memory()
        return psutil.cpu_percent(None), memory.total, memory.available, os.getloadavg()[0]


@dataclass(frozen=True)
class _Reading:
    cpu_percent: float
    memory_total_bytes: int
    memory_available_bytes: int
    load_1m: float
    at: float
    """When the answer was seen (the backend's monotonic clock)."""


@dataclass
class _Probe:
    actor: Any
    pending: Any = None
    """The read in flight (one at a time: a node that does not answer gets no pile)."""
    asked_at: float = float("-inf")
    reading: _Reading | None = None


class _NodeProbes:
    """One :class:`NodeProbe` per live node, asked the way ``poll`` asks a run: never
    waiting, one call in flight, a new one at most every PROBE_EVERY_S; the last answer
    is kept, and reported while it is fresh.

    A probe is not detached: it ends with the process that made it (an owner), and one
    that restarts makes new ones. It is named after its node, so backends of the same
    process share them."""

    def __init__(self, namespace: str, clock: Callable[[], float]) -> None:
        self.namespace = namespace
        self.clock = clock
        self.probes: dict[str, _Probe] = {}  # node id -> its probe

    def readings(self, alive: set[str]) -> dict[str, _Reading]:
        """The fresh readings of the ``alive`` nodes, by node id; starts the probes of
        new nodes and lets go of those of nodes gone."""
        now = self.clock()
        for node_id in [node for node in self.probes if node not in alive]:
            self._drop(node_id)
        fresh: dict[str, _Reading] = {}
        for node_id in sorted(alive):
            probe = self.probes.get(node_id) or self._start(node_id)
            if probe is None:
                continue
            self._ask(node_id, probe, now)
            if probe.reading is not None and now - probe.reading.at <= PROBE_FRESH_S:
                fresh[node_id] = probe.reading
        return fresh

    def _ask(self, node_id: str, probe: _Probe, now: float) -> None:
        """Take the answer in flight, if it came; ask again when it is time."""
        if probe.pending is not None:
            ready, _ = ray.wait([probe.pending], timeout=0)
            if not ready:
                return  # still in flight: a slow or frozen node
            call, probe.pending = probe.pending, None
            try:
                cpu, total, available, load = ray.get(call)
            except ActorDiedError:  # its process or its node died: a new probe next time
                self._drop(node_id)
                return
            except ray.exceptions.RayError:
                pass  # "temporarily unavailable", or the read failed: asked again below
            else:
                probe.reading = _Reading(float(cpu), int(total), int(available),
                                         float(load), now)
        if now - probe.asked_at >= PROBE_EVERY_S:
            probe.pending, probe.asked_at = probe.actor.read.remote(), now

    def _start(self, node_id: str) -> _Probe | None:
        probe_class: Any = NodeProbe  # ray.remote made it an ActorClass; mypy sees the class
        try:
            actor = probe_class.options(
                name=f"node-probe-{node_id}", namespace=self.namespace, get_if_exists=True,
                scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False),
            ).remote()
        except Exception:  # no readings for this node for now; tried again next time
            _log.warning(
                "could not start the probe of node %s", node_id[:12], exc_info=True)
            return None
        self.probes[node_id] = probe = _Probe(actor)
        return probe

    def _drop(self, node_id: str) -> None:
        probe = self.probes.pop(node_id)
        with contextlib.suppress(Exception):
            ray.kill(probe.actor, no_restart=True)


def _node_capacity(node: dict[str, Any], used: int, reading: _Reading | None) -> NodeCapacity:
    """A row of Ray's node table as the seam reports it, with its probe's reading."""
    resources = node["Resources"]
    return NodeCapacity(
        node["NodeID"], alive=True, slots_total=int(resources.get(SLOT_RESOURCE, 0)),
        slots_used=used, cpus=resources.get("CPU"), name=node.get("NodeManagerHostname"),
        cpu_percent=reading.cpu_percent if reading else None,
        memory_total_bytes=reading.memory_total_bytes if reading else None,
        memory_available_bytes=reading.memory_available_bytes if reading else None,
        load_1m=reading.load_1m if reading else None)


class _NeverRan(OSError):
    """A run's actor died before it ran (so no agent started), on ``node_id``."""

    def __init__(self, message: str, node_id: str | None) -> None:
        super().__init__(message)
        self.node_id = node_id


def _status(phase: str, record: dict[str, Any] | None, at: float) -> RunStatus:
    if phase == RunPhase.LOST.value:
        return RunStatus(RunPhase.LOST, reason="its wrapper is gone and left no exit record")
    return RunStatus(RunPhase(phase), exit_record=record, heartbeat_at=at)


def _conforms(backend: RayBackend) -> ExecutionBackend:
    """Never called: mypy checks here that the class satisfies the seam's protocol."""
    return backend
