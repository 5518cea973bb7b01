"""Per-repository settings: the ``[worktree]`` table of ``.claudine.toml``.

The file sits at the root of the user's repository (it may be git-ignored)::

    [worktree]
    copy = [".env", "config/local.json"]   # git-ignored files copied into each worktree
    setup = "npm ci"                         # run in the new worktree, output in worktree.log
    setup_timeout = 600                      # seconds
    commit = true                            # commit what the agent left uncommitted
    remote = "origin"                        # for pr (default: base's upstream, else origin)
    github_repo = "owner/name"               # for pr when the remote URL is not GitHub's

It is read with the rigour of ``config.toml`` (:mod:`claudine_core.config`): every key is
checked for type and value, and a wrong one, an unknown key or table included, is a
:class:`RepoSettingsError` naming the file, the line, the key and what is allowed, never a
silent fallback to the default. Values are TOML's own types (``commit = false``): unlike
config.toml this file has no environment variables beside it whose strings need parsing,
so ``commit = "false"`` is a mistake to report, not a spelling to accept.

No git here: reading the file is cheap enough to do whenever a task is delegated.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from claudine_core.isolation.errors import RepoSettingsError

__all__ = [
    "SETTINGS_FILE",
    "RepoSettings",
    "RepoSettingsError",
    "load_settings",
    "load_settings_for",
]

SETTINGS_FILE = ".claudine.toml"
TABLE = "worktree"
"""The one table of the file."""

SETUP_TIMEOUT_RANGE = (1.0, 86400.0)
"""Seconds, as for a task's own timeout."""


@dataclass(frozen=True)
class RepoSettings:
    """One repository's ``[worktree]`` settings; ``RepoSettings()`` is the defaults."""

    copy: tuple[str, ...] = ()
    """Git-ignored files or folders, relative to the repository root, copied into each new
    worktree (an ``.env`` the agent's tests need)."""
    setup: str | None = None
    """A shell command run in each new worktree before the agent starts."""
    setup_timeout_s: float = 600.0
    """How long the setup command may run."""
    commit: bool = True
    """Commit what the agent left uncommitted when its task ends."""
    remote: str | None = None
    """The remote a pull request's branch is pushed to (None: base's upstream, else origin)."""
    github_repo: str | None = None
    """``owner/name`` on GitHub, for a remote whose URL does not say it."""


class _Invalid(Exception):
    """Internal: the value does not fit; ``detail`` says how when "expected" is not enough."""

    def __init__(self, detail: str = "") -> None:
        super().__init__(detail)
        self.detail = detail


@dataclass(frozen=True)
class _Key:
    """One key of ``[worktree]``: its field, what it accepts, and its check."""

    name: str
    field: str
    allowed: str
    check: Callable[[Any, Path], Any]
    """``(value, repository root) -> field value``; raises _Invalid."""


def _copy_entries(value: Any, root: Path) -> tuple[str, ...]:
    entries = [value] if isinstance(value, str) else value  # one file may be given bare
    if not isinstance(entries, list) or not all(isinstance(e, str) for e in entries):
        raise _Invalid
    top = root.resolve()
    for entry in entries:
        if not entry.strip():
            raise _Invalid("an entry is empty")
        # Absolute or climbing out with "..": the agent's worktree must not get files the
        # repository does not hold.
        if entry.startswith("/") or not (top / entry).resolve().is_relative_to(top):
            raise _Invalid(f"{json.dumps(entry)} is outside the repository")
    return tuple(entries)


def _setup_command(value: Any, root: Path) -> str | None:
    if not isinstance(value, str):
        raise _Invalid
    return value if value.strip() else None  # setup = "" says "no setup command"


def _setup_timeout(value: Any, root: Path) -> float:
    lo, hi = SETUP_TIMEOUT_RANGE
    # bool is an int subclass: `setup_timeout = true` is a mistake, not 1 second.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Invalid
    if not math.isfinite(value) or not lo <= value <= hi:
        raise _Invalid
    return float(value)


def _boolean(value: Any, root: Path) -> bool:
    if not isinstance(value, bool):
        raise _Invalid
    return value


def _remote_name(value: Any, root: Path) -> str:
    # A leading "-" would reach `git push` as an option.
    if not isinstance(value, str) or not re.fullmatch(r"[^\s-]\S*", value):
        raise _Invalid
    return value


def _github_name(value: Any, root: Path) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[\w.-]+/[\w.-]+", value, re.ASCII):
        raise _Invalid
    return value


