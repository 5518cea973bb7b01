"""Reading one setting's value: from text (environment, TOML strings) or an already typed value.

Every value is checked against its :class:`~claudine_core.config.specs.SettingSpec` where it
enters. A value that does not fit raises :class:`InvalidValue`; the caller knows where the
value came from and turns it into a :class:`ConfigError` with :func:`invalid_error`, so the
message names the variable, key or option the user wrote.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from claudine_core.config.specs import (
    BOOL_WORDS,
    SPECS,
    EnvVar,
    SettingSpec,
    format_number,
    setting_spec,
)
from claudine_core.errors import EXIT_USAGE, ClaudineError

__all__ = [
    "ConfigError",
    "InvalidValue",
    "cross_check",
    "format_value",
    "human_size",
    "invalid_error",
    "parse_size",
    "parse_text",
    "parse_value",
]


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


class InvalidValue(Exception):
    """The value does not fit its setting; the caller knows the source and builds the message."""


_TRUE = tuple(true for true, _ in BOOL_WORDS)
_FALSE = tuple(false for _, false in BOOL_WORDS)
_NONE_WORDS = ("none", "unlimited")
_KIND_BY_NAME = {spec.name: spec.kind for spec in SPECS}

# Binary multiples, because the original's documented sizes are binary (1GB = 1073741824).
_SIZE_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
# host:port (a name, an IPv4 address or a bracketed IPv6 one), as Ray's GCS address.
_ADDRESS_RE = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):\d{1,5}$")
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


def human_size(size: int) -> str:
    """``1 GiB``, ``300 MiB``, ``1.5 KiB`` or ``512 bytes``: a size as a person reads it."""
    for suffix, factor in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= factor:
            return f"{format_number(round(size / factor, 1))} {suffix}"
    return f"{size} bytes"


def parse_text(spec: SettingSpec, raw: str, per_unit: int = 1) -> Any:
    """Parse an environment-variable string (or a string in TOML) into the field's type.

    ``per_unit`` is the source's :attr:`EnvVar.per_unit` (1000 for milliseconds).
    Raises :class:`InvalidValue`.
    """
    text = raw.strip()
    kind = spec.kind
    if kind in ("float", "int", "optint", "optfloat", "size"):
        return _parse_number(spec, text, per_unit)
    if kind == "bool":
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise InvalidValue
    if kind == "choice":
        # Case-insensitive so that LOG_LEVEL=DEBUG or acceptedits work; stored canonical.
        for choice in spec.choices:
            if choice.lower() == text.lower():
                return choice
        raise InvalidValue
    if kind == "list":
        return tuple(part.strip() for part in text.split(",") if part.strip())
    if kind == "args":
        try:
            return tuple(shlex.split(raw))
        except ValueError as exc:  # unbalanced quotes
            raise InvalidValue from exc
    if kind == "url":
        if not re.match(r"^https?://[^\s/]+", text):
            raise InvalidValue
        return text.rstrip("/")
    if kind == "address":
        if text.lower() in _NONE_WORDS:
            return None
        if not _ADDRESS_RE.match(text):
            raise InvalidValue
        return text
    if not text:
        raise InvalidValue
    if kind == "path":
        return Path(text).expanduser().absolute()
    if spec.name in OPTIONAL_STRINGS and text.lower() in _NONE_WORDS:
        return None
    return text


def _parse_number(spec: SettingSpec, text: str, per_unit: int) -> float | int | None:
    if spec.kind in ("optint", "optfloat") and text.lower() in _NONE_WORDS:
        return None
    try:
        number = parse_size(text) if spec.kind == "size" else float(text)
    except ValueError as exc:
        raise InvalidValue from exc
    return _checked_number(spec, number, per_unit)


def _checked_number(spec: SettingSpec, number: float, per_unit: int = 1) -> float | int:
    if not spec.in_range(number, per_unit):
        raise InvalidValue
    if spec.kind in ("float", "optfloat"):
        return number / per_unit
    if not float(number).is_integer():
        raise InvalidValue
    return int(number)


def parse_value(spec: SettingSpec, value: Any) -> Any:
    """Validate an already-typed value (from TOML, an override or the constructor).

    Strings are parsed as in the environment. Raises :class:`InvalidValue`.
    """
    if isinstance(value, str) and spec.kind not in ("str", "path"):
        return parse_text(spec, value)
    kind = spec.kind
    if kind in ("float", "int", "size", "optint", "optfloat"):
        if value is None and kind in ("optint", "optfloat"):
            return None
        # bool is an int subclass; `cpu_threshold = true` is a mistake, not 1.
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidValue
        result = _checked_number(spec, value)
        return float(result) if kind in ("float", "optfloat") else result
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise InvalidValue
    if kind in ("list", "args"):
        return _parse_strings(kind, value)
    if kind in ("url", "address"):
        if value is None:
            return None
        raise InvalidValue
    if kind == "path" and isinstance(value, os.PathLike | str):
        return parse_text(spec, os.fspath(value))
    if kind == "str" and isinstance(value, str):
        return parse_text(spec, value)
    if kind == "str" and value is None and spec.name in OPTIONAL_STRINGS:
        return None
    raise InvalidValue


OPTIONAL_STRINGS = frozenset({"fallback_model"})
"""String settings whose default is None (not set)."""


def _parse_strings(kind: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        items = tuple(v.strip() for v in value) if kind == "list" else tuple(value)
        if kind == "list" and not all(items):
            raise InvalidValue
        return items
    raise InvalidValue


def invalid_error(
    label: str, value: object, spec: SettingSpec, env: EnvVar | None = None
) -> ConfigError:
    """The error for ``value`` of ``spec`` given as ``label`` (a variable, key or option)."""
    return ConfigError(
        f"{label}={value!r} is invalid: expected {spec.describe_expected(env)}",
        source=label,
        value=value,
    )


def cross_check(values: Mapping[str, Any], label: Callable[[str], str]) -> None:
    """Rules that involve two settings; ``label`` names where a field's value came from.

    Raises:
        ConfigError: ``allowedTools`` without tools, a retry delay range upside down, or
            the ray backend without ``ray_address``.
    """
    if values["permission_mode"] == "allowedTools" and not values["allowed_tools"]:
        source = label("permission_mode")
        raise ConfigError(
            f"{source}='allowedTools' requires a non-empty tool list: set "
            "CLAUDINE_ALLOWED_TOOLS (comma-separated, e.g. 'Read,Grep,Bash(git diff:*)') "
            "or allowed_tools in config.toml",
            source=source,
            value="allowedTools",
        )
    if values["backend"] == "ray" and not values["ray_address"]:
        source = label("backend")
        raise ConfigError(
            f"{source}='ray' requires ray_address, the cluster's head as host:port (what "
            "`ray start --head` prints, e.g. 10.0.0.5:6379): set CLAUDINE_RAY_ADDRESS or "
            "ray_address in config.toml",
            source=source,
            value="ray",
        )
    base, top = values["retry_base_delay_s"], values["retry_max_delay_s"]
    if top < base:
        source = label("retry_max_delay_s")
        origin = label("retry_base_delay_s")
        origin = "" if origin == "retry_base_delay_s" else f", from {origin}"
        top_spec = setting_spec("retry_max_delay_s")
        highest = format_number(top_spec.maximum) if top_spec.maximum is not None else "any"
        raise ConfigError(
            f"{source}={format_number(top)} is invalid: expected a number from "
            f"{format_number(base)} (retry_base_delay_s{origin}) to {highest} "
            f"({top_spec.unit})",
            source=source,
            value=top,
        )


def format_value(name: str, value: Any) -> str:
    """A setting's value as a person would write it (``none``, ``true``, ``512 MiB``)."""
    kind = _KIND_BY_NAME.get(name)
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list | tuple):
        if kind == "args":
            return shlex.join(value) if value else "(empty)"
        return ",".join(value) if value else "(empty)"
    if kind == "size" and isinstance(value, int):
        return f"{value} ({human_size(value)})" if value >= 1024 else str(value)
    if isinstance(value, float | int):
        return format_number(value)
    return str(value)
