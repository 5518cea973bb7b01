"""Commands and queries every front end shares, validated, durable on return.

A command is a committed row (a new task, a cancel request, a new priority), so it works
the same whether this process owns the engine or not: the owner applies it on its next
tick. Nothing here starts or signals a process.
"""

from __future__ import annotations

import functools
import os
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from claudine_core.agents.claude import (
    NESTED_SESSION_VARIABLES,
    AgentNotFound,
    resolve_executable,
)
from claudine_core.config import Config
from claudine_core.errors import EXIT_FAILED, InvalidRequest, InvalidTransition, UnknownTask
from claudine_core.messages import Message, MessageRepo, Messages
from claudine_core.models import (
    ACTIVE_STATES,
    TERMINAL_STATES,
    DependencyPolicy,
    Priority,
    Task,
    TaskSpec,
    TaskState,
    spec_from_task,
)
from claudine_core.store import TaskRepo, open_database
from claudine_core.store.migrations import migrate
from claudine_core.task_request import (  # noqa: F401 (re-exported for front ends)
    MAX_FIELD_CHARS,
    MAX_PIPELINE_STEPS,
    MAX_PROMPT_BYTES,
    check_prompt_size,
    check_spec,
    read_request,
    validate_cwd,
)

if TYPE_CHECKING:
    from claudine_core.agents.stream_events import StreamEvent
    from claudine_core.isolation.worktrees import Worktrees
    from claudine_core.schedules.service import ScheduleService
    from claudine_core.spending import Budget, CostReport, SpendLedger
    from claudine_core.usage_limits import HomePause

