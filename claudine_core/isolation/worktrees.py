"""A git worktree per task: the engine's hooks that make it and bring its branch back.

Worktrees live under ``<home>/worktrees/<task-id>``: outside the user's repository (no stray
folders next to it, nothing for their tools to index), private to the home, and cleaned up in
one place. The branch is ``claudine/<short-id>-<slug-of-prompt>``. The engine calls
``prepare(task)`` after claiming a task (returns the agent's cwd, raises WorktreeError with
the reason) and ``finish(task)`` once it is terminal; the merge step then runs on a worker
thread and stores its outcome in ``task.merge``. Front ends call the review actions
:class:`Worktrees` inherits from :class:`~claudine_core.isolation.review.Review`.

The names other packages import are all importable from here (see the package docstring
for which module does what).
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import git

from claudine_core.config import Config
from claudine_core.faults import crash_point
from claudine_core.isolation import gitops
from claudine_core.isolation.errors import RepoSettingsError, UnsafeToDiscard, WorktreeError
from claudine_core.isolation.gitops import (
    branch_name,
    describe_error,
    open_repo,
    private_dir,
    repo_lock,
    slugify,
)
from claudine_core.isolation.review import Review
from claudine_core.isolation.settings import SETTINGS_FILE, RepoSettings, load_settings
from claudine_core.models import Task, TaskState
from claudine_core.run_dirs import run_dir_for

if TYPE_CHECKING:
    from claudine_core.store.repo import TaskRepo

__all__ = [
    "LOG_NAME",
    "SETTINGS_FILE",
    "RepoSettings",
    "RepoSettingsError",
    "UnsafeToDiscard",
    "WorktreeError",
    "Worktrees",
    "default_hooks",
    "load_settings",
    "slugify",
]

log = logging.getLogger("claudine.worktrees")
LOG_NAME = "worktree.log"


class Worktrees(Review):
    """Engine hooks (prepare, finish, close) plus the review actions of :class:`Review`."""

    def __init__(self, config: Config, repo: TaskRepo) -> None:
        super().__init__(config, repo)
        self._pool: ThreadPoolExecutor | None = None

    @property
    def root(self) -> Path:
        return self.config.home / "worktrees"

    def needs_prepare(self, task: Task) -> bool:
        # Decided when the task was delegated (yes, no, or that process's default).
        return task.worktree

    def close(self) -> None:
        """Wait for running merge steps; queued ones stay ``pending`` for the next owner."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def prepare(self, task: Task) -> str | None:
        """Create (or, on a retry, reuse) the task's worktree; the agent's cwd in it."""
        if not self.needs_prepare(task):
            return None
        try:
            return self._prepare(task)
        except WorktreeError:
            raise
        except Exception as exc:  # git failures, disk errors: the task fails with the reason
            raise WorktreeError("could not create the task's worktree: "
                                f"{describe_error(exc)}") from exc

    def _prepare(self, task: Task) -> str:
        cwd = Path(task.cwd)
        repo = open_repo(cwd)
        if repo.bare or repo.working_tree_dir is None:
            raise WorktreeError(f"{cwd} is inside a bare repository: nothing to branch from")
        top = Path(repo.working_tree_dir).resolve()
        rel = cwd.resolve().relative_to(top)
        settings = load_settings(top)  # a wrong .claudine.toml fails before any worktree exists
        parent = self._resumed_parent(task)
        if task.worktree_path and task.branch and Path(task.worktree_path).is_dir():
            path, branch, created = Path(task.worktree_path), task.branch, False  # a retry
            base = task.base_branch or self._current_branch(repo, top)
        elif parent is not None:
            path, branch, base, created = self._reopen(repo, top, task, parent)
        else:
            base = task.base_branch or self._current_branch(repo, top)
            self._check_base(repo, top, base)
            branch = gitops.unique_branch(repo, branch_name(task))
            path = self.root / task.id
            private_dir(path.parent)
            with repo_lock(repo):
                repo.git.worktree("add", "--no-track", "-b", branch, str(path), base)
            path.chmod(0o700)  # git makes it with the umask; it lives in the private home
            created = True
        strategy = task.merge_strategy or self.config.default_merge_strategy
        self.store.transition(task.id, [TaskState.RUNNING], worktree=True, base_branch=base,
                              branch=branch, worktree_path=str(path), merge_strategy=strategy)
        if _is_ready(path):
            return _subdir(path, rel)
        logfile = run_dir_for(self.config.runs_dir, task.id, max(task.attempt, 1)) / LOG_NAME
        try:
            run_setup(settings, top, path, logfile)
        except Exception:
            if created:
                gitops.remove_worktree(repo, path, branch, force=True)
            raise
        _mark_ready(path)
        return _subdir(path, rel)

    @staticmethod
    def _check_base(repo: git.Repo, top: Path, base: str) -> None:
        if not repo.head.is_valid():
            raise WorktreeError(f"the repository {top} has no commits yet: commit something "
                                "first (a worktree starts from a commit)")
        if not gitops.branch_exists(repo, base):
            raise WorktreeError(f"base branch {base!r} does not exist in {top} (local "
                                "branches only: 'git branch --list' shows them)")

    def _resumed_parent(self, task: Task) -> Task | None:
        """The isolated task this one resumes: its agent session lives in that worktree."""
        if not (task.resume_session_id and task.parent_id):
            return None
        try:
            parent = self.store.get(task.parent_id)
        except LookupError:
            return None
        return parent if parent.worktree_path and parent.branch else None

    def _reopen(self, repo: git.Repo, top: Path, task: Task,
                parent: Task) -> tuple[Path, str, str, bool]:
        """The parent's worktree for a resumed task: ``(path, branch, base, created)``.

        ``claude --resume`` finds a session only from the directory it ran in, so the
        worktree must be at the parent's path: reused if it is still there, otherwise
        re-created on the parent's branch or, once that is gone (merged, exported), on a new
        branch from the base, which then holds the parent's work.
        """
        path = Path(parent.worktree_path or "")
        base = task.base_branch or parent.base_branch or self._current_branch(repo, top)
        if path.is_dir():
            return path, parent.branch or "", base, False
        with repo_lock(repo):
            gitops.prune_worktrees(repo)
            if gitops.branch_exists(repo, parent.branch):
                repo.git.worktree("add", str(path), parent.branch)
                path.chmod(0o700)
                return path, parent.branch or "", base, True
            self._check_base(repo, top, base)
            branch = gitops.unique_branch(repo, branch_name(task))
            private_dir(path.parent)
            repo.git.worktree("add", "--no-track", "-b", branch, str(path), base)
            path.chmod(0o700)
            return path, branch, base, True

    @staticmethod
    def _current_branch(repo: git.Repo, top: Path) -> str:
        if not repo.head.is_valid() and not repo.head.is_detached:
            raise WorktreeError(f"the repository {top} has no commits yet: commit something "
                                "first (a worktree starts from a commit)")
        if repo.head.is_detached:
            raise WorktreeError(f"HEAD is detached in {top}, so there is no current branch to "
                                "start from and merge back into: give a base branch (--base)")
        return str(repo.active_branch.name)

    def finish(self, task: Task) -> None:
        """Queue the merge step; its outcome lands in ``task.merge`` (status pending until)."""
        if not task.worktree_path or not task.branch:
            return
        self._record(task.id, {"strategy": self._strategy(task), "status": "pending"})
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="claudine-merge")
        self._pool.submit(self._finish_logged, task.id)

    def _finish_logged(self, task_id: str) -> None:
        task: Task | None = None
        try:
            task = self.store.get(task_id)
            outcome = self._finish(task)
        except Exception as exc:
            log.exception("merge step failed for %s", task_id)
            outcome = {"status": "kept", "reason": f"merge step failed: {describe_error(exc)}"}
        strategy = self._strategy(task) if task is not None else None
        self._record(task_id, {"strategy": strategy, **outcome})

    def _finish(self, task: Task) -> dict[str, Any]:
        crash_point("merging")
        repo = self._task_repo(task)
        settings = self._settings(task)
        commit = settings.commit if task.commit_changes is None else task.commit_changes
        with repo_lock(repo):
            if commit:
                gitops.commit_all(task)
            strategy = self._strategy(task)
            if strategy != "manual" and task.status is not TaskState.COMPLETED:
                return {"status": "kept", "reason": f"the task {task.status.value}: the branch "
                        f"is kept for review instead of {strategy}"}
            if gitops.is_dirty(task):
                why = ("the task said not to commit them" if task.commit_changes is False
                       else f"commit = false in {SETTINGS_FILE}")
                return {"status": "kept", "reason": f"the worktree has uncommitted changes "
                        f"({why}): review them there"}
            if gitops.ahead(repo, task) == 0:
                earlier = self._outcome_before_a_crash(repo, task, strategy)
                gitops.remove_worktree(repo, Path(task.worktree_path or ""), task.branch,
                                       force=earlier is not None)
                return earlier or {"status": "empty", "reason": "the agent changed nothing"}
            if strategy == "manual":
                return {"status": "kept", "branch": task.branch}
            return self._apply(repo, task, strategy, settings)

    def _outcome_before_a_crash(self, repo: git.Repo, task: Task,
                                strategy: str) -> dict[str, Any] | None:
        """What an interrupted merge step already did, when recovery runs it again."""
        if strategy == "auto":
            commit = gitops.merged_commit(repo, task)
            if commit:
                return {"status": "merged", "commit": commit, "base": task.base_branch,
                        "recovered": True}
        if strategy == "patch":
            patch = self._patch_path(task)
            if patch.is_file():
                return {"status": "patch", "patch": str(patch.resolve()), "recovered": True}
        return None


