"""Exactly one engine owner per home, decided by an exclusive OS lock.

``flock`` is released by the kernel when the holder dies, however it dies, so there is
never a stale lock to clean up after a ``kill -9``.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from pathlib import Path
from typing import Any


class OwnerLock:
    """The lock file ``engine.lock``; whoever holds it owns the home.

    Args:
        path: the lock file.
        kind: what the owner is ("serve", "console", "mcp"), recorded for others to show.
    """

    def __init__(self, path: Path, *, kind: str) -> None:
        self.path = path
        self.kind = kind
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def try_acquire(self) -> bool:
        """Take the lock if nobody holds it; never blocks."""
        if self._fd is not None:
            return True
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        except BaseException:
            os.close(fd)
            raise
        record = {"pid": os.getpid(), "kind": self.kind, "since": time.time()}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(record).encode(), 0)
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)
        finally:
            os.close(fd)  # closing drops the flock


def current_owner(path: Path) -> dict[str, Any] | None:
    """Who owns the home right now (pid, kind, since), or None when nobody does."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            raw = os.pread(fd, 4096, 0)
            try:
                record = json.loads(raw) if raw else {}
            except ValueError:
                record = {}
            return record if isinstance(record, dict) else {}
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)
