"""The tiny process that sits between the engine and one agent.

Usage: ``python -I wrapper.py RUN_DIR MAX_OUTPUT_BYTES [--stdin FILE] [--grace SECONDS]
[--input stream-json] [--nice N] -- ARGV...`` (``--nice``: see :func:`lower_priority`)

The engine starts it in a new session (so it leads the agent's process group) with the
agent's cwd and environment. It exists so that an agent outlives the engine and its end
is still recorded: it feeds FILE to the agent's stdin (the prompt; /dev/null without it),
copies the agent's stdout into ``RUN_DIR/stdout.jsonl`` (bounded by MAX_OUTPUT_BYTES) and
its stderr into ``stderr.log`` (bounded too), and when the agent exits writes
``exit.json`` atomically, whether or not any engine is alive to watch.

With ``--input stream-json`` it owns a conversation (``claude --input-format stream-json``):
FILE becomes the first user message, each message posted to the run folder's inbox
(inbox.py) is written to the agent's stdin as the next one, and when a turn ends (a
``result`` line) with nothing waiting in the inbox it closes the agent's stdin, which ends
the agent. A message that comes later finds the inbox closed and becomes a resume. Each
message it delivers is also put in ``stdout.jsonl`` as a ``user`` line (the log shows the
user's turn).

It also answers for every process the agent starts. On Linux it is a child subreaper, so
a process that detaches into a session of its own (the ``claude`` Bash tool runs commands
that way) re-parents to the wrapper instead of init. On SIGTERM (the engine stopping the
agent), and when the agent exits leaving processes behind, it sends SIGTERM to all of them,
SIGKILL to what is left after SECONDS (default 5), and writes ``exit.json`` only once none
remains. A full disk never stops it reading the agent's output (the agent would block on
its pipe): what it could not store is counted in ``exit.json``.

It is split along its jobs: copying the output (output_capture.py) and the process tree
(process_tree.py); this module keeps the records and the run itself. Stdlib only (and those
two modules, which are stdlib only too): it starts once per agent and must start fast.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable

if not __package__:
    # Run by path (``python -I .../wrapper.py``, as the supervisor starts it): isolated mode
    # leaves this package off sys.path. Its root goes first, so this copy's modules load.
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from claudine_core.agents import inbox  # noqa: E402
from claudine_core.agents.output_capture import (  # noqa: E402 - after the path is set
    CappedWriter,
    Sink,
    copy_stderr,
    copy_stdout,
)
from claudine_core.agents.process_tree import Reaper, become_subreaper, supervise  # noqa: E402

__all__ = ["CappedWriter", "ExitRecord", "Sink", "main"]

DRAIN_SECONDS = 3.0
INBOX_POLL_SECONDS = 0.1  # how often a conversation's inbox is looked at
DEFAULT_GRACE = 5.0
EXIT_RECORD_ROOM = 8192  # bytes set aside up front so exit.json fits on a full disk


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


class Conversation:
    """The agent's stdin in stream-json mode: the prompt, then the inbox, until a turn ends
    with nothing waiting (see the module docstring)."""

    def __init__(self, run_dir: str, prompt_path: str | None, stdin_w: int,
                 log_line: Callable[[bytes], None]) -> None:
        self.run_dir = run_dir
        self.prompt_path = prompt_path
        self.stdin_w: int | None = stdin_w
        self.log_line = log_line  # puts a delivered message in stdout.jsonl
        self.turn_ended = threading.Event()
        self.agent_gone = threading.Event()

    def run(self) -> None:
        try:
            self._write(inbox.PROMPT_KEY, self._prompt())
            while not self.agent_gone.is_set() and self.stdin_w is not None:
                for message_id, text in inbox.waiting(self.run_dir):
                    self._write(message_id, text)
                if self.turn_ended.is_set():
                    self.turn_ended.clear()
                    self._close_if_idle()
                self.agent_gone.wait(INBOX_POLL_SECONDS)
        except OSError as exc:  # the agent closed its stdin (it ended): nothing to deliver to
            print(f"agent stdin: {exc}", file=sys.stderr)
        finally:
            self.finish()

    def _prompt(self) -> str:
        if not self.prompt_path:
            return ""
        with open(self.prompt_path, encoding="utf-8", errors="replace") as handle:
            return handle.read()

    def _write(self, key: str, text: str) -> None:
        if self.stdin_w is None:
            return
        inbox.mark_delivered(self.run_dir, key, time.time())  # before: at most once
        data = inbox.user_message_line(text)
        if key != inbox.PROMPT_KEY:  # the log shows the user's turn (the prompt is known)
            self.log_line(inbox.logged_message_line(key, text))
        while data:
            data = data[os.write(self.stdin_w, data):]

    def _close_if_idle(self) -> None:
        with inbox.locked(self.run_dir):
            if inbox.waiting(self.run_dir):
                return
            inbox.close(self.run_dir)
        self._close_stdin()

    def _close_stdin(self) -> None:
        if self.stdin_w is not None:
            os.close(self.stdin_w)
            self.stdin_w = None

    def finish(self) -> None:
        """No more deliveries (the agent ended, or its stdin closed)."""
        with inbox.locked(self.run_dir):
            inbox.close(self.run_dir)
        self._close_stdin()


def _log_line(out: CappedWriter, lock: threading.Lock, line: bytes) -> None:
    with lock:
        if not out.closed:
            out.write_own_line(line)


def _parse(argv: list[str]) -> tuple[str, int, str | None, float, bool, int, list[str]] | None:
    if "--" not in argv:
        return None
    split = argv.index("--")
    head, command = argv[:split], argv[split + 1 :]
    if len(head) < 2 or len(head) % 2 or not command:
        return None
    run_dir, cap_text, *options = head
    named = dict(zip(options[::2], options[1::2], strict=True))
    if not set(named) <= {"--stdin", "--grace", "--input", "--nice"}:
        return None
    if named.get("--input", "stream-json") != "stream-json":
        return None
    grace = float(named.get("--grace", DEFAULT_GRACE))
    nice = int(named.get("--nice", "0"))
    return (run_dir, int(cap_text), named.get("--stdin"), grace, "--input" in named, nice,
            command)


def lower_priority(nice: int) -> None:
    """Run this process and the agent it starts at ``nice``, their session's group too.

    Linux's autogroup scheduling shares the CPU between sessions first; a process's own
    nice counts only inside its session. Every agent has a session of its own (it is
    started so, to signal its whole group), so without the group's nice 50 agents took
    50 shares of the CPU to a console's one, and the console waited 100 ms and more for
    its turn under load.
    """
    if nice <= 0:
        return
    os.nice(nice)
    try:
        with open("/proc/self/autogroup", "w") as group:
            group.write(str(nice))
    except OSError as exc:  # autogroups are off in this kernel: the process nice still holds
        print(f"agent session's group left at its priority: {exc}", file=sys.stderr)


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
              "[--input stream-json] [--nice N] -- ARGV...", file=sys.stderr)
        return 2
    run_dir, cap, stdin_path, grace, stream_input, nice, command = parsed
    lower_priority(nice)
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
    lock = threading.Lock()  # stdout.jsonl: the agent's lines and the delivered messages
    stdin = None
    conversation = None
    try:
        if stream_input:
            inbox.open_inbox(run_dir)
            stdin, stdin_w = os.pipe()
            conversation = Conversation(run_dir, stdin_path, stdin_w,
                                        lambda line: _log_line(out, lock, line))
        else:
            what = stdin_path or os.devnull
            stdin = os.open(what, os.O_RDONLY)
        what = command[0]
        reaper.agent_pid = _spawn(command, stdin, out_w, err_w)
    except OSError as exc:
        for fd in (out_r, out_w, err_r, err_w):
            os.close(fd)
        if conversation is not None:
            conversation.finish()
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
    on_result = conversation.turn_ended.set if conversation else None
    threads = [
        threading.Thread(target=copy_stdout, args=(out_r, out, lock, on_result), daemon=True),
        threading.Thread(target=copy_stderr, args=(err_r, err), daemon=True),
    ]
    if conversation is not None:
        # Not joined: a write to an agent that stopped reading may block; it ends with us.
        threading.Thread(target=conversation.run, daemon=True).start()
    for thread in threads:
        thread.start()
    leftovers, survivors = supervise(reaper, grace)
    if conversation is not None:
        conversation.agent_gone.set()
        with inbox.locked(run_dir):  # a message posted from now on becomes a resume
            inbox.close(run_dir)
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
