"""A continuation survives its owner's kill -9: separate `claudine` processes.

The owner claims the continuation and is SIGKILLed at once (crash point ``claimed``, the
second claim: the continued task's was the first), before it chose the session to resume.
The next owner gives the claim back, decides again and continues the conversation, once.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from engine_helpers import cli_env, make_config

from claudine_core.service import TaskService

CLAUDINE = str(Path(sys.executable).with_name("claudine"))


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CLAUDINE, *args], env=env, capture_output=True, text=True,
                          timeout=60)


def test_an_owner_killed_after_claiming_a_continuation(tmp_path: Path) -> None:
    home = tmp_path / "home"
    log = tmp_path / "agents.jsonl"
    env = cli_env(home, FAKE_CLAUDE_LOG=str(log), CLAUDE_CONFIG_DIR=str(tmp_path / "claude"))
    made = run(env, "pipeline", "first", "second", "--continue", "--cwd", str(tmp_path),
               "--no-serve", "--json")
    assert made.returncode == 0, made.stderr
    first, second = (task["id"] for task in json.loads(made.stdout)["tasks"])

    crashing = subprocess.Popen([CLAUDINE, "serve"], stderr=subprocess.DEVNULL,
                                env={**env, "CLAUDINE_CRASH_AT": "claimed",
                                     "CLAUDINE_CRASH_AFTER": "1"})
    assert crashing.wait(timeout=60) == -9  # died right after claiming the second step
    service = TaskService(make_config(home))  # read the store as any client would
    try:
        claimed = service.get(second)
        assert claimed.status.value == "running" and claimed.pid is None
        assert claimed.resume_session_id is None  # killed before it chose the session
        session = service.get(first).session_id
    finally:
        service.close()

    waited = run(env, "wait", second, "--timeout", "60")  # starts a new owner
    assert waited.returncode == 0, waited.stderr + waited.stdout
    runs = [json.loads(line)["argv"] for line in log.read_text().splitlines()]
    assert len(runs) == 2  # each step's agent ran once
    assert runs[1][runs[1].index("--resume") + 1] == session and "--fork-session" in runs[1]
