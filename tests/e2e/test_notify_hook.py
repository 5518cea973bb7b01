"""The on_finish hook across owners: separate `claudine` processes, restarts and kill -9.

The claim (``notified_at`` set where it is still NULL) is committed before the hook starts,
so a task is told about at most once: an owner restarted, an owner killed while its hook
runs, and two processes running the pass at once on one home never run a hook twice.
"""

from __future__ import annotations

import json
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from engine_helpers import cli_env, make_config, poll

from claudine_core.models import TaskSpec, TaskState
from claudine_core.service import TaskService

CLAUDINE = str(Path(sys.executable).with_name("claudine"))

# Appends {"event": "start"|"end", "id", "status"} to HOOK_LEDGER; with HOOK_GATE set, it
# waits (up to 60 s) for that file to exist between the two lines.
HOOK = """\
import json, os, sys, time
def note(event):
    line = {"event": event, "id": os.environ["CLAUDINE_TASK_ID"],
            "status": os.environ["CLAUDINE_TASK_STATUS"], "pid": os.getpid()}
    fd = os.open(os.environ["HOOK_LEDGER"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    os.write(fd, (json.dumps(line) + "\\n").encode())
    os.close(fd)
task = json.loads(sys.stdin.read())
assert task["id"] == os.environ["CLAUDINE_TASK_ID"]
note("start")
gate = os.environ.get("HOOK_GATE")
deadline = time.monotonic() + 60
while gate and not os.path.exists(gate) and time.monotonic() < deadline:
    time.sleep(0.05)
note("end")
"""


def hook_env(tmp_path: Path, **extra: str) -> tuple[dict[str, str], Path]:
    hook = tmp_path / "hook.py"
    hook.write_text(HOOK)
    ledger = tmp_path / "hook.jsonl"
    env = cli_env(tmp_path / "home", HOOK_LEDGER=str(ledger),
                  CLAUDINE_ON_FINISH=shlex.join([sys.executable, str(hook)]),
                  CLAUDINE_DESKTOP_NOTIFICATIONS="0", **extra)
    return env, ledger


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CLAUDINE, *args], env=env, capture_output=True, text=True,
                          timeout=90)


def delegate(env: dict[str, str], prompt: str, cwd: Path) -> str:
    result = run(env, "delegate", "--no-serve", prompt, "--cwd", str(cwd))
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def events(ledger: Path) -> list[dict[str, Any]]:
    if not ledger.exists():
        return []
    return [json.loads(line) for line in ledger.read_text().splitlines()]


def told(ledger: Path, task_id: str, event: str = "end") -> int:
    return sum(1 for e in events(ledger) if e["id"] == task_id and e["event"] == event)


