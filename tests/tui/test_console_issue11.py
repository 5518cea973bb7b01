"""The console's parts of issue 11: jump into a task's directory (`e`, `E`), search the
whole log (`/` in the log pane), cancel a pipeline, and the rough edges (a real engine and
store, the fake agent)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import wait_for
from engine_helpers import agent_env, make_config
from textual import events
from textual.pilot import Pilot
from textual.widgets import Input, RichLog, Static

from claudine_core.engine import Engine
from claudine_core.models import Priority, TaskSpec, TaskState
from claudine_tui.app import ClaudineApp
from claudine_tui.screens.confirm import ChoiceScreen
from claudine_tui.screens.new_task import NewTaskScreen
from claudine_tui.screens.quit import QuitScreen
from claudine_tui.task_text import STATUS_GLYPHS, task_details
from claudine_tui.widgets.log_search import HitView, LogSearch

SIZE = (120, 36)


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    return Engine(make_config(tmp_path / "home", max_agents=1), kind="console",
                  env=agent_env(), tick_s=0.05)


def status_of(engine: Engine, task_id: str) -> TaskState:
    return engine.service.get(task_id).status


def log_text(app: ClaudineApp) -> str:
    return "\n".join(line.text for line in app.pane.query_one("#log", RichLog).lines)


def flat_log(app: ClaudineApp) -> str:
    """The log's words, whatever the pane's wrapping."""
    return " ".join(log_text(app).split())


def table_text(app: ClaudineApp) -> str:
    """The table as drawn on the screen."""
    lines = app.table.render_lines(app.table.region.reset_offset)
    return "\n".join("".join(segment.text for segment in line) for line in lines)


def toasts(app: ClaudineApp) -> str:
    return "\n".join(str(n.message) for n in app._notifications)


async def select_row(pilot: Pilot[Any], task_id: str) -> None:
    app = pilot.app
    assert isinstance(app, ClaudineApp)
    await wait_for(pilot, lambda: task_id in app.table.tasks, what=f"the row of {task_id}")
    app.table.move_cursor(row=app.table.get_row_index(task_id))
    await pilot.pause()


async def quit_stopping_agents(pilot: Pilot[Any]) -> None:
    await pilot.press("q")
    if isinstance(pilot.app.screen, QuitScreen):
        await pilot.press("s")


# -- `e` and `E`: into the task's directory ---------------------------------------------------


async def test_jump_in_a_task_whose_directory_is_gone_says_so(engine: Engine,
                                                              tmp_path: Path) -> None:
    gone = tmp_path / "gone"
    gone.mkdir()
    task = engine.service.delegate(TaskSpec("[text:done] there", cwd=str(gone)))
    app = ClaudineApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: status_of(engine, task.id) is TaskState.COMPLETED,
                       timeout=30, what="the task to end")
        gone.rmdir()
        await select_row(pilot, task.id)
        await pilot.press("e")
        await wait_for(pilot, lambda: f"no longer exists: {gone}" in toasts(app),
                       what="the missing-directory toast")
        await pilot.press("E")
        said = [str(n.message) for n in app._notifications if "no longer exists" in str(n.message)]
        assert len(said) == 2, said
        await quit_stopping_agents(pilot)


async def test_editor_key_needs_editor_and_a_terminal(engine: Engine, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    task = engine.service.delegate(TaskSpec("[text:done] here", cwd=str(tmp_path)))
    monkeypatch.delenv("EDITOR", raising=False)
    app = ClaudineApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        await select_row(pilot, task.id)
        await pilot.press("E")
        await wait_for(pilot, lambda: "Set $EDITOR" in toasts(app), what="the $EDITOR toast")
        # The test's headless terminal cannot be handed over: the console says what to do.
        monkeypatch.setenv("EDITOR", "vi")
        monkeypatch.delenv("TMUX", raising=False)
        await pilot.press("E")
        await wait_for(pilot, lambda: f"cd {tmp_path}" in toasts(app),
                       what="the cannot-suspend toast")
        await quit_stopping_agents(pilot)


@pytest.mark.skipif(not shutil.which("tmux"), reason="needs tmux")
async def test_shell_key_inside_tmux_opens_a_window_in_the_worktree_dir(
        engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A private tmux server stands in for the user's: $TMUX names its socket.
    socket = tmp_path / "tmux.sock"
    tmux(socket, "new-session", "-d", "-s", "t", "sleep 60")
    try:
        pid = tmux(socket, "display", "-p", "#{pid}").strip()
        monkeypatch.setenv("TMUX", f"{socket},{pid},0")
        task = engine.service.delegate(TaskSpec("[text:done] here", cwd=str(tmp_path)))
        app = ClaudineApp(engine)
        async with app.run_test(size=SIZE) as pilot:
            await select_row(pilot, task.id)
            await pilot.press("e")
            await wait_for(pilot, lambda: "tmux window" in toasts(app), what="the toast")
            await quit_stopping_agents(pilot)
        panes = tmux(socket, "list-windows", "-F", "#{window_name} #{pane_current_path}")
        assert f"{task.short_id} {tmp_path}" in panes.splitlines()
    finally:
        tmux(socket, "kill-server")


def tmux(socket: Path, *args: str) -> str:
    """Run tmux on the test's own server; its output."""
    return subprocess.run(["tmux", "-S", str(socket), *args], capture_output=True,
                          text=True).stdout


