"""Settings for the engine and every front end, from defaults, a TOML file and the environment.

Precedence, lowest first: built-in defaults, the TOML file (``CLAUDINE_CONFIG`` or
``<user config dir>/config.toml``), the original claudine's environment variables
(``TASK_TIMEOUT`` in ms, ``MAX_OUTPUT_BUFFER``, ``CPU_THRESHOLD``, ``MEMORY_RESERVE``,
``LOG_LEVEL``), ``CLAUDINE_*`` environment variables, and finally overrides passed by a
front end (CLI flags). Every value is validated where it enters: a bad value is a
:class:`ConfigError` naming where it came from, what it was and what is allowed, never a
silent fallback to the default.

The settings are described once, in ``_SPECS``; parsing, validation, error messages and
:func:`settings_table` (docs and ``claudine config``) are all driven from that table so
they cannot drift apart. Each setting also has a *scope* (task, owner or local, see
:data:`Scope`), so front ends know which values a client's environment can change.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import platformdirs

from claudine_core.errors import EXIT_USAGE, ClaudineError

__all__ = [
    "Config",
    "ConfigError",
    "Mismatch",
    "config_file_path",
    "default_config_path",
    "default_home",
    "describe_settings",
    "format_value",
    "load_config",
    "owner_mismatches",
    "owner_setting_names",
    "owner_settings",
    "parse_size",
    "setting_scope",
    "settings_table",
    "task_setting_names",
]

CONFIG_ENV = "CLAUDINE_CONFIG"
"""Environment variable naming the TOML file; when set, the file must exist."""


class ConfigError(ClaudineError, ValueError):
    """A setting has an invalid value, or the config file cannot be used.

    ``source`` is where the value came from (an environment variable name, ``config.toml``
    key, option name or file path), so a front end can point the user at it.
    """

    exit_status = EXIT_USAGE

    def __init__(self, message: str, *, source: str = "", value: object = None) -> None:
        super().__init__(message)
        self.source = source
        self.value = value


def default_home() -> Path:
    """Where claudine keeps its state when ``CLAUDINE_HOME`` is not set."""
    return Path(platformdirs.user_data_dir("claudine"))


def default_config_path() -> Path:
    """Where the TOML file is looked for when ``CLAUDINE_CONFIG`` is not set."""
    return Path(platformdirs.user_config_dir("claudine")) / "config.toml"


# --------------------------------------------------------------------------------------
# The settings table

Kind = Literal[
    "path", "str", "float", "int", "size", "optint", "bool", "choice", "list", "args", "url"
]

Scope = Literal["task", "owner", "local"]
"""Whose value a setting is, when several processes share a home.

- ``task``: how one task's agent runs (binary, timeout, permissions, output limit, extra
  arguments). The delegating process's value is copied into the task row, so a task runs
  as it was asked for whichever process owns the home when it starts.
- ``owner``: how the engine owner schedules and supervises every task (admission limits,
  retries, recovery, stopping, idle exit, worktree defaults and merges). Only the running
  owner's values count; it publishes them in ``engine.lock`` so a client can tell when its
  own differ (see :func:`owner_mismatches`).
