"""Search the whole log of a task, not only the lines the pane keeps.

The pane keeps the last 2,000 lines; a search reads the task's entire ``stdout.jsonl``
through ``service.read_events`` in bounded batches, in a thread (a big log must not stall
the screen), renders each event as the pane would (plain text) and keeps every hit with a
few lines around it. ``n`` / ``N`` (or ``enter`` / ``shift+enter``) go from hit to hit,
``/`` searches again, ``esc`` goes back to the live log.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Input, RichLog, Static

from claudine_core.agents.log_text import render_plain
from claudine_tui.widgets.ports import ServicePort

READ_BYTES = 1024 * 1024  # one batch of the file
CONTEXT_LINES = 3  # shown before and after a hit
MAX_HITS = 10_000  # past this the count says "10000+": memory stays bounded


@dataclass
class Hit:
    """One matching line of the rendered log, with the lines around it."""

    line_number: int  # 1-based, in the rendered log
    before: list[str]
    line: str
    after: list[str] = field(default_factory=list)


@dataclass
class SearchResult:
    query: str
    hits: list[Hit]
    lines: int  # rendered lines searched
    capped: bool = False


def search_lines(lines: list[str] | deque[str], query: str, start: int, result: SearchResult,
                 recent: deque[str], pending: list[Hit]) -> None:
    """Add the hits among ``lines`` (numbered from ``start``) to ``result``; ``recent``
    holds the last lines seen (context before), ``pending`` the hits still collecting
    their context after."""
    needle = query.lower()
    for number, line in enumerate(lines, start):
        for hit in pending:
            hit.after.append(line)
        pending[:] = [hit for hit in pending if len(hit.after) < CONTEXT_LINES]
        if needle in line.lower():
            if len(result.hits) >= MAX_HITS:
                result.capped = True
            else:
                hit = Hit(number, list(recent), line)
                result.hits.append(hit)
                pending.append(hit)
        recent.append(line)
    result.lines = start + len(lines) - 1


def search_log(service: ServicePort, task_id: str, query: str) -> SearchResult:
    """Every hit of ``query`` (case-insensitive) in the task's whole rendered log."""
    result = SearchResult(query, [], 0)
    recent: deque[str] = deque(maxlen=CONTEXT_LINES)
    pending: list[Hit] = []
    offset, number = 0, 1
    while True:
        events, after = service.read_events(task_id, offset, READ_BYTES)
        if after == offset:
            return result
        offset = after
        lines = [line for event in events
                 if (text := render_plain(event)) is not None
                 for line in text.split("\n")]
        search_lines(lines, query, number, result, recent, pending)
        number += len(lines)


class HitView(RichLog):
    """The current hit in its context; ``n`` / ``N`` move, ``esc`` closes the search.

    Its bindings come before the app's while it has the focus, so ``n`` here is the next
    hit, not a new task.
    """

    BINDINGS = [
        Binding("n,enter", "step(1)", "Next"),
        Binding("N,shift+enter", "step(-1)", "Prev"),
        Binding("escape", "close", "Back"),
    ]

    def action_step(self, step: int) -> None:
        self.parent_search.step(step)

    def action_close(self) -> None:
        self.parent_search.close()

    @property
    def parent_search(self) -> LogSearch:
        return self.query_ancestor(LogSearch)


class LogSearch(Vertical):
    """The search box and the hit view of the log pane (hidden until ``/``)."""

    BINDINGS = [
        Binding("shift+enter", "step(-1)", "Previous hit", show=False),
        Binding("escape", "close", "Back to the log", show=False),
    ]

    def __init__(self, service: ServicePort) -> None:
        super().__init__(id="log-search")
        self.service = service
        self.task_id: str | None = None
        self.result: SearchResult | None = None
        self.current = 0  # index into result.hits

    def compose(self) -> ComposeResult:
        yield Static(id="search-status")
        yield HitView(wrap=True, markup=False, auto_scroll=False, id="hit-view")
        yield Input(placeholder="search the whole log (enter: search, esc: back)",
                    id="search-box")

    def on_mount(self) -> None:
        self.display = False

    @property
    def is_open(self) -> bool:
        return bool(self.display)

    @property
    def status_text(self) -> str:
        return str(self.query_one("#search-status", Static).render())

    def open(self, task_id: str) -> None:
        self.task_id, self.result, self.current = task_id, None, 0
        self._live_log().display = False  # the hits take the pane's room
        self.display = True
        self._status("type words to find, enter to search")
        self.query_one(HitView).clear()
        box = self.query_one("#search-box", Input)
        box.value = ""
        box.display = True
        box.focus()

    def close(self) -> None:
        if not self.display:
            return
        self.display = False
        self.result = None
        log = self._live_log()
        if getattr(self.parent, "mode", "log") == "log":
            log.display = True
            log.focus()

    def _live_log(self) -> RichLog:
        assert self.parent is not None
        return self.parent.query_one("#log", RichLog)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        query = event.value.strip()
        if not query or self.task_id is None:
            return
        if self.result is not None and self.result.query == query:
            self.step(1)  # enter again: the next hit
            return
        self._status(f"searching for {query!r}…")
        self._search(self.task_id, query)

    def action_close(self) -> None:
        self.close()

    def action_step(self, step: int) -> None:
        self.step(step)

    @work(thread=True, exclusive=True, group="log-search")
    def _search(self, task_id: str, query: str) -> None:
        result = search_log(self.service, task_id, query)
        self.app.call_from_thread(self._found, task_id, result)

    def _found(self, task_id: str, result: SearchResult) -> None:
        if task_id != self.task_id or not self.display:
            return  # the pane moved on meanwhile
        self.result, self.current = result, 0
        if not result.hits:
            self._status(f"no hit for {result.query!r} in {result.lines} lines")
            self.query_one(HitView).clear()
            return
        self._show()
        self.query_one("#search-box").display = False  # room for the hit; `/` brings it back
        self.query_one(HitView).focus()

    def step(self, step: int) -> None:
        if self.result is None or not self.result.hits:
            return
        self.current = (self.current + step) % len(self.result.hits)
        self._show()

    def _show(self) -> None:
        assert self.result is not None
        hit = self.result.hits[self.current]
        total = f"{len(self.result.hits)}{'+' if self.result.capped else ''}"
        self._status(f"{self.result.query!r}: hit {self.current + 1} of {total} · line "
                     f"{hit.line_number} of {self.result.lines} · n / N: next / previous, "
                     "esc: back")
        view = self.query_one(HitView)
        view.clear()
        # Context lines take one row each (a flood line is a kilobyte); the hit wraps whole.
        width = max(20, view.scrollable_content_region.width - 2 - len(str(hit.line_number)))
        first = hit.line_number - len(hit.before)
        for number, line in enumerate([*hit.before, hit.line, *hit.after], first):
            text = Text(f"{number}: ", style="dim")
            if number == hit.line_number:
                body = Text(line)
                body.highlight_words([self.result.query], "reverse bold", case_sensitive=False)
            else:
                body = Text(line if len(line) <= width else line[:width - 1] + "…", style="dim")
            view.write(text + body)
        # A short pane shows the line before the hit, then the hit (not the context's end).
        view.call_after_refresh(view.scroll_to, y=max(0, len(hit.before) - 1), animate=False)

    def _status(self, text: str) -> None:
        self.query_one("#search-status", Static).update(Text(text))