# -- `/` in the log pane: the whole log ---------------------------------------------------------


async def test_search_in_the_log_pane_finds_hits_beyond_the_kept_lines(
        engine: Engine, tmp_path: Path) -> None:
    # 6 MB of output: far more than the 2,000 lines (and the 32 KB tail) the pane keeps.
    # The result line repeats the prompt's first 40 characters: no needle in them.
    prompt = "[text:a] " * 5 + "[text:needle-first] [flood:6] [text:needle-last]"
    task = engine.service.delegate(TaskSpec(prompt, cwd=str(tmp_path)))
    app = ClaudineApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: status_of(engine, task.id) is TaskState.COMPLETED,
                       timeout=60, what="the flood to end")
        await select_row(pilot, task.id)
        await wait_for(pilot, lambda: "needle-last" in log_text(app), what="the tail")
        assert "needle-first" not in log_text(app)  # out of the pane's reach
        app.pane.query_one("#log", RichLog).focus()
        await pilot.press("slash")
        search = app.pane.query_one(LogSearch)
        assert search.is_open and not app.query_one("#filter", Input).display
        await pilot.press(*"needle", "enter")
        await wait_for(pilot, lambda: "hit 1 of" in search.status_text, timeout=30,
                       what=f"the search result ({search.status_text})")
        assert search.result is not None
        hits = [hit.line for hit in search.result.hits]
        # Both texts (the log may also show the prompt, which holds the word too).
        assert [line for line in hits if line.startswith("needle")] == ["needle-first",
                                                                        "needle-last"]
        total, first = len(hits), hits.index("needle-first") + 1
        assert f"hit 1 of {total} " in search.status_text
        view = search.query_one(HitView)
        assert app.focused is view

        def shown() -> str:
            return "\n".join(line.text for line in view.lines)

        for _ in range(first - 1):
            await pilot.press("n")  # the next hit, not a new task
        assert not isinstance(app.screen, NewTaskScreen)
        assert f"hit {first} of {total} " in search.status_text
        assert "needle-first" in shown() and "flood line" in shown()  # with its context
        await pilot.press("n")
        assert f"hit {first + 1} of {total} " in search.status_text
        assert "needle-last" in shown()
        await pilot.press("N")
        assert f"hit {first} of {total} " in search.status_text
        await pilot.press("enter")  # enter and shift+enter: the same as n and N
        assert f"hit {first + 1} of {total} " in search.status_text
        await pilot.press("shift+enter")
        assert f"hit {first} of {total} " in search.status_text
        await pilot.press("N" if first > 1 else "n")
        assert f"hit {first} of {total} " not in search.status_text
        await pilot.press("escape")
        assert not search.is_open and app.pane.query_one("#log", RichLog).display
        # With the table focused, `/` still filters the rows.
        app.table.focus()
        await pilot.press("slash")
        assert app.query_one("#filter", Input).has_focus and not search.is_open
        await quit_stopping_agents(pilot)


