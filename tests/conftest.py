"""Shared pytest fixtures for the whole claudine test suite.

The claude-CLI doubles live in ``tests/fakes/``:

- ``fake_claude_bin``: a stdlib script that speaks the CLI's stream-json, scripted by
  ``[directive]`` tokens in the prompt (fast; use it for most tests).
- ``fake_api`` + ``real_claude_bin`` + ``real_claude_env``: the REAL ``claude`` CLI (installed
  by ``scripts/install-claude-cli.sh``) talking to a fake Messages API on 127.0.0.1, for tests
  marked ``@pytest.mark.real_claude``.

Add further shared fixtures below, one small well-named fixture each.

The session ends with none of its processes left: every process the suite starts inherits
a marker in its environment, and the run fails if any marked process outlives it (see
``pytest_sessionfinish`` below).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
import tempfile
import time
import types
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

TESTS_DIR = Path(__file__).resolve().parent
REPO_ROOT = TESTS_DIR.parent
FAKES_DIR = TESTS_DIR / "fakes"
REAL_CLAUDE_BIN = REPO_ROOT / ".claude-cli" / "node_modules" / ".bin" / "claude"

# tests/ has no __init__.py files; make `from fakes.fake_anthropic import FakeAnthropic` work
# from any test module.
if str(TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(TESTS_DIR))

from fakes.fake_anthropic import FakeAnthropic  # noqa: E402


@pytest.fixture
def fake_claude_bin() -> Path:
    """Path to the executable fake ``claude`` script."""
    return FAKES_DIR / "fake_claude.py"


@pytest.fixture
def fake_api() -> Iterator[FakeAnthropic]:
    """A running fake Anthropic Messages API (``.url``, ``.requests``), stopped afterwards."""
    with FakeAnthropic() as api:
        yield api


@pytest.fixture
def real_claude_bin() -> Path:
    """Path to the pinned real ``claude`` CLI. Fails (never skips) when it is not installed:
    a silently skipped real-CLI test would hide that the adapter is untested."""
    if not REAL_CLAUDE_BIN.exists():
        pytest.fail(
            f"real claude CLI not found at {REAL_CLAUDE_BIN}; run scripts/install-claude-cli.sh",
            pytrace=False,
        )
    return REAL_CLAUDE_BIN


@pytest.fixture
def real_claude_env(fake_api: FakeAnthropic, tmp_path: Path) -> dict[str, str]:
    """Extra environment for running the real CLI offline against ``fake_api``.

    Merge it into ``os.environ`` (the CLI needs PATH/HOME). ``CLAUDE_CODE_MAX_RETRIES=0`` makes
    API errors fail at once (verified: no ``api_retry`` lines, exit 1 in ~0.5 s).
    """
    config_dir = tmp_path / "claude-config"
    config_dir.mkdir(exist_ok=True)
    return {
        "ANTHROPIC_BASE_URL": fake_api.url,
        "ANTHROPIC_API_KEY": "dummy",
        "CLAUDE_CONFIG_DIR": str(config_dir),  # keeps the user's ~/.claude untouched
        "DISABLE_AUTOUPDATER": "1",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_TELEMETRY": "1",
        "DISABLE_ERROR_REPORTING": "1",
        "IS_SANDBOX": "1",  # lets --dangerously-skip-permissions run as root (containers/CI)
        "CLAUDE_CODE_MAX_RETRIES": "0",
    }


@pytest.fixture
def real_claude_subscription_env(real_claude_env: dict[str, str]) -> dict[str, str]:
    """``real_claude_env`` as a subscription (Claude Pro/Max) user runs the CLI: an OAuth
    token instead of an API key. Only then does the CLI read the API's
    ``anthropic-ratelimit-unified-*`` headers (usage limits, ``rate_limit_event`` lines); the
    token is never checked by ``fake_api``. When merging it into ``os.environ``, drop any
    ``ANTHROPIC_API_KEY`` found there: the CLI prefers a key to the token.
    """
    env = {k: v for k, v in real_claude_env.items() if k != "ANTHROPIC_API_KEY"}
    env["CLAUDE_CODE_OAUTH_TOKEN"] = "sk-ant-oat01-dummy"
    return env


# -- no process outlives the session ----------------------------------------------------------
#
# The marker is a variable of its own (not CLAUDINE_*: tests strip those from the
# environments they build), named after this session so that a nested pytest adds its
# own without hiding ours. Detached owners (``serve --auto``) idle-exit after
# CLAUDINE_IDLE_EXIT=2 s, so survivors get a short grace before they count as leaked.

LEAK_MARKER = f"PYTEST_CLAUDINE_RUN_{uuid.uuid4().hex}"
LEAK_GRACE_S = float(os.environ.get("PYTEST_LEAK_GRACE_S", "15"))  # its own test shortens it
_first_seen: dict[tuple[int, str], str] = {}  # (pid, start time) -> test it appeared in
_leaks: list[str] = []
_tmux_dir: list[str] = []


def pytest_sessionstart(session: pytest.Session) -> None:
    os.environ[LEAK_MARKER] = "1"
    # tmux keeps one server per socket: give the suite a server of its own, so a test's
    # console never lands in (or is killed along with) a server the user or another run
    # owns, and ours exits with its last session.
    _tmux_dir.append(tempfile.mkdtemp(prefix="claudine-tests-tmux-"))
    os.environ["TMUX_TMPDIR"] = _tmux_dir[0]
    os.environ.pop("TMUX", None)


def _start_time(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return fields[19].decode()  # field 22, counted after "pid (comm)"


def marked_processes() -> dict[tuple[int, str], str]:
    """The live processes started by this session: (pid, start time) -> command line."""
    from system_helpers import processes_with_env  # tests/ is on sys.path from here on

    found: dict[tuple[int, str], str] = {}
    for pid, command in processes_with_env(f"{LEAK_MARKER}=1").items():
        started = _start_time(pid)
        if started is not None:
            found[(pid, started)] = command
    return found


def pytest_runtest_logfinish(nodeid: str) -> None:
    # Which test a process appeared in, to name the leaker (scanned after its teardown).
    for key in marked_processes():
        _first_seen.setdefault(key, nodeid)


@pytest.hookimpl(trylast=True)  # after the session fixtures' teardown
def pytest_sessionfinish(session: pytest.Session) -> None:
    """Fail the run if any process it started is still there after a grace period (for
    detached owners' idle exit), naming the test it appeared in; kill what is left."""
    interrupted = session.exitstatus == pytest.ExitCode.INTERRUPTED  # no waiting on ^C
    deadline = time.monotonic() + (0 if interrupted else LEAK_GRACE_S)
    while (alive := marked_processes()) and time.monotonic() < deadline:
        time.sleep(0.1)
    for (pid, started), command in sorted(alive.items()):
        test = _first_seen.get((pid, started), "the session's end")
        _leaks.append(f"pid {pid} from {test}: {command}")
        if _start_time(pid) == started:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    if _leaks and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    if _leaks and session.config.pluginmanager.get_plugin("terminalreporter") is None:
        print("processes left running by the tests (killed):\n  " + "\n  ".join(_leaks),
              file=sys.stderr)
    for folder in _tmux_dir:
        shutil.rmtree(folder, ignore_errors=True)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _leaks:
        return
    terminalreporter.section(f"{len(_leaks)} processes left running by the tests (killed)",
                             red=True, bold=True)
    for line in _leaks:
        terminalreporter.line(line)
    # "N leaked" in the closing line; other plugins read these entries' attributes.
    terminalreporter.stats.setdefault("leaked", []).extend(
        types.SimpleNamespace(nodeid="", leak=line) for line in _leaks)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The ray tier runs last: its session-wide cluster (a head and two workers, a dozen
    processes) then shares the machine with no other test, instead of living beside the
    rest of the suite from the first ray test on."""
    items.sort(key=lambda item: item.get_closest_marker("ray") is not None)
