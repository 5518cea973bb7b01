"""SIGTERM to ``claudine --headless``: how MCP hosts stop a server that has not left after
they closed its stdin. It must exit at once with status 0, keep stdout pure protocol, and
leave its running agents for the next owner to adopt (they outlive the engine)."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

from mcp_helpers import CLAUDINE, StdioServer

from claudine_core.ownership import current_owner

PROMPT_EXIT_S = 5.0  # measured: about 0.2 s


def owner_pid(home: Path) -> int | None:
    owner = current_owner(home / "engine.lock")
    # {} while an owner has the lock but has not written its record yet.
    pid = None if owner is None else owner.get("pid")
    return int(pid) if pid else None


def terminate(server: StdioServer) -> tuple[int, float]:
    """SIGTERM, then (exit status, seconds until the process was gone)."""
    signalled = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    code = server.process.wait(timeout=30)
    took = time.monotonic() - signalled
    server.close()  # joins the output readers
    return code, took


def assert_replies_only(server: StdioServer) -> None:
    """stdout held the replies to our requests, in order, and nothing else."""
    server.assert_only_protocol_on_stdout()
    ids = [json.loads(line).get("id") for line in server.stdout_lines]
    assert ids == list(range(1, len(ids) + 1)), ids


def test_sigterm_leaves_the_running_agent_to_the_next_owner(
    home_env: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    home, env = home_env
    first = StdioServer(env, cwd=str(tmp_path))
    second: StdioServer | None = None
    try:
        first.initialize()
        task_id = first.call("DelegateTask", prompt="[sleep:30] a long job")[
            "structuredContent"]["taskId"]
        agent_pid = first.wait_for_status(task_id, {"running"})["task"]["pid"]
        assert owner_pid(home) == first.process.pid

        code, took = terminate(first)
        assert code == 0 and took < PROMPT_EXIT_S, (code, took, first.stderr)
        assert_replies_only(first)
        assert "Traceback" not in first.stderr
        assert owner_pid(home) is None  # the lock went with it

        # Nobody owns the home now, and the task is not lost: still running, same agent.
        shown = subprocess.run([CLAUDINE, "status", task_id, "--json"], env=env,
                               capture_output=True, text=True, timeout=60)
        assert shown.returncode == 0, shown.stderr
        task = json.loads(shown.stdout)
        assert (task["status"], task["pid"], task["ended_at"]) == ("running", agent_pid, None)

        # The next owner adopts the live agent rather than starting it again...
        second = StdioServer(env)
        second.initialize()
        deadline = time.monotonic() + 30
        while f"recovering task {task_id} (pid {agent_pid})" not in second.stderr:
            assert time.monotonic() < deadline, second.stderr
            time.sleep(0.02)
        assert owner_pid(home) == second.process.pid
        status = second.call("TaskStatus", taskId=task_id)["structuredContent"]
        assert (status["status"], status["task"]["pid"], status["task"]["attempt"]) == (
            "running", agent_pid, 1)
        assert len((tmp_path / "agent-runs.jsonl").read_text().splitlines()) == 1  # one start

        # ...and really follows it: it can stop it and record the end.
        assert not second.call("CancelTask", taskId=task_id, reason="test over")["isError"]
        done = second.wait_for_status(task_id, {"cancelled", "completed", "failed"})
        assert done["status"] == "cancelled", done
        assert second.close() == 0
        assert_replies_only(second)
    finally:
        for server in (first, second):
            if server is not None and server.process.poll() is None:
                server.process.kill()
                server.process.wait()


def test_sigterm_while_the_sdk_is_still_loading(home_env: tuple[Path, dict[str, str]]) -> None:
    """Right after the fast handshake answer (the SDK server takes ~1 s more to load)."""
    home, env = home_env
    server = StdioServer(env)
    try:
        assert server.initialize()["result"]["serverInfo"]["name"] == "claudine"
        code, took = terminate(server)
        assert code == 0 and took < PROMPT_EXIT_S, (code, took, server.stderr)
        assert_replies_only(server)
        assert len(server.stdout_lines) == 1
        assert owner_pid(home) is None
    finally:
        if server.process.poll() is None:
            server.process.kill()
            server.process.wait()