def default_hooks(config: Config, repo: TaskRepo) -> Worktrees:
    """The engine's isolation hooks for the home whose store is ``repo``."""
    return Worktrees(config, repo)


def _ready_marker(worktree: Path) -> Path:
    # In the worktree's own admin folder (.git/worktrees/<name>): git removes it with the
    # worktree, and the agent never sees it.
    return Path(git.Repo(worktree).git_dir) / "claudine-setup-done"


def _is_ready(worktree: Path) -> bool:
    return _ready_marker(worktree).exists()


def _mark_ready(worktree: Path) -> None:
    _ready_marker(worktree).touch()


def _subdir(worktree: Path, rel: Path) -> str:
    target = worktree / rel
    target.mkdir(parents=True, exist_ok=True)  # an untracked folder of the user's tree
    return str(target)


def run_setup(settings: RepoSettings, top: Path, worktree: Path, logfile: Path) -> None:
    """Copy ``settings.copy`` from ``top`` into the new worktree, then run the setup command;
    both log to ``logfile``. Raises WorktreeError when the command fails or times out."""
    if not settings.copy and not settings.setup:
        return
    private_dir(logfile.parent)
    fd = os.open(logfile, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(fd, "a") as out:
        for name in settings.copy:
            source = (top / name).resolve()  # inside ``top``: load_settings checked it
            if not source.exists():
                out.write(f"copy: {name} does not exist, skipped\n")
                continue
            target = worktree / source.relative_to(top)
            target.parent.mkdir(parents=True, exist_ok=True)
            if source.is_dir():
                shutil.copytree(source, target, symlinks=True, dirs_exist_ok=True)
            else:
                shutil.copy2(source, target)
            out.write(f"copy: {name}\n")
        if settings.setup:
            out.write(f"setup: {settings.setup}\n")
            out.flush()
            try:
                code = subprocess.run(settings.setup, shell=True, cwd=worktree, stdout=out,
                                      stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                      timeout=settings.setup_timeout_s).returncode
            except subprocess.TimeoutExpired:
                raise WorktreeError(f"the setup command timed out after "
                                    f"{settings.setup_timeout_s:g}s; see {logfile}") from None
            out.write(f"setup: exit {code}\n")
            if code != 0:
                raise WorktreeError(f"the setup command {settings.setup!r} failed (exit "
                                    f"{code}); its output is in {logfile}")

