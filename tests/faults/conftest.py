"""Fixtures for the fault tests: a home driven by real processes, all killed afterwards."""

from __future__ import annotations

import os
import random
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # for fault_harness

from fault_harness import FaultHome  # noqa: E402


@pytest.fixture
def home(tmp_path: Path) -> Iterator[FaultHome]:
    """A home under ``tmp_path``; every owner, client and agent it started dies afterwards."""
    h = FaultHome(tmp_path)
    try:
        yield h
    finally:
        h.close()


@pytest.fixture
def rng() -> random.Random:
    """Random moments, reproducible: CLAUDINE_FAULT_SEED=<n> replays a failing run."""
    seed = int(os.environ.get("CLAUDINE_FAULT_SEED") or time.time_ns() % 1_000_000)
    print(f"fault seed: CLAUDINE_FAULT_SEED={seed}")
    return random.Random(seed)
