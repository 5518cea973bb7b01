"""Readings of the machine, for admission and the gauges.

CPU is measured as the busy share of CPU time between two readings of ``psutil.cpu_times()``
held by each monitor, the same arithmetic as ``psutil.cpu_percent(interval=None)``. We do
not call ``cpu_percent`` itself because psutil keeps its "since last call" baseline per
*thread*: a sample taken from a fresh worker thread (``asyncio.to_thread``) would always
read ~0%, and any other caller in the process would shorten our interval.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Any

import psutil

from claudine_core.models import ResourceSample


class ResourceMonitor:
    """Samples CPU and memory and keeps a short history for sparklines.

    ``history`` bounds the sparkline length; ``recent`` is how many samples ``recent_cpu``
    averages so that one spike does not stall admission.
    """

    def __init__(
        self,
        *,
        history: int = 60,
        recent: int = 3,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if history < 1 or recent < 1:
            raise ValueError("history and recent must be >= 1")
        self._recent = recent
        self._clock = clock
        # Priming: the first reading needs a baseline, else it would measure since boot.
        self._last_times: Any = psutil.cpu_times()
        self._last_cpu = 0.0
        self._cpu: deque[float] = deque(maxlen=history)
        self._memory: deque[float] = deque(maxlen=history)
        self._latest: ResourceSample | None = None

    def sample(self) -> ResourceSample:
        """Take a reading now and record it in the history."""
        cpu = self._read_cpu()
        memory = psutil.virtual_memory()
        reading = ResourceSample(
            cpu_percent=cpu,
            memory_available=int(memory.available),
            memory_total=int(memory.total),
            taken_at=self._clock(),
        )
        self._record(reading)
        return reading

    @property
    def latest(self) -> ResourceSample | None:
        return self._latest

    @property
    def cpu_history(self) -> tuple[float, ...]:
        """CPU percent of the whole machine, oldest first."""
        return tuple(self._cpu)

    @property
    def memory_history(self) -> tuple[float, ...]:
        """Memory *used* percent (total minus available), oldest first."""
        return tuple(self._memory)

    def recent_cpu(self) -> float | None:
        """The mean CPU of the last few samples; None before the first sample."""
        if not self._cpu:
            return None
        last = list(self._cpu)[-self._recent :]
        return sum(last) / len(last)

    def smoothed(self) -> ResourceSample | None:
        """The latest sample with its CPU replaced by ``recent_cpu()``: what admission uses."""
        recent = self.recent_cpu()
        if self._latest is None or recent is None:
            return None
        return ResourceSample(
            cpu_percent=recent,
            memory_available=self._latest.memory_available,
            memory_total=self._latest.memory_total,
            taken_at=self._latest.taken_at,
        )

    def record(self, reading: ResourceSample) -> None:
        """Add a reading taken elsewhere (tests, or a remote backend's sample)."""
        self._record(reading)

    def _record(self, reading: ResourceSample) -> None:
        self._latest = reading
        self._cpu.append(reading.cpu_percent)
        self._memory.append(_used_percent(reading))

    def _read_cpu(self) -> float:
        now = psutil.cpu_times()
        percent = busy_percent(self._last_times, now)
        if percent is None:
            # Too soon after the last reading to see any tick: keep the old baseline so the
            # next reading covers a real interval, and repeat the last value meanwhile.
            return self._last_cpu
        self._last_times, self._last_cpu = now, percent
        return percent


def busy_percent(before: Any, after: Any) -> float | None:
    """Busy share of CPU time between two ``cpu_times()`` readings, or None if no time passed.

    Mirrors psutil: on Linux guest time is already inside user/nice, and iowait is idle.
    """
    deltas = {f: max(0.0, float(getattr(after, f) - getattr(before, f))) for f in after._fields}
    total = sum(deltas.values()) - deltas.get("guest", 0.0) - deltas.get("guest_nice", 0.0)
    if total <= 0:
        return None
    busy = total - deltas.get("idle", 0.0) - deltas.get("iowait", 0.0)
    return min(100.0, max(0.0, 100.0 * busy / total))


def _used_percent(reading: ResourceSample) -> float:
    if reading.memory_total <= 0:
        return 0.0
    used = reading.memory_total - reading.memory_available
    return min(100.0, max(0.0, 100.0 * used / reading.memory_total))
