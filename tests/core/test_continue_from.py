"""Continue-from through a real engine and the fake agent: the conversation forked in the
continued task's directory, the fallback without a session, the end state a task leaves,
and the request's checks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from engine_helpers import agent_env, make_config, wait_for_merge, wait_for_state
from git_helpers import git, make_repo

from claudine_core.continuation import git_end_state
from claudine_core.engine import Engine
from claudine_core.errors import InvalidRequest
from claudine_core.models import TERMINAL_STATES, DependencyPolicy, Task, TaskSpec, TaskState


@pytest.fixture
async def logged(tmp_path: Path):
    """An engine whose fake agents log their argv and cwd, and keep their sessions under a
    config folder the way the real CLI does (so resuming an unknown session fails)."""
    log = tmp_path / "agents.jsonl"
    env = agent_env(FAKE_CLAUDE_LOG=str(log), CLAUDE_CONFIG_DIR=str(tmp_path / "claude"))
    eng = Engine(make_config(tmp_path / "home"), env=env, tick_s=0.05)
    await eng.start()
    eng.agent_log = log  # type: ignore[attr-defined]
    yield eng
    await eng.stop(stop_agents=True)


def runs(engine: Engine) -> list[dict[str, Any]]:
    """Each agent run's argv and cwd, in start order."""
    path: Path = engine.agent_log  # type: ignore[attr-defined]
    return [json.loads(line) for line in path.read_text().splitlines()]


def run_of(engine: Engine, task: Task) -> dict[str, Any]:
    """The agent run of the task's latest attempt (found by its prompt file's folder)."""
    [run] = [r for r in runs(engine) if r["cwd"] and _run_dir(engine, task, r)]
    return run


def _run_dir(engine: Engine, task: Task, run: dict[str, Any]) -> bool:
    return any(f"{task.id}/attempt-{task.attempt}" in word for word in run["argv"]) or (
        run.get("task") == task.id)


def agent_input(engine: Engine, task: Task) -> str:
    """What the task's agent read on stdin (its latest attempt's prompt file)."""
    return (engine.service.attempt_dirs(task.id)[-1] / "prompt.txt").read_text()


async def ended(engine: Engine, task: Task) -> Task:
    return await wait_for_state(engine, task.id, TERMINAL_STATES)


async def test_a_continuation_forks_the_conversation_in_the_same_directory(
        logged: Engine, tmp_path: Path) -> None:
    first = logged.service.delegate(TaskSpec(prompt="[sleep:0.5] first", cwd=str(tmp_path)))
    follow = logged.service.delegate(TaskSpec(prompt="second", continue_from=first.short_id))
    assert follow.status is TaskState.BLOCKED  # the continued task has not ended yet
    assert follow.continue_from == first.id and follow.depends_on == (first.id,)
    assert follow.cwd == str(tmp_path)  # the continued task's directory, not this process's
    done_first, done = await ended(logged, first), await ended(logged, follow)
    assert done_first.status is TaskState.COMPLETED and done.status is TaskState.COMPLETED
    first_run, follow_run = runs(logged)
    argv = follow_run["argv"]
    assert argv[argv.index("--resume") + 1] == done_first.session_id
    assert "--fork-session" in argv and "--resume" not in first_run["argv"]
    assert follow_run["cwd"] == first_run["cwd"] == str(tmp_path)
    # A fork: a session of its own, the continued one left as it was.
    assert done.session_id and done.session_id != done_first.session_id
    assert logged.service.get(first.id).session_id == done_first.session_id
    assert done.result == "RESUMED FAKE_DONE: second"
    assert agent_input(logged, done) == "second"


