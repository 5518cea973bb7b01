"""The errors a user can act on, importable without loading the store or the SDK.

Every such error derives from :class:`ClaudineError`: its text is the user's message (what
is wrong and what to do) and it carries the exit status a CLI command ends with. Each front
end catches ``ClaudineError`` once (the CLI exits with ``exit_status``, the MCP server
answers ``isError``, the console shows the message) instead of keeping its own list.

The store raises the store errors and re-exports them (``claudine_core.store.StoreError``
is the same class), so a front end catches them without importing ``claudine_core.store``:
the import-linter contracts in pyproject.toml forbid front ends to import the store. The
older built-in bases (``ValueError``, ``LookupError``, ...) stay, so code that caught those
still does.
"""

from __future__ import annotations

__all__ = [
    "EXIT_FAILED",
    "EXIT_USAGE",
    "ClaudineError",
    "InvalidRequest",
    "InvalidTransition",
    "StoreError",
    "UnknownTask",
]

EXIT_FAILED = 1
"""The request was understood but could not be carried out."""
EXIT_USAGE = 2
"""The request itself is wrong (argparse uses 2 for the same thing)."""


class ClaudineError(Exception):
    """An error whose message is for the user; ``exit_status`` is what the CLI exits with."""

    exit_status: int = EXIT_FAILED

    def __init__(self, message: str, *, exit_status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if exit_status is not None:
            self.exit_status = exit_status

    def __str__(self) -> str:
        return self.message


class StoreError(ClaudineError, RuntimeError):
    """The database cannot be used; the message says what is wrong and what to do."""


class UnknownTask(ClaudineError, LookupError):
    """No task matches the id the user gave."""


class InvalidTransition(ClaudineError, ValueError):
    """The task exists but its state does not allow the requested change."""


class InvalidRequest(ClaudineError, ValueError):
    """The request itself is wrong (empty prompt, missing directory, ...).

    ``problems`` maps each wrong field (a :class:`claudine_core.models.TaskSpec` field name)
    to its message, so a front end can name its own flag, argument or form field; the
    error's text joins them.
    """

    exit_status = EXIT_USAGE

    def __init__(self, message: str = "", *, problems: dict[str, str] | None = None,
                 exit_status: int | None = None) -> None:
        self.problems = dict(problems or {})
        super().__init__(message or "; ".join(self.problems.values()), exit_status=exit_status)
