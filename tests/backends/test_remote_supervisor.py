"""The remote supervisor's pump on its own: it does not read from a run whose heartbeat has
stopped (a frozen node would hold every other run's copy for the read's whole timeout),
and reads again once the run answers."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from engine_helpers import wait_until

from claudine_core.backends import RunPhase, RunRef, RunStatus
from claudine_core.backends import remote as remote_module
from claudine_core.backends.base import READ_LIMIT
from claudine_core.backends.fake import FakeBackend, FakeProgram
from claudine_core.backends.remote import RemoteSupervisor

STALE_S = 0.3


class Freezable(FakeBackend):
    """A run whose heartbeat stands still while ``frozen``; counts the reads it serves."""

    frozen = False
    beat = 0.0
    reads = 0

    def poll(self, ref: RunRef) -> RunStatus:
        if not self.frozen:
            self.beat += 1
        return RunStatus(RunPhase.RUNNING, heartbeat_at=self.beat)

    def read_output(self, ref: RunRef, offset: int, limit: int = READ_LIMIT) -> bytes:
        self.reads += 1
        return super().read_output(ref, offset, limit)


async def test_a_run_whose_heartbeat_stopped_is_not_read_until_it_answers(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(remote_module, "STALE_HEARTBEAT_S", STALE_S)
    backend = Freezable(lambda spec: FakeProgram(lines=(b"{}\n",), exits=False),
                        kill_grace_s=1.0)
    supervisor = RemoteSupervisor(kill_grace_s=1.0, open_backend=lambda: backend)
    try:
        agent = supervisor.start_run(
            "task-000000000001", 1, tmp_path / "run", ["agent"], env={}, cwd=str(tmp_path),
            max_output_bytes=1 << 20, started_at=time.time(), deadline=None, prompt=None,
            stream_input=False)
        supervisor.register(agent)
        await wait_until(lambda: backend.reads >= 3)
        backend.frozen = True
        frozen_at = time.monotonic()
        # Once the last beat is older than STALE_S, no round reads any more.
        await wait_until(lambda: time.monotonic() - frozen_at > STALE_S + 0.2)
        reads = backend.reads
        await wait_until(lambda: time.monotonic() - frozen_at > STALE_S + 0.7)
        assert backend.reads == reads, "a run that does not answer was read from"
        assert supervisor.is_alive(agent)  # only the backend's watchdog says lost
        backend.frozen = False
        await wait_until(lambda: backend.reads > reads)
    finally:
        supervisor.close()
