"""A task's code to another node and its work back through the repository's remote
(claudine_core/backends/git_travel.py), with real git: a bare repository is the remote,
one folder plays the owner's worktree and another the node's run folder.

The engine-level path (a task on a worker node of a Ray cluster, merged back by the merge
step) is tests/backends/test_git_travel_on_ray.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from git_helpers import git, make_repo

from claudine_core.backends.base import GitCheckout
from claudine_core.backends.git_travel import (
    TravelError,
    carry_back,
    check_out,
    receive,
    remove_checkout,
    run_ref,
    send,
)


@pytest.fixture
def owner(tmp_path: Path) -> tuple[Path, Path]:
    """A user's repository whose origin is a bare repository, and a task worktree of it
    on its own branch (as the worktree isolation makes one)."""
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    user = make_repo(tmp_path / "user")
    git(user, "remote", "add", "origin", str(remote))
    git(user, "push", "-q", "origin", "main")
    (user / "local-only.txt").write_text("a commit never pushed\n")
    git(user, "add", "-A")
    git(user, "commit", "-q", "-m", "not pushed yet")
    worktree = tmp_path / "worktree"
    git(user, "worktree", "add", "-q", "-b", "claudine/t1", str(worktree), "main")
    return remote, worktree


def remote_refs(remote: Path) -> str:
    return git(remote, "for-each-ref", "--format=%(refname)")


def sent_and_checked_out(worktree: Path, tmp_path: Path,
                         run: str = "run-t1-1") -> tuple[GitCheckout, Path]:
    """The worktree sent for ``run`` and checked out in a node's folder."""
    checkout = send(str(worktree), str(worktree), run)
    assert checkout is not None
    node_work = tmp_path / "node-work"
    check_out(checkout, tmp_path / "repos", node_work)
    return checkout, node_work


def test_the_work_of_a_run_elsewhere_lands_in_the_worktree_uncommitted(
        owner: tuple[Path, Path], tmp_path: Path) -> None:
    remote, worktree = owner
    (worktree / "sub").mkdir()
    checkout = send(str(worktree), str(worktree / "sub"), "run-t1-1")
    assert checkout is not None and checkout.subdir == "sub"
    # The hidden ref carries the base, an unpushed commit included; no branch appears.
    assert run_ref("run-t1-1") in remote_refs(remote)
    assert "refs/heads/claudine" not in remote_refs(remote)

    node_work = tmp_path / "node" / "work"
    cwd = check_out(checkout, tmp_path / "node" / "repos", node_work)
    assert Path(cwd) == node_work / "sub"
    assert (node_work / "local-only.txt").read_text() == "a commit never pushed\n"
    (node_work / "a.txt").write_text("changed on the node\n")
    (node_work / "new.txt").write_text("made on the node\n")
    carried = carry_back(checkout, node_work)
    assert "commit" in carried, carried

    receive(str(worktree), checkout, carried)
    assert (worktree / "a.txt").read_text() == "changed on the node\n"
    assert (worktree / "new.txt").read_text() == "made on the node\n"
    # As if the agent had run here: its files uncommitted, the branch where it was.
    assert git(worktree, "rev-parse", "HEAD") == checkout.sent_from
    assert git(worktree, "status", "--porcelain").splitlines() == [" M a.txt", "?? new.txt"]
    assert run_ref("run-t1-1") not in remote_refs(remote)  # the ref is cleaned up
    remove_checkout(checkout, tmp_path / "node" / "repos", node_work)
    assert not node_work.exists()


def test_the_agents_own_commits_come_back_as_commits(owner: tuple[Path, Path],
                                                      tmp_path: Path) -> None:
    _, worktree = owner
    checkout, node_work = sent_and_checked_out(worktree, tmp_path)
    (node_work / "feature.txt").write_text("committed by the agent\n")
    git(node_work, "add", "feature.txt")
    git(node_work, "-c", "user.name=Agent", "-c", "user.email=agent@example.com",
        "commit", "-q", "-m", "agent: add feature")
    receive(str(worktree), checkout, carry_back(checkout, node_work))
    assert git(worktree, "log", "-1", "--format=%s") == "agent: add feature"
    assert git(worktree, "status", "--porcelain") == ""


def test_uncommitted_work_of_an_earlier_attempt_travels_to_the_next(
        owner: tuple[Path, Path], tmp_path: Path) -> None:
    _, worktree = owner
    (worktree / "a.txt").write_text("left by attempt 1\n")
    before = git(worktree, "status", "--porcelain")
    checkout = send(str(worktree), str(worktree), "run-t1-2")
    assert checkout is not None and checkout.commit != checkout.sent_from
    assert git(worktree, "status", "--porcelain") == before  # sending touched nothing
    node_work = tmp_path / "node-work"
    check_out(checkout, tmp_path / "repos", node_work)
    assert (node_work / "a.txt").read_text() == "left by attempt 1\n"
    (node_work / "b.txt").write_text("attempt 2\n")
    receive(str(worktree), checkout, carry_back(checkout, node_work))
    assert git(worktree, "rev-parse", "HEAD") == checkout.sent_from  # both carries undone
    assert (worktree / "a.txt").read_text() == "left by attempt 1\n"
    assert (worktree / "b.txt").read_text() == "attempt 2\n"


