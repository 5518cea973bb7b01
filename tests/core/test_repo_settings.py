"""``.claudine.toml`` is read with the rigour of config.toml: a wrong key is an error naming it.

Unit tests of :func:`load_settings` on files in tmp dirs, then the real path: a worktree
task delegated against a real git repository with a wrong file fails with that message
before any worktree or agent exists, and a review action refuses to guess the settings.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from engine_helpers import wait_for_merge, wait_for_state
from git_helpers import git, make_repo

from claudine_core.engine import Engine
from claudine_core.errors import EXIT_USAGE, ClaudineError, InvalidRequest
from claudine_core.isolation.github import PullRequestError
from claudine_core.isolation.settings import load_settings_for
from claudine_core.isolation.worktrees import (
    RepoSettings,
    RepoSettingsError,
    WorktreeError,
    load_settings,
)
from claudine_core.models import TERMINAL_STATES, MergeStrategy, TaskSpec, TaskState

VALID_KEYS = "valid keys: copy, setup, setup_timeout, commit, remote, github_repo"


def write_settings(root: Path, text: str) -> Path:
    path = root / ".claudine.toml"
    path.write_text(text)
    return path


def settings_error(root: Path, text: str) -> RepoSettingsError:
    """The error load_settings raises for a ``.claudine.toml`` holding ``text``."""
    write_settings(root, text)
    with pytest.raises(RepoSettingsError) as caught:
        load_settings(root)
    return caught.value


# -- each key's type and value ---------------------------------------------------------------

@pytest.mark.parametrize(("line", "allowed"), [
    ('commit = "false"', "expected true or false (a TOML boolean, without quotes)"),
    ("commit = 0", "expected true or false"),
    ("setup = 3", 'expected a shell command as a string, e.g. "npm ci"'),
    ('setup = ["npm", "ci"]', "expected a shell command as a string"),
    ('setup_timeout = "600"', "expected a number from 1 to 86400 (seconds)"),
    ("setup_timeout = 0", "expected a number from 1 to 86400 (seconds)"),
    ("setup_timeout = 90000", "expected a number from 1 to 86400 (seconds)"),
    ("setup_timeout = true", "expected a number from 1 to 86400 (seconds)"),
    ("setup_timeout = nan", "expected a number from 1 to 86400 (seconds)"),
    ("copy = [1]", "expected a list of paths relative to the repository root"),
    ("copy = {env = true}", "expected a list of paths relative to the repository root"),
    ('copy = [""]', "an entry is empty; expected a list of paths"),
    ('copy = ["../outside.env"]', '"../outside.env" is outside the repository; expected'),
    ('copy = "/etc/passwd"', '"/etc/passwd" is outside the repository; expected'),
    ('remote = ""', 'expected the name of a git remote as a string, e.g. "origin"'),
    ('remote = "--force"', "expected the name of a git remote as a string"),
    ('remote = "my origin"', "expected the name of a git remote as a string"),
    ('github_repo = "just-a-name"', 'expected a GitHub repository as "owner/name"'),
    ("github_repo = 42", 'expected a GitHub repository as "owner/name"'),
])
def test_a_wrong_value_names_file_line_key_and_what_is_allowed(
        tmp_path: Path, line: str, allowed: str) -> None:
    path = tmp_path / ".claudine.toml"
    key = line.split(" = ")[0]
    error = settings_error(tmp_path, f"# per-repository settings\n[worktree]\n{line}\n")
    # As written in the file: the user finds the line by reading the message.
    assert str(error).startswith(f"{path}:3: [worktree] {line} is invalid: ")
    assert allowed in str(error)
    assert error.key == f"worktree.{key}" and error.path == path


def test_the_error_is_a_usage_error_every_front_end_catches(tmp_path: Path) -> None:
    error = settings_error(tmp_path, '[worktree]\ncommit = "false"\n')
    assert isinstance(error, WorktreeError) and isinstance(error, ClaudineError)
    assert isinstance(error, RuntimeError)  # older `except RuntimeError` lists still work
    assert error.exit_status == EXIT_USAGE


def test_isolation_errors_share_the_claudine_error_base() -> None:
    for error in (WorktreeError("no repository"), PullRequestError("no token")):
        assert isinstance(error, ClaudineError) and isinstance(error, RuntimeError)
        assert error.message == str(error) and error.exit_status == 1


# -- unknown keys and tables, like config.toml ------------------------------------------------

def test_an_unknown_key_is_an_error_listing_the_valid_ones(tmp_path: Path) -> None:
    error = settings_error(tmp_path, '[worktree]\ncommit = true\nmerge = "squash-all"\n')
    assert str(error) == (f"{tmp_path / '.claudine.toml'}:3: [worktree] merge: unknown key; "
                          f"{VALID_KEYS}")
    assert error.key == "worktree.merge"


def test_a_misspelt_key_gets_a_suggestion(tmp_path: Path) -> None:
    error = settings_error(tmp_path, "[worktree]\ncommmit = false\n")
    assert "[worktree] commmit: unknown key (did you mean 'commit'?)" in str(error)


@pytest.mark.parametrize(("text", "line", "name"), [
    ("[worktrees]\ncommit = false\n", 1, "worktrees"),
    ('[worktree]\ncommit = true\n\n[tool.other]\nx = 1\n', 4, "tool"),
    ("commit = false\n", 1, "commit"),
])
def test_an_unknown_table_or_top_level_key_is_an_error(
        tmp_path: Path, text: str, line: int, name: str) -> None:
    error = settings_error(tmp_path, text)
    assert str(error).startswith(f"{tmp_path / '.claudine.toml'}:{line}: {name}: unknown "
                                 f"table or key {name!r}; the file has one table, [worktree]")


def test_a_nested_table_under_worktree_is_an_unknown_key(tmp_path: Path) -> None:
    error = settings_error(tmp_path, "[worktree]\ncommit = true\n[worktree.extra]\nrun = 1\n")
    assert f":3: [worktree] extra: unknown key; {VALID_KEYS}" in str(error)


def test_worktree_must_be_a_table(tmp_path: Path) -> None:
    error = settings_error(tmp_path, 'worktree = "yes"\n')
    assert str(error) == (f"{tmp_path / '.claudine.toml'}:1: worktree: must be a table "
                          '([worktree]), not "yes"')


def test_a_file_that_is_not_toml_names_the_file_and_position(tmp_path: Path) -> None:
    error = settings_error(tmp_path, "[worktree]\ncommit = \n")
    assert str(error).startswith(f"{tmp_path / '.claudine.toml'}: not valid TOML: ")
    assert "line 2" in str(error) and error.key == ""


# -- what still works --------------------------------------------------------------------------

def test_a_valid_file_gives_every_setting(tmp_path: Path) -> None:
    write_settings(tmp_path, '[worktree]\ncopy = [".env", "config/local.json"]\n'
                             'setup = "npm ci"\nsetup_timeout = 90\ncommit = false\n'
                             'remote = "upstream"\ngithub_repo = "octo/demo.js"\n')
    assert load_settings(tmp_path) == RepoSettings(
        copy=(".env", "config/local.json"), setup="npm ci", setup_timeout_s=90.0,
        commit=False, remote="upstream", github_repo="octo/demo.js")


@pytest.mark.parametrize(("text", "expected"), [
    (None, RepoSettings()),
    ("", RepoSettings()),
    ("[worktree]\n", RepoSettings()),
    ('[worktree]\ncopy = ".env"\n', RepoSettings(copy=(".env",))),  # one path, bare
    ('[worktree]\nsetup = "  "\n', RepoSettings(setup=None)),  # blank: no setup command
    ("[worktree]\nsetup_timeout = 2.5\n", RepoSettings(setup_timeout_s=2.5)),
    ('[worktree]\ncopy = ["sub/../.env"]\n', RepoSettings(copy=("sub/../.env",))),
])
def test_missing_empty_and_lenient_forms_read_as_before(
        tmp_path: Path, text: str | None, expected: RepoSettings) -> None:
    if text is not None:
        write_settings(tmp_path, text)
    assert load_settings(tmp_path) == expected


def test_a_delegating_process_finds_the_file_of_the_repository_it_is_in(
        tmp_path: Path) -> None:
    """What a delegate-time check reads: the repository root's file, from any subfolder."""
    repo = make_repo(tmp_path / "repo")
    inner = repo / "pkg" / "inner"
    inner.mkdir(parents=True)
    write_settings(repo, "[worktree]\ncommit = false\n")
    assert load_settings_for(inner) == RepoSettings(commit=False)
    write_settings(repo, "[worktree]\ncommit = 1\n")
    with pytest.raises(RepoSettingsError, match=r"\.claudine\.toml:2: \[worktree\] commit = 1"):
        load_settings_for(inner)
    outside = tmp_path / "plain"
    outside.mkdir()
    write_settings(outside, "[worktree]\ncommit = 1\n")  # not a repository: not read
    assert load_settings_for(outside) == RepoSettings()