- ``local``: this process alone (which home it talks to, how verbosely it logs).
"""


@dataclass(frozen=True)
class _Env:
    """One environment variable feeding a setting.

    ``per_unit`` is how many of this variable's units make one unit of the field, because
    the original claudine's ``TASK_TIMEOUT`` is in milliseconds while the field is seconds.
    """

    name: str
    per_unit: int = 1
    unit: str | None = None  # the variable's unit when it differs from the field's


@dataclass(frozen=True)
class _Spec:
    name: str
    kind: Kind
    doc: str
    env: tuple[_Env, ...] = ()
    lo: float | None = None
    hi: float | None = None
    unit: str = ""
    choices: tuple[str, ...] = ()
    default_text: str | None = None  # for defaults whose repr would mislead (computed paths)
    scope: Scope = field(kw_only=True)  # required: every setting says whose it is


_SPECS: tuple[_Spec, ...] = (
    _Spec(
        "home",
        "path",
        "Directory holding the task database, run output and the engine lock.",
        env=(_Env("CLAUDINE_HOME"),),
        default_text="platformdirs user_data_dir('claudine'), e.g. ~/.local/share/claudine",
        scope="local",
    ),
    _Spec(
        "claude_bin",
        "str",
        "Claude Code executable: a name looked up on PATH, or a path.",
        env=(_Env("CLAUDINE_CLAUDE_BIN"),),
        scope="task",
    ),
    _Spec(
        "task_timeout_s",
        "float",
        "How long a task may run before it is stopped as timed out.",
        env=(_Env("TASK_TIMEOUT", 1000, "milliseconds"), _Env("CLAUDINE_TASK_TIMEOUT")),
        lo=1,
        hi=86400,
        unit="seconds",
        scope="task",
    ),
    _Spec(
        "max_output_bytes",
        "size",
        "Output buffer limit per task.",
        env=(_Env("MAX_OUTPUT_BUFFER"), _Env("CLAUDINE_MAX_OUTPUT_BUFFER")),
        lo=1024,
        hi=1073741824,
        unit="bytes",
        scope="task",
    ),
    _Spec(
        "cpu_threshold",
        "float",
        "Total machine CPU use above which no new agent is started.",
        env=(_Env("CPU_THRESHOLD"), _Env("CLAUDINE_CPU_THRESHOLD")),
        lo=1,
        hi=100,
        unit="percent",
        scope="owner",
    ),
    _Spec(
        "memory_reserve",
        "size",
        "Memory kept free: no new agent starts if it would leave less than this available.",
        env=(_Env("MEMORY_RESERVE"), _Env("CLAUDINE_MEMORY_RESERVE")),
        lo=0,
        unit="bytes",
        scope="owner",
    ),
    _Spec(
        "max_agents",
        "optint",
        "Hard cap on agents running at once; none means only CPU and memory limit it.",
        env=(_Env("CLAUDINE_MAX_AGENTS"),),
        lo=1,
        scope="owner",
    ),
    _Spec(
        "log_level",
        "choice",
        "Log verbosity.",
        env=(_Env("LOG_LEVEL"), _Env("CLAUDINE_LOG_LEVEL")),
        choices=("debug", "info", "warn", "error"),
        scope="local",
    ),
    _Spec(
        "permission_mode",
        "choice",
        "How unattended agents get past permission prompts: skip = "
        "--dangerously-skip-permissions; acceptEdits; allowedTools = only allowed_tools; "
        "default = risky tools are denied.",
        env=(_Env("CLAUDINE_PERMISSION_MODE"),),
        choices=("skip", "acceptEdits", "allowedTools", "default"),
        scope="task",
    ),
    _Spec(
        "allowed_tools",
        "list",
        "Tools agents may use when permission_mode is allowedTools (then required).",
        env=(_Env("CLAUDINE_ALLOWED_TOOLS"),),
        scope="task",
    ),
    _Spec(
        "max_retries",
        "int",
        "Automatic retries of a task after a transient failure.",
        env=(_Env("CLAUDINE_MAX_RETRIES"),),
        lo=0,
        hi=20,
        scope="owner",
    ),
    _Spec(
        "retry_base_delay_s",
        "float",
        "Delay before the first automatic retry; later ones back off up to retry_max_delay_s.",
        env=(_Env("CLAUDINE_RETRY_BASE_DELAY"),),
        lo=0,
        hi=3600,
        unit="seconds",
        scope="owner",
    ),
    _Spec(
        "retry_max_delay_s",
        "float",
        "Longest delay between retries; must not be below retry_base_delay_s.",
        env=(_Env("CLAUDINE_RETRY_MAX_DELAY"),),
        lo=0,
        hi=86400,
        unit="seconds",
        scope="owner",
    ),
    _Spec(
        "recovery_policy",
        "choice",
        "What to do with a task whose agent died while no engine watched it: resume the "
        "Claude session, requeue from scratch, or fail it.",
        env=(_Env("CLAUDINE_RECOVERY"),),
        choices=("resume", "requeue", "fail"),
        scope="owner",
    ),
    _Spec(
        "kill_grace_s",
        "float",
        "Time between SIGTERM and SIGKILL when stopping an agent.",
        env=(_Env("CLAUDINE_KILL_GRACE"),),
        lo=0,
        hi=300,
        unit="seconds",
        scope="owner",
    ),
    _Spec(
        "idle_exit_s",
        "float",
        "A background `claudine serve` started by the CLI exits after this long with "
        "nothing queued or running.",
        env=(_Env("CLAUDINE_IDLE_EXIT"),),
        lo=0,
        hi=86400,
        unit="seconds",
        scope="owner",
    ),
    _Spec(
        "handoff_on_exit",
        "bool",
        "An owner that exits with tasks queued or running starts a background `claudine "
        "serve` to take them over (unless you chose to stop the agents).",
        env=(_Env("CLAUDINE_HANDOFF_ON_EXIT"),),
        scope="owner",
    ),
    _Spec(
        "agent_cpu_cost",
        "float",
        "Projected share of total machine CPU one newly started agent will use (admission).",
        env=(_Env("CLAUDINE_AGENT_CPU"),),
        lo=0,
        hi=100,
        unit="percent",
        scope="owner",
    ),
    _Spec(
        "agent_memory_cost",
        "size",
        "Projected memory one newly started agent will use (admission).",
        env=(_Env("CLAUDINE_AGENT_MEMORY"),),
        lo=0,
        unit="bytes",
        scope="owner",
    ),
    _Spec(
        "settle_window_s",
        "float",
        "How long a newly started agent is counted by projection instead of measurement.",
        env=(_Env("CLAUDINE_SETTLE_WINDOW"),),
        lo=0,
        hi=600,
        unit="seconds",
        scope="owner",
    ),
    _Spec(
        "cpu_limit_when_idle",
        "bool",
        "Apply cpu_threshold even when no agent of this home is running. Off (the default), "
        "the CPU limit only holds back a new agent while one of ours runs, as GNU make's -l "
        "does, so a machine kept busy by other work still runs the queue one agent at a "
        "time; the memory reserve and max_agents always hold.",
        env=(_Env("CLAUDINE_CPU_LIMIT_WHEN_IDLE"),),
        scope="owner",
    ),
    _Spec(
        "default_worktree",
        "bool",
        "Run new tasks in their own git worktree by default.",
        env=(_Env("CLAUDINE_WORKTREE"),),
        scope="owner",
    ),
    _Spec(
        "default_merge_strategy",
        "choice",
        "How a worktree task's changes come back by default.",
        env=(_Env("CLAUDINE_MERGE_STRATEGY"),),
        choices=("manual", "auto", "patch", "pr"),
        scope="owner",
    ),
    _Spec(
        "github_api_url",
        "url",
        "GitHub API base URL for pull requests (GitHub Enterprise); none = api.github.com.",
        env=(_Env("CLAUDINE_GITHUB_API_URL"),),
        scope="owner",
    ),
    _Spec(
        "extra_agent_args",
        "args",
        "Extra command-line arguments appended to every claude invocation (shell syntax).",
        env=(_Env("CLAUDINE_AGENT_ARGS"),),
        scope="task",
    ),
)

_BY_NAME = {spec.name: spec for spec in _SPECS}


# --------------------------------------------------------------------------------------
# Parsing and validation

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")
_NONE_WORDS = ("none", "unlimited")

# Binary multiples, because the original's documented sizes are binary (1GB = 1073741824).
_SIZE_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_SIZE_RE = re.compile(r"^(\d+(?:\.\d*)?|\.\d+)\s*(?:([kmgt])(?:i?b)?|b)?$", re.IGNORECASE)


def parse_size(text: str) -> int:
    """Bytes from ``"1073741824"``, ``"512M"``, ``"2G"``, ``"1.5GiB"``, ``"64kb"``.

    Suffixes K, M, G, T are binary (powers of 1024). Raises ValueError when unparsable.
    """
    match = _SIZE_RE.match(text.strip().replace("_", ""))
    if not match:
        raise ValueError(f"not a size: {text!r}")
    number, suffix = match.groups()
    return round(float(number) * _SIZE_UNITS[(suffix or "").lower()])


def _human_size(size: int) -> str:
    for suffix, factor in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= factor:
            return f"{_fmt(round(size / factor, 1))} {suffix}"
    return f"{size} bytes"


def _fmt(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else repr(number)


def _expected(spec: _Spec, env: _Env | None = None) -> str:
    """What the setting accepts, in the units of the given source (``env``) or the field."""
    scale = env.per_unit if env else 1
    unit = (env.unit if env and env.unit else None) or spec.unit
    lo = None if spec.lo is None else spec.lo * scale
    hi = None if spec.hi is None else spec.hi * scale
    if spec.kind in ("float", "int", "size", "optint"):
        noun = {
            "float": "a number",
            "size": "a size",
            "int": "a whole number",
            "optint": "a whole number",
        }[spec.kind]
        if lo is not None and hi is not None:
            bounds = f"from {_fmt(lo)} to {_fmt(hi)}"
        elif lo is not None:
            bounds = f"of at least {_fmt(lo)}"
        else:
            bounds = ""
        text = f"{noun} {bounds}".strip()
        if spec.kind == "size":
            text += " bytes (a plain number, or with a K, M, G or T suffix, e.g. 512M)"
        elif unit:
            text += f" ({unit})"
        if spec.kind == "optint":
            text += ", or 'none' for no limit"
        return text
    if spec.kind == "bool":
        return "one of " + ", ".join(x for pair in zip(_TRUE, _FALSE, strict=True) for x in pair)
    if spec.kind == "choice":
        return "one of: " + ", ".join(spec.choices)
    if spec.kind == "list":
        return "a comma-separated list of tool names (a list of strings in config.toml)"
    if spec.kind == "args":
        return "arguments in shell syntax (a list of strings in config.toml)"
    if spec.kind == "url":
        return "an http:// or https:// URL"
    if spec.kind == "path":
        return "a directory path"
    return "a non-empty string"


def _in_range(spec: _Spec, number: float, scale: int) -> bool:
    # Compare in the source's units so that e.g. 1000 ms is exactly the 1 s bound.
    if not math.isfinite(number):
        return False
    if spec.lo is not None and number < spec.lo * scale:
        return False
    return not (spec.hi is not None and number > spec.hi * scale)


class _Invalid(Exception):
    """Internal: the value does not fit; the caller knows the source and builds the message."""


def _from_text(spec: _Spec, raw: str, scale: int = 1) -> Any:
    """Parse an environment-variable string (or a string in TOML) into the field's type."""
    text = raw.strip()
    kind = spec.kind
    try:
        if kind in ("float", "int", "optint"):
            if kind == "optint" and text.lower() in _NONE_WORDS:
                return None
            number = float(text)
            return _number(spec, number, scale)
        if kind == "size":
            return _number(spec, parse_size(text), scale)
    except ValueError as exc:
        raise _Invalid from exc
    if kind == "bool":
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise _Invalid
    if kind == "choice":
        # Case-insensitive so that LOG_LEVEL=DEBUG or acceptedits work; stored canonical.
        for choice in spec.choices:
            if choice.lower() == text.lower():
                return choice
        raise _Invalid
    if kind == "list":
        return tuple(part.strip() for part in text.split(",") if part.strip())
    if kind == "args":
        try:
            return tuple(shlex.split(raw))
        except ValueError as exc:  # unbalanced quotes
            raise _Invalid from exc
    if kind == "url":
        if not re.match(r"^https?://[^\s/]+", text):
            raise _Invalid
        return text.rstrip("/")
    if not text:
        raise _Invalid
    if kind == "path":
        return Path(text).expanduser().absolute()
    return text


