"""The agent's process tree, as the wrapper answers for it (see wrapper.py).

The wrapper is a child subreaper on Linux, so whatever the agent starts re-parents to it
instead of init; :class:`Reaper` reaps them all and keeps the agent's own wait status, and
:meth:`Reaper.stop_tree` stops every descendant (SIGTERM, then SIGKILL after a grace). The
tree is read from /proc (``ps`` where there is none). Stdlib only: it starts per agent.
"""

from __future__ import annotations

import os
import select
import signal
import sys
import time
from collections.abc import Iterator

STOP_POLL = (0.02, 0.25)  # first and longest pause of a stop between looks for survivors
KILL_WAIT = 10.0  # how long SIGKILL may take before a stop records what it could not end
PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> bool:
    """Make orphaned descendants re-parent to this process (Linux only)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def _process_table() -> Iterator[tuple[int, int, int]]:
    """(pid, parent pid, process group) of every process.

    Zombies count: one may still link live processes to the tree (a multi-threaded agent
    whose main thread has exited shows as a zombie while its other threads run), and one
    of the tree is gone only once its parent, or the wrapper, has reaped it.
    """
    if os.path.isdir("/proc/self"):
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat", "rb") as stat:
                    fields = stat.read().rsplit(b")", 1)[1].split()
            except (OSError, IndexError):
                continue  # gone meanwhile
            yield int(entry), int(fields[1]), int(fields[2])
        return
    import subprocess  # only where there is no /proc (macOS): start-up time matters

    listing = subprocess.run(
        ["ps", "-A", "-o", "pid=", "-o", "ppid=", "-o", "pgid="],
        capture_output=True, text=True, check=False,
    ).stdout
    for line in listing.splitlines():
        words = line.split()
        if len(words) == 3:
            yield int(words[0]), int(words[1]), int(words[2])


def tree_members(root: int) -> list[int]:
    """Descendants of ``root`` and members of its process group, parents first.

    Parents come first so that a shell is stopped before the child it waits for: the shell
    must not get to run its next command (``sleep 3; echo done > file``) in between.
    """
    children: dict[int, list[int]] = {}
    group: list[int] = []
    for pid, ppid, pgid in _process_table():
        children.setdefault(ppid, []).append(pid)
        if pgid == root and pid != root:
            group.append(pid)
    found: list[int] = []
    level = [root]
    while level:
        level = [child for parent in level for child in children.get(parent, ())]
        found += level
    seen = set(found)
    return found + [pid for pid in group if pid not in seen]


def _kill(pid: int, signum: int) -> bool:
    """Signal ``pid``; False if it is not ours to signal."""
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass
    except PermissionError:
        return False
    return True


class Reaper:
    """Reaps every child of the wrapper (the agent and adopted orphans) and sleeps until a
    signal (SIGCHLD, SIGTERM) or a timeout. Keeps the agent's own wait status."""

    def __init__(self) -> None:
        self.terminated: list[float] = []
        self.agent_pid: int | None = None
        self.agent_status: int | None = None
        self._wake_read, wake_write = os.pipe()
        os.set_blocking(self._wake_read, False)
        os.set_blocking(wake_write, False)
        signal.set_wakeup_fd(wake_write, warn_on_full_buffer=False)
        # The engine stops an agent by signalling the whole group. The wrapper outlives the
        # polite SIGTERM so it can stop every descendant and record how the agent ended;
        # SIGKILL (the engine's last resort) ends it with the rest.
        signal.signal(signal.SIGTERM, lambda signum, frame: self.terminated.append(time.time()))
        signal.signal(signal.SIGCHLD, lambda signum, frame: None)

    def reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid == self.agent_pid:
                self.agent_status = status

    def sleep(self, timeout: float | None) -> None:
        try:
            select.select([self._wake_read], [], [], timeout)
            while os.read(self._wake_read, 512):
                pass
        except (BlockingIOError, InterruptedError):
            pass

    def stop_tree(self, grace: float) -> tuple[int, list[int]]:
        """SIGTERM every process of the tree, SIGKILL what is left after ``grace`` seconds,
        and return once none is left (all reaped): (how many got SIGTERM, survivors).

        Survivors are what the wrapper may not signal (another user's process: a sudo) or
        what SIGKILL did not end within KILL_WAIT (stuck in the kernel); without that
        bound the end of the run would never be recorded.
        """
        me = os.getpid()
        kill_at = time.monotonic() + grace
        termed: set[int] = set()
        foreign: set[int] = set()
        pause = STOP_POLL[0]
        killing = False
        while True:
            self.reap()
            members = [pid for pid in tree_members(me) if pid not in foreign]
            now = time.monotonic()
            if not members or now >= kill_at + KILL_WAIT:
                return len(termed), sorted(foreign) + members
            if now >= kill_at and not killing:
                killing, pause = True, STOP_POLL[0]  # SIGKILL acts at once: look again soon
            for pid in members:
                if killing:
                    allowed = _kill(pid, signal.SIGKILL)
                elif pid in termed:
                    continue
                else:
                    termed.add(pid)
                    allowed = _kill(pid, signal.SIGTERM)
                    _kill(pid, signal.SIGCONT)  # a stopped process must see it too
                if not allowed:
                    foreign.add(pid)
            self.sleep(pause)
            pause = min(pause * 2, STOP_POLL[1])


def supervise(reaper: Reaper, grace: float) -> tuple[int, list[int]]:
    """Wait for the agent to end and for every process it started to be gone.

    Returns how many processes had to be stopped after the agent ended on its own, and
    the pids of any that could not be (see :meth:`Reaper.stop_tree`).
    """
    while True:
        reaper.reap()
        if reaper.terminated:
            return 0, reaper.stop_tree(grace)[1]
        if reaper.agent_status is not None:
            # What the agent left running (a server its Bash tool put in the background)
            # would hold its output pipe open and outlive the task: stop it the same way.
            return reaper.stop_tree(grace) if tree_members(os.getpid()) else (0, [])
        reaper.sleep(None)
