"""The settings as people read them: the README table and ``claudine config``'s rows."""

from __future__ import annotations

from typing import Any

from claudine_core.config.loading import Config, config_defaults
from claudine_core.config.specs import SPECS, SettingSpec, format_number
from claudine_core.config.values import human_size

__all__ = ["describe_settings", "settings_table"]


def settings_table() -> list[tuple[str, str, str, str]]:
    """One row per setting: (field/TOML key, env vars, default, description with range)."""
    defaults = config_defaults()
    rows = []
    for spec in SPECS:
        default = spec.default_text
        if default is None:
            default = _default_text(spec, defaults[spec.name])
        description = f"{spec.doc} Valid: {spec.describe_expected()}."
        rows.append((spec.name, _env_text(spec), default, description))
    return rows


def _env_text(spec: SettingSpec) -> str:
    # Units are shown only where the variables disagree (TASK_TIMEOUT ms vs seconds).
    mixed = any(e.unit for e in spec.env)
    return ", ".join(f"{e.name} ({e.unit or spec.unit})" if mixed else e.name for e in spec.env)


def _default_text(spec: SettingSpec, value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, tuple):
        return "(empty)" if not value else " ".join(value)
    if spec.kind == "size":
        return f"{value} ({human_size(value)})"
    if isinstance(value, float | int):
        return format_number(value)
    return str(value)


def describe_settings(config: Config) -> list[dict[str, Any]]:
    """Every setting's effective value and where it came from, for ``claudine config``.

    One dict per setting: ``name``, ``value`` (JSON-ready), ``source`` (``default``, the
    config file's path, the environment variable's name, or the flag), ``env`` (the
    variables that set it), ``default``, ``scope`` and ``description``.
    """
    values = config.to_dict()
    rows = []
    for spec, (_, _, default, description) in zip(SPECS, settings_table(), strict=True):
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
