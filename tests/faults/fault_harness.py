"""Machinery shared by tests/faults and bench/faults.py.

A :class:`FaultHome` is a temporary claudine home driven only through real processes: the
installed ``claudine`` command for clients, ``claudine serve`` for owners (killed with
SIGKILL at random moments or at a crash point), the fake agent for ``claude``. Every agent
appends to a ledger (``FAKE_CLAUDE_LEDGER``): a ``start`` line when its process starts and an
``end`` line once it has printed its result, each naming its run folder
(``runs/<task>/attempt-N``). :func:`verdict` compares the ledger with the store.

What "run twice" means here: an owner's death never kills an agent (agents run in their own
session), so the next owner must *adopt* it, never start another. The strongest true property
is therefore that every task's agent process started exactly once and completed exactly once,
the same process both times, in attempt 1. The one start that may legitimately be repeated is
one whose agent provably never ran (the owner died after the claim, before the spawn); such a
start leaves no ledger line, so it does not count.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

TESTS_DIR = Path(__file__).resolve().parent.parent
if str(TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(TESTS_DIR))

from engine_helpers import cli_env  # noqa: E402

from claudine_core.ownership import current_owner  # noqa: E402

CLAUDINE = str(Path(sys.executable).with_name("claudine"))
TERMINAL = frozenset({"completed", "failed", "cancelled"})


class FaultHome:
    """A home under ``root`` (or at ``home``, e.g. a mount point) and its processes.

    Args:
        root: a private temporary directory; logs and the ledger live here, outside the home.
        home: where the home is (default ``root/home``).
        env: extra environment for every process started (CLI, owners, hence agents).
    """

    def __init__(self, root: Path, *, home: Path | None = None, **env: str) -> None:
        self.root = root
        self.path = home or root / "home"
        self.path.mkdir(parents=True, exist_ok=True)
        self.ledger = root / "ledger.jsonl"
        self.logs = root / "serve-logs"
        self.logs.mkdir(exist_ok=True)
        self.env = cli_env(self.path, FAKE_CLAUDE_LEDGER=str(self.ledger), **env)
        self.serves: list[subprocess.Popen[bytes]] = []
        self._lock = threading.Lock()

    # -- processes ---------------------------------------------------------------------------

    def run(self, *args: str, check: bool = True, timeout: float = 90,
            **env: str) -> subprocess.CompletedProcess[str]:
        """One ``claudine`` command, as a user types it."""
        result = subprocess.run([CLAUDINE, *args], env={**self.env, **env}, capture_output=True,
                                text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        if check and result.returncode != 0:
            raise AssertionError(f"claudine {' '.join(args)} failed ({result.returncode}): "
                                 f"{result.stderr}")
        return result

    def delegate(self, prompt: str, *extra: str) -> str:
        out = self.run("delegate", prompt, "--no-serve", "--json", *extra).stdout
        return str(json.loads(out)["id"])

    def serve(self, **env: str) -> subprocess.Popen[bytes]:
        """Start ``claudine serve`` (owner or standby client); its log goes to a file."""
        with self._lock:
            log_path = self.logs / f"serve-{len(self.serves)}.log"
            with open(log_path, "wb") as log:
                process = subprocess.Popen(
                    [CLAUDINE, "serve"], env={**self.env, **env}, stdin=subprocess.DEVNULL,
                    stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                )
            self.serves.append(process)
        return process

    def live_serves(self) -> list[subprocess.Popen[bytes]]:
        return [p for p in self.serves if p.poll() is None]

    def serve_log(self) -> str:
        return "".join(p.read_text(errors="replace") for p in sorted(self.logs.iterdir()))

    def owner_pid(self) -> int | None:
        owner = current_owner(self.path / "engine.lock")
        pid = None if owner is None else owner.get("pid")
        return int(pid) if pid else None

    def wait_owner(self, not_pid: int | None = None, timeout: float = 60) -> int:
        """The pid of the owner, once one holds the lock (and is not ``not_pid``)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid = self.owner_pid()
            if pid is not None and pid != not_pid and psutil.pid_exists(pid):
                return pid
            time.sleep(0.05)
        raise AssertionError(f"no owner took {self.path} within {timeout:g}s")

    def kill(self, pid: int) -> None:
        """SIGKILL one process; reap it when it is one of ours."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        for process in self.serves:
            if process.pid == pid:
                process.wait(timeout=30)

    def close(self) -> None:
        """Kill every process this home started: owners, standby clients, agents, their
        children (found by the home in their command line or environment)."""
        for process in self.serves:
            if process.poll() is None:
                process.kill()
        kill_processes_under(self.root)
        for process in self.serves:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=10)

    # -- the store and the ledger ------------------------------------------------------------

    def rows(self) -> dict[str, dict[str, Any]]:
        """Every task row, read the way a second process reads it (read-only connection)."""
        db = self.path / "claudine.db"
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
        try:
            con.row_factory = sqlite3.Row
            return {row["id"]: dict(row) for row in con.execute(
                "SELECT id, status, attempt, pid, error, result, merge FROM task")}
        finally:
            con.close()

    def wait_settled(self, ids: list[str], timeout: float) -> dict[str, dict[str, Any]]:
        """Poll the store until every task in ``ids`` has ended, or the time is up."""
        deadline = time.monotonic() + timeout
        while True:
            rows = self.rows()
            if all(rows.get(i, {}).get("status") in TERMINAL for i in ids):
                return rows
            if time.monotonic() >= deadline:
                return rows
            time.sleep(0.2)

    def ledger_lines(self) -> list[dict[str, Any]]:
        if not self.ledger.exists():
            return []
        return [json.loads(line) for line in self.ledger.read_text().splitlines() if line]

    def attempt_dirs(self, task_id: str) -> list[str]:
        task_dir = self.path / "runs" / task_id
        return sorted(p.name for p in task_dir.iterdir()) if task_dir.is_dir() else []


def kill_processes_under(root: Path) -> int:
    """SIGKILL every process whose command line or CLAUDINE_HOME names ``root``, and all
    their descendants (an agent's own children included). Returns how many."""
    needle = str(root)
    victims: dict[int, psutil.Process] = {}
    for proc in psutil.process_iter(["pid", "cmdline", "environ"]):
        if proc.pid == os.getpid():
            continue
        cmdline = " ".join(proc.info.get("cmdline") or [])
        home = (proc.info.get("environ") or {}).get("CLAUDINE_HOME", "")
        if needle in cmdline or home.startswith(needle):
            victims[proc.pid] = proc
            with contextlib.suppress(psutil.Error):
                for child in proc.children(recursive=True):
                    victims[child.pid] = child
    for proc in victims.values():
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(list(victims.values()), timeout=10)
    return len(victims)


# -- faults ----------------------------------------------------------------------------------


def kill_owners(home: FaultHome, *, kills: int, rng: random.Random, max_life_s: float,
                standby: float = 0.5, stop: threading.Event | None = None) -> int:
    """SIGKILL ``kills`` owners, each at a random moment of its life.

    Before each kill a ``claudine serve`` is started if none is alive, and with probability
    ``standby`` a second one that waits as a client, so takeovers are both cold (a new
    process recovers) and hot (a waiting client grabs the lock). An owner lives a uniform
    random 0..``max_life_s`` seconds after taking the lock: sometimes mid-recovery, sometimes
    mid-dispatch, sometimes while it follows agents. Returns the number of owners killed.
    """
    killed = 0
    last: int | None = None
    while killed < kills and not (stop is not None and stop.is_set()):
        live = home.live_serves()
        if not live:
            home.serve()
        if len(live) < 2 and rng.random() < standby:
            home.serve()
        owner = home.wait_owner(not_pid=last)
        time.sleep(rng.uniform(0.0, max_life_s))  # the fault's moment, not a wait for an event
        home.kill(owner)
        last = owner
        killed += 1
    return killed


class Feeder:
    """Threads that delegate prompts through the real CLI while faults happen.

    ``ids`` are the tasks the CLI acknowledged (printed an id for); ``errors`` the calls
    that failed, with their stderr.
    """

    def __init__(self, home: FaultHome, prompts: list[str], *, threads: int = 2) -> None:
        self.home = home
        self.ids: list[str] = []
        self.errors: list[str] = []
        self._lock = threading.Lock()
        shares = [prompts[n::threads] for n in range(threads)]
        self._threads = [threading.Thread(target=self._feed, args=(share,), daemon=True)
                         for share in shares]
        for thread in self._threads:
            thread.start()

    def _feed(self, prompts: list[str]) -> None:
        for prompt in prompts:
            result = self.home.run("delegate", prompt, "--no-serve", "--json", check=False)
            with self._lock:
                if result.returncode == 0:
                    self.ids.append(str(json.loads(result.stdout)["id"]))
                else:
                    self.errors.append(result.stderr)

    @property
    def done(self) -> bool:
        return not any(t.is_alive() for t in self._threads)

    def join(self, timeout: float = 600) -> list[str]:
        for thread in self._threads:
            thread.join(timeout)
        return list(self.ids)


# -- the verdict -----------------------------------------------------------------------------


@dataclass
class Verdict:
    """What happened to a set of acknowledged tasks, from the store and the ledger."""

    tasks: int
    completed: int = 0
    lost: list[str] = field(default_factory=list)  # acknowledged, then no row or no agent end
    run_twice: list[str] = field(default_factory=list)  # >1 agent process started
    ended_twice: list[str] = field(default_factory=list)  # >1 agent completed
    stuck: list[str] = field(default_factory=list)  # still queued or running
    not_completed: dict[str, str] = field(default_factory=dict)  # id -> "status: error"
    adopted_elsewhere: list[str] = field(default_factory=list)  # ended by another pid
    later_attempts: list[str] = field(default_factory=list)  # ran in attempt > 1

    @property
    def ok(self) -> bool:
        return (self.completed == self.tasks and not self.lost and not self.run_twice
                and not self.ended_twice and not self.stuck and not self.adopted_elsewhere
                and not self.later_attempts)

    def summary(self) -> str:
        parts = [f"{self.completed}/{self.tasks} completed"]
        for name in ("lost", "run_twice", "ended_twice", "stuck", "adopted_elsewhere",
                     "later_attempts"):
            items = getattr(self, name)
            if items:
                parts.append(f"{name}={items[:5]}")
        if self.not_completed:
            parts.append(f"not_completed={dict(list(self.not_completed.items())[:5])}")
        return ", ".join(parts)


def verdict(home: FaultHome, ids: list[str]) -> Verdict:
    rows = home.rows()
    starts: dict[str, list[dict[str, Any]]] = defaultdict(list)
    ends: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for line in home.ledger_lines():
        if not line.get("run"):
            continue
        run = Path(line["run"])
        line["task"], line["attempt_dir"] = run.parent.name, run.name
        (starts if line["event"] == "start" else ends)[line["task"]].append(line)
    result = Verdict(tasks=len(ids))
    for task_id in ids:
        row = rows.get(task_id)
        if row is None or not ends[task_id]:
            result.lost.append(task_id)
        if row is None:
            continue
        if row["status"] == "completed":
            result.completed += 1
        elif row["status"] in TERMINAL:
            result.not_completed[task_id] = f"{row['status']}: {row['error']}"
        else:
            result.stuck.append(task_id)
        if len({s["pid"] for s in starts[task_id]}) > 1:
            result.run_twice.append(task_id)
        if len(ends[task_id]) > 1:
            result.ended_twice.append(task_id)
        if {e["pid"] for e in ends[task_id]} - {s["pid"] for s in starts[task_id]}:
            result.adopted_elsewhere.append(task_id)
        attempts = {s["attempt_dir"] for s in starts[task_id]} | {
            e["attempt_dir"] for e in ends[task_id]}
        if attempts - {"attempt-1"}:
            result.later_attempts.append(task_id)
    return result


def flow_prompts(count: int, rng: random.Random, *, min_s: float = 0.05,
                 max_s: float = 0.8, label: str = "flow") -> list[str]:
    """Prompts whose fake agents each take a random short time."""
    return [f"{label} {n} [sleep:{rng.uniform(min_s, max_s):.2f}]" for n in range(count)]


# -- many clients at once --------------------------------------------------------------------

# One client process delegating COUNT tasks in a row through the CLI's own entry point (the
# argument parsing, store opening and error handling of `claudine delegate`), printing each
# acknowledged id. A fresh `claudine` process costs ~0.5 s of CPU to start; this costs the
# same per-call work without paying that 400 times on a 2-core machine.
_CLIENT_LOOP = """
import contextlib, io, json, sys
from claudine_tui.cli.main import main
label, count, extra = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
for n in range(count):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["delegate", f"{label} {n}", "--json", *extra])
    if code:
        sys.exit(code)
    print(json.loads(out.getvalue())["id"], flush=True)
"""


def many_clients(home: FaultHome, *, processes: int, per_process: int, real_cli: bool,
                 no_serve: bool = True, prompt: str = "client") -> tuple[list[str], list[str]]:
    """``processes`` clients delegating ``per_process`` tasks each, all at once.

    ``real_cli``: every delegation is its own ``claudine delegate`` process (``processes``
    of them running at any moment); otherwise each client is one process looping over the
    CLI's entry point. Returns the acknowledged ids and the errors (stderr) of failed calls.
    """
    extra = ["--no-serve"] if no_serve else []
    ids: list[str] = []
    errors: list[str] = []
    lock = threading.Lock()

    def real(client: int) -> None:
        for n in range(per_process):
            result = home.run("delegate", f"{prompt} {client}-{n}", "--json", *extra,
                              check=False, timeout=120)
            with lock:
                if result.returncode == 0:
                    ids.append(str(json.loads(result.stdout)["id"]))
                else:
                    errors.append(result.stderr)

    if real_cli:
        threads = [threading.Thread(target=real, args=(c,)) for c in range(processes)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return ids, errors
    clients = [subprocess.Popen([sys.executable, "-c", _CLIENT_LOOP, f"{prompt} {c}",
                                 str(per_process), *extra], env=home.env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
               for c in range(processes)]
    for client in clients:
        out, err = client.communicate(timeout=600)
        ids.extend(out.split())
        if client.returncode != 0:
            errors.append(err)
    return ids, errors
