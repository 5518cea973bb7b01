"""Agents on a non-local execution backend (Ray), followed the way local agents are.

:class:`RemoteSupervisor` is the supervisor the engine uses when ``backend`` is not
``local``. Dispatch, finishing and recovery keep calling the supervisor's methods; what
differs is where a run lives. The backend's calls block (a network round trip; seconds
when a node is in trouble), so none is made on the engine's loop, which the console
shares: starts run on the dispatcher's threads (:meth:`RemoteSupervisor.start_run`), and
one *pump* thread does everything else. It keeps, in the run's usual folder on this
machine, what the loop reads of a local agent:

- ``stdout.jsonl``: the run's output, appended in order from the offset already copied,
  so the loop's reads, ``claudine logs`` and an owner that restarted see one whole stream
  (a new owner reads on from the file's size: nothing is fetched twice or skipped);
- ``exit.json``: the wrapper's exit record, written only once all the output (and the
  agent's ``stderr.log``, which explains a failure) is copied, so the loop finishes a run
  with everything it wrote;
- ``remote-run.json``: the run's name before it is started, its :class:`RunRef` once it
  is placed: what recovery re-attaches to;
- the inbox (agents/inbox.py): a message a front end posts there is handed to the run's
  agent on its node, and its delivery (and the prompt's) is recorded back here, so
  messages work as for a local agent; the inbox is closed here once the run ended.

A run the backend reports lost gets no exit record: the loop finishes it like a local
agent that vanished, and the recovery policy decides on a retry (a new attempt).

Agents adopted from a home that ran them locally (the backend setting changed while they
ran) have no ``remote-run.json``; they are followed as local agents, by the code the local
supervisor runs.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from claudine_core.agents import inbox
from claudine_core.backends.base import (
    ExecutionBackend,
    GitCheckout,
    NodeCapacity,
    RunPhase,
    RunRef,
    RunSpec,
    RunStatus,
    run_name,
)
from claudine_core.run_dirs import REMOTE_RUN_FILE
from claudine_core.supervisor import RunningAgent, Supervisor, make_run_dir

log = logging.getLogger("claudine.engine")

PUMP_EVERY_S = 0.1  # the pump's pause between two rounds over the runs (the loop's tick)
SLOTS_EVERY_S = 1.0  # how often the cluster's agent slots are counted again
PROMPT_ASK_EVERY_S = 1.0  # how often a run is asked whether its prompt reached the agent
STALE_HEARTBEAT_S = 2.0
"""A run whose last heartbeat is older than this is not read from: a read would wait for
a node that does not answer, and hold up every other run's output meanwhile."""


@dataclass(eq=False)
class RemoteAgent(RunningAgent):
    """A run on a remote backend, as the loop follows it."""

    attempt: int = 0
    run: RunRef | None = None
    """Where the run is (None until a re-attached run is found again)."""
    phase: RunPhase = RunPhase.RUNNING
    """What the pump last learned; RUNNING until it learns otherwise."""
    lost_reason: str | None = None
    git: GitCheckout | None = None
    """How the task's code went to the run's node (None: the run works in place)."""
    worktree: str | None = None
    """The task's worktree on this machine, where the run's work comes back."""


@dataclass(frozen=True)
class Placement:
    """Where a run may go, as the dispatcher decided from its task."""

    git: GitCheckout | None = None
    """The task's code travels to the run's node this way (any node may take it)."""
    worktree: str | None = None
    """The task's worktree here, where the work comes back (with ``git``)."""
    here_because: str | None = None
    """The run must stay on this machine's node, for this reason (None: anywhere)."""
    session_node: str | None = None
    """The node holding the agent session the run resumes: it runs there while that node
    is alive (``claude`` keeps sessions on its own machine)."""


@dataclass(eq=False)
class _Pumped:
    """The pump's own state for one run."""

    agent: RemoteAgent
    ref: RunRef
    copied: int
    """Bytes of output in the local ``stdout.jsonl``: where the next read starts."""
    heartbeat: float | None = None
    heartbeat_seen_at: float = 0.0
    """When (our monotonic clock) ``heartbeat`` last changed."""
    forwarded: set[str] = field(default_factory=set)
    """Messages handed to the backend whose delivery is not recorded here yet."""
    prompt_recorded: bool = False
    prompt_asked_at: float = float("-inf")


