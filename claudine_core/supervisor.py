"""Agent processes: start, follow, stop, and learn how they ended.

An agent runs under ``agents/wrapper.py`` in its own session, so the wrapper's pid is
also the process group id of the agent and everything it spawns. Its prompt reaches it on
stdin from a file (with ``stream_input``: through the wrapper, as the first turn of a
conversation whose later messages come from the run folder's inbox), and its output goes
to files, never pipes to the engine, so the agent keeps running if the engine dies; the
wrapper records the exit status in ``exit.json`` whether or not anybody is watching.

Stopping: SIGTERM to the group. On Linux the wrapper is a subreaper and stops every
descendant itself, detached ones included, SIGKILL after the grace period; the engine
SIGKILLs the whole tree only if the wrapper has not finished a little after that. Where
there is no subreaper (macOS) the supervisor also walks the tree with psutil.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # psutil is imported where processes are inspected: a CLI status
    import psutil  # of tasks with no live agent never loads it

from claudine_core.agents.stream_events import StreamEvent
from claudine_core.agents.stream_parse import LineSplitter, parse_lines
from claudine_core.agents.summary import StreamSummary
from claudine_core.models import TaskState

WRAPPER = Path(__file__).parent / "agents" / "wrapper.py"
READ_CHUNK = 1024 * 1024  # bytes read from one agent per call, unless told fewer
# The wrapper SIGKILLs what is left once the grace period is over; the engine steps in
# only this much later, so it never kills the wrapper while the wrapper is still
# killing processes the group signal cannot reach.
ESCALATION_MARGIN_S = 2.0
# Without a subreaper a process that detached from the agent's tree re-parents to init:
# the supervisor signals the tree as it stands when a stop begins.
SUBREAPER = sys.platform.startswith("linux")
PROMPT_FILE = "prompt.txt"


@dataclass(eq=False)
class RunningAgent:
    """What the supervisor knows about one live (or just ended) agent."""

    task_id: str
    run_dir: Path
    pid: int | None
    pid_started_at: float | None
    started_at: float
    deadline: float | None
    popen: subprocess.Popen[bytes] | None = None
    offset: int = 0
    splitter: LineSplitter = field(default_factory=LineSplitter)
    summary: StreamSummary = field(default_factory=StreamSummary)
    stop_state: TaskState | None = None
    stop_reason: str | None = None
    term_sent_at: float | None = None
    kill_sent: bool = False
    dirty: bool = False


class Supervisor:
    """Starts agents under the wrapper and watches them.

    Args:
        kill_grace_s: seconds between SIGTERM and SIGKILL when stopping an agent (the
            wrapper applies it to every process of the agent's tree).
    """

    remote = False
    """Whether its agents run on an execution backend elsewhere (backends/remote.py)."""

    def __init__(self, *, kill_grace_s: float, agent_nice: int = 0) -> None:
        self.kill_grace_s = kill_grace_s
        self.agent_nice = agent_nice  # the agents' scheduling priority (wrapper --nice)
        self.agents: dict[str, RunningAgent] = {}
        self.spawned = 0

    def __repr__(self) -> str:
        return f"Supervisor(running={len(self.agents)}, spawned={self.spawned})"

    def spawn(
        self,
        task_id: str,
        run_dir: Path,
        argv: list[str],
        *,
        env: dict[str, str],
        cwd: str,
        max_output_bytes: int,
        started_at: float,
        deadline: float | None,
        prompt: str | None = None,
        stream_input: bool = False,
        nice: int | None = None,
    ) -> RunningAgent:
        """Start one agent. ``prompt`` is what it reads on stdin (none: an empty stdin);
        with ``stream_input`` it is the first user message of a conversation whose later
        ones come through the run folder's inbox (agents/inbox.py).

        Raises OSError when the wrapper itself cannot start (or its files cannot be made).
        """
        make_run_dir(run_dir)
        command = [sys.executable, "-I", str(WRAPPER), str(run_dir), str(max_output_bytes),
                   "--grace", f"{self.kill_grace_s:g}"]
        nice = self.agent_nice if nice is None else nice  # a backend's run may say
        if nice:
            command += ["--nice", str(nice)]
        if prompt is not None:
            prompt_file = run_dir / PROMPT_FILE
            _write_private(prompt_file, prompt.encode("utf-8", errors="replace"))
            command += ["--stdin", str(prompt_file)]
        if stream_input:
            command += ["--input", "stream-json"]
        log_fd = os.open(run_dir / "wrapper.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            popen = subprocess.Popen(
                [*command, "--", *argv],
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log_fd,
                stderr=log_fd,
                start_new_session=True,
                close_fds=True,
            )
        finally:
            os.close(log_fd)
        self.spawned += 1
        agent = RunningAgent(
            task_id=task_id,
            run_dir=run_dir,
            pid=popen.pid,
            pid_started_at=process_start_time(popen.pid),
            started_at=started_at,
            deadline=deadline,
            popen=popen,
        )
        self.agents[task_id] = agent
        return agent

    def adopt(
        self,
        task_id: str,
        run_dir: Path,
        *,
        pid: int | None,
        pid_started_at: float | None,
        started_at: float,
        deadline: float | None,
    ) -> RunningAgent:
        """Follow an agent started by an earlier owner (alive or not: the tick decides)."""
        if pid is None:
            pid, pid_started_at = _pid_from_wrapper_record(run_dir)
        agent = RunningAgent(
            task_id=task_id,
            run_dir=run_dir,
            pid=pid,
            pid_started_at=pid_started_at,
            started_at=started_at,
            deadline=deadline,
        )
        self.agents[task_id] = agent
        return agent

    def read_output(self, agent: RunningAgent, *, events: bool = True,
                    limit: int = READ_CHUNK) -> list[StreamEvent]:
        """Read up to ``limit`` new bytes of output and fold them into the summary.

        Returns the stream events of the complete lines read. With ``events=False`` it
        returns none and parses only the lines that can change the summary (see
        :meth:`StreamSummary.update_from_lines`): the same summary for a fraction of the
        CPU, for when nobody consumes the events. ``agent.offset`` says how far it read.
        """
        path = agent.run_dir / "stdout.jsonl"
        try:
            with open(path, "rb") as source:
                source.seek(agent.offset)
                data = source.read(limit)
        except FileNotFoundError:
            return []
        if not data:
            return []
        agent.offset += len(data)
        lines = agent.splitter.feed(data)
        if not events:
            if agent.summary.update_from_lines(lines):
                agent.dirty = True
            return []
        parsed = parse_lines(lines)
        if agent.summary.update_all(parsed):
            agent.dirty = True
        return parsed

    def has_unread_output(self, agent: RunningAgent) -> bool:
        try:
            return (agent.run_dir / "stdout.jsonl").stat().st_size > agent.offset
        except FileNotFoundError:
            return False

    def exit_record(self, agent: RunningAgent) -> dict[str, Any] | None:
        """The wrapper's record of how the agent ended, once it exists."""
        if agent.popen is not None:
            agent.popen.poll()  # reap our own child so its pid does not linger as a zombie
        try:
            return dict(json.loads((agent.run_dir / "exit.json").read_text()))
        except (FileNotFoundError, ValueError):
            return None

    def is_alive(self, agent: RunningAgent) -> bool:
        if agent.popen is not None:
            return agent.popen.poll() is None
        return process_matches(agent.pid, agent.pid_started_at)

    def request_stop(self, agent: RunningAgent, state: TaskState, reason: str, now: float) -> None:
        """Begin stopping: SIGTERM to the whole group now (the wrapper takes it from there),
        SIGKILL to the whole tree if it is not over some time after the grace period."""
        if agent.stop_state is None:
            agent.stop_state, agent.stop_reason = state, reason
        if agent.term_sent_at is None:
            agent.term_sent_at = now
            self._terminate(agent)

    def _terminate(self, agent: RunningAgent) -> None:
        """Send the stop's SIGTERM (a remote supervisor asks the agent's node to)."""
        if not SUBREAPER:
            signal_tree(self._wrapper(agent), signal.SIGTERM)
        signal_group(agent.pid, signal.SIGTERM)

    def enforce_stops(self, now: float) -> None:
        due_after = self.kill_grace_s + ESCALATION_MARGIN_S
        for agent in self.agents.values():
            due = agent.term_sent_at is not None and now - agent.term_sent_at >= due_after
            if due and not agent.kill_sent:
                # The wrapper did not finish the stop (it hangs, or was killed).
                self.kill(agent)

    def kill(self, agent: RunningAgent) -> None:
        """SIGKILL the agent's tree, its group and its wrapper now: the tree first, while
        the wrapper still links it together, then the group, then the wrapper."""
        agent.kill_sent = True
        self._kill_tree(agent)

    def _kill_tree(self, agent: RunningAgent) -> None:
        wrapper = self._wrapper(agent)
        signal_tree(wrapper, signal.SIGKILL)
        signal_group(agent.pid, signal.SIGKILL)
        if wrapper is not None:
            _signal_process(wrapper, signal.SIGKILL)

    def _wrapper(self, agent: RunningAgent) -> psutil.Process | None:
        """The agent's wrapper process, if it is still the one we started."""
        if agent.pid is None or not process_matches(agent.pid, agent.pid_started_at):
            return None
        import psutil

        try:
            return psutil.Process(agent.pid)
        except psutil.Error:
            return None

    def forget(self, agent: RunningAgent) -> None:
        """Drop a finished agent, killing anything it left behind in its group."""
        self.agents.pop(agent.task_id, None)
        if agent.popen is not None:
            agent.popen.poll()
        if agent.pid is not None:
            # The group id outlives the wrapper only while members remain, so this reaches
            # the agent's leftover grandchildren and nothing else.
            signal_group(agent.pid, signal.SIGKILL)

    def stop_all(self, now: float) -> None:
        for agent in list(self.agents.values()):
            self.request_stop(agent, TaskState.CANCELLED, "stopped when the owner shut down", now)


def make_run_dir(run_dir: Path) -> None:
    """Create a run folder and its task folder private to the owner (0700), also when an
    earlier step made them with looser permissions."""
    for folder in (run_dir.parent, run_dir):
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        if folder.stat().st_mode & 0o077:
            folder.chmod(0o700)


def _write_private(path: Path, data: bytes) -> None:
    """Write a file only the owner can read (0600 from the start, not chmod-ed after)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)


def signal_tree(root: psutil.Process | None, signum: signal.Signals) -> None:
    """Signal every descendant of ``root`` (not ``root`` itself)."""
    if root is None:
        return
    import psutil

    try:
        descendants = root.children(recursive=True)
    except psutil.Error:
        return
    for process in descendants:
        _signal_process(process, signum)


def _signal_process(process: psutil.Process, signum: signal.Signals) -> None:
    import psutil

    try:
        process.send_signal(signum)
    except psutil.Error:
        pass


def signal_group(pgid: int | None, signum: signal.Signals) -> None:
    if pgid is None or pgid <= 1:
        return
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def process_start_time(pid: int) -> float | None:
    import psutil

    try:
        return float(psutil.Process(pid).create_time())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def process_matches(pid: int | None, started_at: float | None) -> bool:
    """True if ``pid`` is alive and is the same process (not a reused pid)."""
    if pid is None:
        return False
    import psutil

    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        if started_at is not None and abs(process.create_time() - started_at) > 0.05:
            return False
        return True
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def _pid_from_wrapper_record(run_dir: Path) -> tuple[int | None, float | None]:
    """The wrapper writes its pid first thing: recovery's fallback when the owner died
    between starting an agent and committing its pid."""
    try:
        record = json.loads((run_dir / "wrapper.json").read_text())
        pid = int(record["pid"])
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return _pid_from_process_table(run_dir)
    return pid, process_start_time(pid)


def _pid_from_process_table(run_dir: Path) -> tuple[int | None, float | None]:
    # Last resort for the few milliseconds before wrapper.json exists: the wrapper's argv
    # names its run folder.
    import psutil

    needle = str(run_dir)
    for process in psutil.process_iter(["pid", "cmdline", "create_time"]):
        cmdline = process.info.get("cmdline") or []
        if str(WRAPPER) in cmdline and needle in cmdline:
            return int(process.info["pid"]), float(process.info["create_time"])
    return None, None
