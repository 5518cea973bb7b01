"""A task's code to another node and its work back, through the repository's remote.

Nodes share no disk with the owner's machine, so a task isolated in a worktree runs on
another node from a copy that travels by git:

1. **send** (on the owner's machine, before the run starts): the worktree's commit, plus
   whatever it holds uncommitted (an earlier attempt's work, carried as one commit made
   without touching the worktree), is pushed to the remote as a hidden ref
   ``refs/claudine/runs/<run>``: no branch appears in the remote, and a base commit not
   pushed yet is reachable all the same.
2. **check out** (on the node, before the agent starts): a bare cache of the remote per
   node and URL fetches that ref, and a detached worktree of it is the agent's directory.
3. **carry back** (on the node, once the agent ended): what the agent left uncommitted
   becomes one *carry* commit, and the run's ref is pushed again.
4. **receive** (on the owner's machine, before the run's end is recorded): the task's
   worktree is moved to the fetched ref and the carry commits are undone, so the
   worktree is as if the agent had run in it; the merge step then applies unchanged.
   The hidden ref is deleted from the remote.

Every git call is a ``git`` subprocess (stdlib only: the node side runs in a Ray actor,
and the owner's local path never imports this module). A failure raises
:class:`TravelError` with git's own words.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from claudine_core.backends.base import GitCheckout

REF_PREFIX = "refs/claudine/runs/"
CARRY_TRAILER = "Claudine-Carry: uncommitted changes"
"""Marks a commit that only carries uncommitted files between machines (undone on receive)."""
GIT_TIMEOUT_S = 600.0  # a clone of a large repository over a slow link, at most
DEFAULT_IDENTITY = {"GIT_AUTHOR_NAME": "claudine", "GIT_COMMITTER_NAME": "claudine",
                    "GIT_AUTHOR_EMAIL": "claudine@localhost",
                    "GIT_COMMITTER_EMAIL": "claudine@localhost"}


class TravelError(Exception):
    """The task's code could not reach its node, or its work could not come back."""


def run_ref(run: str) -> str:
    return REF_PREFIX + run


# -- on the owner's machine ----------------------------------------------------------------


def remote_url(worktree: str) -> str | None:
    """The URL nodes fetch the repository from: its ``origin``, else its only remote
    (None: it has none, so the task can run only on this machine)."""
    names = _git(worktree, "remote").split()
    name = "origin" if "origin" in names else names[0] if len(names) == 1 else None
    if name is None:
        return None
    return _git(worktree, "remote", "get-url", name).strip() or None


def send(worktree: str, cwd: str, run: str, work_name: str = "") -> GitCheckout | None:
    """Push the worktree's state for ``run`` to the remote; what the node checks out.

    None when the repository has no remote (the run cannot leave this machine).
    Raises TravelError when the push fails (the remote refused it, or is unreachable)."""
    url = remote_url(worktree)
    if url is None:
        return None
    head = _git(worktree, "rev-parse", "HEAD").strip()
    identity = _identity(worktree)
    commit = _with_uncommitted(worktree, head, identity)
    ref = run_ref(run)
    try:
        _git(worktree, "push", "--quiet", "--force", url, f"{commit}:{ref}")
    except TravelError as exc:
        raise TravelError(f"could not push the task's code to {url} for a run on another "
                          f"node: {exc}") from None
    subdir = os.path.relpath(os.path.realpath(cwd), os.path.realpath(worktree))
    return GitCheckout(url=url, ref=ref, commit=commit, sent_from=head,
                       subdir="" if subdir == "." else subdir,
                       identity=identity, work_name=work_name)


