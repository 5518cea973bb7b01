"""Several real `claudine` processes on one home, with `kill -9`, through the installed command.

What a user would check: one owner at a time, every delegated task runs exactly once,
agents survive their owner's death and are adopted by the next one, and commands from
any process take effect.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from engine_helpers import cli_env, poll, wait_pid_file
from git_helpers import git, make_repo

from claudine_core.ownership import current_owner

pytestmark = pytest.mark.slow
CLAUDINE = str(Path(sys.executable).with_name("claudine"))


class Home:
    """A temporary home plus helpers to run `claudine` commands and serves against it."""

    def __init__(self, root: Path) -> None:
        self.path = root / "home"
        self.path.mkdir()
        self.log = root / "invocations.jsonl"
        self.ledger = root / "ledger.jsonl"
        self.env = cli_env(self.path, FAKE_CLAUDE_LOG=str(self.log),
                           FAKE_CLAUDE_LEDGER=str(self.ledger))
        self.serves: list[subprocess.Popen[bytes]] = []

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([CLAUDINE, *args], env=self.env, capture_output=True, text=True,
                                timeout=60)
        if check and result.returncode != 0:
            raise AssertionError(f"claudine {args} failed: {result.stderr}")
        return result

    def delegate(self, prompt: str, *extra: str) -> str:
        out = self.run("delegate", prompt, "--no-serve", "--json", *extra).stdout
        return str(json.loads(out)["id"])

    def status(self, task_id: str) -> dict:
        return dict(json.loads(self.run("status", task_id, "--json").stdout))

    def serve(self) -> subprocess.Popen[bytes]:
        process = subprocess.Popen([CLAUDINE, "serve"], env=self.env, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE, start_new_session=True)
        self.serves.append(process)
        return process

    def owner_pid(self) -> int | None:
        owner = current_owner(self.path / "engine.lock")
        return None if owner is None else owner.get("pid")

    def wait_owner(self, not_pid: int | None = None, timeout: float = 20) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid = self.owner_pid()
            if pid is not None and pid != not_pid:
                return pid
            time.sleep(0.05)
        raise AssertionError("no owner took the home")

    def wait_status(self, task_id: str, statuses: set[str], timeout: float = 60) -> dict:
        result = self.run("wait", task_id, "--timeout", str(timeout), "--json", check=False)
        if result.returncode == 3:
            raise AssertionError(f"{task_id} did not end: {self.status(task_id)}")
        task = json.loads(result.stdout)[0]
        assert task["status"] in statuses, task
        return dict(task)

    def invocations(self) -> list[dict]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def close(self) -> None:
        for process in self.serves:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.serves:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Home]:
    h = Home(tmp_path)
    yield h
    h.close()
    for proc in psutil.process_iter(["cmdline"]):
        if str(h.path) in " ".join(proc.info.get("cmdline") or []):
            proc.kill()


def prompts_run(home: Home) -> list[str]:
    """The prompt of every agent run, in order: the fake's ledger names each run's folder,
    where the prompt it read on stdin is kept."""
    if not home.ledger.exists():
        return []
    runs = [json.loads(line) for line in home.ledger.read_text().splitlines()]
    return [Path(run["run"], "prompt.txt").read_text() for run in runs if run["event"] == "start"]


def test_two_serves_one_owner_and_every_task_runs_once(home: Home) -> None:
    first, second = home.serve(), home.serve()
    owner = home.wait_owner()
    assert owner in (first.pid, second.pid)
    # Delegate from several client processes at once.
    procs = [
        subprocess.Popen([CLAUDINE, "delegate", f"task number {n}", "--no-serve", "--json"],
                         env=home.env, stdout=subprocess.PIPE, text=True)
        for n in range(12)
    ]
    ids = [json.loads(p.communicate(timeout=60)[0])["id"] for p in procs]
    for task_id in ids:
        home.wait_status(task_id, {"completed"})
    assert sorted(prompts_run(home)) == sorted(f"task number {n}" for n in range(12))
    for task_id in ids:
        assert [p.name for p in (home.path / "runs" / task_id).iterdir()] == ["attempt-1"]


def test_owner_killed_live_agent_is_adopted_not_rerun(home: Home) -> None:
    first = home.serve()
    assert home.wait_owner() == first.pid
    pid_file = home.path.parent / "agent.pid"
    task_id = home.delegate(f"[pid-file:{pid_file}] [sleep:3] slow work")
    agent_pid = wait_pid_file(pid_file)
    second = home.serve()
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    assert home.wait_owner(not_pid=first.pid) == second.pid
    assert psutil.pid_exists(agent_pid)  # the agent outlived its owner
    task = home.wait_status(task_id, {"completed"})
    assert task["attempt"] == 1
    assert prompts_run(home) == [f"[pid-file:{pid_file}] [sleep:3] slow work"]


def test_owner_killed_during_worktree_setup_task_runs_once_in_that_worktree(
        home: Home, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    gate = tmp_path / "gate"
    runs = tmp_path / "setup-runs"
    (repo / ".git" / "info" / "exclude").write_text(".claudine.toml\n")
    setup = f"echo run >> {runs}; while [ ! -e {gate} ]; do sleep 0.02; done"
    (repo / ".claudine.toml").write_text(f"[worktree]\nsetup = {json.dumps(setup)}\n")
    first = home.serve()
    assert home.wait_owner() == first.pid
    task_id = home.delegate("[write:made.txt=1] isolated", "--worktree", "--cwd", str(repo))
    deadline = time.monotonic() + 20
    while not (runs.exists() and home.status(task_id)["worktree_path"]):
        assert time.monotonic() < deadline, "the setup command never started"
        time.sleep(0.05)
    os.kill(first.pid, signal.SIGKILL)  # mid-setup: claimed, no agent yet
    first.wait()
    second = home.serve()
    assert home.wait_owner(not_pid=first.pid) == second.pid
    gate.touch()
    task = home.wait_status(task_id, {"completed"})
    assert task["attempt"] == 1  # the first owner's claim did not use up an attempt
    assert prompts_run(home) == ["[write:made.txt=1] isolated"]  # the agent ran once
    # The merge step (which commits the agent's work) runs on a thread after the task
    # ended: read the branch once it has recorded its outcome.
    poll(lambda: (home.status(task_id).get("merge") or {}).get("status")
         not in (None, "pending"), 30, "the merge step to commit the agent's work")
    assert git(repo, "show", f"{task['branch']}:made.txt") == "1"
    assert git(repo, "worktree", "list").count("\n") == 1  # one worktree, not two


def test_agent_finishing_while_no_owner_is_recorded_by_next_owner(home: Home) -> None:
    first = home.serve()
    home.wait_owner()
    pid_file = home.path.parent / "agent.pid"
    task_id = home.delegate(f"[pid-file:{pid_file}] [sleep:1] quick")
    wait_pid_file(pid_file)
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    agent_pid = int(pid_file.read_text())
    while psutil.pid_exists(agent_pid) and psutil.Process(agent_pid).status() != "zombie":
        time.sleep(0.05)
    assert home.status(task_id)["status"] == "running"  # nobody has looked yet
    home.serve()
    task = home.wait_status(task_id, {"completed"})
    assert task["result"].startswith("FAKE_DONE") and task["attempt"] == 1
    assert len(home.invocations()) == 1


def test_agent_killed_while_no_owner_is_resumed_by_policy(home: Home) -> None:
    first = home.serve()
    home.wait_owner()
    pid_file = home.path.parent / "agent.pid"
    task_id = home.delegate(f"[pid-file:{pid_file}] [hang]")
    wait_pid_file(pid_file)
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    # The machine "restarts": the whole agent group dies with no exit record.
    os.killpg(os.getpgid(int(pid_file.read_text())), signal.SIGKILL)
    home.env["CLAUDINE_MAX_RETRIES"] = "1"
    home.env["CLAUDINE_RETRY_BASE_DELAY"] = "0"
    home.serve()
    task = home.wait_status(task_id, {"completed"})
    assert task["attempt"] == 2
    argv = home.invocations()[-1]["argv"]
    assert "--resume" in argv  # continued the agent's session instead of starting over


def test_client_cancel_and_priority_reach_the_owner(home: Home) -> None:
    home.serve()
    home.wait_owner()
    pid_file = home.path.parent / "agent.pid"
    task_id = home.delegate(f"[pid-file:{pid_file}] [hang]")
    wait_pid_file(pid_file)
    started = time.monotonic()
    home.run("cancel", task_id, "no longer needed")
    task = home.wait_status(task_id, {"cancelled"}, timeout=20)
    assert task["error"] == "no longer needed"
    assert time.monotonic() - started < 10
    agent = int(pid_file.read_text())
    deadline = time.monotonic() + 10
    while psutil.pid_exists(agent) and time.monotonic() < deadline:
        if psutil.Process(agent).status() == "zombie":
            break
        time.sleep(0.05)


def test_kill_9_owner_repeatedly_loses_nothing_runs_nothing_twice(home: Home) -> None:
    ids = [home.delegate(f"burst {n} [sleep:0.3]") for n in range(16)]
    for _ in range(6):
        serve = home.serve()
        home.wait_owner()
        time.sleep(0.4)  # let it get some way: the point is to kill it mid-work
        os.kill(serve.pid, signal.SIGKILL)
        serve.wait()
    home.serve()
    for task_id in ids:
        home.wait_status(task_id, {"completed"}, timeout=120)
    runs = prompts_run(home)
    assert sorted(runs) == sorted(f"burst {n} [sleep:0.3]" for n in range(16))


def test_delegate_starts_a_background_owner_that_exits_when_idle(home: Home) -> None:
    home.env["CLAUDINE_IDLE_EXIT"] = "1"
    out = home.run("delegate", "hello", "--json").stdout
    task_id = json.loads(out)["id"]
    home.wait_status(task_id, {"completed"})
    owner = home.owner_pid()
    deadline = time.monotonic() + 20
    while home.owner_pid() is not None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert home.owner_pid() is None, f"background owner {owner} did not exit when idle"
