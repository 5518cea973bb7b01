"""The footer the console's screens share: on a narrow terminal it keeps the essential keys.

Textual's Footer lays every key out in one row and clips what does not fit, so at 80
columns the last keys of the console (quit, help) would silently vanish. Here each key whose
action is not in ``keep`` gets the ``-optional`` class, and claudine.tcss hides those in the
``-narrow`` layout (see ``HORIZONTAL_BREAKPOINTS`` in app.py). A hidden key still works, and
stays listed in the command palette and the ``?`` help. Grouped keys (the priority keys) and
their group label always count as optional; the command palette key never does.
"""

from __future__ import annotations

from collections.abc import Iterable

from textual.app import ComposeResult
from textual.widgets import Footer

OPTIONAL = "-optional"


class KeyFooter(Footer):
    """A Footer whose keys outside ``keep`` (action names) may be hidden by the layout."""

    def __init__(self, *, keep: Iterable[str]) -> None:
        super().__init__()
        self.keep = frozenset(keep)

    def compose(self) -> ComposeResult:
        for widget in super().compose():
            action = getattr(widget, "action", None)  # only the footer's key widgets have one
            essential = (isinstance(action, str) and action.split("(", 1)[0] in self.keep
                         and not widget.has_class("-grouped"))
            if not essential and not widget.has_class("-command-palette"):
                widget.add_class(OPTIONAL)
            yield widget
