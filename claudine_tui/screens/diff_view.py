"""The review of a worktree task: files changed, then the diff, and merge/patch/PR/discard.

Git is blocking, so loading and every action run in a thread (``asyncio.to_thread``); the
screen stays responsive and a second action is refused while one runs. Each action asks for
confirmation, then reports its outcome as a toast (a refusal as a warning with the reason, a
WorktreeError as an error). A finished action that took the branch away closes the screen.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from rich.console import Group
from rich.syntax import Syntax
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Label, Static

from claudine_core.isolation.worktrees import WorktreeError
from claudine_core.models import Task
from claudine_tui.screens.confirm import ConfirmScreen
from claudine_tui.task_text import describe_merge
from claudine_tui.widgets.footer import KeyFooter
from claudine_tui.widgets.ports import ReviewPort

MAX_DIFF_CHARS = 400_000  # past this, rendering stalls the UI; the CLI shows it all
STATUS_STYLES = {"A": "green", "M": "yellow", "D": "red", "R": "cyan", "C": "cyan"}
DONE_STATUSES = ("merged", "patch", "pr", "discarded")
ACTIONS: dict[str, tuple[str, str]] = {  # action: (question verb, button)
    "merge": ("Merge {branch} into {base}", "Merge"),
    "patch": ("Export {branch} as a patch file and remove its worktree", "Export"),
    "pr": ("Push {branch} and open a pull request", "Open PR"),
    "discard": ("Discard {branch} and its worktree", "Discard"),
}


class DiffScreen(Screen[None]):
    """The changes of one task's branch; ``load(task_id)`` returns the task as stored now."""

    BINDINGS = [
        Binding("m", "act('merge')", "Merge"),
        Binding("p", "act('patch')", "Patch"),
        Binding("g", "act('pr')", "Open PR"),
        Binding("x", "act('discard')", "Discard"),
        Binding("r", "reload", "Reload"),
        Binding("escape", "close", "Close"),
    ]

    def __init__(self, task: Task, review: ReviewPort, load: Callable[[str], Task]) -> None:
        super().__init__()
        self.review_task = task
        self.review = review
        self.load = load
        self.busy = False
        self.loaded = False

    def compose(self) -> ComposeResult:
        task = self.review_task
        base = task.base_branch or "?"
        yield Label(f"Diff · {task.short_id} · {task.branch} → {base} · {task.status.value}",
                    id="diff-title")
        with VerticalScroll(id="diff-scroll"):
            yield Static(Text("Loading the diff…", style="dim"), id="diff-files")
            yield Static("", id="diff-body")
        yield KeyFooter(keep=("act", "close", "toggle_help"))

    def on_mount(self) -> None:
        self.query_one("#diff-scroll").focus()
        self.action_reload()

    # -- loading ---------------------------------------------------------------------------

    def action_reload(self) -> None:
        self._load()

    @work(exclusive=True, group="diff-load")
    async def _load(self) -> None:
        task = self.review_task
        try:
            files, diff = await asyncio.to_thread(self._read, task)
        except (WorktreeError, OSError, ValueError) as exc:
            self.query_one("#diff-files", Static).update(Text(str(exc), style="bold red"))
            self.notify(str(exc), title="Diff", severity="error", timeout=8)
            return
        self.query_one("#diff-files", Static).update(files_text(files))
        self.query_one("#diff-body", Static).update(diff_renderable(diff))
        self.loaded = True

    def _read(self, task: Task) -> tuple[list[tuple[str, str]], str]:
        try:
            return self.review.changed_files(task), self.review.diff(task)
        except WorktreeError:
            raise
        except Exception as exc:  # git errors: shown, never a crash of the console
            raise WorktreeError(f"could not read the diff: {exc}") from exc

    # -- actions ---------------------------------------------------------------------------

    def action_close(self) -> None:
        self.dismiss(None)

    def action_act(self, action: str) -> None:
        if self.busy:
            self.notify("Another action is running on this task.", severity="warning")
            return
        task = self._fresh()
        verb, button = ACTIONS[action]
        question = verb.format(branch=task.branch, base=task.base_branch or "its base") + "?"
        if action == "merge" and task.base_branch:
            question += "\nUncommitted work in your checkout is never touched."

        def confirmed(yes: bool | None) -> None:
            if yes:
                self._run(action, task, False)

        self.app.push_screen(ConfirmScreen(f"{task.short_id}: {question}", yes=button,
                                           no="Keep"), confirmed)

    def _fresh(self) -> Task:
        try:
            self.review_task = self.load(self.review_task.id)
        except Exception:  # noqa: BLE001 - keep the task we have; the action will say why
            pass
        return self.review_task

    @work(group="diff-action")
    async def _run(self, action: str, task: Task, force: bool) -> None:
        self.busy = True
        self.notify(f"{task.short_id}: {action} running…", timeout=3)
        try:
            outcome = await asyncio.to_thread(self._call, action, task, force)
        except WorktreeError as exc:
            if action == "discard" and not force and "use force" in str(exc):
                self._ask_force(task, str(exc))
            else:
                self.notify(str(exc), title=f"{task.short_id}: {action} failed",
                            severity="error", timeout=10)
            return
        finally:
            self.busy = False
        self._report(task, outcome)

    def _call(self, action: str, task: Task, force: bool) -> dict[str, Any]:
        try:
            if action == "merge":
                return self.review.merge(task)
            if action == "patch":
                return self.review.export_patch(task)
            if action == "pr":
                return self.review.open_pr(task)
            return self.review.discard(task, force=force)
        except WorktreeError:
            raise
        except Exception as exc:  # git or GitHub errors become one readable line
            raise WorktreeError(f"{action} failed: {exc}") from exc

    def _ask_force(self, task: Task, reason: str) -> None:
        def confirmed(yes: bool | None) -> None:
            if yes:
                self._run("discard", task, True)

        reason = reason.split(" (use force", 1)[0]  # the CLI's hint; here the dialog asks
        question = f"{task.short_id}: {reason}.\nDiscard it anyway? This cannot be undone."
        self.app.push_screen(ConfirmScreen(question, yes="Discard anyway", no="Keep"),
                             confirmed)

    def _report(self, task: Task, outcome: dict[str, Any]) -> None:
        title = f"{task.short_id}: {outcome.get('status', '?')}"
        if outcome.get("status") in DONE_STATUSES:
            self.notify(describe_merge(outcome), title=title, timeout=8)
            self.dismiss(None)
        else:
            self.notify(outcome.get("reason") or describe_merge(outcome), title=title,
                        severity="warning", timeout=10)


def files_text(files: list[tuple[str, str]]) -> Text:
    if not files:
        return Text("No changes on this branch.", style="dim")
    text = Text(f"{len(files)} file{'s' if len(files) != 1 else ''} changed\n", style="bold")
    for status, path in files:
        text.append(f" {status[:1]} ", style=f"bold {STATUS_STYLES.get(status[:1], 'white')}")
        text.append(f" {path}\n")
    return text


def diff_renderable(diff: str) -> Any:
    if not diff.strip():
        return Text("(empty diff)", style="dim")
    note = None
    if len(diff) > MAX_DIFF_CHARS:
        diff = diff[:MAX_DIFF_CHARS].rsplit("\n", 1)[0]
        note = Text("… diff cut here; 'claudine worktrees diff TASK' prints it all",
                    style="dim italic")
    syntax = Syntax(diff, "diff", theme="ansi_dark", word_wrap=True,
                    background_color="default")
    return Group(syntax, note) if note else syntax
