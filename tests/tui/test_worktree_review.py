"""Worktree isolation in the console: the form's fields, and the diff screen's review actions.

The review test drives a real Engine with the fake agent on a real git repository in tmp_path.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import wait_for
from engine_helpers import agent_env, make_config
from fake_engine import FakeEngine, busy_engine
from git_helpers import git, make_repo
from textual.widgets import Checkbox, Input, Label, Select, Static

from claudine_core.engine import Engine
from claudine_core.models import MergeStrategy, TaskState
from claudine_tui.app import ClaudineApp
from claudine_tui.screens.confirm import ConfirmScreen
from claudine_tui.screens.diff_view import DiffScreen
from claudine_tui.screens.new_task import NewTaskScreen, validate_form

SIZE = (120, 36)






def static_text(screen: DiffScreen, selector: str) -> str:
    return str(screen.query_one(selector, Static).render())


# -- the form --------------------------------------------------------------------------------


def test_validate_form_worktree_fields(tmp_path: Path) -> None:
    base = {"prompt": "do it", "cwd": str(tmp_path)}
    result = validate_form({**base, "base": "main", "merge": "auto"})
    assert result.spec is None and set(result.errors) == {"base", "merge"}
    assert "worktree" in result.errors["base"]
    assert validate_form({**base, "worktree": "yes", "base": "a b"}).errors.keys() == {"base"}
    assert validate_form({**base, "worktree": "yes", "merge": "yolo"}).errors.keys() == {"merge"}
    spec = validate_form({**base, "worktree": "yes", "base": "release/2.3",
                          "merge": "pr"}).spec
    assert spec is not None and spec.worktree and spec.base_branch == "release/2.3"
    assert spec.merge_strategy is MergeStrategy.PR
    plain = validate_form(base).spec
    assert plain is not None and not plain.worktree and plain.merge_strategy is None


async def test_form_worktree_fields_error_then_spec(tmp_path: Path) -> None:
    engine = FakeEngine()
    app = ClaudineApp(engine)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.engine_started)
        await pilot.press("n", *"isolated work")
        form = app.screen
        assert isinstance(form, NewTaskScreen)
        form.query_one("#field-cwd", Input).value = str(tmp_path)
        form.query_one("#field-base", Input).value = "main"
        await pilot.press("ctrl+s")
        error = form.query_one("#error-base", Label)
        assert error.display and "worktree" in str(error.render())
        assert app.screen is form and not [c for c in engine.calls if c[0] == "delegate"]
        form.query_one("#field-worktree", Checkbox).value = True
        form.query_one("#field-merge", Select).value = "patch"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: app.screen is not form, what="the form to close")
    spec = next(c[1] for c in engine.calls if c[0] == "delegate")
    assert spec.worktree and spec.base_branch == "main"
    assert spec.merge_strategy is MergeStrategy.PATCH


async def test_diff_key_without_branch_warns() -> None:
    engine = busy_engine()
    app = ClaudineApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.engine_started and app.table.row_count == 8)
        task = engine.get("0007")
        app.table.move_cursor(row=app.table.get_row_index(task.id))
        await pilot.press("d")
        assert not isinstance(app.screen, DiffScreen)
        assert any(f"task {task.short_id} has no worktree branch" in str(n.message)
                   for n in app._notifications)


# -- review against a real engine and a real repository ----------------------------------------


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    return Engine(make_config(tmp_path / "home", max_agents=1), kind="console",
                  env=agent_env(), tick_s=0.05)


async def test_review_diff_and_merge_from_the_console(engine: Engine, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    app = ClaudineApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.engine_started)
        await pilot.press("n", *"[write:feature.txt=added by the agent] add a feature")
        form = app.screen
        form.query_one("#field-cwd", Input).value = str(repo)
        form.query_one("#field-worktree", Checkbox).value = True
        form.query_one("#field-merge", Select).value = "manual"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: app.table.row_count == 1, what="the row")
        task_id = app.table.selected_id
        assert task_id is not None

        def kept() -> bool:
            task = engine.get(task_id)
            return task.status is TaskState.COMPLETED and (task.merge or {}).get(
                "status") == "kept"

        await wait_for(pilot, kept, timeout=30, what="the task kept on its branch")
        task = engine.get(task_id)
        assert task.branch and task.merge_strategy == "manual"
        assert not (repo / "feature.txt").exists()

        await pilot.press("d")
        screen = app.screen
        assert isinstance(screen, DiffScreen)
        await wait_for(pilot, lambda: screen.loaded, timeout=15, what="the diff")
        assert "feature.txt" in static_text(screen, "#diff-files")
        body = screen.query_one("#diff-body", Static)
        await pilot.pause()
        rendered = "\n".join(strip.text for strip in body.render_lines(body.region.reset_offset))
        assert "+added by the agent" in rendered

        await pilot.press("m")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await wait_for(pilot, lambda: (engine.get(task_id).merge or {}).get("status")
                       == "merged", timeout=15, what="the merge outcome")
        await wait_for(pilot, lambda: not isinstance(app.screen, DiffScreen),
                       what="the diff screen to close")
        merge = engine.get(task_id).merge or {}
        assert merge.get("commit") and merge.get("base") == "main"
        assert any("merged" in str(n.title) for n in app._notifications)
        await pilot.press("q")
    assert git(repo, "rev-parse", "--abbrev-ref", "HEAD") == "main"
    assert (repo / "feature.txt").read_text() == "added by the agent"
    assert "feature.txt" in git(repo, "show", "--name-only", "--format=", "main")
