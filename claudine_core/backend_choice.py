"""The supervisor the ``backend`` setting asks for: today's local one, or one that runs
agents on a Ray cluster (claudine_core/backends/remote.py).

Ray is imported only when the backend is opened (on the remote supervisor's thread, at its
first use), never for the local backend; whether it is installed is checked here, when the
engine is made, so ``backend = "ray"`` without it is a clear error and not a traceback.
The local backend loads none of the remote machinery either.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from claudine_core.config import Config, ConfigError
from claudine_core.supervisor import Supervisor

if TYPE_CHECKING:
    from claudine_core.backends.base import ExecutionBackend

RAY_RUNS = "ray-runs"
"""Where a node keeps its runs' folders, under the home's path (the same on every node)."""


def make_supervisor(config: Config, backend: ExecutionBackend | None = None) -> Supervisor:
    """The engine's supervisor: local, unless ``config.backend`` (or ``backend``, a backend
    a test made) says otherwise.

    Raises:
        ConfigError: ``backend = "ray"`` and Ray is not installed.
    """
    if backend is None and config.backend == "local":
        return Supervisor(kill_grace_s=config.kill_grace_s, agent_nice=config.agent_nice)
    from claudine_core.backends.remote import RemoteSupervisor

    open_backend = ray_opener(config) if backend is None else (lambda: backend)
    return RemoteSupervisor(kill_grace_s=config.kill_grace_s, open_backend=open_backend,
                            max_agents=config.max_agents, agent_nice=config.agent_nice,
                            memory_needed=config.memory_reserve + config.agent_memory_cost)


def ray_opener(config: Config) -> Callable[[], ExecutionBackend]:
    """How to connect to the cluster ``config`` names (nothing is imported yet)."""
    if importlib.util.find_spec("ray") is None:
        source = config.sources.get("backend", "backend")
        label = "backend" if source == "default" else source
        raise ConfigError(
            f"backend = 'ray' ({label}) needs Ray, which is not installed in this Python: "
            "pip install 'claudine[ray]'", source=label, value="ray")
    address = config.ray_address
    assert address is not None  # the settings refuse the ray backend without one

    def open_ray() -> ExecutionBackend:
        from claudine_core.backends.ray import RayBackend

        return RayBackend(address=address, namespace=config.ray_namespace,
                          run_root=Path(config.home) / RAY_RUNS,
                          kill_grace_s=config.kill_grace_s,
                          lost_after_s=config.ray_lost_after_s,
                          node_ip_address=_loopback(address))

    return open_ray


def _loopback(address: str) -> str | None:
    """127.0.0.1 when the head is on loopback: else Ray would announce this process on the
    machine's outward address and wait for ever on a head that listens on loopback only
    (docs/ray-backend.md). None (Ray's own choice) for a head elsewhere."""
    import ipaddress  # only for the ray backend

    host = address.rsplit(":", 1)[0].strip("[]")
    if host == "localhost":
        return "127.0.0.1"
    try:
        return "127.0.0.1" if ipaddress.ip_address(host).is_loopback else None
    except ValueError:
        return None
