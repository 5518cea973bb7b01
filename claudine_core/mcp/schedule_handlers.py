"""What each schedule tool does, over the TaskService's schedules (see handlers.py for the
conventions: a ToolOutcome per call, a ClaudineError for every refusal)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from claudine_core.mcp.outcome import ToolOutcome
from claudine_core.service import TaskService

SCHEDULE_HANDLERS: dict[str, Callable[[TaskService, dict[str, Any]], ToolOutcome]] = {}
