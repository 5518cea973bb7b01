"""Fixtures for the MCP tests: a temporary home whose agents are the fake ``claude``, an
owner engine on it, or a client engine on it while the test holds the owner lock."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from engine_helpers import agent_env, make_config
from git_helpers import make_repo
from mcp import Client

from claudine_core.config import Config
from claudine_core.engine import Engine
from claudine_core.mcp.front import build_server
from claudine_core.ownership import OwnerLock


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return make_config(tmp_path / "home")


@pytest.fixture
def agent_environment() -> dict[str, str]:
    """The environment of ``engine``'s fake agents; a module overrides this fixture to add
    to it (``FAKE_CLAUDE_LOG``, say)."""
    return agent_env()


@pytest.fixture
async def engine(config: Config, agent_environment: dict[str, str]) -> AsyncIterator[Engine]:
    """A started owner engine whose agents are the fake CLI (stopped afterwards)."""
    engine = Engine(config, kind="mcp", env=agent_environment)
    await engine.start()
    try:
        yield engine
    finally:
        await engine.stop(stop_agents=True)


@pytest.fixture
def connect(config: Config, engine: Engine) -> Callable[[], Client]:
    """Makes the SDK's in-memory client on a server attached to ``engine``.

    Use as ``async with connect() as client``: the client's task group must be entered
    and left in the test's own task, which a yielding async fixture cannot promise.
    """
    return lambda: Client(build_server(config, engine=engine))


@pytest.fixture
def held_home(config: Config) -> Iterator[Config]:
    """``config``'s home with its owner lock held by the test (an owner that never runs
    anything): engines and headless servers on it are clients, so what they are asked to
    run stays queued; commands are still committed rows."""
    lock = OwnerLock(config.lock_path, kind="test")
    assert lock.try_acquire()
    try:
        yield config
    finally:
        lock.release()


@pytest.fixture
async def client_engine(held_home: Config) -> AsyncIterator[Engine]:
    """A started engine on ``held_home``: a client, so nothing it is asked runs or fires."""
    engine = Engine(held_home, kind="mcp")
    await engine.start()
    assert engine.role == "client"
    try:
        yield engine
    finally:
        await engine.stop()


@pytest.fixture
def connect_waiting(held_home: Config, client_engine: Engine) -> Callable[[], Client]:
    """Makes in-memory clients (as ``connect``) of a server attached to ``client_engine``:
    tasks delegated through them stay queued."""
    return lambda: Client(build_server(held_home, engine=client_engine))


@pytest.fixture
def workdir(tmp_path: Path) -> str:
    path = tmp_path / "work"
    path.mkdir()
    return str(path)


@pytest.fixture
def repo_dir(tmp_path: Path) -> str:
    """A git repository with a first commit, for worktree tasks."""
    return str(make_repo(tmp_path / "repo"))


@pytest.fixture(autouse=True)
def _no_inherited_home(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("CLAUDINE_"):
            monkeypatch.delenv(name)


@pytest.fixture
def home_env(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A fresh home and the environment for ``claudine --headless`` on it (fake agent)."""
    from engine_helpers import cli_env

    home = tmp_path / "home"
    home.mkdir()
    return home, cli_env(home, FAKE_CLAUDE_LOG=str(tmp_path / "agent-runs.jsonl"))


@pytest.fixture(scope="session")
def inspector() -> Path:
    """The pinned MCP Inspector CLI (the TypeScript SDK's client), installed on first use (a
    no-op once it is there)."""
    repo = Path(__file__).resolve().parents[2]
    result = subprocess.run(["bash", str(repo / "scripts" / "install-mcp-inspector.sh")],
                            capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        pytest.fail(f"could not install the MCP Inspector:\n{result.stderr}", pytrace=False)
    return repo / ".mcp-inspector" / "node_modules" / ".bin" / "mcp-inspector"


sys.path.insert(0, str(Path(__file__).resolve().parent))  # for mcp_helpers
