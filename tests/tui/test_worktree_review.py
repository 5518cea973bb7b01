"""Worktree isolation in the console: the form's fields, and the diff screen's review actions.

The review tests drive a real Engine with the fake agent on real git repositories in
tmp_path (and, for pull requests, a local bare repository as the remote plus the fake
GitHub API), press the keys, answer the confirmation, and check what a user would: the base
branch, the patch file, the pull request, the branch and worktree.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import wait_for
from engine_helpers import agent_env, make_config
from fake_engine import FakeEngine, FakeReview, busy_engine
from fakes.fake_github import FakeGitHub
from git_helpers import git, make_repo, wt_path
from textual.pilot import Pilot
from textual.widgets import Checkbox, Input, Label, Select, Static
from textual.widgets._footer import FooterKey  # not exported
from textual.widgets.data_table import RowDoesNotExist

from claudine_core.engine import Engine
from claudine_core.models import MergeStrategy, Task, TaskSpec, TaskState
from claudine_tui.app import ClaudineApp
from claudine_tui.screens.confirm import ConfirmScreen
from claudine_tui.screens.diff_view import DiffScreen
from claudine_tui.screens.new_task import NewTaskScreen, validate_form
from claudine_tui.widgets.task_rows import TaskFilter

SIZE = (120, 36)


def static_text(screen: DiffScreen, selector: str) -> str:
    return str(screen.query_one(selector, Static).render())


def toasts(app: ClaudineApp) -> list[str]:
    return [f"{n.title} {n.message}" for n in app._notifications]


def toast(app: ClaudineApp, title: str) -> str:
    """The message of the latest toast with that title."""
    return next(n.message for n in reversed(list(app._notifications)) if n.title == title)


# -- the form --------------------------------------------------------------------------------


def test_validate_form_worktree_fields(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    base = {"prompt": "do it", "cwd": str(repo)}
    result = validate_form({**base, "base": "main", "merge": "auto", "no_commit": "yes"})
    assert result.spec is None and set(result.errors) == {"base", "merge", "no_commit"}
    assert "worktree" in result.errors["base"] and "worktree" in result.errors["no_commit"]
    assert validate_form({**base, "worktree": "yes", "base": "a b"}).errors.keys() == {"base"}
    assert validate_form({**base, "worktree": "yes", "merge": "yolo"}).errors.keys() == {"merge"}
    spec = validate_form({**base, "worktree": "yes", "base": "release/2.3",
                          "merge": "pr", "no_commit": "yes"}).spec
    assert spec is not None and spec.worktree and spec.base_branch == "release/2.3"
    assert spec.merge_strategy is MergeStrategy.PR and spec.commit_changes is False
    plain = validate_form(base).spec
    assert plain is not None and not plain.worktree and plain.merge_strategy is None
    assert plain.commit_changes is None  # the repository's setting decides
    committed = validate_form({**base, "worktree": "yes"}).spec
    assert committed is not None and committed.commit_changes is None
    outside = validate_form({"prompt": "do it", "cwd": str(tmp_path), "worktree": "yes"})
    assert outside.errors.keys() == {"worktree"}
    assert "not inside a git repository" in outside.errors["worktree"]


def test_form_worktree_choice_falls_back_to_the_setting(tmp_path: Path) -> None:
    """Blank is the CLAUDINE_WORKTREE setting; 'no' overrides it."""
    base = {"prompt": "do it", "cwd": str(make_repo(tmp_path / "repo"))}
    default = validate_form(base, default_worktree=True).spec
    assert default is not None and default.worktree is True
    declined = validate_form({**base, "worktree": "no", "merge": "auto"}, default_worktree=True)
    assert declined.errors.keys() == {"merge"}
    assert "worktree: yes" in declined.errors["merge"]
    no = validate_form({**base, "worktree": "no"}, default_worktree=True).spec
    assert no is not None and no.worktree is False


async def test_form_worktree_fields_error_then_spec(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    engine = FakeEngine()
    app = ClaudineApp(engine)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.engine_started)
        await pilot.press("n", *"isolated work")
        form = app.screen
        assert isinstance(form, NewTaskScreen)
        form.query_one("#field-cwd", Input).value = str(repo)
        form.query_one("#field-base", Input).value = "main"
        form.query_one("#field-no_commit", Checkbox).value = True
        await pilot.press("ctrl+s")
        for name in ("base", "no_commit"):
            error = form.query_one(f"#error-{name}", Label)
            assert error.display and "worktree" in str(error.render())
        assert form.query_one("#field-no_commit", Checkbox).has_class("-invalid")
        assert app.screen is form and not [c for c in engine.calls if c[0] == "delegate"]
        form.query_one("#field-worktree", Select).value = "yes"
        form.query_one("#field-merge", Select).value = "patch"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: app.screen is not form, what="the form to close")
    spec = next(c[1] for c in engine.calls if c[0] == "delegate")
    assert spec.worktree and spec.base_branch == "main"
    assert spec.merge_strategy is MergeStrategy.PATCH and spec.commit_changes is False


async def test_diff_key_without_branch_warns() -> None:
    engine = busy_engine()
    app = ClaudineApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.engine_started and app.table.row_count == 8)
        task = engine.service.get("0007")
        app.table.move_cursor(row=app.table.get_row_index(task.id))
        await pilot.press("d")
        assert not isinstance(app.screen, DiffScreen)
        assert any(f"task {task.short_id} has no worktree branch" in str(n.message)
                   for n in app._notifications)


async def test_table_keys_are_off_under_the_review() -> None:
    """The review covers the table: `c`, `n`, `s`... must not act on the task out of sight."""
    engine = busy_engine()
    review = FakeReview()
    app = ClaudineApp(engine, review=review)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.engine_started and app.table.row_count == 8)
        task = engine.service.get("0004")  # running, on a branch
        app.table.move_cursor(row=app.table.get_row_index(task.id))
        await pilot.press("d")
        screen = app.screen
        assert isinstance(screen, DiffScreen)
        await wait_for(pilot, lambda: screen.loaded, what="the diff")
        for key in ("c", "n", "s", "0", "d", "slash", "S"):
            await pilot.press(key)
            assert app.screen is screen, f"{key} acted under the review"
        assert app.table.task_filter == TaskFilter(None, "") and engine.calls == [("start",)]
        assert not app.query_one("#filter", Input).display
        footer = {key.description for key in screen.query(FooterKey)}
        assert {"Merge", "Discard", "Close", "Help"} <= footer
        assert not footer & {"New", "Cancel", "Retry", "Filter"}
        commands = " ".join(c.title for c in app.get_system_commands(screen))
        assert "Quit" in commands and "New" not in commands
        await pilot.press("m", "y")
        await wait_for(pilot, lambda: app.screen is not screen, what="the review to close")
        assert review.calls == ["merge"]
        await pilot.press("c")  # back on the table, its keys work again
        assert isinstance(app.screen, ConfirmScreen)


# -- review against a real engine and real repositories --------------------------------------


@pytest.fixture
def make_engine(tmp_path: Path) -> Callable[..., Engine]:
    def make(**overrides: Any) -> Engine:
        config = make_config(tmp_path / "home", max_agents=2, **overrides)
        return Engine(config, kind="console", env=agent_env(), tick_s=0.05)

    return make


def outcome(engine: Engine, task_id: str) -> dict[str, Any]:
    return engine.service.get(task_id).merge or {}


async def kept_task(pilot: Pilot[Any], engine: Engine, repo: Path,
                    name: str = "feature.txt", text: str = "added by the agent") -> Task:
    """A finished worktree task whose branch (one commit: ``name``) waits for review."""
    task = engine.service.delegate(TaskSpec(f"[write:{name}={text}] add {name}", cwd=str(repo),
                                    worktree=True))
    await wait_for(pilot, lambda: outcome(engine, task.id).get("status") == "kept",
                   timeout=30, what="the task kept on its branch")
    task = engine.service.get(task.id)
    assert task.status is TaskState.COMPLETED and wt_path(task).is_dir()
    assert git(repo, "rev-list", "--count", f"main..{task.branch}") == "1"
    return task


async def review(pilot: Pilot[Any], task: Task) -> DiffScreen:
    """Select the task's row, press `d`, and wait for its diff."""
    app = pilot.app
    assert isinstance(app, ClaudineApp)

    def row() -> int | None:
        try:
            return app.table.get_row_index(task.id)
        except RowDoesNotExist:
            return None

    await wait_for(pilot, lambda: row() is not None, what="the task's row")
    app.table.move_cursor(row=row())
    await pilot.press("d")
    screen = app.screen
    assert isinstance(screen, DiffScreen)
    await wait_for(pilot, lambda: screen.loaded, timeout=15, what="the diff")
    return screen


