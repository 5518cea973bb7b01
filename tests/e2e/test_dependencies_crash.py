"""A dependency's end survives the owner's kill -9: separate `claudine` processes.

The owner records the dependency completed and is SIGKILLed at once (crash point
``finished``), before it could release the dependent. The next owner releases it and runs
it exactly once; DelegateTask's ``dependsOn`` goes through the same path.
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


def delegate(env: dict[str, str], *args: str) -> dict[str, object]:
    result = run(env, "delegate", "--no-serve", "--json", *args)
    assert result.returncode == 0, result.stderr
    task: dict[str, object] = json.loads(result.stdout)
    return task


def test_an_owner_killed_between_a_dependency_end_and_the_release(tmp_path: Path) -> None:
    home = tmp_path / "home"
    ledger = tmp_path / "ledger"
    env = cli_env(home, FAKE_CLAUDE_LEDGER=str(ledger))
    first = delegate(env, "[sleep:0.3] first", "--cwd", str(tmp_path))
    second = delegate(env, "second", "--cwd", str(tmp_path), "--depends-on", str(first["id"]))
    assert second["status"] == "blocked"

    crashing = subprocess.Popen([CLAUDINE, "serve"], env={**env, "CLAUDINE_CRASH_AT": "finished"},
                                stderr=subprocess.DEVNULL)
    assert crashing.wait(timeout=60) == -9  # it died at the crash point, as kill -9 would
    service = TaskService(make_config(home))  # read the store as any client would
    try:
        assert service.get(str(first["id"])).status.value == "completed"
        assert service.get(str(second["id"])).status.value == "blocked"  # not released yet
    finally:
        service.close()

    waited = run(env, "wait", str(second["id"]), "--timeout", "60")  # starts a new owner
    assert waited.returncode == 0, waited.stderr + waited.stdout
    runs = [json.loads(line) for line in ledger.read_text().splitlines()]
    started = sorted(r["marker"] for r in runs if r["event"] == "start")
    assert started == ["first", "second"], runs  # each agent ran once, none twice
