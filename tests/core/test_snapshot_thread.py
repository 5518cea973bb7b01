"""The console's snapshot, read on the engine's reader thread (off the event loop it shares
with the engine): it shows what every process wrote, and the thread and its database
connection go when the engine stops. Real SQLite, a real second process's writes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

from engine_helpers import FAKE_CLAUDE, agent_env, make_config

from claudine_core.engine import Engine
from claudine_core.models import TaskSpec
from claudine_core.ownership import OwnerLock

REPO = Path(__file__).resolve().parents[2]


def reader_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("claudine-reader")]


def open_database_files(home: Path) -> int:
    """This process's open descriptors on the home's database (the main file)."""
    database = str(home / "claudine.db")
    count = 0
    for name in os.listdir("/proc/self/fd"):
        try:
            count += os.readlink(f"/proc/self/fd/{name}") == database
        except OSError:
            continue
    return count


def delegate_from_another_process(home: Path, prompt: str, cwd: Path) -> None:
    code = (
        "import sys\n"
        "from claudine_core.config import load_config\n"
        "from claudine_core.models import TaskSpec\n"
        "from claudine_core.service import TaskService\n"
        "service = TaskService(load_config())\n"
        "service.delegate(TaskSpec(sys.argv[1], cwd=sys.argv[2], worktree=False))\n"
        "service.close()\n"
    )
    env = {**agent_env(), "CLAUDINE_HOME": str(home), "PYTHONPATH": str(REPO),
           "CLAUDINE_CLAUDE_BIN": str(FAKE_CLAUDE)}
    subprocess.run([sys.executable, "-c", code, prompt, str(cwd)], env=env, check=True,
                   timeout=60)


async def test_the_threads_snapshot_shows_every_processs_writes_and_goes_at_stop(
        tmp_path: Path) -> None:
    home = tmp_path / "home"
    config = make_config(home)
    # Another owner holds the home: this engine is a client, so the tasks stay queued
    # while the two reads are compared.
    holder = OwnerLock(config.lock_path, kind="serve")
    assert holder.try_acquire()
    engine = Engine(config, env=agent_env())
    await engine.start()
    files_before_reads = open_database_files(home)
    try:
        assert (await engine.snapshot_in_thread()).tasks == ()
        delegate_from_another_process(home, "from another process", tmp_path)
        ours = engine.service.delegate(TaskSpec("from the engine's own process",
                                                cwd=str(tmp_path), worktree=False))
        seen = await engine.snapshot_in_thread()
        assert [t.prompt for t in seen.tasks] == [ours.prompt, "from another process"]
        assert seen.queued == 2
        assert seen.tasks == engine.snapshot().tasks  # the loop's own read agrees
        assert len(reader_threads()) == 1
        assert open_database_files(home) > files_before_reads  # the thread's connection
    finally:
        await engine.stop()
        holder.release()
    assert reader_threads() == []
    assert open_database_files(home) == 0