# -- the real path: engine, git, fake agent --------------------------------------------------

@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A real repository, by its resolved path: the one messages name."""
    return make_repo(tmp_path / "repo").resolve()


def test_a_wrong_file_refuses_the_worktree_task_when_it_is_delegated(
        engine: Engine, repo: Path) -> None:
    write_settings(repo, '[worktree]\nsetup = "echo ran > ran.txt"\ncommit = "false"\n')
    spec = TaskSpec(prompt="[write:x.txt=1] change something", cwd=str(repo), worktree=True)
    with pytest.raises(InvalidRequest) as refused:
        engine.service.delegate(spec)
    assert set(refused.value.problems) == {"worktree"}
    message = refused.value.problems["worktree"]
    assert f"{repo / '.claudine.toml'}:3: [worktree] commit = \"false\"" in message
    assert "expected true or false" in message
    assert engine.service.list_tasks() == []
    plain = TaskSpec(prompt="x", cwd=str(repo), worktree=False)  # no worktree: not read
    assert engine.service.delegate(plain).worktree is False


async def test_a_file_broken_after_delegation_fails_the_task_before_any_worktree_or_agent(
        engine: Engine, repo: Path, tmp_path: Path) -> None:
    # The file is edited between delegation (when it was right) and the start: stored
    # without the delegate-time check, as a task queued before the edit would be.
    write_settings(repo, '[worktree]\nsetup = "echo ran > ran.txt"\ncommit = "false"\n')
    spec = TaskSpec(prompt="[write:x.txt=1] change something", cwd=str(repo), worktree=True)
    queued = engine.service.repo.insert(spec, cwd=str(repo))
    engine.wake()
    done = await wait_for_state(engine, queued.id, TERMINAL_STATES)
    assert done.status is TaskState.FAILED
    assert done.error is not None
    assert f"{repo / '.claudine.toml'}:3: [worktree] commit = \"false\"" in done.error
    assert "expected true or false" in done.error
    # Refused before anything was made: no worktree, no branch, no setup, no agent.
    assert done.worktree_path is None and done.pid is None
    assert git(repo, "branch", "--list", "claudine/*") == ""
    assert not (tmp_path / "home" / "worktrees").exists()
    assert not (repo / "ran.txt").exists()
    assert not list((tmp_path / "home" / "runs").glob(f"{done.id}/*/stdout.jsonl"))


async def test_a_review_action_refuses_a_wrong_file_instead_of_guessing(
        engine: Engine, repo: Path) -> None:
    spec = TaskSpec(prompt="[write:made.txt=x] make a file", cwd=str(repo), worktree=True,
                    merge_strategy=MergeStrategy.MANUAL)
    done = await wait_for_merge(engine, engine.service.delegate(spec).id)
    assert done.status is TaskState.COMPLETED and (done.merge or {})["status"] == "kept"
    write_settings(repo, '[worktree]\nremote = 7\n')  # edited after the task ran
    with pytest.raises(RepoSettingsError, match=r"\[worktree\] remote = 7 is invalid"):
        engine.service.worktrees().merge(done)
    # Nothing was merged or removed: the branch waits for a fixed file.
    assert git(repo, "rev-list", "--count", "main") == "1"
    assert git(repo, "show", f"{done.branch}:made.txt") == "x"
