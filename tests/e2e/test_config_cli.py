"""`claudine config`: every effective value, where it came from, and whose setting it is."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from engine_helpers import CLAUDINE, cli_env


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLAUDINE, *args], env=env, capture_output=True, text=True,
                          timeout=60)


def test_config_json_names_each_source(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = cli_env(home, CLAUDINE_MAX_AGENTS="2", TASK_TIMEOUT="60000")
    Path(env["CLAUDINE_CONFIG"]).write_text("max_retries = 4\n")
    other = tmp_path / "other-home"
    result = run(env, "--home", str(other), "config", "--json")
    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert (rows["home"]["value"], rows["home"]["source"], rows["home"]["scope"]) == (
        str(other), "--home", "local")
    assert (rows["max_agents"]["value"], rows["max_agents"]["source"],
            rows["max_agents"]["env"], rows["max_agents"]["scope"]) == (
        2, "CLAUDINE_MAX_AGENTS", ["CLAUDINE_MAX_AGENTS"], "owner")
    assert (rows["task_timeout_s"]["value"], rows["task_timeout_s"]["source"],
            rows["task_timeout_s"]["scope"]) == (60.0, "TASK_TIMEOUT", "task")
    assert (rows["max_retries"]["value"], rows["max_retries"]["source"]) == (
        4, env["CLAUDINE_CONFIG"])
    assert (rows["recovery_policy"]["value"], rows["recovery_policy"]["source"]) == (
        "resume", "default")
    assert rows["cpu_limit_when_idle"]["value"] is False
    assert "make" in rows["cpu_limit_when_idle"]["description"]
    for row in rows.values():
        assert set(row) >= {"name", "value", "source", "env", "description", "scope"}


def test_config_text_shows_value_source_and_scope(tmp_path: Path) -> None:
    env = cli_env(tmp_path / "home", CLAUDINE_MAX_AGENTS="2")
    result = run(env, "config")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"config file: {env['CLAUDINE_CONFIG']}"
    assert "max_agents = 2   [CLAUDINE_MAX_AGENTS, owner]" in lines
    assert "recovery_policy = resume   [default, owner]" in lines
    assert f"home = {tmp_path / 'home'}   [CLAUDINE_HOME, local]" in lines


def test_an_invalid_new_setting_names_variable_value_and_range(tmp_path: Path) -> None:
    env = cli_env(tmp_path / "home", CLAUDINE_CPU_LIMIT_WHEN_IDLE="sometimes")
    result = run(env, "config", "--json")
    assert result.returncode == 2
    message = json.loads(result.stdout)["error"]
    assert message.startswith("CLAUDINE_CPU_LIMIT_WHEN_IDLE='sometimes' is invalid: expected "
                              "one of 1, 0, true, false, yes, no, on, off")
    assert message in result.stderr
