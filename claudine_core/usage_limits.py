"""Usage limits: park a task the limit stopped, pause the home, go on at the reset.

A limit shows in an agent's stream in two ways (docs/claude-usage-limits.md has the
measured shapes):

- a **subscription usage limit** (Claude Pro/Max): a ``rate_limit_event`` line with
  ``status: "rejected"`` and ``resetsAt`` (epoch seconds), then an ``is_error`` result with
  ``api_error_status`` 429 and text such as "You've hit your session limit · resets 2pm";
- an **API rate limit** (an API key): ``api_retry`` lines with ``error_status`` 429 while
  the CLI retries (``retry_delay_ms`` carries the server's ``retry-after``), then the same
  429 result. The ``anthropic-ratelimit-*-reset`` headers never reach the stream, so the
  wait is the last retry's delay, else the ``usage_limit_wait_s`` setting.

Such a run is not a failure and uses up no retry: the task becomes ``parked`` until the
reset, with its session kept, and the whole home pauses (every new agent would hit the
same wall) while running agents go on. The pause is a fact in the store (``meta``), so
it outlives the owner. At the reset the owner's :class:`LimitKeeper` releases the parked
tasks (queued again, ``resuming``: they start before the rest of the queue, in priority
order, and continue their sessions with ``--resume``), then the queue follows. A user may
release one parked task early (it starts even while the home is paused), or all of them
and the pause (``claudine release --all``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from claudine_core.errors import InvalidTransition
from claudine_core.models import Task, TaskState, iso_time
from claudine_core.store import TaskRepo

if TYPE_CHECKING:
    # Not at run time: `claudine status` reads the pause, and the CLI's start-up must not
    # load asyncio (claudine_core.events) for it (tests/e2e/test_cli_imports.py).
    from claudine_core.agents.stream_events import AgentResult
    from claudine_core.config import Config
    from claudine_core.events import StoreVersion

log = logging.getLogger("claudine.engine")

PAUSE_KEY = "usage_pause"
"""The meta-table key of the home's pause."""

LIMIT_STATUS = 429
RESUME_AFTER_LIMIT = (
    "The usage limit that stopped your previous run has reset. "
    "Continue the task from where you left off."
)


@dataclass(frozen=True)
class LimitHit:
    """What an agent's stream said about the limit that stopped it."""

    kind: str  # "usage": a subscription's usage limit; "rate": an API rate limit
    resets_at: float | None = None  # when the stream said it resets (usage limits say)
    limit_type: str | None = None  # the subscription's window: five_hour, seven_day, ...
    retry_after_s: float | None = None  # the last retry's delay (API rate limits)

    def describe(self) -> str:
        if self.kind == "usage":
            window = f" ({self.limit_type.replace('_', '-')})" if self.limit_type else ""
            return f"usage limit reached{window}"
        return "API rate limit reached"


def limit_hit(result: AgentResult | None, *, usage_resets_at: float | None = None,
              usage_limit_type: str | None = None, retry_delay_s: float | None = None,
              ) -> LimitHit | None:
    """The limit that ended a run, or None when it ended otherwise.

    Args:
        result: the run's final result; a limit ends it with an is_error 429.
        usage_resets_at / usage_limit_type: from the last rejected ``rate_limit_event``.
        retry_delay_s: the delay of the last 429 ``api_retry`` (the server's retry-after).
    """
    if result is None or not result.is_error or result.api_error_status != LIMIT_STATUS:
        return None
    if usage_resets_at is not None:
        return LimitHit("usage", resets_at=usage_resets_at, limit_type=usage_limit_type)
    return LimitHit("rate", retry_after_s=retry_delay_s)


def park_until(hit: LimitHit, now: float, default_wait_s: float) -> float:
    """When a task the limit stopped may go on: the reset the stream gave (at least a
    second ahead), else the last retry's delay from now, else ``default_wait_s``."""
    if hit.resets_at is not None:
        return max(hit.resets_at, now + 1.0)
    if hit.retry_after_s is not None:
        return now + max(1.0, hit.retry_after_s)
    return now + default_wait_s


