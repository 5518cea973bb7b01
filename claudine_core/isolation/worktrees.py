"""A git worktree per task, and the ways its branch comes back (merge, patch, PR, discard).

Worktrees live under ``<home>/worktrees/<task-id>``: outside the user's repository (no stray
folders next to it, nothing for their tools to index), private to the home, and cleaned up in
one place. The branch is ``claudine/<short-id>-<slug-of-prompt>``. The engine calls
``prepare(task)`` after claiming a task (returns the agent's cwd, raises RuntimeError with the
reason) and ``finish(task)`` once it is terminal; the merge step then runs on a worker thread
and stores its outcome in ``task.merge``. Front ends call ``Worktrees(config, repo)``'s
``diff``/``changed_files``/``merge``/``export_patch``/``open_pr``/``discard`` (blocking git;
run them off the event loop).

Per-repository settings, optional, in ``.claudine.toml`` at the repository root::

    [worktree]
    copy = [".env", "config/local.json"]   # git-ignored files copied into each worktree
    setup = "npm ci"                         # run in the new worktree, output in worktree.log
    setup_timeout = 600                      # seconds
    commit = true                            # commit what the agent left uncommitted
    remote = "origin"                        # for pr (default: base's upstream, else origin)
    github_repo = "owner/name"               # for pr when the remote URL is not GitHub's
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import threading
import time
import tomllib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import git

from claudine_core.config import Config
from claudine_core.faults import crash_point
from claudine_core.isolation import github as gm
from claudine_core.isolation.github import PullRequestError, push_and_open
from claudine_core.models import TERMINAL_STATES, Task, TaskState, short_id
from claudine_core.supervisor import latest_run_dir, run_dir_for

if TYPE_CHECKING:
    from claudine_core.store.repo import TaskRepo

log = logging.getLogger("claudine.worktrees")
SETTINGS_FILE = ".claudine.toml"
LOG_NAME = "worktree.log"
_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


class WorktreeError(RuntimeError):
    """A worktree could not be created or acted on; the message says why and what to do."""


@dataclass(frozen=True)
class RepoSettings:
    copy: tuple[str, ...] = ()
    setup: str | None = None
    setup_timeout_s: float = 600.0
    commit: bool = True
    remote: str | None = None
    github_repo: str | None = None


def load_settings(root: Path) -> RepoSettings:
    path = root / SETTINGS_FILE
    if not path.is_file():
        return RepoSettings()
    try:
        table = tomllib.loads(path.read_text()).get("worktree", {})
        copy = table.get("copy", [])
        return RepoSettings(
            copy=tuple(str(c) for c in ([copy] if isinstance(copy, str) else copy)),
            setup=str(table["setup"]) if table.get("setup") else None,
            setup_timeout_s=float(table.get("setup_timeout", 600)),
            commit=bool(table.get("commit", True)),
            remote=table.get("remote"),
            github_repo=table.get("github_repo"),
        )
    except (OSError, ValueError, TypeError, tomllib.TOMLDecodeError) as exc:
        raise WorktreeError(f"{path} is invalid: {exc}") from exc


def slugify(text: str, limit: int = 40) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:limit].strip("-")
    return slug.rsplit("-", 1)[0] if len(slug) == limit and "-" in slug else slug or "task"


def open_repo(path: str | Path) -> git.Repo:
    try:
        return git.Repo(path, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise WorktreeError(f"{path} is not inside a git repository: a worktree task needs "
                            "one (run 'git init' and commit, or drop --worktree)") from None


def repo_lock(repo: git.Repo) -> threading.Lock:
    key = str(Path(repo.common_dir).resolve())
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(key, threading.Lock())


class Worktrees:
    """Engine hooks plus the review actions.

    ``repo`` is the store of the home whose tasks these are: outcomes are recorded there and
    nowhere else (several homes may be open in one process).
    """

    def __init__(self, config: Config, repo: TaskRepo) -> None:
        self.config = config
        self.store = repo
        self._pool: ThreadPoolExecutor | None = None

    @property
    def root(self) -> Path:
        return self.config.home / "worktrees"

    # -- engine hooks --------------------------------------------------------------------------

    def needs_prepare(self, task: Task) -> bool:
        return bool(task.worktree or self.config.default_worktree)

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
            raise WorktreeError(f"could not create the task's worktree: {_describe(exc)}") from exc

    def _prepare(self, task: Task) -> str:
        cwd = Path(task.cwd)
        repo = open_repo(cwd)
        if repo.bare or repo.working_tree_dir is None:
            raise WorktreeError(f"{cwd} is inside a bare repository: nothing to branch from")
        top = Path(repo.working_tree_dir).resolve()
        rel = cwd.resolve().relative_to(top)
        parent = self._resumed_parent(task)
        if task.worktree_path and task.branch and Path(task.worktree_path).is_dir():
            path, branch, created = Path(task.worktree_path), task.branch, False  # a retry
            base = task.base_branch or self._current_branch(repo, top)
        elif parent is not None:
            path, branch, base, created = self._reopen(repo, top, task, parent)
        else:
            base = task.base_branch or self._current_branch(repo, top)
            self._check_base(repo, top, base)
            branch = gm.unique_branch(repo, self._branch_name(task))
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
            _setup(load_settings(top), top, path, logfile)
        except Exception:
            if created:
                gm.remove_worktree(repo, path, branch, force=True)
            raise
        _mark_ready(path)
        return _subdir(path, rel)

    @staticmethod
    def _branch_name(task: Task) -> str:
        return f"claudine/{short_id(task.id)}-{slugify(task.prompt)}"

    @staticmethod
    def _check_base(repo: git.Repo, top: Path, base: str) -> None:
        if not repo.head.is_valid():
            raise WorktreeError(f"the repository {top} has no commits yet: commit something "
                                "first (a worktree starts from a commit)")
        if not gm.branch_exists(repo, base):
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
            gm.prune_worktrees(repo)
            if gm.branch_exists(repo, parent.branch):
                repo.git.worktree("add", str(path), parent.branch)
                path.chmod(0o700)
                return path, parent.branch or "", base, True
            self._check_base(repo, top, base)
            branch = gm.unique_branch(repo, self._branch_name(task))
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
        try:
            task = self.store.get(task_id)
            outcome = self._finish(task)
        except Exception as exc:
            log.exception("merge step failed for %s", task_id)
            outcome = {"status": "kept", "reason": f"merge step failed: {_describe(exc)}"}
        self._record(task_id, {"strategy": self._strategy(task), **outcome})

    def _finish(self, task: Task) -> dict[str, Any]:
        crash_point("merging")
        repo = self._task_repo(task)
        settings = self._settings(task)
        commit = settings.commit if task.commit_changes is None else task.commit_changes
        with repo_lock(repo):
            if commit:
                gm.commit_all(task)
            strategy = self._strategy(task)
            if strategy != "manual" and task.status is not TaskState.COMPLETED:
                return {"status": "kept", "reason": f"the task {task.status.value}: the branch "
                        f"is kept for review instead of {strategy}"}
            if gm.is_dirty(task):
                why = ("the task said not to commit them" if task.commit_changes is False
                       else f"commit = false in {SETTINGS_FILE}")
                return {"status": "kept", "reason": f"the worktree has uncommitted changes "
                        f"({why}): review them there"}
            if gm.ahead(repo, task) == 0:
                earlier = self._outcome_before_a_crash(repo, task, strategy)
                gm.remove_worktree(repo, Path(task.worktree_path or ""), task.branch,
                                   force=earlier is not None)
                return earlier or {"status": "empty", "reason": "the agent changed nothing"}
            if strategy == "manual":
                return {"status": "kept", "branch": task.branch}
            return self._apply(repo, task, strategy, settings)

    def _outcome_before_a_crash(self, repo: git.Repo, task: Task,
                                strategy: str) -> dict[str, Any] | None:
        """What an interrupted merge step already did, when recovery runs it again."""
        if strategy == "auto":
            commit = gm.merged_commit(repo, task)
            if commit:
                return {"status": "merged", "commit": commit, "base": task.base_branch,
                        "recovered": True}
        if strategy == "patch":
            patch = self._patch_path(task)
            if patch.is_file():
                return {"status": "patch", "patch": str(patch.resolve()), "recovered": True}
        return None

    def _patch_path(self, task: Task) -> Path:
        run_dir = latest_run_dir(self.config.runs_dir, task.id)
        return (run_dir or self.config.runs_dir / task.id) / f"{short_id(task.id)}.patch"

    def _apply(self, repo: git.Repo, task: Task, strategy: str,
               settings: RepoSettings) -> dict[str, Any]:
        if strategy == "auto":
            outcome = gm.merge_into_base(repo, task)
            if outcome["status"] == "merged":
                gm.remove_worktree(repo, Path(task.worktree_path or ""), task.branch, force=True)
            return outcome
        if strategy == "patch":
            patch = self._patch_path(task)
            private_dir(patch.parent)
            gm.write_patch(repo, task, patch)
            gm.remove_worktree(repo, Path(task.worktree_path or ""), task.branch, force=True)
            return {"status": "patch", "patch": str(patch.resolve())}
        if strategy == "pr":
            try:
                pr = push_and_open(repo, task, api_url=self.config.github_api_url,
                                   remote=settings.remote, full_name=settings.github_repo)
            except PullRequestError as exc:
                return {"status": "kept", "reason": f"no pull request: {exc}"}
            gm.remove_worktree(repo, Path(task.worktree_path or ""), None, force=False)
            return {"status": "pr", **pr}
        raise WorktreeError(f"unknown merge strategy {strategy!r}")

    # -- review actions (console, CLI) -----------------------------------------------------------

    def diff(self, task: Task) -> str:
        """The task's changes against where its branch left the base (with uncommitted ones)."""
        return gm.diff(self._task_repo(task), task)

    def changed_files(self, task: Task) -> list[tuple[str, str]]:
        """``(status letter, path)`` per changed file, as ``git diff --name-status``."""
        return gm.changed_files(self._task_repo(task), task)

    def merge(self, task: Task) -> dict[str, Any]:
        return self._act(task, "auto")

    def export_patch(self, task: Task) -> dict[str, Any]:
        return self._act(task, "patch")

    def open_pr(self, task: Task) -> dict[str, Any]:
        return self._act(task, "pr")

    def discard(self, task: Task, force: bool = False) -> dict[str, Any]:
        """Remove the worktree and delete the branch; refuses unmerged or uncommitted work."""
        self._require_finished(task)
        users = [t for t in self.store.active()
                 if t.worktree_path == task.worktree_path and t.id != task.id]
        if users:
            raise WorktreeError(f"not discarded: task {users[0].short_id} (which resumed "
                                f"{task.short_id}) is working in {task.worktree_path}")
        repo = self._task_repo(task)
        with repo_lock(repo):
            if not force:
                problem = gm.unsafe_reason(repo, task)
                if problem:
                    raise WorktreeError(f"not discarded: {problem} (use force to discard it)")
            gm.remove_worktree(repo, Path(task.worktree_path or ""), task.branch, force=True)
        previous = task.merge or {}
        if previous.get("status") in ("merged", "patch", "pr", "empty"):  # keep the result
            return self._record(task.id, {**previous, "removed": True})
        return self._record(task.id, {"strategy": self._strategy(task), "status": "discarded"})

    def state(self, task: Task) -> dict[str, Any]:
        """What ``claudine worktrees`` shows for one task."""
        path = Path(task.worktree_path) if task.worktree_path else None
        info: dict[str, Any] = {
            "task": task.id, "status": task.status.value, "branch": task.branch,
            "base": task.base_branch, "worktree_path": task.worktree_path,
            "exists": bool(path and path.is_dir()), "merge": task.merge,
        }
        try:
            repo = self._task_repo(task)
            info["dirty"] = gm.is_dirty(task)
            info["ahead"] = gm.ahead(repo, task) if gm.branch_exists(repo, task.branch) else 0
            info["branch_exists"] = gm.branch_exists(repo, task.branch)
        except (WorktreeError, git.GitError, OSError, ValueError) as exc:
            info.update(dirty=False, ahead=0, branch_exists=False, error=_describe(exc))
        info["state"] = _state_word(task, info)
        return info

    def clean(self, tasks: list[Task], *, force: bool = False) -> list[dict[str, Any]]:
        """Remove the worktree and branch of each finished task that is safe to remove."""
        results = []
        for task in tasks:
            if not task.branch or task.status not in TERMINAL_STATES:
                continue
            info = self.state(task)
            if not info["exists"] and not info["branch_exists"]:
                continue
            try:
                self.discard(task, force=force)
                results.append({"task": task.id, "removed": True})
            except (WorktreeError, git.GitError, OSError) as exc:
                results.append({"task": task.id, "removed": False, "reason": _describe(exc)})
        return results

    # -- helpers ---------------------------------------------------------------------------------

    def _act(self, task: Task, strategy: str) -> dict[str, Any]:
        self._require_finished(task)
        if not task.branch:
            raise WorktreeError(f"task {task.short_id} has no worktree branch")
        repo = self._task_repo(task)
        settings = self._settings(task)
        with repo_lock(repo):
            if Path(task.worktree_path or "").is_dir():
                gm.commit_all(task)
            if gm.ahead(repo, task) == 0:
                raise WorktreeError(f"task {task.short_id}'s branch has nothing to {strategy}")
            outcome = self._apply(repo, task, strategy, settings)
        return self._record(task.id, {"strategy": strategy, **outcome})

    def _require_finished(self, task: Task) -> None:
        if task.status not in TERMINAL_STATES:
            raise WorktreeError(f"task {task.short_id} is {task.status.value}: wait for it to "
                                "finish (or cancel it) first")

    def _task_repo(self, task: Task) -> git.Repo:
        if task.worktree_path and Path(task.worktree_path).is_dir():
            return git.Repo(task.worktree_path)
        return open_repo(task.cwd)

    def _settings(self, task: Task) -> RepoSettings:
        try:
            repo = open_repo(task.cwd)
            return load_settings(Path(repo.working_tree_dir or task.cwd))
        except WorktreeError:
            return RepoSettings()

    def _strategy(self, task: Task) -> str:
        return task.merge_strategy or self.config.default_merge_strategy

    def _record(self, task_id: str, outcome: dict[str, Any]) -> dict[str, Any]:
        outcome = {**outcome, "at": time.time()}
        self.store.transition(task_id, list(TaskState), merge=outcome)
        return outcome


