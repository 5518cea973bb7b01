"""The one reader of a run's output file (``<run>/stdout.jsonl``, written by the wrapper).

Three ways to read it, each touching only the bytes it needs:

- from a byte offset (:func:`read_events`): what a follower that remembers where it was
  (the console's log pane, the service's ``read_events``) calls again and again;
- the end (:func:`iter_lines_backward`, :func:`tail_lines`): the last lines, read back from
  the end of the file a block at a time, so a tail of 100 lines of a 1 GB log reads a few
  blocks, not the file;
- as it grows (:class:`RunLogFollower`): new complete lines as the agent writes them, for
  ``claudine logs --follow`` (which polls it at its own pace, between looks at the task).

The file is being written while it is read: only complete lines (ended by a newline) are
consumed, so a read never sees half a line, and the offsets returned are line boundaries
to resume from. No line costs more than ``max_line_bytes`` of memory: a longer one comes
as its first ``max_line_bytes`` bytes, as :class:`LineSplitter` cuts it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import BinaryIO

from claudine_core.agents.stream_events import InvalidLine, StreamEvent, clip
from claudine_core.agents.stream_parse import (
    DEFAULT_MAX_LINE_BYTES,
    RAW_LIMIT,
    LineSplitter,
    parse_lines,
)

BLOCK_BYTES = 64 * 1024

Path = str | os.PathLike[str]


# -- from an offset -----------------------------------------------------------------------


def read_events(
    path: Path, start_offset: int = 0, max_bytes: int | None = None
) -> tuple[list[StreamEvent], int]:
    """Events of the complete lines of ``path`` from ``start_offset``, and the new offset.

    Only whole lines are consumed, so a writer mid-line is safe: call again with the
    returned offset. ``max_bytes`` bounds one read; a single line longer than that is
    reported as one :class:`InvalidLine` and skipped once its newline is written. A file
    that does not exist yet gives no events.
    """
    try:
        with open(path, "rb") as handle:
            handle.seek(start_offset)
            data = handle.read(-1 if max_bytes is None else max_bytes)
            last_newline = data.rfind(b"\n")
            if last_newline >= 0:
                lines = data[:last_newline].split(b"\n")
                return parse_lines(lines), start_offset + last_newline + 1
            if max_bytes is None or len(data) < max_bytes:
                return [], start_offset  # the writer is mid-line
            return _skip_long_line(handle, start_offset, data, max_bytes)
    except FileNotFoundError:
        return [], start_offset


def _skip_long_line(
    handle: BinaryIO, start_offset: int, head: bytes, max_bytes: int
) -> tuple[list[StreamEvent], int]:
    # Without this a line longer than max_bytes would stall the reader forever.
    after = _skip_to_newline(handle, start_offset + len(head))
    if after is None:
        return [], start_offset
    raw = clip(head.decode("utf-8", errors="replace"), RAW_LIMIT)
    return [InvalidLine(raw, f"line longer than {max_bytes} bytes")], after


def _skip_to_newline(handle: BinaryIO, position: int) -> int | None:
    """The offset just past the next newline at or after ``position``; None if none yet."""
    handle.seek(position)
    while block := handle.read(BLOCK_BYTES):
        newline = block.find(b"\n")
        if newline >= 0:
            return position + newline + 1
        position += len(block)
    return None


# -- from the end ---------------------------------------------------------------------------


def end_of_last_line(path: Path, *, block_bytes: int = BLOCK_BYTES) -> int:
    """The offset just past the file's last newline: where its complete lines end and a
    follower resumes (0 for a missing file or one with no complete line yet)."""
    try:
        with open(path, "rb") as handle:
            position = handle.seek(0, os.SEEK_END)
            while position > 0:
                start = max(0, position - block_bytes)
                handle.seek(start)
                newline = handle.read(position - start).rfind(b"\n")
                if newline >= 0:
                    return start + newline + 1
                position = start
    except FileNotFoundError:
        pass
    return 0


def iter_lines_backward(
    path: Path,
    end: int | None = None,
    *,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    block_bytes: int = BLOCK_BYTES,
) -> Iterator[tuple[int, bytes]]:
    """``(start offset, line)`` of the lines before ``end``, newest first, without newlines.

    Reads back from ``end`` (default: the file's size) a block at a time, only as far as the
    caller iterates. The bytes between the last newline before ``end`` and ``end`` count as
    a line if there are any: pass :func:`end_of_last_line` to leave out one being written.
    A line longer than ``max_line_bytes`` comes as its first ``max_line_bytes`` bytes; no
    more than that of it is ever held. A missing file has no lines.
    """
    if max_line_bytes < 1 or block_bytes < 1:
        raise ValueError("max_line_bytes and block_bytes must be at least 1")
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed by the generator's finally
    except FileNotFoundError:
        return
    with handle:
        position = handle.seek(0, os.SEEK_END) if end is None else end
        # The right-hand part of the line being assembled; None once it is over the cap.
        carry: bytes | None = b""
        # Whether a newline ends that line: only then is an empty one a line (the bytes
        # after the last newline are one only when there are some).
        ended = False
        while position > 0:
            start = max(0, position - block_bytes)
            handle.seek(start)
            block = handle.read(position - start)
            position = start
            right = len(block)
            newline = block.rfind(b"\n")
            while newline >= 0:
                left = block[newline + 1 : right]
                if ended or left or carry != b"":
                    line_start = position + newline + 1
                    yield line_start, _whole(handle, line_start, left, carry, max_line_bytes)
                carry, right, ended = b"", newline, True
                newline = block.rfind(b"\n", 0, right)
            carry = None if carry is None else block[:right] + carry
            if carry is not None and len(carry) > max_line_bytes:
                carry = None  # too long to hold: its head is read again once its start is found
        if ended or carry != b"":
            yield 0, _whole(handle, 0, b"", carry, max_line_bytes)


def _whole(handle: BinaryIO, start: int, left: bytes, carry: bytes | None,
           max_line_bytes: int) -> bytes:
    """The line at ``start`` (``left`` + ``carry``), cut to ``max_line_bytes`` as
    :class:`LineSplitter` cuts it; read again from its start when it was too long to hold."""
    if carry is None:
        handle.seek(start)
        return handle.read(max_line_bytes)
    line = left + carry
    return line if len(line) <= max_line_bytes else line[:max_line_bytes]


def tail_lines(path: Path, count: int, **options: int) -> list[bytes]:
    """The last ``count`` complete lines of ``path``, oldest first (a line being written
    is left out). ``options``: ``max_line_bytes`` and ``block_bytes`` as for
    :func:`iter_lines_backward`."""
    if count <= 0:
        return []
    lines: list[bytes] = []
    for _, line in iter_lines_backward(path, end_of_last_line(path), **options):
        lines.append(line)
        if len(lines) == count:
            break
    lines.reverse()
    return lines


# -- as it grows ----------------------------------------------------------------------------


class RunLogFollower:
    """New complete lines of a growing file, from ``offset`` on, with bounded memory.

    ``offset`` is how far the file has been read (a partial last line is read but held
    back until its newline arrives; :meth:`flush` gives it up at the end of the run).
    """

    def __init__(self, path: Path, offset: int = 0, *,
                 max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> None:
        self.path = path
        self.offset = offset
        self._splitter = LineSplitter(max_line_bytes)

    def read_lines(self, max_bytes: int | None = None) -> list[bytes]:
        """The lines completed since the last call (``max_bytes``: the most to read now)."""
        try:
            with open(self.path, "rb") as source:
                source.seek(self.offset)
                data = source.read(-1 if max_bytes is None else max_bytes)
        except FileNotFoundError:
            return []
        self.offset += len(data)
        return self._splitter.feed(data) if data else []

    def has_more(self) -> bool:
        """Whether the file holds bytes not read yet."""
        try:
            return os.stat(self.path).st_size > self.offset
        except FileNotFoundError:
            return False

    def flush(self) -> list[bytes]:
        """The partial last line held back, if any: call it once the run has ended."""
        return self._splitter.flush()