@dataclass(frozen=True)
class HomePause:
    """The home's pause: no new agent starts until ``until`` (but released tasks)."""

    until: float
    kind: str
    reason: str  # what hit the limit, in words
    since: float
    task_id: str | None = None  # the task whose run hit it first

    def describe(self, now: float) -> str:
        """``paused: usage limit reached (five-hour) until 14:05, in 38 min``."""
        return f"paused: {self.reason} until {_clock(self.until, now)}, {_left(self.until - now)}"

    def to_json(self) -> dict[str, Any]:
        return {"until": iso_time(self.until), "kind": self.kind, "reason": self.reason,
                "since": iso_time(self.since), "task_id": self.task_id}

    @classmethod
    def from_fact(cls, fact: Any) -> HomePause | None:
        if not isinstance(fact, dict):
            return None
        try:
            return cls(until=float(fact["until"]), kind=str(fact["kind"]),
                       reason=str(fact["reason"]), since=float(fact["since"]),
                       task_id=fact.get("task_id"))
        except (KeyError, TypeError, ValueError):
            return None


def _clock(epoch: float, now: float) -> str:
    moment = datetime.fromtimestamp(epoch)
    same_day = moment.date() == datetime.fromtimestamp(now).date()
    return moment.strftime("%H:%M" if same_day else "%a %H:%M")


def _left(seconds: float) -> str:
    if seconds <= 0:
        return "now"
    if seconds < 60:
        return f"in {math.ceil(seconds)} s"
    minutes = math.ceil(seconds / 60)
    if minutes < 120:
        return f"in {minutes} min"
    return f"in {minutes // 60} h {minutes % 60:02d} min"


def read_pause(repo: TaskRepo) -> HomePause | None:
    return HomePause.from_fact(repo.get_fact(PAUSE_KEY))


def park(repo: TaskRepo, task: Task, hit: LimitHit, until: float, now: float,
         fields: dict[str, Any]) -> bool:
    """Park the task and pause the home, in one transaction (a crash between the two
    would leave parked tasks with the home running into the same limit).

    ``fields`` are the run's summary columns (cost, session, attempts...). Returns False
    when the task was no longer running.
    """
    reason = hit.describe()
    with repo.transaction():
        parked = repo.transition(
            task.id, [TaskState.RUNNING], status=TaskState.PARKED, parked_until=until,
            parks=task.parks + 1, pid=None, notified_at=None,
            error=f"{reason}; continues at {iso_time(until)}",
            **fields,
        )
        if not parked:
            return False
        pause = read_pause(repo)
        if pause is None or pause.until < until:
            since = pause.since if pause is not None else now
            first = pause.task_id if pause is not None else task.id
            repo.set_fact(PAUSE_KEY, asdict(HomePause(until, hit.kind, reason, since, first)))
    log.warning("task %s: %s; parked until %s, the home pauses", task.id, reason,
                iso_time(until))
    return True


def resume_fields(task: Task, session_id: str | None) -> dict[str, Any]:
    """What a parked task's next attempt starts from: its own session, told the limit reset
    (a run the limit stopped before it had a session starts over)."""
    if not session_id:
        return {}
    return {"resume_session_id": session_id, "resume_prompt": RESUME_AFTER_LIMIT}


def release(repo: TaskRepo, task_id: str, now: float) -> bool:
    """A parked task back in the queue, to start before it (even while paused)."""
    return repo.transition(
        task_id, [TaskState.PARKED], status=TaskState.QUEUED, resuming=True,
        parked_until=None, not_before=None, notified_at=None,
        error=f"released at {iso_time(now)} after a usage limit",
    )


