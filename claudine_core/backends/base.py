"""The execution-backend seam: what the engine needs from "where an agent runs".

A backend starts a run (one attempt of one task: the agent under the wrapper), serves its
output by byte offset, stops it with a grace period or kills it, tells whether it still
runs (a heartbeat), finds it again after the owner restarted, and reports its nodes'
capacity and their coming and going. The queue, priorities, retries, dependencies and
the task state machine stay above this line: a backend never reads or writes the store.

Backends: ``local.LocalBackend`` (today's Supervisor and wrapper, unchanged),
``fake.FakeBackend`` (in memory, for unit tests) and ``ray.RayBackend`` (optional extra).
This module imports nothing beyond the standard library.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

READ_LIMIT = 1024 * 1024  # bytes one read returns at most: bounds a tick's work per run


class NoRoom(OSError):
    """A run cannot be placed now: every agent slot it may use is taken (by this home's
    runs or by anything else sharing the cluster). Nothing started; the task waits."""


def run_name(task_id: str, attempt: int) -> str:
    """The run's name on every backend (and its Ray actor's): ``run-<task>-<attempt>``."""
    return f"run-{task_id}-{attempt}"


@dataclass(frozen=True)
class GitCheckout:
    """Where a run on another node gets the task's code, and sends its work back
    (claudine_core/backends/git_travel.py)."""

    url: str
    """The repository's remote, as the owner's machine reaches it (nodes must too)."""
    ref: str
    """The run's hidden ref there (``refs/claudine/runs/<run>``)."""
    commit: str
    """The commit the run starts from (the worktree's, with its uncommitted files)."""
    sent_from: str
    """The worktree's HEAD when it was sent: the work comes back onto it."""
    subdir: str = ""
    """The agent's directory inside the checkout ("" = its top)."""
    identity: dict[str, str] = field(default_factory=dict)
    """GIT_AUTHOR_*/GIT_COMMITTER_* for the commit that carries uncommitted work back."""
    work_name: str = ""
    """The node's folder for the checkout (under its run root's ``checkouts``): the task
    whose agent session the run may resume, since ``claude`` finds a session only from
    the directory it ran in ("": the run's name)."""


@dataclass(frozen=True)
class RunSpec:
    """What to run: one attempt of one task."""

    task_id: str
    attempt: int
    argv: list[str]
    env: dict[str, str]
    cwd: str
    max_output_bytes: int
    prompt: str | None = None
    """Fed to the agent's stdin by the wrapper (None: an empty stdin)."""
    stream_input: bool = False
    """The wrapper owns a stream-json conversation (later turns from the inbox)."""
    node_id: str | None = None
    """Run on this node (None: the backend chooses)."""
    nice: int = 0
    """The agent's scheduling priority on its node (the ``agent_nice`` setting)."""
    git: GitCheckout | None = None
    """Check the task's code out on the node and run there instead of ``cwd`` (a node
    that does not share this machine's disk); None: run in ``cwd``."""
    memory_needed: int = 0
    """Bytes of memory the node must have available to start the agent (the owner's
    ``memory_reserve`` plus ``agent_memory_cost``): checked on the node, just before."""


@dataclass(frozen=True)
class RunRef:
    """A started run, as the engine records it to find it again after a restart."""

    task_id: str
    attempt: int
    node_id: str
    pid: int | None = None
    """The wrapper's pid on its node (the agent's process group id)."""
    pid_started_at: float | None = None
    """The wrapper's start time: tells the process from a later one with a reused pid."""

    @property
    def name(self) -> str:
        return run_name(self.task_id, self.attempt)


class RunPhase(enum.StrEnum):
    RUNNING = "running"
    ENDED = "ended"
    """The wrapper wrote its exit record: the run ended and how is known."""
    LOST = "lost"
    """Neither running nor ended with a record (its node died, its wrapper vanished):
    the engine's retry policy decides, as for any vanished agent."""


@dataclass(frozen=True)
class RunStatus:
    phase: RunPhase
    exit_record: dict[str, Any] | None = None
    """The wrapper's ``exit.json`` once the run ended."""
    reason: str | None = None
    """Why a run is lost, for a person to read."""
    heartbeat_at: float | None = None
    """When the run last answered (backend clock, ``time.time()``)."""