def _number(spec: _Spec, number: float, scale: int = 1) -> float | int:
    if not _in_range(spec, number, scale):
        raise _Invalid
    if spec.kind == "float":
        return number / scale
    if not float(number).is_integer():
        raise _Invalid
    return int(number)


def _from_value(spec: _Spec, value: Any) -> Any:
    """Validate an already-typed value (from TOML, an override or the constructor)."""
    if isinstance(value, str) and spec.kind not in ("str", "path"):
        return _from_text(spec, value)
    kind = spec.kind
    if kind in ("float", "int", "size", "optint"):
        if value is None and kind == "optint":
            return None
        # bool is an int subclass; `cpu_threshold = true` is a mistake, not 1.
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _Invalid
        result = _number(spec, value)
        return float(result) if kind == "float" else result
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise _Invalid
    if kind in ("list", "args"):
        if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
            items = tuple(v.strip() for v in value) if kind == "list" else tuple(value)
            if kind == "list" and not all(items):
                raise _Invalid
            return items
        raise _Invalid
    if kind == "url":
        if value is None:
            return None
        raise _Invalid
    if kind == "path" and isinstance(value, os.PathLike | str):
        return _from_text(spec, os.fspath(value))
    if kind == "str" and isinstance(value, str):
        return _from_text(spec, value)
    raise _Invalid


