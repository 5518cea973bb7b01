"""Worktree isolation: a task may run in its own git worktree, and its branch comes back.

By job (imports go down this list, never up):

- ``worktrees``: :class:`~claudine_core.isolation.worktrees.Worktrees`, the engine's hooks
  (prepare a task's worktree and run its setup, finish: the merge step) on top of the
  review actions; every name other packages import is importable from it.
- ``review``: the review actions (diff, merge, patch, pull request, discard, clean).
- ``github``: push the branch and open a pull request.
- ``gitops``: every git operation (branches, worktrees, commits, merge, patch, diff).
- ``settings``: the repository's ``.claudine.toml``, checked key by key; no git, so it can
  run when a task is delegated.
- ``errors``: WorktreeError and RepoSettingsError.

Nothing is imported here: loading gitpython costs a short-lived CLI call time it may not need.
"""
