"""A yes/no question in a modal dialog."""

from __future__ import annotations

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label


class ConfirmScreen(ModalScreen[bool]):
    """Dismisses with True on ``y``/Yes, False on ``n``/Escape/No."""

    BINDINGS = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def __init__(self, question: str, *, yes: str = "Yes", no: str = "No") -> None:
        super().__init__()
        self.question = question
        self.yes, self.no = yes, no

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.question, classes="question")
            with Horizontal(classes="buttons"):
                yield Button(f"{self.yes} (y)", variant="error", id="yes")
                yield Button(f"{self.no} (n)", variant="primary", id="no")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "yes")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)


class ChoiceScreen(ModalScreen[str | None]):
    """A question with several answers, each on a key; dismisses with the chosen value,
    or None on the keep button, ``n`` or Escape (nothing is done)."""

    BINDINGS = [Binding("n,escape", "choose(None)", "Keep")]

    def __init__(self, question: str, choices: list[tuple[str, str, str]], *,
                 keep: str = "Keep") -> None:
        """``choices``: (key, button label, value) in the order shown."""
        super().__init__()
        self.question = question
        self.choices = choices
        self.keep = keep

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.question, classes="question")
            with Horizontal(classes="buttons"):
                for key, label, value in self.choices:
                    yield Button(f"{label} ({key})", variant="error", id=f"choice-{value}")
                yield Button(f"{self.keep} (n)", variant="primary", id="keep")

    def on_mount(self) -> None:
        self.query_one("#keep", Button).focus()

    def on_key(self, event: events.Key) -> None:
        for key, _, value in self.choices:
            if event.key == key:
                event.stop()
                self.dismiss(value)
                return

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        button = event.button.id or ""
        self.dismiss(button.removeprefix("choice-") if button != "keep" else None)

    def action_choose(self, value: str | None) -> None:
        self.dismiss(value)