def serve(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([CLAUDINE, "serve"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def stop(owner: subprocess.Popen[bytes]) -> None:
    owner.send_signal(signal.SIGTERM)
    owner.wait(timeout=30)


def test_once_per_task_across_an_owner_restart(tmp_path: Path) -> None:
    env, ledger = hook_env(tmp_path)
    first = delegate(env, "first", tmp_path)
    owner = serve(env)
    try:
        poll(lambda: told(ledger, first), 60, "the hook of the first task")
    finally:
        stop(owner)
    second = delegate(env, "second", tmp_path)
    owner = serve(env)  # its first pass sees the first task again, already told
    try:
        poll(lambda: told(ledger, second), 60, "the hook of the second task")
    finally:
        stop(owner)
    assert [(e["id"], e["event"], e["status"]) for e in events(ledger)] == [
        (first, "start", "completed"), (first, "end", "completed"),
        (second, "start", "completed"), (second, "end", "completed")]


def test_an_owner_killed_after_the_end_tells_through_the_next_owner(tmp_path: Path) -> None:
    env, ledger = hook_env(tmp_path)
    task_id = delegate(env, "[fail] first", tmp_path)
    # SIGKILLed right after recording the end, before its notifier pass.
    crashing = subprocess.Popen([CLAUDINE, "serve"], env={**env, "CLAUDINE_CRASH_AT": "finished"},
                                stderr=subprocess.DEVNULL)
    assert crashing.wait(timeout=60) == -9
    assert told(ledger, task_id, "start") == 0
    owner = serve(env)
    try:
        poll(lambda: told(ledger, task_id), 60, "the next owner's hook")
    finally:
        stop(owner)
    assert [(e["event"], e["status"]) for e in events(ledger)] == [
        ("start", "failed"), ("end", "failed")]


def test_an_owner_killed_while_its_hook_runs_never_runs_it_again(tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    env, ledger = hook_env(tmp_path, HOOK_GATE=str(gate))
    first = delegate(env, "first", tmp_path)
    owner = serve(env)
    try:
        poll(lambda: told(ledger, first, "start"), 60, "the hook to start")
    finally:
        owner.kill()  # kill -9 while the hook runs (it waits for the gate)
        owner.wait(timeout=30)
    second = delegate(env, "second", tmp_path)
    owner = serve(env)
    try:
        # The new owner's first pass has run once it told about the second task.
        poll(lambda: told(ledger, second, "start"), 60, "the new owner's hook")
        gate.touch()
        # The first hook outlived its owner (a session of its own) and finishes.
        poll(lambda: told(ledger, first) and told(ledger, second), 60, "both hooks to end")
    finally:
        gate.touch()
        stop(owner)
    assert told(ledger, first, "start") == 1
    assert told(ledger, second, "start") == 1


def test_two_owners_started_at_once_tell_each_task_once(tmp_path: Path) -> None:
    env, ledger = hook_env(tmp_path)
    ids = [delegate(env, f"task {n}", tmp_path) for n in range(6)]
    owners = [serve(env) for _ in range(2)]  # one owns the home, the other waits to
    try:
        poll(lambda: all(told(ledger, task_id) for task_id in ids), 60, "every hook")
        owners[0].kill()  # kill -9 one of them: the other (if it was the client) takes over
        owners[0].wait(timeout=30)
        late = delegate(env, "after the kill", tmp_path)
        poll(lambda: told(ledger, late), 60, "the hook of a task the survivor ran")
    finally:
        for owner in owners:
            if owner.poll() is None:
                stop(owner)
    for task_id in [*ids, late]:
        assert told(ledger, task_id, "start") == 1, events(ledger)


PASS_SCRIPT = """\
import sys, time
from pathlib import Path
sys.path.insert(0, {tests!r})
from engine_helpers import make_config
from claudine_core.notify import Notifier
from claudine_core.service import TaskService
service = TaskService(make_config(Path({home!r}), on_finish=({python!r}, {hook!r}),
                                  desktop_notifications=False))
notifier = Notifier(service.config, service.repo, env={env!r})
start = Path({start!r})
while not start.exists():
    time.sleep(0.01)
claimed = 0
for _ in range(200):  # both processes pass over the same tasks many times
    claimed += notifier.tick()
    service.repo.writes += 1  # force a re-read on the next pass
notifier.close(60)
print(claimed)
"""


def test_two_processes_passing_at_once_claim_each_task_once(tmp_path: Path) -> None:
    env, ledger = hook_env(tmp_path)
    home = tmp_path / "home"
    service = TaskService(make_config(home))
    ids = []
    try:
        for n in range(30):
            task = service.delegate(TaskSpec(prompt=f"task {n}", cwd=str(tmp_path)))
            assert service.repo.transition(task.id, [TaskState.QUEUED],
                                           status=TaskState.COMPLETED, ended_at=time.time())
            ids.append(task.id)
    finally:
        service.close()
    start = tmp_path / "start"
    script = PASS_SCRIPT.format(
        tests=str(Path(__file__).resolve().parents[1]), home=str(home),
        python=sys.executable, hook=str(tmp_path / "hook.py"), env=env, start=str(start))
    passes = [subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE,
                               text=True) for _ in range(2)]
    start.touch()
    claimed = [int(p.communicate(timeout=120)[0].strip()) for p in passes]
    assert all(p.returncode == 0 for p in passes)
    assert sum(claimed) == len(ids)
    ends = sorted(e["id"] for e in events(ledger) if e["event"] == "end")
    assert ends == sorted(ids)  # every task told, none twice
