"""One gauge row per cluster node, under the dashboard's gauges (the ray backend only).

A row says what a person checks of a node: its short name, its agents against its slots,
its CPU use and free memory as its probe last read them, and its load. A node whose probe
has not answered lately shows no reading (``no reading``) rather than an old one. The
same short names label the task table's node column (:func:`node_labels`).

A home whose agents run on this machine gets a plain snapshot with no nodes: no row shows
and the dashboard looks as it always did.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from rich.text import Text
from textual.containers import Vertical
from textual.widgets import Static

from claudine_tui.widgets.bars import GIB, render_bar

if TYPE_CHECKING:  # the console on a local home loads none of the backends' modules
    from claudine_core.backends.base import NodeCapacity

BAR_WIDTH = 10
NAME_WIDTH = 10  # a host name is cut to this (the task table's node column is as wide)
ID_CHARS = 8  # a node with no name of its own goes by the start of its id
MAX_ROWS = 8
"""Nodes shown one per row; more are summed up on one last line (the table needs room)."""
MORE = "+more"  # the key of that line (no node id has a "+")


def short_name(name: str | None) -> str | None:
    """A host name's first label (``ip-10-0-1-7`` of ``ip-10-0-1-7.ec2.internal``); an IP
    address whole; cut to NAME_WIDTH."""
    if not name:
        return None
    if not name.replace(".", "").isdigit():
        name = name.split(".", 1)[0]
    return name if len(name) <= NAME_WIDTH else name[:NAME_WIDTH - 1] + "…"


def node_labels(nodes: Sequence[NodeCapacity]) -> dict[str, str]:
    """A short label per node id: its host name where no other node has the same one
    (several nodes on one machine share it), else the start of its id."""
    names = {node.node_id: short_name(node.name) for node in nodes}
    taken = [name for name in names.values() if name]
    return {node_id: name if name and taken.count(name) == 1 else node_id[:ID_CHARS]
            for node_id, name in names.items()}


def node_text(node: NodeCapacity, label: str, label_width: int) -> Text:
    """``host-a   2/4 agents  CPU ███░░ 31%  MEM ██░░░ 9.1G free of 16.0G  load 1.25``:
    the most telling first, so a narrow terminal cuts the least telling."""
    slots = "∞" if node.slots_total is None else str(node.slots_total)
    full = node.slots_total is not None and node.slots_used >= node.slots_total
    text = Text.assemble((f"{label:<{label_width}} ", "bold"),
                         (f"{node.slots_used}/{slots}", "bold yellow" if full else "bold green"),
                         " agents")
    if node.cpu_percent is None or not node.memory_total_bytes \
            or node.memory_available_bytes is None:
        text.append("  no reading", style="dim")
        return text
    total, free = node.memory_total_bytes, node.memory_available_bytes
    text.append("  CPU ", style="bold")
    text.append_text(render_bar(node.cpu_percent, None, BAR_WIDTH))
    text.append(f" {node.cpu_percent:3.0f}%  ")
    text.append("MEM ", style="bold")
    text.append_text(render_bar((total - free) / total * 100, None, BAR_WIDTH))
    text.append(f" {free / GIB:.1f}G free of {total / GIB:.1f}G")
    if node.load_1m is not None:
        text.append(f"  load {node.load_1m:.2f}", style="dim")
    return text


def more_text(nodes: Sequence[NodeCapacity]) -> Text:
    """The last line for the nodes past MAX_ROWS: how many, and their agents."""
    used = sum(node.slots_used for node in nodes)
    return Text(f"+{len(nodes)} more nodes, {used} agents", style="dim")


class NodeRows(Vertical):
    """The per-node rows, keyed by node id.

    A row's text is set only when it changed (most refreshes change a node's CPU figure
    and nothing else) and without a layout pass; the rows are built anew only when a node
    comes or goes, the one change that moves the screen's layout.
    """

    DEFAULT_CSS = """
    NodeRows { height: auto; padding: 0 1; }
    NodeRows > Static { height: 1; text-wrap: nowrap; text-overflow: ellipsis; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.rows: dict[str, Static] = {}  # node id (or MORE) -> its row
        self._texts: dict[str, Text] = {}

    def on_mount(self) -> None:
        self.display = False

    def show(self, nodes: Sequence[NodeCapacity] | None) -> None:
        """Bring the rows in line with ``nodes`` (None or none: no row, hidden)."""
        texts = self._texts_of(nodes or ())
        if list(texts) != list(self.rows):
            self._rebuild(texts)
            return
        for key, text in texts.items():
            if text != self._texts[key]:
                self._texts[key] = text
                self.rows[key].update(text, layout=False)  # one line high by CSS

    def _texts_of(self, nodes: Sequence[NodeCapacity]) -> dict[str, Text]:
        """Each row's text, by key, in the order shown (by label)."""
        labels = node_labels(nodes)
        ordered = sorted(nodes, key=lambda node: (labels[node.node_id], node.node_id))
        width = max((len(label) for label in labels.values()), default=0)
        texts = {node.node_id: node_text(node, labels[node.node_id], width)
                 for node in ordered[:MAX_ROWS]}
        if len(ordered) > MAX_ROWS:
            texts[MORE] = more_text(ordered[MAX_ROWS:])
        return texts

    def _rebuild(self, texts: dict[str, Text]) -> None:
        self.remove_children()
        self.rows = {key: Static(text) for key, text in texts.items()}
        self._texts = dict(texts)
        if self.rows:
            self.mount_all(self.rows.values())
        self.display = bool(self.rows)
