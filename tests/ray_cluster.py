"""A Ray cluster of a head and two worker nodes on loopback, for the ``ray`` test tier.

Started in this process with ``ray.cluster_utils.Cluster`` (its nodes are our children,
so the suite's leak check sees them, and ``shutdown`` stops them all). Every node declares
``agent_slot`` resources as ``ray start --resources`` would; token auth is off on
loopback only; Ray's files go under a temp directory of the test session's.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import uuid
from pathlib import Path
from types import TracebackType
from typing import Any

LOOPBACK = "127.0.0.1"
SLOTS_PER_NODE = 4
NODE_START_TRIES = 2
RAY_ENV = {
    "RAY_AUTH_MODE": "disabled",
    # Else Ray turns 127.0.0.1 into the host's outward address and a driver waits for
    # ever on a GCS that listens on loopback (docs/ray-backend.md).
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
}


class LocalRayCluster:
    def __init__(self, tmp: Path, workers: int = 2, slots_per_node: int = SLOTS_PER_NODE) -> None:
        self.tmp = tmp
        self.slots_per_node = slots_per_node
        self.workers_wanted = workers
        self.namespace = f"claudine-test-{uuid.uuid4().hex[:8]}"
        self.saved_env: dict[str, str | None] = {}
        self.cluster: Any = None
        self.workers: list[Any] = []

    def __enter__(self) -> LocalRayCluster:
        env = {**RAY_ENV, "RAY_TMPDIR": str(self.tmp)}
        self.saved_env = {name: os.environ.get(name) for name in env}
        os.environ.update(env)
        from ray.cluster_utils import Cluster

        head_args = {"num_cpus": 1, "resources": {"agent_slot": self.slots_per_node},
                     "node_ip_address": LOOPBACK, "include_dashboard": False}
        try:
            self.cluster = self._start_head(Cluster, head_args)
            for _ in range(self.workers_wanted):
                self.add_worker()
            self.cluster.wait_for_nodes()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _start_head(self, cluster_class: Any, head_args: dict[str, Any]) -> Any:
        """The head node, tried again as a worker is (see :meth:`add_worker`)."""
        for tries_left in reversed(range(NODE_START_TRIES)):
            try:
                return cluster_class(initialize_head=True, head_node_args=head_args)
            except Exception:
                self._sweep()
                if not tries_left:
                    raise
        raise AssertionError("unreachable")

    @property
    def address(self) -> str:
        return str(self.cluster.address)

    def backend(self, run_root: Path, kill_grace_s: float, **options: Any) -> Any:
        from claudine_core.backends.ray import RayBackend

        return RayBackend(address=self.address, namespace=self.namespace, run_root=run_root,
                          kill_grace_s=kill_grace_s, node_ip_address=LOOPBACK, **options)

    def kill_worker(self, node_id: str) -> None:
        """SIGKILL every Ray process of a worker node, as a machine that died."""
        node = next(n for n in self.workers if n.node_id == node_id)
        self.cluster.remove_node(node, allow_graceful=False)
        self.workers.remove(node)

    def freeze_worker(self, node_id: str) -> list[int]:
        """SIGSTOP every process of a worker node and its runs, as a machine that hangs
        (not crashed: its sockets stay open); the pids, to thaw them."""
        import psutil

        node = next(n for n in self.workers if n.node_id == node_id)
        roots = [p.process.pid for procs in node.all_processes.values() for p in procs]
        frozen = []
        for pid in roots:
            try:
                tree = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
            except psutil.NoSuchProcess:
                continue
            for process in tree:
                with contextlib.suppress(psutil.NoSuchProcess):
                    process.suspend()
                    frozen.append(process.pid)
        return frozen

    def thaw(self, pids: list[int]) -> None:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)

    def add_worker(self) -> str:
        """A new worker node; its node id.

        Ray gives a new raylet a fixed 30 s to register; on a machine loaded by other
        suites it sometimes misses that, so a second try is allowed (the first one's
        processes are swept away first, see :meth:`_sweep`)."""
        for tries_left in reversed(range(NODE_START_TRIES)):
            try:
                node = self.cluster.add_node(num_cpus=1, node_ip_address=LOOPBACK,
                                             resources={"agent_slot": self.slots_per_node})
            except Exception:
                self._sweep()  # the half-started node, before it registers late
                if not tries_left:
                    raise
                continue
            self.workers.append(node)
            return str(node.node_id)
        raise AssertionError("unreachable")

    def _sweep(self) -> None:
        """Kill the processes of nodes that failed to start: every process whose command
        line names this cluster's own temp dir (none of them is anybody else's) and that
        is not one of a started node's, or one of theirs."""
        import psutil

        mine = str(self.tmp)
        keep = self._node_pids()
        for process in psutil.process_iter(["cmdline"]):
            stray = process.pid not in keep and any(
                mine in word for word in process.info.get("cmdline") or [])
            if stray:
                with contextlib.suppress(psutil.Error):
                    process.kill()

    def _node_pids(self) -> set[int]:
        import psutil

        nodes = self.cluster.list_all_nodes() if self.cluster is not None else []
        pids: set[int] = set()
        for node in nodes:
            for infos in node.all_processes.values():
                for info in infos:
                    with contextlib.suppress(psutil.Error):
                        root = psutil.Process(info.process.pid)
                        pids.update(p.pid for p in [root, *root.children(recursive=True)])
        return pids

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        import ray

        ray.shutdown()
        if self.cluster is not None:
            self.cluster.shutdown()
        self._sweep()
        for name, value in self.saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        shutil.rmtree(self.tmp, ignore_errors=True)