async def answer(pilot: Pilot[Any], key: str, reply: str, question: str) -> None:
    """Press an action key, check the confirmation asks ``question``, reply."""
    await pilot.press(key)
    dialog = pilot.app.screen
    assert isinstance(dialog, ConfirmScreen), f"{key} did not ask first"
    assert question in dialog.question
    await pilot.press(reply)


async def test_review_diff_and_merge_from_the_console(make_engine: Callable[..., Engine],
                                                      tmp_path: Path) -> None:
    engine = make_engine()
    repo = make_repo(tmp_path / "repo")
    app = ClaudineApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.engine_started)
        await pilot.press("n")
        form = app.screen
        form.query_one("#field-prompt", Input).value = (
            "[write:feature.txt=added by the agent] add a feature")
        form.query_one("#field-cwd", Input).value = str(repo)
        form.query_one("#field-worktree", Select).value = "yes"
        form.query_one("#field-merge", Select).value = "manual"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: app.table.row_count == 1, what="the row")
        task_id = app.table.selected_id
        assert task_id is not None
        await wait_for(pilot, lambda: outcome(engine, task_id).get("status") == "kept",
                       timeout=30, what="the task kept on its branch")
        task = engine.service.get(task_id)
        assert task.branch and task.merge_strategy == "manual"
        assert not (repo / "feature.txt").exists()

        screen = await review(pilot, task)
        assert "feature.txt" in static_text(screen, "#diff-files")
        body = screen.query_one("#diff-body", Static)
        await pilot.pause()
        rendered = "\n".join(strip.text for strip in body.render_lines(body.region.reset_offset))
        assert "+added by the agent" in rendered

        await answer(pilot, "m", "y", f"Merge {task.branch} into main?")
        await wait_for(pilot, lambda: outcome(engine, task_id).get("status") == "merged",
                       timeout=15, what="the merge outcome")
        await wait_for(pilot, lambda: not isinstance(app.screen, DiffScreen),
                       what="the diff screen to close")
        merge = outcome(engine, task_id)
        assert merge.get("commit") and merge.get("base") == "main"
        assert "into main" in toast(app, f"{task.short_id}: merged")
        await pilot.press("enter")  # the details show the outcome
        assert '"status": "merged"' in str(app.pane.query_one("#details", Static).render())
        await pilot.press("q")
    assert git(repo, "rev-parse", "--abbrev-ref", "HEAD") == "main"
    assert (repo / "feature.txt").read_text() == "added by the agent"
    assert "feature.txt" in git(repo, "show", "--name-only", "--format=", "main")
    assert not wt_path(task).exists()
    assert git(repo, "branch", "--list", task.branch) == ""


