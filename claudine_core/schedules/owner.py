"""The owner's firing step: cheap on every tick of an idle day.

The owner remembers the earliest next slot of any active schedule and re-reads it only
after the store changed (a schedule created, paused or cancelled by any process, or its
own firing); a tick with nothing due costs one comparison. The engine also shortens its
sleep so that it wakes at that slot.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from claudine_core.errors import StoreError
from claudine_core.schedules.service import ScheduleService

log = logging.getLogger("claudine.schedules")

RETRY_AFTER_FAILURE_S = 30.0
"""How long the owner waits before trying again after an unexpected firing error, so a
bug in one schedule cannot take every tick."""


class ScheduleFirer:
    """Fires due schedules for an owner.

    Args:
        schedules: the home's ScheduleService.
        clock: wall clock (the engine's).
    """

    def __init__(self, schedules: Callable[[], ScheduleService],
                 clock: Callable[[], float]) -> None:
        self._schedules = schedules
        self.clock = clock
        self.next_due: float | None = None
        self._changes_seen = -1
        self._hold_until = 0.0
        self.fired = 0  # tasks created by this owner's firings

    def tick(self, now: float, changes: int) -> None:
        """Fire what is due. ``changes`` is the engine's count of store changes seen."""
        if now < self._hold_until:
            return
        if changes != self._changes_seen:
            self._changes_seen = changes  # before the read: a later change counts
            self.next_due = self._schedules().next_due_at()
        if self.next_due is None or now < self.next_due:
            return
        try:
            self.fired += self._schedules().fire_due(now)
        except StoreError:
            raise  # the engine's loop says so and backs off
        except Exception:
            log.exception("firing schedules failed; trying again in %gs",
                          RETRY_AFTER_FAILURE_S)
            self._hold_until = now + RETRY_AFTER_FAILURE_S
        self.next_due = self._schedules().next_due_at()

    def reset(self) -> None:
        """Forget what was read (a new owner reads afresh)."""
        self._changes_seen = -1
        self.next_due = None

    def seconds_until_due(self, now: float) -> float | None:
        """How long the loop may sleep before a firing is due (None: none is)."""
        if self.next_due is None:
            return None
        # After a failed firing the slot stays in the past: wait out the hold, not spin.
        return max(0.0, max(self.next_due, self._hold_until) - now)
