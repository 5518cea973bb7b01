"""Real git repositories for the worktree tests (core, console and real-CLI tiers)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from claudine_core.models import Task


def git(cwd: Path, *args: str) -> str:
    """Run git in ``cwd``; its stdout without the final newline. Fails the test on error."""
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                          text=True).stdout.rstrip("\n")


def make_repo(path: Path, *, commit: bool = True) -> Path:
    """A repository on ``main`` with a committer identity and, unless told not to, a first
    commit of ``a.txt`` and ``README.md``."""
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    git(path, "config", "user.name", "Test User")
    git(path, "config", "user.email", "test@example.com")
    if commit:
        (path / "a.txt").write_text("original\n")
        (path / "README.md").write_text("readme\n")
        git(path, "add", "-A")
        git(path, "commit", "-q", "-m", "initial")
    return path


def wt_path(task: Task) -> Path:
    return Path(task.worktree_path or "")


def repo_with_remote(tmp_path: Path) -> tuple[Path, Path]:
    """A user's repository (``make_repo``) whose origin is a bare repository on this
    disk: ``(repository, remote)``."""
    remote = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    user = make_repo(tmp_path / "user")
    git(user, "remote", "add", "origin", str(remote))
    return user, remote
