"""The message box alone (``m`` in the console): enter sends through the caller's
``send``, escape cancels, a refusal stays in the box. The refusal comes from a real
TaskService (a queued task has no conversation yet)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from conftest import wait_for
from engine_helpers import make_config
from textual.app import App
from textual.widgets import Input, Label

from claudine_core.models import TaskSpec
from claudine_core.service import TaskService
from claudine_tui.screens.message import MessageScreen


class BoxApp(App[None]):
    """Opens the message box at once; keeps what it was dismissed with."""

    def __init__(self, send: Any) -> None:
        super().__init__()
        self.send = send
        self.outcomes: list[str | None] = []

    def on_mount(self) -> None:
        self.push_screen(MessageScreen("Message to task 3f9c2a1b", self.send),
                         self.outcomes.append)


async def test_enter_sends_the_line_and_closes_the_box() -> None:
    sent: list[str] = []

    def send(text: str) -> str:
        sent.append(text)
        return f"sent: {text}"

    app = BoxApp(send)
    async with app.run_test() as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, MessageScreen), what="the box")
        await pilot.press(*"use -rf carefully", "enter")
        await wait_for(pilot, lambda: app.outcomes, what="the box to close")
        assert not isinstance(app.screen, MessageScreen)
    assert sent == ["use -rf carefully"]
    assert app.outcomes == ["sent: use -rf carefully"]


async def test_escape_cancels_and_sends_nothing() -> None:
    sent: list[str] = []
    app = BoxApp(lambda text: sent.append(text) or "sent")
    async with app.run_test() as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, MessageScreen), what="the box")
        await pilot.press(*"never mind", "escape")
        await wait_for(pilot, lambda: app.outcomes, what="the box to close")
    assert sent == [] and app.outcomes == [None]


async def test_a_refusal_is_shown_and_the_box_stays_open(tmp_path: Path) -> None:
    service = TaskService(make_config(tmp_path / "home"))  # no owner: the task stays queued
    try:
        task = service.delegate(TaskSpec(prompt="later", cwd=str(tmp_path)))
        app = BoxApp(lambda text: service.send_message(task.id, text).id)
        async with app.run_test() as pilot:
            box = await wait_for(pilot, lambda: isinstance(app.screen, MessageScreen)
                                 and app.screen, what="the box")
            await pilot.press(*"hello", "enter")
            error = box.query_one("#message-error", Label)
            await wait_for(pilot, lambda: "no conversation yet" in str(error.render()),
                           what="the refusal")
            assert app.screen is box and app.outcomes == []
            assert box.query_one("#message-input", Input).value == "hello"  # kept to fix
        assert service.task_messages(task.id) == []
    finally:
        service.close()