async def test_cancelled_confirmations_change_nothing(make_engine: Callable[..., Engine],
                                                      tmp_path: Path) -> None:
    engine = make_engine()
    repo = make_repo(tmp_path / "repo")
    app = ClaudineApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        task = await kept_task(pilot, engine, repo)
        before = (git(repo, "rev-parse", "main"), outcome(engine, task.id))
        screen = await review(pilot, task)
        for key, reply, question in (("m", "n", "Merge"), ("p", "escape", "patch"),
                                     ("g", "n", "pull request"), ("x", "escape", "Discard")):
            await answer(pilot, key, reply, question)
            assert app.screen is screen, f"{key}: the review closed"
        await pilot.pause()
        assert not screen.busy and not any("running" in toast for toast in toasts(app))
        assert (git(repo, "rev-parse", "main"), outcome(engine, task.id)) == before
        assert wt_path(task).is_dir() and git(repo, "branch", "--list", task.branch)
        assert not list((engine.config.home / "runs").rglob("*.patch"))
        await pilot.press("escape", "q")


async def test_patch_from_the_console(make_engine: Callable[..., Engine],
                                      tmp_path: Path) -> None:
    engine = make_engine()
    repo = make_repo(tmp_path / "repo")
    app = ClaudineApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        task = await kept_task(pilot, engine, repo, "docs.md", "written by the agent")
        await review(pilot, task)
        await answer(pilot, "p", "y", "patch")
        await wait_for(pilot, lambda: outcome(engine, task.id).get("status") == "patch",
                       timeout=15, what="the patch outcome")
        await wait_for(pilot, lambda: not isinstance(app.screen, DiffScreen),
                       what="the diff screen to close")
        shown = toast(app, f"{task.short_id}: patch")
        match = re.search(r"(/\S+\.patch)", shown)
        assert match, shown
        await pilot.press("q")
    assert match.group(1) == outcome(engine, task.id)["patch"]
    assert not wt_path(task).exists() and git(repo, "branch", "--list", task.branch) == ""
    assert not (repo / "docs.md").exists()  # exported, not merged
    applies(Path(match.group(1)), repo, "docs.md", "written by the agent")


