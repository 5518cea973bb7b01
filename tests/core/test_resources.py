"""Machine readings: real psutil values in range, bounded history."""

from __future__ import annotations

import time
from typing import NamedTuple

import pytest

from claudine_core.models import ResourceSample
from claudine_core.resources import ResourceMonitor, busy_percent


def fake(cpu: float, available: int = 50, total: int = 100) -> ResourceSample:
    return ResourceSample(
        cpu_percent=cpu, memory_available=available, memory_total=total, taken_at=0.0
    )


class TestResourceMonitor:
    def test_real_reading_is_in_range(self) -> None:
        monitor = ResourceMonitor(clock=lambda: 123.0)
        # Burn a little CPU so at least one scheduler tick separates the readings.
        deadline = time.monotonic() + 0.05
        while time.monotonic() < deadline:
            pass
        sample = monitor.sample()
        assert 0.0 <= sample.cpu_percent <= 100.0
        assert 0 < sample.memory_available <= sample.memory_total
        assert sample.taken_at == 123.0
        assert monitor.latest == sample
        assert len(monitor.cpu_history) == len(monitor.memory_history) == 1
        assert 0.0 <= monitor.memory_history[0] <= 100.0

    def test_default_timestamp_is_wall_clock(self) -> None:
        before = time.time()
        sample = ResourceMonitor().sample()
        assert before <= sample.taken_at <= time.time()

    def test_history_is_bounded_and_oldest_first(self) -> None:
        monitor = ResourceMonitor(history=3)
        for cpu in (1.0, 2.0, 3.0, 4.0, 5.0):
            monitor.record(fake(cpu, available=100 - int(cpu) * 10))
        assert monitor.cpu_history == (3.0, 4.0, 5.0)
        assert monitor.memory_history == (30.0, 40.0, 50.0)

    def test_real_samples_respect_the_bound(self) -> None:
        monitor = ResourceMonitor(history=2)
        for _ in range(4):
            monitor.sample()
        assert len(monitor.cpu_history) == 2

    def test_recent_cpu_averages_the_last_few(self) -> None:
        monitor = ResourceMonitor(recent=3)
        assert monitor.recent_cpu() is None
        monitor.record(fake(90.0))
        assert monitor.recent_cpu() == 90.0
        for cpu in (10.0, 20.0, 90.0):
            monitor.record(fake(cpu))
        # One spike to 90% among calm readings does not read as 90%.
        assert monitor.recent_cpu() == pytest.approx(40.0)

    def test_smoothed_sample_uses_recent_cpu_and_latest_memory(self) -> None:
        monitor = ResourceMonitor(recent=2)
        assert monitor.smoothed() is None
        monitor.record(fake(10.0, available=70))
        monitor.record(fake(30.0, available=60))
        assert monitor.smoothed() == fake(20.0, available=60)

    def test_invalid_knobs(self) -> None:
        with pytest.raises(ValueError):
            ResourceMonitor(history=0)


class Times(NamedTuple):
    user: float
    idle: float
    iowait: float
    guest: float


class TestBusyPercent:
    def test_iowait_counts_as_idle_and_guest_is_not_double_counted(self) -> None:
        before = Times(user=0.0, idle=0.0, iowait=0.0, guest=0.0)
        after = Times(user=3.0, idle=4.0, iowait=1.0, guest=2.0)
        # total = 3 + 4 + 1 (+2 guest, already inside user) = 8; busy = 3.
        assert busy_percent(before, after) == pytest.approx(37.5)

    def test_no_elapsed_time_gives_none(self) -> None:
        same = Times(1.0, 1.0, 1.0, 0.0)
        assert busy_percent(same, same) is None


