"""Execution backends: where agents run (see ``base``). Importing this package loads no
backend: ``local``, ``fake`` and ``ray`` are imported by whoever picks one, so the
local engine never pays for Ray."""

from claudine_core.backends.base import (
    ExecutionBackend,
    NodeCapacity,
    NodeChange,
    NodeEvent,
    RunPhase,
    RunRef,
    RunSpec,
    RunStatus,
    run_name,
)

__all__ = ["ExecutionBackend", "NodeCapacity", "NodeChange", "NodeEvent", "RunPhase",
           "RunRef", "RunSpec", "RunStatus", "run_name"]
