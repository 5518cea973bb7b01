"""Pull requests against a fake GitHub API (PyGithub, custom base URL), and the CLI."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from engine_helpers import CLAUDINE, agent_env, cli_env, make_config, wait_for_state, wait_until
from fakes.fake_github import FakeGitHub
from git_helpers import git, wt_path

from claudine_core.engine import Engine
from claudine_core.isolation.github import github_full_name
from claudine_core.models import MergeStrategy, Task, TaskSpec, TaskState

DONE = (TaskState.COMPLETED, TaskState.FAILED, TaskState.CANCELLED)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repo with a local bare repository as ``origin`` and a .claudine.toml naming it."""
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(remote)], check=True)
    path = tmp_path / "repo"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    git(path, "config", "user.name", "Test User")
    git(path, "config", "user.email", "test@example.com")
    (path / "a.txt").write_text("original\n")
    (path / ".gitignore").write_text(".claudine.toml\n")
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "initial")
    git(path, "remote", "add", "origin", str(remote))
    git(path, "push", "-q", "origin", "main")
    (path / ".claudine.toml").write_text('[worktree]\ngithub_repo = "octo/demo"\n')
    return path


@pytest.fixture
def github():
    with FakeGitHub() as fake:
        yield fake


async def run_engine(home: Path, api_url: str | None, spec: TaskSpec) -> Task:
    engine = Engine(make_config(home, github_api_url=api_url), env=agent_env(), tick_s=0.05)
    await engine.start()
    try:
        task = engine.service.delegate(spec)
        await wait_for_state(engine, task.id, DONE)

        def outcome() -> Task | None:
            current = engine.service.get(task.id)
            return current if current.merge and current.merge["status"] != "pending" else None

        return await wait_until(outcome)
    finally:
        await engine.stop(stop_agents=True)


def pr_spec(repo: Path, prompt: str = "[write:feature.txt=done] Add the feature file") -> TaskSpec:
    return TaskSpec(prompt=prompt, cwd=str(repo), worktree=True, merge_strategy=MergeStrategy.PR)


async def test_pr_pushes_branch_and_opens_pull_request(
    repo: Path, github: FakeGitHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", "test-token-123")
    (repo / "a.txt").write_text("user edit, not committed\n")
    done = await run_engine(tmp_path / "home", github.api_url, pr_spec(repo))
    merge = done.merge or {}
    assert merge["status"] == "pr", merge
    assert merge["pr_url"] == f"{github.url}/octo/demo/pull/1" and merge["pr_number"] == 1
    # The branch reached the remote with the agent's commit.
    remote = tmp_path / "remote.git"
    assert git(remote, "show", f"{done.branch}:feature.txt") == "done"
    # What PyGithub sent.
    posts = [r for r in github.requests if r["method"] == "POST"]
    assert len(posts) == 1
    request = posts[0]
    assert request["path"] == "/api/v3/repos/octo/demo/pulls"
    assert "test-token-123" in request["headers"]["authorization"]
    body = request["json"]
    assert body["head"] == done.branch and body["base"] == "main"
    assert body["title"] == "[write:feature.txt=done] Add the feature file"
    assert done.id in body["body"] and "FAKE_DONE" in body["body"]  # prompt + agent's result
    # The user's checkout was not touched.
    assert (repo / "a.txt").read_text() == "user edit, not committed\n"
    assert git(repo, "rev-list", "--count", "main") == "1"
    assert not wt_path(done).exists()


async def test_pr_without_token_keeps_branch_and_says_why(
    repo: Path, github: FakeGitHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    done = await run_engine(tmp_path / "home", github.api_url, pr_spec(repo))
    merge = done.merge or {}
    assert merge["status"] == "kept" and "GITHUB_TOKEN" in merge["reason"]
    assert wt_path(done).is_dir() and not github.requests


async def test_pr_api_error_is_reported(
    repo: Path, github: FakeGitHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", "t")
    github.fail_with = (422, "Validation Failed")
    done = await run_engine(tmp_path / "home", github.api_url, pr_spec(repo))
    merge = done.merge or {}
    assert merge["status"] == "kept"
    assert "pushed" in merge["reason"] and "422" in merge["reason"]


def test_github_full_name_from_remote_urls() -> None:
    assert github_full_name("https://github.com/octo/demo.git") == "octo/demo"
    assert github_full_name("git@github.com:octo/demo.git") == "octo/demo"
    assert github_full_name("ssh://git@ghe.example.com:2222/team/app") == "team/app"
    assert github_full_name("/srv/git/remote.git") is None


def cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLAUDINE, *args], env=cli_env(home), capture_output=True,
                          text=True, timeout=120)


def test_cli_isolation_flags_need_a_worktree_and_reach_the_task(repo: Path,
                                                               tmp_path: Path) -> None:
    home = tmp_path / "home"
    for flags in (["--base", "main"], ["--merge", "auto"], ["--no-commit"]):
        refused = cli(home, "delegate", "x", "--cwd", str(repo), "--no-serve", *flags)
        assert refused.returncode == 2, refused.stderr  # a usage error, as argparse's
        # Names the flag given and the one missing.
        assert f"{flags[0]}: only applies to a worktree task" in refused.stderr
        assert "--worktree" in refused.stderr
    assert json.loads(cli(home, "status", "--json").stdout) == []  # nothing was stored
    made = cli(home, "delegate", "x", "--cwd", str(repo), "--no-serve", "--worktree",
               "--no-commit", "--json")
    assert made.returncode == 0, made.stderr
    task = json.loads(made.stdout)
    assert task["commit_changes"] is False and task["worktree"] is True
    plain = json.loads(cli(home, "delegate", "y", "--cwd", str(repo), "--no-serve", "--worktree",
                           "--json").stdout)
    assert plain["commit_changes"] is None  # the repository's setting decides


async def test_cli_lists_diffs_and_cleans_with_force_guard(repo: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    spec = TaskSpec(prompt="[write:n.txt=new] manual one", cwd=str(repo), worktree=True)
    done = await run_engine(home, None, spec)
    assert (done.merge or {})["status"] == "kept"
    listed = json.loads(cli(home, "worktrees", "--json").stdout)
    assert [(r["task"], r["state"], r["ahead"]) for r in listed] == [(done.id, "unmerged", 1)]
    table = cli(home, "worktrees").stdout
    assert done.short_id in table and "unmerged" in table and (done.branch or "") in table
    assert "+new" in cli(home, "worktrees", "diff", done.short_id).stdout
    # A diffstat, as git prints it: the file with its count, then the summary.
    stat = cli(home, "worktrees", "diff", done.short_id, "--stat").stdout.splitlines()
    assert [line.split() for line in stat] == [
        ["n.txt", "|", "1", "+"], ["1", "file", "changed,", "1", "insertion(+)"]]
    status = json.loads(cli(home, "status", done.short_id, "--json").stdout)
    assert status["branch"] == done.branch and status["worktree_path"] == done.worktree_path
    refused = cli(home, "worktrees", "clean")
    assert refused.returncode == 1
    assert f"{done.short_id}: kept (" in refused.stdout
    assert "--force removes it anyway" in refused.stdout  # the flag, by its name
    assert wt_path(done).is_dir()
    forced = cli(home, "worktrees", "clean", "--force")
    assert forced.returncode == 0, forced.stderr
    assert not wt_path(done).exists()
    assert git(repo, "branch", "--list", "claudine/*") == ""
    listed = json.loads(cli(home, "worktrees", "--json").stdout)
    assert listed[0]["state"] == "removed" and listed[0]["merge"]["status"] == "discarded"
