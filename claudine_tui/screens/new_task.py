"""The new-task form: prompt, priority, working directory, timeout, model, the most its
agent may spend and the model it falls back to, isolation and the tasks it waits for.

Isolation is a git worktree (yes, no, or the CLAUDINE_WORKTREE setting), with optionally a
base branch, a merge strategy and "do not commit the agent's leftover changes"; each of
those needs a worktree.

Dependencies are task ids or short ids (spaces or commas between them), with what to do
when one fails or is cancelled; "continue from" names a task whose conversation the new
one continues (an empty working directory and worktree choice are then the continued
task's). The task selected in the table when the form opened is offered for both: ctrl+t
adds it to the dependencies, ctrl+o continues from it.

The form delegates the task itself, so nothing is created until every field is right:
first the core's one validation of a request (claudine_core.task_request, the CLI's and
DelegateTask's too), then the service's own checks at delegate time (an unknown
dependency, say). Each problem is written under its field, and the first wrong field gets
the focus.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import Button, Checkbox, Input, Label, Select

from claudine_core.errors import ClaudineError, InvalidRequest
from claudine_core.models import DependencyPolicy, MergeStrategy, Task, TaskSpec
from claudine_core.task_request import describe_problems, read_request

FIELDS = ("prompt", "cwd", "priority", "timeout", "model", "budget", "fallback", "worktree",
          "merge", "base", "no_commit", "depends", "on_failure", "continue_from")
# ^ in the form's order: the first wrong one gets the focus
TICKS = ("no_commit",)  # checkboxes
CHOICES = ("worktree", "merge", "on_failure")  # selects; the other fields are text
STRATEGIES = tuple(s.value for s in MergeStrategy)
POLICIES = tuple(p.value for p in DependencyPolicy)


# The TaskSpec field behind each form field: the core's one validation names problems by
# TaskSpec field, and each message is shown under the form field it is about.
SPEC_FIELDS = {"prompt": "prompt", "cwd": "cwd", "priority": "priority",
               "timeout": "timeout_s", "model": "model", "budget": "max_budget_usd",
               "fallback": "fallback_model", "worktree": "worktree",
               "merge": "merge_strategy", "base": "base_branch", "no_commit": "commit_changes",
               "depends": "depends_on", "on_failure": "on_dependency_failure",
               "continue_from": "continue_from"}
FORM_FIELDS = {spec: form for form, spec in SPEC_FIELDS.items()}
WORKTREE_CHOICE = "'worktree: yes'"


@dataclass(frozen=True)
class FormResult:
    spec: TaskSpec | None
    errors: dict[str, str]


def validate_form(values: dict[str, str], *, default_worktree: bool = False,
                  dependency_policy: str = "fail") -> FormResult:
    """Check the form's text values; a TaskSpec when all are right, else the errors by
    form field (from the same validation the CLI and the MCP server use).

    ``dependency_policy`` is the on_dependency_failure setting a blank choice falls back to.
    """
    raw: dict[str, str | bool | None] = {SPEC_FIELDS[name]: value
                                         for name, value in values.items()
                                         if name in SPEC_FIELDS}
    raw["prompt"] = values.get("prompt", "").strip()
    # "$5" is how a person writes five dollars; the core reads a number.
    raw["max_budget_usd"] = values.get("budget", "").strip().removeprefix("$").strip()
    raw["commit_changes"] = False if _ticked(values.get("no_commit", "")) else None
    # The core reads a list split by commas; a person types ids with spaces too.
    raw["depends_on"] = ",".join(split_ids(values.get("depends", "")))
    try:
        spec = read_request(raw, default_worktree=default_worktree,
                            dependency_policy=dependency_policy)
    except InvalidRequest as exc:
        return FormResult(None, form_errors(exc))
    return FormResult(spec, {})


def split_ids(text: str) -> list[str]:
    """Task ids typed with spaces, commas or both between them."""
    return [part for part in re.split(r"[\s,]+", text) if part]


def form_errors(error: InvalidRequest) -> dict[str, str]:
    """The problems of a refused request, keyed by the form field they are about (one
    about no field, such as a missing agent binary, is shown under the prompt)."""
    errors: dict[str, str] = {}
    for name, message in describe_problems(error, FORM_FIELDS, worktree=WORKTREE_CHOICE):
        field = name if name in FIELDS else "prompt"
        errors[field] = " ".join(filter(None, (errors.get(field), _sentence(message))))
    return errors


def _sentence(message: str) -> str:
    return message[:1].upper() + message[1:] + ("" if message.endswith(".") else ".")


def _ticked(text: str) -> bool:
    return text.strip().lower() in ("1", "yes", "true", "on")


class NewTaskScreen(ModalScreen[Task | None]):
    """Delegates the task through ``delegate`` once every field is right; dismisses with
    the new Task, or None when cancelled.

    Args:
        cwd: the working directory the form starts with.
        delegate: creates the task (``service.delegate``); its InvalidRequest is shown
            under the fields it names and keeps the form open.
        default_worktree: the setting a blank worktree choice falls back to.
        dependency_policy: the setting a blank "if a dependency fails" falls back to.
        selected: the task selected in the table, offered for ctrl+t and ctrl+o.
    """

    AUTO_FOCUS = "#field-prompt"
    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
        Binding("ctrl+s", "submit", "Delegate"),
        Binding("ctrl+t", "depend_on_selected", "Depend on selected"),
        Binding("ctrl+o", "continue_from_selected", "Continue from selected"),
    ]

    def __init__(self, *, cwd: str, delegate: Callable[[TaskSpec], Task],
                 default_worktree: bool = False, dependency_policy: str = "fail",
                 selected: Task | None = None) -> None:
        super().__init__()
        self.default_cwd = cwd
        self.delegate = delegate
        self.default_worktree = default_worktree  # the setting a worktree choice falls back to
        self.dependency_policy = dependency_policy
        self.selected = selected

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog form"):
            yield Label("New task", classes="title")
            yield from self._field("prompt", "Prompt", "what the agent should do")
            yield from self._field("cwd", "Working directory", "", self.default_cwd)
            with Horizontal(classes="columns"):  # short fields side by side: fewer rows
                with Vertical(classes="narrow"):
                    yield from self._field("priority", "Priority", "P0, P1 or P2", "P2")
                with Vertical():
                    yield from self._field("timeout", "Timeout (s)", "default")
                with Vertical():
                    yield from self._field("model", "Model", "default")
                with Vertical():
                    # The agent's own --max-budget-usd: it stops once its cost passes this.
                    yield from self._field("budget", "Max budget ($)", "no limit")
                with Vertical():
                    yield from self._field("fallback", "Fallback model", "the setting")
            with Horizontal(classes="isolation"):
                # Yes, no, or the CLAUDINE_WORKTREE setting (the blank choice).
                default = "yes" if self.default_worktree else "no"
                yield Select([("worktree: yes", "yes"), ("worktree: no", "no")],
                             id="field-worktree", prompt=f"worktree: default ({default})")
                yield Select([(f"merge: {name}", name) for name in STRATEGIES],
                             id="field-merge", prompt="merge: default")
            yield from self._error("worktree")
            yield from self._error("merge")
            with Horizontal(classes="columns"):
                with Vertical():
                    yield from self._field("base", "Base branch",
                                           "empty: the current branch (worktree only)")
                with Vertical(classes="tick"):
                    yield Label("Leftover changes", classes="field-label")
                    yield Checkbox("do not commit", id="field-no_commit",
                                   tooltip="Do not commit the agent's leftover changes "
                                   "(worktree only)")
                    yield from self._error("no_commit")
            with Horizontal(classes="columns"):
                with Vertical():
                    yield from self._field("depends", self._pick_label("Depends on", "ctrl+t"),
                                           "task ids, e.g. 1a2b3c4d 5e6f7a8b")
                with Vertical(classes="choice"):
                    yield Label("If one fails", classes="field-label")
                    yield Select([(name, name) for name in POLICIES], id="field-on_failure",
                                 prompt=f"default: {self.dependency_policy}")
                    yield from self._error("on_failure")
                with Vertical():
                    yield from self._field("continue_from",
                                           self._pick_label("Continue from", "ctrl+o"),
                                           "a task id")
            with Horizontal(classes="buttons"):
                yield Button("Delegate (ctrl+s)", variant="primary", id="submit")
                yield Button("Cancel (esc)", id="cancel")

    def _pick_label(self, label: str, key: str) -> str:
        """A field's label with the key that fills it from the table's selected task."""
        if self.selected is None:
            return label
        if key == "ctrl+t":
            return f"{label} ({key}: {self.selected.short_id})"
        return f"{label} ({key})"

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
        result = validate_form(self.values(), default_worktree=self.default_worktree,
                               dependency_policy=self.dependency_policy)
        errors = result.errors
        task = None
        if result.spec is not None:
            try:
                task = self.delegate(result.spec)
            except InvalidRequest as exc:  # what only the store can tell: an unknown id
                errors = form_errors(exc)
            except ClaudineError as exc:  # refused for no field's sake (the store, say)
                self.notify(exc.message, severity="error", timeout=6)
                return
        self._show_errors(errors)
        if task is not None:
            self.dismiss(task)
            return
        first = next(name for name in FIELDS if name in errors)
        self.query_one(f"#field-{first}", Widget).focus()

    def _show_errors(self, errors: dict[str, str]) -> None:
        for name in FIELDS:
            label = self.query_one(f"#error-{name}", Label)
            message = errors.get(name, "")
            label.update(message)
            label.display = bool(message)
            self.query_one(f"#field-{name}", Widget).set_class(bool(message), "-invalid")

    def action_depend_on_selected(self) -> None:
        """Add the table's selected task to the dependencies (once)."""
        if self.selected is None:
            self.notify("No task was selected in the table.", severity="warning", timeout=3)
            return
        field = self.query_one("#field-depends", Input)
        ids = split_ids(field.value)
        if self.selected.short_id not in ids and self.selected.id not in ids:
            field.value = " ".join([*ids, self.selected.short_id])
        field.cursor_position = len(field.value)

    def action_continue_from_selected(self) -> None:
        """Continue the table's selected task, where it ran: the working directory is
        emptied, so the core takes the continued task's (and its worktree choice)."""
        if self.selected is None:
            self.notify("No task was selected in the table.", severity="warning", timeout=3)
            return
        self.query_one("#field-continue_from", Input).value = self.selected.short_id
        cwd = self.query_one("#field-cwd", Input)
        cwd.value = ""
        cwd.placeholder = f"empty: {self.selected.cwd} (where {self.selected.short_id} ran)"

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