def applies(patch: Path, repo: Path, name: str, text: str) -> None:
    """The patch holds the agent's change and `git am` applies it to the base."""
    assert f"+{text}" in patch.read_text()
    git(repo, "am", "-q", str(patch))
    assert (repo / name).read_text() == text


def add_remote(repo: Path, tmp_path: Path) -> Path:
    """A bare repository as ``origin``; .claudine.toml (git-ignored) names the GitHub repo."""
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(remote))
    (repo / ".gitignore").write_text(".claudine.toml\n")
    git(repo, "add", ".gitignore")
    git(repo, "commit", "-q", "-m", "ignore local settings")
    git(repo, "remote", "add", "origin", str(remote))
    git(repo, "push", "-q", "origin", "main")
    (repo / ".claudine.toml").write_text('[worktree]\ngithub_repo = "octo/demo"\n')
    return remote


async def test_pull_request_then_discard_from_the_console(
    make_engine: Callable[..., Engine], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", "console-token")
    repo = make_repo(tmp_path / "repo")
    remote = add_remote(repo, tmp_path)
    with FakeGitHub() as github:
        engine = make_engine(github_api_url=github.api_url)
        app = ClaudineApp(engine)
        async with app.run_test(size=SIZE) as pilot:
            task = await kept_task(pilot, engine, repo, "api.py", "print('hi')")
            await review(pilot, task)
            await answer(pilot, "g", "y", f"Push {task.branch} and open a pull request?")
            await wait_for(pilot, lambda: outcome(engine, task.id).get("status") == "pr",
                           timeout=15, what="the pull request")
            await wait_for(pilot, lambda: not isinstance(app.screen, DiffScreen),
                           what="the diff screen to close")
            url = f"{github.url}/octo/demo/pull/1"
            assert outcome(engine, task.id)["pr_url"] == url
            assert url in toast(app, f"{task.short_id}: pr")
            await pilot.press("enter")
            assert url in str(app.pane.query_one("#details", Static).render())
            posts = [r for r in github.requests if r["method"] == "POST"]
            assert len(posts) == 1 and posts[0]["path"] == "/api/v3/repos/octo/demo/pulls"
            assert "console-token" in posts[0]["headers"]["authorization"]
            assert (posts[0]["json"]["head"], posts[0]["json"]["base"]) == (task.branch, "main")
            assert git(remote, "show", f"{task.branch}:api.py") == "print('hi')"

            # The branch is pushed, so discarding it loses nothing: no second question.
            await review(pilot, task)
            await answer(pilot, "x", "y", "Discard")
            await wait_for(pilot, lambda: outcome(engine, task.id).get("removed"),
                           timeout=15, what="the discard")
            await wait_for(pilot, lambda: not isinstance(app.screen, (DiffScreen, ConfirmScreen)),
                           what="the review to close")
            await pilot.press("q")
    assert git(repo, "branch", "--list", task.branch) == ""
    assert outcome(engine, task.id)["pr_url"] == url  # the result is kept
    assert git(remote, "rev-parse", "--verify", f"refs/heads/{task.branch}")  # PR intact


def forcing(app: ClaudineApp) -> ConfirmScreen | None:
    """The second question a refused discard asks (None until it shows)."""
    screen = app.screen
    return screen if isinstance(screen, ConfirmScreen) and "anyway" in screen.question else None


async def test_discard_asks_again_when_work_would_be_lost(make_engine: Callable[..., Engine],
                                                          tmp_path: Path) -> None:
    engine = make_engine()
    repo = make_repo(tmp_path / "repo")
    app = ClaudineApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        task = await kept_task(pilot, engine, repo)
        before = outcome(engine, task.id)
        screen = await review(pilot, task)
        await pilot.press("x", "y")  # refused without force: the console asks to force it
        refusal = await wait_for(pilot, lambda: forcing(app), what="the force question")
        assert "neither in main nor pushed" in refusal.question
        assert "Discard it anyway?" in refusal.question and "use force" not in refusal.question
        await pilot.press("n")
        assert app.screen is screen and outcome(engine, task.id) == before
        assert wt_path(task).is_dir() and git(repo, "branch", "--list", task.branch)

        await pilot.press("x", "y")
        await wait_for(pilot, lambda: forcing(app), what="the force question")
        await pilot.press("y")
        await wait_for(pilot, lambda: outcome(engine, task.id).get("status") == "discarded",
                       timeout=15, what="the discard")
        await wait_for(pilot, lambda: not isinstance(app.screen, DiffScreen),
                       what="the review to close")
        await pilot.press("q")
    assert not wt_path(task).exists()
    assert git(repo, "branch", "--list", "claudine/*") == ""
    assert git(repo, "rev-list", "--count", "main") == "1"  # nothing merged


async def test_form_no_commit_leaves_the_agents_changes_uncommitted(
    make_engine: Callable[..., Engine], tmp_path: Path
) -> None:
    engine = make_engine()
    repo = make_repo(tmp_path / "repo")
    app = ClaudineApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.engine_started)
        await pilot.press("n")
        form = app.screen
        form.query_one("#field-prompt", Input).value = "[write:notes.txt=draft] take notes"
        form.query_one("#field-cwd", Input).value = str(repo)
        form.query_one("#field-worktree", Select).value = "yes"
        form.query_one("#field-no_commit", Checkbox).value = True
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: app.table.row_count == 1, what="the row")
        task_id = app.table.selected_id
        assert task_id is not None
        await wait_for(pilot, lambda: outcome(engine, task_id).get("status") == "kept",
                       timeout=30, what="the task kept on its branch")
        task = engine.service.get(task_id)
        assert task.commit_changes is False
        assert "uncommitted" in outcome(engine, task_id)["reason"]
        screen = await review(pilot, task)  # the review shows the uncommitted file
        assert re.search(r"\?\s+notes\.txt", static_text(screen, "#diff-files"))
        await pilot.press("escape", "q")
    assert git(wt_path(task), "status", "--porcelain") == "?? notes.txt"
    assert git(repo, "rev-list", "--count", f"main..{task.branch}") == "0"
