"""The suite's own check that no test leaves a process running (tests/conftest.py), run on
a small pytest session of its own: a leaked process fails the run, is named with the test
that started it, and is killed; one that ends within the grace period is no leak."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

TESTS_DIR = Path(__file__).resolve().parent

LEAKY_TESTS = '''
import subprocess


def test_leaves_a_process_behind():
    subprocess.Popen(["sleep", "300"], start_new_session=True)


def test_starts_a_process_that_ends_soon():
    subprocess.Popen(["sleep", "1"], start_new_session=True)  # like an owner's idle exit
'''


def run_session(tmp_path: Path, source: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_inner.py").write_text(source)
    env = {**os.environ, "PYTHONPATH": str(TESTS_DIR), "PYTEST_LEAK_GRACE_S": "3"}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "conftest",
         "--rootdir", str(tmp_path), "test_inner.py"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)


def test_a_leaked_process_fails_the_run_and_is_killed(tmp_path: Path) -> None:
    result = run_session(tmp_path, LEAKY_TESTS)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "2 passed, 1 leaked" in result.stdout, result.stdout
    leaks = re.findall(r"pid (\d+) from (\S+): (.*)", result.stdout)
    assert [(test, command) for _, test, command in leaks] == [
        ("test_inner.py::test_leaves_a_process_behind", "sleep 300")], result.stdout
    pid = int(leaks[0][0])
    assert not Path(f"/proc/{pid}/cmdline").exists() or not Path(
        f"/proc/{pid}/cmdline").read_bytes(), "the leaked process still runs"


def test_a_session_that_leaves_nothing_passes(tmp_path: Path) -> None:
    result = run_session(tmp_path, "def test_nothing():\n    pass\n")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "leaked" not in result.stdout
