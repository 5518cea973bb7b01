"""Continuing a finished task's conversation (``continue_from``), and the end state that
makes it possible when there is no conversation to continue.

When a task ends, :func:`git_end_state` records what its directory looks like (branch,
commit, changed files) in ``task.end_state``. When a continuation is claimed,
:func:`plan_continuation` decides how it goes on:

- the continued task has an agent session: ``claude --resume <it> --fork-session`` in the
  same directory (``claude`` finds a session only from the directory it ran in), so the
  continued task's own session stays as it ended;
- it has none (it failed, or was cancelled, before its agent started one): the agent starts
  afresh with a short block saying what the continued task left (its result, its error and
  its directory's git state), followed by the prompt.

A worktree task's continuation runs in the continued task's worktree. If that worktree has
been removed since (its branch merged or exported, or discarded), a conversation is
continued in a worktree re-created at the same path, on the continued task's branch if it
still exists or else a new one from the base branch (the worktree hook does this, as for
ResumeTask); without a conversation the continuation gets a worktree of its own.
"""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path
from typing import Any

from claudine_core.errors import UnknownTask
from claudine_core.models import Task

log = logging.getLogger("claudine.engine")

MAX_CHANGED_FILES = 50
"""Changed files an end state lists (``changed_count`` has them all)."""
GIT_TIMEOUT_S = 5.0
"""At most this long for ``git status`` when a task ends: a huge tree must not hold up the
owner's loop, and a task's end never waits on git for longer."""
MAX_CONTEXT_CHARS = 4_000  # of the continued task's result or error, in the context block


# -- the end state -----------------------------------------------------------------------------


def end_state_directory(task: Task) -> str:
    """Where the task's agent worked: its worktree while it exists, else its directory."""
    if task.worktree_path and Path(task.worktree_path).is_dir():
        return task.worktree_path
    return task.cwd


def git_end_state(directory: str) -> dict[str, Any] | None:
    """``directory``'s git state: the directory, its branch (None when detached), commit
    (None before the first), up to :data:`MAX_CHANGED_FILES` changed files (paths from the
    repository's top) and their count. None when it is not in a git repository or git
    fails or is too slow: recording an end state never fails the end of a task."""
    try:
        done = subprocess.run(
            ["git", "--no-optional-locks", "status", "--porcelain=v2", "--branch", "-z"],
            cwd=directory, capture_output=True, timeout=GIT_TIMEOUT_S, check=False,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.warning("end state of %s not recorded: %s", directory, exc)
        return None
    if done.returncode != 0:  # not a repository (128), or a broken one
        return None
    return {"directory": directory, **_parse_status(done.stdout.decode("utf-8", "replace"))}


def _parse_status(output: str) -> dict[str, Any]:
    branch: str | None = None
    commit: str | None = None
    changed: list[str] = []
    records = iter(output.split("\0"))
    for record in records:
        if record.startswith("# branch.oid "):
            oid = record.removeprefix("# branch.oid ")
            commit = None if oid == "(initial)" else oid
        elif record.startswith("# branch.head "):
            head = record.removeprefix("# branch.head ")
            branch = None if head == "(detached)" else head
        elif record[:2] in ("1 ", "2 ", "u ", "? "):
            fields_before_path = {"1": 8, "2": 9, "u": 10, "?": 1}[record[0]]
            changed.append(record.split(" ", fields_before_path)[-1])
            if record[0] == "2":
                next(records, None)  # a rename's original path follows as a record
    return {"branch": branch, "commit": commit, "changed_files": changed[:MAX_CHANGED_FILES],
            "changed_count": len(changed)}


# -- at the start of a continuation --------------------------------------------------------------


def plan_continuation(repo: Any, task: Task) -> dict[str, Any]:
    """The fields to set on a claimed continuation before its agent starts (see the module
    docstring): the session it resumes, or the context block it starts with, and the
    continued task's worktree to work in."""
    try:
        parent: Task | None = repo.get(task.continue_from)
    except UnknownTask:
        parent = None
    changes: dict[str, Any] = {}
    worktree_gone = bool(parent and parent.worktree_path
                         and not Path(parent.worktree_path).is_dir())
    if task.worktree and parent is not None and parent.worktree_path and not worktree_gone:
        changes.update(worktree_path=parent.worktree_path, branch=parent.branch,
                       base_branch=task.base_branch or parent.base_branch)
    if parent is not None and parent.session_id:
        changes.update(resume_session_id=parent.session_id, resume_prompt=None)
        if task.parent_id is None:
            changes["parent_id"] = parent.id  # the worktree hook re-creates its worktree
        if worktree_gone:
            log.info("task %s continues %s, whose worktree %s was removed: re-creating it "
                     "at the same path to continue the conversation", task.id, parent.id,
                     parent.worktree_path)
        return changes
    changes.update(resume_session_id=None,
                   resume_prompt=context_block(task, parent, worktree_gone=worktree_gone))
    log.info("task %s continues %s, which has no agent session: starting afresh with what "
             "it left", task.id, task.continue_from)
    return changes


def context_block(task: Task, parent: Task | None, *, worktree_gone: bool = False) -> str:
    """What a continuation is told when there is no conversation to resume, then its
    prompt."""
    ref = parent.short_id if parent else str(task.continue_from)
    if parent is None:
        lines = [f"This task continues task {ref}, which no longer exists, so nothing of "
                 "its work can be shown here."]
    else:
        how = parent.status.value
        lines = [f"This task continues task {ref}, which ended {how} without an agent "
                 "conversation to resume. What it left:",
                 f"- its prompt: {_cut(parent.prompt)}"]
        if parent.error:
            lines.append(f"- its error: {_cut(parent.error)}")
        if parent.result:
            lines.append(f"- its final result: {_cut(parent.result)}")
        lines.append(f"- {describe_end_state(parent)}")
        if worktree_gone:
            lines.append(f"- its worktree {parent.worktree_path} has been removed since; "
                         "this task works in a worktree of its own")
    lines += ["", "Your task:", task.prompt]
    return "\n".join(lines)


def describe_end_state(task: Task) -> str:
    """A task's end state in words, for the context block."""
    state = task.end_state
    where = (state or {}).get("directory") or task.worktree_path or task.cwd
    if not state:
        return (f"its directory {where}: no git state recorded (not a git repository, or "
                "it never ran)")
    branch = state.get("branch") or "a detached HEAD"
    commit = (state.get("commit") or "")[:12] or "no commit yet"
    files = list(state.get("changed_files") or [])
    count = int(state.get("changed_count") or len(files))
    changed = "no uncommitted changes" if not count else (
        f"{count} changed file{'s' if count != 1 else ''}: " + ", ".join(files)
        + (f" and {count - len(files)} more" if count > len(files) else ""))
    return f"its directory {where}: branch {branch} at commit {commit}, {changed}"


def _cut(text: str) -> str:
    flat = text.strip()
    return flat if len(flat) <= MAX_CONTEXT_CHARS else flat[:MAX_CONTEXT_CHARS] + "…"