class RemoteSupervisor(Supervisor):
    """Runs agents on an execution backend, followed through local files (see the module).

    Args:
        kill_grace_s: seconds between SIGTERM and SIGKILL of a stop (the backend's own
            grace is what the remote wrapper applies).
        open_backend: makes the backend; called once, on a thread, at its first use
            (connecting to a cluster takes a second or more).
        max_agents: the owner's cap on agents at once, on top of the cluster's slots.
        memory_needed: bytes a node must have available to start an agent (it checks).
    """

    remote = True

    def __init__(self, *, kill_grace_s: float, open_backend: Callable[[], ExecutionBackend],
                 max_agents: int | None = None, agent_nice: int = 0,
                 memory_needed: int = 0) -> None:
        super().__init__(kill_grace_s=kill_grace_s, agent_nice=agent_nice)
        self.max_agents = max_agents
        self.memory_needed = memory_needed
        self._open_backend = open_backend
        self._backend: ExecutionBackend | None = None
        self._backend_lock = threading.Lock()
        self._commands: queue.SimpleQueue[tuple[str, RemoteAgent]] = queue.SimpleQueue()
        self._pumped: dict[str, _Pumped] = {}  # run name -> state; the pump thread's own
        self._nudge = threading.Event()
        self._closed = False
        self._thread: threading.Thread | None = None
        self._thread_lock = threading.Lock()
        self.slots_total: int | None = None
        """Agent slots of the cluster's live nodes (None: not counted yet, or no limit)."""
        self.slots_known = False
        self.nodes: list[NodeCapacity] = []
        """The cluster's live nodes as last counted (the console's per-node gauges)."""
        self._slots_at = float("-inf")

    def __repr__(self) -> str:
        return f"RemoteSupervisor(running={len(self.agents)}, spawned={self.spawned})"

    # -- the backend and the pump -----------------------------------------------------------

    def backend(self) -> ExecutionBackend:
        """The backend, opened at the first call (from any thread)."""
        with self._backend_lock:
            if self._backend is None:
                self._backend = self._open_backend()
            return self._backend

    def _ensure_pump(self) -> None:
        with self._thread_lock:
            if self._thread is None and not self._closed:
                self._thread = threading.Thread(target=self._pump_loop, daemon=True,
                                                name="claudine-remote-runs")
                self._thread.start()

    def _command(self, what: str, agent: RemoteAgent) -> None:
        self._commands.put((what, agent))
        self._ensure_pump()
        self._nudge.set()

    def close(self) -> None:
        """Stop the pump and let go of the backend; the runs keep running (a next owner
        re-attaches them)."""
        self._closed = True
        self._nudge.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
        if self._backend is not None:
            self._backend.close()

    # -- starting ---------------------------------------------------------------------------

    def spawn(self, task_id: str, run_dir: Path, argv: list[str], **options: Any) -> RunningAgent:
        raise NotImplementedError("a remote run is started with start_run (on a thread) and "
                                  "then register")

    def start_run(self, task_id: str, attempt: int, run_dir: Path, argv: list[str], *,
                  env: dict[str, str], cwd: str, max_output_bytes: int, started_at: float,
                  deadline: float | None, prompt: str | None, stream_input: bool,
                  placement: Placement | None = None) -> RemoteAgent:
        """Start one run on the backend and wait until it is placed. Blocks (on Ray about
        two seconds, more when the task's code travels): call it on a thread, then
        :meth:`register` the agent on the loop.

        Raises OSError when the run cannot start."""
        placement = placement or Placement()
        make_run_dir(run_dir)
        travel = {"git": asdict(placement.git), "worktree": placement.worktree} \
            if placement.git is not None else {}
        # Before the start: an owner killed during it leaves a name to look for.
        _write_json(run_dir / REMOTE_RUN_FILE, {"task_id": task_id, "attempt": attempt,
                                                "name": run_name(task_id, attempt), **travel})
        node_id = self._this_node(placement.here_because) if placement.here_because else \
            self._alive(placement.session_node)
        spec = RunSpec(task_id=task_id, attempt=attempt, argv=argv, env=env, cwd=cwd,
                       max_output_bytes=max_output_bytes, prompt=prompt,
                       stream_input=stream_input, nice=self.agent_nice, node_id=node_id,
                       git=placement.git, memory_needed=self.memory_needed)
        try:
            ref = self.backend().start(spec)
        except BaseException:
            self._forget_travel_of(placement)  # nothing started: the sent ref goes
            raise
        _write_json(run_dir / REMOTE_RUN_FILE, {"name": ref.name, **asdict(ref), **travel})
        return RemoteAgent(task_id=task_id, run_dir=run_dir, pid=ref.pid,
                           pid_started_at=ref.pid_started_at, started_at=started_at,
                           deadline=deadline, attempt=attempt, run=ref, git=placement.git,
                           worktree=placement.worktree)

    def _alive(self, node_id: str | None) -> str | None:
        """``node_id`` if it is a live node of the backend (None otherwise), as the pump
        last counted them (a start is admitted only once it has)."""
        return node_id if any(node.node_id == node_id for node in self.nodes) else None

    def _this_node(self, because: str) -> str:
        """The node on this machine, for a run that cannot leave it (``because``).

        Raises OSError when there is none, or it declares no agent slots (the run would
        wait there for ever)."""
        node_id = self.backend().local_node_id()
        slots = {node.node_id: node.slots_total for node in self.nodes}
        if node_id not in slots or slots[node_id] == 0:
            raise OSError(
                f"this task can run only on this machine's node ({because}), and this "
                "machine's node declares no agent slots: start it with ray start "
                "--resources '{\"agent_slot\": N}', delegate the task into a worktree of a "
                "repository with a remote, or set ray_shared_fs = true if every node sees "
                "this machine's files")
        return node_id

    def register(self, agent: RemoteAgent) -> None:
        """Follow a run :meth:`start_run` started (on the loop)."""
        self.spawned += 1
        self.agents[agent.task_id] = agent
        self._command("follow", agent)

    def adopt(self, task_id: str, run_dir: Path, *, pid: int | None,
              pid_started_at: float | None, started_at: float,
              deadline: float | None) -> RunningAgent:
        """Follow a run an earlier owner started; the pump re-attaches it by name (a run
        not found is lost). A run with no record of a remote start is a local agent."""
        recorded = _read_json(run_dir / REMOTE_RUN_FILE)
        if recorded is None:
            return super().adopt(task_id, run_dir, pid=pid, pid_started_at=pid_started_at,
                                 started_at=started_at, deadline=deadline)
        ref = RunRef(task_id, int(recorded["attempt"]), str(recorded.get("node_id") or ""),
                     recorded.get("pid"), recorded.get("pid_started_at"))
        git = GitCheckout(**recorded["git"]) if recorded.get("git") else None
        agent = RemoteAgent(task_id=task_id, run_dir=run_dir, pid=ref.pid,
                            pid_started_at=ref.pid_started_at, started_at=started_at,
                            deadline=deadline, attempt=ref.attempt, run=ref, git=git,
                            worktree=recorded.get("worktree"))
        self.agents[task_id] = agent
        self._command("attach", agent)
        return agent

    # -- the loop's questions and commands --------------------------------------------------

    def is_alive(self, agent: RunningAgent) -> bool:
        if isinstance(agent, RemoteAgent):
            return agent.phase is RunPhase.RUNNING
        return super().is_alive(agent)

    def _terminate(self, agent: RunningAgent) -> None:
        if isinstance(agent, RemoteAgent):
            self._command("stop", agent)
        else:
            super()._terminate(agent)

    def _kill_tree(self, agent: RunningAgent) -> None:
        if isinstance(agent, RemoteAgent):
            self._command("kill", agent)
        else:
            super()._kill_tree(agent)

    def forget(self, agent: RunningAgent) -> None:
        if not isinstance(agent, RemoteAgent):
            super().forget(agent)
            return
        self.agents.pop(agent.task_id, None)
        self._command("release", agent)

    def free_slots(self) -> int | None:
        """Agents that may start now as far as the cluster's slots and ``max_agents`` go
        (None: no limit known); counted by the pump, at most every SLOTS_EVERY_S."""
        self._ensure_pump()
        caps = [cap for cap in (self.slots_total, self.max_agents) if cap is not None]
        if not caps:
            return None
        return max(0, min(caps) - len(self.agents))

    # -- the pump thread --------------------------------------------------------------------

    def _pump_loop(self) -> None:
        while not self._closed:
            try:
                self._pump_round()
            except Exception:  # the backend failed as a whole (its cluster unreachable)
                log.exception("following remote runs failed; trying again")
                time.sleep(1.0)
            self._nudge.wait(PUMP_EVERY_S)
            self._nudge.clear()

    def _pump_round(self) -> None:
        backend = self.backend()
        self._count_slots(backend)
        while True:
            try:
                what, agent = self._commands.get_nowait()
            except queue.Empty:
                break
            try:
                self._apply(backend, what, agent)
            except Exception:
                if what != "attach":
                    log.exception("task %s: %s on the backend failed", agent.task_id, what)
                    continue
                # Not found, nor known to be gone (the cluster did not answer): again in
                # a moment, after the other commands; meanwhile the run counts as running.
                self._commands.put((what, agent))
                raise
        for state in list(self._pumped.values()):
            try:
                self._pump(backend, state)
            except Exception:
                log.exception("task %s: following its run failed", state.agent.task_id)

    def _count_slots(self, backend: ExecutionBackend) -> None:
        now = time.monotonic()
        if now - self._slots_at < SLOTS_EVERY_S:
            return
        self._slots_at = now
        nodes = [node for node in backend.capacity() if node.alive]
        self.nodes = nodes
        if any(node.slots_total is None for node in nodes):
            self.slots_total = None
        else:
            self.slots_total = sum(node.slots_total or 0 for node in nodes)
        self.slots_known = True

    def _apply(self, backend: ExecutionBackend, what: str, agent: RemoteAgent) -> None:
        ref = agent.run
        if what == "follow" and ref is not None:
            self._pumped[ref.name] = self._pumped_state(agent, ref)
        elif what == "attach" and ref is not None:
            self._attach(backend, agent, ref)
        elif what in ("stop", "kill") and agent.phase is RunPhase.RUNNING:
            pumped = self._pumped.get(ref.name) if ref is not None else None
            if pumped is not None:
                getattr(backend, what)(pumped.ref)
        elif what == "release" and ref is not None:
            self._pumped.pop(ref.name, None)
            with contextlib.suppress(LookupError):  # never found again: nothing to free
                backend.release(ref)

    def _attach(self, backend: ExecutionBackend, agent: RemoteAgent, recorded: RunRef) -> None:
        found = backend.reattach(recorded)
        if (agent.run_dir / "exit.json").exists():
            # Copied in full before the last owner stopped; what is left is to release it
            # (that owner may have died first), so it must be followed again for that.
            agent.run = found or recorded
            agent.phase = RunPhase.ENDED
            return
        if found is None:
            self._lose(agent, "its run was not found on the cluster after the owner restarted")
            return
        agent.run, agent.pid, agent.pid_started_at = found, found.pid, found.pid_started_at
        self._pumped[found.name] = self._pumped_state(agent, found)
        log.info("task %s: re-attached %s on node %s", agent.task_id, found.name,
                 found.node_id[:12])

    def _pumped_state(self, agent: RemoteAgent, ref: RunRef) -> _Pumped:
        """Start following a run: from the output copied so far, with its inbox open here
        (unless it was closed: the conversation is over)."""
        run_dir = str(agent.run_dir)
        if not os.path.exists(os.path.join(run_dir, inbox.CLOSED)):
            inbox.open_inbox(run_dir)
        recorded = inbox.delivered_at(run_dir, inbox.PROMPT_KEY) is not None
        return _Pumped(agent, ref, _size(agent.run_dir), prompt_recorded=recorded)

    def _pump(self, backend: ExecutionBackend, state: _Pumped) -> None:
        """One look at a run: its status, its messages, and a slice of its output (all of
        it once it ended, then its exit record)."""
        status = backend.poll(state.ref)
        if status.phase is RunPhase.RUNNING:
            if self._answers(state, status):
                self._forward_messages(backend, state)
                self._copy(backend, state)
            return
        del self._pumped[state.ref.name]
        if status.phase is RunPhase.LOST:
            self._close_inbox(state)
            self._forget_travel(state.agent)
            self._lose(state.agent, status.reason or "lost")
            return
        while self._copy(backend, state):
            pass
        self._copy_stderr(backend, state)
        self._record_deliveries(backend, state)
        self._close_inbox(state)
        record = dict(status.exit_record or {})
        self._bring_work_back(state.agent, record)
        _write_json(state.agent.run_dir / "exit.json", record)
        state.agent.phase = RunPhase.ENDED

    def _bring_work_back(self, agent: RemoteAgent, record: dict[str, Any]) -> None:
        """Into the task's worktree here, before the run's end is recorded: the merge
        step, which runs once the task ended, finds the work where it runs locally. A
        failure is the run's (``git_error`` in its exit record), never swallowed."""
        if agent.git is None or agent.worktree is None or record.get("spawn_error"):
            return
        from claudine_core.backends import git_travel

        try:
            git_travel.receive(agent.worktree, agent.git, record.get("git"))
        except git_travel.TravelError as exc:
            record["git_error"] = str(exc)

    def _forget_travel(self, agent: RemoteAgent) -> None:
        """A lost run's work never comes back: its ref on the remote goes."""
        self._forget_travel_of(Placement(git=agent.git, worktree=agent.worktree))

    @staticmethod
    def _forget_travel_of(placement: Placement) -> None:
        if placement.git is not None and placement.worktree is not None:
            from claudine_core.backends import git_travel

            git_travel.forget(placement.worktree, placement.git)

    def _forward_messages(self, backend: ExecutionBackend, state: _Pumped) -> None:
        """Hand the messages posted here to the run's agent, and record back here when
        they (and the prompt) reached it. A message the backend refuses now is tried
        again next round; one still here when the run ended stays undelivered, as it
        would locally."""
        for message_id, text in inbox.waiting(str(state.agent.run_dir)):
            if message_id not in state.forwarded and \
                    backend.post_message(state.ref, message_id, text):
                state.forwarded.add(message_id)
        now = time.monotonic()
        if state.forwarded or (not state.prompt_recorded
                               and now - state.prompt_asked_at >= PROMPT_ASK_EVERY_S):
            state.prompt_asked_at = now
            self._record_deliveries(backend, state)

    def _record_deliveries(self, backend: ExecutionBackend, state: _Pumped) -> None:
        run_dir = str(state.agent.run_dir)
        for key, at in backend.delivered(state.ref).items():
            if key == inbox.PROMPT_KEY and not state.prompt_recorded:
                inbox.mark_delivered(run_dir, key, at)
                state.prompt_recorded = True
            elif key in state.forwarded:
                inbox.mark_delivered(run_dir, key, at)  # takes it out of the inbox here
                state.forwarded.discard(key)

    def _close_inbox(self, state: _Pumped) -> None:
        """Nothing posted from now on can reach the agent: a message becomes a resume."""
        run_dir = str(state.agent.run_dir)
        if os.path.isdir(os.path.join(run_dir, inbox.INBOX)):
            with inbox.locked(run_dir):
                inbox.close(run_dir)

    def _answers(self, state: _Pumped, status: RunStatus) -> bool:
        """Whether the run answered lately enough for a read not to hang."""
        now = time.monotonic()
        if status.heartbeat_at != state.heartbeat:
            state.heartbeat, state.heartbeat_seen_at = status.heartbeat_at, now
        return now - state.heartbeat_seen_at < STALE_HEARTBEAT_S

    def _copy(self, backend: ExecutionBackend, state: _Pumped) -> bool:
        """Append the next slice of the run's output to the local copy; False if none."""
        data = backend.read_output(state.ref, state.copied)
        if not data:
            return False
        with open(state.agent.run_dir / "stdout.jsonl", "ab") as copy:
            copy.write(data)
        state.copied += len(data)
        return True

    def _copy_stderr(self, backend: ExecutionBackend, state: _Pumped) -> None:
        """The agent's stderr, whole, into the local ``stderr.log`` (once the run ended)."""
        path = state.agent.run_dir / "stderr.log"
        copied = path.stat().st_size if path.exists() else 0
        while data := backend.read_stderr(state.ref, copied):
            with open(path, "ab") as copy:
                copy.write(data)
            copied += len(data)

    def _lose(self, agent: RemoteAgent, reason: str) -> None:
        log.warning("task %s: its run is lost: %s", agent.task_id, reason)
        agent.lost_reason = reason
        agent.phase = RunPhase.LOST


def _size(run_dir: Path) -> int:
    try:
        return (run_dir / "stdout.jsonl").stat().st_size
    except FileNotFoundError:
        return 0


def _write_json(path: Path, value: dict[str, Any]) -> None:
    """Replace ``path`` whole (a reader sees the old file or the new one, never half)."""
    part = path.with_name(path.name + ".part")
    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(value, out)
    os.replace(part, path)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return dict(json.loads(path.read_text()))
    except (FileNotFoundError, ValueError):
        return None
