"""The :class:`Config` object and :func:`load_config`: defaults, the TOML file, the environment
and a front end's overrides, in that order, each value validated where it enters."""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs

from claudine_core.config.specs import SPECS, setting_spec
from claudine_core.config.values import (
    ConfigError,
    InvalidValue,
    cross_check,
    invalid_error,
    parse_text,
    parse_value,
)

__all__ = [
    "CONFIG_ENV",
    "Config",
    "config_defaults",
    "config_file_path",
    "default_config_path",
    "default_home",
    "load_config",
]

CONFIG_ENV = "CLAUDINE_CONFIG"
"""Environment variable naming the TOML file; when set, the file must exist."""

_NAMES = tuple(spec.name for spec in SPECS)


def default_home() -> Path:
    """Where claudine keeps its state when ``CLAUDINE_HOME`` is not set."""
    return Path(platformdirs.user_data_dir("claudine"))


def default_config_path() -> Path:
    """Where the TOML file is looked for when ``CLAUDINE_CONFIG`` is not set."""
    return Path(platformdirs.user_config_dir("claudine")) / "config.toml"


@dataclass(frozen=True)
class Config:
    """Validated settings. Build with :func:`load_config`; ``Config()`` is the defaults.

    Constructing one directly (or through :func:`dataclasses.replace`) validates and
    normalises every field, so an invalid Config cannot exist. What each field accepts is
    declared in :mod:`claudine_core.config.specs`.
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
    agent_nice: int = 10
    idle_exit_s: float = 60.0
    handoff_on_exit: bool = True
    agent_cpu_cost: float = 5.0
    agent_memory_cost: int = 314572800
    settle_window_s: float = 15.0
    cpu_limit_when_idle: bool = False
    default_worktree: bool = False
    default_merge_strategy: str = "manual"
    on_dependency_failure: str = "fail"
    github_api_url: str | None = None
    extra_agent_args: tuple[str, ...] = ()
    daily_budget_usd: float | None = None
    monthly_budget_usd: float | None = None
    budget_stop: bool = False
    usage_limit_wait_s: float = 60.0
    fallback_model: str | None = None
    desktop_notifications: bool = True
    on_finish: tuple[str, ...] = ()
    on_finish_timeout_s: float = 30.0
    backend: str = "local"
    ray_address: str | None = None
    ray_namespace: str = "claudine"
    ray_lost_after_s: float = 20.0
    ray_shared_fs: bool = False
    sources: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)
    """Where each field's value came from ("default", a file path, an env var, "override"),
    for `claudine config`; not part of equality because it does not change behaviour."""

    def __post_init__(self) -> None:
        for spec in SPECS:
            raw = getattr(self, spec.name)
            try:
                value = parse_value(spec, raw)
            except InvalidValue:
                raise invalid_error(spec.name, raw, spec) from None
            object.__setattr__(self, spec.name, value)
        object.__setattr__(self, "sources", dict(self.sources))
        cross_check(self.to_dict(), lambda name: name)

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
        for spec in SPECS:
            value = getattr(self, spec.name)
            if isinstance(value, Path):
                value = str(value)
            elif isinstance(value, tuple):
                value = list(value)
            out[spec.name] = value
        return out


def config_defaults() -> dict[str, Any]:
    """Each setting's declared default, except ``home``'s, which is computed per call."""
    computed = ("home", "sources")
    return {f.name: f.default for f in dataclasses.fields(Config) if f.name not in computed}


def config_file_path(env: Mapping[str, str] | None = None) -> Path:
    """The TOML file settings are read from: ``CLAUDINE_CONFIG``, else the platform's."""
    environ: Mapping[str, str] = os.environ if env is None else env
    named = environ.get(CONFIG_ENV, "").strip()
    return Path(named).expanduser() if named else default_config_path()


@dataclass
class _Collected:
    """The values read so far, where each came from, and how to name that in an error."""

    values: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=lambda: dict.fromkeys(_NAMES, "default"))
    labels: dict[str, str] = field(default_factory=dict)

    def set(self, name: str, value: Any, source: str, label: str) -> None:
        self.values[name] = value
        self.sources[name] = source
        self.labels[name] = label


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
    collected = _Collected()
    explicit = config_file is not None or bool(environ.get(CONFIG_ENV, "").strip())
    if config_file is None:
        config_file = config_file_path(environ)
    _read_file(collected, config_file, explicit)
    _read_environment(collected, environ)
    _read_overrides(collected, overrides, override_sources or {})
    # Cross-field rules need the defaults too; `home` has a factory but no rule uses it.
    merged = {**config_defaults(), **collected.values}
    labels = collected.labels
    cross_check(merged, lambda name: labels.get(name, f"{name} (default)"))
    return Config(**collected.values, sources=collected.sources)


def _read_file(collected: _Collected, path: Path, explicit: bool) -> None:
    data, text = _read_toml(path, explicit)
    for key, raw in data.items():
        try:
            spec = setting_spec(key)
        except KeyError:
            raise _unknown_key(path, text, key, raw) from None
        try:
            value = parse_value(spec, raw)
        except InvalidValue:
            raise invalid_error(_where(path, text, key), raw, spec) from None
        collected.set(key, value, str(path), f"{key} in {path}")


def _read_environment(collected: _Collected, environ: Mapping[str, str]) -> None:
    # The env tuples list original names before CLAUDINE_* ones, so later ones win.
    for spec in SPECS:
        for var in spec.env:
            raw = environ.get(var.name, "")
            if not raw.strip():  # empty means unset, so `VAR= claudine ...` clears nothing
                continue
            try:
                value = parse_text(spec, raw, var.per_unit)
            except InvalidValue:
                raise invalid_error(var.name, raw, spec, var) from None
            collected.set(spec.name, value, var.name, var.name)


def _read_overrides(
    collected: _Collected, overrides: Mapping[str, Any], flags: Mapping[str, str]
) -> None:
    for name, raw in overrides.items():
        try:
            spec = setting_spec(name)
        except KeyError:
            raise TypeError(f"load_config() got an unexpected keyword argument {name!r}") from None
        if raw is None:
            continue
        try:
            value = parse_value(spec, raw)
        except InvalidValue:
            raise invalid_error(name, raw, spec) from None
        flag = flags.get(name)
        collected.set(name, value, flag or "override", flag or f"option {name}")


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


def _unknown_key(path: Path, text: str, key: str, raw: object) -> ConfigError:
    import difflib  # only on this error path

    close = difflib.get_close_matches(key, _NAMES, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return ConfigError(
        f"{_where(path, text, key)}: unknown key{hint}; valid keys: " + ", ".join(_NAMES),
        source=f"{path}: {key}",
        value=raw,
    )


def _where(path: Path, text: str, key: str) -> str:
    """``FILE:LINE: key`` for an error about ``key``, or ``FILE: key`` if no line is found."""
    match = re.search(rf"^[ \t]*[\"']?{re.escape(key)}[\"']?[ \t]*=", text, re.MULTILINE)
    if not match:
        return f"{path}: {key}"
    line = text.count("\n", 0, match.start()) + 1
    return f"{path}:{line}: {key}"
