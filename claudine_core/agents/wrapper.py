"""The tiny process that sits between the engine and one agent.

Usage: ``python -I wrapper.py RUN_DIR MAX_OUTPUT_BYTES [--stdin FILE] [--grace SECONDS]
-- ARGV...``

The engine starts it in a new session (so it leads the agent's process group) with the
agent's cwd and environment. It exists so that an agent outlives the engine and its end
is still recorded: it feeds FILE to the agent's stdin (the prompt; /dev/null without it),
copies the agent's stdout into ``RUN_DIR/stdout.jsonl`` (bounded by MAX_OUTPUT_BYTES) and
its stderr into ``stderr.log`` (bounded too), and when the agent exits writes
``exit.json`` atomically, whether or not any engine is alive to watch.

It also answers for every process the agent starts. On Linux it is a child subreaper, so
a process that detaches into a session of its own (the ``claude`` Bash tool runs commands
that way) re-parents to the wrapper instead of init. On SIGTERM (the engine stopping the
agent), and when the agent exits leaving processes behind, it sends SIGTERM to all of them,
SIGKILL to what is left after SECONDS (default 5), and writes ``exit.json`` only once none
remains. A full disk never stops it reading the agent's output (the agent would block on
its pipe): what it could not store is counted in ``exit.json``.

Stdlib only and no package imports: it starts once per agent and must start fast.
"""

from __future__ import annotations

import errno
import json
import os
import select
import signal
import sys
import threading
import time
from collections.abc import Iterator

STDERR_CAP = 1024 * 1024
CHUNK = 64 * 1024
DRAIN_SECONDS = 3.0
DEFAULT_GRACE = 5.0
STOP_POLL = (0.02, 0.25)  # first and longest pause of a stop between looks for survivors
KILL_WAIT = 10.0  # how long SIGKILL may take before a stop records what it could not end
EXIT_RECORD_ROOM = 8192  # bytes set aside up front so exit.json fits on a full disk
PR_SET_CHILD_SUBREAPER = 36
# Lines that must survive truncation: without the final result a flooded run could
# not be told apart from a crashed one.
_KEEP_PREFIXES = (b'{"type":"result"', b'{"type": "result"')


class Sink:
    """Appends to a file; a failed write (a full disk) loses that data, never the reader.

    Bytes that could not be stored are counted in ``unstored`` (``error`` says why), and
    storing resumes with the next write that succeeds. A line cut short by a failed write
    is ended before anything else is stored, so later lines stay whole.
    """

    def __init__(self, path: str) -> None:
        self.name = os.path.basename(path)
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self.stored = 0
        self.unstored = 0
        self.error: str | None = None
        self._torn = False

    def write(self, data: bytes) -> int:
        """Store ``data``; returns how many of its bytes were stored. ``stored`` counts
        the bytes in the file (with the newlines that ended cut lines)."""
        if not data:
            return 0
        done = 0
        try:
            if self._torn:
                self._write_all(b"\n")
                self._torn = False
                self.stored += 1
            while done < len(data):
                done += os.write(self.fd, data[done:])
        except OSError as exc:
            self.unstored += len(data) - done
            self.error = f"{exc.strerror or exc} ({self.name})"
            self._torn = self._torn or (done > 0 and data[done - 1 : done] != b"\n")
        self.stored += done
        return done

    def _write_all(self, data: bytes) -> None:
        while data:
            data = data[os.write(self.fd, data) :]

    def close(self) -> None:
        os.close(self.fd)


