"""``claudine schedule add|list|show|pause|resume|cancel``: schedules from scripts."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any


def add_parsers(sub: Any, handlers: dict[str, Callable[[argparse.Namespace], int]]) -> None:
    """Add the ``schedule`` command to the ``claudine`` parser and its handler to
    ``handlers``."""
