"""Pull requests: push a task's branch and open a PR on GitHub (PyGithub, imported on use).

The API base URL comes from ``github_api_url`` (``CLAUDINE_GITHUB_API_URL``) so GitHub
Enterprise (``https://HOST/api/v3``) and a local fake in tests work alike; the token from
``GITHUB_TOKEN``. The ``owner/name`` of the repository is parsed from the remote's URL, or
given as ``github_repo`` in the repository's ``.claudine.toml`` (needed for non-GitHub URLs).
"""

from __future__ import annotations

import os
import re
from typing import Any

import git

from claudine_core.errors import ClaudineError
from claudine_core.isolation.gitops import git_stderr, task_title
from claudine_core.models import Task

DEFAULT_API_URL = "https://api.github.com"
TOKEN_ENV = "GITHUB_TOKEN"
_URL_RE = re.compile(
    r"^(?:https?://|ssh://)?(?:[^@/]+@)?[^/:]+(?::\d+)?[:/](?P<name>[^/]+/[^/]+?)(?:\.git)?/?$"
)


class PullRequestError(ClaudineError, RuntimeError):
    """The branch could not be pushed or the pull request not opened; says why.

    ``RuntimeError`` stays a base so code that caught it before :class:`ClaudineError`
    existed still does.
    """


def github_full_name(remote_url: str) -> str | None:
    """``owner/name`` from a GitHub-style remote URL (https, ssh or scp form)."""
    if "://" not in remote_url and ":" not in remote_url:
        return None  # a local path
    match = _URL_RE.match(remote_url.strip())
    return match.group("name") if match else None


def pr_text(task: Task) -> tuple[str, str]:
    """Title and body: the prompt's first line, then the prompt and the agent's result."""
    title = task_title(task)
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
        raise PullRequestError(f"git push to {name!r} failed: {git_stderr(exc)}") from exc
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


def _describe(exc: Exception) -> str:
    data = getattr(exc, "data", None)
    status = getattr(exc, "status", None)
    if isinstance(data, dict) and data.get("message"):
        errors = data.get("errors") or []
        extra = "; ".join(str(e.get("message", e)) if isinstance(e, dict) else str(e)
                          for e in errors)
        return f"HTTP {status}: {data['message']}" + (f" ({extra})" if extra else "")
    return f"{type(exc).__name__}: {exc}"
