"""``claudine mcp test`` and ``claudine mcp config`` through the installed command."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from mcp_helpers import CLAUDINE


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CLAUDINE, *args], capture_output=True, text=True, env=env,
                          timeout=60)


def test_mcp_test_passes_on_a_good_setup(home_env: tuple[Path, dict[str, str]]) -> None:
    _, env = home_env
    result = run(env, "mcp", "test")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok   claude binary: " in result.stdout
    assert "listed 15 tools" in result.stdout and "All good" in result.stdout


def test_mcp_test_says_what_is_wrong(home_env: tuple[Path, dict[str, str]],
                                     tmp_path: Path) -> None:
    _, env = home_env
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    bad = env | {"CLAUDINE_CLAUDE_BIN": "no-such-claude", "CLAUDINE_HOME": str(locked / "h")}
    result = run(bad, "mcp", "test")
    assert result.returncode == 1
    assert "FAIL claude binary: the agent executable 'no-such-claude' was not found" in (
        result.stdout)
    if os.geteuid() != 0:  # root writes anywhere
        assert "is not writable" in result.stdout


def test_mcp_config_prints_host_snippets(home_env: tuple[Path, dict[str, str]]) -> None:
    home, env = home_env
    result = run(env, "mcp", "config")
    assert result.returncode == 0
    out = result.stdout
    assert f"claude mcp add --scope user -e CLAUDINE_HOME={home} claudine -- " in out
    blocks = [json.loads(block) for block in out.split("\n\n") if block.lstrip().startswith(
        ("{", "#")) and "{" in block for block in [block[block.index("{"):]]]
    assert len(blocks) == 2
    assert blocks[0]["mcpServers"]["claudine"]["args"] == ["--headless"]
    assert blocks[1]["mcpServers"]["claudine"]["env"] == {"CLAUDINE_HOME": str(home)}
