"""One output convention for scripts, through real `claudine` processes.

A command that acts on a task prints its bare id (``--json``: the whole task), a usage
error exits 2 whichever command it is given to, and what a reader needs to know is said:
an empty table says why it is empty, ``logs`` points at a non-empty stderr, worktree
messages name the flag. ``status --tmux`` is one short line for tmux's status-right.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

from engine_helpers import cli_env
from git_helpers import git, make_repo

CLAUDINE = str(Path(sys.executable).with_name("claudine"))
REPO = Path(__file__).resolve().parents[2]

# What a status line run every few seconds must not load (as tests/e2e/test_cli_imports.py).
HEAVY = ("textual", "mcp", "git", "rich", "psutil", "asyncio", "claudine_core.engine",
         "claudine_core.serve", "claudine_core.supervisor", "claudine_core.notify",
         "claudine_tui.app")
PROBE = """
import io, json, sys
from contextlib import redirect_stdout
from claudine_tui.cli.main import main
with redirect_stdout(io.StringIO()) as out:
    status = main(["status", "--tmux"])
print(json.dumps({"status": status, "out": out.getvalue(),
                  "loaded": sorted(m for m in json.loads(sys.argv[1]) if m in sys.modules)}))
"""
BARE_ID = re.compile(r"task-[0-9a-f]{12}\n")


def run(env: dict[str, str], *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CLAUDINE, *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


def ok(env: dict[str, str], *args: str) -> str:
    result = run(env, *args)
    assert result.returncode == 0, (args, result.stdout, result.stderr)
    return result.stdout


def test_task_commands_print_a_bare_id_or_the_whole_task(tmp_path: Path) -> None:
    env = cli_env(tmp_path / "home")
    first = ok(env, "delegate", "say hi", "--cwd", str(tmp_path))
    assert BARE_ID.fullmatch(first)
    first_id = first.strip()
    assert run(env, "wait", first_id, "--timeout", "60").returncode == 0

    retried = ok(env, "retry", first_id)
    resumed = ok(env, "resume", first_id, "one more thing")
    for printed in (retried, resumed):
        assert BARE_ID.fullmatch(printed), printed  # the new task's id, nothing else
        assert printed.strip() != first_id
    assert run(env, "wait", retried.strip(), resumed.strip(), "--timeout", "60").returncode == 0

    hanging = ok(env, "delegate", "[hang] busy", "--cwd", str(tmp_path)).strip()
    blocked = ok(env, "delegate", "later", "--cwd", str(tmp_path), "--depends-on", hanging)
    assert BARE_ID.fullmatch(blocked)
    # A task waiting for another: priority, then cancel; the same bare id each time.
    assert ok(env, "priority", blocked.strip(), "P0") == blocked
    assert ok(env, "cancel", blocked.strip()) == blocked
    # With --json: the whole task, from each command.
    other = json.loads(ok(env, "delegate", "also later", "--depends-on", hanging, "--json"))
    reprioritized = json.loads(ok(env, "priority", other["id"], "P1", "--json"))
    assert reprioritized["id"] == other["id"] and reprioritized["priority"] == "P1"
    cancelled = json.loads(ok(env, "cancel", other["id"], "--json"))
    assert cancelled["id"] == other["id"] and cancelled["status"] == "cancelled"
    again = json.loads(ok(env, "retry", first_id, "--json"))
    assert again["prompt"] == "say hi" and again["id"] != first_id
    assert ok(env, "cancel", hanging) == hanging + "\n"  # running: a stop is requested
    assert run(env, "wait", hanging, again["id"], "--timeout", "60").returncode == 1


def test_a_person_at_a_terminal_also_gets_a_sentence_on_stderr(tmp_path: Path) -> None:
    import os
    import pty

    env = cli_env(tmp_path / "home")
    task_id = ok(env, "delegate", "x", "--no-serve").strip()
    leader, follower = pty.openpty()
    try:
        result = subprocess.run([CLAUDINE, "cancel", task_id], env=env,
                                stdout=subprocess.PIPE, stderr=follower, text=True, timeout=60)
        os.set_blocking(leader, False)  # nothing written must fail the test, not hang it
        try:
            said = os.read(leader, 4096).decode()
        except BlockingIOError:
            said = ""
    finally:
        os.close(leader)
        os.close(follower)
    assert result.returncode == 0
    assert result.stdout == task_id + "\n"  # stdout stays the bare id
    assert "(cancelled)" in said


def test_usage_errors_exit_2_from_every_command(tmp_path: Path) -> None:
    env = cli_env(tmp_path / "home")
    task_id = ok(env, "delegate", "x", "--no-serve").strip()

    delegated = run(env, "delegate", "x", "--priority", "P5", "--no-serve")
    reprioritized = run(env, "priority", task_id, "P5")
    for result, name in ((delegated, "--priority"), (reprioritized, "PRIORITY")):
        assert result.returncode == 2, result.stderr
        assert f"{name}: invalid priority 'P5': use P0" in result.stderr
        assert result.stdout == ""
    status = json.loads(ok(env, "status", task_id, "--json"))
    assert status["priority"] == "P2"  # nothing changed

    for args, named in ((["status", "--limit", "0"], "--limit"),
                        (["status", "--limit", "-3"], "--limit"),
                        (["wait", task_id, "--timeout", "-1"], "--timeout"),
                        (["logs", task_id, "--attempt", "0"], "--attempt"),
                        (["serve", "--idle-exit", "-1"], "--idle-exit"),
                        (["status", "--tmux", "--json"], "--tmux"),
                        (["worktrees", "merge", task_id, "--stat"], "--stat"),
                        (["worktrees", "merge", task_id, "--force"], "--force")):
        result = run(env, *args)
        assert result.returncode == 2, (args, result.stderr)
        assert named in result.stderr, (args, result.stderr)


def test_an_empty_table_says_why(tmp_path: Path) -> None:
    env = cli_env(tmp_path / "home")
    assert ok(env, "status").startswith("no tasks yet")
    for n in range(3):
        ok(env, "delegate", f"task {n}", "--no-serve")
    assert ok(env, "status", "--status", "completed") == "no completed tasks (3 tasks stored)\n"
    table = ok(env, "status", "--limit", "1").splitlines()
    assert table[0].startswith("ID") and "task 2" in table[1] and len(table) == 3  # + waiting


def test_logs_point_to_a_non_empty_stderr(tmp_path: Path) -> None:
    env = cli_env(tmp_path / "home", CLAUDINE_MAX_RETRIES="0")
    task_id = ok(env, "delegate", "[exit-now] stop", "--cwd", str(tmp_path)).strip()
    assert run(env, "wait", task_id, "--timeout", "60").returncode == 1
    logs = run(env, "logs", task_id)
    assert logs.returncode == 0
    assert f"claudine logs {task_id[5:13]} --stderr" in logs.stderr
    # Nothing of the agent's on stdout: only the task's verdict, under its (empty) log.
    assert "to stderr" in logs.stderr
    assert logs.stdout.startswith("✘ failed: agent exited with code 2") \
        and logs.stdout.count("\n") == 1
    assert "exiting immediately" in ok(env, "logs", task_id, "--stderr")
    # A task whose stderr is empty gets no such line.
    quiet = ok(env, "delegate", "fine", "--cwd", str(tmp_path)).strip()
    assert run(env, "wait", quiet, "--timeout", "60").returncode == 0
    assert "--stderr" not in run(env, "logs", quiet).stderr


def test_status_tmux_counts_running_queued_and_failed(tmp_path: Path) -> None:
    env = cli_env(tmp_path / "home", CLAUDINE_MAX_AGENTS="1", CLAUDINE_MAX_RETRIES="0")
    assert ok(env, "status", "--tmux") == "\n"  # nothing to say: a quiet status line
    failed = ok(env, "delegate", "[fail] break", "--cwd", str(tmp_path)).strip()
    assert run(env, "wait", failed, "--timeout", "60").returncode == 1
    assert ok(env, "status", "--tmux") == "✘1\n"
    running = ok(env, "delegate", "[hang] busy", "--cwd", str(tmp_path)).strip()
    _wait_running(env, running)
    for n in range(2):
        ok(env, "delegate", f"queued {n}", "--cwd", str(tmp_path))
    blocked = ok(env, "delegate", "after", "--depends-on", running).strip()
    try:
        assert ok(env, "status", "--tmux") == "●1 ◌2 ⏸1 ✘1\n"
    finally:
        for task_id in (blocked, running):
            run(env, "cancel", task_id)
        for line in ok(env, "status", "--json", "--status", "queued").strip() and json.loads(
                ok(env, "status", "--json", "--status", "queued")):
            run(env, "cancel", line["id"])
        run(env, "wait", running, "--timeout", "60")


def test_status_tmux_loads_no_engine(tmp_path: Path) -> None:
    env = cli_env(tmp_path / "home")
    ok(env, "delegate", "waits", "--no-serve")
    env["PYTHONPATH"] = str(REPO)
    done = subprocess.run([sys.executable, "-c", PROBE, json.dumps(HEAVY)], env=env,
                          capture_output=True, text=True, timeout=60, cwd=REPO)
    assert done.returncode == 0, done.stderr
    probe = json.loads(done.stdout.splitlines()[-1])
    assert probe["status"] == 0 and probe["out"] == "◌1\n"
    assert probe["loaded"] == []


def _wait_running(env: dict[str, str], task_id: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if json.loads(ok(env, "status", task_id, "--json"))["status"] == "running":
            return
        time.sleep(0.1)
    raise AssertionError(f"{task_id} never started")


def test_worktree_messages_say_what_happened_and_name_the_flag(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    env = cli_env(tmp_path / "home")
    kept = ok(env, "delegate", "[write:a.txt=one] first", "--cwd", str(repo), "--worktree").strip()
    dirty = ok(env, "delegate", "[write:b.txt=two] second", "--cwd", str(repo), "--worktree",
               "--no-commit").strip()
    assert run(env, "wait", kept, dirty, "--timeout", "60").returncode == 0
    _wait_merge_recorded(env, kept, dirty)

    merged = run(env, "worktrees", "merge", kept)
    assert merged.returncode == 0, merged.stderr
    assert "merged (manual)" in merged.stdout  # by hand, not by the task's strategy
    assert "merged (manual)" in ok(env, "worktrees")
    assert git(repo, "show", "main:a.txt") == "one"

    refused = run(env, "worktrees", "discard", dirty)
    assert refused.returncode == 1
    assert "add --force to discard it anyway" in refused.stderr
    assert "use force" not in refused.stderr
    assert run(env, "worktrees", "discard", dirty, "--force").returncode == 0


def _wait_merge_recorded(env: dict[str, str], *task_ids: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        merges = [json.loads(ok(env, "status", t, "--json"))["merge"] for t in task_ids]
        if all(m and m.get("status") != "pending" for m in merges):
            return
        time.sleep(0.1)
    raise AssertionError("the merge steps never recorded an outcome")