def _with_uncommitted(worktree: str, head: str, identity: dict[str, str]) -> str:
    """``head``, or a carry commit on it holding the worktree's uncommitted files (made in
    a scratch index: the worktree and its index stay as they are)."""
    if not _git(worktree, "status", "--porcelain").strip():
        return head
    git_dir = _git(worktree, "rev-parse", "--absolute-git-dir").strip()
    index = os.path.join(git_dir, "claudine-travel-index")
    env = {"GIT_INDEX_FILE": index}
    try:
        _git(worktree, "read-tree", head, env=env)
        _git(worktree, "add", "-A", env=env)
        tree = _git(worktree, "write-tree", env=env).strip()
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(index)
    message = f"claudine: uncommitted changes of an earlier attempt\n\n{CARRY_TRAILER}\n"
    return _git(worktree, "commit-tree", tree, "-p", head, "-m", message,
                env=identity).strip()


def _identity(worktree: str) -> dict[str, str]:
    """Who the carry commits are by: the repository's configured user, else claudine."""
    identity: dict[str, str] = {}
    for key, names in (("user.name", ("GIT_AUTHOR_NAME", "GIT_COMMITTER_NAME")),
                       ("user.email", ("GIT_AUTHOR_EMAIL", "GIT_COMMITTER_EMAIL"))):
        try:
            value = _git(worktree, "config", key).strip()
        except TravelError:
            value = ""
        for name in names:
            identity[name] = value or DEFAULT_IDENTITY[name]
    return identity


def receive(worktree: str, checkout: GitCheckout, carried: dict[str, Any] | None) -> None:
    """Bring the run's work into the task's worktree (see the module); ``carried`` is
    what the node reported (:func:`carry_back`).

    Raises TravelError when the work is not there to take, or the worktree moved meanwhile.
    """
    if not carried or carried.get("error"):
        why = (carried or {}).get("error") or "the node reported nothing"
        forget(worktree, checkout)  # it holds only what was sent
        raise TravelError(f"the agent's work did not come back from its node: {why}")
    now = _git(worktree, "rev-parse", "HEAD").strip()
    if now != checkout.sent_from and _on_the_way(worktree, checkout, now, carried["commit"]):
        # An owner stopped half-way through bringing it in (killed after the reset):
        # what is left is to finish, not to fetch again (the ref may be gone already).
        _undo_carries(worktree, checkout.sent_from)
        forget(worktree, checkout)
        return
    if now != checkout.sent_from:
        raise TravelError(f"the task's worktree {worktree} moved while its run was on "
                          f"another node (at {now[:12]}, sent {checkout.sent_from[:12]}); "
                          f"the run's work is at {checkout.ref} in {checkout.url}")
    _git(worktree, "fetch", "--quiet", "--no-tags", checkout.url, checkout.ref)
    fetched = _git(worktree, "rev-parse", "FETCH_HEAD").strip()
    if fetched != carried.get("commit"):
        raise TravelError(f"{checkout.ref} in {checkout.url} is at {fetched[:12]}, not at "
                          f"the commit its node pushed ({str(carried.get('commit'))[:12]})")
    _git(worktree, "reset", "--quiet", "--hard", fetched)
    _undo_carries(worktree, checkout.sent_from)
    forget(worktree, checkout)


def _on_the_way(worktree: str, checkout: GitCheckout, now: str, pushed: str) -> bool:
    """Whether the worktree's ``now`` lies between what was sent and what the node
    pushed: the work was (partly) brought in already."""
    def is_ancestor(older: str, newer: str) -> bool:
        try:
            _git(worktree, "merge-base", "--is-ancestor", older, newer)
        except TravelError:
            return False
        return True

    return is_ancestor(checkout.sent_from, now) and is_ancestor(now, pushed)


def _undo_carries(worktree: str, sent_from: str) -> None:
    """Undo the carry commits at the tip (the files stay, uncommitted), down to the
    commit the worktree was at: a carry commit under the agent's own commits stays."""
    while True:
        head = _git(worktree, "rev-parse", "HEAD").strip()
        if head == sent_from or CARRY_TRAILER not in _git(worktree, "log", "-1",
                                                          "--format=%B", head):
            return
        _git(worktree, "reset", "--quiet", "--mixed", "HEAD~1")


