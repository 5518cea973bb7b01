"""The schedule tools of the MCP catalogue (ScheduleTask, ListSchedules, ...): names and
JSON schemas. tools.py adds them to the catalogue; like it, no third-party imports."""

from __future__ import annotations

from typing import Any

SCHEDULE_TOOLS: list[dict[str, Any]] = []
