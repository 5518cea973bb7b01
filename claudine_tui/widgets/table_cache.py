"""Dropping a ``DataTable``'s cached renders of some cells, and of nothing else.

``DataTable`` keys each of its render caches on a count it bumps at every change, so any
change re-renders every cell that is drawn next. These caches are private to Textual
(pinned in ``pyproject.toml``); ``tests/tui/test_table_redraw.py`` checks that a changed
cell shows its new text and that no other row is drawn again, so a Textual upgrade that
renames them fails there, not on screen.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from textual.cache import LRUCache
from textual.widgets import DataTable
from textual.widgets.data_table import CellKey, RowKey


def forget_cached_renders(table: DataTable[Any], cells: set[CellKey], rows: set[RowKey]) -> None:
    """Forget what ``table`` cached for ``cells`` and for the lines of ``rows``.

    Every row of ``rows`` must hold a cell of ``cells``; rows keep their heights (the
    table's rows are one line each), so the offsets and the row order stay valid.
    """
    indices = {table._row_locations.get(row) for row in rows}
    header = table.header_height if table.show_header else 0
    lines = {header + y for y, (row, _) in enumerate(table._y_offsets) if row in rows}
    # Keys as DataTable builds them: (row key, column key, ...) for a cell, (row key, ...)
    # for a rendered row, (update count, row index) for a row's renderables, (y, ...) for
    # a line of the widget.
    _discard(table._cell_render_cache, lambda key: CellKey(key[0], key[1]) in cells)
    _discard(table._row_render_cache, lambda key: key[0] in rows)
    _discard(table._row_renderable_cache, lambda key: key[1] in indices)
    _discard(table._line_cache, lambda key: key[0] in lines)


def _discard(cache: LRUCache[Any, Any], stale: Callable[[Any], bool]) -> None:
    for key in [key for key in cache.keys() if stale(key)]:
        cache.discard(key)
