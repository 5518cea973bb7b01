"""Owner settings between processes: what an engine owner publishes in its lock record, and
which of a client's explicitly set owner settings differ from the running owner's."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from claudine_core.config.loading import Config
from claudine_core.config.specs import owner_setting_names, setting_spec
from claudine_core.config.values import format_value

__all__ = ["Mismatch", "owner_mismatches", "owner_settings"]


def owner_settings(config: Config) -> dict[str, Any]:
    """The owner-scope values of ``config``, JSON-ready: what an owner publishes."""
    values = config.to_dict()
    return {name: values[name] for name in owner_setting_names()}


@dataclass(frozen=True)
class Mismatch:
    """An owner setting this process sets explicitly to something the owner does not use."""

    name: str
    here: str
    """How it is set here: ``CLAUDINE_MAX_AGENTS=2`` or ``max_agents=2 in FILE``."""
    owner_value: str
    """The owner's value, formatted."""

    def warning(self, owner_pid: object) -> str:
        return (
            f"{self.here} here, but the running owner (pid {owner_pid}) uses "
            f"{self.name}={self.owner_value}; owner settings come from the owner — "
            "restart it to apply"
        )


def owner_mismatches(
    config: Config, published: Mapping[str, Any] | None, env: Mapping[str, str] | None = None
) -> list[Mismatch]:
    """Owner settings ``config`` sets explicitly (environment, file or flag, not defaults)
    to a value other than the one the running owner ``published``.

    ``published`` is the owner's :func:`owner_settings` as read back from its lock record;
    a setting it does not mention (an older owner) is not compared. ``env`` is where
    ``config`` was loaded from (default ``os.environ``), to quote the variable as written.
    """
    if not published:
        return []
    environ: Mapping[str, str] = os.environ if env is None else env
    found = []
    for name, value in owner_settings(config).items():
        source = config.sources.get(name, "default")
        if source == "default" or name not in published or _same(value, published[name]):
            continue
        here = _how_set_here(name, value, source, environ)
        found.append(Mismatch(name, here, format_value(name, published[name])))
    return found


def _how_set_here(name: str, value: Any, source: str, environ: Mapping[str, str]) -> str:
    """The setting as the user wrote it: the variable, the flag or the file."""
    if source in {e.name for e in setting_spec(name).env} and source in environ:
        return f"{source}={environ[source].strip()}"
    if source.startswith("-") or source == "override":
        return f"{name}={format_value(name, value)} ({source})"
    return f"{name}={format_value(name, value)} in {source}"


def _same(ours: Any, theirs: Any) -> bool:
    # Both sides went through to_dict(); the owner's also through JSON (tuples -> lists).
    if isinstance(ours, list | tuple) and isinstance(theirs, list | tuple):
        return list(ours) == list(theirs)
    if isinstance(ours, bool) or isinstance(theirs, bool):
        return ours is theirs
    return bool(ours == theirs)
