"""The errors of worktree isolation: a worktree that cannot be made or acted on, and a
``.claudine.toml`` that cannot be used.

Here, not beside the code that raises them, so that reading the settings (at delegate time)
never loads gitpython, and every module of the package can raise them without a cycle.
"""

from __future__ import annotations

from pathlib import Path

from claudine_core.errors import EXIT_USAGE, ClaudineError

__all__ = ["RepoSettingsError", "UnsafeToDiscard", "WorktreeError"]


class WorktreeError(ClaudineError, RuntimeError):
    """A worktree could not be created or acted on; the message says why and what to do.

    ``RuntimeError`` stays a base so code that caught it before :class:`ClaudineError`
    existed still does.
    """


class UnsafeToDiscard(WorktreeError):
    """Discarding would lose work: ``problem`` says which (uncommitted changes, commits
    neither in the base nor pushed). Each front end says how to insist: ``--force`` on the
    command line, "Discard anyway" in the console."""

    def __init__(self, problem: str) -> None:
        super().__init__(f"not discarded: {problem} (use force to discard it)")
        self.problem = problem


class RepoSettingsError(WorktreeError):
    """A repository's ``.claudine.toml`` is unreadable, or a key in it is wrong.

    ``path`` is the file and ``key`` the wrong key (``"worktree.commit"``; empty when the
    whole file is at fault), so a front end can point at it. Exit status 2, as for a wrong
    setting in config.toml: the user's own file needs changing.
    """

    exit_status = EXIT_USAGE

    def __init__(self, message: str, *, path: Path, key: str = "") -> None:
        super().__init__(message)
        self.path = path
        self.key = key