def _error(label: str, value: object, spec: _Spec, env: _Env | None = None) -> ConfigError:
    return ConfigError(
        f"{label}={value!r} is invalid: expected {_expected(spec, env)}",
        source=label,
        value=value,
    )


def _cross_check(values: Mapping[str, Any], label: Callable[[str], str]) -> None:
    """Rules that involve two settings; ``label`` names where a field's value came from."""
    if values["permission_mode"] == "allowedTools" and not values["allowed_tools"]:
        source = label("permission_mode")
        raise ConfigError(
            f"{source}='allowedTools' requires a non-empty tool list: set "
            "CLAUDINE_ALLOWED_TOOLS (comma-separated, e.g. 'Read,Grep,Bash(git diff:*)') "
            "or allowed_tools in config.toml",
            source=source,
            value="allowedTools",
        )
    base, top = values["retry_base_delay_s"], values["retry_max_delay_s"]
    if top < base:
        source = label("retry_max_delay_s")
        origin = label("retry_base_delay_s")
        origin = "" if origin == "retry_base_delay_s" else f", from {origin}"
        raise ConfigError(
            f"{source}={_fmt(top)} is invalid: expected a number from {_fmt(base)} "
            f"(retry_base_delay_s{origin}) to 86400 (seconds)",
            source=source,
            value=top,
        )