async def test_search_with_no_hit_says_so(engine: Engine, tmp_path: Path) -> None:
    task = engine.service.delegate(TaskSpec("[text:hello there]", cwd=str(tmp_path)))
    app = ClaudineApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: status_of(engine, task.id) is TaskState.COMPLETED,
                       timeout=30)
        await select_row(pilot, task.id)
        app.pane.query_one("#log", RichLog).focus()
        await pilot.press("slash", *"absent", "enter")
        search = app.pane.query_one(LogSearch)
        await wait_for(pilot, lambda: "no hit for 'absent'" in search.status_text,
                       what="the no-hit line")
        await quit_stopping_agents(pilot)


# -- pipelines ----------------------------------------------------------------------------------


async def test_cancel_of_a_pipeline_step_asks_step_or_pipeline(engine: Engine,
                                                               tmp_path: Path) -> None:
    pipeline_id, steps = engine.service.create_pipeline(
        ["[sleep:30] one", "[text:two] two", "[text:three] three"],
        TaskSpec("", cwd=str(tmp_path)))
    other_id, others = engine.service.create_pipeline(
        ["[sleep:30] alpha", "[text:beta] beta"], TaskSpec("", cwd=str(tmp_path)))
    app = ClaudineApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        await select_row(pilot, steps[1].id)
        row = app.table.get_row(steps[1].id)
        assert "⛓2 [text:two] two" in str(row[3])  # the table names the step
        # ... and shows it: a prompt's "[...]" is text, not markup that vanishes.
        assert "⛓2 [text:two] two" in table_text(app)
        await pilot.press("c")
        assert isinstance(app.screen, ChoiceScreen)
        await pilot.press("n")  # keep: nothing changes
        assert status_of(engine, steps[1].id) is TaskState.BLOCKED
        await pilot.press("c", "s")  # just this step
        await wait_for(pilot, lambda: status_of(engine, steps[1].id) is TaskState.CANCELLED)
        assert status_of(engine, steps[0].id) is not TaskState.CANCELLED
        # The later step fails, its dependency having been cancelled (a pipeline's policy).
        await wait_for(pilot, lambda: status_of(engine, steps[2].id) is TaskState.FAILED,
                       what="the step after to fail")
        await select_row(pilot, others[1].id)
        await pilot.press("c", "p")  # the whole pipeline
        await wait_for(pilot, lambda: all(status_of(engine, t.id) is TaskState.CANCELLED
                                          for t in others), timeout=20, what="every step")
        assert f"pipeline {other_id} cancelled" in toasts(app)
        assert status_of(engine, steps[0].id) is not TaskState.CANCELLED
        await quit_stopping_agents(pilot)
    assert pipeline_id != other_id


# -- rough edges -------------------------------------------------------------------------------


async def test_no_output_yet_goes_once_output_arrives(engine: Engine, tmp_path: Path) -> None:
    blocker = engine.service.delegate(TaskSpec("[sleep:2] first", cwd=str(tmp_path)))
    later = engine.service.delegate(TaskSpec("[text:finally here]", cwd=str(tmp_path)))
    app = ClaudineApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        await select_row(pilot, later.id)
        await wait_for(pilot, lambda: "No output yet." in log_text(app))
        await wait_for(pilot, lambda: "finally here" in log_text(app), timeout=30)
        assert "No output yet." not in log_text(app)
        assert status_of(engine, blocker.id) is TaskState.COMPLETED
        await quit_stopping_agents(pilot)


