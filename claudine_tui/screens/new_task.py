"""The new-task form: prompt, priority, working directory, timeout, model and isolation.

Isolation is a git worktree (yes, no, or the CLAUDINE_WORKTREE setting), with optionally a
base branch, a merge strategy and "do not commit the agent's leftover changes"; each of
those needs a worktree.

Every field is checked before the form closes, by the core's one validation of a request
(claudine_core.task_request, the CLI's and DelegateTask's too); each problem is written
under its field, and the first wrong field gets the focus.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import Button, Checkbox, Input, Label, Select

from claudine_core.errors import InvalidRequest
from claudine_core.models import MergeStrategy, TaskSpec
from claudine_core.task_request import describe_problems, read_request

FIELDS = ("prompt", "cwd", "priority", "timeout", "model", "worktree", "merge", "base",
          "no_commit")  # in the form's order: the first wrong one gets the focus
TICKS = ("no_commit",)  # checkboxes
CHOICES = ("worktree", "merge")  # selects; the other fields are text
STRATEGIES = tuple(s.value for s in MergeStrategy)


# The TaskSpec field behind each form field: the core's one validation names problems by
# TaskSpec field, and each message is shown under the form field it is about.
SPEC_FIELDS = {"prompt": "prompt", "cwd": "cwd", "priority": "priority",
               "timeout": "timeout_s", "model": "model", "worktree": "worktree",
               "merge": "merge_strategy", "base": "base_branch", "no_commit": "commit_changes"}
FORM_FIELDS = {spec: form for form, spec in SPEC_FIELDS.items()}
WORKTREE_CHOICE = "'worktree: yes'"


@dataclass(frozen=True)
class FormResult:
    spec: TaskSpec | None
    errors: dict[str, str]


def validate_form(values: dict[str, str], *, default_worktree: bool = False) -> FormResult:
    """Check the form's text values; a TaskSpec when all are right, else the errors by
    form field (from the same validation the CLI and the MCP server use)."""
    raw: dict[str, str | bool | None] = {SPEC_FIELDS[name]: value
                                         for name, value in values.items()
                                         if name in SPEC_FIELDS}
    raw["prompt"] = values.get("prompt", "").strip()
    raw["commit_changes"] = False if _ticked(values.get("no_commit", "")) else None
    try:
        spec = read_request(raw, default_worktree=default_worktree)
    except InvalidRequest as exc:
        named = describe_problems(exc, FORM_FIELDS, worktree=WORKTREE_CHOICE)
        return FormResult(None, {name or "prompt": _sentence(message)
                                 for name, message in named})
    return FormResult(spec, {})


def _sentence(message: str) -> str:
    return message[:1].upper() + message[1:] + ("" if message.endswith(".") else ".")


def _ticked(text: str) -> bool:
    return text.strip().lower() in ("1", "yes", "true", "on")


class NewTaskScreen(ModalScreen[TaskSpec | None]):
    """Dismisses with a validated TaskSpec, or None when cancelled."""

    AUTO_FOCUS = "#field-prompt"
    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
        Binding("ctrl+s", "submit", "Delegate"),
    ]

    def __init__(self, *, cwd: str, default_worktree: bool = False) -> None:
        super().__init__()
        self.default_cwd = cwd
        self.default_worktree = default_worktree  # the setting a worktree choice falls back to

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog form"):
            yield Label("New task", classes="title")
            yield from self._field("prompt", "Prompt", "what the agent should do")
            yield from self._field("cwd", "Working directory", "", self.default_cwd)
            with Horizontal(classes="columns"):  # short fields side by side: fewer rows
                with Vertical():
                    yield from self._field("priority", "Priority", "P0, P1 or P2", "P2")
                with Vertical():
                    yield from self._field("timeout", "Timeout (s)", "empty: default")
                with Vertical():
                    yield from self._field("model", "Model", "empty: default")
            with Horizontal(classes="isolation"):
                # Yes, no, or the CLAUDINE_WORKTREE setting (the blank choice).
                default = "yes" if self.default_worktree else "no"
                yield Select([("worktree: yes", "yes"), ("worktree: no", "no")],
                             id="field-worktree", prompt=f"worktree: default ({default})")
                yield Select([(f"merge: {name}", name) for name in STRATEGIES],
                             id="field-merge", prompt="merge: default")
            yield from self._error("worktree")
            yield from self._error("merge")
            yield from self._field("base", "Base branch",
                                   "empty: the current branch (worktree only)")
            yield Checkbox("Do not commit the agent's leftover changes (worktree only)",
                           id="field-no_commit")
            yield from self._error("no_commit")
            with Horizontal(classes="buttons"):
                yield Button("Delegate (ctrl+s)", variant="primary", id="submit")
                yield Button("Cancel (esc)", id="cancel")

    def _field(self, name: str, label: str, hint: str, value: str = "") -> ComposeResult:
        yield Label(label, classes="field-label")
        yield Input(value=value, placeholder=hint, id=f"field-{name}")
        yield from self._error(name)

    def _error(self, name: str) -> ComposeResult:
        error = Label("", id=f"error-{name}", classes="error")
        error.display = False
        yield error

    def values(self) -> dict[str, str]:
        values = {name: self.query_one(f"#field-{name}", Input).value
                  for name in FIELDS if name not in (*TICKS, *CHOICES)}
        for name in TICKS:
            values[name] = "yes" if self.query_one(f"#field-{name}", Checkbox).value else ""
        for name in CHOICES:
            choice = self.query_one(f"#field-{name}", Select).value
            values[name] = choice if isinstance(choice, str) else ""  # blank: the default
        return values

    def action_submit(self) -> None:
        result = validate_form(self.values(), default_worktree=self.default_worktree)
        for name in FIELDS:
            label = self.query_one(f"#error-{name}", Label)
            message = result.errors.get(name, "")
            label.update(message)
            label.display = bool(message)
            self.query_one(f"#field-{name}", Widget).set_class(bool(message), "-invalid")
        if result.spec is not None:
            self.dismiss(result.spec)
            return
        first = next(name for name in FIELDS if name in result.errors)
        self.query_one(f"#field-{first}", Widget).focus()

    def action_cancel(self) -> None:
        self.dismiss(None)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_submit()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "submit":
            self.action_submit()
        else:
            self.dismiss(None)
