"""Readings of the machine (for admission and the gauges) and of agent process trees.

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


class ProcessTreeMeter:
    """Measures a process and its descendants, remembering ``psutil.Process`` objects.

    psutil's per-process ``cpu_percent`` is relative to the previous call *on the same
    object*, so a fresh object always reads 0. Keeping the objects between calls makes the
    second and later readings meaningful; the first reading of a new process is 0.
    """

    def __init__(self) -> None:
        self._procs: dict[int, psutil.Process] = {}

    def usage(self, pid: int) -> tuple[float, int]:
        """(CPU percent of the whole machine, RSS bytes) of ``pid`` and its descendants.

        Processes that vanish while being measured are skipped; a root that is gone
        gives ``(0.0, 0)``, since an agent may exit between the decision and the reading.
        """
        self._forget_dead()
        root = self._process(pid)
        if root is None:
            return 0.0, 0
        try:
            members = [root, *root.children(recursive=True)]
        except psutil.Error:
            return 0.0, 0
        cpu, rss = 0.0, 0
        for member in members:
            measured = self._measure(member)
            cpu, rss = cpu + measured[0], rss + measured[1]
        # Process.cpu_percent is per core (up to 100 * cores); admission works in whole-machine
        # percent, so normalise here.
        return cpu / (psutil.cpu_count() or 1), rss

    def _process(self, pid: int) -> psutil.Process | None:
        cached = self._procs.get(pid)
        # is_running() also compares create time, so a reused pid gets a fresh object.
        if cached is not None and cached.is_running():
            return cached
        try:
            proc = psutil.Process(pid)
        except psutil.Error:
            return None
        self._procs[pid] = proc
        return proc

    def _remember(self, member: psutil.Process) -> psutil.Process:
        cached = self._procs.get(member.pid)
        if cached is not None and cached.is_running():
            return cached
        self._procs[member.pid] = member
        return member

    def _measure(self, member: psutil.Process) -> tuple[float, int]:
        proc = self._remember(member)
        try:
            with proc.oneshot():
                return proc.cpu_percent(interval=None), int(proc.memory_info().rss)
        except psutil.Error:
            # Vanished, turned zombie or not ours to read: it no longer costs anything we
            # can act on.
            return 0.0, 0

    def _forget_dead(self) -> None:
        for pid, proc in list(self._procs.items()):
            if not proc.is_running():
                del self._procs[pid]


_default_meter = ProcessTreeMeter()


def process_tree_usage(pid: int) -> tuple[float, int]:
    """(CPU percent of the whole machine, RSS bytes) of ``pid`` and its descendants.

    Uses a module-wide meter so that repeated calls for the same agent give real CPU
    figures (the first call for a process reads 0 CPU). See ``ProcessTreeMeter``.
    """
    return _default_meter.usage(pid)
