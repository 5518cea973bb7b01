"""What the console needs from an engine, so tests can inject a fake one."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from claudine_core.agents.stream import StreamEvent
from claudine_core.models import EngineSnapshot, Priority, Task, TaskSpec


class ServicePort(Protocol):
    def read_events(
        self, task_id: str, offset: int = 0, max_bytes: int | None = None
    ) -> tuple[list[StreamEvent], int]: ...

    def output_path(self, task_id: str, name: str = "stdout.jsonl") -> Path | None: ...


class EnginePort(Protocol):
    """The subset of :class:`claudine_core.engine.Engine` the console calls."""

    @property
    def role(self) -> str: ...

    @property
    def kind(self) -> str: ...

    @property
    def config(self) -> Any: ...

    @property
    def service(self) -> ServicePort: ...

    async def start(self) -> None: ...

    async def stop(self, *, stop_agents: bool = False) -> None: ...

    def snapshot(self) -> EngineSnapshot: ...

    def delegate(self, spec: TaskSpec) -> Task: ...

    def cancel(self, ref: str, reason: str | None = None) -> Task: ...

    def set_priority(self, ref: str, priority: Priority | str) -> Task: ...

    def retry(self, ref: str) -> Task: ...

    def resume(self, ref: str, additional_context: str | None = None) -> Task: ...

    def get(self, ref: str) -> Task: ...
