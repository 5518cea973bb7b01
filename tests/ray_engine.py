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


def hold_slots(ray_cluster: Any, node_id: str) -> Any:
    """An actor of the test's own holding every agent slot of ``node_id`` (as another
    home sharing the cluster would); ``ray.kill`` it to free them."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    if not ray.is_initialized():
        ray.init(address=ray_cluster.address, namespace=ray_cluster.namespace,
                 logging_level="ERROR", _node_ip_address="127.0.0.1")

    @ray.remote(num_cpus=0, max_restarts=0)
    class Hold:
        def ready(self) -> bool:
            return True

    hold = Hold.options(  # type: ignore[attr-defined]
        resources={"agent_slot": ray_cluster.slots_per_node},
        scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False)).remote()
    ray.get(hold.ready.remote(), timeout=60)
    return hold