def _release_in_run_order(repo: TaskRepo, parked: Iterable[Task], now: float) -> list[str]:
    """Release ``parked`` highest priority first, the oldest first within a priority (the
    order they are to run in); the ids released (one that changed meanwhile is not)."""
    in_run_order = sorted(parked, key=lambda t: (t.priority, t.seq))
    return [t.id for t in in_run_order if release(repo, t.id, now)]


def release_all(repo: TaskRepo, now: float) -> list[str]:
    """Lift the home's pause and release every parked task; their ids, in run order."""
    with repo.transaction():
        parked = repo.list_tasks(statuses=[TaskState.PARKED])
        released = _release_in_run_order(repo, parked, now)
        repo.set_fact(PAUSE_KEY, None)
    return released


def release_by_hand(repo: TaskRepo, task: Task, now: float) -> Task:
    """``claudine release ID``: the parked task starts now, the home stays paused."""
    if task.status is not TaskState.PARKED:
        raise InvalidTransition(
            f"task {task.short_id} is {task.status.value}: only a parked task can be "
            "released")
    if not release(repo, task.id, now):
        raise InvalidTransition(f"task {task.short_id} changed meanwhile; look again")
    return repo.get(task.id)


@dataclass(frozen=True)
class Gate:
    """Whether new agents may start now, and why not."""

    reason: str | None = None  # None: they may
    resuming_only: bool = False  # paused: only tasks released from a park may start
    stop_running: bool = False  # a budget is reached and budget_stop is on

    @property
    def open(self) -> bool:
        return self.reason is None


class LimitKeeper:
    """The owner's pass: release parked tasks at the reset, and the dispatch gate.

    Reads the pause and the budget only when the store changed (or the day turned), so
    an idle owner reads nothing.

    Args:
        config: the owner's settings (budgets, budget_stop).
        repo: the home's store.
        spent: ``budget(now)`` of the home's ledger.
        clock: wall-clock source.
    """

    def __init__(self, config: Config, repo: TaskRepo,
                 budget: Callable[[float], Any], clock: Callable[[], float]) -> None:
        self.config = config
        self.repo = repo
        self.budget = budget
        self.clock = clock
        self.pause: HomePause | None = None
        self._read_at: tuple[StoreVersion, str] | None = None
        self._budget_reason: str | None = None
        self._next_parked_due = math.inf

    def _refresh(self, now: float) -> None:
        from claudine_core.events import state_version

        key = (state_version(self.repo), datetime.fromtimestamp(now).strftime("%Y-%m-%d %H"))
        if key == self._read_at:
            return
        self._read_at = key  # before the reads: a write after them is seen next time
        self.pause = read_pause(self.repo)
        # Parked tasks with no pause (a store from before a crash, a pause lifted by
        # hand): each goes on at its own time.
        due = self.repo.next_parked_due() if self.pause is None else None
        self._next_parked_due = math.inf if due is None else due
        budgets = (self.config.daily_budget_usd, self.config.monthly_budget_usd)
        self._budget_reason = (self.budget(now).reached()
                               if any(b is not None for b in budgets) else None)

    def tick(self, now: float) -> list[str]:
        """Release what is due; the ids released."""
        self._refresh(now)
        if self.pause is not None and now >= self.pause.until:
            released = release_all(self.repo, now)
            log.info("the usage limit has reset: %d parked task(s) go on first, then the "
                     "queue", len(released))
            self._read_at = None
            return released
        if self.pause is None and now >= self._next_parked_due:
            due = [t for t in self.repo.list_tasks(statuses=[TaskState.PARKED])
                   if (t.parked_until or now) <= now]
            self._read_at = None
            return _release_in_run_order(self.repo, due, now)
        return []

    def gate(self, now: float) -> Gate:
        """What dispatch may start now."""
        self._refresh(now)
        if self._budget_reason is not None:
            return Gate(self._budget_reason, stop_running=self.config.budget_stop)
        if self.pause is not None and now < self.pause.until:
            return Gate(self.pause.describe(now), resuming_only=True)
        return Gate()