@dataclass(frozen=True)
class NodeCapacity:
    """A live node as the backend last saw it: its agent slots, and what its probe last
    read there (CPU, memory, load), for the console's per-node gauges. A reading is None
    when there is no fresh one (the probe has not answered lately, or the backend takes
    none)."""

    node_id: str
    alive: bool
    slots_total: int | None
    """Agents the node declared room for (None: no declared limit, admission decides)."""
    slots_used: int
    """Runs of this backend currently on the node."""
    cpus: float | None = None
    memory_available_bytes: int | None = None
    name: str | None = None
    """The node's host name, for a person (None: unknown)."""
    cpu_percent: float | None = None
    """The node's whole CPU use, 0 to 100."""
    memory_total_bytes: int | None = None
    load_1m: float | None = None
    """The node's load average over the last minute."""


class NodeChange(enum.StrEnum):
    UP = "up"
    DOWN = "down"


@dataclass(frozen=True)
class NodeEvent:
    node_id: str
    change: NodeChange
    at: float


@runtime_checkable
class ExecutionBackend(Protocol):
    """Where agents run. No method waits for a run to progress; ``start`` waits for it to
    be placed (locally the spawn; on Ray the actor's first answer, a second or more: the
    engine must not call it on its loop as is, see docs/ray-backend.md)."""

    name: str
    kill_grace_s: float

    def start(self, spec: RunSpec) -> RunRef:
        """Start the run. Raises NoRoom when no slot it may use is free now, OSError when
        it cannot start at all."""
        ...

    def read_output(self, ref: RunRef, offset: int, limit: int = READ_LIMIT) -> bytes:
        """Up to ``limit`` bytes of the run's stdout log from ``offset`` (b"" if none yet)."""
        ...

    def read_stderr(self, ref: RunRef, offset: int, limit: int = READ_LIMIT) -> bytes:
        """The same for the agent's stderr (what explains a failure, e.g. a refused option)."""
        ...

    def post_message(self, ref: RunRef, message_id: str, text: str) -> bool:
        """Give the run's agent a message for its next turn (a run started with
        ``stream_input``); False when it takes no more. The same id again changes nothing."""
        ...

    def delivered(self, ref: RunRef) -> dict[str, float]:
        """When each message, and the prompt (key ``"prompt"``), reached the agent."""
        ...

    def stop(self, ref: RunRef) -> None:
        """SIGTERM to the agent's whole tree now, SIGKILL to what is left after the
        backend's grace period (``kill_grace_s``, which the wrapper is started with),
        carried through by the wrapper, and by :meth:`poll` if the wrapper cannot."""
        ...

    def kill(self, ref: RunRef) -> None:
        """SIGKILL the agent's whole tree and its wrapper now."""
        ...

    def poll(self, ref: RunRef) -> RunStatus:
        """The run's heartbeat: running, ended (with its exit record) or lost."""
        ...

    def reattach(self, recorded: RunRef) -> RunRef | None:
        """Find a run started by an earlier owner; None when it is gone (lost)."""
        ...

    def release(self, ref: RunRef) -> None:
        """Forget an ended or lost run, killing anything it left behind."""
        ...

    def capacity(self) -> list[NodeCapacity]:
        ...

    def local_node_id(self) -> str | None:
        """The node on the owner's machine: runs that cannot leave it are pinned there
        (None: this machine runs no node of the backend)."""
        ...

    def node_events(self) -> list[NodeEvent]:
        """Nodes that came up or went down since the last call (all nodes, the first time)."""
        ...

    def close(self) -> None:
        """Let go of the backend's resources; runs keep running."""
        ...


@dataclass
class NodeWatch:
    """Turns successive sets of live node ids into up/down events."""

    known: set[str] = field(default_factory=set)

    def changes(self, alive: set[str], now: float) -> list[NodeEvent]:
        events = [NodeEvent(n, NodeChange.UP, now) for n in sorted(alive - self.known)]
        events += [NodeEvent(n, NodeChange.DOWN, now) for n in sorted(self.known - alive)]
        self.known = set(alive)
        return events