def default_hooks(config: Config, repo: TaskRepo) -> Worktrees:
    return Worktrees(config, repo)


def _ready_marker(worktree: Path) -> Path:
    # In the worktree's own admin folder (.git/worktrees/<name>): git removes it with the
    # worktree, and the agent never sees it.
    return Path(git.Repo(worktree).git_dir) / "claudine-setup-done"


def _is_ready(worktree: Path) -> bool:
    return _ready_marker(worktree).exists()


def private_dir(path: Path) -> None:
    """Make a folder of the home, 0700 whatever the umask (older versions made 0755)."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.stat().st_mode & 0o077:
        path.chmod(0o700)


def _mark_ready(worktree: Path) -> None:
    _ready_marker(worktree).touch()


def _subdir(worktree: Path, rel: Path) -> str:
    target = worktree / rel
    target.mkdir(parents=True, exist_ok=True)  # an untracked folder of the user's tree
    return str(target)


def _setup(settings: RepoSettings, top: Path, worktree: Path, logfile: Path) -> None:
    if not settings.copy and not settings.setup:
        return
    private_dir(logfile.parent)
    fd = os.open(logfile, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(fd, "a") as out:
        for name in settings.copy:
            source = (top / name).resolve()
            if not source.is_relative_to(top) or name.startswith("/"):
                raise WorktreeError(f"{SETTINGS_FILE}: copy entry {name!r} is outside the repo")
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


def _state_word(task: Task, info: dict[str, Any]) -> str:
    if task.status not in TERMINAL_STATES:
        return "active"
    if info.get("dirty"):
        return "uncommitted"
    if info.get("ahead"):
        return "unmerged"
    if info["exists"] or info.get("branch_exists"):
        return "merged"
    return "removed"


def _describe(exc: BaseException) -> str:
    if isinstance(exc, git.GitCommandError):
        text = str(exc.stderr or "").replace("stderr:", "").strip().strip("'")
        return " ".join(f"git {exc.command[1] if len(exc.command) > 1 else ''}: {text}".split())
    return str(exc)