class CappedWriter:
    """Appends whole lines to a file until ``cap`` bytes, then keeps only result lines."""

    def __init__(self, path: str, cap: int) -> None:
        self.sink = Sink(path)
        self.cap = cap
        self.dropped = 0
        self.closed = False
        self._partial = b""
        self._dropping_line = False

    @property
    def written(self) -> int:
        return self.sink.stored

    def feed(self, data: bytes) -> None:
        data = self._partial + data
        cut = data.rfind(b"\n") + 1
        complete, self._partial = data[:cut], data[cut:]
        if len(self._partial) > self.cap:
            # One endless line: keep nothing of it beyond what the cap allows.
            self.dropped += len(self._partial)
            self._partial = b""
            self._dropping_line = True
        if complete:
            self._write_lines(complete)

    def _write_lines(self, complete: bytes) -> None:
        if self._dropping_line:
            end = complete.find(b"\n") + 1
            self.dropped += end
            complete = complete[end:]
            self._dropping_line = False
        room = self.cap - self.written
        if len(complete) <= room:
            self.sink.write(complete)
            return
        fits = complete.rfind(b"\n", 0, room) + 1
        self.sink.write(complete[:fits])
        for line in complete[fits:].splitlines(keepends=True):
            if line.startswith(_KEEP_PREFIXES):
                self.sink.write(line)
            else:
                self.dropped += len(line)

    def finish(self) -> None:
        if self._partial:
            if self.written + len(self._partial) <= self.cap or self._partial.startswith(
                _KEEP_PREFIXES
            ):
                self.sink.write(self._partial + b"\n")
            else:
                self.dropped += len(self._partial)
        self.closed = True
        self.sink.close()


def _copy_stderr(source: int, sink: Sink) -> None:
    seen = 0
    while True:
        try:
            chunk = os.read(source, CHUNK)
        except OSError:
            break
        if not chunk:
            break
        if seen < STDERR_CAP:
            sink.write(chunk[: STDERR_CAP - seen])
        seen += len(chunk)
    os.close(source)


def _copy_stdout(source: int, out: CappedWriter, lock: threading.Lock) -> None:
    while True:
        try:
            chunk = os.read(source, CHUNK)
        except OSError:
            break
        if not chunk:
            break
        with lock:
            if not out.closed:
                out.feed(chunk)
    os.close(source)


# -- the agent's process tree ---------------------------------------------------------------


def become_subreaper() -> bool:
    """Make orphaned descendants re-parent to this process (Linux only)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def _process_table() -> Iterator[tuple[int, int, int]]:
    """(pid, parent pid, process group) of every process.

    Zombies count: one may still link live processes to the tree (a multi-threaded agent
    whose main thread has exited shows as a zombie while its other threads run), and one
    of the tree is gone only once its parent, or the wrapper, has reaped it.
    """
    if os.path.isdir("/proc/self"):
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat", "rb") as stat:
                    fields = stat.read().rsplit(b")", 1)[1].split()
            except (OSError, IndexError):
                continue  # gone meanwhile
            yield int(entry), int(fields[1]), int(fields[2])
        return
    import subprocess  # only where there is no /proc (macOS): start-up time matters

    listing = subprocess.run(
        ["ps", "-A", "-o", "pid=", "-o", "ppid=", "-o", "pgid="],
        capture_output=True, text=True, check=False,
    ).stdout
    for line in listing.splitlines():
        words = line.split()
        if len(words) == 3:
            yield int(words[0]), int(words[1]), int(words[2])


def tree_members(root: int) -> list[int]:
    """Descendants of ``root`` and members of its process group, parents first.

    Parents come first so that a shell is stopped before the child it waits for: the shell
    must not get to run its next command (``sleep 3; echo done > file``) in between.
    """
    children: dict[int, list[int]] = {}
    group: list[int] = []
    for pid, ppid, pgid in _process_table():
        children.setdefault(ppid, []).append(pid)
        if pgid == root and pid != root:
            group.append(pid)
    found: list[int] = []
    level = [root]
    while level:
        level = [child for parent in level for child in children.get(parent, ())]
        found += level
    seen = set(found)
    return found + [pid for pid in group if pid not in seen]


def _kill(pid: int, signum: int) -> bool:
    """Signal ``pid``; False if it is not ours to signal."""
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass
    except PermissionError:
        return False
    return True


class Reaper:
    """Reaps every child of the wrapper (the agent and adopted orphans) and sleeps until a
    signal (SIGCHLD, SIGTERM) or a timeout. Keeps the agent's own wait status."""

    def __init__(self) -> None:
        self.terminated: list[float] = []
        self.agent_pid: int | None = None
        self.agent_status: int | None = None
        self._wake_read, wake_write = os.pipe()
        os.set_blocking(self._wake_read, False)
        os.set_blocking(wake_write, False)
        signal.set_wakeup_fd(wake_write, warn_on_full_buffer=False)
        # The engine stops an agent by signalling the whole group. The wrapper outlives the
        # polite SIGTERM so it can stop every descendant and record how the agent ended;
        # SIGKILL (the engine's last resort) ends it with the rest.
        signal.signal(signal.SIGTERM, lambda signum, frame: self.terminated.append(time.time()))
        signal.signal(signal.SIGCHLD, lambda signum, frame: None)

    def reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid == self.agent_pid:
                self.agent_status = status

    def sleep(self, timeout: float | None) -> None:
        try:
            select.select([self._wake_read], [], [], timeout)
            while os.read(self._wake_read, 512):
                pass
        except (BlockingIOError, InterruptedError):
            pass

    def stop_tree(self, grace: float) -> tuple[int, list[int]]:
        """SIGTERM every process of the tree, SIGKILL what is left after ``grace`` seconds,
        and return once none is left (all reaped): (how many got SIGTERM, survivors).

        Survivors are what the wrapper may not signal (another user's process: a sudo) or
        what SIGKILL did not end within KILL_WAIT (stuck in the kernel); without that
        bound the end of the run would never be recorded.
        """
        me = os.getpid()
        kill_at = time.monotonic() + grace
        termed: set[int] = set()
        foreign: set[int] = set()
        pause = STOP_POLL[0]
        killing = False
        while True:
            self.reap()
            members = [pid for pid in tree_members(me) if pid not in foreign]
            now = time.monotonic()
            if not members or now >= kill_at + KILL_WAIT:
                return len(termed), sorted(foreign) + members
            if now >= kill_at and not killing:
                killing, pause = True, STOP_POLL[0]  # SIGKILL acts at once: look again soon
            for pid in members:
                if killing:
                    allowed = _kill(pid, signal.SIGKILL)
                elif pid in termed:
                    continue
                else:
                    termed.add(pid)
                    allowed = _kill(pid, signal.SIGTERM)
                    _kill(pid, signal.SIGCONT)  # a stopped process must see it too
                if not allowed:
                    foreign.add(pid)
            self.sleep(pause)
            pause = min(pause * 2, STOP_POLL[1])


