"""Git operations on a task's repository: its branch, worktree, commits, merge, patch, diff.

The engine hooks (worktrees.py) and the review actions (review.py) decide what to do; this
module does it with gitpython. Every function takes the task's repository (any worktree of
it) and the Task. Nothing here touches the store.
"""

from __future__ import annotations

import os
import re
import shutil
import threading
from pathlib import Path
from typing import Any

import git

from claudine_core.isolation.errors import WorktreeError
from claudine_core.models import Task, short_id

_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


def open_repo(path: str | Path) -> git.Repo:
    """The repository ``path`` is in (searching parent folders), or a WorktreeError."""
    try:
        return git.Repo(path, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise WorktreeError(f"{path} is not inside a git repository: a worktree task needs "
                            "one (run 'git init' and commit, or drop --worktree)") from None


def repo_lock(repo: git.Repo) -> threading.Lock:
    """One lock per repository (its common git dir), whichever worktree ``repo`` is: git
    refuses concurrent changes to worktrees and refs, so this process takes turns."""
    key = str(Path(repo.common_dir).resolve())
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(key, threading.Lock())


def private_dir(path: Path) -> None:
    """Make a folder of the home, 0700 whatever the umask (older versions made 0755)."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.stat().st_mode & 0o077:
        path.chmod(0o700)


def slugify(text: str, limit: int = 40) -> str:
    """A branch-name-safe slug of ``text``, cut at a word boundary within ``limit``."""
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:limit].strip("-")
    return slug.rsplit("-", 1)[0] if len(slug) == limit and "-" in slug else slug or "task"


def branch_name(task: Task) -> str:
    """The branch a task's worktree is made on: ``claudine/<short-id>-<slug-of-prompt>``."""
    return f"claudine/{short_id(task.id)}-{slugify(task.prompt)}"


def task_title(task: Task) -> str:
    """The prompt's first line, at most 72 characters: a commit's or pull request's title."""
    first = " ".join((task.prompt.strip().splitlines() or ["claudine task"])[0].split())
    return first if len(first) <= 72 else first[:71] + "…"


def git_stderr(exc: git.GitCommandError) -> str:
    """What git said on stderr, on one line, at most 500 characters."""
    text = str(exc.stderr or exc).strip()
    return " ".join(text.replace("stderr:", "").split())[:500]


def describe_error(exc: BaseException) -> str:
    """An exception as a task's error or outcome reason: ``git <command>: <stderr>`` for git."""
    if isinstance(exc, git.GitCommandError):
        text = str(exc.stderr or "").replace("stderr:", "").strip().strip("'")
        return " ".join(f"git {exc.command[1] if len(exc.command) > 1 else ''}: {text}".split())
    return str(exc)


_IN_PROGRESS = ("MERGE_HEAD", "CHERRY_PICK_HEAD", "REVERT_HEAD", "rebase-merge", "rebase-apply")


def common(repo: git.Repo) -> git.Repo:
    """The repository itself (its common git dir), whichever worktree ``repo`` is."""
    return git.Repo(repo.common_dir)


def _git(repo: git.Repo, *args: str) -> tuple[int, str, str]:
    status, out, err = repo.git.execute(["git", *args], with_extended_output=True,
                                        with_exceptions=False)
    return int(status or 0), str(out), str(err)


def branch_exists(repo: git.Repo, name: str | None) -> bool:
    return bool(name) and _git(repo, "rev-parse", "--verify", "--quiet",
                               f"refs/heads/{name}")[0] == 0


def unique_branch(repo: git.Repo, wanted: str) -> str:
    name, n = wanted, 1
    while branch_exists(repo, name):
        n += 1
        name = f"{wanted}-{n}"
    return name


def identity_env(repo: git.Repo) -> dict[str, str]:
    """Author/committer for commits claudine makes when git has none configured."""
    env: dict[str, str] = {}
    if _git(repo, "config", "user.name")[0] != 0:
        env.update(GIT_AUTHOR_NAME="claudine", GIT_COMMITTER_NAME="claudine")
    if _git(repo, "config", "user.email")[0] != 0:
        env.update(GIT_AUTHOR_EMAIL="claudine@localhost", GIT_COMMITTER_EMAIL="claudine@localhost")
    return env


def commit_message(task: Task, title: str = "") -> str:
    first = title or task_title(task)
    return f"claudine: {first}\n\n{task.prompt.strip()[:2000]}\n\nTask: {task.id}\n"


def commit_all(task: Task) -> str | None:
    """Commit everything the agent left in its worktree (hooks skipped); the new commit."""
    path = Path(task.worktree_path or "")
    if not path.is_dir():
        return None
    wt = git.Repo(path)
    wt.git.add("-A")
    if _git(wt, "diff", "--cached", "--quiet")[0] == 0:
        return None
    wt.git.commit("--no-verify", "-q", "-m", commit_message(task), env=identity_env(wt))
    return str(wt.git.rev_parse("HEAD"))


def is_dirty(task: Task) -> bool:
    path = Path(task.worktree_path or "")
    return path.is_dir() and bool(git.Repo(path).git.status("--porcelain").strip())


def ahead(repo: git.Repo, task: Task) -> int:
    """Commits on the task branch that its base branch does not have."""
    if not branch_exists(repo, task.branch):
        return 0
    spec = f"refs/heads/{task.base_branch}..refs/heads/{task.branch}"
    return int(repo.git.rev_list("--count", spec))


def merged_commit(repo: git.Repo, task: Task) -> str | None:
    """The newest commit of the base branch that names the task, if its work is there.

    Both the leftovers commit and the merge commit claudine writes end with ``Task: <id>``,
    so this finds a merge that happened before an owner crash kept its outcome from being
    recorded, even once the task branch is gone.
    """
    if not branch_exists(repo, task.base_branch):
        return None
    found = repo.git.rev_list("-n1", "--fixed-strings", f"--grep=Task: {task.id}",
                              f"refs/heads/{task.base_branch}")
    return str(found).strip() or None


def unsafe_reason(repo: git.Repo, task: Task) -> str | None:
    """Why removing the task's worktree and branch would lose work (None: it would not)."""
    if is_dirty(task):
        return f"the worktree {task.worktree_path} has uncommitted changes"
    if branch_exists(repo, task.branch):
        others = ["--not", "--remotes"]
        if branch_exists(repo, task.base_branch):
            others.insert(1, f"refs/heads/{task.base_branch}")
        count = int(repo.git.rev_list("--count", f"refs/heads/{task.branch}", *others))
        if count:
            return (f"branch {task.branch} has {count} commit(s) that are neither in "
                    f"{task.base_branch} nor pushed")
    return None


def prune_worktrees(repo: git.Repo) -> None:
    """Forget worktrees whose folders are gone, so their paths and branches can be reused."""
    common(repo).git.worktree("prune")


def remove_worktree(repo: git.Repo, path: Path, branch: str | None, *, force: bool) -> None:
    """Remove a task worktree (and delete its branch when given)."""
    main = common(repo)
    if path.is_dir():
        try:
            main.git.worktree("remove", *(["--force"] if force else []), str(path))
        except git.GitCommandError:
            if not force:
                raise
            shutil.rmtree(path, ignore_errors=True)
    main.git.worktree("prune")
    if branch and branch_exists(main, branch):
        main.git.branch("-D", branch)


def merge_into_base(repo: git.Repo, task: Task) -> dict[str, Any]:
    """Merge the task branch into its base without ever touching the user's uncommitted work.

    The merge is computed in the object store (``merge-tree``). If the base is checked out
    somewhere, that checkout is fast-forwarded to the result with ``git merge --ff-only``,
    which updates its files as ``git merge`` would and refuses to overwrite local changes;
    otherwise the branch ref moves (compare-and-swap). Returns ``merged`` or ``kept`` + reason.
    """
    main = common(repo)
    base, branch = task.base_branch or "", task.branch or ""
    if not branch_exists(main, base):
        return _kept(f"the base branch {base!r} no longer exists")
    old = main.git.rev_parse(f"refs/heads/{base}")
    tip = main.git.rev_parse(f"refs/heads/{branch}")
    if _git(main, "merge-base", "--is-ancestor", old, tip)[0] == 0:
        new = tip
    else:
        status, out, err = _git(main, "merge-tree", "--write-tree", "--name-only",
                                "--no-messages", old, tip)
        if status == 1:
            files = ", ".join(out.splitlines()[1:11])
            return _kept(f"merging into {base} conflicts in: {files}")
        if status != 0:
            return _kept(f"git merge-tree failed: {err.strip()[:300]}")
        tree = out.splitlines()[0]
        new = main.git.commit_tree(tree, "-p", old, "-p", tip, "-m",
                                   f"Merge {branch} into {base}\n\nTask: {task.id}",
                                   env=identity_env(main))
    checkout = _checked_out_at(main, base)
    if checkout is None:
        main.git.update_ref(f"refs/heads/{base}", new, old)
        return {"status": "merged", "commit": new, "base": base}
    problem = _checkout_problem(main, checkout, old, new)
    if problem:
        return _kept(problem)
    try:
        git.Repo(checkout).git.merge("--ff-only", "--quiet", new)
    except git.GitCommandError as exc:
        return _kept(f"git merge in {checkout} refused: {git_stderr(exc)}")
    return {"status": "merged", "commit": new, "base": base, "checkout": str(checkout)}


def _kept(reason: str) -> dict[str, Any]:
    return {"status": "kept", "fallback": "manual",
            "reason": f"{reason}; not merged, the branch and worktree are kept for review"}


def _checked_out_at(main: git.Repo, branch: str) -> Path | None:
    path: Path | None = None
    for line in main.git.worktree("list", "--porcelain").splitlines():
        if line.startswith("worktree "):
            path = Path(line.removeprefix("worktree "))
        elif line == f"branch refs/heads/{branch}" and path is not None and path.is_dir():
            return path
    return None


def _checkout_problem(main: git.Repo, checkout: Path, old: str, new: str) -> str | None:
    user = git.Repo(checkout)
    gitdir = Path(user.git_dir)
    if any((gitdir / marker).exists() for marker in _IN_PROGRESS):
        return f"a merge, rebase or cherry-pick is in progress in {checkout}"
    changed = set(filter(None, main.git.diff("--name-only", "-z", old, new).split("\0")))
    entries = user.git.status("--porcelain", "-z", "--untracked-files=all").split("\0")
    dirty, skip = set(), False
    for entry in entries:
        if skip or len(entry) < 4:
            skip = False
            continue
        dirty.add(entry[3:])
        skip = entry[0] in "RC"
    added = set(filter(None, main.git.diff("--name-only", "-z", "--diff-filter=A", old,
                                           new).split("\0")))
    dirty |= {p for p in added if (checkout / p).exists()}  # ignored files in the way
    overlap = sorted(changed & dirty)
    if overlap:
        return (f"the merge would touch uncommitted changes in your checkout {checkout}: "
                + ", ".join(overlap[:10]))
    return None


def write_patch(repo: git.Repo, task: Task, path: Path) -> None:
    """The branch's commits as an mbox ``git am`` applies."""
    text = repo.git.format_patch("--stdout", "--binary",
                                 f"refs/heads/{task.base_branch}..refs/heads/{task.branch}")
    # The home is private (0600 files): a patch holds the user's code.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text + "\n")


def _merge_base(repo: git.Repo, task: Task) -> str:
    return str(repo.git.merge_base(f"refs/heads/{task.base_branch}",
                                   f"refs/heads/{task.branch}"))


def diff(repo: git.Repo, task: Task) -> str:
    """Changes since the branch left its base; in a live worktree, uncommitted ones too."""
    base = _merge_base(repo, task)
    path = Path(task.worktree_path or "")
    if path.is_dir():
        wt = git.Repo(path)
        text = wt.git.diff(base)
        untracked = wt.git.ls_files("--others", "--exclude-standard").splitlines()
        notes = "".join(f"\n# untracked (not yet committed): {name}" for name in untracked)
        return text + notes
    return str(repo.git.diff(base, f"refs/heads/{task.branch}"))


def diffstat(repo: git.Repo, task: Task) -> str:
    """``git diff --stat`` since the branch left its base; in a live worktree, uncommitted
    changes too, and untracked files listed after it (git counts no lines for them)."""
    base = _merge_base(repo, task)
    path = Path(task.worktree_path or "")
    if path.is_dir():
        wt = git.Repo(path)
        text = str(wt.git.diff("--stat", base))
        untracked = wt.git.ls_files("--others", "--exclude-standard").splitlines()
        return text + "".join(f"\n untracked (not yet committed): {name}" for name in untracked)
    return str(repo.git.diff("--stat", base, f"refs/heads/{task.branch}"))


def changed_files(repo: git.Repo, task: Task) -> list[tuple[str, str]]:
    base = _merge_base(repo, task)
    path = Path(task.worktree_path or "")
    if path.is_dir():
        wt = git.Repo(path)
        out = wt.git.diff("--name-status", base)
        extra = [("?", n) for n in wt.git.ls_files("--others", "--exclude-standard").splitlines()]
    else:
        out, extra = repo.git.diff("--name-status", base, f"refs/heads/{task.branch}"), []
    rows = [tuple(line.split("\t")) for line in out.splitlines() if line]
    return [(r[0][:1], r[-1]) for r in rows] + extra
