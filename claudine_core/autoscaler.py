"""The admission decision: how many queued tasks may start an agent right now.

This is a pure function of its inputs (no clock, no psutil) so the engine, the UI and the
tests all see the same numbers for the same situation, and tests move timestamps instead of
sleeping.

Why projection: an agent just started has not yet shown up in the CPU and memory readings.
The original TypeScript claudine waited a fixed 10 s between spawns and compared its
*projected* cost with the threshold even on an idle machine, so on a 2-core box it never
started anything. Here agents started within the settling window are charged their projected
cost on top of the reading, and then as many agents as fit are started at once.

Settling cost fades linearly: an agent started ``age`` seconds ago is charged
``(1 - age / settle_window_s)`` of its projected cost. Its real usage appears in the
measurement gradually (process start-up, then the first API round trip), so charging the full
cost until the window ends and then nothing would double count it near the end of the window
and make admission jerky.

The CPU limit follows GNU make's ``-l``: it holds back a new agent only while at least one
agent of this home is running. On a machine kept busy by other work (a build, another
user) a threshold applied with nothing of ours running would hold the whole queue for as
long as that load lasts; instead one agent starts, and the limit holds back the next.
The memory reserve and ``max_agents`` always hold. ``cpu_limit_when_idle`` restores the
strict rule.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from claudine_core.models import ResourceSample

_GIB = 1024**3
# Floating-point slack so that e.g. 10% + 14 * 5% is accepted against an 80% threshold.
_EPSILON = 1e-9

# Stands in for "no limit" so min() over the constraints needs no special case.
_UNBOUNDED = 1 << 62

MEASURING_REASON = "waiting: measuring CPU and memory"


@dataclass(frozen=True)
class AdmissionLimits:
    """The configured limits and the projected cost of one agent."""

    cpu_threshold: float  # percent of the whole machine, 0-100
    memory_reserve: int  # bytes that must stay available
    max_agents: int | None = None  # None: no cap besides resources
    agent_cpu_cost: float = 5.0  # projected percent of the whole machine per new agent
    agent_memory_cost: int = 512 * 1024**2  # projected bytes per new agent
    settle_window_s: float = 10.0
    cpu_limit_when_idle: bool = False  # True: CPU holds back even the first agent

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> AdmissionLimits:
        """From settings named as in config.py (a Config's ``to_dict()`` or the owner's
        published settings); names it does not use are ignored, missing ones default."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in settings.items() if k in names})

    def __post_init__(self) -> None:
        # Fail loudly on nonsense: a negative cost would silently admit without bound.
        if not 0 < self.cpu_threshold <= 100:
            raise ValueError(f"cpu_threshold {self.cpu_threshold} must be in (0, 100]")
        if self.memory_reserve < 0:
            raise ValueError(f"memory_reserve {self.memory_reserve} must be >= 0")
        if self.max_agents is not None and self.max_agents < 0:
            raise ValueError(f"max_agents {self.max_agents} must be >= 0 or None")
        if self.agent_cpu_cost < 0 or self.agent_memory_cost < 0:
            raise ValueError("agent_cpu_cost and agent_memory_cost must be >= 0")
        if self.settle_window_s < 0:
            raise ValueError(f"settle_window_s {self.settle_window_s} must be >= 0")


@dataclass(frozen=True)
class Admission:
    """The decision and the figures it was based on, so the UI can show the same numbers.

    ``effective_cpu`` and ``effective_memory_available`` are the reading adjusted for settling
    agents, before the ``start`` new agents are added. ``reason`` is None when everything
    queued was started (or nothing was queued); otherwise it names the binding constraint.
    """

    start: int
    reason: str | None
    effective_cpu: float = 0.0
    effective_memory_available: int = 0
    settling: float = 0.0  # settling agents, weighted by how much of their cost is still hidden


def settling_weight(started_at: Sequence[float], now: float, window: float) -> float:
    """Sum over agents of the share of their cost not yet visible in the measurement."""
    if window <= 0:
        return 0.0
    total = 0.0
    for started in started_at:
        # A start time in the future (clock skew between processes) counts as "just started".
        age = max(0.0, now - started)
        if age < window:
            total += 1.0 - age / window
    return total


