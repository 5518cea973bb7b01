"""How an agent run ended, in words, and whether trying again could help.

A pure function of what the wrapper recorded, what the stream said and why the engine
stopped the agent (if it did), so every ending is decided in one tested place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from claudine_core.agents.claude import ROOT_REFUSAL_MARKER, explain_failure, usage_error
from claudine_core.agents.stream_events import AgentResult
from claudine_core.models import TaskState
from claudine_core.usage_limits import LimitHit

# API statuses worth another attempt: rate limits, overload and server errors.
TRANSIENT_API_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504, 529})


@dataclass(frozen=True)
class Outcome:
    state: TaskState
    error: str | None
    transient: bool = False  # a retry may succeed
    exit_code: int | None = None
    limit: LimitHit | None = None  # PARKED: the usage limit that stopped the run

BUDGET_SUBTYPE = "error_max_budget_usd"
"""The result subtype of a run its own --max-budget-usd stopped."""


def classify(
    *,
    exit_record: dict[str, Any] | None,
    result: AgentResult | None,
    stop_state: TaskState | None,
    stop_reason: str | None,
    stderr_tail: str,
    limit: LimitHit | None = None,
    lost_reason: str | None = None,
) -> Outcome:
    """Decide the final state of one run.

    Args:
        exit_record: the wrapper's ``exit.json``; None when the wrapper died without one
            (killed by SIGKILL, by the engine or by someone else).
        result: the stream's final ``result`` event, if the agent printed one.
        stop_state: CANCELLED or FAILED when the engine stopped the agent on purpose.
        stop_reason: why it did (the user's reason, or the timeout).
        stderr_tail: the end of the agent's stderr, for the reason text.
        limit: the usage or rate limit the stream says ended the run: the task is
            parked, not failed (claudine_core.usage_limits).
        lost_reason: why the execution backend lost a run on another node (its node
            died or stopped answering), when it did.
    """
    exit_code = None if exit_record is None else exit_record.get("exit_code")
    signal_number = None if exit_record is None else exit_record.get("signal")
    if stop_state is not None:
        return Outcome(stop_state, stop_reason, exit_code=exit_code)
    if limit is not None:
        return Outcome(TaskState.PARKED, limit.describe(), exit_code=exit_code, limit=limit)
    if exit_record is None and lost_reason is not None:
        return Outcome(
            TaskState.FAILED,
            f"the agent's run was lost, nothing recorded how it ended: {lost_reason}",
            transient=True,
        )
    if exit_record is None:
        return Outcome(
            TaskState.FAILED,
            "the agent process disappeared without recording an exit (killed with SIGKILL "
            "or the machine restarted)",
            transient=True,
        )
    if exit_record.get("spawn_error"):
        return Outcome(
            TaskState.FAILED, f"could not start the agent: {exit_record['spawn_error']}"
        )
    if exit_record.get("git_error"):
        # The agent worked on another node and its work is not in the task's worktree:
        # never "completed" (the merge step would report it changed nothing).
        return Outcome(TaskState.FAILED, f"{exit_record['git_error']} (the agent exited "
                       f"with code {exit_code})", exit_code=exit_code)
    if exit_code == 0 and result is not None and not result.is_error:
        return Outcome(TaskState.COMPLETED, None, exit_code=0)
    if result is not None and result.is_error:
        return _api_failure(result, exit_code)
    if result is None and exit_record.get("unstored_bytes"):
        # The final result may be among what the wrapper could not write down.
        return Outcome(
            TaskState.FAILED,
            f"the agent's output could not be stored ({exit_record.get('storage_error')}; "
            f"{exit_record['unstored_bytes']} bytes lost), so its final result is unknown; "
            f"it exited with code {exit_code}",
            exit_code=exit_code,
        )
    if ROOT_REFUSAL_MARKER in stderr_tail:
        return Outcome(
            TaskState.FAILED, explain_failure(exit_code, None, stderr_tail), exit_code=exit_code
        )
    refused = usage_error(stderr_tail) if exit_code else None
    if refused:
        # The same command line is refused the same way every time: never worth a retry.
        return Outcome(
            TaskState.FAILED,
            f"the agent refused its command line: {refused} (check the task's model and "
            "options and the extra_agent_args setting)",
            exit_code=exit_code,
        )
    return Outcome(
        TaskState.FAILED,
        explain_failure(exit_code, signal_number, stderr_tail),
        transient=True,
        exit_code=exit_code,
    )


def _api_failure(result: AgentResult, exit_code: int | None) -> Outcome:
    if result.subtype == BUDGET_SUBTYPE:
        spent = f"${result.total_cost_usd:.4f}" if result.total_cost_usd is not None else "?"
        # The same budget stops the same work again: never worth a retry.
        return Outcome(TaskState.FAILED, f"stopped by its budget (max_budget_usd): the agent "
                       f"had spent {spent}", exit_code=exit_code)
    status = result.api_error_status
    text = (result.result or "").strip().splitlines()
    detail = text[0][:300] if text else "no detail"
    label = f"API error {status}" if status else "the agent reported an error"
    transient = status in TRANSIENT_API_STATUSES if status else False
    return Outcome(TaskState.FAILED, f"{label}: {detail}", transient=transient, exit_code=exit_code)


def retry_delay(attempt: int, *, base_s: float, cap_s: float) -> float:
    """Exponential back-off: base, 2×base, 4×base, … capped."""
    return float(min(cap_s, base_s * (2 ** max(0, attempt - 1))))
