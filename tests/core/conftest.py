"""Fixtures shared by the core tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from engine_helpers import agent_env, make_config

from claudine_core.engine import Engine


@pytest.fixture
async def engine(tmp_path: Path):
    """A real owner Engine on a temporary home with the fake agent; agents stopped after."""
    eng = Engine(make_config(tmp_path / "home"), env=agent_env(), tick_s=0.05)
    await eng.start()
    yield eng
    await eng.stop(stop_agents=True)