# Variables a task takes from the process that delegates it, so any owner runs its agent
# the same way: the API endpoint and key, the CLI's own switches, cloud-provider access.
AGENT_ENV_PREFIXES = ("ANTHROPIC_", "CLAUDE_", "DISABLE_", "AWS_", "GOOGLE_", "CLOUD_ML_")
AGENT_ENV_NAMES = frozenset({"IS_SANDBOX", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY"})
__all__ = ["InvalidRequest", "InvalidTransition", "TaskService", "UnknownTask"]


class TaskService:
    """The store plus the rules for changing it.

    Args:
        config: the loaded configuration (home, defaults).
        clock: timestamp source (tests pass a fake).
        env: the environment a delegated task's agent-facing variables are taken from
            (default: this process's).
    """

    def __init__(
        self,
        config: Config,
        *,
        clock: Callable[[], float] = time.time,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.config = config
        self.env = dict(os.environ if env is None else env)
        # Private: prompts and logs can hold secrets. A folder someone chose for the home
        # keeps its mode; claudine's own default one is narrowed (older consoles made it
        # 0755).
        config.home.mkdir(mode=0o700, parents=True, exist_ok=True)
        if config.sources.get("home") == "default" and (
            config.home.stat().st_mode & 0o077
        ):
            config.home.chmod(0o700)
        config.runs_dir.mkdir(mode=0o700, exist_ok=True)
        self.db = open_database(config.db_path)
        migrate(self.db)
        self.repo = TaskRepo(self.db, clock=clock)
        self.clock = clock
        self.on_command: Callable[[], None] | None = None  # the owner's wake-up

    def close(self) -> None:
        self.db.close()

    # -- commands ----------------------------------------------------------------------------

    def delegate(self, spec: TaskSpec) -> Task:
        """Validate and queue a task; returns it once committed.

        Raises:
            InvalidRequest: with every problem of the request, keyed by field (see
                :mod:`claudine_core.task_request`), or the agent binary cannot be found.
        """
        try:
            settled = self.prepare(self._where_continued(spec))
        except InvalidRequest as exc:
            raise self._every_problem(exc, spec) from None
        with self.repo.transaction():  # dependencies read and the task written at once
            task = self._store(settled)
        self._notify()
        return task

    def read_request(self, values: Mapping[str, Any]) -> TaskSpec:
        """A front end's raw values (keyed by TaskSpec field) as a checked TaskSpec, with
        this home's defaults (see :func:`claudine_core.task_request.read_request`).

        Raises:
            InvalidRequest: every problem at once, those only the store can tell (an
                unknown dependency or task to continue) included.
        """
        try:
            return read_request(values, default_worktree=self.config.default_worktree,
                                dependency_policy=self.config.on_dependency_failure)
        except InvalidRequest as exc:
            continued = values.get("continue_from")
            raise self._with_lookup_problems(
                exc, _references(values.get("depends_on")),
                continued if isinstance(continued, str) else None) from None

    def _every_problem(self, refused: InvalidRequest, spec: TaskSpec) -> InvalidRequest:
        """A refused request's problems joined with those only the store can tell, so a
        user fixes them in one go."""
        if "continue_from" in refused.problems:  # refused before the checks ran: run them
            try:
                self.prepare(replace(spec, continue_from=None))
            except InvalidRequest as checked:
                if checked.problems:
                    refused = InvalidRequest(problems={**checked.problems,
                                                       **refused.problems})
        return self._with_lookup_problems(refused, spec.depends_on, spec.continue_from)

    def _with_lookup_problems(self, refused: InvalidRequest, depends_on: Iterable[str],
                              continue_from: str | None) -> InvalidRequest:
        """``refused`` plus the task references the store does not know, each under its
        field unless that field already has a problem. A refusal that is not about the
        request's fields (no agent binary) is left as is."""
        if not refused.problems:
            return refused
        problems = dict(refused.problems)
        unknown: list[str] = []
        for ref in depends_on:
            try:
                self.repo.resolve(ref)
            except UnknownTask as exc:
                unknown.append(str(exc))
        if unknown:
            problems.setdefault("depends_on", "; ".join(unknown))
        if continue_from:
            try:
                self.repo.resolve(continue_from)
            except UnknownTask as exc:
                problems.setdefault("continue_from", str(exc))
        return refused if problems == refused.problems else InvalidRequest(problems=problems)

    def _store(self, settled: TaskSpec) -> Task:
        """Insert a prepared request, its continuation and dependencies resolved (in the
        caller's transaction)."""
        settled = self._with_continuation(settled)
        settled, status, error = self._with_dependencies(settled)
        return self.repo.insert(settled, cwd=settled.cwd, status=status, error=error)

    def _continued(self, ref: str) -> Task:
        """The task a request continues, or InvalidRequest naming ``continue_from``."""
        try:
            return self.repo.resolve(ref)
        except UnknownTask as exc:
            raise InvalidRequest(problems={"continue_from": str(exc)}) from None

    def _where_continued(self, spec: TaskSpec) -> TaskSpec:
        """A continuation's defaults, from the task it continues: its directory and
        worktree choice (a conversation is found only where it ran), and the ``run``
        policy: continuing a failed task is how its work is picked up again."""
        if not spec.continue_from:
            return spec
        parent = self._continued(spec.continue_from)
        return replace(
            spec,
            cwd=parent.cwd if spec.cwd in (".", "") else spec.cwd,
            worktree=parent.worktree if spec.worktree is None else spec.worktree,
            on_dependency_failure=spec.on_dependency_failure or DependencyPolicy.RUN,
        )

    def _with_continuation(self, spec: TaskSpec) -> TaskSpec:
        """``continue_from`` as a full id, and added to the dependencies: the continued
        task must have ended before its conversation can go on. Its session is looked up
        when this task starts (see dispatch), since the continued task may not have one yet.
        """
        if not spec.continue_from:
            return spec
        parent = self._continued(spec.continue_from)
        problems: dict[str, str] = {}
        where = (f"task {parent.short_id}, whose conversation this task continues, ran "
                 f"{'in a worktree of' if parent.worktree else 'in'} {parent.cwd}: a "
                 "continuation runs where the conversation is")
        if spec.cwd != parent.cwd:
            problems["cwd"] = f"{where}; drop the working directory or give {parent.cwd}"
        if spec.worktree != parent.worktree:
            problems["worktree"] = f"{where}; drop the worktree choice"
        if problems:
            raise InvalidRequest(problems=problems)
        return replace(spec, continue_from=parent.id,
                       depends_on=tuple(dict.fromkeys((*spec.depends_on, parent.id))))

    def create_pipeline(self, prompts: list[str], template: TaskSpec, *,
                        continue_conversation: bool = False) -> tuple[str, list[Task]]:
        """Create a pipeline: one task per prompt, each depending on the one before (and,
        with ``continue_conversation``, continuing its conversation), all stored in one
        transaction or none. ``template`` gives every step's other options.

        A step's failure stops the rest: steps always use the ``fail`` policy.

        Raises:
            InvalidRequest: as :meth:`delegate`; problems of a step's prompt are keyed
                ``steps`` and name the step.
        """
        if not 1 <= len(prompts) <= MAX_PIPELINE_STEPS:
            raise InvalidRequest(problems={"steps": f"{len(prompts)} steps: a pipeline has "
                                           f"1 to {MAX_PIPELINE_STEPS}"})
        template = replace(template, depends_on=(), continue_from=None,
                           on_dependency_failure=DependencyPolicy.FAIL)
        steps = self._prepare_steps(prompts, template)
        pipeline_id = "pipe-" + secrets.token_hex(6)
        tasks: list[Task] = []
        with self.repo.transaction():
            for number, step in enumerate(steps, 1):
                before = tasks[-1].id if tasks else None
                tasks.append(self._store(replace(
                    step, pipeline_id=pipeline_id, pipeline_step=number,
                    depends_on=(before,) if before else (),
                    continue_from=before if continue_conversation else None)))
        self._notify()
        return pipeline_id, tasks

    def _prepare_steps(self, prompts: list[str], template: TaskSpec) -> list[TaskSpec]:
        """Each step's request checked; every wrong prompt reported at once, by step, with
        the wrong shared options (the same for every step, so named once)."""
        prepared: list[TaskSpec] = []
        wrong_steps: list[str] = []
        shared: InvalidRequest | None = None
        for number, prompt in enumerate(prompts, 1):
            try:
                prepared.append(self.prepare(replace(template, prompt=prompt)))
            except InvalidRequest as exc:
                problems = dict(exc.problems)
                if "prompt" in problems:
                    wrong_steps.append(f"step {number}: {problems.pop('prompt')}")
                if shared is None and (problems or not exc.problems):
                    shared = InvalidRequest("" if problems else exc.message, problems=problems,
                                            exit_status=exc.exit_status)
        if shared is not None and not shared.problems:
            raise shared  # refused for a reason no option owns (no agent binary)
        if shared is not None or wrong_steps:
            problems = dict(shared.problems) if shared is not None else {}
            if wrong_steps:
                problems["steps"] = "; ".join(wrong_steps)
            raise InvalidRequest(problems=problems)
        return prepared

    def pipeline(self, ref: str) -> tuple[str, list[Task]]:
        """A pipeline's id and its steps in order; ``ref`` is its id (or a unique prefix of
        it) or any step's task id.

        Raises:
            UnknownTask: no such pipeline, or the task is not a step of one.
        """
        pipeline_id = self.repo.resolve_pipeline(ref)
        return pipeline_id, self.repo.pipeline_steps(pipeline_id)

    def cancel_pipeline(self, ref: str, reason: str | None = None) -> tuple[str, list[Task]]:
        """Cancel every unfinished step of a pipeline at once (a running one is stopped).

        Raises:
            UnknownTask: as :meth:`pipeline`.
            InvalidTransition: every step has ended already.
        """
        with self.repo.transaction():
            pipeline_id, steps = self.pipeline(ref)
            open_steps = [step for step in steps if not step.status.is_terminal]
            if not open_steps:
                raise InvalidTransition(f"pipeline {pipeline_id} has ended (all {len(steps)} "
                                        "steps finished): nothing to cancel")
            why = reason or f"pipeline {pipeline_id} cancelled by user"
            for step in open_steps:
                self.repo.request_cancel(step.id, why)
            steps = self.repo.pipeline_steps(pipeline_id)
        self._notify()
        return pipeline_id, steps

    def prepare(self, spec: TaskSpec) -> TaskSpec:
        """The request checked and its task-scoped settings fixed from this process, as
        :meth:`delegate` stores it (a schedule keeps such a template for its tasks).

        Raises:
            InvalidRequest: as :meth:`delegate`.
        """
        checked = check_spec(spec, default_worktree=self.config.default_worktree,
                             dependency_policy=self.config.on_dependency_failure)
        return self._with_task_settings(checked)

    def _with_dependencies(self, spec: TaskSpec) -> tuple[TaskSpec, TaskState, str | None]:
        """The dependencies as full ids, and the state the task starts in: queued, blocked,
        or (a dependency already failed) what its policy says, at once."""
        if not spec.depends_on:
            return spec, TaskState.QUEUED, None
        ids: list[str] = []
        unknown: list[str] = []
        for ref in spec.depends_on:
            try:
                ids.append(self.repo.resolve(ref).id)
            except UnknownTask as exc:
                unknown.append(str(exc))
        if unknown:
            raise InvalidRequest(problems={"depends_on": "; ".join(unknown)})
        spec = replace(spec, depends_on=tuple(dict.fromkeys(ids)))
        from claudine_core.dependencies import decide, dependency_states

        state, reason = decide(spec.on_dependency_failure,
                               dependency_states(self.repo, spec.depends_on))
        return spec, state or TaskState.BLOCKED, reason

    def _with_task_settings(self, spec: TaskSpec) -> TaskSpec:
        """Fix the task-scoped agent settings now, from this (the delegating) process.

        Whichever owner runs the task later (a console started hours ago, a background
        owner another shell started with other settings) runs it as asked here: the
        agent binary, resolved now so a wrong one is refused at once, its extra
        arguments, and the agent-facing environment variables.
        """
        if spec.claude_bin is not None:
            return spec  # a retry or resume keeps the settings of the task it repeats
        if (spec.fallback_model is None and self.config.fallback_model
                and self.config.fallback_model != spec.model):
            # The setting names no fallback for a task that asks for that very model.
            spec = replace(spec, fallback_model=self.config.fallback_model)
        try:
            binary = resolve_executable(self.config.claude_bin, self.env)
        except AgentNotFound as exc:  # the machine's problem, not the request's
            raise InvalidRequest(str(exc), exit_status=EXIT_FAILED) from None
        return replace(
            spec,
            claude_bin=binary,
            agent_args=self.config.extra_agent_args,
            agent_env=agent_facing_env(self.env),
        )

    def cancel(self, ref: str, reason: str | None = None) -> Task:
        task = self.repo.request_cancel(self.repo.resolve(ref).id, reason)
        self._notify()
        return task

    def set_priority(self, ref: str, priority: Priority | str) -> Task:
        task = self.repo.set_priority(self.repo.resolve(ref).id, Priority.parse(priority))
        self._notify()
        return task

    def retry(self, ref: str) -> Task:
        """Queue a fresh run of a finished task as a new task (the old one stays as it was)."""
        old = self.repo.resolve(ref)
        if old.status not in TERMINAL_STATES:
            raise InvalidTransition(
                f"task {old.short_id} is {old.status.value}: only a finished task can be retried"
            )
        return self.delegate(spec_from_task(old, parent_id=old.id))

    def resume(self, ref: str, additional_context: str | None = None) -> Task:
        """Continue a finished task's agent session (``claude --resume``) as a new task."""
        old = self.repo.resolve(ref)
        if old.status not in TERMINAL_STATES:
            raise InvalidTransition(
                f"task {old.short_id} is {old.status.value}: only a finished task can be resumed"
            )
        if not old.session_id:
            raise InvalidTransition(
                f"task {old.short_id} has no agent session to resume (its agent never "
                "started a session); use retry instead"
            )
        follow_up = (additional_context or "").strip() or "Continue the task."
        # A resume goes on in the task's own session, even for a continuation (which
        # forked its session from another task's): no continue_from, so no new fork.
        spec = spec_from_task(old, parent_id=old.id, resume_session_id=old.session_id,
                              resume_prompt=follow_up, continue_from=None)
        return self.delegate(spec)

    # -- usage limits and budgets -------------------------------------------------------

    def release(self, ref: str) -> Task:
        """A parked task goes on now (before the queue, even while the home is paused)."""
        from claudine_core.usage_limits import release_by_hand

        task = release_by_hand(self.repo, self.repo.resolve(ref), self.clock())
        self._notify()
        return task

    def release_all(self) -> list[str]:
        """Lift the home's usage-limit pause and release every parked task; their ids."""
        from claudine_core.usage_limits import release_all

        released = release_all(self.repo, self.clock())
        self._notify()
        return released

    def usage_pause(self) -> HomePause | None:
        """The home's pause after a usage limit, if any (it may have just expired)."""
        from claudine_core.usage_limits import read_pause

        return read_pause(self.repo)

    @functools.cached_property
    def ledger(self) -> SpendLedger:
        """What each attempt spent, as its agent reported it."""
        from claudine_core.spending import SpendLedger

        def count_write() -> None:
            self.repo.writes += 1

        return SpendLedger(self.db, count_write)

    def budget(self, now: float | None = None) -> Budget:
        """Today's and this month's spending against the budgets of this process's
        settings."""
        return self.ledger.budget(self.clock() if now is None else now,
                                  self.config.daily_budget_usd, self.config.monthly_budget_usd)

    def costs(self, days: int = 30) -> CostReport:
        """What the agents spent over the last ``days`` days, per day and directory."""
        from claudine_core.spending import cost_report

        if days < 1:
            raise InvalidRequest(f"--days must be at least 1, not {days}")
        return cost_report(self.ledger, self.budget(), days)

    def send_message(self, ref: str, text: str) -> Message:
        """Send ``text`` to the task's agent: to its next turn if it runs, as a resume if it
        has finished (see claudine_core.messages for the rules and the guarantees)."""
        message = self.messages.send(self.repo.resolve(ref), text)
        self._notify()
        return message

    def task_messages(self, ref: str) -> list[Message]:
        """The messages sent to a task, oldest first, with their delivery."""
        return self.messages.for_task(self.repo.resolve(ref).id)

    @functools.cached_property
    def messages(self) -> Messages:
        from claudine_core.run_dirs import run_dir_for

        def count_write() -> None:
            self.repo.writes += 1

        return Messages(
            MessageRepo(self.db, count_write),
            resume=lambda task_id, text: self.resume(task_id, text),
            run_dir=lambda task_id, attempt: run_dir_for(self.config.runs_dir, task_id, attempt),
        )

    # -- queries -----------------------------------------------------------------------------

    def get(self, ref: str) -> Task:
        return self.repo.resolve(ref)

    def list_tasks(
        self,
        statuses: Iterable[TaskState] | None = None,
        *,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[Task]:
        return self.repo.list_tasks(statuses=statuses, limit=limit, offset=offset)

    def read_events(
        self, task_id: str, offset: int = 0, max_bytes: int | None = None
    ) -> tuple[list[StreamEvent], int]:
        """Stream events of the task's latest attempt from a byte offset (any process)."""
        # The stream parser and the supervisor's helpers are imported where they are used,
        # so a CLI status or delegate does not load them (issue 9).
        from claudine_core.agents.run_log import read_events
        from claudine_core.run_dirs import latest_run_dir

        run_dir = latest_run_dir(self.config.runs_dir, task_id)
        if run_dir is None:
            return [], offset
        return read_events(run_dir / "stdout.jsonl", offset, max_bytes)

    def attempt_dirs(self, task_id: str) -> list[Path]:
        """The run folders of every attempt that started, oldest first."""
        from claudine_core.run_dirs import attempt_dirs

        return attempt_dirs(self.config.runs_dir, task_id)

    def output_path(self, task_id: str, name: str = "stdout.jsonl") -> Path | None:
        from claudine_core.run_dirs import latest_run_dir

        run_dir = latest_run_dir(self.config.runs_dir, task_id)
        return None if run_dir is None else run_dir / name

    def agent_has_ended(self, task: Task) -> bool:
        """Whether the store says ``running`` but the task's agent is gone.

        Only an owner records how an agent ended; until one does (it takes over within a
        second, see the hand-over), front ends must not show such a task as working:
        they say its agent has ended and the outcome is not recorded yet.
        """
        if task.status is not TaskState.RUNNING:
            return False
        from claudine_core.run_dirs import run_dir_for
        from claudine_core.supervisor import process_matches

        run_dir = run_dir_for(self.config.runs_dir, task.id, max(task.attempt, 1))
        if (run_dir / "exit.json").exists():
            return True
        if task.pid is None:
            return False  # being prepared or just starting: nothing to look at yet
        if task.node is not None:
            return False  # its pid is on another machine: the owner's copy says when it ends
        return not process_matches(task.pid, task.pid_started_at)

    def stderr_tail(self, task_id: str, max_bytes: int = 4096) -> str:
        path = self.output_path(task_id, "stderr.log")
        return read_tail(path, max_bytes) if path else ""

    def _notify(self) -> None:
        if self.on_command is not None:
            self.on_command()

    # -- what front ends ask of the store (they never import it) ------------------------------

    def queue_position(self, task: Task) -> int | None:
        """1-based place of a queued task in the run order; None unless it is queued."""
        return self.repo.queue_position(task)

    def count_by_status(self) -> dict[TaskState, int]:
        """How many tasks there are in each state (states with none are left out)."""
        return self.repo.count_by_status()

    def has_unfinished_tasks(self) -> bool:
        """Whether any task is queued, blocked or running: work an owner must act on."""
        counts = self.repo.count_by_status()
        return any(counts.get(state) for state in ACTIVE_STATES)

    def waiting_reason(self, task: Task | None = None) -> str | None:
        """Why ``task`` (default: the queue's next task) has not started; None: no wait.

        A blocked task waits for its dependencies. Otherwise, without a published decision
        of the running owner this takes a resource reading, which blocks for a moment (see
        :mod:`claudine_core.waiting`).
        """
        from claudine_core.waiting import queue_waiting_reason, task_waiting_reason

        if task is None:
            return queue_waiting_reason(self.config, self.repo)
        return task_waiting_reason(self.config, self.repo, task)

    @functools.cached_property
    def schedules(self) -> ScheduleService:
        """The schedules of this home (create, list, pause, resume, cancel, fire)."""
        from claudine_core.schedules.service import ScheduleService

        return ScheduleService(self.config, self.repo, prepare=self.prepare,
                               delegate=self.delegate)

    def worktrees(self) -> Worktrees:
        """The review actions on worktree tasks (diff, merge, patch, PR, discard, clean),
        recording their outcomes in this store. Imported on use: git is slow to load."""
        from claudine_core.isolation.worktrees import Worktrees

        return Worktrees(self.config, self.repo)


def _references(raw: object) -> list[str]:
    """Task references as a front end gave them: a list, or text separated by commas or
    spaces (the console form); anything else has no reference to look up."""
    if isinstance(raw, str):
        return raw.replace(",", " ").split()
    if isinstance(raw, (list, tuple)):
        return [ref for ref in raw if isinstance(ref, str) and ref.strip()]
    return []


def agent_facing_env(env: Mapping[str, str]) -> dict[str, str]:
    """The variables of ``env`` that shape how the agent runs (see AGENT_ENV_PREFIXES)."""
    return {
        name: value for name, value in env.items()
        if (name.startswith(AGENT_ENV_PREFIXES) or name in AGENT_ENV_NAMES)
        and name not in NESTED_SESSION_VARIABLES
    }


def read_tail(path: Path, max_bytes: int) -> str:
    try:
        with open(path, "rb") as source:
            size = source.seek(0, os.SEEK_END)
            source.seek(max(0, size - max_bytes))
            return source.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return ""
