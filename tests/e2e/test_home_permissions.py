"""Everything under the home is private: folders 0700, files 0600, whichever front end made
them (the console, ``claudine serve``, ``claudine --headless``, the CLI's background owner).

Each test runs one task to completion in a home that does not exist yet, looks at the home
while the owner still runs (so SQLite's -wal and -shm files are there) and again after it
has exited.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from engine_helpers import cli_env, poll

from claudine_core.ownership import current_owner

CLAUDINE = str(Path(sys.executable).with_name("claudine"))
ALIVE_FILES = {"claudine.db", "claudine.db-wal", "claudine.db-shm", "engine.lock"}


def fresh_home(tmp_path: Path, **extra: str) -> tuple[Path, dict[str, str]]:
    """A home path that does not exist yet (the front end makes it) and its environment."""
    home = tmp_path / "home"
    env = cli_env(home, **extra)
    home.rmdir()  # cli_env makes it, empty, for its config file's sake
    return home, env


def not_private(home: Path) -> list[str]:
    """Every path under ``home`` (itself included) that is not 0700 (folders) or 0600
    (files), as ``relative/path 0755``."""
    found = []
    paths = [home, *sorted(home.rglob("*"))]
    for path in paths:
        try:
            mode = path.lstat().st_mode
        except FileNotFoundError:
            continue  # a temporary file renamed meanwhile
        wanted = 0o700 if stat.S_ISDIR(mode) else 0o600
        if stat.S_IMODE(mode) != wanted:
            found.append(f"{path.relative_to(home.parent)} {stat.S_IMODE(mode):04o}")
    return found


def names(home: Path) -> set[str]:
    return {p.name for p in home.rglob("*")}


def run(env: dict[str, str], *args: str, cwd: Path | None = None) -> str:
    done = subprocess.run([CLAUDINE, *args], env=env, capture_output=True, text=True,
                          timeout=60, cwd=cwd)
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    return done.stdout.strip()


def check_task_ran_and_home_is_private(home: Path, env: dict[str, str], task_id: str) -> None:
    """The task completed; the home, with its owner still running, is private."""
    run(env, "wait", task_id)
    assert ALIVE_FILES <= names(home), names(home)
    assert {"stdout.jsonl", "stderr.log", "exit.json"} <= names(home / "runs" / task_id)
    assert not_private(home) == []


def test_console_makes_a_private_home(tmp_path: Path) -> None:
    if not shutil.which("tmux"):
        pytest.fail("tmux is needed for the console end-to-end tests (scripts/test.sh installs "
                    "it)")
    home, env = fresh_home(tmp_path)
    session = f"claudine-perm-{uuid.uuid4().hex[:8]}"
    exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items()
                       if k.startswith(("CLAUDINE_", "IS_SANDBOX", "PYTHON")))
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "120", "-y", "36",
                    f"env {exports} {CLAUDINE}"], check=True, cwd=tmp_path)

    def screen() -> str:
        return subprocess.run(["tmux", "capture-pane", "-p", "-t", session],
                              capture_output=True, text=True).stdout

    def ended() -> bool:
        return subprocess.run(["tmux", "has-session", "-t", session],
                              capture_output=True).returncode != 0

    try:
        poll(lambda: "owner · console" in screen(), 30, "the console to own the home")
        task_id = run(env, "delegate", "private console task", "--no-serve", cwd=tmp_path)
        check_task_ran_and_home_is_private(home, env, task_id)
        assert "console.log" in names(home)
        poll(lambda: "completed" in screen(), 30, "the row to say completed")
        subprocess.run(["tmux", "send-keys", "-t", session, "q"], check=True)
        poll(ended, 15, "the console to exit", screen)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
    assert not_private(home) == []


def test_console_narrows_its_default_home_made_by_an_older_version(tmp_path: Path) -> None:
    """The default home (no CLAUDINE_HOME) is claudine's own folder: one an older console
    left 0755 with a 0644 console.log is made private; never widened."""
    if not shutil.which("tmux"):
        pytest.fail("tmux is needed for the console end-to-end tests")
    _, env = fresh_home(tmp_path)
    del env["CLAUDINE_HOME"]
    env["XDG_DATA_HOME"] = str(tmp_path / "data")
    home = tmp_path / "data" / "claudine"
    home.mkdir(parents=True)
    home.chmod(0o755)
    (home / "console.log").write_text("an older console's log\n")
    (home / "console.log").chmod(0o644)
    session = f"claudine-perm-{uuid.uuid4().hex[:8]}"
    exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items()
                       if k.startswith(("CLAUDINE_", "IS_SANDBOX", "PYTHON", "XDG_")))
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "120", "-y", "36",
                    f"env -u CLAUDINE_HOME {exports} {CLAUDINE}"], check=True, cwd=tmp_path)
    try:
        screen = ["tmux", "capture-pane", "-p", "-t", session]
        poll(lambda: "owner · console" in subprocess.run(screen, capture_output=True,
                                                         text=True).stdout,
             30, "the console to own the default home")
        assert current_owner(home / "engine.lock")  # that home, not another
        subprocess.run(["tmux", "send-keys", "-t", session, "q"], check=True)
        poll(lambda: subprocess.run(["tmux", "has-session", "-t", session],
                                    capture_output=True).returncode != 0,
             30, "the console to exit")
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
    assert not_private(home) == []
    assert (home / "console.log").read_text().startswith("an older console's log")


def test_a_home_someone_chose_keeps_its_mode_and_gets_private_files(tmp_path: Path) -> None:
    home, env = fresh_home(tmp_path)
    home.mkdir(mode=0o750)
    home.chmod(0o750)
    run(env, "delegate", "in a chosen home", "--no-serve", cwd=tmp_path)
    assert stat.S_IMODE(home.stat().st_mode) == 0o750  # the user's choice, left alone
    assert [line for line in not_private(home) if line != "home 0750"] == []


def test_serve_makes_a_private_home(tmp_path: Path) -> None:
    home, env = fresh_home(tmp_path)
    serve = subprocess.Popen([CLAUDINE, "serve"], env=env, stderr=subprocess.DEVNULL)
    try:
        task_id = run(env, "delegate", "private serve task", "--no-serve", cwd=tmp_path)
        poll(lambda: owner_pid(home), 30, "serve to own the home")
        check_task_ran_and_home_is_private(home, env, task_id)
    finally:
        serve.send_signal(signal.SIGTERM)
        assert serve.wait(timeout=30) == 0
    assert not_private(home) == []


def test_detached_serve_makes_a_private_home(tmp_path: Path) -> None:
    home, env = fresh_home(tmp_path, CLAUDINE_IDLE_EXIT="600")
    assert "started in the background" in run(env, "serve", "--detach")
    pid = poll(lambda: owner_pid(home), 30, "the detached owner")
    try:
        task_id = run(env, "delegate", "private detached task", cwd=tmp_path)
        check_task_ran_and_home_is_private(home, env, task_id)
        assert "serve.log" in names(home)
    finally:
        stop_owner(home, pid)
    assert not_private(home) == []


def test_headless_mcp_server_makes_a_private_home(tmp_path: Path) -> None:
    home, env = fresh_home(tmp_path)
    server = subprocess.Popen([CLAUDINE, "--headless"], env=env, cwd=tmp_path,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL)
    assert server.stdin is not None and server.stdout is not None
    try:
        for message in (
            {"jsonrpc": "2.0", "id": 1, "method": "initialize",
             "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                        "clientInfo": {"name": "t", "version": "1"}}},
            {"jsonrpc": "2.0", "method": "notifications/initialized"},
            {"jsonrpc": "2.0", "id": 2, "method": "tools/call",
             "params": {"name": "DelegateTask", "arguments": {"prompt": "private mcp task"}}},
        ):
            server.stdin.write(json.dumps(message).encode() + b"\n")
        server.stdin.flush()
        replies = [json.loads(server.stdout.readline()) for _ in range(2)]
        task_id = replies[1]["result"]["structuredContent"]["taskId"]
        check_task_ran_and_home_is_private(home, env, task_id)
    finally:
        server.stdin.close()  # how MCP hosts stop a stdio server
        assert server.wait(timeout=30) == 0
    assert not_private(home) == []


def test_cli_background_owner_makes_a_private_home(tmp_path: Path) -> None:
    # A long idle exit keeps the owner (and SQLite's -wal/-shm) there until it is looked at.
    home, env = fresh_home(tmp_path, CLAUDINE_IDLE_EXIT="600")
    task_id = run(env, "delegate", "private cli task", cwd=tmp_path)
    pid = poll(lambda: owner_pid(home), 30, "the background owner")
    try:
        check_task_ran_and_home_is_private(home, env, task_id)
        assert "serve.log" in names(home)
    finally:
        stop_owner(home, pid)
    assert not_private(home) == []


def owner_pid(home: Path) -> int | None:
    return (current_owner(home / "engine.lock") or {}).get("pid")


def stop_owner(home: Path, pid: object) -> None:
    assert isinstance(pid, int)
    os.kill(pid, signal.SIGTERM)
    poll(lambda: current_owner(home / "engine.lock") is None, 30, "the owner to exit")
