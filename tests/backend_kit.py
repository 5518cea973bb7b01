"""Helpers of the backend contract tests (tests/backends): the stand-in agent's argv,
its fake-backend twin, and :class:`BackendKit`, which makes backends of one kind over one
shared world so that a second backend is an owner that restarted."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from claudine_core.backends import ExecutionBackend, RunPhase, RunRef, RunSpec, RunStatus
from claudine_core.backends.fake import FakeProgram

AGENT_SCRIPT = Path(__file__).resolve().parent / "backends" / "agent_script.py"
GRACE_S = 1.0


def agent_argv(*words: str) -> list[str]:
    return [sys.executable, str(AGENT_SCRIPT), *words]


def fake_program(spec: RunSpec) -> FakeProgram:
    """What agent_script.py would do, for the fake backend."""
    mode, arg = spec.argv[2], spec.argv[3]
    if mode == "lines":
        lines = tuple(_script_line(n) for n in range(int(arg)))
        return FakeProgram(lines=lines, stderr=f"wrote {arg} lines\n".encode())
    if mode == "ticker":
        started = b'{"started": true}\n'
        ticks = tuple(b'{"type": "tick", "n": %d}\n' % n for n in range(50))
        return FakeProgram(lines=(started, *ticks), exits=False)
    return FakeProgram(lines=(b'{"started": true}\n',), exits=False, ignores_term=True)


def _script_line(n: int) -> bytes:
    import json

    return (json.dumps({"type": "line", "n": n, "pad": "x" * (n % 37)}) + "\n").encode()


@dataclass
class BackendKit:
    """Makes backends of one kind over one shared world, and closes them after the test."""

    kind: str
    make: Callable[[], ExecutionBackend]
    runs_processes: bool
    made: list[ExecutionBackend] = field(default_factory=list)
    followed: list[tuple[ExecutionBackend, RunRef]] = field(default_factory=list)

    def new(self) -> ExecutionBackend:
        backend = self.make()
        self.made.append(backend)
        return backend

    def start(self, backend: ExecutionBackend, spec: RunSpec) -> RunRef:
        ref = backend.start(spec)
        self.followed.append((backend, ref))
        return ref

    def reattach(self, backend: ExecutionBackend, recorded: RunRef) -> RunRef | None:
        ref = backend.reattach(recorded)
        if ref is not None:
            self.followed.append((backend, ref))
        return ref

    def clean_up(self) -> None:
        """Leave no run behind: kill and release every run a test started or re-attached."""
        for backend, ref in reversed(self.followed):
            with contextlib.suppress(LookupError):
                backend.kill(ref)
            with contextlib.suppress(LookupError):
                backend.release(ref)
        for backend in self.made:
            backend.close()


def pids_alive(pids: list[int]) -> list[int]:
    alive = []
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                if stat.read().rsplit(")", 1)[1].split()[0] != "Z":
                    alive.append(pid)
        except FileNotFoundError:
            pass
    return alive


def environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("CLAUDINE_")}


# Long enough for a loaded 2-core machine; a run that behaves ends far sooner.
DEADLINE_S = 30.0
STOP_DEADLINE_S = GRACE_S + 15.0



def spec(task_id: str, *words: str, attempt: int = 1) -> RunSpec:
    return RunSpec(task_id=task_id, attempt=attempt, argv=agent_argv(*words), env=environment(),
                   cwd=os.getcwd(), max_output_bytes=10 * 1024 * 1024)


def poll_until_done(backend: ExecutionBackend, ref: RunRef, timeout: float) -> RunStatus:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = backend.poll(ref)
        if status.phase is not RunPhase.RUNNING:
            return status
        time.sleep(0.05)
    raise AssertionError(f"{ref.name} still running after {timeout} s")


def read_until(backend: ExecutionBackend, ref: RunRef, offset: int, needle: bytes,
               timeout: float = DEADLINE_S) -> tuple[bytes, int]:
    """Read from ``offset`` until the output holds ``needle``; the bytes read, and the end."""
    data = b""
    deadline = time.monotonic() + timeout
    while needle not in data:
        assert time.monotonic() < deadline, f"{ref.name} never printed {needle!r}: {data[-300:]!r}"
        chunk = backend.read_output(ref, offset + len(data), limit=97)
        data += chunk
        if not chunk:
            time.sleep(0.02)
    return data, offset + len(data)


