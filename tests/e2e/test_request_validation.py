"""One validation of a task request, seen from the CLI (separate processes) and the core.

Every problem of a request is reported at once, each under the front end's own name for
the field (a flag here), and nothing is stored. The worktree choice is yes, no or the
default setting (CLAUDINE_WORKTREE), from every front end.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from engine_helpers import cli_env
from git_helpers import make_repo

from claudine_core.errors import InvalidRequest
from claudine_core.task_request import describe_problems, read_request, setting_bounds

CLAUDINE = str(Path(sys.executable).with_name("claudine"))


class Cli:
    """The installed command, run as a separate process against one home."""

    def __init__(self, home: Path) -> None:
        self.env = cli_env(home)

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([CLAUDINE, *args], env=self.env, capture_output=True,
                              text=True, timeout=60)

    def json(self, *args: str) -> object:
        result = self(*args, "--json")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path / "home")


def test_every_wrong_flag_is_named_at_once_and_nothing_is_stored(cli: Cli,
                                                                 tmp_path: Path) -> None:
    result = cli("delegate", "x", "--no-serve", "--cwd", str(tmp_path), "--model",
                 "my model", "--timeout", "0", "--merge", "squash", "--max-output", "12",
                 "--permission-mode", "allowedTools", "--priority", "P9")
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    for flag, words in (("--priority", "P0 (urgent)"),
                        ("--timeout", "between 1 and 86400 seconds"),
                        ("--model", "'my model' is not a model name"),
                        ("--max-output", "between 1024 and 1073741824 bytes"),
                        ("--allowed-tools", "needs the list of tools"),
                        ("--merge", "'squash' is not one of manual, auto, patch, pr")):
        assert any(line.startswith(f"claudine: error: {flag}: ") and words in line
                   for line in lines), (flag, lines)
    assert cli.json("status") == []


def test_json_errors_carry_the_problems_by_flag(cli: Cli, tmp_path: Path) -> None:
    result = cli("delegate", "x", "--no-serve", "--json", "--cwd", str(tmp_path / "gone"),
                 "--base", "main")
    assert result.returncode == 2
    error = json.loads(result.stdout)
    assert set(error["problems"]) == {"--cwd", "--base"}
    assert "does not exist" in error["problems"]["--cwd"]
    assert error["problems"]["--base"] == ("only applies to a worktree task: add --worktree "
                                           "or drop it")


def test_the_worktree_choice_is_yes_no_or_the_setting(cli: Cli, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    plain = tmp_path / "plain"
    plain.mkdir()
    cli.env["CLAUDINE_WORKTREE"] = "1"

    def delegate(*flags: str, cwd: Path = repo) -> dict[str, object]:
        result = cli("delegate", "x", "--no-serve", "--json", "--cwd", str(cwd), *flags)
        assert result.returncode == 0, result.stderr
        task: dict[str, object] = json.loads(result.stdout)
        return task

    assert delegate()["worktree"] is True  # the setting decides
    assert delegate("--no-worktree")["worktree"] is False  # an explicit no
    assert delegate("--no-worktree", cwd=plain)["worktree"] is False
    refused = cli("delegate", "x", "--no-serve", "--cwd", str(plain))
    assert refused.returncode == 2
    assert "--worktree: " in refused.stderr and "not inside a git repository" in refused.stderr
    cli.env["CLAUDINE_WORKTREE"] = "0"
    assert delegate()["worktree"] is False
    assert delegate("--worktree", "--base", "main", "--merge", "auto")["worktree"] is True
    both = cli("delegate", "x", "--worktree", "--no-worktree")
    assert both.returncode == 2 and "not allowed with argument" in both.stderr


def test_ranges_come_from_the_settings_table() -> None:
    low, high = setting_bounds("task_timeout_s")
    assert read_request({"prompt": "x", "timeout_s": high}, default_worktree=False)
    with pytest.raises(InvalidRequest) as refused:
        read_request({"prompt": "x", "timeout_s": str(high + 1)}, default_worktree=False)
    assert set(refused.value.problems) == {"timeout_s"}
    assert f"between {low:g} and {high:g} seconds" in refused.value.problems["timeout_s"]


def test_each_front_end_names_the_fields_its_own_way(tmp_path: Path) -> None:
    with pytest.raises(InvalidRequest) as refused:
        read_request({"prompt": " ", "commit_changes": False, "worktree": "no"},
                     default_worktree=True)
    assert list(refused.value.problems) == ["prompt", "commit_changes"]
    named = describe_problems(refused.value, {"commit_changes": "autoCommit"},
                              worktree="useWorktree: true")
    assert named == [("prompt", "the prompt is empty: say what the agent should do"),
                     ("autoCommit", "only applies to a worktree task: add useWorktree: true "
                      "or drop it")]


def test_a_wrong_repository_settings_file_is_refused_at_delegate(cli: Cli,
                                                                tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    (repo / ".claudine.toml").write_text('[worktree]\nmerge = "squash-all"\n')
    result = cli("delegate", "x", "--no-serve", "--worktree", "--cwd", str(repo))
    assert result.returncode == 2
    assert "--worktree: " in result.stderr and ".claudine.toml:2: [worktree] merge" in \
        result.stderr
    assert cli.json("status") == []
    plain = cli("delegate", "x", "--no-serve", "--no-worktree", "--cwd", str(repo))
    assert plain.returncode == 0, plain.stderr  # the file matters to worktree tasks only


def test_dependencies_from_the_command_line(cli: Cli, tmp_path: Path) -> None:
    first = cli.json("delegate", "[sleep:30] first", "--no-serve", "--cwd", str(tmp_path))
    assert isinstance(first, dict)
    second = cli.json("delegate", "second", "--no-serve", "--cwd", str(tmp_path),
                      "--depends-on", str(first["id"])[5:13], "--on-dependency-failure", "cancel")
    assert isinstance(second, dict)
    assert second["status"] == "blocked" and second["depends_on"] == [first["id"]]
    assert second["on_dependency_failure"] == "cancel"
    shown = cli("status", str(second["id"]))
    assert "waiting for " + str(first["id"])[5:13] in shown.stdout
    assert "depends_on:" in shown.stdout
    unknown = cli("delegate", "x", "--no-serve", "--cwd", str(tmp_path), "--depends-on",
                  "task-0123456789ab")
    assert unknown.returncode == 2
    assert "--depends-on: no task with id 'task-0123456789ab'" in unknown.stderr
    policy = cli("delegate", "x", "--no-serve", "--cwd", str(tmp_path), "--depends-on",
                 str(first["id"]), "--on-dependency-failure", "later")
    assert policy.returncode == 2
    assert "--on-dependency-failure: dependency policy 'later' is not one of fail, cancel, " \
        "run" in policy.stderr
    cancelled = cli.json("cancel", str(first["id"]))
    assert isinstance(cancelled, dict) and cancelled["status"] == "cancelled"


def test_unknown_task_references_are_named_with_the_other_wrong_flags(
        cli: Cli, tmp_path: Path) -> None:
    """What only the store can tell (no such task) comes in the same answer as a wrong
    flag value, so one run of the command shows everything to fix."""
    result = cli("delegate", "x", "--no-serve", "--cwd", str(tmp_path), "--timeout", "0",
                 "--depends-on", "task-0123456789ab", "--continue-from", "task-0123456789ac")
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert any(line.startswith("claudine: error: --timeout: ") for line in lines)
    assert any(line.startswith("claudine: error: --depends-on: no task with id "
                               "'task-0123456789ab'") for line in lines)
    assert any("--continue-from: no task with id 'task-0123456789ac'" in line
               for line in lines)
    assert cli.json("status") == []  # nothing stored
