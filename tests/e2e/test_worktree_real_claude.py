"""The real ``claude`` CLI in an isolated worktree: its Bash tool writes and commits a file."""

from __future__ import annotations

from pathlib import Path

import pytest
from engine_helpers import agent_env, make_config, wait_for_state, wait_until
from fakes.fake_anthropic import FakeAnthropic
from git_helpers import git, make_repo

from claudine_core.engine import Engine
from claudine_core.models import Task, TaskSpec, TaskState

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
        task = engine.delegate(TaskSpec(prompt=prompt, cwd=str(repo), worktree=True))
        done = await wait_for_state(engine, task.id,
                                    (TaskState.COMPLETED, TaskState.FAILED), timeout=120)
        assert done.status is TaskState.COMPLETED, (done.error, engine.service.stderr_tail(
            task.id))

        def settled() -> Task | None:
            current = engine.get(task.id)
            return current if current.merge and current.merge["status"] != "pending" else None

        done = await wait_until(settled)
    finally:
        await engine.stop(stop_agents=True)

    assert done.result == "FAKE_DONE: agent commit"
    assert done.branch and done.branch.startswith(f"claudine/{done.short_id}-")
    # The agent's own commit is the tip of the task branch (nothing left to auto-commit).
    assert git(repo, "log", "-1", "--format=%s", done.branch) == "agent commit"
    assert git(repo, "show", f"{done.branch}:agent.txt") == "made-by-agent"
    assert git(repo, "rev-list", "--count", f"main..{done.branch}") == "1"
    assert (done.merge or {})["status"] == "kept"
    # The user's tree and branch were not touched.
    assert not (repo / "agent.txt").exists()
    assert (repo / "README.md").read_text() == "user's uncommitted edit\n"
    assert git(repo, "rev-list", "--count", "main") == "1"
