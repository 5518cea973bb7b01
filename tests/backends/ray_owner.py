"""An owner process for the ``ray`` tier: starts runs on a Ray cluster through RayBackend,
reads some of their output, prints what an engine would have stored (each run's ref and
the offset it read to) as one JSON line, then waits to be killed.

Usage: ``ray_owner.py ADDRESS NAMESPACE RUN_ROOT PIDFILE_DIR NODE_ID...`` (one run per node).
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from pathlib import Path

from claudine_core.backends import RunSpec
from claudine_core.backends.ray import RayBackend

AGENT_SCRIPT = Path(__file__).resolve().parent / "agent_script.py"


def main(address: str, namespace: str, run_root: str, pid_dir: str, nodes: list[str]) -> None:
    backend = RayBackend(address=address, namespace=namespace, run_root=Path(run_root),
                         kill_grace_s=1.0, node_ip_address="127.0.0.1")
    stored = []
    for i, node in enumerate(nodes):
        spec = RunSpec(task_id=f"t-owner{i}", attempt=1, cwd=os.getcwd(),
                       argv=[sys.executable, str(AGENT_SCRIPT), "ticker", f"{pid_dir}/p{i}"],
                       env=dict(os.environ), max_output_bytes=10 * 1024 * 1024, node_id=node)
        ref = backend.start(spec)
        offset = 0
        while b'"n": 3}' not in backend.read_output(ref, 0):
            time.sleep(0.02)
        offset = len(backend.read_output(ref, 0))
        stored.append({"ref": dataclasses.asdict(ref), "offset": offset})
    print(json.dumps(stored), flush=True)
    time.sleep(600)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:])
