"""What a person does with a finished worktree task: see its diff, bring its branch back
(merge, patch, pull request), discard it, list and clean up.

:class:`Review` holds these actions and the step they share with the engine's merge step
(:meth:`Review._apply`: merge, patch or PR, then record the outcome in ``task.merge``);
:class:`claudine_core.isolation.worktrees.Worktrees` adds the engine hooks to it. Every
action runs blocking git: call them off the event loop.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import git

from claudine_core.config import Config
from claudine_core.isolation import gitops
from claudine_core.isolation.errors import UnsafeToDiscard, WorktreeError
from claudine_core.isolation.github import PullRequestError, push_and_open
from claudine_core.isolation.gitops import describe_error, open_repo, private_dir, repo_lock
from claudine_core.isolation.settings import RepoSettings, load_settings
from claudine_core.models import TERMINAL_STATES, Task, TaskState, short_id
from claudine_core.run_dirs import latest_run_dir

if TYPE_CHECKING:
    from claudine_core.store.repo import TaskRepo

# What each review action does, for messages ("nothing to merge").
_ACTION_VERBS = {"auto": "merge", "patch": "export as a patch", "pr": "open a pull request for"}
# Outcomes whose result lives on after the worktree and branch are gone.
_LASTING_OUTCOMES = ("merged", "patch", "pr", "empty")


class Review:
    """The review actions on worktree tasks (console, CLI, MCP).

    ``repo`` is the store of the home whose tasks these are: outcomes are recorded there and
    nowhere else (several homes may be open in one process).
    """

    def __init__(self, config: Config, repo: TaskRepo) -> None:
        self.config = config
        self.store = repo

    def diff(self, task: Task) -> str:
        """The task's changes against where its branch left the base (with uncommitted ones)."""
        return gitops.diff(self._task_repo(task), task)

    def changed_files(self, task: Task) -> list[tuple[str, str]]:
        """``(status letter, path)`` per changed file, as ``git diff --name-status``."""
        return gitops.changed_files(self._task_repo(task), task)

    # A person's review actions are recorded with strategy "manual": the task's own
    # strategy did not do them ("merged (manual)", not "merged (auto)").

    def merge(self, task: Task) -> dict[str, Any]:
        return self._act(task, "auto")

    def export_patch(self, task: Task) -> dict[str, Any]:
        return self._act(task, "patch")

    def open_pr(self, task: Task) -> dict[str, Any]:
        return self._act(task, "pr")

    def diffstat(self, task: Task) -> str:
        """``git diff --stat`` of the task's changes (uncommitted ones too, in a live
        worktree), its summary line last."""
        return gitops.diffstat(self._task_repo(task), task)

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
                problem = gitops.unsafe_reason(repo, task)
                if problem:
                    raise UnsafeToDiscard(problem)
            gitops.remove_worktree(repo, Path(task.worktree_path or ""), task.branch, force=True)
        previous = task.merge or {}
        if previous.get("status") in _LASTING_OUTCOMES:  # keep the result
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
            info["dirty"] = gitops.is_dirty(task)
            has_branch = gitops.branch_exists(repo, task.branch)
            info["ahead"] = gitops.ahead(repo, task) if has_branch else 0
            info["branch_exists"] = has_branch
        except (WorktreeError, git.GitError, OSError, ValueError) as exc:
            info.update(dirty=False, ahead=0, branch_exists=False, error=describe_error(exc))
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
            except UnsafeToDiscard as exc:  # the caller says how to insist
                results.append({"task": task.id, "removed": False, "reason": exc.problem,
                                "needs_force": True})
            except (WorktreeError, git.GitError, OSError) as exc:
                results.append({"task": task.id, "removed": False,
                                "reason": describe_error(exc)})
        return results

    # -- shared with the engine's merge step -------------------------------------------------

    def _act(self, task: Task, strategy: str) -> dict[str, Any]:
        self._require_finished(task)
        if not task.branch:
            raise WorktreeError(f"task {task.short_id} has no worktree branch")
        repo = self._task_repo(task)
        settings = self._settings(task)
        with repo_lock(repo):
            if Path(task.worktree_path or "").is_dir():
                gitops.commit_all(task)
            if gitops.ahead(repo, task) == 0:
                verb = _ACTION_VERBS.get(strategy, strategy)
                raise WorktreeError(f"task {task.short_id}'s branch has nothing to {verb}")
            outcome = self._apply(repo, task, strategy, settings)
        return self._record(task.id, {"strategy": "manual", **outcome})

    def _apply(self, repo: git.Repo, task: Task, strategy: str,
               settings: RepoSettings) -> dict[str, Any]:
        """Bring the branch back by ``strategy``; the outcome (not yet recorded)."""
        if strategy == "auto":
            outcome = gitops.merge_into_base(repo, task)
            if outcome["status"] == "merged":
                gitops.remove_worktree(repo, Path(task.worktree_path or ""), task.branch,
                                       force=True)
            return outcome
        if strategy == "patch":
            patch = self._patch_path(task)
            private_dir(patch.parent)
            gitops.write_patch(repo, task, patch)
            gitops.remove_worktree(repo, Path(task.worktree_path or ""), task.branch, force=True)
            return {"status": "patch", "patch": str(patch.resolve())}
        if strategy == "pr":
            try:
                pr = push_and_open(repo, task, api_url=self.config.github_api_url,
                                   remote=settings.remote, full_name=settings.github_repo)
            except PullRequestError as exc:
                return {"status": "kept", "reason": f"no pull request: {exc}"}
            gitops.remove_worktree(repo, Path(task.worktree_path or ""), None, force=False)
            return {"status": "pr", **pr}
        raise WorktreeError(f"unknown merge strategy {strategy!r}")

    def _patch_path(self, task: Task) -> Path:
        run_dir = latest_run_dir(self.config.runs_dir, task.id)
        return (run_dir or self.config.runs_dir / task.id) / f"{short_id(task.id)}.patch"

    def _require_finished(self, task: Task) -> None:
        if task.status not in TERMINAL_STATES:
            raise WorktreeError(f"task {task.short_id} is {task.status.value}: wait for it to "
                                "finish (or cancel it) first")

    def _task_repo(self, task: Task) -> git.Repo:
        if task.worktree_path and Path(task.worktree_path).is_dir():
            return git.Repo(task.worktree_path)
        return open_repo(task.cwd)

    def _settings(self, task: Task) -> RepoSettings:
        """The ``.claudine.toml`` of the task's repository; the defaults once it is gone.

        Raises:
            RepoSettingsError: the file is wrong. Never read as the defaults: with
                ``commit = "false"`` claudine must not commit.
        """
        try:
            repo = open_repo(task.cwd)
        except WorktreeError:
            return RepoSettings()  # the checkout moved away; its branch may still be here
        return load_settings(Path(repo.working_tree_dir or task.cwd))

    def _strategy(self, task: Task) -> str:
        return task.merge_strategy or self.config.default_merge_strategy

    def _record(self, task_id: str, outcome: dict[str, Any]) -> dict[str, Any]:
        outcome = {**outcome, "at": time.time()}
        self.store.transition(task_id, list(TaskState), merge=outcome)
        return outcome


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
