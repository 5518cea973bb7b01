"""A disk that fills while an agent writes its output: the wrapper keeps reading the agent
(which would otherwise block on its pipe until its timeout), records what it could not
store in exit.json, and stores again once there is room. Needs root to mount a tmpfs."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

from engine_helpers import wait_for_state
from system_helpers import small_tmpfs

from claudine_core.agents.wrapper import CappedWriter
from claudine_core.engine import Engine
from claudine_core.models import TERMINAL_STATES, TaskSpec


def small_disk(path: Path, size: str = "512k") -> contextlib.AbstractContextManager[Path]:
    """A tmpfs of ``size`` mounted on ``path`` (skips where mounting is not allowed)."""
    return small_tmpfs(path, size)


def fill(disk: Path) -> Path:
    """Take every free byte of ``disk``; returns the file that holds them."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        with contextlib.suppress(OSError):
            while os.write(fd, b"\0" * 4096):
                pass
    finally:
        os.close(fd)
    return filler


async def test_agent_flooding_a_full_disk_still_finishes(engine: Engine, tmp_path: Path) -> None:
    with small_disk(engine.config.runs_dir):
        spec = TaskSpec(prompt="[flood:2]", cwd=str(tmp_path), timeout_s=60)
        task = engine.service.delegate(spec)
        done = await wait_for_state(engine, task.id, TERMINAL_STATES, timeout=50)
        exit_json = engine.service.output_path(task.id, "exit.json")
        assert exit_json is not None
        record = json.loads(exit_json.read_text())
        stored = exit_json.with_name("stdout.jsonl").stat().st_size
    assert "timed out" not in (done.error or "")  # it did not hang on its pipe
    assert "output could not be stored (No space left on device" in (done.error or "")
    assert record["exit_code"] == 0 and record["terminated"] is False
    assert record["unstored_bytes"] > 1024 * 1024  # most of the 2 MB did not fit
    assert "No space left on device" in record["storage_error"]
    assert record["output_bytes"] == stored < 512 * 1024


def test_storing_resumes_with_whole_lines_when_space_returns(tmp_path: Path) -> None:
    with small_disk(tmp_path / "disk", size="64k") as disk:
        out = CappedWriter(str(disk / "stdout.jsonl"), cap=10 * 1024 * 1024)
        out.feed(b'{"n": 1}\n')
        filler = fill(disk)
        lost = b'{"n": 2, "text": "' + b"x" * 20_000 + b'"}\n'
        out.feed(lost)
        # What fitted in the file's last page went in; the rest is counted, not stored.
        assert 0 < out.sink.unstored <= len(lost)
        assert "No space left on device" in (out.sink.error or "")
        filler.unlink()
        out.feed(b'{"n": 3}\n')
        out.finish()
        lines = (disk / "stdout.jsonl").read_bytes().splitlines(keepends=True)
    assert json.loads(lines[0]) == {"n": 1}
    # The line the disk cut short is ended, so the next one stays whole and parseable.
    assert len(lines) == 3 and lines[1].startswith(b'{"n": 2, "text": "xxx')
    assert json.loads(lines[2]) == {"n": 3}
    fed = len(b'{"n": 1}\n') + len(lost) + len(b'{"n": 3}\n')
    assert out.written + out.sink.unstored == fed + 1  # + the newline that ended the cut line


def test_exit_record_fits_on_a_full_disk(tmp_path: Path) -> None:
    """The wrapper takes exit.json's room before the agent starts."""
    from claudine_core.agents.wrapper import ExitRecord

    with small_disk(tmp_path / "disk", size="64k") as disk:
        record = ExitRecord(str(disk))
        fill(disk)
        record.write({"exit_code": 0, "unstored_bytes": 123, "storage_error": "full"})
        assert json.loads((disk / "exit.json").read_text())["unstored_bytes"] == 123
        assert not (disk / "exit.json.tmp").exists()
        assert oct(os.stat(disk / "exit.json").st_mode & 0o777) == "0o600"
