"""The admission decision, tested as a pure function: time moves by changing timestamps."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from claudine_core.autoscaler import (
    MEASURING_REASON,
    Admission,
    AdmissionLimits,
    decide_admission,
    settling_weight,
)
from claudine_core.models import ResourceSample

GIB = 1024**3
NOW = 1_000.0


def reading(cpu: float = 10.0, available: int = 64 * GIB) -> ResourceSample:
    return ResourceSample(
        cpu_percent=cpu, memory_available=available, memory_total=128 * GIB, taken_at=NOW
    )


def limits(**overrides: object) -> AdmissionLimits:
    base: dict[str, object] = {
        "cpu_threshold": 80.0,
        "memory_reserve": GIB,
        "max_agents": None,
        "agent_cpu_cost": 5.0,
        "agent_memory_cost": GIB // 2,
        "settle_window_s": 10.0,
    }
    base.update(overrides)
    return AdmissionLimits(**base)  # type: ignore[arg-type]


def decide(
    *,
    queued: int = 10,
    running: int = 0,
    sample: ResourceSample | None = None,
    started_at: Sequence[float] = (),
    now: float = NOW,
    **limit_overrides: object,
) -> Admission:
    return decide_admission(
        queued=queued,
        running=running,
        sample=reading() if sample is None else sample,
        started_at=started_at,
        limits=limits(**limit_overrides),
        now=now,
    )


class TestIdleMachine:
    def test_starts_everything_that_fits_at_once(self) -> None:
        # 10% + 10 * 5% = 60% <= 80%, 64 GiB - 10 * 0.5 GiB >= 1 GiB: all ten, in one tick.
        result = decide(queued=10)
        assert result.start == 10
        assert result.reason is None
        assert result.effective_cpu == 10.0
        assert result.effective_memory_available == 64 * GIB

    def test_cpu_binds_exactly_at_threshold(self) -> None:
        # (80 - 10) / 5 = 14 exactly: the boundary agent is admitted, the 15th is not.
        result = decide(queued=20)
        assert result.start == 14
        assert result.reason == "waiting: CPU 80% + 5% for the next agent > 80%"

    def test_memory_binds(self) -> None:
        # 3 GiB free, 1 GiB reserve, 0.5 GiB each: room for 4.
        result = decide(queued=10, sample=reading(available=3 * GIB))
        assert result.start == 4
        assert result.reason == (
            "waiting: memory 1.0 GiB free, next agent needs 0.5 GiB above the 1.0 GiB reserve"
        )

    def test_nothing_queued_has_no_reason(self) -> None:
        result = decide(queued=0)
        assert result == Admission(0, None, 10.0, 64 * GIB, 0.0)


class TestSettling:
    def test_settling_agents_reduce_admission(self) -> None:
        # Four agents started just now count at full projected cost: 10% + 4 * 5% = 30%.
        result = decide(queued=20, running=4, started_at=[NOW] * 4)
        assert result.effective_cpu == pytest.approx(30.0)
        assert result.effective_memory_available == 64 * GIB - 2 * GIB
        assert result.start == 10
        assert result.settling == pytest.approx(4.0)

    def test_projected_cost_fades_linearly_over_the_window(self) -> None:
        # Half-way through the window half of the cost is still unseen.
        result = decide(queued=20, running=4, started_at=[NOW - 5.0] * 4)
        assert result.effective_cpu == pytest.approx(20.0)
        assert result.start == 12

    def test_settling_stops_counting_after_the_window(self) -> None:
        late = decide(queued=20, running=4, started_at=[NOW - 10.0] * 4)
        assert late.effective_cpu == 10.0
        assert late.settling == 0.0
        assert late.start == 14

    def test_same_agents_admitted_later_as_time_moves(self) -> None:
        started = [NOW]
        cpu_bound = reading(cpu=70.0)
        assert decide(queued=5, running=1, sample=cpu_bound, started_at=started).start == 1
        later = decide(queued=5, running=1, sample=cpu_bound, started_at=started, now=NOW + 60)
        assert later.start == 2

    def test_future_start_time_counts_as_just_started(self) -> None:
        assert settling_weight([NOW + 3.0], NOW, 10.0) == 1.0

    def test_zero_window_disables_projection(self) -> None:
        assert settling_weight([NOW], NOW, 0.0) == 0.0

    def test_memory_projection_never_goes_negative(self) -> None:
        result = decide(queued=1, running=8, sample=reading(available=GIB), started_at=[NOW] * 8)
        assert result.effective_memory_available == 0
        assert result.start == 0
        assert result.reason == "waiting: memory 0.0 GiB free, reserve 1.0 GiB"


class TestMaxAgents:
    def test_max_agents_caps_admission(self) -> None:
        result = decide(queued=10, running=1, max_agents=4)
        assert result.start == 3
        assert result.reason == "waiting: 4/4 agents running (max)"

    def test_full_cap_admits_nothing(self) -> None:
        result = decide(queued=2, running=4, max_agents=4)
        assert result.start == 0
        assert result.reason == "waiting: 4/4 agents running (max)"

    def test_over_cap_is_never_negative(self) -> None:
        # The cap may be lowered while more agents run than it allows.
        assert decide(queued=2, running=6, max_agents=4).start == 0

    def test_zero_cap_beats_the_idle_rule(self) -> None:
        result = decide(queued=1, max_agents=0, agent_cpu_cost=90.0)
        assert result.start == 0
        assert result.reason == "waiting: 0/0 agents running (max)"


class TestIdleRule:
    def test_big_agent_cost_still_starts_one_on_an_idle_machine(self) -> None:
        # A 2-core machine where one agent is projected at 60%: 10% + 60% > 50%. Without the
        # idle rule nothing would ever start (the original claudine's bug).
        result = decide(queued=3, cpu_threshold=50.0, agent_cpu_cost=60.0)
        assert result.start == 1
        assert result.reason == "waiting: CPU 70% > 50%"

    def test_big_memory_cost_still_starts_one(self) -> None:
        result = decide(queued=1, sample=reading(available=2 * GIB), agent_memory_cost=4 * GIB)
        assert result.start == 1
        assert result.reason is None

    def test_not_when_something_is_running(self) -> None:
        result = decide(queued=3, running=1, cpu_threshold=50.0, agent_cpu_cost=60.0)
        assert result.start == 0
        assert result.reason == "waiting: CPU 10% + 60% for the next agent > 50%"

    def test_not_when_cpu_is_already_over_the_threshold_and_the_strict_rule_is_on(
        self,
    ) -> None:
        result = decide(queued=3, sample=reading(cpu=91.0), cpu_limit_when_idle=True)
        assert result.start == 0
        assert result.reason == "waiting: CPU 91% > 80%"

    def test_not_when_memory_is_under_the_reserve(self) -> None:
        result = decide(queued=3, sample=reading(available=GIB * 8 // 10))
        assert result.start == 0
        assert result.reason == "waiting: memory 0.8 GiB free, reserve 1.0 GiB"


class TestMakeLoadRule:
    """GNU make's -l: the CPU limit holds back a new agent only while one of ours runs."""

    def test_a_machine_busy_with_other_work_still_starts_one_agent(self) -> None:
        result = decide(queued=3, sample=reading(cpu=97.0))
        assert result.start == 1
        assert result.reason == "waiting: CPU 100% > 80%"  # 97% + 5% for the one started

    def test_the_next_one_waits_while_ours_runs(self) -> None:
        result = decide(queued=2, running=1, sample=reading(cpu=97.0), now=NOW + 60,
                        started_at=[NOW])
        assert result.start == 0
        assert result.reason == "waiting: CPU 97% > 80%"

    def test_the_queue_makes_progress_for_as_long_as_the_load_lasts(self) -> None:
        """Someone else keeps the machine at 97% for an hour; each agent runs 5 minutes.

        One tick a second with a fake clock: every task runs, one at a time. Under the
        strict rule nothing starts in that hour.
        """
        for strict, expected in ((False, 5), (True, 0)):
            queued, running_until, started_log = 5, [], []
            for second in range(3600):
                now = NOW + second
                running_until = [end for end in running_until if end > now]
                result = decide(queued=queued, running=len(running_until),
                                sample=reading(cpu=97.0), now=now,
                                started_at=[end - 300 for end in running_until],
                                cpu_limit_when_idle=strict)
                assert len(running_until) + result.start <= 1
                for _ in range(result.start):
                    running_until.append(now + 300)
                    started_log.append(now)
                queued -= result.start
            assert len(started_log) == expected, strict
            if expected:
                gaps = [b - a for a, b in zip(started_log, started_log[1:], strict=False)]
                assert all(gap == 300 for gap in gaps)  # the next starts as soon as one ends

    def test_fits_by_cpu_are_still_all_started(self) -> None:
        # Under the threshold the rule changes nothing: as many as fit, not one.
        assert decide(queued=20).start == 14

    def test_memory_reserve_still_holds_with_nothing_running(self) -> None:
        result = decide(queued=3, sample=reading(cpu=97.0, available=GIB * 8 // 10))
        assert result.start == 0
        assert result.reason == "waiting: memory 0.8 GiB free, reserve 1.0 GiB"

    def test_max_agents_still_holds(self) -> None:
        assert decide(queued=3, sample=reading(cpu=97.0), max_agents=0).start == 0

    def test_a_big_agent_on_a_busy_machine_starts_too(self) -> None:
        # Memory above the reserve but below one agent's projected cost: the idle rule.
        result = decide(queued=1, sample=reading(cpu=97.0, available=2 * GIB),
                        agent_memory_cost=4 * GIB)
        assert result.start == 1
        strict = decide(queued=1, sample=reading(cpu=97.0, available=2 * GIB),
                        agent_memory_cost=4 * GIB, cpu_limit_when_idle=True)
        assert strict.start == 0

    def test_limits_from_settings_named_as_in_the_config(self) -> None:
        from claudine_core.config import Config, owner_settings

        config = Config(home="/tmp/unused", cpu_limit_when_idle=True, max_agents=3)  # type: ignore[arg-type]
        built = AdmissionLimits.from_settings(owner_settings(config))
        assert built == AdmissionLimits(
            cpu_threshold=80.0, memory_reserve=GIB, max_agents=3, agent_cpu_cost=5.0,
            agent_memory_cost=300 * 1024**2, settle_window_s=15.0, cpu_limit_when_idle=True)


class TestNoSample:
    def test_admits_nothing_until_measured(self) -> None:
        result = decide_admission(
            queued=3, running=0, sample=None, started_at=(), limits=limits(), now=NOW
        )
        assert result.start == 0
        assert result.reason == MEASURING_REASON == "waiting: measuring CPU and memory"

    def test_nothing_queued_no_reason(self) -> None:
        result = decide_admission(
            queued=0, running=0, sample=None, started_at=(), limits=limits(), now=NOW
        )
        assert result == Admission(0, None)


class TestReasons:
    def test_fractional_cpu_is_not_rounded_into_a_contradiction(self) -> None:
        result = decide(queued=1, running=1, sample=reading(cpu=80.4))
        assert result.reason == "waiting: CPU 80.4% > 80%"

    def test_cap_named_when_it_ties_with_a_resource(self) -> None:
        # CPU allows 2 more and so does the cap: the cap is the clearer explanation.
        result = decide(queued=5, running=2, max_agents=4, sample=reading(cpu=70.0))
        assert result.start == 2
        assert result.reason == "waiting: 4/4 agents running (max)"

    def test_zero_cost_resources_do_not_bind(self) -> None:
        result = decide(queued=50, agent_cpu_cost=0.0, agent_memory_cost=0, max_agents=None)
        assert result.start == 50
        assert result.reason is None


@pytest.mark.parametrize(
    "overrides",
    [
        {"cpu_threshold": 0.0},
        {"cpu_threshold": 101.0},
        {"memory_reserve": -1},
        {"max_agents": -1},
        {"agent_cpu_cost": -1.0},
        {"agent_memory_cost": -1},
        {"settle_window_s": -1.0},
    ],
)
def test_invalid_limits_are_rejected(overrides: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        limits(**overrides)
