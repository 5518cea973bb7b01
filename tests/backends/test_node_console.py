"""The real console, in a terminal (a tmux session), on a home whose agents run on the
local Ray cluster: a row per node under the gauges with its probe's readings, and the
task table's node column saying where the task runs.

In a terminal, not in-process: pytest enables Python's faulthandler for itself, which
hid that Ray, connecting under a running console, failed on Textual's capture of stderr."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from engine_helpers import cli_env, make_config, poll

from claudine_core.models import TaskSpec, TaskState
from claudine_core.service import TaskService

pytestmark = [pytest.mark.ray,
              pytest.mark.skipif(not shutil.which("tmux"), reason="needs tmux")]

SHOWN_DEADLINE_S = 120.0  # the console connects to Ray and starts three probes
NODE_ROW = re.compile(r"^\s*([0-9a-f]{8}|\S+)\s+\d+/\d+ agents\s+CPU .*%\s+MEM .*G free of")


class RayConsole:
    """``python -m claudine_tui`` (this Python: the one with ray) in a detached 120x36
    tmux session on ``home``, with the cluster's settings."""

    def __init__(self, tmp_path: Path, settings: dict[str, str]) -> None:
        self.env = cli_env(tmp_path / "home", **settings)
        self.env.update({name: value for name, value in os.environ.items()
                         if name.startswith("RAY_")})  # loopback, no token: the fixture's
        self.session = f"claudine-nodes-{uuid.uuid4().hex[:8]}"
        exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in self.env.items()
                           if k.startswith(("CLAUDINE_", "IS_SANDBOX", "PYTHON", "RAY_")))
        command = f"env -u COLUMNS -u LINES {exports} {shlex.quote(sys.executable)} -m claudine_tui"
        subprocess.run(["tmux", "new-session", "-d", "-s", self.session, "-x", "120", "-y",
                        "36", command], check=True, cwd=tmp_path)

    def screen(self) -> str:
        return subprocess.run(["tmux", "capture-pane", "-p", "-J", "-t", f"{self.session}:0"],
                              capture_output=True, text=True).stdout

    def keys(self, *keys: str) -> None:
        subprocess.run(["tmux", "send-keys", "-t", f"{self.session}:0", *keys], check=True)

    def close(self) -> None:
        subprocess.run(["tmux", "kill-session", "-t", self.session], capture_output=True)


def node_rows(screen: str) -> dict[str, str]:
    """The per-node rows on the screen, by their label."""
    return {found.group(1): line for line in screen.splitlines()
            if (found := NODE_ROW.match(line))}


def test_the_console_shows_a_row_per_node_and_where_the_task_runs(
        ray_cluster: Any, tmp_path: Path) -> None:
    settings = {"CLAUDINE_BACKEND": "ray", "CLAUDINE_RAY_ADDRESS": ray_cluster.address,
                "CLAUDINE_RAY_NAMESPACE": ray_cluster.namespace,
                "CLAUDINE_RAY_SHARED_FS": "1"}
    config = make_config(tmp_path / "home", backend="ray", ray_address=ray_cluster.address,
                         ray_namespace=ray_cluster.namespace, ray_shared_fs=True)
    service = TaskService(config, env=cli_env(tmp_path / "home"))
    task = service.delegate(TaskSpec(prompt="[sleep:60] watch me", cwd=str(tmp_path)))
    console = RayConsole(tmp_path, settings)
    try:
        # All nodes of this cluster run on this machine, under one host name: each goes by
        # the start of its id.
        nodes = [ray_cluster.cluster.head_node, *ray_cluster.workers]
        labels = {str(node.node_id)[:8] for node in nodes}
        poll(lambda: set(node_rows(console.screen())) == labels, SHOWN_DEADLINE_S,
             f"a row per node {sorted(labels)} with its readings", console.screen)
        poll(lambda: service.get(task.id).status is TaskState.RUNNING
             and service.get(task.id).node, SHOWN_DEADLINE_S, "the task running on a node")
        node = str(service.get(task.id).node)
        poll(lambda: any(task.short_id in line and node[:8] in line
                         for line in console.screen().splitlines()), 30,
             f"node {node[:8]} in the row of {task.short_id}", console.screen)
        console.keys("q")
        poll(lambda: "Stop agents" in console.screen(), 10, "the quit dialog", console.screen)
        console.keys("s")  # stop the agent: nothing outlives the test
        poll(lambda: service.get(task.id).status.is_terminal, 60, "the task stopped")
    finally:
        console.close()
        service.close()