def forget(worktree: str, checkout: GitCheckout) -> None:
    """Delete the run's hidden ref from the remote (best effort: it is only a ref)."""
    with contextlib.suppress(TravelError):
        _git(worktree, "push", "--quiet", checkout.url, f":{checkout.ref}")


# -- on the node ---------------------------------------------------------------------------


def check_out(checkout: GitCheckout, cache_root: Path, work_dir: Path) -> str:
    """Fetch the run's ref into this node's cache of the repository and make its worktree
    at ``work_dir``; the agent's directory in it."""
    cache = _cache_of(cache_root, checkout.url)
    cache_root.mkdir(parents=True, exist_ok=True)
    with _locked(cache):
        if not (cache / "HEAD").exists():
            _git(None, "init", "--quiet", "--bare", str(cache))
        try:
            _git(str(cache), "fetch", "--quiet", "--no-tags", checkout.url,
                 f"+{checkout.ref}:{checkout.ref}")
        except TravelError as exc:
            raise TravelError(f"this node could not fetch the task's code from "
                              f"{checkout.url}: {exc}") from None
        if work_dir.exists():  # left by an earlier attempt that ended with its node
            with contextlib.suppress(TravelError):
                _git(str(cache), "worktree", "remove", "--force", str(work_dir))
            shutil.rmtree(work_dir, ignore_errors=True)
            _git(str(cache), "worktree", "prune")
        _git(str(cache), "worktree", "add", "--quiet", "--detach", "--force", str(work_dir),
             checkout.commit)
    return str(work_dir / checkout.subdir) if checkout.subdir else str(work_dir)


def carry_back(checkout: GitCheckout, work_dir: Path) -> dict[str, Any]:
    """Commit what the agent left uncommitted (a carry commit) and push the run's ref;
    ``{"commit": sha}`` or ``{"error": why}`` (the work then stays in ``work_dir``)."""
    where = str(work_dir)
    env = {**DEFAULT_IDENTITY, **checkout.identity}
    try:
        _git(where, "add", "-A")
        if _git(where, "status", "--porcelain").strip():
            _git(where, "commit", "--quiet", "--no-verify", "-m",
                 f"claudine: the agent's uncommitted changes\n\n{CARRY_TRAILER}\n", env=env)
        commit = _git(where, "rev-parse", "HEAD").strip()
        _git(where, "push", "--quiet", "--force", checkout.url, f"HEAD:{checkout.ref}")
    except TravelError as exc:
        return {"error": f"{exc} (the work stays on the node in {where})"}
    return {"commit": commit}


def remove_checkout(checkout: GitCheckout, cache_root: Path, work_dir: Path) -> None:
    """Delete the run's worktree and its ref from the node's cache."""
    cache = _cache_of(cache_root, checkout.url)
    with _locked(cache), contextlib.suppress(TravelError):
        _git(str(cache), "worktree", "remove", "--force", str(work_dir))
        _git(str(cache), "update-ref", "-d", checkout.ref)


# -- git --------------------------------------------------------------------------------------


def _cache_of(cache_root: Path, url: str) -> Path:
    """A node's bare cache of the repository at ``url``."""
    return cache_root / (hashlib.sha256(url.encode()).hexdigest()[:16] + ".git")


@contextlib.contextmanager
def _locked(cache: Path) -> Iterator[None]:
    """One git operation at a time on a node's cache (runs start side by side)."""
    with open(f"{cache}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _git(cwd: str | None, *args: str, env: dict[str, str] | None = None) -> str:
    """``git args`` in ``cwd``; its stdout. Raises TravelError with git's stderr."""
    full_env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", **(env or {})}
    try:
        done = subprocess.run(["git", *args], cwd=cwd, env=full_env, capture_output=True,
                              text=True, timeout=GIT_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise TravelError(f"git {args[0]} failed: {exc}") from None
    if done.returncode != 0:
        said = (done.stderr or done.stdout).strip().splitlines()
        raise TravelError(f"git {args[0]}: {said[-1] if said else f'exit {done.returncode}'}")
    return done.stdout
