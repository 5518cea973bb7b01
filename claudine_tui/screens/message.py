"""The one-line message box of ``m``: a message to a task's agent.

The caller passes ``send(text)``, which sends the message and returns what to tell the
user (e.g. TaskService.send_message wrapped to describe the outcome). Enter sends, Escape
cancels. A refusal (ClaudineError: an empty message, a task that has not started) is shown
in the box, which stays open so the text can be fixed or the box closed.
"""

from __future__ import annotations

from collections.abc import Callable

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label

from claudine_core.errors import ClaudineError


class MessageScreen(ModalScreen[str | None]):
    """Dismisses with what ``send`` returned once the message is sent; None on Escape
    (nothing is sent)."""

    DEFAULT_CSS = """
    MessageScreen { align: center middle; }
    MessageScreen > Vertical {
        width: 80%; max-width: 100; height: auto; padding: 1 2;
        border: round $accent; background: $surface;
    }
    MessageScreen .hint { color: $text-muted; }
    MessageScreen .error { color: $error; }
    """

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, send: Callable[[str], str]) -> None:
        """``title`` names the task (e.g. "Message to task 3f9c2a1b")."""
        super().__init__()
        self.title_text = title
        self.send = send

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.title_text, id="message-title")
            yield Input(placeholder="what to tell the agent", id="message-input")
            yield Label("enter: send   esc: cancel", classes="hint", id="message-hint")
            yield Label("", classes="error", id="message-error")

    def on_mount(self) -> None:
        self.query_one("#message-input", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        try:
            outcome = self.send(event.value)
        except ClaudineError as exc:
            self.query_one("#message-error", Label).update(exc.message)
            return
        self.dismiss(outcome)

    def action_cancel(self) -> None:
        self.dismiss(None)
