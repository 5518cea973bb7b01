"""The console when the agents run on a cluster: one gauge row per node under the gauges
(agents against slots, CPU, memory, load; "no reading" for a node whose probe is silent)
and a node column in the task table; none of it on a home whose agents run here."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

from conftest import wait_for
from engine_helpers import agent_env, make_config
from fake_engine import NODE_A, NODE_B, NODE_C, NODE_D, busy_engine, cluster_engine
from textual.pilot import Pilot
from textual.widgets import Static

from claudine_core.backends.base import NodeCapacity, RunRef, RunSpec
from claudine_core.backends.fake import FakeBackend, FakeProgram, FakeWorld
from claudine_core.engine import Engine
from claudine_core.models import TaskSpec, TaskState
from claudine_tui.app import ClaudineApp
from claudine_tui.screens.quit import QuitScreen
from claudine_tui.widgets.nodes import NodeRows

SIZE = (120, 36)
GIB = 1024**3


def node_lines(app: ClaudineApp) -> list[str]:
    """The per-node rows as a person reads them, top to bottom."""
    rows = app.query_one(NodeRows)
    if not rows.display:
        return []
    return [str(row.render()) for row in rows.query(Static)]


def node_cell(app: ClaudineApp, short_id: str) -> str:
    task = app.engine.service.get(short_id)
    return str(app.table.get_cell(task.id, "node"))


async def ready(pilot: Pilot[Any], rows: int) -> None:
    app = pilot.app
    assert isinstance(app, ClaudineApp)
    await wait_for(pilot, lambda: app.engine_started and app.table.row_count >= rows)
    await pilot.pause()


def test_a_cluster_of_four_nodes(snap_compare) -> None:
    """Four node rows under the gauges, by label: 10.0.3.17 full (2/2, yellow) and busy,
    build-01, and two nodes of one machine ("gpu-box") by the start of their ids, one with
    no reading; the table's Node column after Cwd/branch (blank for the queued tasks, the
    id's start for a node since gone)."""

    async def run_before(pilot: Pilot[Any]) -> None:
        await ready(pilot, 8)

    assert snap_compare(ClaudineApp(cluster_engine()), terminal_size=SIZE,
                        run_before=run_before)


async def test_each_node_has_its_row_and_each_task_its_node() -> None:
    app = ClaudineApp(cluster_engine())
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, 8)
        lines = node_lines(app)
        assert [line.split()[0] for line in lines] == [
            "10.0.3.17", "build-01", NODE_C[:8], NODE_D[:8]]
        busy = lines[0]
        assert "2/2 agents" in busy and "88%" in busy and "3.0G free of 16.0G" in busy
        assert "load 3.91" in busy
        assert "1/4 agents" in lines[1] and "26.0G free of 32.0G" in lines[1]
        assert lines[3].endswith("0/4 agents  no reading")  # its probe did not answer
        assert "node" in app.table.column_keys
        assert node_cell(app, "0004") == "build-01"
        assert node_cell(app, "0005") == node_cell(app, "0006") == "10.0.3.17"
        assert node_cell(app, "0001") == "dd444444"  # a node no longer listed
        assert node_cell(app, "0007") == ""  # queued: on no node yet


async def test_rows_follow_the_nodes_as_they_change() -> None:
    engine = cluster_engine()
    app = ClaudineApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, 8)
        rows = app.query_one(NodeRows)
        kept = rows.rows[NODE_A]
        assert engine.nodes is not None
        engine.nodes = (replace(engine.nodes[0], cpu_percent=71.0), *engine.nodes[1:])
        app.refresh_snapshot()
        await pilot.pause()
        assert rows.rows[NODE_A] is kept  # the same row, its text changed in place
        assert "71%" in node_lines(app)[1]
        engine.nodes = tuple(node for node in engine.nodes if node.node_id != NODE_B)
        app.refresh_snapshot()
        await wait_for(pilot, lambda: len(node_lines(app)) == 3, what="three rows")
        assert all(not line.startswith("10.0.3.17") for line in node_lines(app))
        # Its tasks still say where they ran.
        assert node_cell(app, "0005") == "10.0.3.17"


async def test_a_home_whose_agents_run_here_has_no_node_row_nor_column() -> None:
    app = ClaudineApp(busy_engine())
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, 8)
        assert node_lines(app) == []
        assert "node" not in app.table.column_keys


