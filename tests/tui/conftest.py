"""Fixtures for the console tests: a fake engine, and a real engine on a temporary home."""

from __future__ import annotations

import sys
from pathlib import Path

TUI_TESTS = Path(__file__).resolve().parent
if str(TUI_TESTS) not in sys.path:
    sys.path.insert(0, str(TUI_TESTS))
