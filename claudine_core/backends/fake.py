"""An in-memory backend for unit tests of the engine: no process, no disk.

What a run does is a :class:`FakeProgram` (the lines it prints, whether it ends on its
own, whether it ignores SIGTERM), chosen per run by a function of its :class:`RunSpec`.
Runs live in a :class:`FakeWorld` that outlives a backend instance, so a test can drop the
backend (an owner restart) and re-attach from a new one; ``world.crash(name)`` makes a
run vanish without a record, as a killed node does.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

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

FAKE_NODE = "fake"


@dataclass(frozen=True)
class FakeProgram:
    lines: tuple[bytes, ...] = ()
    """Printed at once when the run starts (each ends with a newline)."""
    exits: bool = True
    """Ends on its own (with ``exit_code``) after printing; else runs until stopped."""
    ignores_term: bool = False
    """SIGTERM does nothing: only the kill after the grace period ends it."""
    stderr: bytes = b""
    """Written to its stderr at once."""
    exit_code: int = 0
    """Its exit status when it ends on its own."""


@dataclass
class FakeRun:
    program: FakeProgram
    output: bytearray = field(default_factory=bytearray)
    exit_record: dict[str, Any] | None = None
    vanished: bool = False
    term_at: float | None = None
    delivered: dict[str, float] = field(default_factory=dict)
    """Messages (and the prompt) the agent read, by key: at once, while it runs."""
    messages: list[str] = field(default_factory=list)
    """The texts of the messages it read, in order."""


@dataclass
class FakeWorld:
    """The fake "cluster": every run ever started, by name."""

    runs: dict[str, FakeRun] = field(default_factory=dict)

    def crash(self, name: str) -> None:
        self.runs[name].vanished = True


class FakeBackend:
    """The seam's behaviour with no processes: a stop ends a run at once unless its
    program ignores SIGTERM, in which case :meth:`poll` kills it once the grace is over."""

    name = "fake"

    def __init__(self, program_for: Callable[[RunSpec], FakeProgram], *,
                 kill_grace_s: float, world: FakeWorld | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.program_for = program_for
        self.kill_grace_s = kill_grace_s
        self.world = world if world is not None else FakeWorld()
        self.clock = clock
        self.attached: set[str] = set()
        self._nodes = NodeWatch()

    def start(self, spec: RunSpec) -> RunRef:
        ref = RunRef(spec.task_id, spec.attempt, FAKE_NODE)
        program = self.program_for(spec)
        run = FakeRun(program, output=bytearray(b"".join(program.lines)))
        if spec.stream_input:
            run.delivered["prompt"] = time.time()
        if program.exits:
            run.exit_record = _record(exit_code=program.exit_code)
        self.world.runs[ref.name] = run
        self.attached.add(ref.name)
        return ref

    def read_output(self, ref: RunRef, offset: int, limit: int = READ_LIMIT) -> bytes:
        return bytes(self._run(ref).output[offset:offset + limit])

    def read_stderr(self, ref: RunRef, offset: int, limit: int = READ_LIMIT) -> bytes:
        return self._run(ref).program.stderr[offset:offset + limit]

    def post_message(self, ref: RunRef, message_id: str, text: str) -> bool:
        run = self._run(ref)
        if message_id in run.delivered:
            return True
        if run.exit_record is not None or run.vanished:
            return False
        run.delivered[message_id] = time.time()
        run.messages.append(text)
        return True

    def delivered(self, ref: RunRef) -> dict[str, float]:
        return dict(self._run(ref).delivered)

    def stop(self, ref: RunRef) -> None:
        run = self._run(ref)
        if run.exit_record is not None or run.term_at is not None:
            return
        run.term_at = self.clock()
        if not run.program.ignores_term:
            run.exit_record = _record(signal=signal.SIGTERM, terminated=True)

    def kill(self, ref: RunRef) -> None:
        run = self._run(ref)
        if run.exit_record is None:
            run.exit_record = _record(signal=signal.SIGKILL, terminated=True)

    def poll(self, ref: RunRef) -> RunStatus:
        run = self._run(ref)
        if run.vanished:
            return RunStatus(RunPhase.LOST, reason="the run vanished")
        overdue = run.term_at is not None and self.clock() - run.term_at >= self.kill_grace_s
        if run.exit_record is None and overdue:
            self.kill(ref)
        if run.exit_record is not None:
            return RunStatus(RunPhase.ENDED, exit_record=run.exit_record)
        return RunStatus(RunPhase.RUNNING, heartbeat_at=time.time())

    def reattach(self, recorded: RunRef) -> RunRef | None:
        run = self.world.runs.get(recorded.name)
        if run is None or run.vanished:
            return None
        self.attached.add(recorded.name)
        return RunRef(recorded.task_id, recorded.attempt, FAKE_NODE)

    def release(self, ref: RunRef) -> None:
        self.attached.discard(ref.name)

    def capacity(self) -> list[NodeCapacity]:
        return [NodeCapacity(FAKE_NODE, alive=True, slots_total=None,
                             slots_used=len(self.attached))]

    def local_node_id(self) -> str | None:
        return FAKE_NODE

    def node_events(self) -> list[NodeEvent]:
        return self._nodes.changes({FAKE_NODE}, time.time())

    def close(self) -> None:
        self.attached.clear()

    def _run(self, ref: RunRef) -> FakeRun:
        if ref.name not in self.attached:
            raise LookupError(f"{ref.name} was not started or re-attached here")
        return self.world.runs[ref.name]


def _record(*, exit_code: int | None = None, signal: int | None = None,
            terminated: bool = False) -> dict[str, Any]:
    """An exit record shaped like the wrapper's (the fields the engine reads)."""
    return {"exit_code": exit_code, "signal": signal, "terminated": terminated,
            "survivors": [], "leftover_processes": 0}


def _conforms(backend: FakeBackend) -> ExecutionBackend:
    """Never called: mypy checks here that the class satisfies the seam's protocol."""
    return backend
