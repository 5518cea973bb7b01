"""The console's parts of issue 10: the form's dependency and continue-from fields, and the
details of blocked, continued, scheduled and pipeline tasks (a real engine and store)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from conftest import wait_for
from engine_helpers import agent_env, make_config
from fake_engine import FakeEngine
from git_helpers import git, make_repo
from textual.pilot import Pilot
from textual.widgets import Input, Label, Select, Static

from claudine_core.engine import Engine
from claudine_core.errors import InvalidRequest
from claudine_core.models import DependencyPolicy, TaskSpec, TaskState
from claudine_core.service import TaskService
from claudine_tui.app import ClaudineApp
from claudine_tui.screens.new_task import NewTaskScreen, form_errors, validate_form
from claudine_tui.screens.quit import QuitScreen
from claudine_tui.task_text import describe_end_state

SIZE = (120, 36)


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    return Engine(make_config(tmp_path / "home", max_agents=1), kind="console",
                  env=agent_env(), tick_s=0.05)


def text_of(widget: Static | Label) -> str:
    return str(widget.render())


async def open_form(pilot: Pilot[Any], prompt: str, cwd: Path) -> NewTaskScreen:
    await pilot.press("n")
    form = pilot.app.screen
    assert isinstance(form, NewTaskScreen)
    form.query_one("#field-prompt", Input).value = prompt
    form.query_one("#field-cwd", Input).value = str(cwd)
    return form


async def quit_stopping_agents(pilot: Pilot[Any]) -> None:
    await pilot.press("q")
    if isinstance(pilot.app.screen, QuitScreen):
        await pilot.press("s")


async def select_row(pilot: Pilot[Any], task_id: str) -> None:
    app = pilot.app
    assert isinstance(app, ClaudineApp)
    await wait_for(pilot, lambda: task_id in app.table.tasks, what=f"the row of {task_id}")
    app.table.move_cursor(row=app.table.get_row_index(task_id))
    await pilot.pause()


async def test_dependency_picked_from_the_table_is_stored_blocked(engine: Engine,
                                                                  tmp_path: Path) -> None:
    first = engine.service.delegate(TaskSpec("[sleep:30] first", cwd=str(tmp_path)))
    app = ClaudineApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.engine_started)
        await select_row(pilot, first.id)
        form = await open_form(pilot, "[text:after] second", tmp_path)
        depends = form.query_one("#field-depends", Input)
        labels = [text_of(label) for label in form.query(Label)]
        assert f"Depends on (ctrl+t: {first.short_id})" in labels
        await pilot.press("ctrl+t", "ctrl+t")  # the second press does not add it again
        assert depends.value == first.short_id
        form.query_one("#field-on_failure", Select).value = "cancel"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: app.screen is not form, what="the form to close")
        second = next(t for t in engine.service.list_tasks() if t.id != first.id)
        assert second.status is TaskState.BLOCKED and second.depends_on == (first.id,)
        assert second.on_dependency_failure is DependencyPolicy.CANCEL
        await select_row(pilot, second.id)
        await pilot.press("enter")  # the details of the blocked task: what it waits on
        details = text_of(app.pane.query_one("#details", Static))
        assert f"waiting:        waiting for {first.short_id} (" in details
        assert f"depends_on:     {first.id}" in details
        await quit_stopping_agents(pilot)


async def test_unknown_dependency_is_shown_at_its_field_and_nothing_is_created(
        engine: Engine, tmp_path: Path) -> None:
    app = ClaudineApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.engine_started)
        form = await open_form(pilot, "[text:never] runs", tmp_path)
        form.query_one("#field-depends", Input).value = "deadbeef, 0123abcd"
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert app.screen is form
        error = form.query_one("#error-depends", Label)
        assert error.display and "deadbeef" in text_of(error) and "0123abcd" in text_of(error)
        assert form.query_one("#field-depends", Input).has_class("-invalid")
        assert form.focused is form.query_one("#field-depends", Input)
        assert not form.query_one("#error-prompt", Label).display
        assert engine.service.list_tasks() == []
        await pilot.press("escape")
        await quit_stopping_agents(pilot)


async def test_continue_from_the_selected_task(engine: Engine, tmp_path: Path) -> None:
    first = engine.service.delegate(TaskSpec("[text:done] first", cwd=str(tmp_path)))
    app = ClaudineApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.engine_started)
        await wait_for(pilot, lambda: engine.service.get(first.id).status.is_terminal,
                       timeout=30, what="the first task to end")
        await select_row(pilot, first.id)
        form = await open_form(pilot, "[text:more] second", tmp_path)
        await pilot.press("ctrl+o")
        assert form.query_one("#field-continue_from", Input).value == first.short_id
        cwd = form.query_one("#field-cwd", Input)
        assert cwd.value == "" and str(tmp_path) in cwd.placeholder  # the continued one's
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: app.screen is not form, what="the form to close")
        second = next(t for t in engine.service.list_tasks() if t.id != first.id)
        assert second.continue_from == first.id and first.id in second.depends_on
        assert second.cwd == engine.service.get(first.id).cwd
        await quit_stopping_agents(pilot)


async def test_core_refusal_of_continue_from_is_shown_at_its_field() -> None:
    """The service checks the task to continue at delegate time: its word, at the field."""
    engine = FakeEngine()

    def refuse(spec: TaskSpec) -> Any:
        engine.calls.append(("delegate", spec))
        raise InvalidRequest(problems={"continue_from": "no task with id 'deadbeef'"})

    engine.service.delegate = refuse  # type: ignore[method-assign]
    app = ClaudineApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.engine_started)
        form = await open_form(pilot, "go on", Path.cwd())
        form.query_one("#field-continue_from", Input).value = " deadbeef "
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert app.screen is form
        assert engine.calls[-1][1].continue_from == "deadbeef"
        error = form.query_one("#error-continue_from", Label)
        assert error.display and text_of(error) == "No task with id 'deadbeef'."
        assert form.focused is form.query_one("#field-continue_from", Input)
        assert app.table.row_count == 0


async def test_pick_keys_without_a_selected_task_say_so() -> None:
    app = ClaudineApp(FakeEngine())
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.engine_started)
        form = await open_form(pilot, "x", Path.cwd())
        await pilot.press("ctrl+t")
        assert form.query_one("#field-depends", Input).value == ""
        assert any("No task was selected" in str(n.message) for n in app._notifications)


def test_form_reads_ids_with_spaces_and_commas(tmp_path: Path) -> None:
    base = {"prompt": "p", "cwd": str(tmp_path)}
    spec = validate_form({**base, "depends": " 1a2b3c4d,5e6f7a8b  9c0d1e2f ,",
                          "on_failure": "run", "continue_from": " 1a2b3c4d "}).spec
    assert spec is not None
    assert spec.depends_on == ("1a2b3c4d", "5e6f7a8b", "9c0d1e2f")
    assert spec.on_dependency_failure is DependencyPolicy.RUN
    assert spec.continue_from == "1a2b3c4d"
    blank = validate_form(base, dependency_policy="cancel").spec
    assert blank is not None and blank.depends_on == () and blank.continue_from is None
    assert blank.on_dependency_failure is DependencyPolicy.CANCEL  # the setting's
    assert form_errors(InvalidRequest(problems={"on_dependency_failure": "bad"})) == {
        "on_failure": "Bad."}


async def test_details_show_schedule_pipeline_continuation_and_end_state(
        engine: Engine, tmp_path: Path) -> None:
    store = TaskService(engine.config)
    earlier = store.delegate(TaskSpec("[text:x] earlier", cwd=str(tmp_path)))
    schedule = engine.service.schedules.create(TaskSpec("nightly", cwd=str(tmp_path)),
                                               cron="0 3 * * *")
    task = store.delegate(TaskSpec("[text:x] step two", cwd=str(tmp_path)))
    for done in (earlier, task):  # ended before any owner ran them: nothing runs them now
        assert store.repo.transition(done.id, [TaskState.QUEUED], status=TaskState.COMPLETED,
                                     ended_at=time.time())
    assert store.repo.transition(
        task.id, [TaskState.COMPLETED], continue_from=earlier.id, schedule_id=schedule.id,
        pipeline_id="pipe-0123456789ab", pipeline_step=2,
        end_state={"directory": str(tmp_path), "branch": "main",
                   "commit": "0123456789abcdef" * 2 + "01234567",
                   "changed_files": ["a.py", "b.py", "c.py"], "changed_count": 3})
    store.close()
    app = ClaudineApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.engine_started)
        await select_row(pilot, task.id)
        await pilot.press("enter")
        details = text_of(app.pane.query_one("#details", Static))
        assert f"continue_from:  {earlier.id}" in details
        assert f"schedule_id:    {schedule.id}" in details
        assert "pipeline_id:    pipe-0123456789ab" in details
        assert "pipeline_step:  2" in details
        assert "end_state:      branch main @ 0123456789ab, 3 changed files" in details
        await quit_stopping_agents(pilot)


async def test_details_show_the_end_state_the_core_recorded(engine: Engine,
                                                            tmp_path: Path) -> None:
    """A task that ends in a git checkout: its branch, commit and changed files count."""
    repo = make_repo(tmp_path / "repo")
    head = git(repo, "rev-parse", "HEAD")
    task = engine.service.delegate(TaskSpec(
        "[write:notes.txt=one] [write:a.txt=changed] [text:done]", cwd=str(repo)))
    app = ClaudineApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: engine.service.get(task.id).status is TaskState.COMPLETED,
                       timeout=30, what="the task to complete")
        await select_row(pilot, task.id)
        await pilot.press("enter")
        details = text_of(app.pane.query_one("#details", Static))
        assert f"end_state:      branch main @ {head[:12]}, 2 changed files" in details
        await quit_stopping_agents(pilot)


def test_end_state_line_counts_every_changed_file() -> None:
    """The recorded list is capped; the count is not."""
    assert describe_end_state({"branch": None, "commit": "f" * 40,
                               "changed_files": ["a"] * 3, "changed_count": 250}) == (
        "detached HEAD @ ffffffffffff, 250 changed files")
    assert describe_end_state({"branch": "main", "commit": None, "changed_files": ["a"],
                               "changed_count": 1}) == (
        "branch main (no commit yet), 1 changed file")