async def test_failed_task_with_only_stderr_shows_its_tail_and_error(engine: Engine,
                                                                     tmp_path: Path) -> None:
    task = engine.service.delegate(TaskSpec("[exit-now]", cwd=str(tmp_path)))
    app = ClaudineApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: status_of(engine, task.id) is TaskState.FAILED,
                       timeout=30)
        await select_row(pilot, task.id)
        failed = engine.service.get(task.id)
        stderr = engine.service.stderr_tail(task.id).strip()
        assert stderr and failed.error
        error_line = " ".join(f"✘ failed: {failed.error}".split())
        await wait_for(pilot, lambda: error_line in flat_log(app), what="the error line")
        text = flat_log(app)
        assert f"stderr (last lines): {' '.join(stderr.split())}" in text
        assert "No output yet." not in text
        await quit_stopping_agents(pilot)


async def test_cancelled_task_log_ends_saying_cancelled(engine: Engine, tmp_path: Path) -> None:
    task = engine.service.delegate(TaskSpec("[sleep:30] long", cwd=str(tmp_path)))
    app = ClaudineApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: status_of(engine, task.id) is TaskState.RUNNING,
                       timeout=20)
        await select_row(pilot, task.id)
        await pilot.press("c", "y")
        await wait_for(pilot, lambda: "⊘ cancelled: cancelled from the console"
                       in flat_log(app), timeout=20, what="the cancelled line")
        assert flat_log(app).endswith("⊘ cancelled: cancelled from the console")
        await quit_stopping_agents(pilot)


@pytest.mark.parametrize("columns", [160, 200])
async def test_prompt_and_activity_take_the_spare_width(engine: Engine, columns: int) -> None:
    app = ClaudineApp(engine)
    async with app.run_test(size=(columns, 40)) as pilot:
        await wait_for(pilot, lambda: app.engine_started)
        widths = {key: app.table.columns[key].width for key in ("prompt", "activity")}
        # Wider than the 16-character floor: the spare width went to them.
        assert widths["prompt"] >= 20 and widths["activity"] >= 24, widths
        taken = sum(c.get_render_width(app.table) for c in app.table.columns.values())
        assert taken >= app.table.size.width - 4  # no wide empty band on the right
        await quit_stopping_agents(pilot)


async def test_queue_order_sort_matches_the_engine(engine: Engine, tmp_path: Path) -> None:
    # One agent at a time, taken by the blocker: the others stay queued.
    blocker = engine.service.delegate(TaskSpec("[sleep:30] blocker", cwd=str(tmp_path),
                                               priority=Priority.P0))
    specs = [("[text:a] a", "P2"), ("[text:b] b", "P1"), ("[text:c] c", "P2"),
             ("[text:d] d", "P0"), ("[text:e] e", "P1")]
    tasks = [engine.service.delegate(TaskSpec(p, cwd=str(tmp_path), priority=Priority.parse(q)))
             for p, q in specs]
    app = ClaudineApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: status_of(engine, blocker.id) is TaskState.RUNNING,
                       timeout=20)
        await wait_for(pilot, lambda: app.table.row_count == 6)
        while app.table.sort_mode != "queue":
            await pilot.press("o")
        shown = [app.table.coordinate_to_cell_key((row, 0)).row_key.value for row in range(6)]
        # The running one, then the engine's run order: its queue positions.
        by_position = sorted(tasks, key=lambda t: engine.service.queue_position(
            engine.service.get(t.id)) or 0)
        assert shown == [blocker.id, *(t.id for t in by_position)]
        assert [engine.service.get(i).prompt[-1] for i in shown[1:]] == list("dbeac")
        await quit_stopping_agents(pilot)


async def test_lowering_a_p2_task_says_it_is_already_the_lowest(engine: Engine,
                                                               tmp_path: Path) -> None:
    engine.service.delegate(TaskSpec("[sleep:30] blocker", cwd=str(tmp_path)))
    task = engine.service.delegate(TaskSpec("[text:x] low", cwd=str(tmp_path)))
    app = ClaudineApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        await select_row(pilot, task.id)
        await pilot.press("minus")
        await wait_for(pilot, lambda: "already P2, the lowest" in toasts(app))
        await pilot.press("0", "plus")
        await wait_for(pilot, lambda: "already P0, the highest" in toasts(app))
        assert engine.service.get(task.id).priority is Priority.P0
        await quit_stopping_agents(pilot)


