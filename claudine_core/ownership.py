"""Exactly one engine owner per home, decided by an exclusive OS lock.

``flock`` is released by the kernel when the holder dies, however it dies, so there is
never a stale lock to clean up after a ``kill -9``.

The owner also publishes, for clients to read without asking it anything:

- in the lock record (``engine.lock``): its pid, kind, start time and its owner-scope
  settings (config.owner_settings), so a client can tell that its own differ;
- in ``admission.json`` next to the lock: its latest admission decision (why queued tasks
  wait), replaced atomically only when the reason changes. The file carries the owner's
  pid and start time, so one left behind by an owner that died is ignored.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

log = logging.getLogger("claudine.ownership")

ADMISSION_FILE = "admission.json"
_RECORD_MAX = 64 * 1024  # the record is a few hundred bytes; read generously anyway
_UNSET = object()
# A probe holds its shared lock for microseconds; 50 tries 2 ms apart outlast any burst.
_PROBE_RETRIES = 50
_PROBE_WAIT_S = 0.002


class OwnerLock:
    """The lock file ``engine.lock``; whoever holds it owns the home.

    Args:
        path: the lock file.
        kind: what the owner is ("serve", "console", "mcp"), recorded for others to show.
        settings: the owner-scope settings to publish in the record (JSON-ready values).
    """

    def __init__(
        self, path: Path, *, kind: str, settings: Mapping[str, Any] | None = None
    ) -> None:
        self.path = path
        self.kind = kind
        self.settings = dict(settings) if settings is not None else None
        self.record: dict[str, Any] | None = None
        self._fd: int | None = None
        self._published: object = _UNSET
        self._publish_failed = False

    @property
    def held(self) -> bool:
        return self._fd is not None

    @property
    def admission_path(self) -> Path:
        return self.path.with_name(ADMISSION_FILE)

    def try_acquire(self) -> bool:
        """Take the lock if nobody holds it; never blocks."""
        if self._fd is not None:
            return True
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            taken = _lock_exclusive(fd)
        except BaseException:
            os.close(fd)
            raise
        if not taken:
            os.close(fd)
            return False
        record: dict[str, Any] = {"pid": os.getpid(), "kind": self.kind, "since": time.time()}
        if self.settings is not None:
            record["settings"] = self.settings
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(record, separators=(",", ":")).encode(), 0)
        self._fd = fd
        self.record = record
        self._published = _UNSET
        return True

    def publish_admission(self, reason: str | None) -> None:
        """Tell clients why queued tasks wait (None: they do not), if that changed.

        A small file replaced atomically, so a reader sees the old or the new decision,
        never half of one. A failure to write is logged, not raised: it must not stop
        dispatch, and the next call tries again.
        """
        if self.record is None or reason == self._published:
            return
        data = {"pid": self.record["pid"], "since": self.record["since"], "reason": reason,
                "at": time.time()}
        target = self.admission_path
        tmp = target.with_name(f".{ADMISSION_FILE}.{os.getpid()}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
            try:
                os.write(fd, json.dumps(data).encode())
            finally:
                os.close(fd)
            os.replace(tmp, target)
        except OSError as exc:
            if not self._publish_failed:
                log.warning("cannot publish the admission decision to %s: %s", target, exc)
            self._publish_failed = True
            with contextlib.suppress(OSError):
                tmp.unlink()
            return
        self._published = reason
        self._publish_failed = False

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            if self._published is not _UNSET:
                # Still under the lock, so it cannot remove a next owner's file.
                with contextlib.suppress(OSError):
                    self.admission_path.unlink()
            os.ftruncate(fd, 0)
        finally:
            self.record = None
            self._published = _UNSET
            os.close(fd)  # closing drops the flock


def _lock_exclusive(fd: int) -> bool:
    """Take the exclusive lock unless an owner holds it.

    :func:`current_owner` probes with a brief shared lock, and a probe (a ``status``, a
    console starting, a delegate deciding whether to start an owner) makes an exclusive
    attempt fail although nobody owns the home. A would-be owner that gave up then would
    leave the queue with no owner at all, so it tries again while only probes are in its
    way: a shared lock it can take itself means no exclusive holder.
    """
    for _ in range(_PROBE_RETRIES):
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            pass
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # an owner holds it
        fcntl.flock(fd, fcntl.LOCK_UN)
        time.sleep(_PROBE_WAIT_S)
    return False


def current_owner(path: Path) -> dict[str, Any] | None:
    """Who owns the home right now (pid, kind, since, settings), or None when nobody does.

    An empty dict means someone holds the lock but its record is not readable yet.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            raw = os.pread(fd, _RECORD_MAX, 0)
            try:
                record = json.loads(raw) if raw else {}
            except ValueError:
                record = {}
            return record if isinstance(record, dict) else {}
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def published_admission(
    path: Path, owner: Mapping[str, Any] | None | object = _UNSET
) -> dict[str, Any] | None:
    """The running owner's latest admission decision (``reason``, ``at``, ``pid``), or None
    when no owner runs or it has published nothing (yet, or it is an older claudine).

    ``path`` is the lock file; ``owner`` is its :func:`current_owner` record when the caller
    has already read it. A file whose pid and start time are not the running owner's is
    left over from an earlier owner and ignored.
    """
    if owner is _UNSET:
        owner = current_owner(path)
    if not isinstance(owner, Mapping) or "pid" not in owner:
        return None
    try:
        data = json.loads(path.with_name(ADMISSION_FILE).read_bytes())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    if data.get("pid") != owner.get("pid") or data.get("since") != owner.get("since"):
        return None
    reason = data.get("reason")
    return data if reason is None or isinstance(reason, str) else None