# --------------------------------------------------------------------------------------
# The settings object


@dataclass(frozen=True)
class Config:
    """Validated settings. Build with :func:`load_config`; ``Config()`` is the defaults.

    Constructing one directly (or through :func:`dataclasses.replace`) validates and
    normalises every field, so an invalid Config cannot exist.
    """

    # A lambda, not default_home itself, so the lookup happens per call and can be patched.
    home: Path = field(default_factory=lambda: default_home())
    claude_bin: str = "claude"
    task_timeout_s: float = 1800.0
    max_output_bytes: int = 10485760
    cpu_threshold: float = 80.0
    memory_reserve: int = 1073741824
    max_agents: int | None = None
    log_level: str = "info"
    permission_mode: str = "skip"
    allowed_tools: tuple[str, ...] = ()
    max_retries: int = 2
    retry_base_delay_s: float = 5.0
    retry_max_delay_s: float = 300.0
    recovery_policy: str = "resume"
    kill_grace_s: float = 5.0
    idle_exit_s: float = 60.0
    handoff_on_exit: bool = True
    agent_cpu_cost: float = 5.0
    agent_memory_cost: int = 314572800
    settle_window_s: float = 15.0
    cpu_limit_when_idle: bool = False
    default_worktree: bool = False
    default_merge_strategy: str = "manual"
    github_api_url: str | None = None
    extra_agent_args: tuple[str, ...] = ()
    # Where each field's value came from ("default", a file path, an env var, "override"),
    # for `claudine config`; not part of equality because it does not change behaviour.
    sources: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        for spec in _SPECS:
            raw = getattr(self, spec.name)
            try:
                value = _from_value(spec, raw)
            except _Invalid:
                raise _error(spec.name, raw, spec) from None
            object.__setattr__(self, spec.name, value)
        object.__setattr__(self, "sources", dict(self.sources))
        _cross_check(self.to_dict(), lambda name: name)

    def with_home(self, path: Path | str) -> Config:
        """The same settings with another state directory (tests, several engines)."""
        sources = {**self.sources, "home": "override"}
        return dataclasses.replace(self, home=Path(path), sources=sources)

    @property
    def db_path(self) -> Path:
        return self.home / "claudine.db"

    @property
    def runs_dir(self) -> Path:
        return self.home / "runs"

    @property
    def lock_path(self) -> Path:
        return self.home / "engine.lock"

    def to_dict(self) -> dict[str, Any]:
        """Field values, JSON-ready (paths as strings, tuples as lists), for ``--json``."""
        out: dict[str, Any] = {}
        for spec in _SPECS:
            value = getattr(self, spec.name)
            if isinstance(value, Path):
                value = str(value)
            elif isinstance(value, tuple):
                value = list(value)
            out[spec.name] = value
        return out


def _line_of(text: str, key: str) -> int | None:
    match = re.search(rf"^[ \t]*[\"']?{re.escape(key)}[\"']?[ \t]*=", text, re.MULTILINE)
    return text.count("\n", 0, match.start()) + 1 if match else None


