"""Recovery when a process becomes the owner: decide per row, never blanket-fail.

Every task the store says is running is followed again: a live agent (same pid and start
time) is adopted; a dead one with an exit record is finished from it on the first tick;
one that vanished goes through the recovery policy (resume, re-queue or fail). A task
whose agent certainly never started goes back to the queue without using an attempt.
Finished worktree tasks whose merge step was cut off run it again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from claudine_core.config import Config
from claudine_core.dispatch import agent_deadline, unclaim
from claudine_core.finishing import RunFinisher
from claudine_core.models import Task, TaskState
from claudine_core.run_dirs import run_dir_for, spawn_began
from claudine_core.store import TaskRepo
from claudine_core.supervisor import Supervisor

log = logging.getLogger("claudine.engine")


def recover(
    config: Config,
    repo: TaskRepo,
    supervisor: Supervisor,
    finisher: RunFinisher,
    clock: Callable[[], float],
) -> None:
    """Follow every task the store says is running; the first tick decides each one."""
    for task in repo.list_tasks(statuses=[TaskState.RUNNING], newest_first=False):
        if task.id not in supervisor.agents:
            _follow_again(config, repo, supervisor, task, clock())
    for task in repo.unsettled_merges():
        log.info("task %s: running its interrupted merge step again", task.id)
        finisher.after_finish(task.id)


def _follow_again(
    config: Config, repo: TaskRepo, supervisor: Supervisor, task: Task, now: float
) -> None:
    run_dir = run_dir_for(config.runs_dir, task.id, max(task.attempt, 1))
    if task.pid is None and not spawn_began(run_dir):
        _requeue_unstarted(repo, task)
        return
    started_at = task.started_at or now
    agent = supervisor.adopt(
        task.id,
        run_dir,
        pid=task.pid,
        pid_started_at=task.pid_started_at,
        started_at=started_at,
        deadline=agent_deadline(task, started_at, config.task_timeout_s),
    )
    remote = getattr(agent, "run", None) is not None  # found again by name, not by pid
    if agent.pid is None and not remote and not (run_dir / "exit.json").exists():
        # Spawn began but no wrapper ever ran: none is in the process table (it holds
        # the owner's lock until it has exec'd, so it would be found) and none wrote
        # wrapper.json, which it does before starting the agent. So no agent ran: back
        # to the queue without using up an attempt.
        supervisor.agents.pop(task.id, None)
        _requeue_unstarted(repo, task)
        return
    log.info("recovering task %s (%s)", task.id,
             f"run {task.id}-{task.attempt}" if remote else f"pid {agent.pid}")


def _requeue_unstarted(repo: TaskRepo, task: Task) -> None:
    """A task claimed by an owner that died before starting its agent (say, during a
    worktree's setup): nothing ran, so it goes back to the queue without using up an
    attempt or a retry."""
    unclaim(repo, task)
    log.info("task %s: its owner stopped before the agent started; queued again", task.id)
