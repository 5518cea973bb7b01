"""The engine on a local Ray cluster: the settings and helpers its ray-tier tests share
(the ``head_held`` fixture is in tests/backends/conftest.py)."""

from __future__ import annotations

from typing import Any

LOST_AFTER_S = 3.0  # the watchdog's setting in the tests (20 s by default)
TASK_DEADLINE_S = 120.0  # a loaded 2-core machine starts Ray workers slowly


def ray_settings(ray_cluster: Any, **more: Any) -> dict[str, Any]:
    return {"backend": "ray", "ray_address": ray_cluster.address,
            "ray_namespace": ray_cluster.namespace, "ray_lost_after_s": LOST_AFTER_S,
            # The nodes share this machine's disk: tasks run anywhere in place.
            "ray_shared_fs": True, **more}


def worker_ids(ray_cluster: Any) -> set[str]:
    return {str(node.node_id) for node in ray_cluster.workers}