def _read_toml(path: Path, explicit: bool) -> tuple[dict[str, Any], str]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if explicit:
            raise ConfigError(
                f"config file {path} does not exist (named by {CONFIG_ENV} or --config)",
                source=str(path),
            ) from None
        return {}, ""
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc}", source=str(path)) from exc
    import tomllib  # here, not at the top: most runs have no config file (issue 9)

    try:
        # tomllib's message already carries "(at line N, column M)".
        return tomllib.loads(text), text
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}", source=str(path)) from exc


def _where(path: Path, text: str, key: str) -> str:
    line = _line_of(text, key)
    return f"{path}:{line}: {key}" if line else f"{path}: {key}"


def config_file_path(env: Mapping[str, str] | None = None) -> Path:
    """The TOML file settings are read from: ``CLAUDINE_CONFIG``, else the platform's."""
    environ: Mapping[str, str] = os.environ if env is None else env
    named = environ.get(CONFIG_ENV, "").strip()
    return Path(named).expanduser() if named else default_config_path()


def load_config(
    env: Mapping[str, str] | None = None,
    *,
    config_file: Path | None = None,
    override_sources: Mapping[str, str] | None = None,
    **overrides: Any,
) -> Config:
    """Build the settings from defaults, the TOML file, the environment and ``overrides``.

    ``env`` defaults to ``os.environ``. ``config_file`` (or ``CLAUDINE_CONFIG``) names the
    TOML file explicitly, and then it must exist; otherwise the platform config dir's
    ``config.toml`` is read if present. ``overrides`` are field values from CLI flags,
    already typed (strings are parsed as in the environment); ``None`` means "flag not
    given" and is skipped. ``override_sources`` names the flag each override came from
    (``{"home": "--home"}``), recorded in ``Config.sources`` instead of ``"override"``.
    Every source is validated, even one that a later source overrides, so a typo never
    hides. Raises :class:`ConfigError`.
    """
    environ: Mapping[str, str] = os.environ if env is None else env
    values: dict[str, Any] = {}
    sources: dict[str, str] = {spec.name: "default" for spec in _SPECS}
    labels: dict[str, str] = {}  # how to name each field's final source in an error

    explicit = config_file is not None or bool(environ.get(CONFIG_ENV, "").strip())
    if config_file is None:
        config_file = config_file_path(environ)
    data, text = _read_toml(config_file, explicit)
    for key, raw in data.items():
        spec = _BY_NAME.get(key)
        if spec is None:
            import difflib

            close = difflib.get_close_matches(key, _BY_NAME, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(
                f"{_where(config_file, text, key)}: unknown key{hint}; valid keys: "
                + ", ".join(_BY_NAME),
                source=f"{config_file}: {key}",
                value=raw,
            )
        try:
            values[key] = _from_value(spec, raw)
        except _Invalid:
            raise _error(_where(config_file, text, key), raw, spec) from None
        sources[key] = str(config_file)
        labels[key] = f"{key} in {config_file}"

    # The env tuples list original names before CLAUDINE_* ones, so later ones win.
    for spec in _SPECS:
        for var in spec.env:
            raw = environ.get(var.name, "")
            if not raw.strip():  # empty means unset, so `VAR= claudine ...` clears nothing
                continue
            try:
                values[spec.name] = _from_text(spec, raw, var.per_unit)
            except _Invalid:
                raise _error(var.name, raw, spec, var) from None
            sources[spec.name] = labels[spec.name] = var.name

    for name, raw in overrides.items():
        spec = _BY_NAME.get(name)
        if spec is None:
            raise TypeError(f"load_config() got an unexpected keyword argument {name!r}")
        if raw is None:
            continue
        try:
            values[name] = _from_value(spec, raw)
        except _Invalid:
            raise _error(name, raw, spec) from None
        flag = (override_sources or {}).get(name)
        sources[name] = flag or "override"
        labels[name] = flag or f"option {name}"

    # Cross-field rules need the defaults too; `home` has a factory but no rule uses it.
    defaults = {f.name: f.default for f in dataclasses.fields(Config) if f.name != "sources"}
    merged = {**defaults, **values}
    _cross_check(merged, lambda name: labels.get(name, f"{name} (default)"))
    return Config(**values, sources=sources)


def settings_table() -> list[tuple[str, str, str, str]]:
    """One row per setting: (field/TOML key, env vars, default, description with range)."""
    defaults: dict[str, Any] = {f.name: f.default for f in dataclasses.fields(Config)}
    rows = []
    for spec in _SPECS:
        # Units are shown only where the variables disagree (TASK_TIMEOUT ms vs seconds).
        mixed = any(e.unit for e in spec.env)
        env = ", ".join(f"{e.name} ({e.unit or spec.unit})" if mixed else e.name for e in spec.env)
        if spec.default_text is not None:
            default = spec.default_text
        else:
            value = defaults[spec.name]
            if value is None:
                default = "none"
            elif isinstance(value, bool):
                default = str(value).lower()
            elif isinstance(value, tuple):
                default = "(empty)" if not value else " ".join(value)
            elif spec.kind == "size":
                default = f"{value} ({_human_size(value)})"
            elif isinstance(value, float | int):
                default = _fmt(value)
            else:
                default = str(value)
        rows.append((spec.name, env, default, f"{spec.doc} Valid: {_expected(spec)}."))
    return rows


# --------------------------------------------------------------------------------------
# Whose setting is it: task, owner or this process


def setting_scope(name: str) -> Scope:
    """``task``, ``owner`` or ``local`` for a setting name (see :data:`Scope`)."""
    return _BY_NAME[name].scope


def task_setting_names() -> tuple[str, ...]:
    """Settings that travel with a task: copied into its row when it is delegated."""
    return tuple(spec.name for spec in _SPECS if spec.scope == "task")


def owner_setting_names() -> tuple[str, ...]:
    """Settings only the running engine owner's values count for."""
    return tuple(spec.name for spec in _SPECS if spec.scope == "owner")


def owner_settings(config: Config) -> dict[str, Any]:
    """The owner-scope values of ``config``, JSON-ready: what an owner publishes."""
    values = config.to_dict()
    return {name: values[name] for name in owner_setting_names()}


def format_value(name: str, value: Any) -> str:
    """A setting's value as a person would write it (``none``, ``true``, ``512 MiB``)."""
    spec = _BY_NAME.get(name)
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list | tuple):
        if spec is not None and spec.kind == "args":
            return shlex.join(value) if value else "(empty)"
        return ",".join(value) if value else "(empty)"
    if spec is not None and spec.kind == "size" and isinstance(value, int):
        return f"{value} ({_human_size(value)})" if value >= 1024 else str(value)
    if isinstance(value, float | int):
        return _fmt(value)
    return str(value)


