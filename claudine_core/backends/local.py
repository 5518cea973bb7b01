"""The local backend: today's Supervisor and wrapper behind the backend seam.

It adds no behaviour of its own: a run is ``Supervisor.spawn`` into the run folder the
engine uses today (``<runs>/<task>/attempt-N``), its output is that folder's
``stdout.jsonl``, a stop is ``request_stop`` (the wrapper carries it through, the
supervisor escalates at grace + margin), and re-attaching is ``adopt`` with the pid and
start time the store recorded.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from claudine_core.agents import inbox
from claudine_core.backends.base import (
    READ_LIMIT,
    ExecutionBackend,
    NodeCapacity,
    NodeEvent,
    NodeWatch,
    RunPhase,
    RunRef,
    RunSpec,
    RunStatus,
)
from claudine_core.models import TaskState
from claudine_core.run_dirs import run_dir_for
from claudine_core.supervisor import RunningAgent, Supervisor

LOCAL_NODE = "local"
STOP_REASON = "stopped through the execution backend"


class LocalBackend:
    """Agents on this machine.

    Args:
        runs_dir: the home's ``runs`` folder.
        kill_grace_s: seconds between SIGTERM and SIGKILL of a stop.
        supervisor: the supervisor to adapt (a new one by default).
        clock: wall-clock time, for start and heartbeat times.
    """

    name = "local"

    def __init__(self, runs_dir: Path, *, kill_grace_s: float,
                 supervisor: Supervisor | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.runs_dir = runs_dir
        self.kill_grace_s = kill_grace_s
        self.supervisor = supervisor or Supervisor(kill_grace_s=kill_grace_s)
        self.clock = clock
        self._nodes = NodeWatch()

    def __repr__(self) -> str:
        return f"LocalBackend({self.supervisor!r})"

    def start(self, spec: RunSpec) -> RunRef:
        agent = self.supervisor.spawn(
            spec.task_id, self._run_dir(spec.task_id, spec.attempt), spec.argv,
            env=spec.env, cwd=spec.cwd, max_output_bytes=spec.max_output_bytes,
            started_at=self.clock(), deadline=None, prompt=spec.prompt,
            stream_input=spec.stream_input, nice=spec.nice,
        )
        return RunRef(spec.task_id, spec.attempt, LOCAL_NODE, agent.pid, agent.pid_started_at)

    def read_output(self, ref: RunRef, offset: int, limit: int = READ_LIMIT) -> bytes:
        return read_log(self._run_dir(ref.task_id, ref.attempt) / "stdout.jsonl", offset, limit)

    def read_stderr(self, ref: RunRef, offset: int, limit: int = READ_LIMIT) -> bytes:
        return read_log(self._run_dir(ref.task_id, ref.attempt) / "stderr.log", offset, limit)

    def post_message(self, ref: RunRef, message_id: str, text: str) -> bool:
        return inbox.post_once(str(self._run_dir(ref.task_id, ref.attempt)), message_id, text)

    def delivered(self, ref: RunRef) -> dict[str, float]:
        return inbox.delivered_all(str(self._run_dir(ref.task_id, ref.attempt)))

    def stop(self, ref: RunRef) -> None:
        self.supervisor.request_stop(self._agent(ref), TaskState.CANCELLED, STOP_REASON,
                                     self.clock())

    def kill(self, ref: RunRef) -> None:
        self.supervisor.kill(self._agent(ref))

    def poll(self, ref: RunRef) -> RunStatus:
        now = self.clock()
        self.supervisor.enforce_stops(now)
        agent = self._agent(ref)
        record = self.supervisor.exit_record(agent)
        if record is None and self.supervisor.is_alive(agent):
            return RunStatus(RunPhase.RUNNING, heartbeat_at=now)
        # The wrapper writes its record and then exits: read it once more after seeing
        # it gone, or a run that just ended would look lost.
        record = record or self.supervisor.exit_record(agent)
        if record is not None:
            return RunStatus(RunPhase.ENDED, exit_record=record)
        return RunStatus(RunPhase.LOST, reason="its wrapper is gone and left no exit record")

    def reattach(self, recorded: RunRef) -> RunRef | None:
        run_dir = self._run_dir(recorded.task_id, recorded.attempt)
        agent = self.supervisor.adopt(
            recorded.task_id, run_dir, pid=recorded.pid, pid_started_at=recorded.pid_started_at,
            started_at=self.clock(), deadline=None)
        if self.supervisor.is_alive(agent) or self.supervisor.exit_record(agent) is not None:
            return RunRef(recorded.task_id, recorded.attempt, LOCAL_NODE, agent.pid,
                          agent.pid_started_at)
        self.supervisor.agents.pop(recorded.task_id, None)
        return None

    def release(self, ref: RunRef) -> None:
        agent = self.supervisor.agents.get(ref.task_id)
        if agent is not None:
            self.supervisor.forget(agent)

    def capacity(self) -> list[NodeCapacity]:
        import psutil

        return [NodeCapacity(LOCAL_NODE, alive=True, slots_total=None,
                             slots_used=len(self.supervisor.agents), cpus=os.cpu_count(),
                             memory_available_bytes=psutil.virtual_memory().available)]

    def local_node_id(self) -> str | None:
        return LOCAL_NODE

    def node_events(self) -> list[NodeEvent]:
        return self._nodes.changes({LOCAL_NODE}, self.clock())

    def close(self) -> None:
        """Nothing to let go of: agents outlive the owner by design."""

    def _run_dir(self, task_id: str, attempt: int) -> Path:
        return run_dir_for(self.runs_dir, task_id, attempt)

    def _agent(self, ref: RunRef) -> RunningAgent:
        try:
            return self.supervisor.agents[ref.task_id]
        except KeyError:
            raise LookupError(f"{ref.name} was not started or re-attached here") from None


def read_log(path: Path, offset: int, limit: int) -> bytes:
    """Bytes ``[offset, offset + limit)`` of a log that only grows (b"" before it exists)."""
    try:
        with open(path, "rb") as source:
            source.seek(offset)
            return source.read(limit)
    except FileNotFoundError:
        return b""


def _conforms(backend: LocalBackend) -> ExecutionBackend:
    """Never called: mypy checks here that the class satisfies the seam's protocol."""
    return backend
