"""Settings for the engine and every front end, from defaults, a TOML file and the environment.

Precedence, lowest first: built-in defaults, the TOML file (``CLAUDINE_CONFIG`` or
``<user config dir>/config.toml``), the original claudine's environment variables
(``TASK_TIMEOUT`` in ms, ``MAX_OUTPUT_BUFFER``, ``CPU_THRESHOLD``, ``MEMORY_RESERVE``,
``LOG_LEVEL``), ``CLAUDINE_*`` environment variables, and finally overrides passed by a
front end (CLI flags). Every value is validated where it enters: a bad value is a
:class:`ConfigError` naming where it came from, what it was and what is allowed, never a
silent fallback to the default.

The settings are declared once, in :mod:`.specs`; parsing, validation, error messages and
:func:`settings_table` (docs and ``claudine config``) are all driven from that table so
they cannot drift apart, and :func:`setting_spec` hands one declaration (range, choices,
unit) to code that must agree with it. Each setting also has a *scope* (task, owner or
local, see :data:`Scope`), so front ends know which values a client's environment can
change.

Import everything from this package; its modules split the work by job and import each
other only downwards:

- :mod:`.specs`: the declarations (:class:`SettingSpec`) and lookups by name or scope;
- :mod:`.values`: parsing and checking one value, :class:`ConfigError`, :func:`format_value`;
- :mod:`.loading`: :class:`Config` and :func:`load_config` (file, environment, overrides);
- :mod:`.describe`: the README table and ``claudine config``'s rows;
- :mod:`.owner`: what an engine owner publishes and a client's :class:`Mismatch` with it.
"""

from __future__ import annotations

from claudine_core.config.describe import describe_settings, settings_table
from claudine_core.config.loading import (
    CONFIG_ENV,
    Config,
    config_file_path,
    default_config_path,
    default_home,
    load_config,
)
from claudine_core.config.owner import Mismatch, owner_mismatches, owner_settings
from claudine_core.config.specs import (
    EnvVar,
    Kind,
    Scope,
    SettingSpec,
    owner_setting_names,
    setting_scope,
    setting_spec,
    setting_specs,
    task_setting_names,
)
from claudine_core.config.values import ConfigError, format_value, parse_size

__all__ = [
    "CONFIG_ENV",
    "Config",
    "ConfigError",
    "EnvVar",
    "Kind",
    "Mismatch",
    "Scope",
    "SettingSpec",
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
    "setting_spec",
    "setting_specs",
    "settings_table",
    "task_setting_names",
]
