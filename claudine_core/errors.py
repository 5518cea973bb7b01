"""The errors front ends catch from the core, importable without loading the store.

The store raises them and re-exports them (``claudine_core.store.StoreError`` is the same
class), so a front end can catch them without importing ``claudine_core.store``: the
import-linter contracts in pyproject.toml forbid front ends to import the store.
"""

from __future__ import annotations

__all__ = ["InvalidTransition", "StoreError", "UnknownTask"]


class StoreError(RuntimeError):
    """The database cannot be used; the message says what is wrong and what to do."""


class UnknownTask(LookupError):
    """No task matches the id the user gave."""


class InvalidTransition(ValueError):
    """The task exists but its state does not allow the requested change."""
