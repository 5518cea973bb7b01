"""Fixtures for the MCP tests: a temporary home whose agents are the fake ``claude``."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from engine_helpers import agent_env, make_config
from git_helpers import make_repo
from mcp import Client

from claudine_core.config import Config
from claudine_core.engine import Engine
from claudine_core.mcp.front import build_server


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return make_config(tmp_path / "home")


@pytest.fixture
async def engine(config: Config) -> AsyncIterator[Engine]:
    """A started owner engine whose agents are the fake CLI (stopped afterwards)."""
    engine = Engine(config, kind="mcp", env=agent_env())
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


sys.path.insert(0, str(Path(__file__).resolve().parent))  # for mcp_helpers