def describe_settings(config: Config) -> list[dict[str, Any]]:
    """Every setting's effective value and where it came from, for ``claudine config``.

    One dict per setting: ``name``, ``value`` (JSON-ready), ``source`` (``default``, the
    config file's path, the environment variable's name, or the flag), ``env`` (the
    variables that set it), ``default``, ``scope`` and ``description``.
    """
    values = config.to_dict()
    rows = []
    for spec, (_, _, default, description) in zip(_SPECS, settings_table(), strict=True):
        rows.append({
            "name": spec.name,
            "value": values[spec.name],
            "source": config.sources.get(spec.name, "default"),
            "env": [e.name for e in spec.env],
            "default": default,
            "scope": spec.scope,
            "description": description,
        })
    return rows


@dataclass(frozen=True)
class Mismatch:
    """An owner setting this process sets explicitly to something the owner does not use."""

    name: str
    here: str  # how it is set here: ``CLAUDINE_MAX_AGENTS=2`` or ``max_agents=2 in FILE``
    owner_value: str  # the owner's value, formatted

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
    ours = owner_settings(config)
    found = []
    for name, value in ours.items():
        source = config.sources.get(name, "default")
        if source == "default" or name not in published or _same(value, published[name]):
            continue
        spec = _BY_NAME[name]
        if source in {e.name for e in spec.env} and source in environ:
            here = f"{source}={environ[source].strip()}"
        elif source.startswith("-") or source == "override":
            here = f"{name}={format_value(name, value)} ({source})"
        else:
            here = f"{name}={format_value(name, value)} in {source}"
        found.append(Mismatch(name, here, format_value(name, published[name])))
    return found


def _same(ours: Any, theirs: Any) -> bool:
    # Both sides went through to_dict(); the owner's also through JSON (tuples -> lists).
    if isinstance(ours, list | tuple) and isinstance(theirs, list | tuple):
        return list(ours) == list(theirs)
    if isinstance(ours, bool) or isinstance(theirs, bool):
        return ours is theirs
    return bool(ours == theirs)
