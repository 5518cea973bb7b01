"""Work never waits for a front end: owners that leave hand the home over (issue 8, part 3).

Separate processes throughout: a `claudine serve` or `claudine --headless` owner, CLI
clients, and the background owner a hand-over starts. The rule under test: there is no
moment at which a committed request (a queued task, a cancel, a running agent to follow)
has no live owner that will act on it.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from engine_helpers import cli_env, wait_pid_file

from claudine_core.ownership import current_owner

pytestmark = pytest.mark.slow
CLAUDINE = str(Path(sys.executable).with_name("claudine"))


class Home:
    """A home with the hand-over on (the default a user gets), and its processes."""

    def __init__(self, root: Path, **env: str) -> None:
        self.path = root / "home"
        self.path.mkdir()
        self.env = cli_env(self.path, CLAUDINE_HANDOFF_ON_EXIT="1", CLAUDINE_IDLE_EXIT="1",
                           **env)
        self.started: list[subprocess.Popen[bytes]] = []
        self.seen_owners: set[int] = set()

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([CLAUDINE, *args], env=self.env, capture_output=True,
                                text=True, timeout=60)
        if check and result.returncode != 0:
            raise AssertionError(f"claudine {args} failed: {result.stderr}")
        return result

    def delegate(self, prompt: str, *extra: str) -> str:
        return str(json.loads(self.run("delegate", prompt, "--json", *extra).stdout)["id"])

    def status(self, task_id: str) -> dict:
        return dict(json.loads(self.run("status", task_id, "--json").stdout))

    def serve(self, *extra: str) -> subprocess.Popen[bytes]:
        process = subprocess.Popen([CLAUDINE, "serve", *extra], env=self.env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                   start_new_session=True)
        self.started.append(process)
        return process

    def owner_pid(self) -> int | None:
        owner = current_owner(self.path / "engine.lock")
        pid = None if owner is None else owner.get("pid")
        if pid:
            self.seen_owners.add(pid)
        return pid

    def wait_owner(self, not_pid: int | None = None, timeout: float = 20) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid = self.owner_pid()
            if pid is not None and pid != not_pid:
                return pid
            time.sleep(0.02)
        raise AssertionError("no owner took the home")

    def wait_ended(self, task_id: str, timeout: float = 60) -> dict:
        """The task once it ended, read from the store only: no command that could start
        an owner itself, so an ending proves an owner was there to record it."""
        from claudine_core.config import load_config
        from claudine_core.service import TaskService

        service = TaskService(load_config(env=self.env))
        try:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                self.owner_pid()
                task = service.get(task_id)
                if task.status.is_terminal:
                    return task.to_json()
                time.sleep(0.05)
            raise AssertionError(f"{task_id} never ended: {task.to_json()}")
        finally:
            service.close()

    def task_status_tool(self, task_id: str) -> Any:
        """The MCP TaskStatus tool's answer, run against the store alone (no engine)."""
        from claudine_core.config import load_config
        from claudine_core.mcp.handlers import run_tool
        from claudine_core.service import TaskService

        service = TaskService(load_config(env=self.env))
        try:
            return run_tool(service, "TaskStatus", {"taskId": task_id})
        finally:
            service.close()

    def wait_no_owner(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while self.owner_pid() is not None:
            assert time.monotonic() < deadline, "the background owner never idled out"
            time.sleep(0.05)

    def cleanup(self) -> None:
        for process in self.started:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)
        for pid in self.seen_owners:
            with contextlib.suppress(psutil.NoSuchProcess):
                psutil.Process(pid).kill()


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Home]:
    h = Home(tmp_path)
    yield h
    h.cleanup()


def test_sigterm_of_an_owner_hands_queued_and_running_work_over(home: Home) -> None:
    home.env["CLAUDINE_MAX_AGENTS"] = "1"  # so that some work is still queued
    owner = home.serve()
    first = home.wait_owner()
    running = home.delegate("[sleep:5] running when the owner stops", "--no-serve")
    queued = [home.delegate(f"queued {n}", "--no-serve") for n in range(3)]
    deadline = time.monotonic() + 20
    while home.status(running)["status"] != "running":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert home.status(queued[-1])["status"] == "queued"
    owner.send_signal(signal.SIGTERM)
    assert owner.wait(timeout=20) == 0
    successor = home.wait_owner(not_pid=first)
    assert successor != owner.pid
    for task_id in [running, *queued]:
        assert home.wait_ended(task_id)["status"] == "completed"
    home.wait_no_owner()  # and the background owner leaves once the work is done


def test_a_host_that_delegates_and_exits_leaves_the_task_running(home: Home) -> None:
    server = subprocess.Popen([CLAUDINE, "--headless"], env=home.env, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    home.started.append(server)
    requests = [
        {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "test", "version": "1"}}},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
            "name": "DelegateTask", "arguments": {"prompt": "[sleep:3] from a host",
                                                  "workingDirectory": str(home.path)}}},
    ]
    assert server.stdin is not None and server.stdout is not None
    server.stdin.write(b"".join(json.dumps(r).encode() + b"\n" for r in requests))
    server.stdin.close()  # the host's session ends right after the call
    replies = [json.loads(line) for line in server.stdout]
    assert server.wait(timeout=30) == 0
    result = next(r for r in replies if r.get("id") == 2)["result"]
    task_id = result["structuredContent"]["taskId"]
    assert home.status(task_id)["status"] in ("queued", "running")  # outlived its server
    assert home.wait_ended(task_id)["status"] == "completed"


