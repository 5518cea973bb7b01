"""When a schedule's slots fall: cron expressions read and iterated by cronsim, times and
time zones by the standard library's zoneinfo (with the tzdata package where the system
has no zone files).

cronsim defines what happens around daylight-saving changes, as Debian's cron does: for an
expression with a fixed minute and hour, a slot in the skipped hour runs at the first
minute after the gap (``30 2 * * *`` on the spring-forward night runs at 03:00), and a slot
in the repeated hour runs once, at its first occurrence. Expressions with ``*`` in the
minute or hour field step through wall-clock time. tests/core/test_schedule_timing.py
pins both.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError


class TimingError(ValueError):
    """A cron expression, a time or a time zone that cannot be used; the message says why."""


def read_zone(name: str) -> ZoneInfo:
    """The IANA time zone ``name`` (e.g. Europe/Paris, UTC)."""
    text = (name or "").strip()
    if not text:
        raise TimingError("the time zone is empty: give an IANA name such as UTC or "
                          "Europe/Paris")
    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise TimingError(f"{name!r} is not an IANA time zone: use a name such as UTC, "
                          "Europe/Paris or America/New_York") from None


def check_cron(expression: str) -> str:
    """The expression, normalised to single spaces, if it is a valid 5-field cron line."""
    parts = (expression or "").split()
    if len(parts) != 5:
        raise TimingError(
            f"cron expression {expression!r} has {len(parts)} field(s): it needs 5 "
            "(minute hour day-of-month month day-of-week), e.g. '0 9 * * 1-5'")
    normal = " ".join(parts)
    try:
        CronSim(normal, datetime(2000, 1, 1, tzinfo=UTC))
    except CronSimError as exc:
        raise TimingError(f"cron expression {expression!r} is not valid: {exc}") from None
    return normal


def read_time(text: str, zone: ZoneInfo, what: str) -> float:
    """An ISO 8601 time as epoch seconds; one without an offset is read in ``zone``.

    A local time the clocks skip (in a spring-forward gap) is refused; one they repeat is
    its first occurrence.
    """
    raw = (text or "").strip()
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise TimingError(f"{what} {text!r} is not an ISO 8601 time: use e.g. "
                          "2026-12-01T09:00:00Z or 2026-12-01T09:00+01:00") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone, fold=0)
        round_trip = datetime.fromtimestamp(moment.timestamp(), zone)
        if round_trip.replace(tzinfo=None) != moment.replace(tzinfo=None):
            raise TimingError(f"{what} {text!r} does not exist in {zone.key}: the clocks "
                              "skip that hour; give another time or an explicit offset")
    return moment.timestamp()


def next_slot(expression: str, zone: ZoneInfo, after: float) -> float | None:
    """The first slot strictly after ``after`` (None: none in the next 50 years)."""
    iterator = CronSim(expression, datetime.fromtimestamp(int(after), zone))
    try:
        return next(iterator).timestamp()
    except StopIteration:
        return None


def slots_back(expression: str, zone: ZoneInfo, until: float) -> Iterator[float]:
    """Slots at or before ``until``, newest first."""
    start = datetime.fromtimestamp(int(until) + 1, zone)  # reverse steps back first
    for moment in CronSim(expression, start, reverse=True):
        yield moment.timestamp()
