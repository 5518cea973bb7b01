"""Detached sleepers an agent's Bash tool starts, for tests that stop the agent.

Four kinds, each writing ``<kind>.pid``, sleeping, then writing ``<kind>.out``: under
``setsid``, under ``nohup ... &``, double-forked by ``bash -c '( ... ) &'``, and detached
while ignoring SIGTERM. Every process the agent starts carries a marker in its environment,
so a scan of /proc finds them all, whatever session or parent they ended up in.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from system_helpers import processes_with_env

KINDS = ("setsid", "nohup", "double-fork", "stubborn")
MARKER_VARIABLE = "CLAUDINE_TEST_STOP_MARKER"


@dataclass
class Sleepers:
    """The detached sleepers one agent's Bash tool starts, and how to look for them."""

    folder: Path
    seconds: float
    marker: str = ""

    def __post_init__(self) -> None:
        self.folder.mkdir(parents=True)
        self.marker = uuid.uuid4().hex

    def command(self, *, then: str) -> str:
        """The Bash tool's command: start the four, then run ``then`` in the foreground."""
        d, s = self.folder, self.seconds

        def body(kind: str, pid: str = "$$") -> str:
            return f"echo {pid} > {d}/{kind}.pid; sleep {s}; echo finished > {d}/{kind}.out"

        quiet = ">/dev/null 2>&1 </dev/null &"
        return " ".join([
            f"setsid sh -c '{body('setsid')}' {quiet}",
            f"nohup sh -c '{body('nohup')}' {quiet}",
            f"bash -c '({body('double-fork', '$BASHPID')}) {quiet}';",
            f"setsid sh -c 'trap \"\" TERM; {body('stubborn')}' {quiet}",
            then,
        ])

    def env(self, base: dict[str, str]) -> dict[str, str]:
        return {**base, MARKER_VARIABLE: self.marker}

    def processes(self) -> dict[int, str]:
        """Live processes carrying the marker: pid -> command line."""
        return processes_with_env(f"{MARKER_VARIABLE}={self.marker}")

    def tool_started(self) -> bool:
        """The Bash tool's shell is running: its command line names the folder (and is not
        the prompt, in case an agent gets that on its command line)."""
        return any(str(self.folder) in command and "BASH:" not in command
                   for command in self.processes().values())

    def recorded_pids(self) -> list[int]:
        return [int(p.read_text()) for p in self.folder.glob("*.pid") if p.read_text().strip()]

    def assert_all_gone(self, wrapper_pid: int | None, *others: int) -> None:
        """Nothing of the agent is left but (for a moment) its wrapper, which has written
        exit.json and is exiting: the wrapper records the end only once all are gone.
        ``others``: processes of the test's own that carry the marker too (an owner)."""
        ours = {wrapper_pid, *others}
        survivors = {pid: cmd for pid, cmd in self.processes().items() if pid not in ours}
        assert not survivors, survivors
        for pid in self.recorded_pids():
            assert not _alive(pid), pid

    async def assert_never_finish(self, started: float) -> None:
        """No sleeper gets to write its file, until well past when it would have."""
        deadline = started + self.seconds + 1.5
        while time.monotonic() < deadline:
            assert not list(self.folder.glob("*.out")), list(self.folder.glob("*.out"))
            await asyncio.sleep(0.1)
        assert not list(self.folder.glob("*.out"))


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except OSError:
        return False
