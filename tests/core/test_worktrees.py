"""Worktree isolation end to end: the real Engine, the fake agent, real git repos in tmp dirs."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from engine_helpers import (
    agent_env,
    make_config,
    wait_for_merge,
    wait_for_state,
    wait_until,
)
from git_helpers import git, make_repo, wt_path

from claudine_core.engine import Engine
from claudine_core.isolation.worktrees import Worktrees, slugify
from claudine_core.models import MergeStrategy, Task, TaskSpec, TaskState
from claudine_core.service import InvalidRequest, TaskService

DONE = (TaskState.COMPLETED, TaskState.FAILED, TaskState.CANCELLED)


def delegate(engine: Engine, spec: TaskSpec) -> Task:
    return engine.service.delegate(spec)


def mode(path: Path) -> int:
    """The permission bits of ``path``."""
    return path.stat().st_mode & 0o777


def as_path(text: str) -> Path:
    return Path(text)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo")


def isolated(prompt: str, cwd: Path, strategy: str | None = None, **kw: object) -> TaskSpec:
    merge = MergeStrategy(strategy) if strategy else None
    return TaskSpec(prompt=prompt, cwd=str(cwd), worktree=True, merge_strategy=merge, **kw)


def dirty_user_tree(repo: Path) -> None:
    """Uncommitted work of every kind: modified, staged, untracked."""
    (repo / "a.txt").write_text("user edit, not committed\n")
    (repo / "staged.txt").write_text("staged\n")
    git(repo, "add", "staged.txt")
    (repo / "untracked.txt").write_text("untracked\n")


def assert_user_tree_intact(repo: Path) -> None:
    assert (repo / "a.txt").read_text() == "user edit, not committed\n"
    assert (repo / "untracked.txt").read_text() == "untracked\n"
    status = "\n" + git(repo, "status", "--porcelain")
    assert "\n M a.txt" in status and "A  staged.txt" in status and "?? untracked.txt" in status


async def test_two_parallel_tasks_stay_isolated(engine: Engine, repo: Path) -> None:
    one = engine.service.delegate(isolated("[sleep:0.3][write:same.txt=one] first", repo))
    two = engine.service.delegate(isolated("[sleep:0.3][write:same.txt=two] second", repo))
    both_running = await wait_until(
        lambda: all(engine.service.get(t.id).status is not TaskState.QUEUED for t in (one, two)))
    assert both_running
    a, b = await wait_for_merge(engine, one.id), await wait_for_merge(engine, two.id)
    assert a.status is b.status is TaskState.COMPLETED, (a.error, b.error)
    assert a.worktree_path != b.worktree_path and a.branch != b.branch
    for task, content in ((a, "one"), (b, "two")):
        assert re.fullmatch(rf"claudine/{task.short_id}-[a-z0-9-]+", task.branch or "")
        assert task.base_branch == "main" and task.merge_strategy == "manual"
        assert task.merge and task.merge["status"] == "kept"
        assert git(repo, "show", f"{task.branch}:same.txt") == content
        assert (wt_path(task) / "same.txt").read_text() == content
        message = git(repo, "log", "-1", "--format=%B", task.branch or "")
        assert task.id in message and "claudine:" in message
    assert not (repo / "same.txt").exists()
    assert git(repo, "status", "--porcelain") == ""
    assert git(repo, "rev-list", "--count", "main") == "1"


async def test_agent_runs_in_matching_subdirectory(engine: Engine, repo: Path) -> None:
    sub = repo / "pkg" / "inner"
    sub.mkdir(parents=True)
    (sub / "keep.txt").write_text("k\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "sub")
    task = await wait_for_merge(engine, delegate(engine, isolated("[write:made.txt=x]", sub)).id)
    assert task.status is TaskState.COMPLETED, task.error
    assert git(repo, "show", f"{task.branch}:pkg/inner/made.txt") == "x"
    assert not (sub / "made.txt").exists()


@pytest.mark.parametrize("strategy", ["manual", "auto", "patch"])
async def test_user_uncommitted_changes_survive(engine: Engine, repo: Path,
                                                strategy: str) -> None:
    dirty_user_tree(repo)
    before = git(repo, "rev-parse", "main")
    task = delegate(engine, isolated("[write:new.txt=from agent] add a file", repo, strategy))
    done = await wait_for_merge(engine, task.id)
    assert done.status is TaskState.COMPLETED, done.error
    assert_user_tree_intact(repo)
    merge = done.merge or {}
    assert merge["strategy"] == strategy
    if strategy == "manual":
        assert merge["status"] == "kept"
        assert wt_path(done).is_dir()
        assert git(repo, "rev-parse", "main") == before
    elif strategy == "auto":
        assert merge["status"] == "merged", merge
        assert git(repo, "rev-parse", "main") == merge["commit"] != before
        assert (repo / "new.txt").read_text() == "from agent"  # the checkout was updated
        assert "new.txt" not in git(repo, "status", "--porcelain")
        assert not wt_path(done).exists()
    else:
        assert merge["status"] == "patch"
        patch = as_path(merge["patch"])
        assert patch.is_absolute() and "new.txt" in patch.read_text()
        assert not wt_path(done).exists()
        assert git(repo, "rev-parse", "main") == before
        clone = make_repo(repo.parent / "clone", commit=False)
        git(clone, "pull", "-q", str(repo), before)
        git(clone, "am", "-q", str(patch))
        assert (clone / "new.txt").read_text() == "from agent"


async def test_auto_merge_when_base_not_checked_out(engine: Engine, repo: Path) -> None:
    git(repo, "branch", "release")
    (repo / "a.txt").write_text("user edit, not committed\n")
    task = delegate(engine, isolated("[write:rel.txt=r]", repo, "auto", base_branch="release"))
    done = await wait_for_merge(engine, task.id)
    assert (done.merge or {})["status"] == "merged", done.merge
    assert git(repo, "show", "release:rel.txt") == "r"
    assert git(repo, "rev-parse", "--abbrev-ref", "HEAD") == "main"
    assert not (repo / "rel.txt").exists()
    assert (repo / "a.txt").read_text() == "user edit, not committed\n"


async def test_conflicting_auto_merge_falls_back_to_manual(engine: Engine, repo: Path) -> None:
    task = delegate(engine, isolated("[sleep:2][write:a.txt=agent version] edit a", repo, "auto"))
    await wait_until(lambda: engine.service.get(task.id).worktree_path)
    (repo / "a.txt").write_text("user version\n")  # a conflicting commit on main meanwhile
    git(repo, "commit", "-q", "-am", "user change")
    user_head = git(repo, "rev-parse", "main")
    done = await wait_for_merge(engine, task.id)
    merge = done.merge or {}
    assert merge["status"] == "kept" and merge["fallback"] == "manual"
    assert "conflict" in merge["reason"] and "a.txt" in merge["reason"]
    assert git(repo, "rev-parse", "main") == user_head
    assert (repo / "a.txt").read_text() == "user version\n"
    assert git(repo, "status", "--porcelain") == ""
    assert git(repo, "show", f"{done.branch}:a.txt") == "agent version"


async def test_auto_merge_touching_user_uncommitted_file_falls_back(engine: Engine,
                                                                     repo: Path) -> None:
    (repo / "a.txt").write_text("user edit, not committed\n")
    task = engine.service.delegate(isolated("[write:a.txt=agent] edit a", repo, "auto"))
    done = await wait_for_merge(engine, task.id)
    merge = done.merge or {}
    assert merge["status"] == "kept" and "uncommitted" in merge["reason"], merge
    assert (repo / "a.txt").read_text() == "user edit, not committed\n"
    assert git(repo, "rev-list", "--count", "main") == "1"


async def test_agent_without_changes_removes_worktree(engine: Engine, repo: Path) -> None:
    done = await wait_for_merge(engine, delegate(engine, isolated("just answer", repo, "auto")).id)
    assert (done.merge or {})["status"] == "empty"
    assert not wt_path(done).exists()
    assert git(repo, "branch", "--list", "claudine/*") == ""


@pytest.mark.parametrize(("repo_setting", "task_choice", "committed"),
                         [(None, False, False), ("commit = false", True, True),
                          ("commit = false", None, False)])
async def test_task_choice_to_commit_leftovers_beats_the_repo_setting(
        engine: Engine, repo: Path, repo_setting: str | None, task_choice: bool | None,
        committed: bool) -> None:
    if repo_setting:
        (repo / ".claudine.toml").write_text(f"[worktree]\n{repo_setting}\n")
        git(repo, "add", ".claudine.toml")
        git(repo, "commit", "-q", "-m", "settings")
    spec = isolated("[write:left.txt=draft] leave a file", repo, "auto",
                    commit_changes=task_choice)
    done = await wait_for_merge(engine, engine.service.delegate(spec).id)
    assert done.status is TaskState.COMPLETED, done.error
    assert done.commit_changes is task_choice
    merge = done.merge or {}
    if committed:
        assert merge["status"] == "merged", merge
        assert (repo / "left.txt").read_text() == "draft"
    else:
        assert merge["status"] == "kept" and "uncommitted" in merge["reason"], merge
        assert (wt_path(done) / "left.txt").read_text() == "draft"  # left for review
        assert "?? left.txt" in git(wt_path(done), "status", "--porcelain")
        assert not (repo / "left.txt").exists()


async def test_repo_without_commits_fails_clearly(engine: Engine, tmp_path: Path) -> None:
    empty = make_repo(tmp_path / "empty", commit=False)
    done = await wait_for_state(engine, delegate(engine, isolated("[write:x.txt=1]", empty)).id,
                                DONE)
    assert done.status is TaskState.FAILED
    assert "no commits" in (done.error or "")
    assert not (empty / "x.txt").exists()


async def test_detached_head_needs_a_base(engine: Engine, repo: Path) -> None:
    git(repo, "checkout", "-q", "--detach")
    failed = await wait_for_state(
        engine, engine.service.delegate(isolated("[write:x.txt=1]", repo)).id, DONE)
    assert failed.status is TaskState.FAILED
    assert "detached" in (failed.error or "") and "--base" in (failed.error or "")
    assert not (repo / "x.txt").exists()
    ok = await wait_for_merge(engine, engine.service.delegate(
        isolated("[write:x.txt=1]", repo, base_branch="main")).id)
    assert ok.status is TaskState.COMPLETED and ok.base_branch == "main"
    assert git(repo, "show", f"{ok.branch}:x.txt") == "1"


async def test_cwd_not_a_repository_is_refused_at_delegate(
    engine: Engine, tmp_path: Path
) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(InvalidRequest, match="not inside a git repository"):
        engine.service.delegate(isolated("[write:x.txt=1]", plain))
    assert engine.service.list_tasks() == []


async def test_repository_gone_before_dispatch_fails_clearly(tmp_path: Path) -> None:
    """The check at delegate time cannot see the future: a repository removed before the
    task runs still fails it with the reason, and the agent never runs."""
    gone = make_repo(tmp_path / "gone")
    config = make_config(tmp_path / "home")
    client = TaskService(config, env=agent_env())
    task = client.delegate(isolated("[write:x.txt=1]", gone))
    client.close()
    shutil.rmtree(gone / ".git")
    async with Engine(config, env=agent_env(), tick_s=0.05) as eng:
        done = await wait_for_state(eng, task.id, DONE)
    assert done.status is TaskState.FAILED
    assert "not inside a git repository" in (done.error or "")
    assert not (gone / "x.txt").exists()


async def test_missing_base_branch_fails_clearly(engine: Engine, repo: Path) -> None:
    done = await wait_for_state(
        engine, engine.service.delegate(isolated("hi", repo, base_branch="nope")).id, DONE)
    assert done.status is TaskState.FAILED and "'nope' does not exist" in (done.error or "")


async def test_setup_copies_ignored_files_and_logs(engine: Engine, repo: Path,
                                                   tmp_path: Path) -> None:
    (repo / ".gitignore").write_text(".env\n.claudine.toml\n")
    (repo / ".env").write_text("SECRET=1\n")
    (repo / ".claudine.toml").write_text(
        '[worktree]\ncopy = [".env", "missing.cfg"]\nsetup = "echo setup-says-hi; test -f .env"\n')
    git(repo, "add", ".gitignore")
    git(repo, "commit", "-q", "-m", "ignore")
    done = await wait_for_merge(engine, delegate(engine, isolated("[write:f.txt=1]", repo)).id)
    assert done.status is TaskState.COMPLETED, done.error
    assert (wt_path(done) / ".env").read_text() == "SECRET=1\n"
    assert ".env" not in git(repo, "show", "--name-only", "--format=", done.branch or "")
    log = (tmp_path / "home" / "runs" / done.id / "attempt-1" / "worktree.log").read_text()
    assert "setup-says-hi" in log and "copy: .env" in log and "missing.cfg does not" in log


async def test_failing_setup_fails_task_and_cleans_up(engine: Engine, repo: Path,
                                                      tmp_path: Path) -> None:
    (repo / ".claudine.toml").write_text('[worktree]\nsetup = "echo broken >&2; exit 3"\n')
    done = await wait_for_state(engine, delegate(engine, isolated("[write:x=1]", repo)).id, DONE)
    assert done.status is TaskState.FAILED
    assert "setup command" in (done.error or "") and "exit 3" in (done.error or "")
    assert not wt_path(done).exists()
    assert git(repo, "branch", "--list", "claudine/*") == ""
    assert not list((tmp_path / "home" / "worktrees").iterdir())


async def test_review_actions_and_discard_guard(engine: Engine, repo: Path) -> None:
    done = await wait_for_merge(engine, delegate(engine, isolated("[write:n.txt=new] review me",
                                                          repo)).id)
    wt = Worktrees(engine.config, engine.service.repo)
    assert ("A", "n.txt") in wt.changed_files(done)
    assert "+new" in wt.diff(done)
    state = wt.state(done)
    assert state["state"] == "unmerged" and state["ahead"] == 1
    with pytest.raises(RuntimeError, match="not discarded"):
        wt.discard(done)
    assert [r["removed"] for r in wt.clean([done])] == [False]
    outcome = wt.merge(done)
    assert outcome["status"] == "merged" and (repo / "n.txt").read_text() == "new"
    assert engine.service.get(done.id).merge == outcome
    assert not wt_path(done).exists()


def test_slugify() -> None:
    assert slugify("Fix the LOGIN bug, please!") == "fix-the-login-bug-please"
    assert slugify("***") == "task"
    assert len(slugify("word " * 40)) <= 40 and not slugify("word " * 40).endswith("-")


async def test_worktree_tasks_keep_the_home_private(engine: Engine, repo: Path) -> None:
    """claudine's own files for a worktree task (the worktrees folder, the worktree's top,
    the setup log, a patch) are 0700/0600 like the rest of the home."""
    (repo / ".gitignore").write_text(".claudine.toml\n")
    git(repo, "add", ".gitignore")
    git(repo, "commit", "-qm", "ignore settings")
    (repo / ".claudine.toml").write_text('[worktree]\nsetup = "echo set-up"\n')
    task = engine.service.delegate(isolated("[write:new.txt=hello] patch me", repo, "patch"))
    done = await wait_for_merge(engine, task.id)
    assert done.merge and done.merge["status"] == "patch", done.merge
    home = engine.config.home  # made by the test (a chosen home keeps its mode)
    wide = [f"{oct(p.stat().st_mode & 0o777)} {p}" for p in home.rglob("*")
            if not p.is_symlink()
            and p.stat().st_mode & 0o777 != (0o700 if p.is_dir() else 0o600)]
    assert wide == []
    assert mode(Path(done.merge["patch"])) == 0o600
    kept = await wait_for_merge(
        engine, engine.service.delegate(isolated("[write:kept.txt=x] keep me", repo, "manual")).id)
    worktree = Path(kept.worktree_path or "")
    # Its contents are the user's code, made by git and the agent with the user's umask
    # (they are merged back); the folder that holds them is private.
    assert mode(worktree) == 0o700 and mode(worktree.parent) == 0o700
