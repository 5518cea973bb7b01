"""Why a queued task has not started, for any process to show (CLI, MCP, console client).

Only the owner decides admission, and its decision lives in its memory; it publishes the
reason next to its lock whenever it changes (ownership.OwnerLock.publish_admission). A
client reads that. When there is nothing to read (an owner from an older claudine, or one
that has not dispatched yet) the client re-derives the decision from the same kind of
inputs: the store's counts, a resource reading, and the owner's published limits.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from claudine_core.config import Config
from claudine_core.models import ResourceSample, Task, TaskState
from claudine_core.ownership import current_owner, published_admission

NO_OWNER = ("no owner is running for this home, so nothing starts: "
            "'claudine serve --detach' (or the console) starts one")
SAMPLE_INTERVAL_S = 0.1  # a CPU reading needs two looks at the counters


def strip_prefix(reason: str | None) -> str | None:
    """``CPU 91% > 80%`` from the autoscaler's ``waiting: CPU 91% > 80%``."""
    return None if reason is None else reason.removeprefix("waiting: ")


def queue_waiting_reason(
    config: Config,
    repo: Any,
    *,
    now: float | None = None,
    sample: Callable[[], ResourceSample | None] | None = None,
) -> str | None:
    """Why the queue's next task waits, as the running owner decided it (None: it does not).

    ``repo`` is the store (for the fallback's counts); ``sample`` gives a resource reading
    for the fallback (default: take one now, which blocks for SAMPLE_INTERVAL_S).
    """
    owner = current_owner(config.lock_path)
    if owner is None:
        return NO_OWNER
    published = published_admission(config.lock_path, owner)
    if published is not None:
        return strip_prefix(published.get("reason"))
    # Nothing published: decide as the owner would, with its limits when it published them.
    settings: Mapping[str, Any] = owner.get("settings") or config.to_dict()
    counts = repo.count_by_status()
    queued = counts.get(TaskState.QUEUED, 0)
    if not queued:
        return None
    # Only this fallback needs the autoscaler: a status call does not load it (issue 9).
    from claudine_core.autoscaler import AdmissionLimits, decide_admission

    decision = decide_admission(
        queued=queued,
        running=counts.get(TaskState.RUNNING, 0),
        sample=(sample or sample_now)(),
        started_at=(),
        limits=AdmissionLimits.from_settings(settings),
        now=time.time() if now is None else now,
    )
    return strip_prefix(decision.reason)


def task_waiting_reason(
    config: Config,
    repo: Any,
    task: Task,
    *,
    now: float | None = None,
    sample: Callable[[], ResourceSample | None] | None = None,
) -> str | None:
    """Why ``task`` has not started yet; None unless it is blocked or queued (and waits)."""
    if task.status is TaskState.BLOCKED:
        from claudine_core.dependencies import waiting_on

        return waiting_on(repo, task)
    if task.status is not TaskState.QUEUED:
        return None
    now = time.time() if now is None else now
    if task.not_before is not None and task.not_before > now:
        return f"retry back-off: next attempt in {max(1, round(task.not_before - now))}s"
    return queue_waiting_reason(config, repo, now=now, sample=sample)


def sample_now() -> ResourceSample:
    """One CPU and memory reading of the machine (blocks for SAMPLE_INTERVAL_S)."""
    from claudine_core.resources import ResourceMonitor

    monitor = ResourceMonitor()
    time.sleep(SAMPLE_INTERVAL_S)
    return monitor.sample()