def test_idle_exit_zero_waits_for_the_running_task(home: Home) -> None:
    home.env["CLAUDINE_HANDOFF_ON_EXIT"] = "0"  # this owner, not a successor, must finish
    # Queued first: an owner with nothing to do and --idle-exit 0 leaves at once.
    task_id = home.delegate("[sleep:3] longer than the old 1.5 s", "--no-serve")
    owner = home.serve("--idle-exit", "0")
    assert home.wait_owner() == owner.pid
    ended = home.wait_ended(task_id, timeout=30)
    assert ended["status"] == "completed"
    assert home.seen_owners == {owner.pid}
    assert owner.wait(timeout=20) == 0  # idle at last: it leaves
    assert home.owner_pid() is None


def test_cancel_with_no_owner_stops_an_agent_that_ignores_sigterm(home: Home,
                                                                   tmp_path: Path) -> None:
    pid_file = tmp_path / "agent.pid"
    owner = home.serve()
    home.wait_owner()
    task_id = home.delegate(f"[pid-file:{pid_file}][ignore-sigterm][hang]", "--no-serve")
    agent = psutil.Process(wait_pid_file(pid_file))
    os.kill(owner.pid, signal.SIGKILL)  # nobody owns the home; the agent runs on
    owner.wait(timeout=10)
    assert home.owner_pid() is None and agent.is_running()
    result = home.run("cancel", task_id, "stop it", "--json")
    assert json.loads(result.stdout)["cancel_requested"] is True
    ended = home.wait_ended(task_id)
    assert ended["status"] == "cancelled" and ended["error"] == "stop it"
    agent.wait(timeout=15)  # SIGTERM ignored, SIGKILL after the grace


@pytest.mark.parametrize("signal_owner", [False, True], ids=["idle-exit", "sigterm"])
def test_delegates_racing_an_owner_that_stops_all_run(home: Home, signal_owner: bool) -> None:
    """Delegates fired at random offsets around an owner's idle exit or SIGTERM: each one
    is run by some owner, without anybody opening a console."""
    rng = random.Random(8)
    task_ids = []
    for _round in range(6):
        previous = home.owner_pid()
        owner = home.serve("--idle-exit", "0.3")
        home.wait_owner(not_pid=previous)
        time.sleep(rng.uniform(0.0, 0.6))  # the offset under test, not a wait for an event
        if signal_owner:
            owner.send_signal(signal.SIGTERM)
        task_ids.append(home.delegate(f"round {_round}"))
        owner.wait(timeout=20)
        for task_id in task_ids:
            assert home.wait_ended(task_id, timeout=30)["status"] == "completed"
        home.wait_no_owner()


@pytest.mark.parametrize("signal_owner", [False, True], ids=["idle-exit", "sigterm"])
def test_cancels_racing_an_owner_that_stops_take_effect(home: Home, signal_owner: bool,
                                                        tmp_path: Path) -> None:
    rng = random.Random(9)
    for _round in range(4):
        pid_file = tmp_path / f"agent-{_round}.pid"
        owner = home.serve("--idle-exit", "0.3")
        home.wait_owner()
        # Not --no-serve: an owner with a 0.3 s idle exit may be gone before a slow CLI
        # call lands, and then only the delegate's own check starts one.
        task_id = home.delegate(f"[pid-file:{pid_file}][hang]")
        agent = psutil.Process(wait_pid_file(pid_file))
        if signal_owner:
            owner.send_signal(signal.SIGTERM)
        time.sleep(rng.uniform(0.0, 0.5))  # the offset under test
        home.run("cancel", task_id, "racing")
        assert home.wait_ended(task_id)["status"] == "cancelled"
        agent.wait(timeout=15)
        owner.wait(timeout=20)
        home.wait_no_owner()


def test_status_never_shows_a_finished_agent_as_working(home: Home, tmp_path: Path) -> None:
    pid_file = tmp_path / "agent.pid"
    owner = home.serve()
    home.wait_owner()
    task_id = home.delegate(f"[pid-file:{pid_file}][sleep:1]", "--no-serve")
    agent = psutil.Process(wait_pid_file(pid_file))
    os.kill(owner.pid, signal.SIGKILL)  # nobody will record the end for now
    owner.wait(timeout=10)
    agent.wait(timeout=30)
    status = home.status(task_id)  # status only reads: it starts no owner
    assert status["status"] == "running" and status["agent_ended"] is True
    text = home.run("status", task_id).stdout
    assert "its agent has ended; the outcome is not recorded yet" in text
    table = home.run("status").stdout
    assert "running*" in table and "* its agent has ended" in table
    outcome = home.task_status_tool(task_id)  # what an MCP host would be told
    assert outcome.structured and outcome.structured["agentEnded"] is True
    assert "Its agent has ended; the outcome is not recorded yet" in outcome.text
    assert home.owner_pid() is None
    result = home.run("wait", task_id, "--json", "--timeout", "30")  # starts an owner
    assert json.loads(result.stdout)[0]["status"] == "completed"
    assert home.status(task_id)["agent_ended"] is False


def test_a_second_serve_names_the_owner_it_waits_for(home: Home) -> None:
    first = home.serve()
    owner_pid = home.wait_owner()
    second = home.serve()
    assert second.stderr is not None
    line = second.stderr.readline().decode()  # its first word is who owns the home
    second.send_signal(signal.SIGTERM)
    assert second.wait(timeout=20) == 0
    assert f"is owned by pid {owner_pid} (serve)" in line and str(second.pid) not in line
    assert home.owner_pid() == first.pid
