"""The new-task form: prompt, priority, working directory, timeout, model and isolation.

Isolation is a git worktree, with optionally a base branch, a merge strategy and "do not
commit the agent's leftover changes"; each of those needs the worktree ticked.

Every field is checked before the form closes; each error is written under its field in
words that say how to fix it, and the first wrong field gets the focus.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import Button, Checkbox, Input, Label, Select

from claudine_core.models import MergeStrategy, Priority, TaskSpec
from claudine_core.service import InvalidRequest, check_prompt_size, validate_cwd

FIELDS = ("prompt", "cwd", "priority", "timeout", "model", "worktree", "merge", "base",
          "no_commit")  # in the form's order: the first wrong one gets the focus
TICKS = ("worktree", "no_commit")  # checkboxes; the other fields are text
MODEL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/\[\]-]*$")
BRANCH_RE = re.compile(r"^(?!-)(?!.*\.\.)(?!.*//)[^\s~^:?*\[\\]+(?<![./])$")
STRATEGIES = tuple(s.value for s in MergeStrategy)


@dataclass(frozen=True)
class FormResult:
    spec: TaskSpec | None
    errors: dict[str, str]


def validate_form(values: dict[str, str]) -> FormResult:
    """Check the form's text values; a TaskSpec when all are right, else the errors."""
    errors: dict[str, str] = {}
    prompt = values.get("prompt", "").strip()
    if not prompt:
        errors["prompt"] = "The prompt is empty: say what the agent should do."
    else:
        try:
            check_prompt_size(prompt)  # the same words as the CLI's and MCP's refusal
        except InvalidRequest as exc:
            errors["prompt"] = str(exc)
    priority = Priority.P2
    try:
        priority = Priority.parse(values.get("priority", "").strip() or "P2")
    except ValueError:
        errors["priority"] = "Use P0 (urgent), P1 (high) or P2 (normal)."
    cwd = values.get("cwd", "").strip() or "."
    try:
        cwd = validate_cwd(cwd)
    except InvalidRequest as exc:
        errors["cwd"] = str(exc).capitalize() + "."
    timeout = _timeout(values.get("timeout", "").strip(), errors)
    model = values.get("model", "").strip() or None
    if model is not None and not MODEL_RE.match(model):
        errors["model"] = "A model name has no spaces, e.g. sonnet, opus or claude-sonnet-4-5."
    worktree = _ticked(values.get("worktree", ""))
    no_commit = _ticked(values.get("no_commit", ""))
    base = values.get("base", "").strip() or None
    merge = values.get("merge", "").strip().lower() or None
    if base is not None and not worktree:
        errors["base"] = "A base branch needs 'Isolate in a git worktree' ticked (or clear it)."
    elif base is not None and not BRANCH_RE.match(base):
        errors["base"] = f"{base!r} is not a branch name (e.g. main or release/2.3)."
    if merge is not None and merge not in STRATEGIES:
        errors["merge"] = f"Use one of {', '.join(STRATEGIES)}."
    elif merge is not None and not worktree:
        errors["merge"] = "A merge strategy needs 'Isolate in a git worktree' ticked."
    if no_commit and not worktree:
        errors["no_commit"] = ("Leaving the agent's changes uncommitted needs 'Isolate in a "
                               "git worktree' ticked.")
    if errors:
        return FormResult(None, errors)
    spec = TaskSpec(prompt=prompt, priority=priority, cwd=cwd, timeout_s=timeout, model=model,
                    worktree=worktree, base_branch=base,
                    merge_strategy=MergeStrategy(merge) if merge else None,
                    commit_changes=False if no_commit else None)  # None: the repo decides
    return FormResult(spec, {})


def _ticked(text: str) -> bool:
    return text.strip().lower() in ("1", "yes", "true", "on")


def _timeout(text: str, errors: dict[str, str]) -> float | None:
    if not text:
        return None
    try:
        seconds = float(text.removesuffix("s"))
    except ValueError:
        errors["timeout"] = f"{text!r} is not a number of seconds (e.g. 600)."
        return None
    if not 1 <= seconds <= 86_400:
        errors["timeout"] = "The timeout must be between 1 and 86400 seconds."
        return None
    return seconds


class NewTaskScreen(ModalScreen[TaskSpec | None]):
    """Dismisses with a validated TaskSpec, or None when cancelled."""

    AUTO_FOCUS = "#field-prompt"
    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
        Binding("ctrl+s", "submit", "Delegate"),
    ]

    def __init__(self, *, cwd: str) -> None:
        super().__init__()
        self.default_cwd = cwd

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
                yield Checkbox("Isolate in a git worktree", id="field-worktree")
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
                  for name in FIELDS if name not in (*TICKS, "merge")}
        for name in TICKS:
            values[name] = "yes" if self.query_one(f"#field-{name}", Checkbox).value else ""
        merge = self.query_one("#field-merge", Select).value
        values["merge"] = merge if isinstance(merge, str) else ""
        return values

    def action_submit(self) -> None:
        result = validate_form(self.values())
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
