"""Tests for claudine_core.config: defaults, every source, precedence and every error message."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from claudine_core import config as config_mod
from claudine_core.config import (
    Config,
    ConfigError,
    SettingSpec,
    load_config,
    parse_size,
    setting_spec,
    settings_table,
)
from claudine_core.config import loading as config_loading

GiB = 1 << 30
MiB = 1 << 20


@pytest.fixture(autouse=True)
def _no_user_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The developer's real config file and data dir must never leak into a test. Patched
    # where Config and load_config look them up.
    monkeypatch.setattr(config_loading, "default_config_path", lambda: tmp_path / "nope.toml")
    monkeypatch.setattr(config_loading, "default_home", lambda: tmp_path / "home")


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------------------- defaults


def test_defaults(tmp_path: Path) -> None:
    cfg = load_config({})
    assert cfg.home == tmp_path / "home"
    assert cfg.claude_bin == "claude"
    assert cfg.task_timeout_s == 1800
    assert cfg.max_output_bytes == 10485760
    assert cfg.cpu_threshold == 80
    assert cfg.memory_reserve == 1073741824
    assert cfg.max_agents is None
    assert cfg.log_level == "info"
    assert cfg.permission_mode == "skip"
    assert cfg.allowed_tools == ()
    assert cfg.max_retries == 2
    assert cfg.retry_base_delay_s == 5
    assert cfg.retry_max_delay_s == 300
    assert cfg.recovery_policy == "resume"
    assert cfg.kill_grace_s == 5
    assert cfg.idle_exit_s == 60
    assert cfg.agent_cpu_cost == 5
    assert cfg.agent_memory_cost == 300 * MiB
    assert cfg.settle_window_s == 15
    assert cfg.cpu_limit_when_idle is False
    assert cfg.default_worktree is False
    assert cfg.default_merge_strategy == "manual"
    assert cfg.github_api_url is None
    assert cfg.extra_agent_args == ()
    assert set(cfg.sources.values()) == {"default"}
    assert cfg == Config(home=tmp_path / "home")


def test_paths_and_with_home(tmp_path: Path) -> None:
    cfg = load_config({}).with_home(tmp_path / "x")
    assert cfg.home == tmp_path / "x"
    assert cfg.db_path == tmp_path / "x" / "claudine.db"
    assert cfg.runs_dir == tmp_path / "x" / "runs"
    assert cfg.lock_path == tmp_path / "x" / "engine.lock"
    assert cfg.sources["home"] == "override"


def test_frozen_and_hashable() -> None:
    cfg = load_config({})
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.cpu_threshold = 1  # type: ignore[misc]
    assert hash(cfg) == hash(load_config({}))


def test_uses_os_environ_when_env_is_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLAUDINE_MAX_RETRIES", "7")
    assert load_config().max_retries == 7


# ------------------------------------------------------------------------ env parsing


@pytest.mark.parametrize(
    ("var", "raw", "field", "expected"),
    [
        ("CLAUDINE_CLAUDE_BIN", "/opt/claude", "claude_bin", "/opt/claude"),
        ("TASK_TIMEOUT", "600000", "task_timeout_s", 600.0),
        ("TASK_TIMEOUT", "1500", "task_timeout_s", 1.5),
        ("CLAUDINE_TASK_TIMEOUT", "600", "task_timeout_s", 600.0),
        ("MAX_OUTPUT_BUFFER", "2048", "max_output_bytes", 2048),
        ("CLAUDINE_MAX_OUTPUT_BUFFER", "64M", "max_output_bytes", 64 * MiB),
        ("CPU_THRESHOLD", "55.5", "cpu_threshold", 55.5),
        ("CLAUDINE_CPU_THRESHOLD", "100", "cpu_threshold", 100.0),
        ("MEMORY_RESERVE", "0", "memory_reserve", 0),
        ("MEMORY_RESERVE", "512M", "memory_reserve", 512 * MiB),
        ("CLAUDINE_MEMORY_RESERVE", "2G", "memory_reserve", 2 * GiB),
        ("CLAUDINE_MAX_AGENTS", "4", "max_agents", 4),
        ("CLAUDINE_MAX_AGENTS", "none", "max_agents", None),
        ("LOG_LEVEL", "debug", "log_level", "debug"),
        ("CLAUDINE_LOG_LEVEL", "WARN", "log_level", "warn"),
        ("CLAUDINE_PERMISSION_MODE", "acceptedits", "permission_mode", "acceptEdits"),
        ("CLAUDINE_PERMISSION_MODE", "default", "permission_mode", "default"),
        (
            "CLAUDINE_ALLOWED_TOOLS",
            " Read, Grep ,,Bash(git diff:*) ",
            "allowed_tools",
            ("Read", "Grep", "Bash(git diff:*)"),
        ),
        ("CLAUDINE_MAX_RETRIES", "0", "max_retries", 0),
        ("CLAUDINE_RETRY_BASE_DELAY", "0.5", "retry_base_delay_s", 0.5),
        ("CLAUDINE_RETRY_MAX_DELAY", "600", "retry_max_delay_s", 600.0),
        ("CLAUDINE_RECOVERY", "requeue", "recovery_policy", "requeue"),
        ("CLAUDINE_KILL_GRACE", "0", "kill_grace_s", 0.0),
        ("CLAUDINE_IDLE_EXIT", "3600", "idle_exit_s", 3600.0),
        ("CLAUDINE_AGENT_CPU", "12.5", "agent_cpu_cost", 12.5),
        ("CLAUDINE_AGENT_MEMORY", "1G", "agent_memory_cost", GiB),
        ("CLAUDINE_SETTLE_WINDOW", "30", "settle_window_s", 30.0),
        ("CLAUDINE_CPU_LIMIT_WHEN_IDLE", "true", "cpu_limit_when_idle", True),
        ("CLAUDINE_CPU_LIMIT_WHEN_IDLE", "0", "cpu_limit_when_idle", False),
        ("CLAUDINE_WORKTREE", "yes", "default_worktree", True),
        ("CLAUDINE_MERGE_STRATEGY", "pr", "default_merge_strategy", "pr"),
        ("CLAUDINE_ON_DEPENDENCY_FAILURE", "run", "on_dependency_failure", "run"),
        (
            "CLAUDINE_GITHUB_API_URL",
            "https://ghe.example.com/api/v3/",
            "github_api_url",
            "https://ghe.example.com/api/v3",
        ),
        (
            "CLAUDINE_AGENT_ARGS",
            "--model opus --append-system-prompt 'be brief'",
            "extra_agent_args",
            ("--model", "opus", "--append-system-prompt", "be brief"),
        ),
        ("CLAUDINE_DESKTOP_NOTIFICATIONS", "off", "desktop_notifications", False),
        ("CLAUDINE_ON_FINISH", "~/bin/told 'a b' $HOME", "on_finish",
         ("~/bin/told", "a b", "$HOME")),
        ("CLAUDINE_ON_FINISH_TIMEOUT", "2.5", "on_finish_timeout_s", 2.5),
    ],
)
def test_env_var_parsed(var: str, raw: str, field: str, expected: object) -> None:
    cfg = load_config({var: raw})
    assert getattr(cfg, field) == expected
    assert cfg.sources[field] == var


def test_home_from_env(tmp_path: Path) -> None:
    cfg = load_config({"CLAUDINE_HOME": str(tmp_path / "state")})
    assert cfg.home == tmp_path / "state"
    assert cfg.db_path == tmp_path / "state" / "claudine.db"


def test_home_is_expanded_and_absolute(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    assert load_config({"CLAUDINE_HOME": "~/c"}).home == tmp_path / "c"
    monkeypatch.chdir(tmp_path)
    assert load_config({"CLAUDINE_HOME": "rel"}).home == tmp_path / "rel"


@pytest.mark.parametrize("raw", ["1", "true", "TRUE", "yes", "on", "On"])
def test_bool_true(raw: str) -> None:
    assert load_config({"CLAUDINE_WORKTREE": raw}).default_worktree is True


@pytest.mark.parametrize("raw", ["0", "false", "no", "off", "OFF"])
def test_bool_false(raw: str) -> None:
    assert load_config({"CLAUDINE_WORKTREE": raw}).default_worktree is False


@pytest.mark.parametrize("raw", ["", "   "])
def test_empty_env_is_unset(raw: str) -> None:
    env = {var.name: raw for spec in config_mod.setting_specs() for var in spec.env}
    env[config_mod.CONFIG_ENV] = raw
    cfg = load_config(env)
    assert cfg == load_config({})
    assert set(cfg.sources.values()) == {"default"}


# ---------------------------------------------------------------------- TASK_TIMEOUT


def test_task_timeout_ms_to_seconds() -> None:
    assert load_config({"TASK_TIMEOUT": "1800000"}).task_timeout_s == 1800.0
    assert load_config({"TASK_TIMEOUT": "1000"}).task_timeout_s == 1.0
    assert load_config({"TASK_TIMEOUT": "86400000"}).task_timeout_s == 86400.0
    assert load_config({"TASK_TIMEOUT": "30000"}).task_timeout_s == 30.0


@pytest.mark.parametrize("raw", ["999", "86400001", "0", "-5", "abc", "1e12"])
def test_task_timeout_ms_range(raw: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config({"TASK_TIMEOUT": raw})
    msg = str(info.value)
    assert f"TASK_TIMEOUT={raw!r}" in msg
    assert "1000" in msg and "86400000" in msg and "milliseconds" in msg
    assert info.value.source == "TASK_TIMEOUT"


def test_claudine_task_timeout_range_in_seconds() -> None:
    with pytest.raises(ConfigError, match=r"from 1 to 86400 \(seconds\)"):
        load_config({"CLAUDINE_TASK_TIMEOUT": "86401"})


# ------------------------------------------------------------------------------ sizes


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1024", 1024),
        ("0", 0),
        ("512M", 512 * MiB),
        ("512m", 512 * MiB),
        ("512MB", 512 * MiB),
        ("512MiB", 512 * MiB),
        ("2G", 2 * GiB),
        ("1.5G", GiB + GiB // 2),
        ("64k", 64 * 1024),
        ("1T", 1 << 40),
        ("100b", 100),
        (" 8 M ", 8 * MiB),
        ("1_048_576", 1048576),
    ],
)
def test_parse_size(text: str, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "M", "12X", "-1", "1.2.3", "ten", "5 GB GB"])
def test_parse_size_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_size(text)


def test_max_output_buffer_range_applies_after_suffix() -> None:
    assert load_config({"MAX_OUTPUT_BUFFER": "1G"}).max_output_bytes == GiB
    with pytest.raises(ConfigError, match=r"MAX_OUTPUT_BUFFER='2G' is invalid"):
        load_config({"MAX_OUTPUT_BUFFER": "2G"})
    assert load_config({"MAX_OUTPUT_BUFFER": "1K"}).max_output_bytes == 1024
    with pytest.raises(ConfigError, match=r"from 1024 to 1073741824"):
        load_config({"MAX_OUTPUT_BUFFER": "1023"})


# -------------------------------------------------------------------------- invalid values


INVALID = [
    ("TASK_TIMEOUT", "500", ["1000", "86400000"]),
    ("CLAUDINE_TASK_TIMEOUT", "0", ["1", "86400"]),
    ("CLAUDINE_TASK_TIMEOUT", "nan", ["1", "86400"]),
    ("MAX_OUTPUT_BUFFER", "100", ["1024", "1073741824"]),
    ("CLAUDINE_MAX_OUTPUT_BUFFER", "lots", ["1024", "1073741824"]),
    ("CPU_THRESHOLD", "150", ["1", "100", "percent"]),
    ("CPU_THRESHOLD", "0", ["1", "100"]),
    ("CLAUDINE_CPU_THRESHOLD", "eighty", ["1", "100"]),
    ("CPU_THRESHOLD", "inf", ["1", "100"]),
    ("MEMORY_RESERVE", "-1", ["at least 0", "512M"]),
    ("CLAUDINE_MEMORY_RESERVE", "2X", ["at least 0"]),
    ("CLAUDINE_MAX_AGENTS", "0", ["at least 1", "none"]),
    ("CLAUDINE_MAX_AGENTS", "2.5", ["at least 1"]),
    ("LOG_LEVEL", "verbose", ["debug, info, warn, error"]),
    ("CLAUDINE_LOG_LEVEL", "trace", ["debug, info, warn, error"]),
    ("CLAUDINE_PERMISSION_MODE", "yolo", ["skip, acceptEdits, allowedTools, default"]),
    ("CLAUDINE_MAX_RETRIES", "21", ["0", "20"]),
    ("CLAUDINE_MAX_RETRIES", "-1", ["0", "20"]),
    ("CLAUDINE_MAX_RETRIES", "1.5", ["0", "20"]),
    ("CLAUDINE_RETRY_BASE_DELAY", "3601", ["0", "3600"]),
    ("CLAUDINE_RETRY_MAX_DELAY", "-1", ["0", "86400"]),
    ("CLAUDINE_RECOVERY", "retry", ["resume, requeue, fail"]),
    ("CLAUDINE_KILL_GRACE", "301", ["0", "300"]),
    ("CLAUDINE_IDLE_EXIT", "86401", ["0", "86400"]),
    ("CLAUDINE_AGENT_CPU", "101", ["0", "100"]),
    ("CLAUDINE_AGENT_MEMORY", "lots", ["at least 0"]),
    ("CLAUDINE_SETTLE_WINDOW", "601", ["0", "600"]),
    ("CLAUDINE_CPU_LIMIT_WHEN_IDLE", "sometimes", ["true", "false", "yes", "no", "on", "off"]),
    ("CLAUDINE_HANDOFF_ON_EXIT", "later", ["true", "false"]),
    ("CLAUDINE_WORKTREE", "maybe", ["true", "false", "yes", "no", "on", "off"]),
    ("CLAUDINE_MERGE_STRATEGY", "rebase", ["manual, auto, patch, pr"]),
    ("CLAUDINE_ON_DEPENDENCY_FAILURE", "skip", ["fail, cancel, run"]),
    ("CLAUDINE_GITHUB_API_URL", "ghe.example.com", ["http://", "https://"]),
    ("CLAUDINE_AGENT_ARGS", "--append-system-prompt 'unclosed", ["shell syntax"]),
    ("CLAUDINE_DESKTOP_NOTIFICATIONS", "sometimes", ["true", "false"]),
    ("CLAUDINE_ON_FINISH", "notify.sh 'unclosed", ["shell syntax"]),
    ("CLAUDINE_ON_FINISH_TIMEOUT", "0", ["1", "3600", "seconds"]),
    ("CLAUDINE_DAILY_BUDGET_USD", "-1", ["at least 0", "USD", "none"]),
    ("CLAUDINE_MONTHLY_BUDGET_USD", "ten", ["at least 0", "none"]),
    ("CLAUDINE_BUDGET_STOP", "maybe", ["true", "false"]),
    ("CLAUDINE_USAGE_LIMIT_WAIT", "0", ["1", "86400", "seconds"]),
    ("CLAUDINE_AGENT_NICE", "20", ["0", "19"]),
    ("CLAUDINE_BACKEND", "kubernetes", ["one of: local, ray"]),
    ("CLAUDINE_RAY_ADDRESS", "head-node", ["host:port", "127.0.0.1:6379"]),
    ("CLAUDINE_RAY_ADDRESS", "http://head:6379", ["host:port"]),
    ("CLAUDINE_RAY_LOST_AFTER", "0", ["1", "3600", "seconds"]),
    ("CLAUDINE_RAY_SHARED_FS", "nfs", ["true", "false"]),
]


@pytest.mark.parametrize(("var", "raw", "range_parts"), INVALID)
def test_invalid_env_value(var: str, raw: str, range_parts: list[str]) -> None:
    with pytest.raises(ConfigError) as info:
        load_config({var: raw})
    msg = str(info.value)
    assert msg.startswith(f"{var}={raw!r} is invalid: expected ")
    for part in range_parts:
        assert part in msg
    assert info.value.source == var
    assert info.value.value == raw
    assert isinstance(info.value, ValueError)


def test_every_env_var_has_an_invalid_case() -> None:
    covered = {var for var, _, _ in INVALID}
    # These accept any non-empty string, so there is nothing invalid to test for them.
    free_form = {"CLAUDINE_HOME", "CLAUDINE_CLAUDE_BIN", "CLAUDINE_ALLOWED_TOOLS",
                 "CLAUDINE_FALLBACK_MODEL", "CLAUDINE_RAY_NAMESPACE"}
    all_vars = {e.name for spec in config_mod.setting_specs() for e in spec.env}
    assert all_vars - free_form == covered


def test_budgets_read_none_and_numbers_and_the_fallback_model_none() -> None:
    config = load_config({"CLAUDINE_DAILY_BUDGET_USD": "2.5",
                          "CLAUDINE_MONTHLY_BUDGET_USD": "none",
                          "CLAUDINE_FALLBACK_MODEL": "claude-haiku-4-5"})
    assert config.daily_budget_usd == 2.5
    assert config.monthly_budget_usd is None
    assert config.fallback_model == "claude-haiku-4-5"
    assert load_config({"CLAUDINE_FALLBACK_MODEL": "none"}).fallback_model is None
    assert load_config({}).daily_budget_usd is None


def test_the_ray_backend_defaults_and_its_address() -> None:
    defaults = load_config({})
    assert (defaults.backend, defaults.ray_address) == ("local", None)
    assert (defaults.ray_namespace, defaults.ray_lost_after_s) == ("claudine", 20)
    assert defaults.ray_shared_fs is False
    config = load_config({"CLAUDINE_BACKEND": "Ray", "CLAUDINE_RAY_ADDRESS": "[::1]:6379"})
    assert (config.backend, config.ray_address) == ("ray", "[::1]:6379")


def test_the_ray_backend_without_an_address_names_the_setting_to_set(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config({"CLAUDINE_BACKEND": "ray"})
    assert str(info.value).startswith("CLAUDINE_BACKEND='ray' requires ray_address")
    assert "CLAUDINE_RAY_ADDRESS" in str(info.value) and info.value.source == "CLAUDINE_BACKEND"
    path = write(tmp_path, 'backend = "ray"\n')
    with pytest.raises(ConfigError, match=r"backend in .*config.toml='ray' requires ray_address"):
        load_config({}, config_file=path)
    with pytest.raises(ConfigError, match="requires ray_address"):
        Config(backend="ray")


def test_example_message_from_brief() -> None:
    with pytest.raises(ConfigError) as info:
        load_config({"CPU_THRESHOLD": "150"})
    assert str(info.value) == (
        "CPU_THRESHOLD='150' is invalid: expected a number from 1 to 100 (percent)"
    )


def test_overridden_invalid_value_still_fails() -> None:
    # A typo in a lower-precedence source must not be hidden by a higher one.
    with pytest.raises(ConfigError, match="CPU_THRESHOLD='x'"):
        load_config({"CPU_THRESHOLD": "x", "CLAUDINE_CPU_THRESHOLD": "50"})


# --------------------------------------------------------------------- allowedTools


def test_allowed_tools_required_for_allowed_tools_mode() -> None:
    with pytest.raises(ConfigError) as info:
        load_config({"CLAUDINE_PERMISSION_MODE": "allowedTools"})
    msg = str(info.value)
    assert "CLAUDINE_PERMISSION_MODE='allowedTools'" in msg
    assert "CLAUDINE_ALLOWED_TOOLS" in msg


def test_allowed_tools_only_commas_is_empty() -> None:
    with pytest.raises(ConfigError, match="non-empty tool list"):
        load_config({"CLAUDINE_PERMISSION_MODE": "allowedTools", "CLAUDINE_ALLOWED_TOOLS": ",,"})


def test_allowed_tools_mode_with_list() -> None:
    cfg = load_config(
        {"CLAUDINE_PERMISSION_MODE": "allowedtools", "CLAUDINE_ALLOWED_TOOLS": "Read,Edit"}
    )
    assert cfg.permission_mode == "allowedTools"
    assert cfg.allowed_tools == ("Read", "Edit")


def test_allowed_tools_mode_from_toml_names_file(tmp_path: Path) -> None:
    path = write(tmp_path, 'permission_mode = "allowedTools"\n')
    with pytest.raises(ConfigError, match=r"permission_mode in .*config\.toml='allowedTools'"):
        load_config({}, config_file=path)


def test_allowed_tools_mode_in_constructor() -> None:
    with pytest.raises(ConfigError, match="permission_mode='allowedTools'"):
        Config(permission_mode="allowedTools")


def test_retry_max_below_base() -> None:
    with pytest.raises(ConfigError) as info:
        load_config({"CLAUDINE_RETRY_BASE_DELAY": "600"})
    msg = str(info.value)
    assert "retry_max_delay_s (default)=300" in msg
    assert "CLAUDINE_RETRY_BASE_DELAY" in msg and "600" in msg
    ok = load_config({"CLAUDINE_RETRY_BASE_DELAY": "600", "CLAUDINE_RETRY_MAX_DELAY": "900"})
    assert ok.retry_max_delay_s == 900


# ------------------------------------------------------------------------- precedence


def test_precedence(tmp_path: Path) -> None:
    path = write(tmp_path, "cpu_threshold = 70\ntask_timeout_s = 600\nmax_retries = 5\n")
    cfg = load_config({}, config_file=path)
    assert (cfg.cpu_threshold, cfg.task_timeout_s, cfg.max_retries) == (70, 600, 5)
    assert cfg.sources["cpu_threshold"] == str(path)

    env = {"CPU_THRESHOLD": "60", "TASK_TIMEOUT": "120000"}
    cfg = load_config(env, config_file=path)
    assert (cfg.cpu_threshold, cfg.task_timeout_s, cfg.max_retries) == (60, 120, 5)
    assert cfg.sources["cpu_threshold"] == "CPU_THRESHOLD"

    env |= {"CLAUDINE_CPU_THRESHOLD": "50", "CLAUDINE_TASK_TIMEOUT": "90"}
    cfg = load_config(env, config_file=path)
    assert (cfg.cpu_threshold, cfg.task_timeout_s) == (50, 90)
    assert cfg.sources["task_timeout_s"] == "CLAUDINE_TASK_TIMEOUT"

    cfg = load_config(env, config_file=path, cpu_threshold=40, max_retries=None)
    assert cfg.cpu_threshold == 40
    assert cfg.max_retries == 5  # None = flag not given
    assert cfg.sources["cpu_threshold"] == "override"


def test_overrides_are_validated() -> None:
    with pytest.raises(ConfigError) as info:
        load_config({}, max_agents=0)
    assert str(info.value).startswith("max_agents=0 is invalid")
    assert "at least 1" in str(info.value)
    with pytest.raises(ConfigError, match="cpu_threshold=True"):
        load_config({}, cpu_threshold=True)
    with pytest.raises(TypeError, match="no_such"):
        load_config({}, no_such=1)


def test_overrides_typed_and_strings(tmp_path: Path) -> None:
    cfg = load_config(
        {},
        home=tmp_path / "h",
        task_timeout_s=60,
        allowed_tools=["Read"],
        permission_mode="allowedTools",
        memory_reserve="2G",
        default_worktree=True,
        extra_agent_args=("--model", "opus"),
    )
    assert cfg.home == tmp_path / "h"
    assert cfg.task_timeout_s == 60.0 and isinstance(cfg.task_timeout_s, float)
    assert cfg.allowed_tools == ("Read",)
    assert cfg.memory_reserve == 2 * GiB
    assert cfg.default_worktree is True
    assert cfg.extra_agent_args == ("--model", "opus")


def test_override_permission_mode_with_list_from_env() -> None:
    cfg = load_config({"CLAUDINE_ALLOWED_TOOLS": "Read"}, permission_mode="allowedTools")
    assert cfg.allowed_tools == ("Read",)
    with pytest.raises(ConfigError, match="option permission_mode='allowedTools'"):
        load_config({}, permission_mode="allowedTools")


# ---------------------------------------------------------------------------- TOML file


def test_toml_all_kinds(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"""
home = "{tmp_path / "state"}"
claude_bin = "claude-dev"
task_timeout_s = 600
max_output_bytes = "32M"
cpu_threshold = 70.5
memory_reserve = 536870912
max_agents = 8
log_level = "debug"
permission_mode = "allowedTools"
allowed_tools = ["Read", "Bash(git log:*)"]
max_retries = 0
retry_base_delay_s = 1
retry_max_delay_s = 10
recovery_policy = "fail"
kill_grace_s = 2.5
agent_nice = 5
idle_exit_s = 0
agent_cpu_cost = 10
agent_memory_cost = "512M"
settle_window_s = 5
cpu_limit_when_idle = true
handoff_on_exit = false
default_worktree = true
default_merge_strategy = "auto"
on_dependency_failure = "cancel"
github_api_url = "http://localhost:8080"
extra_agent_args = ["--model", "sonnet"]
desktop_notifications = false
on_finish = ["/usr/local/bin/told", "--quiet"]
on_finish_timeout_s = 5
daily_budget_usd = 4
monthly_budget_usd = 50.5
budget_stop = true
usage_limit_wait_s = 90
fallback_model = "claude-haiku-4-5"
backend = "ray"
ray_address = "10.0.0.5:6379"
ray_namespace = "team-a"
ray_lost_after_s = 30
ray_shared_fs = true
""",
    )
    cfg = load_config({}, config_file=path)
    assert cfg.home == tmp_path / "state"
    assert cfg.claude_bin == "claude-dev"
    assert cfg.task_timeout_s == 600
    assert cfg.max_output_bytes == 32 * MiB
    assert cfg.cpu_threshold == 70.5
    assert cfg.memory_reserve == 512 * MiB
    assert cfg.max_agents == 8
    assert cfg.log_level == "debug"
    assert cfg.permission_mode == "allowedTools"
    assert cfg.allowed_tools == ("Read", "Bash(git log:*)")
    assert cfg.max_retries == 0
    assert (cfg.retry_base_delay_s, cfg.retry_max_delay_s) == (1, 10)
    assert cfg.recovery_policy == "fail"
    assert cfg.kill_grace_s == 2.5
    assert cfg.idle_exit_s == 0
    assert cfg.agent_cpu_cost == 10
    assert cfg.agent_memory_cost == 512 * MiB
    assert cfg.settle_window_s == 5
    assert cfg.cpu_limit_when_idle is True
    assert cfg.handoff_on_exit is False
    assert cfg.default_worktree is True
    assert cfg.default_merge_strategy == "auto"
    assert cfg.on_dependency_failure == "cancel"
    assert cfg.github_api_url == "http://localhost:8080"
    assert cfg.extra_agent_args == ("--model", "sonnet")
    assert cfg.desktop_notifications is False
    assert cfg.on_finish == ("/usr/local/bin/told", "--quiet")
    assert cfg.on_finish_timeout_s == 5
    assert (cfg.daily_budget_usd, cfg.monthly_budget_usd) == (4.0, 50.5)
    assert cfg.budget_stop is True and cfg.usage_limit_wait_s == 90
    assert cfg.fallback_model == "claude-haiku-4-5"
    assert (cfg.backend, cfg.ray_address, cfg.ray_namespace) == ("ray", "10.0.0.5:6379",
                                                                 "team-a")
    assert cfg.ray_lost_after_s == 30 and cfg.ray_shared_fs is True
    assert set(cfg.sources.values()) == {str(path)}


def test_toml_strings_for_lists_and_none(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        'allowed_tools = "Read, Grep"\nextra_agent_args = "--model \'x y\'"\nmax_agents = "none"\n',
    )
    cfg = load_config({}, config_file=path)
    assert cfg.allowed_tools == ("Read", "Grep")
    assert cfg.extra_agent_args == ("--model", "x y")
    assert cfg.max_agents is None


def test_toml_from_claudine_config_env(tmp_path: Path) -> None:
    path = write(tmp_path, "max_retries = 9\n")
    assert load_config({"CLAUDINE_CONFIG": str(path)}).max_retries == 9


def test_default_config_path_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "max_retries = 3\n")
    monkeypatch.setattr(config_loading, "default_config_path", lambda: path)
    assert load_config({}).max_retries == 3


def test_missing_default_file_is_fine() -> None:
    assert load_config({}) == load_config({})


def test_missing_explicit_file_is_error(tmp_path: Path) -> None:
    missing = tmp_path / "missing.toml"
    with pytest.raises(ConfigError, match="does not exist"):
        load_config({"CLAUDINE_CONFIG": str(missing)})
    with pytest.raises(ConfigError, match=str(missing)):
        load_config({}, config_file=missing)


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot be read"):
        load_config({}, config_file=tmp_path)  # a directory


def test_malformed_toml_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "max_retries = 3\ncpu_threshold = = 4\n")
    with pytest.raises(ConfigError) as info:
        load_config({}, config_file=path)
    msg = str(info.value)
    assert str(path) in msg and "not valid TOML" in msg and "line 2" in msg


def test_unknown_key_names_file_line_and_suggestion(tmp_path: Path) -> None:
    path = write(tmp_path, "max_retries = 3\n\ncpu_treshold = 70\n")
    with pytest.raises(ConfigError) as info:
        load_config({}, config_file=path)
    msg = str(info.value)
    assert f"{path}:3: cpu_treshold" in msg
    assert "unknown key" in msg and "'cpu_threshold'" in msg


def test_unknown_table_is_unknown_key(tmp_path: Path) -> None:
    path = write(tmp_path, "[engine]\nmax_retries = 3\n")
    with pytest.raises(ConfigError, match="unknown key"):
        load_config({}, config_file=path)


@pytest.mark.parametrize(
    ("line", "value_text", "range_part"),
    [
        ("cpu_threshold = 150", "150", "from 1 to 100"),
        ("cpu_threshold = true", "True", "from 1 to 100"),
        ('cpu_threshold = "high"', "'high'", "from 1 to 100"),
        ("task_timeout_s = 0.5", "0.5", "from 1 to 86400 (seconds)"),
        ("max_retries = 2.5", "2.5", "from 0 to 20"),
        ('log_level = "loud"', "'loud'", "debug, info, warn, error"),
        ("default_worktree = 2", "2", "true, false"),
        ("allowed_tools = [1, 2]", "[1, 2]", "comma-separated"),
        ('allowed_tools = ["Read", ""]', "['Read', '']", "comma-separated"),
        ("max_output_bytes = 10", "10", "from 1024 to 1073741824"),
        ('claude_bin = ""', "''", "non-empty"),
        ("github_api_url = 3", "3", "https://"),
    ],
)
def test_invalid_toml_value(tmp_path: Path, line: str, value_text: str, range_part: str) -> None:
    path = write(tmp_path, f"# claudine\n{line}\n")
    key = line.split(" ")[0]
    with pytest.raises(ConfigError) as info:
        load_config({}, config_file=path)
    msg = str(info.value)
    assert msg.startswith(f"{path}:2: {key}={value_text} is invalid: expected ")
    assert range_part in msg


# --------------------------------------------------------------------- constructor, docs


def test_constructor_validates_and_normalises() -> None:
    cfg = Config(task_timeout_s=60, allowed_tools=["Read"], home="/tmp/x")  # type: ignore[arg-type]
    assert cfg.task_timeout_s == 60.0 and isinstance(cfg.task_timeout_s, float)
    assert cfg.allowed_tools == ("Read",)
    assert cfg.home == Path("/tmp/x")
    with pytest.raises(ConfigError, match="kill_grace_s=-1 is invalid"):
        Config(kill_grace_s=-1)
    with pytest.raises(ConfigError):
        dataclasses.replace(load_config({}), cpu_threshold=0)


def test_to_dict_is_json_ready(tmp_path: Path) -> None:
    import json

    data = load_config({"CLAUDINE_ALLOWED_TOOLS": "Read"}).to_dict()
    assert data["home"] == str(tmp_path / "home")
    assert data["allowed_tools"] == ["Read"]
    json.dumps(data)
    assert "sources" not in data


def test_settings_table_covers_every_field() -> None:
    rows = settings_table()
    names = [row[0] for row in rows]
    fields = [f.name for f in dataclasses.fields(Config) if f.name != "sources"]
    assert names == fields
    for row in rows:
        assert len(row) == 4 and all(isinstance(cell, str) and cell for cell in row[:3])
    table = {row[0]: row for row in rows}
    assert (
        table["task_timeout_s"][1] == "TASK_TIMEOUT (milliseconds), CLAUDINE_TASK_TIMEOUT (seconds)"
    )
    assert table["task_timeout_s"][2] == "1800"
    assert table["cpu_threshold"][1] == "CPU_THRESHOLD, CLAUDINE_CPU_THRESHOLD"
    assert "1 to 100" in table["cpu_threshold"][3]
    assert table["max_output_bytes"][2] == "10485760 (10 MiB)"
    assert table["agent_memory_cost"][2] == "314572800 (300 MiB)"
    assert table["max_agents"][2] == "none"
    assert table["default_worktree"][2] == "false"
    assert "debug, info, warn, error" in table["log_level"][3]


# ------------------------------------------------ the declarations, as other code reads them


def test_setting_spec_gives_a_settings_range_unit_and_scope() -> None:
    timeout = setting_spec("task_timeout_s")
    assert isinstance(timeout, SettingSpec)
    assert (timeout.kind, timeout.minimum, timeout.maximum, timeout.unit, timeout.scope) == (
        "float", 1, 86400, "seconds", "task")
    assert timeout.describe_expected() == "a number from 1 to 86400 (seconds)"
    milliseconds = timeout.env[0]
    assert (milliseconds.name, milliseconds.per_unit) == ("TASK_TIMEOUT", 1000)
    assert timeout.describe_expected(milliseconds) == (
        "a number from 1000 to 86400000 (milliseconds)")
    assert timeout.in_range(86400) and not timeout.in_range(86401)
    assert timeout.in_range(1000, per_unit=1000) and not timeout.in_range(999, per_unit=1000)
    assert not timeout.in_range(float("nan"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        timeout.maximum = 1  # type: ignore[misc]


def test_setting_spec_gives_a_choices_canonical_spelling() -> None:
    mode = setting_spec("permission_mode")
    assert mode.choices == ("skip", "acceptEdits", "allowedTools", "default")
    assert mode.describe_expected() == "one of: skip, acceptEdits, allowedTools, default"
    assert setting_spec("max_agents").describe_expected() == (
        "a whole number of at least 1, or 'none' for no limit")


def test_setting_spec_of_an_unknown_name_is_a_key_error() -> None:
    with pytest.raises(KeyError, match="task_timeout"):
        setting_spec("task_timeout")


@pytest.mark.parametrize("spec", [s for s in config_mod.setting_specs() if s.maximum is not None],
                         ids=lambda s: s.name)
def test_the_declared_range_is_the_one_load_config_enforces(spec: SettingSpec) -> None:
    """Code that reads a range through setting_spec() agrees with what a user is told."""
    assert spec.maximum is not None and spec.minimum is not None
    # The widest retry delays, so the base-below-max rule stays out of the way.
    widest: dict[str, Any] = {"retry_base_delay_s": 0, "retry_max_delay_s": 86400}
    for edge in (spec.minimum, spec.maximum):
        assert getattr(load_config({}, **{**widest, spec.name: edge}), spec.name) == edge
    for outside in (spec.minimum - 1, spec.maximum + 1):
        with pytest.raises(ConfigError) as info:
            load_config({}, **{**widest, spec.name: outside})
        assert str(info.value) == (
            f"{spec.name}={outside!r} is invalid: expected {spec.describe_expected()}")


# ------------------------------------------------------------- sources, shown as a user sees


def test_sources_name_the_file_the_variable_and_the_flag(tmp_path: Path) -> None:
    path = write(tmp_path, "max_retries = 5\n")
    cfg = load_config({"CLAUDINE_MAX_AGENTS": "2", "TASK_TIMEOUT": "60000"}, config_file=path,
                      override_sources={"home": "--home"}, home=tmp_path / "h")
    rows = {row["name"]: row for row in config_mod.describe_settings(cfg)}
    assert rows["max_retries"]["source"] == str(path)
    assert rows["max_agents"]["source"] == "CLAUDINE_MAX_AGENTS"
    assert rows["task_timeout_s"]["source"] == "TASK_TIMEOUT"
    assert rows["task_timeout_s"]["value"] == 60.0
    assert rows["home"]["source"] == "--home"
    assert rows["cpu_threshold"]["source"] == "default"
    assert rows["cpu_threshold"]["env"] == ["CPU_THRESHOLD", "CLAUDINE_CPU_THRESHOLD"]
    assert rows["cpu_threshold"]["scope"] == "owner"
    assert "1 to 100" in rows["cpu_threshold"]["description"]
    assert [row["name"] for row in config_mod.describe_settings(cfg)] == [
        f.name for f in dataclasses.fields(Config) if f.name != "sources"]


# ------------------------------------------------------------------- task and owner scope

TASK_SETTINGS = {"claude_bin", "task_timeout_s", "max_output_bytes", "permission_mode",
                 "allowed_tools", "extra_agent_args", "default_worktree",
                 "on_dependency_failure", "fallback_model"}
LOCAL_SETTINGS = {"home", "log_level"}


def test_every_setting_is_task_owner_or_local() -> None:
    names = {f.name for f in dataclasses.fields(Config) if f.name != "sources"}
    assert set(config_mod.task_setting_names()) == TASK_SETTINGS
    owner = set(config_mod.owner_setting_names())
    assert owner == names - TASK_SETTINGS - LOCAL_SETTINGS
    assert {"cpu_threshold", "memory_reserve", "max_agents", "agent_cpu_cost",
            "agent_memory_cost", "settle_window_s", "cpu_limit_when_idle", "max_retries",
            "recovery_policy", "idle_exit_s", "kill_grace_s"} <= owner
    assert {config_mod.setting_scope(n) for n in LOCAL_SETTINGS} == {"local"}


def test_owner_settings_are_json_ready_owner_values() -> None:
    import json

    cfg = load_config({"CLAUDINE_MAX_AGENTS": "3", "CLAUDINE_CPU_LIMIT_WHEN_IDLE": "yes"})
    published = config_mod.owner_settings(cfg)
    assert set(published) == set(config_mod.owner_setting_names())
    assert published["max_agents"] == 3 and published["cpu_limit_when_idle"] is True
    assert json.loads(json.dumps(published)) == published


def _owner(**env: str) -> dict[str, object]:
    """An owner's published settings, as a client reads them back from the lock record."""
    import json

    return dict(json.loads(json.dumps(config_mod.owner_settings(load_config(env)))))


