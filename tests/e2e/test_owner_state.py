"""What the owner decides, seen from other processes: why a queued task waits, and a warning
when a client's environment sets an owner setting the running owner does not use.

Separate processes throughout: a ``claudine serve`` owner, ``claudine`` CLI clients, and
this test process as a console-like client.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from engine_helpers import CLAUDINE, agent_env, cli_env, make_config

from claudine_core.config import Config
from claudine_core.engine import Engine
from claudine_core.models import TaskSpec, TaskState
from claudine_core.ownership import current_owner

pytestmark = pytest.mark.slow
MAX_ONE = "1/1 agents running (max)"


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLAUDINE, *args], env=env, capture_output=True, text=True,
                          timeout=60)


def run_json(env: dict[str, str], *args: str) -> Any:
    result = run(env, *args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def eventually(check: Callable[[], Any], what: str, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@dataclass
class Held:
    """An owner limited to one agent, running one task and holding a second back."""

    home: Path
    owner: subprocess.Popen[bytes]
    running: str
    queued: str
    client_env: dict[str, str]  # a client that sets no owner setting of its own


@pytest.fixture
def held(tmp_path: Path) -> Iterator[Held]:
    home = tmp_path / "home"
    home.mkdir()
    owner = subprocess.Popen([*CLAUDINE, "serve"], env=cli_env(home, CLAUDINE_MAX_AGENTS="1"),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
    client_env = cli_env(home)
    running = ""
    try:
        eventually(lambda: (current_owner(home / "engine.lock") or {}).get("pid") == owner.pid,
                   "the serve to own the home")
        running = run_json(client_env, "delegate", "[hang] first", "--no-serve",
                           "--cwd", str(tmp_path))["id"]
        eventually(lambda: run_json(client_env, "status", running)["status"] == "running",
                   "the first task to start")
        queued = run_json(client_env, "delegate", "[hang] second", "--no-serve",
                          "--cwd", str(tmp_path))["id"]
        yield Held(home, owner, running, queued, client_env)
    finally:
        if owner.poll() is None:
            owner.send_signal(signal.SIGTERM)
            owner.wait(timeout=20)
        if running:  # its agent outlives the owner by design: end its process group
            pid = run_json(client_env, "status", running)["pid"]
            with contextlib.suppress(ProcessLookupError, TypeError):
                os.killpg(pid, signal.SIGKILL)


def test_status_shows_why_the_owner_holds_a_task(held: Held) -> None:
    # This client sets no max_agents, so re-deriving the decision here would find no
    # reason: what it shows must come from the owner.
    status = eventually(
        lambda: (s := run_json(held.client_env, "status", held.queued))["waiting_reason"] and s,
        "the owner's reason to reach the client")
    assert status["status"] == "queued"
    assert status["waiting_reason"] == MAX_ONE
    assert run_json(held.client_env, "status", held.running)["waiting_reason"] is None

    text = run(held.client_env, "status", held.queued)
    assert f"  waiting:        {MAX_ONE}" in text.stdout.splitlines()
    assert text.stderr == ""  # nothing set here differs from the owner: no warning
    table = run(held.client_env, "status").stdout
    assert f"queued tasks are waiting: {MAX_ONE}" in table

    # The owner dies (kill -9): what it published last is not presented as current.
    held.owner.send_signal(signal.SIGKILL)
    held.owner.wait()
    status = run_json(held.client_env, "status", held.queued)
    assert status["waiting_reason"].startswith("no owner is running for this home")


def test_a_client_setting_an_owner_setting_differently_is_warned(held: Held) -> None:
    pid = held.owner.pid
    differs = run(cli_env(held.home, CLAUDINE_MAX_AGENTS="2"), "status")
    assert differs.returncode == 0
    assert differs.stderr.splitlines() == [
        f"claudine: warning: CLAUDINE_MAX_AGENTS=2 here, but the running owner (pid {pid}) "
        "uses max_agents=1; owner settings come from the owner — restart it to apply"
    ]
    same = run(cli_env(held.home, CLAUDINE_MAX_AGENTS="1"), "status")
    assert same.stderr == ""
    # A task setting is the client's own business: no warning.
    task_setting = run(cli_env(held.home, CLAUDINE_TASK_TIMEOUT="60"), "status")
    assert task_setting.stderr == ""
    # Commands that write warn too: there the setting would most surprise by doing nothing.
    env = cli_env(held.home, CLAUDINE_MAX_AGENTS="2")
    delegated = run(env, "delegate", "[hang] another", "--no-serve")
    cancelled = run(env, "cancel", delegated.stdout.strip())
    for result in (delegated, cancelled):
        assert result.returncode == 0 and f"owner (pid {pid}) uses max_agents=1" in result.stderr


async def test_a_console_client_shows_the_owners_reason(held: Held) -> None:
    # This process's settings leave admission unconstrained (no max_agents): the reason
    # in its snapshot can only be the owner's.
    engine = Engine(make_config(held.home), kind="console", env=agent_env())
    await engine.start()
    try:
        assert engine.role == "client"
        reason = eventually(lambda: engine.snapshot().waiting_reason, "the reason")
        assert reason == f"waiting: {MAX_ONE}"
    finally:
        await engine.stop()


OLDER_OWNER = """
import sys, time
from pathlib import Path
from claudine_core.config import Config, owner_settings
from claudine_core.ownership import OwnerLock
settings = owner_settings(Config(home=sys.argv[2], max_agents=1))
lock = OwnerLock(Path(sys.argv[1]), kind="test", settings=settings)
assert lock.try_acquire()
print("ready", flush=True)
time.sleep(600)
"""


@pytest.fixture
def older_owner(tmp_path: Path) -> Iterator[Config]:
    """A home owned by another process that publishes its settings (max_agents=1) but no
    decision, as an owner that has not dispatched yet does."""
    config = make_config(tmp_path / "home")  # this process: no max_agents
    owner = subprocess.Popen([sys.executable, "-c", OLDER_OWNER, str(config.lock_path),
                              str(config.home)], stdout=subprocess.PIPE, text=True)
    try:
        assert owner.stdout is not None and owner.stdout.readline().strip() == "ready"
        yield config
    finally:
        owner.kill()
        owner.wait()


async def test_a_console_client_falls_back_to_the_owners_published_limits(
    older_owner: Config, tmp_path: Path
) -> None:
    """With no decision to read, the client re-derives it with the owner's limits."""
    engine = Engine(older_owner, kind="console", env=agent_env())
    try:
        first = engine.service.delegate(TaskSpec(prompt="one", cwd=str(tmp_path)))
        engine.service.delegate(TaskSpec(prompt="two", cwd=str(tmp_path)))
        engine.service.repo.transition(first.id, [TaskState.QUEUED], status=TaskState.RUNNING)
        await engine.start()
        assert engine.role == "client"
        assert engine.snapshot().waiting_reason == f"waiting: {MAX_ONE}"
    finally:
        await engine.stop()
