"""The real ``claude`` CLI in an isolated worktree: its Bash tool writes and commits a file."""

from __future__ import annotations

from pathlib import Path

import pytest
from engine_helpers import agent_env, make_config, wait_for_merge, wait_for_state
from fakes.fake_anthropic import FakeAnthropic
from git_helpers import git, make_repo

from claudine_core.engine import Engine
from claudine_core.models import TaskSpec, TaskState

pytestmark = pytest.mark.real_claude


async def test_real_agent_commits_on_task_branch(
    tmp_path: Path, real_claude_bin: Path, real_claude_env: dict[str, str],
    fake_api: FakeAnthropic,
) -> None:
    repo = make_repo(tmp_path / "repo")
    (repo / "README.md").write_text("user's uncommitted edit\n")

    config = make_config(tmp_path / "home", claude_bin=str(real_claude_bin))
    engine = Engine(config, env=agent_env(**real_claude_env), tick_s=0.05)
    await engine.start()
    try:
        prompt = ("BASH: echo made-by-agent > agent.txt && git add agent.txt && "
                  "git commit -q -m 'agent commit' && git log -1 --format=%s")
        task = engine.service.delegate(TaskSpec(prompt=prompt, cwd=str(repo), worktree=True))
        done = await wait_for_merge(engine, task.id, timeout=120)
        assert done.status is TaskState.COMPLETED, (done.error, engine.service.stderr_tail(
            task.id))
        # Resume: claude finds the session only from the folder it ran in, the worktree.
        follow_up = engine.service.resume(task.id, (
            "BASH: echo second > second.txt && git add second.txt && "
            "git commit -q -m 'second commit' && git log -1 --format=%s"))
        resumed = await wait_for_state(engine, follow_up.id,
                                       (TaskState.COMPLETED, TaskState.FAILED), timeout=120)
        assert resumed.status is TaskState.COMPLETED, (
            resumed.error, engine.service.stderr_tail(follow_up.id))
    finally:
        await engine.stop(stop_agents=True)

    assert resumed.session_id == done.session_id
    assert resumed.worktree_path == done.worktree_path and resumed.branch == done.branch
    assert git(repo, "log", "-2", "--format=%s", done.branch or "").splitlines() == [
        "second commit", "agent commit"]

    assert done.result == "FAKE_DONE: agent commit"
    assert done.branch and done.branch.startswith(f"claudine/{done.short_id}-")
    # The agents' own commits are the task branch (nothing left to auto-commit).
    assert git(repo, "show", f"{done.branch}:agent.txt") == "made-by-agent"
    assert git(repo, "rev-list", "--count", f"main..{done.branch}") == "2"
    assert (done.merge or {})["status"] == "kept"
    # The user's tree and branch were not touched.
    assert not (repo / "agent.txt").exists()
    assert (repo / "README.md").read_text() == "user's uncommitted edit\n"
    assert git(repo, "rev-list", "--count", "main") == "1"