def test_a_repository_without_a_remote_cannot_send(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "alone")
    assert send(str(repo), str(repo), "run-t1-1") is None


def test_an_unreachable_remote_is_a_clear_error_and_the_worktree_is_untouched(
        owner: tuple[Path, Path], tmp_path: Path) -> None:
    _, worktree = owner
    git(worktree, "remote", "set-url", "origin", str(tmp_path / "gone.git"))
    (worktree / "a.txt").write_text("mine\n")
    with pytest.raises(TravelError, match=r"could not push the task's code to .*gone\.git"):
        send(str(worktree), str(worktree), "run-t1-1")
    assert (worktree / "a.txt").read_text() == "mine\n"


def test_work_that_did_not_come_back_is_an_error_naming_where_it_is(
        owner: tuple[Path, Path], tmp_path: Path) -> None:
    remote, worktree = owner
    checkout, node_work = sent_and_checked_out(worktree, tmp_path)
    (node_work / "a.txt").write_text("precious\n")
    broken = type(checkout)(**{**checkout.__dict__, "url": str(tmp_path / "gone.git")})
    carried = carry_back(broken, node_work)
    assert "error" in carried and str(node_work) in carried["error"]
    assert (node_work / "a.txt").read_text() == "precious\n"  # kept on the node
    with pytest.raises(TravelError, match="did not come back from its node"):
        receive(str(worktree), checkout, carried)
    assert git(worktree, "status", "--porcelain") == ""


def test_a_worktree_that_moved_meanwhile_is_not_overwritten(owner: tuple[Path, Path],
                                                             tmp_path: Path) -> None:
    _, worktree = owner
    checkout, node_work = sent_and_checked_out(worktree, tmp_path)
    (node_work / "a.txt").write_text("from the node\n")
    carried = carry_back(checkout, node_work)
    (worktree / "mine.txt").write_text("a person's commit\n")
    git(worktree, "add", "mine.txt")
    git(worktree, "commit", "-q", "-m", "a person worked here")
    with pytest.raises(TravelError, match="moved while its run was on another node"):
        receive(str(worktree), checkout, carried)
    assert git(worktree, "log", "-1", "--format=%s") == "a person worked here"


def test_a_node_that_cannot_fetch_says_from_where(owner: tuple[Path, Path],
                                                  tmp_path: Path) -> None:
    _, worktree = owner
    checkout = send(str(worktree), str(worktree), "run-t1-1")
    assert checkout is not None
    elsewhere = type(checkout)(**{**checkout.__dict__, "url": str(tmp_path / "nowhere.git")})
    with pytest.raises(TravelError, match=r"this node could not fetch .*nowhere\.git"):
        check_out(elsewhere, tmp_path / "repos", tmp_path / "node-work")


def test_a_checkout_left_by_an_earlier_attempt_is_replaced(owner: tuple[Path, Path],
                                                           tmp_path: Path) -> None:
    """A retry of a task checks out into the same folder (its agent session is found by
    directory); what an attempt lost with its node left there goes."""
    _, worktree = owner
    node_work = tmp_path / "checkouts" / "t1"
    first = send(str(worktree), str(worktree), "run-t1-1", work_name="t1")
    assert first is not None and first.work_name == "t1"
    check_out(first, tmp_path / "repos", node_work)
    (node_work / "half-done.txt").write_text("from a run lost with its node\n")
    second = send(str(worktree), str(worktree), "run-t1-2", work_name="t1")
    assert second is not None
    check_out(second, tmp_path / "repos", node_work)
    assert not (node_work / "half-done.txt").exists()
    assert (node_work / "a.txt").read_text() == "original\n"


def test_work_brought_in_by_an_owner_that_was_killed_half_way_is_not_refused(
        owner: tuple[Path, Path], tmp_path: Path) -> None:
    """The owner was killed after it moved the worktree to the node's commit, before it
    recorded the run's end; the next owner brings the work in again: it finishes the job
    (the carry commit undone, the ref removed) instead of taking the worktree for moved."""
    remote, worktree = owner
    checkout, node_work = sent_and_checked_out(worktree, tmp_path)
    (node_work / "feature.txt").write_text("committed by the agent\n")
    git(node_work, "add", "feature.txt")
    git(node_work, "-c", "user.name=Agent", "-c", "user.email=agent@example.com",
        "commit", "-q", "-m", "agent: add feature")
    (node_work / "a.txt").write_text("left uncommitted\n")
    carried = carry_back(checkout, node_work)
    git(worktree, "fetch", "-q", str(remote), checkout.ref)
    git(worktree, "reset", "-q", "--hard", "FETCH_HEAD")  # as far as the first owner got
    receive(str(worktree), checkout, carried)
    assert git(worktree, "log", "-1", "--format=%s") == "agent: add feature"
    assert git(worktree, "status", "--porcelain") == " M a.txt"
    assert run_ref("run-t1-1") not in remote_refs(remote)
    receive(str(worktree), checkout, carried)  # and once more changes nothing
    assert git(worktree, "log", "-1", "--format=%s") == "agent: add feature"
    assert git(worktree, "status", "--porcelain") == " M a.txt"
