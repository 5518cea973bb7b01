"""``claudine send ID MESSAGE``: a message to a task's agent (issue 11)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any


def add_parsers(sub: Any, handlers: dict[str, Callable[[argparse.Namespace], int]]) -> None:
    """Add the ``send`` command to the ``claudine`` parser and its handler to
    ``handlers``."""
