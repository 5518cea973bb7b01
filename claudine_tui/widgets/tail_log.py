"""A ``RichLog`` that grows without laying the screen out again.

``RichLog`` stores its height in ``virtual_size``, a reactive that asks for a layout of the
whole screen on every change: each batch of agent output re-arranged every widget and
repainted the task table beside the log. This log's size never depends on its content
(the stylesheet fixes it), so growth repaints the log alone. The scrollbar's length is
updated here; were a scrollbar to appear or go (RichLog's vertical one always shows), its
own reactive would still ask for the layout, since that changes the space the lines have.

It also scrolls to the newest line in the same step as the write, where ``RichLog``
waits for the next frame to scroll: a newly followed task's output showed one frame late.
"""

from __future__ import annotations

from typing import Self

from rich.console import RenderableType
from textual.geometry import Size
from textual.reactive import Reactive
from textual.widgets import RichLog


class TailLog(RichLog):
    """A bounded log whose writes repaint only itself and land scrolled to the end."""

    # Same name as the Widget reactive it shadows, so Textual's own code (which sets it
    # by name) reaches this one; layout=False is the whole point.
    virtual_size: Reactive[Size] = Reactive(Size(0, 0), layout=False)

    def write(
        self,
        content: RenderableType | object,
        width: int | None = None,
        expand: bool = False,
        shrink: bool = True,
        scroll_end: bool | None = None,
        animate: bool = False,
    ) -> Self:
        if not self._size_known:  # deferred by RichLog: replayed through here on resize
            return super().write(content, width, expand, shrink, scroll_end, animate)
        follow = self.auto_scroll if scroll_end is None else scroll_end
        super().write(content, width, expand, shrink, scroll_end=False, animate=animate)
        self._fit_scrollbars()
        if follow:
            self.scroll_end(animate=False, immediate=True, x_axis=False)
        return self

    def clear(self) -> Self:
        super().clear()
        self._fit_scrollbars()
        return self

    def _fit_scrollbars(self) -> None:
        # What the skipped layout would have done for this widget: the scrollbar's
        # length, and its visibility (a change there asks for a layout by itself).
        if self.is_mounted and self.container_size:
            self._scroll_update(self.virtual_size)
