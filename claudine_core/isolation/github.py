"""The git side of worktree tasks: commits, merges, patches, diffs, and pull requests.

worktrees.py decides what to do; this module does it with gitpython (and PyGithub for the
pull request). Every function takes the task's repository (any worktree of it) and the Task.

Pull requests:
The API base URL comes from ``github_api_url`` (``CLAUDINE_GITHUB_API_URL``) so GitHub
Enterprise (``https://HOST/api/v3``) and a local fake in tests work alike; the token from
``GITHUB_TOKEN``. The ``owner/name`` of the repository is parsed from the remote's URL, or
given as ``github_repo`` in the repository's ``.claudine.toml`` (needed for non-GitHub URLs).
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any

import git

from claudine_core.models import Task

DEFAULT_API_URL = "https://api.github.com"
TOKEN_ENV = "GITHUB_TOKEN"
_URL_RE = re.compile(
    r"^(?:https?://|ssh://)?(?:[^@/]+@)?[^/:]+(?::\d+)?[:/](?P<name>[^/]+/[^/]+?)(?:\.git)?/?$"
)


class PullRequestError(RuntimeError):
    """The branch could not be pushed or the pull request not opened; says why."""


def github_full_name(remote_url: str) -> str | None:
    """``owner/name`` from a GitHub-style remote URL (https, ssh or scp form)."""
    if "://" not in remote_url and ":" not in remote_url:
        return None  # a local path
    match = _URL_RE.match(remote_url.strip())
    return match.group("name") if match else None


def pr_text(task: Task) -> tuple[str, str]:
    """Title and body: the prompt's first line, then the prompt and the agent's result."""
    first = " ".join((task.prompt.strip().splitlines() or ["claudine task"])[0].split())
    title = first if len(first) <= 72 else first[:71] + "…"
    body = [f"Opened by claudine for task `{task.id}`.", "", "## Prompt", "", task.prompt[:20_000]]
    if task.result:
        body += ["", "## Agent's result", "", task.result[:20_000]]
    return title, "\n".join(body)


def choose_remote(repo: git.Repo, base: str, configured: str | None) -> str:
    if configured:
        return configured
    upstream = repo.git.config("--get", f"branch.{base}.remote", with_exceptions=False)
    if upstream and upstream != ".":
        return str(upstream)
    names = [r.name for r in repo.remotes]
    if "origin" in names or not names:
        return "origin"
    return names[0]


def push_and_open(
    repo: git.Repo,
    task: Task,
    *,
    api_url: str | None,
    remote: str | None = None,
    full_name: str | None = None,
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Push ``task.branch`` and open a PR against ``task.base_branch``; the outcome fields.

    Raises:
        PullRequestError: no token, no remote, unknown GitHub repository, push or API failure.
    """
    environ = os.environ if env is None else env
    token = environ.get(TOKEN_ENV, "").strip()
    if not token:
        raise PullRequestError(f"{TOKEN_ENV} is not set: export a token that may open PRs")
    branch, base = task.branch or "", task.base_branch or ""
    name = choose_remote(repo, base, remote)
    if name not in [r.name for r in repo.remotes]:
        raise PullRequestError(f"the repository has no remote {name!r} to push the branch to")
    url = repo.remotes[name].url
    full_name = full_name or github_full_name(url)
    if not full_name:
        raise PullRequestError(
            f"cannot tell the GitHub repository from the URL of remote {name!r} ({url}): "
            "set github_repo = \"owner/name\" under [worktree] in .claudine.toml"
        )
    try:
        repo.git.push(name, f"refs/heads/{branch}:refs/heads/{branch}")
    except git.GitCommandError as exc:
        raise PullRequestError(f"git push to {name!r} failed: {_stderr(exc)}") from exc
    title, body = pr_text(task)
    try:
        url, number = open_pull_request(
            api_url=api_url or DEFAULT_API_URL, token=token, full_name=full_name,
            head=branch, base=base, title=title, body=body,
        )
    except Exception as exc:  # PyGithub raises GithubException and requests errors
        raise PullRequestError(
            f"the branch was pushed to {name!r} but the pull request failed: {_describe(exc)}"
        ) from exc
    return {"pr_url": url, "pr_number": number, "remote": name, "github_repo": full_name}


def open_pull_request(
    *, api_url: str, token: str, full_name: str, head: str, base: str, title: str, body: str
) -> tuple[str, int]:
    """``POST /repos/{full_name}/pulls``; returns the PR's web URL and number."""
    from github import Auth, Github

    client = Github(base_url=api_url.rstrip("/"), auth=Auth.Token(token), timeout=30,
                    retry=None, lazy=True)
    try:
        pull = client.get_repo(full_name).create_pull(base=base, head=head, title=title,
                                                      body=body)
        return str(pull.html_url), int(pull.number)
    finally:
        client.close()


def _stderr(exc: git.GitCommandError) -> str:
    text = str(exc.stderr or exc).strip()
    return " ".join(text.replace("stderr:", "").split())[:500]


def _describe(exc: Exception) -> str:
    data = getattr(exc, "data", None)
    status = getattr(exc, "status", None)
    if isinstance(data, dict) and data.get("message"):
        errors = data.get("errors") or []
        extra = "; ".join(str(e.get("message", e)) if isinstance(e, dict) else str(e)
                          for e in errors)
        return f"HTTP {status}: {data['message']}" + (f" ({extra})" if extra else "")
    return f"{type(exc).__name__}: {exc}"


# -- git plumbing for worktree tasks ---------------------------------------------------------

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
    first = title or pr_text(task)[0]
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
        return _kept(f"git merge in {checkout} refused: {_stderr(exc)}")
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