async def test_without_a_session_the_continuation_starts_afresh_with_what_was_left(
        logged: Engine, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    (repo / "a.txt").write_text("changed\n")
    (repo / "new.py").write_text("x = 1\n")
    # It fails before any agent starts: its worktree's base branch does not exist.
    broken = logged.service.delegate(TaskSpec(prompt="build it", cwd=str(repo), worktree=True,
                                              base_branch="no-such-branch"))
    follow = logged.service.delegate(TaskSpec(prompt="finish the build",
                                              continue_from=broken.id))
    assert follow.on_dependency_failure is DependencyPolicy.RUN  # a failed one is continued
    done_broken = await ended(logged, broken)
    assert done_broken.status is TaskState.FAILED and done_broken.session_id is None
    assert "no-such-branch" in (done_broken.error or "")
    done = await ended(logged, follow)
    assert done.status is TaskState.COMPLETED, done.error
    told = agent_input(logged, done)
    head = git(repo, "rev-parse", "HEAD")
    assert told.startswith(f"This task continues task {broken.short_id}, which ended failed "
                           "without an agent conversation to resume.")
    assert "- its prompt: build it" in told
    assert f"- its error: {done_broken.error}" in told
    assert f"branch main at commit {head[:12]}, 2 changed files: a.txt, new.py" in told
    assert told.endswith("\n\nYour task:\nfinish the build")
    assert "--resume" not in runs(logged)[-1]["argv"]


async def test_the_end_state_is_recorded_for_a_git_directory_only(
        engine: Engine, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    plain = tmp_path / "plain"
    plain.mkdir()
    in_git = engine.service.delegate(TaskSpec(prompt="[write:made.txt=hi] work",
                                              cwd=str(repo)))
    outside = engine.service.delegate(TaskSpec(prompt="work", cwd=str(plain)))
    done, done_outside = await ended(engine, in_git), await ended(engine, outside)
    assert done.end_state == {"directory": str(repo), "branch": "main",
                              "commit": git(repo, "rev-parse", "HEAD"),
                              "changed_files": ["made.txt"], "changed_count": 1}
    assert done_outside.status is TaskState.COMPLETED and done_outside.end_state is None


async def test_the_end_state_lists_at_most_50_changed_files_and_counts_them_all(
        engine: Engine, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    for n in range(60):
        (repo / f"f{n:02}.txt").write_text("x")
    done = await ended(engine, engine.service.delegate(TaskSpec(prompt="x", cwd=str(repo))))
    assert done.end_state is not None
    assert done.end_state["changed_count"] == 60
    assert done.end_state["changed_files"] == [f"f{n:02}.txt" for n in range(50)]


def test_an_unknown_or_ambiguous_task_is_refused_and_nothing_is_stored(
        engine: Engine, tmp_path: Path) -> None:
    with pytest.raises(InvalidRequest) as refused:
        engine.service.delegate(TaskSpec(prompt="go on", cwd=str(tmp_path),
                                         continue_from="task-0123456789ab"))
    assert list(refused.value.problems) == ["continue_from"]
    assert "no task with id 'task-0123456789ab'" in refused.value.problems["continue_from"]
    with pytest.raises(InvalidRequest) as short:
        engine.service.delegate(TaskSpec(prompt="go on", cwd=str(tmp_path),
                                         continue_from="abc"))
    assert "too short" in short.value.problems["continue_from"]
    assert engine.service.list_tasks() == []


def test_another_directory_than_the_continued_tasks_is_refused(
        engine: Engine, tmp_path: Path) -> None:
    first = engine.service.delegate(TaskSpec(prompt="[hang] first", cwd=str(tmp_path)))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    with pytest.raises(InvalidRequest) as refused:
        engine.service.delegate(TaskSpec(prompt="go on", cwd=str(elsewhere),
                                         continue_from=first.id))
    assert list(refused.value.problems) == ["cwd"]
    assert f"ran in {tmp_path}: a continuation runs where the conversation is" in \
        refused.value.problems["cwd"]
    assert [t.id for t in engine.service.list_tasks()] == [first.id]


def test_the_implied_dependency_is_added_once(engine: Engine, tmp_path: Path) -> None:
    first = engine.service.delegate(TaskSpec(prompt="[hang] first", cwd=str(tmp_path)))
    other = engine.service.delegate(TaskSpec(prompt="[hang] other", cwd=str(tmp_path)))
    follow = engine.service.delegate(TaskSpec(
        prompt="go on", continue_from=first.short_id,
        depends_on=(other.id, first.id), on_dependency_failure=DependencyPolicy.FAIL))
    assert follow.depends_on == (other.id, first.id)
    assert follow.on_dependency_failure is DependencyPolicy.FAIL  # as asked
    assert follow.status is TaskState.BLOCKED


async def test_a_retry_of_a_continuation_forks_the_continued_session_again(
        logged: Engine, tmp_path: Path) -> None:
    first = await ended(logged, logged.service.delegate(
        TaskSpec(prompt="first", cwd=str(tmp_path))))
    follow = await ended(logged, logged.service.delegate(
        TaskSpec(prompt="[fail] second", continue_from=first.id)))
    assert follow.status is TaskState.FAILED
    again = logged.service.retry(follow.id)
    assert again.continue_from == first.id and again.parent_id == follow.id
    done = await ended(logged, again)
    assert done.status is TaskState.FAILED  # the same prompt fails the same way
    argv = runs(logged)[-1]["argv"]
    assert argv[argv.index("--resume") + 1] == first.session_id  # not the failed fork's
    assert "--fork-session" in argv
    assert done.session_id not in (first.session_id, follow.session_id)


async def test_resuming_a_continuation_goes_on_in_its_own_session(
        logged: Engine, tmp_path: Path) -> None:
    first = await ended(logged, logged.service.delegate(
        TaskSpec(prompt="first", cwd=str(tmp_path))))
    follow = await ended(logged, logged.service.delegate(
        TaskSpec(prompt="second", continue_from=first.id)))
    resumed = await ended(logged, logged.service.resume(follow.id, "third"))
    assert resumed.status is TaskState.COMPLETED, resumed.error
    argv = runs(logged)[-1]["argv"]
    assert argv[argv.index("--resume") + 1] == follow.session_id
    assert "--fork-session" not in argv
    assert resumed.session_id == follow.session_id  # a resume, not another fork


async def test_a_worktree_continuation_works_in_the_continued_tasks_worktree(
        logged: Engine, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    first = logged.service.delegate(TaskSpec(prompt="[write:one.txt=1] first", cwd=str(repo),
                                             worktree=True))
    follow = logged.service.delegate(TaskSpec(prompt="[write:two.txt=2] second",
                                              continue_from=first.id))
    assert follow.worktree and follow.cwd == str(repo)
    done_first = await wait_for_merge(logged, first.id)
    done = await wait_for_merge(logged, follow.id)
    assert done.status is TaskState.COMPLETED, done.error
    assert done.worktree_path == done_first.worktree_path
    assert done.branch == done_first.branch
    assert runs(logged)[-1]["cwd"] == done_first.worktree_path
    assert done_first.merge and done_first.merge["status"] == "kept"  # manual by default
    files = git(repo, "show", "--name-only", "--format=", done.branch or "").split()
    assert files == ["two.txt"]  # committed on the branch the first step's commit is on
    assert git(repo, "log", "--format=%s", "-n", "3", done.branch or "").count("\n") == 2


async def test_a_removed_worktree_is_made_again_at_the_same_path_for_the_conversation(
        logged: Engine, tmp_path: Path) -> None:
    """An ``auto`` merge removes the worktree; the continuation waits for that merge step,
    then continues the conversation in a worktree re-created at the same path, from the
    base branch that now holds the first task's work."""
    repo = make_repo(tmp_path / "repo")
    first = logged.service.delegate(TaskSpec(prompt="[write:one.txt=1] first", cwd=str(repo),
                                             worktree=True, merge_strategy="auto"))
    follow = logged.service.delegate(TaskSpec(prompt="[write:two.txt=2] second",
                                              continue_from=first.id, merge_strategy="auto"))
    done_first = await wait_for_merge(logged, first.id)
    assert done_first.merge and done_first.merge["status"] == "merged"
    done = await wait_for_merge(logged, follow.id)
    assert done.status is TaskState.COMPLETED, done.error
    assert done.merge and done.merge["status"] == "merged", done.merge
    assert done.worktree_path == done_first.worktree_path
    argv = runs(logged)[-1]["argv"]
    assert argv[argv.index("--resume") + 1] == done_first.session_id
    assert (repo / "one.txt").read_text() == "1" and (repo / "two.txt").read_text() == "2"
    assert done.started_at and done_first.merge["at"] <= done.started_at


def test_the_end_state_reads_renames_and_names_with_spaces(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    git(repo, "mv", "a.txt", "renamed a.txt")
    (repo / "new file.md").write_text("x")
    (repo / "README.md").write_text("changed\n")
    state = git_end_state(str(repo))
    assert state is not None
    assert sorted(state["changed_files"]) == ["README.md", "new file.md", "renamed a.txt"]
    assert state["changed_count"] == 3 and state["branch"] == "main"
    git(repo, "checkout", "-q", "--detach")
    assert (git_end_state(str(repo)) or {})["branch"] is None
    assert git_end_state(str(tmp_path)) is None  # not a repository
    assert git_end_state(str(tmp_path / "gone")) is None  # no such directory


async def test_a_dependency_whose_merge_step_is_pending_keeps_its_dependents_blocked(
        engine: Engine, tmp_path: Path) -> None:
    """Its work is not in the base branch yet, and its worktree may still go: the dependent
    waits, at delegate time and in the owner's release pass alike."""
    first = await ended(engine, engine.service.delegate(TaskSpec(prompt="first",
                                                                 cwd=str(tmp_path))))
    engine.service.repo.transition(first.id, [TaskState.COMPLETED],
                                   merge={"strategy": "auto", "status": "pending"})
    after = engine.service.delegate(TaskSpec(prompt="after", cwd=str(tmp_path),
                                             depends_on=(first.id,)))
    assert after.status is TaskState.BLOCKED
    assert engine.service.waiting_reason(after) == \
        f"waiting for {first.short_id} (completed, merging its branch)"
    engine.service.repo.transition(first.id, [TaskState.COMPLETED],
                                   merge={"strategy": "auto", "status": "merged"})
    assert (await ended(engine, after)).status is TaskState.COMPLETED


def test_an_ambiguous_task_is_refused_and_nothing_is_stored(
        engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ids = iter(["task-abcd00000001", "task-abcd00000002"])
    monkeypatch.setattr("claudine_core.store.repo.new_task_id", lambda: next(ids))
    for prompt in ("[hang] one", "[hang] two"):
        engine.service.delegate(TaskSpec(prompt=prompt, cwd=str(tmp_path)))
    monkeypatch.undo()
    with pytest.raises(InvalidRequest) as refused:
        engine.service.delegate(TaskSpec(prompt="go on", continue_from="abcd"))
    assert refused.value.problems == {
        "continue_from": "task id 'abcd' is ambiguous: give more of the id"}
    assert len(engine.service.list_tasks()) == 2
