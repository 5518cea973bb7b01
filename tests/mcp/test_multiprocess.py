"""Several headless servers (one per Claude Code session) and a console-like owner on one
home: exactly one owner, every task run exactly once, take-over when the owner leaves."""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import pytest
from mcp_helpers import CLAUDINE, StdioServer

from claudine_core.ownership import current_owner

pytestmark = pytest.mark.slow


def owner_pid(home: Path) -> int | None:
    owner = current_owner(home / "engine.lock")
    # {} while an owner has the lock but has not written its record yet.
    pid = None if owner is None else owner.get("pid")
    return int(pid) if pid else None


def test_two_servers_one_owner_each_task_once(
    home_env: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    home, env = home_env
    servers = [StdioServer(env), StdioServer(env)]
    try:
        for server in servers:
            server.initialize()
            server.request("tools/list")
        ids: list[str] = []
        for round_ in range(3):
            for n, server in enumerate(servers):
                result = server.call("DelegateTask", prompt=f"[text:job {n}-{round_}] go")
                assert not result["isError"], result
                ids.append(result["structuredContent"]["taskId"])
        for task_id in ids:
            status = servers[0].wait_for_status(task_id, {"completed", "failed"})
            assert status["status"] == "completed", status
        pids = {server.process.pid for server in servers}
        owner = owner_pid(home)
        assert owner in pids
        roles = [re.findall(r"headless server is the (owner|client)", s.stderr)
                 for s in servers]
        assert sorted(r[0] for r in roles) == ["client", "owner"], roles

        # Each task ran exactly once: one agent start per task, one attempt folder each.
        runs = [json.loads(line) for line in (tmp_path / "agent-runs.jsonl").read_text()
                .splitlines()]
        assert len(runs) == len(ids)
        for task_id in ids:
            assert [p.name for p in (home / "runs" / task_id).iterdir()] == ["attempt-1"]
        for task_id in ids:
            assert servers[1].call("TaskStatus", taskId=task_id)["structuredContent"][
                "task"]["attempt"] == 1

        # The owner leaves; the client takes over and runs new work.
        leaving = next(s for s in servers if s.process.pid == owner)
        staying = next(s for s in servers if s is not leaving)
        assert leaving.close() == 0
        task_id = staying.call("DelegateTask", prompt="after take-over")["structuredContent"][
            "taskId"]
        assert staying.wait_for_status(task_id, {"completed", "failed"})["status"] == (
            "completed")
        assert owner_pid(home) == staying.process.pid
    finally:
        for server in servers:
            server.close()
        for server in servers:
            server.assert_only_protocol_on_stdout()


def test_servers_are_clients_of_a_running_owner(
    home_env: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    """A console-like owner (``claudine serve``) first: both headless servers are clients
    and the owner runs their tasks, each once."""
    home, env = home_env
    owner = subprocess.Popen([CLAUDINE, "serve"], env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    servers: list[StdioServer] = []
    try:
        deadline = time.monotonic() + 30
        while owner_pid(home) != owner.pid:  # a condition, polled: serve takes the lock
            assert time.monotonic() < deadline and owner.poll() is None
            time.sleep(0.02)
        servers = [StdioServer(env), StdioServer(env)]
        for server in servers:
            server.initialize()
        ids = [s.call("DelegateTask", prompt=f"[text:via owner {n}] go")["structuredContent"][
            "taskId"] for n, s in enumerate(servers)]
        for task_id in ids:
            assert servers[1].wait_for_status(task_id, {"completed", "failed"})["status"] == (
                "completed")
        assert owner_pid(home) == owner.pid
        for server in servers:
            assert "headless server is the client" in server.stderr
        assert len((tmp_path / "agent-runs.jsonl").read_text().splitlines()) == len(ids)
    finally:
        for server in servers:
            server.close()
        owner.terminate()
        owner.wait(timeout=30)