async def test_console_and_details_use_the_cli_glyphs(engine: Engine, tmp_path: Path) -> None:
    task = engine.service.delegate(TaskSpec("[text:done] glyphs", cwd=str(tmp_path)))
    app = ClaudineApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: status_of(engine, task.id) is TaskState.COMPLETED,
                       timeout=30)
        await select_row(pilot, task.id)
        await wait_for(pilot, lambda: "completed" in str(app.table.get_row(task.id)[0]))
        cell = str(app.table.get_row(task.id)[0])
        assert cell == f"{STATUS_GLYPHS['completed']} completed"
        details = task_details(engine.service.get(task.id), None)
        assert details.splitlines()[0].endswith(f"{STATUS_GLYPHS['completed']} completed")
        await quit_stopping_agents(pilot)


async def test_details_show_money_to_the_cent_and_human_durations(engine: Engine,
                                                                  tmp_path: Path) -> None:
    task = engine.service.delegate(TaskSpec("[text:done] money", cwd=str(tmp_path),
                                            timeout_s=5400))
    app = ClaudineApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: status_of(engine, task.id) is TaskState.COMPLETED,
                       timeout=30)
        await select_row(pilot, task.id)
        await pilot.press("enter")
        done = engine.service.get(task.id)
        text = str(app.pane.query_one("#details", Static).render())
        assert done.cost_usd is not None
        cost = next(line for line in text.splitlines() if "cost_usd:" in line).split()[-1]
        assert re.fullmatch(r"\$\d+\.\d{2,4}", cost), cost
        assert re.search(r"timeout_s: +1h30m\n", text), text
        assert "duration:" in text and "s" in text.split("duration:")[1].splitlines()[0]
        await quit_stopping_agents(pilot)


async def test_resumed_task_shows_what_it_was_told(engine: Engine, tmp_path: Path) -> None:
    first = engine.service.delegate(TaskSpec("[text:one] the original prompt",
                                             cwd=str(tmp_path)))
    app = ClaudineApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: status_of(engine, first.id) is TaskState.COMPLETED,
                       timeout=30)
        resumed = engine.service.resume(first.id, "now add the tests")
        await select_row(pilot, resumed.id)
        assert "↻ now add the tests" in str(app.table.get_row(resumed.id)[3])
        await pilot.press("enter")
        text = str(app.pane.query_one("#details", Static).render())
        assert re.search(r"resume_prompt: +now add the tests", text), text
        await quit_stopping_agents(pilot)


async def test_leave_running_tells_what_was_left_and_who_owns_it(tmp_path: Path) -> None:
    engine = Engine(make_config(tmp_path / "home", handoff_on_exit=False), kind="console",
                    env=agent_env(), tick_s=0.05)
    task = engine.service.delegate(TaskSpec("[sleep:30] keep going", cwd=str(tmp_path)))
    app = ClaudineApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.last_snapshot and app.last_snapshot.running == 1,
                       timeout=20)
        await pilot.press("q", "l")
    assert app.farewell is not None
    assert "left 1 running, 0 queued" in app.farewell and task.short_id in app.farewell
    assert "no owner now" in app.farewell
    heir = Engine(make_config(tmp_path / "home"), kind="serve", env=agent_env(), tick_s=0.05)
    await heir.start()
    await heir.stop(stop_agents=True)


async def test_keys_typed_right_after_n_land_in_the_prompt(engine: Engine) -> None:
    app = ClaudineApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.engine_started)
        # As a fast typist's keys arrive: all queued before the form exists. "q" and "r"
        # are console keys, and must not act.
        for key in "nquick fix":
            app.post_message(events.Key("space" if key == " " else key, key))
        await wait_for(pilot, lambda: isinstance(app.screen, NewTaskScreen))
        prompt = app.screen.query_one("#field-prompt", Input)
        await wait_for(pilot, lambda: prompt.value == "quick fix",
                       what=f"the prompt to hold the keys (it has {prompt.value!r})")
        assert not any(isinstance(s, QuitScreen) for s in app.screen_stack)
        await pilot.press("escape", "q")
