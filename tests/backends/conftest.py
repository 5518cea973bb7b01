"""Backends for the contract tests, one kind per parametrization (see backend_kit).

The Ray kind runs on a local cluster of a head and two worker nodes on loopback, started
once per session (about 20 s); it is skipped with the reason when ray is not installed
(the main suite's Python has no ray: ``pip install 'claudine[ray]'``).
"""

from __future__ import annotations

import importlib.util
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from backend_kit import GRACE_S, BackendKit, fake_program

from claudine_core.backends.fake import FakeBackend, FakeWorld
from claudine_core.backends.local import LocalBackend

RAY_MISSING = "ray is not installed in this Python (pip install 'claudine[ray]'): ray tier skipped"
BACKEND_KINDS = ["local", "fake", pytest.param("ray", marks=pytest.mark.ray)]


@pytest.fixture(scope="session")

def ray_cluster() -> Iterator[object]:
    if importlib.util.find_spec("ray") is None:
        pytest.skip(RAY_MISSING)
    from ray_cluster import LocalRayCluster

    with LocalRayCluster(Path(tempfile.mkdtemp(prefix="claudine-ray-"))) as cluster:
        yield cluster


@pytest.fixture(params=BACKEND_KINDS)
def kit(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BackendKit]:
    kind = request.param
    if kind == "local":
        made = BackendKit(kind, lambda: LocalBackend(tmp_path / "runs", kill_grace_s=GRACE_S),
                          runs_processes=True)
    elif kind == "fake":
        world = FakeWorld()
        made = BackendKit(kind, lambda: FakeBackend(fake_program, kill_grace_s=GRACE_S,
                                                    world=world), runs_processes=False)
    else:
        cluster = request.getfixturevalue("ray_cluster")
        made = BackendKit(kind, lambda: cluster.backend(tmp_path / "runs", GRACE_S),
                          runs_processes=True)
    yield made
    made.clean_up()


@pytest.fixture
def head_held(ray_cluster: Any) -> Iterator[None]:
    """Every agent slot of the head node taken by an actor of the test's own."""
    import ray
    from ray_engine import hold_slots

    hold = hold_slots(ray_cluster, ray_cluster.cluster.head_node.node_id)
    yield
    ray.kill(hold)