_KEYS: tuple[_Key, ...] = (
    _Key("copy", "copy", "a list of paths relative to the repository root (or one path), "
         'e.g. [".env", "config/local.json"]', _copy_entries),
    _Key("setup", "setup", 'a shell command as a string, e.g. "npm ci"', _setup_command),
    _Key("setup_timeout", "setup_timeout_s",
         f"a number from {SETUP_TIMEOUT_RANGE[0]:g} to {SETUP_TIMEOUT_RANGE[1]:g} (seconds)",
         _setup_timeout),
    _Key("commit", "commit", "true or false (a TOML boolean, without quotes)", _boolean),
    _Key("remote", "remote", 'the name of a git remote as a string, e.g. "origin"',
         _remote_name),
    _Key("github_repo", "github_repo", 'a GitHub repository as "owner/name"', _github_name),
)
_BY_NAME = {key.name: key for key in _KEYS}


def load_settings(root: Path) -> RepoSettings:
    """The settings of the repository whose working tree is ``root``.

    No ``.claudine.toml`` means the defaults.

    Raises:
        RepoSettingsError: the file cannot be read or parsed, or a key in it is unknown or
            has a wrong type or value; the message names the file, line and key.
    """
    path = root / SETTINGS_FILE
    text = _read(path)
    if text is None:
        return RepoSettings()
    import tomllib  # here, not at the top: most repositories have no such file

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:  # its message carries "(at line N, column M)"
        raise RepoSettingsError(f"{path}: not valid TOML: {exc}", path=path) from exc
    for name in data:
        if name != TABLE:
            raise RepoSettingsError(
                f"{_where(path, text, None, name)}: unknown table or key {name!r}; the file "
                f"has one table, [{TABLE}]", path=path, key=name)
    table = data.get(TABLE, {})
    if not isinstance(table, dict):
        raise RepoSettingsError(f"{_where(path, text, None, TABLE)}: must be a table "
                                f"([{TABLE}]), not {_toml(table)}", path=path, key=TABLE)
    fields: dict[str, Any] = {}
    for name, value in table.items():
        key = _known_key(path, text, name)
        fields[key.field] = _checked(path, text, key, value, root)
    return RepoSettings(**fields)


def load_settings_for(path: Path) -> RepoSettings:
    """The settings of the repository ``path`` is in; the defaults outside any repository.

    The repository is found the way git finds it (the nearest folder, ``path`` or a parent,
    with a ``.git`` entry) without loading git, so a delegating process can check the file
    at once instead of the task failing later when its worktree is prepared.

    Raises:
        RepoSettingsError: as :func:`load_settings`.
    """
    absolute = path.absolute()
    for folder in (absolute, *absolute.parents):
        if (folder / ".git").exists():
            return load_settings(folder)
    return RepoSettings()


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError):
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise RepoSettingsError(f"{path} cannot be read: {exc}", path=path) from exc


def _known_key(path: Path, text: str, name: str) -> _Key:
    """The key ``name`` of [worktree], or the error naming it (and the key meant)."""
    key = _BY_NAME.get(name)
    if key is not None:
        return key
    import difflib  # only for a wrong file

    close = difflib.get_close_matches(name, _BY_NAME, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise RepoSettingsError(f"{_where(path, text, TABLE, name)}: unknown key{hint}; valid "
                            "keys: " + ", ".join(_BY_NAME), path=path, key=f"{TABLE}.{name}")


def _checked(path: Path, text: str, key: _Key, value: Any, root: Path) -> Any:
    """The field value for ``key = value``, or the error naming the key and what it takes."""
    try:
        return key.check(value, root)
    except _Invalid as exc:
        detail = f"{exc.detail}; " if exc.detail else ""
        raise RepoSettingsError(
            f"{_where(path, text, TABLE, key.name)} = {_toml(value)} is invalid: {detail}"
            f"expected {key.allowed}", path=path, key=f"{TABLE}.{key.name}") from None


def _where(path: Path, text: str, table: str | None, name: str) -> str:
    """``FILE:LINE: [table] name`` (without the line when it cannot be found)."""
    line = _line_of(text, table, name)
    label = f"[{table}] {name}" if table else name
    return f"{path}:{line}: {label}" if line else f"{path}: {label}"


def _line_of(text: str, table: str | None, name: str) -> int | None:
    """The line where ``name`` is assigned (or opened as a table) inside ``table``."""
    current: str | None = None
    opened = f"{table}.{name}" if table else name  # as a table header: [worktree.name]
    assignment = re.compile(rf"[ \t]*[\"']?{re.escape(name)}[\"']?[ \t]*=")
    for number, line in enumerate(text.splitlines(), start=1):
        header = re.match(r"[ \t]*\[+[ \t]*([^\]]+?)[ \t]*\]", line)
        if header:
            current = header.group(1).strip("\"'")
            if current == opened or current.startswith(f"{opened}."):
                return number
        elif current == table and assignment.match(line):
            return number
    return None


def _toml(value: Any) -> str:
    """``value`` as it would be written in the file, so the message quotes the user."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + "}"
    return str(value)