async def test_a_real_engine_whose_agents_run_here_shows_neither(tmp_path: Path) -> None:
    engine = Engine(make_config(tmp_path / "home"), kind="console", env=agent_env(),
                    tick_s=0.05)
    engine.service.delegate(TaskSpec(prompt="[text:done]", cwd=str(tmp_path)))
    app = ClaudineApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, 1)
        assert engine.snapshot().nodes is None
        assert node_lines(app) == []
        assert "node" not in app.table.column_keys
        await pilot.press("q")
        if isinstance(app.screen, QuitScreen):
            await pilot.press("s")
        await wait_for(pilot, lambda: not app.is_running, timeout=20, what="the exit")


async def test_a_task_with_a_node_brings_the_column_even_with_no_nodes_counted() -> None:
    """A client's console (its supervisor counts no nodes) still says where tasks ran."""
    engine = busy_engine()
    task = engine.service.get("0004")
    engine.tasks[task.id] = replace(task, node=NODE_B)
    app = ClaudineApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, 8)
        assert node_lines(app) == []
        assert node_cell(app, "0004") == NODE_B[:8]
        assert node_cell(app, "0005") == ""


# -- a real engine whose agents run on a fake cluster of three nodes -------------------------

HOSTS = {"0a" * 28: "alpha", "0b" * 28: "bravo", "0c" * 28: "charlie"}
SLOTS = 2


def line(obj: dict[str, object]) -> bytes:
    return (json.dumps(obj) + "\n").encode()


RUNS_ON = FakeProgram(lines=(
    line({"type": "system", "subtype": "init", "session_id": "s-1"}),
    line({"type": "assistant", "message": {"role": "assistant", "content": [
        {"type": "text", "text": "working"}]}})), exits=False)


class ThreeNodes(FakeBackend):
    """A fake cluster of three nodes of two agent slots each: a run goes to the node with
    the most free slots; each node's probe reads a CPU figure of its own."""

    def __init__(self, world: FakeWorld) -> None:
        super().__init__(lambda spec: RUNS_ON, kill_grace_s=1.0, world=world)
        self.placed: dict[str, str] = {}  # run name -> node id

    def _used(self) -> Counter[str]:
        return Counter(self.placed[name] for name in self.attached if name in self.placed)

    def start(self, spec: RunSpec) -> RunRef:
        used = self._used()
        node = min(HOSTS, key=lambda node_id: (used[node_id], node_id))
        ref = replace(super().start(spec), node_id=node)
        self.placed[ref.name] = node
        return ref

    def capacity(self) -> list[NodeCapacity]:
        used = self._used()
        return [NodeCapacity(node_id, alive=True, slots_total=SLOTS, slots_used=used[node_id],
                             name=host, cpu_percent=10.0 * (index + 1),
                             memory_total_bytes=8 * GIB, memory_available_bytes=6 * GIB,
                             load_1m=0.5)
                for index, (node_id, host) in enumerate(HOSTS.items())]


async def test_an_engine_on_a_cluster_shows_its_nodes_and_where_each_task_runs(
        tmp_path: Path) -> None:
    # The fake nodes share this machine's disk: its tasks in place may run on any of them.
    config = make_config(tmp_path / "home", max_agents=6, ray_shared_fs=True)
    engine = Engine(config, kind="console", env=agent_env(), tick_s=0.05,
                    backend=ThreeNodes(FakeWorld()))
    tasks = [engine.service.delegate(TaskSpec(prompt=f"job {n}", cwd=str(tmp_path)))
             for n in range(4)]
    app = ClaudineApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        def placed() -> bool:
            listed = {task.id: task for task in app.table.tasks.values()}
            return all(listed.get(task.id) is not None
                       and listed[task.id].status is TaskState.RUNNING
                       and listed[task.id].node for task in tasks)

        await wait_for(pilot, placed, timeout=20, what="four running tasks, each on a node")
        await wait_for(pilot, lambda: "2/2 agents" in " ".join(node_lines(app)), timeout=20,
                       what="the node rows counting the four runs")
        lines = node_lines(app)
        assert [row.split()[0] for row in lines] == ["alpha", "bravo", "charlie"]
        assert sorted(row.split()[1] for row in lines) == ["1/2", "1/2", "2/2"]
        assert ["10%" in lines[0], "20%" in lines[1], "30%" in lines[2]] == [True] * 3
        cells = Counter(node_cell(app, task.short_id) for task in tasks)
        by_row = {row.split()[0]: int(row.split()[1].split("/")[0]) for row in lines}
        assert cells == by_row  # each task's node column agrees with its node's row
        await pilot.press("q")
        if isinstance(app.screen, QuitScreen):
            await pilot.press("s")
        await wait_for(pilot, lambda: not app.is_running, timeout=20, what="the exit")
