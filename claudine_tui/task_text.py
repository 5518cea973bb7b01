"""Plain-text descriptions of tasks that the CLI and the console both show.

A neutral module: it imports neither the CLI modules nor any widget or screen, so a
screen can describe a task without importing the CLI (and the CLI without Textual).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from claudine_core.models import Task

# One vocabulary for the CLI and the console (the console adds colour to the same glyphs).
STATUS_GLYPHS = {
    "running": "●",
    "queued": "◌",
    "blocked": "⏸",
    "parked": "◷",  # a usage limit stopped it; it goes on at the reset
    "completed": "✔",
    "failed": "✘",
    "cancelled": "⊘",
}

ENDED_UNRECORDED = ("its agent has ended; the outcome is not recorded yet (an owner "
                    "records it as soon as one runs)")


def format_elapsed(seconds: float | None) -> str:
    """``9s``, ``3m05s``, ``2h07m``; empty when unknown."""
    if seconds is None:
        return ""
    whole = max(0, int(seconds))
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


def format_money(usd: float) -> str:
    """Dollars to the cent (``$0.42``); under a cent, 2 significant digits (``$0.0085``),
    never the float's noise (``0.008490000000000001``)."""
    if usd == 0 or abs(usd) >= 0.01:
        return f"${usd:.2f}"
    return f"${usd:.2g}" if abs(usd) >= 0.0001 else "<$0.0001"


def format_seconds(seconds: float) -> str:
    """A duration for a person: ``27.1s`` under a minute, else as :func:`format_elapsed`."""
    return f"{seconds:.1f}s" if seconds < 60 else format_elapsed(seconds)


def clock_time(epoch: float, now: float) -> str:
    """``14:05`` on the day of ``now``, else ``Tue 14:05`` (local time), as the engine's
    pause says it."""
    moment = datetime.fromtimestamp(epoch)
    same_day = moment.date() == datetime.fromtimestamp(now).date()
    return moment.strftime("%H:%M" if same_day else "%a %H:%M")


def parked_text(task: Task, now: float) -> str:
    """A parked task at a glance: ``until 14:05 · usage limit reached (five-hour)``."""
    until = f"until {clock_time(task.parked_until, now)}" if task.parked_until else "parked"
    # The engine words the error "<what hit the limit>; continues at <ISO time>".
    reason = (task.error or "").split(";", 1)[0].strip()
    return f"{until} · {reason}" if reason else until


def task_details(task: Task, queue_position: int | None,
                 waiting_reason: str | None = None, *, agent_ended: bool = False) -> str:
    data = task.to_json()
    lines = [f"{task.id}  {STATUS_GLYPHS.get(task.status.value, '')} {task.status.value}"
             + (f": {ENDED_UNRECORDED}" if agent_ended else "")]
    if queue_position is not None:
        lines.append(f"  queue position: {queue_position}")
    if waiting_reason:
        lines.append(f"  {'waiting:':15} {waiting_reason}")
    order = [
        "priority", "prompt", "resume_prompt", "cwd", "model", "created_at", "started_at",
        "ended_at", "duration", "timeout_s", "attempt", "exit_code", "error", "cancel_reason",
        "parked_until", "parks", "resuming", "session_id", "num_turns", "cost_usd",
        "max_budget_usd", "fallback_model", "pid",
        "last_activity", "result", "parent_id", "depends_on", "on_dependency_failure",
        "continue_from", "schedule_id", "pipeline_id", "pipeline_step", "branch",
        "worktree_path", "merge", "end_state",
    ]
    for entry in task.attempts[:-1] if task.status.is_terminal else task.attempts:
        # Earlier attempts' outcomes: a retry that succeeded keeps why the others failed.
        lines.append(f"  {'attempt ' + str(entry.get('attempt')) + ':':15} "
                     f"{entry.get('state')}" + (f": {entry['error']}" if entry.get("error")
                                                else ""))
    if task.started_at is not None and task.ended_at is not None:
        data["duration"] = format_seconds(task.ended_at - task.started_at)
    for key in order:
        value = data.get(key)
        if value in (None, "", 0) and key not in ("priority",):
            continue
        if key in ("cost_usd", "max_budget_usd") and isinstance(value, (int, float)):
            value = format_money(value)
        elif key == "timeout_s" and isinstance(value, (int, float)):
            value = format_seconds(value)
        elif key == "resuming":
            value = "yes: released from a usage-limit park, it starts before the queue"
        elif key == "end_state" and isinstance(value, dict):
            value = describe_end_state(value)
        elif isinstance(value, dict):
            value = json.dumps(value)
        elif isinstance(value, list):
            value = ", ".join(map(str, value))
            if not value:
                continue
        text = str(value)
        if key in ("prompt", "resume_prompt", "result") and len(text) > 400:
            text = text[:400] + "…"
        lines.append(f"  {key + ':':15} {text}")
    return "\n".join(lines)


def describe_merge(outcome: dict[str, Any] | None) -> str:
    """One line for a stored merge outcome (``claudine worktrees``, the diff screen)."""
    if not outcome:
        return "-"
    status = outcome.get("status", "?")
    detail = (outcome.get("commit") or outcome.get("patch") or outcome.get("pr_url")
              or outcome.get("reason") or "")
    if status == "merged" and detail:
        detail = f"{detail[:12]} into {outcome.get('base', '?')}"
    return f"{status} ({outcome.get('strategy', '?')})" + (f": {detail}" if detail else "")


def describe_end_state(state: dict[str, Any]) -> str:
    """What a finished task left in its directory, in one line: ``branch main @
    1a2b3c4d5e6f, 3 changed files`` (a task continuing from it starts there)."""
    parts = []
    branch, commit = state.get("branch"), state.get("commit")
    if branch or commit:
        parts.append(f"branch {branch}" if branch else "detached HEAD")
        parts[-1] += f" @ {str(commit)[:12]}" if commit else " (no commit yet)"
    # changed_files is capped (continuation.MAX_CHANGED_FILES); changed_count is the count.
    count = state.get("changed_count")
    if not isinstance(count, int) and isinstance(state.get("changed_files"), list):
        count = len(state["changed_files"])
    if isinstance(count, int):
        parts.append(f"{count} changed file{'' if count == 1 else 's'}")
    return ", ".join(parts) or json.dumps(state)