def test_mismatch_names_the_variable_both_values_and_the_owner() -> None:
    env = {"CLAUDINE_MAX_AGENTS": "2", "MEMORY_RESERVE": "2G"}
    found = config_mod.owner_mismatches(load_config(env), _owner(), env)
    assert [m.name for m in found] == ["memory_reserve", "max_agents"]
    assert found[1].warning(123) == (
        "CLAUDINE_MAX_AGENTS=2 here, but the running owner (pid 123) uses max_agents=none; "
        "owner settings come from the owner — restart it to apply"
    )
    assert found[0].here == "MEMORY_RESERVE=2G"
    assert found[0].owner_value == "1073741824 (1 GiB)"


def test_no_mismatch_for_defaults_equal_values_or_task_settings() -> None:
    # The owner runs with max_agents=4; this process leaves it unset: the default is no claim.
    assert config_mod.owner_mismatches(load_config({}), _owner(CLAUDINE_MAX_AGENTS="4"), {}) == []
    same = {"CLAUDINE_MAX_AGENTS": "4", "CPU_THRESHOLD": "80"}  # 80 is also the default
    assert config_mod.owner_mismatches(load_config(same), _owner(CLAUDINE_MAX_AGENTS="4"),
                                       same) == []
    task_only = {"CLAUDINE_TASK_TIMEOUT": "60", "LOG_LEVEL": "debug"}
    assert config_mod.owner_mismatches(load_config(task_only), _owner(), task_only) == []
    # An owner that published nothing (an older claudine) is never compared.
    assert config_mod.owner_mismatches(load_config(same), None, same) == []


def test_mismatch_from_the_config_file_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "cpu_limit_when_idle = true\n")
    found = config_mod.owner_mismatches(load_config({}, config_file=path), _owner(), {})
    assert [m.warning(7) for m in found] == [
        f"cpu_limit_when_idle=true in {path} here, but the running owner (pid 7) uses "
        "cpu_limit_when_idle=false; owner settings come from the owner — restart it to apply"
    ]


def test_the_readme_settings_table_is_the_declared_one() -> None:
    """README's configuration table is generated from the settings declarations (see
    scripts/settings_table.py); a setting added or changed in one place only fails here."""
    from claudine_core.config import setting_scope, settings_table

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    for name, env, default, description in settings_table():
        row = f"| `{name}` | {env} | {default} | {setting_scope(name)} | {description} |"
        assert row in readme, f"README's row for {name} is out of date: run " \
                              "python scripts/settings_table.py"
