"""The run-log reader (claudine_core.agents.run_log): the end of a file read back a block at
a time, the lines a follower sees as they are written, and resuming from an offset. (Events
from an offset, ``read_events``, are tested with the stream parsing in test_stream.py.)"""

from __future__ import annotations

import builtins
import random
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from claudine_core.agents import run_log
from claudine_core.agents.run_log import (
    RunLogFollower,
    end_of_last_line,
    iter_lines_backward,
    tail_lines,
)
from claudine_core.agents.stream_parse import LineSplitter


def numbered(count: int, width: int = 20) -> bytes:
    return b"".join(b"line %d " % n + b"x" * width + b"\n" for n in range(count))


def split_forward(data: bytes, cap: int) -> list[bytes]:
    """What a forward reader sees of ``data`` at its end: every line, the last one too."""
    splitter = LineSplitter(cap)
    return splitter.feed(data) + splitter.flush()


class ReadCounter:
    """Counts the bytes read through ``open`` in run_log."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.bytes_read = 0
        real_open = builtins.open
        counter = self

        class CountingFile:
            def __init__(self, handle: Any) -> None:
                self._handle = handle

            def read(self, size: int = -1) -> bytes:
                data: bytes = self._handle.read(size)
                counter.bytes_read += len(data)
                return data

            def __getattr__(self, name: str) -> Any:
                return getattr(self._handle, name)

            def __enter__(self) -> CountingFile:
                return self

            def __exit__(self, *exc: object) -> None:
                self._handle.close()

        def counting_open(*args: Any, **kwargs: Any) -> CountingFile:
            return CountingFile(real_open(*args, **kwargs))

        monkeypatch.setattr(run_log, "open", counting_open, raising=False)


# -- the end of a file ----------------------------------------------------------------------


def test_tail_of_a_file_many_blocks_long_reads_only_its_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "stdout.jsonl"
    data = numbered(200_000)  # about 6 MB: a hundred blocks
    path.write_bytes(data)
    counter = ReadCounter(monkeypatch)
    lines = tail_lines(path, 100)
    assert lines == data.splitlines()[-100:]
    assert counter.bytes_read <= 3 * run_log.BLOCK_BYTES < len(data) // 10


def test_tail_across_block_boundaries_matches_reading_forward(tmp_path: Path) -> None:
    path = tmp_path / "stdout.jsonl"
    data = numbered(500, width=37)
    path.write_bytes(data)
    for block_bytes in (1, 7, 64, 1000, 10**6):
        for count in (0, 1, 2, 499, 500, 501):
            expected = data.splitlines()[-count:] if count else []
            assert tail_lines(path, count, block_bytes=block_bytes) == expected


def test_a_line_being_written_is_not_in_the_tail(tmp_path: Path) -> None:
    path = tmp_path / "stdout.jsonl"
    path.write_bytes(b"one\ntwo\nthr")
    assert end_of_last_line(path) == len(b"one\ntwo\n")
    assert tail_lines(path, 5) == [b"one", b"two"]
    # Read to the end of the file, a cut-off last line (a run that ended) is a line too.
    assert [line for _, line in iter_lines_backward(path)] == [b"thr", b"two", b"one"]


def test_over_long_lines_come_as_their_head_as_a_forward_reader_cuts_them(
    tmp_path: Path,
) -> None:
    path = tmp_path / "stdout.jsonl"
    data = b"short\n" + b"L" * 5000 + b"\nmiddle\n" + b"M" * 300 + b"\nend\n"
    path.write_bytes(data)
    backward = list(iter_lines_backward(path, max_line_bytes=100, block_bytes=64))
    assert [line for _, line in backward] == [b"end", b"M" * 100, b"middle", b"L" * 100,
                                              b"short"]
    # Each line's offset is where it starts in the file.
    assert [start for start, _ in backward] == [
        len(data) - 4, len(data) - 305, 5007, 6, 0]
    assert tail_lines(path, 2, max_line_bytes=100) == [b"M" * 100, b"end"]


@pytest.mark.parametrize("seed", range(200))
def test_backward_lines_are_the_forward_lines_reversed(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    data = b"".join(rng.choice([b"\n", b"a", b"bc", b"d" * rng.randrange(30)])
                    for _ in range(rng.randrange(60)))
    path = tmp_path / "stdout.jsonl"
    path.write_bytes(data)
    cap, block_bytes = rng.choice([1, 3, 10, 1000]), rng.choice([1, 2, 5, 64])
    backward = list(iter_lines_backward(path, max_line_bytes=cap, block_bytes=block_bytes))
    assert [line for _, line in reversed(backward)] == split_forward(data, cap)
    for start, line in backward:
        assert data[start : start + len(line)] == line
        assert start == 0 or data[start - 1 : start] == b"\n"


def test_a_missing_file_has_no_lines(tmp_path: Path) -> None:
    path = tmp_path / "nope.jsonl"
    assert end_of_last_line(path) == 0
    assert list(iter_lines_backward(path)) == []
    assert tail_lines(path, 10) == []
    assert RunLogFollower(path).read_lines() == []


def test_bad_sizes_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        list(iter_lines_backward(tmp_path / "x", block_bytes=0))


# -- following ------------------------------------------------------------------------------


def test_follower_resumes_from_its_offset_and_holds_back_a_partial_line(
    tmp_path: Path,
) -> None:
    path = tmp_path / "stdout.jsonl"
    path.write_bytes(b"one\ntw")
    follower = RunLogFollower(path)
    assert follower.read_lines() == [b"one"]
    with path.open("ab") as handle:
        handle.write(b"o\nthree\n")
    assert follower.read_lines() == [b"two", b"three"]
    assert follower.offset == path.stat().st_size and not follower.has_more()
    # A new follower from a saved line boundary (the CLI after a tail) carries on there.
    later = RunLogFollower(path, end_of_last_line(path))
    with path.open("ab") as handle:
        handle.write(b"four\nfiv")
    assert later.has_more()
    assert later.read_lines() == [b"four"]
    assert later.flush() == [b"fiv"]  # the run ended mid-line


def test_follower_bounds_one_read(tmp_path: Path) -> None:
    path = tmp_path / "stdout.jsonl"
    data = numbered(100)
    path.write_bytes(data)
    follower = RunLogFollower(path)
    seen: list[bytes] = []
    while follower.has_more():
        seen += follower.read_lines(max_bytes=50)
    assert seen == data.splitlines()


def test_follower_waits_for_appended_lines(tmp_path: Path) -> None:
    path = tmp_path / "stdout.jsonl"
    path.write_bytes(b"")
    follower = RunLogFollower(path)
    assert follower.read_lines() == []
    may_write = threading.Event()

    def agent() -> None:
        may_write.wait(10)
        with path.open("ab") as handle:
            handle.write(b'{"type":"assistant"')
            handle.flush()
            handle.write(b"}\n")

    writer = threading.Thread(target=agent)
    writer.start()
    try:
        may_write.set()
        assert lines_within(follower, timeout=10) == [b'{"type":"assistant"}']
    finally:
        writer.join()
    assert follower.read_lines() == [] and not follower.has_more()


def lines_within(follower: RunLogFollower, timeout: float) -> list[bytes]:
    """The follower's next complete lines, waiting for the file to grow (at most
    ``timeout`` seconds): as ``claudine logs --follow`` polls it."""
    deadline = time.monotonic() + timeout
    while not (lines := follower.read_lines()) and time.monotonic() < deadline:
        time.sleep(0.01)
    return lines
