"""Following running agents and finishing their runs: the outcome, a retry, the hook.

The owner loop calls :meth:`RunFinisher.follow` for every agent it supervises on each
tick. Once an agent has ended (its exit record is written, or its process is gone) the
run is finished here: its outcome classified, the task moved to its final state or
queued again for a retry, and the isolation hook's ``finish`` run. Tasks whose agent
never started (a failed spawn, a cancel during preparation) end here too.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Container
from pathlib import Path
from typing import Any

from claudine_core.agents.claude import RESUME_AFTER_INTERRUPTION
from claudine_core.agents.stream_parse import parse_line
from claudine_core.config import Config
from claudine_core.continuation import end_state_directory, git_end_state
from claudine_core.events import StoreVersion, state_version
from claudine_core.faults import crash_point
from claudine_core.models import TERMINAL_STATES, Task, TaskState, iso_time
from claudine_core.outcomes import Outcome, classify, retry_delay
from claudine_core.service import read_tail
from claudine_core.spending import SpendLedger
from claudine_core.store import TaskRepo
from claudine_core.supervisor import RunningAgent, Supervisor
from claudine_core.usage_limits import LimitHit, limit_hit, park, park_until, resume_fields

log = logging.getLogger("claudine.engine")

SUMMARY_FLUSH_S = 0.5  # batch output summaries: screens need ~2 Hz, SQLite thanks us
# Agent output read in one tick, all agents together (a console runs on the same loop: a
# tick that read 1 MB from each of 50 agents stalled its screen for seconds). Each agent
# gets an equal slice; a burst larger than its slice is summarised over the next ticks.
TICK_READ_BYTES = 1024 * 1024
MIN_SLICE_BYTES = 16 * 1024
# Each agent's output is read on one tick in READ_PHASES (0.5 s at the default 0.1 s tick,
# the pace of the summary flush), agents spread over the phases, and on every tick while
# it has a backlog (its last read filled its slice): reading every agent on every tick cost
# the shared loop an open, a read and a JSON parse per agent per tick, for summaries
# nobody sees sooner than the flush. An agent that ended is read to the end at once.
READ_PHASES = 5
STDERR_TAIL_BYTES = 4096  # of the agent's stderr, read to explain a failure


class RunFinisher:
    """Reads agents' output into their summaries and ends their runs in the store.

    Args:
        config: the owner's settings (retries, recovery policy).
        repo: the home's store.
        supervisor: the agents being followed.
        hooks: the isolation hooks (``finish(task)`` runs once a task ended), or None.
        clock: wall-clock source.
        ledger: where each attempt's reported cost is recorded (budgets, ``costs``).
    """

    def __init__(
        self,
        config: Config,
        repo: TaskRepo,
        supervisor: Supervisor,
        hooks: Any,
        clock: Callable[[], float],
        ledger: SpendLedger | None = None,
    ) -> None:
        self.config = config
        self.ledger = ledger
        self.repo = repo
        self.supervisor = supervisor
        self.hooks = hooks
        self.clock = clock
        self._last_flush = 0.0
        self._cancels_read_at: StoreVersion | None = None
        self._ended_seen: int | None = None  # ended tasks at the last look for merges
        self._recorded_costs: dict[Path, float] = {}  # run folder (an attempt) -> cost
        self._phase = 0  # which agents' output this tick reads (see READ_PHASES)
        self._due: set[str] = set()  # the agents whose output this tick reads
        self._due_slice = TICK_READ_BYTES  # what each of them may read
        self._rest_slice = TICK_READ_BYTES  # what an agent that ended may read of the rest
        self._backlogged: set[str] = set()  # agents whose last read filled its slice

    # -- following ----------------------------------------------------------------------------

    def next_tick(self, agents: list[RunningAgent]) -> None:
        """A new owner tick begins: choose whose output it reads (this phase's agents and
        the backlogged ones) and split :data:`TICK_READ_BYTES` among them."""
        self._phase = (self._phase + 1) % READ_PHASES
        self._backlogged &= {agent.task_id for agent in agents}  # gone ones: forgotten
        self._due = {agent.task_id for agent in agents
                     if agent.task_id in self._backlogged
                     or hash(agent.task_id) % READ_PHASES == self._phase}
        self._due_slice = max(MIN_SLICE_BYTES, TICK_READ_BYTES // max(1, len(self._due)))
        # Fixed for the tick: the share grows as ended agents are forgotten, and several
        # ending in one tick must still take no more than TICK_READ_BYTES together.
        self._rest_slice = self.read_slice()

    def follow(self, agent: RunningAgent, now: float) -> None:
        """Read a slice of the agent's new output (when this tick reads it), stop it past
        its deadline, finish it once it ended and everything it wrote is read."""
        if agent.task_id in self._due:
            self._due.discard(agent.task_id)  # once per tick, whoever else follows it
            before = agent.offset
            self.supervisor.read_output(agent, events=False, limit=self._due_slice)
            if agent.offset - before >= self._due_slice:
                self._backlogged.add(agent.task_id)
            else:
                self._backlogged.discard(agent.task_id)
        if agent.deadline is not None and now >= agent.deadline and agent.stop_state is None:
            limit = agent.deadline - agent.started_at
            self.supervisor.request_stop(
                agent, TaskState.FAILED, f"timed out after {limit:g}s", now
            )
        record = self.supervisor.exit_record(agent)
        if record is None and self.supervisor.is_alive(agent):
            return
        if record is None:
            # It may have written the record between our two looks.
            record = self.supervisor.exit_record(agent)
        if self._read_the_rest(agent, self._rest_slice):
            self._backlogged.discard(agent.task_id)
            self.finish(agent, record, now)

    def read_slice(self) -> int:
        """The bytes one agent's output may take of a tick: an equal share of
        :data:`TICK_READ_BYTES`, never below :data:`MIN_SLICE_BYTES`."""
        return max(MIN_SLICE_BYTES, TICK_READ_BYTES // max(1, len(self.supervisor.agents)))

    def _read_the_rest(self, agent: RunningAgent, budget: int) -> bool:
        """Read what the ended agent wrote, up to ``budget`` bytes this tick; True once
        everything is read (its last cut-off line included), False to go on next tick."""
        while self.supervisor.has_unread_output(agent):
            if budget <= 0:
                return False
            offset = agent.offset
            self.supervisor.read_output(agent, events=False, limit=budget)
            if agent.offset == offset:
                break
            budget -= agent.offset - offset
        for line in agent.splitter.flush():  # a last line cut off by the agent's death
            for event in parse_line(line):
                agent.summary.update(event)
        return True

    def flush_summaries(self, *, force: bool = False) -> None:
        """Write the changed summaries of running agents, at most every SUMMARY_FLUSH_S."""
        now = self.clock()
        if not force and now - self._last_flush < SUMMARY_FLUSH_S:
            return
        self._last_flush = now
        dirty = [a for a in self.supervisor.agents.values() if a.dirty]
        self.record_costs(dirty, now)
        self.repo.update_summaries({a.task_id: self.summary_fields(a) for a in dirty})
        for agent in dirty:
            agent.dirty = False

    def record_costs(self, agents: list[RunningAgent], now: float) -> None:
        """Write the cost each agent reported so far to the ledger (before the task row:
        an owner killed in between records it again when the run is finished)."""
        if self.ledger is None:
            return
        # Only what changed: a cost moves once per turn, output far more often.
        changed = {a.task_id: a.summary.cost_usd for a in agents
                   if a.summary.cost_usd is not None
                   and self._recorded_costs.get(a.run_dir) != a.summary.cost_usd}
        self.ledger.record(changed, now)
        for agent in agents:
            if agent.task_id in changed:
                self._recorded_costs[agent.run_dir] = changed[agent.task_id]

    def summary_fields(self, agent: RunningAgent) -> dict[str, Any]:
        """The columns an agent's output summary sets on its task."""
        summary = agent.summary
        fields: dict[str, Any] = {
            "last_activity": summary.last_activity,
            "last_activity_at": self.clock() if summary.last_activity else None,
            "output_bytes": agent.offset,
        }
        if summary.session_id:
            fields["session_id"] = summary.session_id
        if summary.num_turns is not None:
            fields["num_turns"] = summary.num_turns
        if summary.cost_usd is not None:
            fields["cost_usd"] = summary.cost_usd
        result = summary.result
        if result is not None:
            fields.update(
                result=result.result, is_error=result.is_error,
                api_error_status=result.api_error_status,
            )
        return fields

    # -- finishing a run -----------------------------------------------------------------------

    def finish(self, agent: RunningAgent, record: dict[str, Any] | None, now: float) -> None:
        """End the agent's run: the task's final state, or queued again for a retry."""
        task = self.repo.get(agent.task_id)
        summary = agent.summary
        outcome = classify(
            exit_record=record,
            result=summary.result,
            stop_state=agent.stop_state,
            stop_reason=agent.stop_reason,
            stderr_tail=read_tail(agent.run_dir / "stderr.log", STDERR_TAIL_BYTES),
            limit=limit_hit(summary.result, usage_resets_at=summary.usage_resets_at,
                            usage_limit_type=summary.usage_limit_type,
                            retry_delay_s=summary.rate_limit_retry_s),
            lost_reason=getattr(agent, "lost_reason", None),  # a run on a remote backend
        )
        self.record_costs([agent], now)
        fields = self.summary_fields(agent)
        fields.update(
            ended_at=now,
            exit_code=outcome.exit_code,
            output_bytes=(record or {}).get("output_bytes", agent.offset),
            output_truncated=bool((record or {}).get("dropped_bytes")),
        )
        fields["attempts"] = with_attempt(task, outcome.state, outcome.error,
                                          outcome.exit_code, now)
        if outcome.limit is not None:
            self._park(task, agent, outcome.limit, fields, now)
        elif self._should_retry(task, outcome, record):
            self._requeue(task, agent, outcome, fields, now)
        else:
            self.repo.transition(task.id, [TaskState.RUNNING], status=outcome.state,
                                 error=outcome.error, end_state=end_state(task), **fields)
            crash_point("finished")
            self.after_finish(task.id)
        self.supervisor.forget(agent)
        self._recorded_costs.pop(agent.run_dir, None)

    def _should_retry(
        self, task: Task, outcome: Outcome, record: dict[str, Any] | None
    ) -> bool:
        if outcome.state is not TaskState.FAILED or not outcome.transient:
            return False
        if record is None and self.config.recovery_policy == "fail":
            return False
        # Attempts a usage limit stopped are not failures: they use up no retry.
        return task.attempt - task.parks <= self.config.max_retries

    def _park(self, task: Task, agent: RunningAgent, limit: LimitHit, fields: dict[str, Any],
              now: float) -> None:
        """The run met a usage limit: park the task until the reset, pause the home."""
        until = park_until(limit, now, self.config.usage_limit_wait_s)
        fields.pop("ended_at", None)
        session = agent.summary.session_id or task.session_id
        park(self.repo, task, limit, until, now, {**fields, **resume_fields(task, session)})

    def _requeue(
        self, task: Task, agent: RunningAgent, outcome: Outcome, fields: dict[str, Any],
        now: float,
    ) -> None:
        delay = retry_delay(
            task.attempt, base_s=self.config.retry_base_delay_s, cap_s=self.config.retry_max_delay_s
        )
        session = agent.summary.session_id or task.session_id
        # A run lost with its node (a remote backend) lost its session with it: afresh.
        lost_with_node = getattr(agent, "lost_reason", None) is not None
        resume = session if (self.config.recovery_policy == "resume" and session
                             and not lost_with_node) else None
        fields.pop("ended_at", None)
        self.repo.transition(
            task.id,
            [TaskState.RUNNING],
            status=TaskState.QUEUED,
            not_before=now + delay,
            error=f"attempt {task.attempt} failed: {outcome.error}; retrying in {delay:g}s",
            pid=None,
            resume_session_id=resume or task.resume_session_id,
            resume_prompt=RESUME_AFTER_INTERRUPTION if resume else task.resume_prompt,
            **fields,
        )
        log.warning("task %s: %s; retry in %gs", task.id, outcome.error, delay)

    def after_finish(self, task_id: str) -> None:
        """Run the isolation hook's ``finish`` (merge, patch, PR...) of an ended task."""
        if self.hooks is not None:
            try:
                self.hooks.finish(self.repo.get(task_id))
            except Exception:
                log.exception("finishing hook failed for %s", task_id)

    # -- tasks whose agent never ran -----------------------------------------------------------

    def apply_cancel_requests(self, now: float, preparing: Container[str]) -> None:
        """Stop the agents of tasks a user cancelled; end at once those with none to stop.

        ``preparing`` holds the tasks still being prepared: those are cancelled when their
        preparation ends (a worktree half made must be finished, then removed). A cancel
        request is a store write, so the rows are read again only once the store changed.
        """
        version = state_version(self.repo)
        if version == self._cancels_read_at:
            return
        self._cancels_read_at = version  # before the read: a write after it is seen next
        if self.hooks is not None:
            self.settle_waiting_cancels()
        for task in self.repo.cancel_requests():
            agent = self.supervisor.agents.get(task.id)
            if agent is not None:
                self.supervisor.request_stop(
                    agent, TaskState.CANCELLED, task.cancel_reason or "cancelled", now
                )
            elif task.id not in preparing:
                # Claimed but with no agent to stop (its start failed half-way, or it is
                # a row no owner follows): nothing runs, so it is cancelled at once.
                self.cancel_unstarted(task, now)

    def settle_waiting_cancels(self) -> None:
        """Run the merge step of worktree tasks cancelled while they waited (a parked task,
        a retry in back-off): the cancel ended them in the store, where no owner code runs.

        Looked for only when the number of ended tasks moved (a status-index count)."""
        counts = self.repo.count_by_status()
        ended = sum(counts.get(state, 0) for state in TERMINAL_STATES)
        if ended == self._ended_seen:
            return
        self._ended_seen = ended
        for task_id in self.repo.unstarted_merges():
            self.after_finish(task_id)

    def cancel_unstarted(self, task: Task, now: float) -> None:
        reason = task.cancel_reason or "cancelled"
        if self.repo.transition(
            task.id, [TaskState.RUNNING], status=TaskState.CANCELLED, ended_at=now, error=reason,
            attempts=with_attempt(task, TaskState.CANCELLED, reason, None, now),
            end_state=end_state(task),
        ):
            self.after_finish(task.id)

    def fail_to_start(self, task_id: str, reason: str, now: float) -> None:
        task = self.repo.get(task_id)
        self.repo.transition(
            task_id, [TaskState.RUNNING], status=TaskState.FAILED, ended_at=now, error=reason,
            attempts=with_attempt(task, TaskState.FAILED, reason, None, now),
            end_state=end_state(task),
        )
        log.error("task %s failed to start: %s", task_id, reason)
        self.after_finish(task_id)  # e.g. remove a worktree prepared for it


def end_state(task: Task) -> dict[str, Any] | None:
    """What the task leaves in its directory (git branch, commit, changed files), taken
    before the merge step may commit or remove its worktree; None outside git."""
    return git_end_state(end_state_directory(task))


def with_attempt(
    task: Task, state: TaskState, error: str | None, exit_code: int | None, now: float
) -> list[dict[str, Any]]:
    """The task's attempt history with the attempt now ending appended."""
    entry = {"attempt": task.attempt, "started_at": iso_time(task.started_at),
             "ended_at": iso_time(now), "state": state.value, "error": error,
             "exit_code": exit_code}
    if task.node:  # where it ran on a cluster: a retry that resumes its session goes there
        entry["node"] = task.node
    return [*task.attempts, entry]