def supervise(reaper: Reaper, grace: float) -> tuple[int, list[int]]:
    """Wait for the agent to end and for every process it started to be gone.

    Returns how many processes had to be stopped after the agent ended on its own, and
    the pids of any that could not be (see :meth:`Reaper.stop_tree`).
    """
    while True:
        reaper.reap()
        if reaper.terminated:
            return 0, reaper.stop_tree(grace)[1]
        if reaper.agent_status is not None:
            # What the agent left running (a server its Bash tool put in the background)
            # would hold its output pipe open and outlive the task: stop it the same way.
            return reaper.stop_tree(grace) if tree_members(os.getpid()) else (0, [])
        reaper.sleep(None)


# -- records ----------------------------------------------------------------------------------


def _write_json_atomically(path: str, record: dict[str, object]) -> None:
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, json.dumps(record).encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


class ExitRecord:
    """``exit.json``, with its room taken on disk before the agent starts: on a disk the
    agent's output filled, the record of how it ended must still fit."""

    def __init__(self, run_dir: str) -> None:
        self.path = os.path.join(run_dir, "exit.json")
        self.fd: int | None = None
        try:
            self.fd = os.open(self.path + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.write(self.fd, b" " * EXIT_RECORD_ROOM)
            os.fsync(self.fd)
        except OSError:
            self.close()

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def write(self, record: dict[str, object]) -> None:
        data = json.dumps(record).encode()
        if self.fd is None or len(data) > EXIT_RECORD_ROOM:
            self.close()
            _write_json_atomically(self.path, record)
            return
        try:
            # Overwrite the blocks already allocated, then cut the rest: needs no new space.
            os.pwrite(self.fd, data, 0)
            os.ftruncate(self.fd, len(data))
            os.fsync(self.fd)
        finally:
            self.close()
        os.replace(self.path + ".tmp", self.path)


def _parse(argv: list[str]) -> tuple[str, int, str | None, float, list[str]] | None:
    if "--" not in argv:
        return None
    split = argv.index("--")
    head, command = argv[:split], argv[split + 1 :]
    if len(head) < 2 or len(head) % 2 or not command:
        return None
    run_dir, cap_text, *options = head
    named = dict(zip(options[::2], options[1::2], strict=True))
    if not set(named) <= {"--stdin", "--grace"}:
        return None
    grace = float(named.get("--grace", DEFAULT_GRACE))
    return run_dir, int(cap_text), named.get("--stdin"), grace, command


def _spawn(command: list[str], stdin: int, out_w: int, err_w: int) -> int:
    return os.posix_spawnp(
        command[0], command, os.environ,
        file_actions=[
            (os.POSIX_SPAWN_DUP2, stdin, 0),
            (os.POSIX_SPAWN_DUP2, out_w, 1),
            (os.POSIX_SPAWN_DUP2, err_w, 2),
        ],
        # What Python set aside for itself goes back to the default, as Popen does.
        setsigdef=[signal.SIGPIPE, signal.SIGXFSZ, signal.SIGTERM, signal.SIGCHLD],
        setsigmask=[],
    )


def main(argv: list[str]) -> int:
    parsed = _parse(argv)
    if parsed is None:
        print("usage: wrapper.py RUN_DIR MAX_OUTPUT_BYTES [--stdin FILE] [--grace SECONDS] "
              "-- ARGV...", file=sys.stderr)
        return 2
    run_dir, cap, stdin_path, grace, command = parsed
    # No umask here: the agent inherits this process's, and the files it writes in the
    # user's repository must get the user's usual modes. The wrapper's own files are
    # created 0600 explicitly.
    subreaper = become_subreaper()
    reaper = Reaper()
    started = time.time()
    try:
        _write_json_atomically(
            os.path.join(run_dir, "wrapper.json"),
            {"pid": os.getpid(), "started_at": started, "subreaper": subreaper},
        )
    except OSError as exc:  # a full disk: recovery finds the wrapper by its command line
        print(f"wrapper.json not written: {exc}", file=sys.stderr)
    exit_record = ExitRecord(run_dir)
    out = CappedWriter(os.path.join(run_dir, "stdout.jsonl"), cap)
    err = Sink(os.path.join(run_dir, "stderr.log"))
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    stdin = None
    try:
        what = stdin_path or os.devnull
        stdin = os.open(what, os.O_RDONLY)
        what = command[0]
        reaper.agent_pid = _spawn(command, stdin, out_w, err_w)
    except OSError as exc:
        for fd in (out_r, out_w, err_r, err_w):
            os.close(fd)
        out.finish()
        exit_record.write(
            {"exit_code": None, "signal": None, "spawn_error": f"{exc.strerror}: {what}",
             "errno": exc.errno, "started_at": started, "ended_at": time.time(),
             "output_bytes": 0, "dropped_bytes": 0, "terminated": bool(reaper.terminated)},
        )
        return 127
    finally:
        if stdin is not None:
            os.close(stdin)
    os.close(out_w)
    os.close(err_w)
    lock = threading.Lock()
    threads = [
        threading.Thread(target=_copy_stdout, args=(out_r, out, lock), daemon=True),
        threading.Thread(target=_copy_stderr, args=(err_r, err), daemon=True),
    ]
    for thread in threads:
        thread.start()
    leftovers, survivors = supervise(reaper, grace)
    if reaper.agent_status is None:  # it is one of the survivors: a last look
        pid, last = os.waitpid(reaper.agent_pid, os.WNOHANG)
        if pid:
            reaper.agent_status = last
    # Every process that could hold the pipes is gone on Linux (survivors aside); elsewhere
    # one that escaped the tree may still hold them: do not wait for it forever.
    for thread in threads:
        thread.join(timeout=DRAIN_SECONDS)
    with lock:
        out.finish()
    status = reaper.agent_status
    record: dict[str, object] = {
        "exit_code": os.WEXITSTATUS(status) if status is not None and os.WIFEXITED(status)
        else None,
        "signal": os.WTERMSIG(status) if status is not None and os.WIFSIGNALED(status)
        else None,
        "started_at": started,
        "ended_at": time.time(),
        "output_bytes": out.written,
        "dropped_bytes": out.dropped,
        "unstored_bytes": out.sink.unstored + err.unstored,
        "terminated": bool(reaper.terminated),
        "leftover_processes": leftovers,
        "survivors": survivors,
    }
    storage_errors = [e for e in (out.sink.error, err.error) if e]
    if storage_errors:
        record["storage_error"] = "; ".join(storage_errors)[:500]
    try:
        exit_record.write(record)
    except OSError as exc:
        if exc.errno != errno.ENOSPC:
            raise
        print(f"exit.json not written: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
