"""Shared pytest fixtures for the whole claudine test suite.

The claude-CLI doubles live in ``tests/fakes/``:

- ``fake_claude_bin``: a stdlib script that speaks the CLI's stream-json, scripted by
  ``[directive]`` tokens in the prompt (fast; use it for most tests).
- ``fake_api`` + ``real_claude_bin`` + ``real_claude_env``: the REAL ``claude`` CLI (installed
  by ``scripts/install-claude-cli.sh``) talking to a fake Messages API on 127.0.0.1, for tests
  marked ``@pytest.mark.real_claude``.

Add further shared fixtures below, one small well-named fixture each.
"""

from __future__ import annotations

import sys
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
