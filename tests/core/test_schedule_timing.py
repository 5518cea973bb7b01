"""When slots fall: cron read and iterated by cronsim in an IANA zone, and the
daylight-saving rules it defines (those of Debian's cron), pinned here so a change of
library or version that moves a user's run cannot pass unnoticed."""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import islice

import pytest

from claudine_core.schedules.timing import (
    TimingError,
    check_cron,
    next_slot,
    read_time,
    read_zone,
    slots_back,
)

PARIS = read_zone("Europe/Paris")


def utc(*parts: int) -> float:
    return datetime(*parts, tzinfo=UTC).timestamp()  # type: ignore[misc]


def following(expression: str, after: float, count: int) -> list[str]:
    """The next ``count`` slots, as local ISO times in Paris."""
    slots = []
    for _ in range(count):
        found = next_slot(expression, PARIS, after)
        assert found is not None
        slots.append(datetime.fromtimestamp(found, PARIS).isoformat())
        after = found
    return slots


def test_a_daily_run_in_the_skipped_hour_runs_at_the_end_of_the_gap() -> None:
    # 2026-03-29: Paris clocks jump from 02:00 to 03:00.
    assert following("30 2 * * *", utc(2026, 3, 28, 12), 3) == [
        "2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00",
        "2026-03-31T02:30:00+02:00"]


def test_a_daily_run_in_the_repeated_hour_runs_once() -> None:
    # 2026-10-25: Paris clocks go back from 03:00 to 02:00; 02:30 happens twice.
    assert following("30 2 * * *", utc(2026, 10, 24, 12), 2) == [
        "2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"]


def test_a_stepping_expression_runs_in_both_repeated_hours() -> None:
    assert following("*/30 * * * *", utc(2026, 10, 24, 23, 50), 5) == [
        "2026-10-25T02:00:00+02:00", "2026-10-25T02:30:00+02:00",
        "2026-10-25T02:00:00+01:00", "2026-10-25T02:30:00+01:00",
        "2026-10-25T03:00:00+01:00"]


def test_slots_back_are_newest_first_and_include_the_given_moment() -> None:
    assert list(islice(slots_back("0 * * * *", read_zone("UTC"), utc(2026, 1, 1, 5)), 3)) \
        == [utc(2026, 1, 1, 5), utc(2026, 1, 1, 4), utc(2026, 1, 1, 3)]


def test_a_local_time_the_clocks_skip_is_refused_and_a_repeated_one_is_the_first() -> None:
    with pytest.raises(TimingError, match="does not exist in Europe/Paris"):
        read_time("2026-03-29T02:30", PARIS, "run_at")
    assert read_time("2026-10-25T02:30", PARIS, "run_at") == utc(2026, 10, 25, 0, 30)
    assert read_time("2026-10-25T02:30+01:00", PARIS, "run_at") == utc(2026, 10, 25, 1, 30)
    assert read_time("2026-10-25T01:30:00Z", PARIS, "run_at") == utc(2026, 10, 25, 1, 30)


@pytest.mark.parametrize(("expression", "words"), [
    ("* * * *", "needs 5"), ("0 0 * * * *", "needs 5"), ("60 * * * *", "not valid"),
    ("* * 31 2 *", "not valid"), ("0 9 * * mon-fri", None), ("  0   9 * * *  ", None),
])
def test_cron_expressions_are_checked(expression: str, words: str | None) -> None:
    if words is None:
        assert check_cron(expression) == " ".join(expression.split())
    else:
        with pytest.raises(TimingError, match=words):
            check_cron(expression)


@pytest.mark.parametrize("name", ["", "Mars/Olympus", "../etc/passwd", "Europe/"])
def test_unknown_time_zones_are_refused(name: str) -> None:
    with pytest.raises(TimingError):
        read_zone(name)


@pytest.mark.parametrize("expression", ["30 2 * * *", "0 2 * * *", "*/30 * * * *",
                                        "15 1-3 * * *"])
@pytest.mark.parametrize(("start", "end"), [((2026, 3, 27), (2026, 3, 31)),
                                            ((2026, 10, 23), (2026, 10, 27))])
def test_missed_slots_counted_backwards_are_the_slots_forwards(
        expression: str, start: tuple[int, int, int], end: tuple[int, int, int]) -> None:
    """A catch-up walks back from now to the schedule's next slot: across either change
    of the clocks it must meet exactly the slots the schedule would have fired."""
    first, last = utc(*start), utc(*end)
    forwards, after = [], first
    while (found := next_slot(expression, PARIS, after)) is not None and found <= last:
        forwards.append(found)
        after = found
    backwards = []
    for slot in slots_back(expression, PARIS, last):
        if slot <= first:
            break
        backwards.append(slot)
    assert backwards[::-1] == forwards and len(forwards) >= 3
