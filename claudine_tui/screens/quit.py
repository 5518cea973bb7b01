"""The quit dialog: leave the agents running for the next owner, or stop them."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label

LEAVE, STOP = "leave", "stop"


class QuitScreen(ModalScreen[str | None]):
    """Dismisses with ``"leave"``, ``"stop"``, or None (stay in the console)."""

    BINDINGS = [
        Binding("l", "choose('leave')", "Leave running"),
        Binding("s", "choose('stop')", "Stop agents"),
        Binding("escape", "choose(None)", "Stay"),
    ]

    def __init__(self, *, running: int, queued: int, owner: bool, parked: int = 0) -> None:
        super().__init__()
        self.running, self.queued, self.owner = running, queued, owner
        self.parked = parked

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self._question(), classes="question")
            with Horizontal(classes="buttons"):
                yield Button("Leave running (l)", variant="primary", id="leave")
                if self.owner:
                    yield Button("Stop agents (s)", variant="error", id="stop")
                yield Button("Stay (esc)", id="stay")

    def _question(self) -> str:
        parked = f" and {self.parked} parked until a usage limit resets" if self.parked else ""
        if not self.owner:
            return ("Quit the console? The owning process keeps running the "
                    f"{self.running} agent(s) and {self.queued} queued task(s){parked}.")
        return (
            f"Quit with {self.running} agent(s) running and {self.queued} task(s) queued"
            f"{parked}?\n"
            "Leave running: they keep going and the next owner (console, serve or MCP) "
            "adopts them.\nStop agents: running tasks end as cancelled; queued tasks stay "
            "queued. No task is lost either way."
        )

    def on_mount(self) -> None:
        self.query_one("#leave", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(None if event.button.id == "stay" else event.button.id)

    def action_choose(self, choice: str | None) -> None:
        if choice == STOP and not self.owner:
            return
        self.dismiss(choice)
