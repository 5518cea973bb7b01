"""End to end: the installed `claudine` console in a real tmux session. `e` opens a tmux
window in the task's directory, `E` runs $EDITOR there (the console suspended, then back),
`/` in the log pane searches the task's whole log, and quitting with "leave running"
tells the shell what was left and who owns it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from tmux_console import Console, needs_tmux

pytestmark = pytest.mark.slow


@needs_tmux
def test_e_opens_a_tmux_window_and_E_runs_the_editor_in_the_task_dir(tmp_path: Path) -> None:
    work = tmp_path / "work dir"  # a space: the path travels as one argument
    work.mkdir()
    editor_saw = tmp_path / "editor-saw.txt"
    # The "editor" records where it ran and what it was given, then exits.
    editor = f"sh -c 'pwd > {editor_saw}; echo \"$1\" >> {editor_saw}' editor"
    console = Console(tmp_path, EDITOR=editor)
    try:
        console.wait(lambda: "owner · console" in console.screen(), 20, "the console")
        task_id = console.cli("delegate", "--cwd", str(work), "[text:done] jump in")
        short = task_id.removeprefix("task-")[:8]
        console.wait(lambda: console.status(task_id) == "completed", 30, "the task to end")
        console.wait(lambda: short in console.screen(), 5, "the row")
        console.keys("e")
        console.wait(lambda: f"{short} {work}" in console.windows(), 10,
                     f"a window named {short} in {work} (windows: {console.windows()})")
        console.keys("E")
        console.wait(lambda: editor_saw.exists() and editor_saw.read_text().count("\n") == 2,
                     10, "the editor to run")
        assert editor_saw.read_text().splitlines() == [str(work), str(work)]
        # Back from the editor: the console draws again and takes keys.
        console.wait(lambda: "owner · console" in console.screen(), 10, "the console back")
        console.keys("q")
        console.wait(console.exited, 15, "the console to exit")
    finally:
        console.close()


@needs_tmux
def test_slash_in_the_log_pane_searches_the_whole_log(tmp_path: Path) -> None:
    console = Console(tmp_path)
    try:
        console.wait(lambda: "owner · console" in console.screen(), 20, "the console")
        # 3 MB of output between the two needles: the first is long gone from the pane.
        prompt = "[text:a] " * 5 + "[text:needle-first] [flood:3] [text:needle-last]"
        task_id = console.cli("delegate", prompt)
        console.wait(lambda: console.status(task_id) == "completed", 60, "the flood to end")
        console.wait(lambda: "needle-last" in console.screen(), 10, "the log's tail")
        console.keys("Tab")  # to the log pane
        console.keys("/")
        console.wait(lambda: "search the whole log" in console.screen(), 5, "the search box")
        console.keys("needle", "Enter")
        # The texts, and the prompt's line when the log shows it: 2 or 3 hits.
        console.wait(lambda: re.search(r"hit 1 of [23] ", console.screen()), 30,
                     "the first hit")
        # `n` goes from hit to hit until the first text (the hit line, numbered) shows.
        def hit_number() -> str | None:
            found = re.search(r"hit (\d+) of", console.screen())
            return found.group(1) if found else None

        for _ in range(3):
            if re.search(r"\d+: needle-first", console.screen()):
                break
            before = hit_number()
            console.keys("n")
            console.wait(lambda: hit_number() != before, 5, "the next hit")  # noqa: B023
        screen = console.screen()
        assert re.search(r"\d+: needle-first", screen), screen
        assert re.search(r"hit [12] of [23] ", screen), screen
        console.keys("Escape")
        console.wait(lambda: "hit " not in console.screen(), 5, "the live log again")
        console.keys("q")
        console.wait(console.exited, 15, "the console to exit")
    finally:
        console.close()


@needs_tmux
def test_m_sends_a_message_that_the_running_agent_reads(tmp_path: Path) -> None:
    """In a real terminal: `m` on a running task, a line typed, enter; the agent's next
    turn gets it (the store records the delivery) and the log pane shows the user's turn."""
    console = Console(tmp_path)
    try:
        console.wait(lambda: "owner · console" in console.screen(), 20, "the console")
        task_id = console.cli("delegate", "[sleep:3] first turn")
        short = task_id.removeprefix("task-")[:8]
        console.wait(lambda: console.status(task_id) == "running", 30, "the agent to run")
        console.wait(lambda: short in console.screen(), 5, "the row")
        console.keys("m")
        console.wait(lambda: f"Message to task {short}" in console.screen(), 10, "the box")
        console.keys("then tidy up", "Enter")
        console.wait(lambda: f"message sent to {short}" in console.screen(), 10,
                     "the console to say it was sent")

        def delivered() -> bool:
            shown = json.loads(console.cli("status", task_id, "--json"))
            return bool(shown["messages"]) and shown["messages"][0]["delivered_at"] is not None

        console.wait(delivered, 30, "the wrapper to deliver it at the next turn")
        console.wait(lambda: "you: then tidy up" in console.screen(), 30,
                     "the user's turn in the log pane")
        console.wait(lambda: console.status(task_id) == "completed", 30, "the task to end")
        console.keys("q")
        console.wait(console.exited, 15, "the console to exit")
    finally:
        console.close()


@needs_tmux
def test_leave_running_tells_the_shell_what_was_left_and_who_owns_it(tmp_path: Path) -> None:
    # The hand-over on (the tests' default is off): a background owner adopts the agent,
    # which ends by itself; that owner then leaves once idle (CLAUDINE_IDLE_EXIT).
    console = Console(tmp_path, then="echo CONSOLE-EXITED; sleep 60",
                      CLAUDINE_HANDOFF_ON_EXIT="1", CLAUDINE_IDLE_EXIT="1")
    try:
        console.wait(lambda: "owner · console" in console.screen(), 20, "the console")
        task_id = console.cli("delegate", "[sleep:3] still going")
        short = task_id.removeprefix("task-")[:8]
        console.wait(lambda: console.status(task_id) == "running", 20, "the agent to start")
        console.keys("q")
        console.wait(lambda: "leave running" in console.screen().lower(), 5, "the question")
        console.keys("l")
        console.wait(lambda: "CONSOLE-EXITED" in console.screen(), 20, "the console to exit")
        said = console.screen()
        owner = re.search(r"a background 'claudine serve' \(pid (\d+)\) owns them now", said)
        assert f"claudine: left 1 running, 0 queued in {tmp_path / 'home'} ({short})" in said
        assert owner, said
        console.wait(lambda: console.status(task_id) == "completed", 30,
                     "the adopted agent to finish")
        pid = int(owner.group(1))
        console.wait(lambda: not Path(f"/proc/{pid}").exists(), 20,
                     "the background owner to leave once idle")
    finally:
        console.close()
