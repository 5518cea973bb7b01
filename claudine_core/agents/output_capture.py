"""Copying an agent's output into its run folder, bounded, whatever the disk does.

Part of the wrapper (see wrapper.py): stdlib only, it starts once per agent. stdout goes to
``stdout.jsonl`` in whole lines up to a cap (the final result line is kept past it), stderr
to ``stderr.log`` up to :data:`STDERR_CAP`. A full disk never stops the copying (the agent
would block on its pipe): what could not be stored is counted.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator

STDERR_CAP = 1024 * 1024
CHUNK = 64 * 1024
# Lines that must survive truncation: without the final result a flooded run could
# not be told apart from a crashed one.
_KEEP_PREFIXES = (b'{"type":"result"', b'{"type": "result"')


class Sink:
    """Appends to a file; a failed write (a full disk) loses that data, never the reader.

    Bytes that could not be stored are counted in ``unstored`` (``error`` says why), and
    storing resumes with the next write that succeeds. A line cut short by a failed write
    is ended before anything else is stored, so later lines stay whole.
    """

    def __init__(self, path: str) -> None:
        self.name = os.path.basename(path)
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self.stored = 0
        self.unstored = 0
        self.error: str | None = None
        self._torn = False

    def write(self, data: bytes) -> int:
        """Store ``data``; returns how many of its bytes were stored. ``stored`` counts
        the bytes in the file (with the newlines that ended cut lines)."""
        if not data:
            return 0
        done = 0
        try:
            if self._torn:
                self._write_all(b"\n")
                self._torn = False
                self.stored += 1
            while done < len(data):
                done += os.write(self.fd, data[done:])
        except OSError as exc:
            self.unstored += len(data) - done
            self.error = f"{exc.strerror or exc} ({self.name})"
            self._torn = self._torn or (done > 0 and data[done - 1 : done] != b"\n")
        self.stored += done
        return done

    def _write_all(self, data: bytes) -> None:
        while data:
            data = data[os.write(self.fd, data) :]

    def close(self) -> None:
        os.close(self.fd)


class CappedWriter:
    """Appends whole lines to a file until ``cap`` bytes, then keeps only result lines."""

    def __init__(self, path: str, cap: int) -> None:
        self.sink = Sink(path)
        self.cap = cap
        self.dropped = 0
        self.closed = False
        self._partial = b""
        self._dropping_line = False

    @property
    def written(self) -> int:
        return self.sink.stored

    def feed(self, data: bytes) -> None:
        data = self._partial + data
        cut = data.rfind(b"\n") + 1
        complete, self._partial = data[:cut], data[cut:]
        if len(self._partial) > self.cap:
            # One endless line: keep nothing of it beyond what the cap allows.
            self.dropped += len(self._partial)
            self._partial = b""
            self._dropping_line = True
        if complete:
            self._write_lines(complete)

    def _write_lines(self, complete: bytes) -> None:
        if self._dropping_line:
            end = complete.find(b"\n") + 1
            self.dropped += end
            complete = complete[end:]
            self._dropping_line = False
        room = self.cap - self.written
        if len(complete) <= room:
            self.sink.write(complete)
            return
        fits = complete.rfind(b"\n", 0, room) + 1
        self.sink.write(complete[:fits])
        for line in complete[fits:].splitlines(keepends=True):
            if line.startswith(_KEEP_PREFIXES):
                self.sink.write(line)
            else:
                self.dropped += len(line)

    def write_own_line(self, line: bytes) -> None:
        """Store a whole line of the wrapper's own (a message it delivered) between the
        agent's lines: the agent's unfinished line stays pending, and is kept or dropped as
        it would have been."""
        dropping, self._dropping_line = self._dropping_line, False
        try:
            self._write_lines(line)
        finally:
            self._dropping_line = dropping

    def finish(self) -> None:
        if self._partial:
            if self.written + len(self._partial) <= self.cap or self._partial.startswith(
                _KEEP_PREFIXES
            ):
                self.sink.write(self._partial + b"\n")
            else:
                self.dropped += len(self._partial)
        self.closed = True
        self.sink.close()


def _chunks(source: int) -> Iterator[bytes]:
    """What the agent writes to ``source`` until it closes it (or reading fails); the
    descriptor is closed afterwards."""
    try:
        while True:
            try:
                chunk = os.read(source, CHUNK)
            except OSError:
                return
            if not chunk:
                return
            yield chunk
    finally:
        os.close(source)


def copy_stderr(source: int, sink: Sink) -> None:
    seen = 0
    for chunk in _chunks(source):
        if seen < STDERR_CAP:
            sink.write(chunk[: STDERR_CAP - seen])
        seen += len(chunk)


def copy_stdout(source: int, out: CappedWriter, lock: threading.Lock,
                on_result: Callable[[], None] | None = None) -> None:
    """Copy the agent's stdout; ``on_result`` is called after each ``result`` line (the end
    of a turn) has been stored."""
    line_start = b""  # the first bytes of the line not yet complete: enough to know its type
    for chunk in _chunks(source):
        with lock:
            if not out.closed:
                out.feed(chunk)
        if on_result is None:
            continue
        *complete, rest = (line_start + chunk).split(b"\n")
        line_start = rest[:32]
        if any(line.startswith(_KEEP_PREFIXES) for line in complete):
            on_result()