def decide_admission(
    *,
    queued: int,
    running: int,
    sample: ResourceSample | None,
    started_at: Sequence[float],
    limits: AdmissionLimits,
    now: float,
) -> Admission:
    """How many of ``queued`` tasks may start now, and why the rest wait."""
    if sample is None:
        # Without a reading any number would be a guess; the first sample comes within a tick.
        return Admission(0, MEASURING_REASON if queued > 0 else None)
    settling = settling_weight(started_at, now, limits.settle_window_s)
    cpu = sample.cpu_percent + settling * limits.agent_cpu_cost
    memory = max(0, int(sample.memory_available - settling * limits.agent_memory_cost))
    fits = _fits(cpu, memory, running, limits)
    if running == 0 and not limits.cpu_limit_when_idle:
        # make -l: with none of ours running, CPU load (someone else's) stops no first agent.
        fits["cpu"] = max(fits["cpu"], 1)
    start = max(0, min(queued, *fits.values()))
    if start == 0 and _idle_exception(queued, running, settling, sample, limits):
        start = 1
    reason = None if start >= queued else _reason(fits, start, cpu, memory, running, limits)
    return Admission(start, reason, cpu, memory, settling)


def _fits(cpu: float, memory: int, running: int, limits: AdmissionLimits) -> dict[str, int]:
    """How many more agents each constraint allows on its own (clamped at 0)."""
    return {
        "max": _fit_max(running, limits.max_agents),
        "cpu": _fit(limits.cpu_threshold - cpu, limits.agent_cpu_cost),
        "memory": _fit(memory - limits.memory_reserve, limits.agent_memory_cost),
    }


def _fit(headroom: float, cost: float) -> int:
    if headroom < -_EPSILON:
        return 0
    if cost <= 0:
        # A free agent never exhausts this resource; only other constraints bind.
        return _UNBOUNDED
    return max(0, math.floor(headroom / cost + _EPSILON))


def _fit_max(running: int, max_agents: int | None) -> int:
    return _UNBOUNDED if max_agents is None else max(0, max_agents - running)


def _idle_exception(
    queued: int, running: int, settling: float, sample: ResourceSample, limits: AdmissionLimits
) -> bool:
    """With nothing of ours running, one agent may start whatever its projected cost, as
    long as memory is above the reserve (and, with ``cpu_limit_when_idle``, CPU is under
    the threshold).

    Without this a per-agent cost larger than the headroom (e.g. a 2-core machine, where one
    agent is a big share) would deadlock: nothing runs, so nothing ever frees headroom.
    """
    cpu_ok = not limits.cpu_limit_when_idle or sample.cpu_percent < limits.cpu_threshold
    return (
        queued > 0
        and running == 0
        and settling == 0
        and _fit_max(0, limits.max_agents) > 0
        and cpu_ok
        and sample.memory_available > limits.memory_reserve
    )


def _reason(
    fits: dict[str, int],
    start: int,
    cpu: float,
    memory: int,
    running: int,
    limits: AdmissionLimits,
) -> str:
    """Name the constraint that stops the next agent, with the numbers after ``start`` began."""
    # Ties go to the cap first: "4/4 running" is clearer than a resource that is also full.
    binding = min(("max", "cpu", "memory"), key=lambda name: fits[name])
    if binding == "max":
        return f"waiting: {running + start}/{limits.max_agents} agents running (max)"
    if binding == "cpu":
        return _cpu_reason(cpu + start * limits.agent_cpu_cost, limits)
    return _memory_reason(memory - start * limits.agent_memory_cost, limits)


def _cpu_reason(projected: float, limits: AdmissionLimits) -> str:
    # Projections can pass 100% (settling agents on a busy machine); no machine does.
    projected = min(projected, 100.0)
    threshold = _pct(limits.cpu_threshold)
    if projected > limits.cpu_threshold:
        return f"waiting: CPU {_pct(projected)} > {threshold}"
    cost = _pct(limits.agent_cpu_cost)
    return f"waiting: CPU {_pct(projected)} + {cost} for the next agent > {threshold}"


def _memory_reason(projected: int, limits: AdmissionLimits) -> str:
    free, reserve = _gib(max(0, projected)), _gib(limits.memory_reserve)
    if projected < limits.memory_reserve:
        return f"waiting: memory {free} free, reserve {reserve}"
    need = _gib(limits.agent_memory_cost)
    return f"waiting: memory {free} free, next agent needs {need} above the {reserve} reserve"


def _pct(value: float) -> str:
    """``91%`` for whole numbers, ``80.4%`` otherwise, so 80.4 > 80 never reads as 80 > 80."""
    rounded = round(value, 1)
    return f"{rounded:.0f}%" if rounded == int(rounded) else f"{rounded:.1f}%"


def _gib(n_bytes: float) -> str:
    return f"{n_bytes / _GIB:.1f} GiB"
