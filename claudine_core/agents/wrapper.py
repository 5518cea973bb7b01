"""The tiny process that sits between the engine and one agent.

Usage: ``python -I wrapper.py RUN_DIR MAX_OUTPUT_BYTES -- ARGV...``

The engine starts it in a new session (so it leads the agent's process group) with the
agent's cwd and environment. It exists so that an agent outlives the engine and its end
is still recorded: it copies the agent's stdout into ``RUN_DIR/stdout.jsonl`` (bounded by
MAX_OUTPUT_BYTES), its stderr into ``stderr.log`` (bounded too), and when the agent exits
writes ``exit.json`` atomically, whether or not any engine is alive to watch.

Stdlib only and no package imports: it starts once per agent and must start fast.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

STDERR_CAP = 1024 * 1024
CHUNK = 64 * 1024
DRAIN_SECONDS = 3.0
# Lines that must survive truncation: without the final result a flooded run could
# not be told apart from a crashed one.
_KEEP_PREFIXES = (b'{"type":"result"', b'{"type": "result"')


class CappedWriter:
    """Appends whole lines to a file until ``cap`` bytes, then keeps only result lines."""

    def __init__(self, path: str, cap: int) -> None:
        self.file = open(path, "ab", buffering=0)  # noqa: SIM115 - closed in finish()
        self.cap = cap
        self.written = 0
        self.dropped = 0
        self._partial = b""
        self._dropping_line = False

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
            self._emit(complete)
            return
        fits = complete.rfind(b"\n", 0, room) + 1
        self._emit(complete[:fits])
        for line in complete[fits:].splitlines(keepends=True):
            if line.startswith(_KEEP_PREFIXES):
                self._emit(line)
            else:
                self.dropped += len(line)

    def _emit(self, data: bytes) -> None:
        if data:
            self.file.write(data)
            self.written += len(data)

    def finish(self) -> None:
        if self._partial:
            if self.written + len(self._partial) <= self.cap or self._partial.startswith(
                _KEEP_PREFIXES
            ):
                self._emit(self._partial + b"\n")
            else:
                self.dropped += len(self._partial)
        self.file.close()


def _copy_stderr(source: int, path: str) -> None:
    written = 0
    with open(path, "ab", buffering=0) as out:
        while chunk := os.read(source, CHUNK):
            if written < STDERR_CAP:
                out.write(chunk[: STDERR_CAP - written])
            written += len(chunk)
    os.close(source)


def _copy_stdout(source: int, out: CappedWriter, lock: threading.Lock) -> None:
    while True:
        try:
            chunk = os.read(source, CHUNK)
        except InterruptedError:
            continue
        except OSError:
            return
        if not chunk:
            return
        with lock:
            if out.file.closed:
                return
            out.feed(chunk)


def _write_json_atomically(path: str, record: dict[str, object]) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as out:
        json.dump(record, out)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)


def main(argv: list[str]) -> int:
    run_dir, cap_text, separator, *command = argv
    if separator != "--" or not command:
        print("usage: wrapper.py RUN_DIR MAX_OUTPUT_BYTES -- ARGV...", file=sys.stderr)
        return 2
    os.umask(0o077)
    terminated = []
    # The engine stops an agent by signalling the whole group. The wrapper outlives the
    # polite SIGTERM so it can record how the agent ended; SIGKILL ends it with the rest.
    signal.signal(signal.SIGTERM, lambda signum, frame: terminated.append(time.time()))
    started = time.time()
    _write_json_atomically(
        os.path.join(run_dir, "wrapper.json"), {"pid": os.getpid(), "started_at": started}
    )
    out = CappedWriter(os.path.join(run_dir, "stdout.jsonl"), int(cap_text))
    err_read, err_write = os.pipe()
    try:
        child = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err_write
        )
    except OSError as exc:
        os.close(err_write)
        os.close(err_read)
        out.finish()
        _write_json_atomically(
            os.path.join(run_dir, "exit.json"),
            {"exit_code": None, "signal": None, "spawn_error": f"{exc.strerror}: {command[0]}",
             "errno": exc.errno, "started_at": started, "ended_at": time.time(),
             "output_bytes": 0, "dropped_bytes": 0, "terminated": bool(terminated)},
        )
        return 127
    os.close(err_write)
    err_thread = threading.Thread(
        target=_copy_stderr, args=(err_read, os.path.join(run_dir, "stderr.log")), daemon=True
    )
    err_thread.start()
    assert child.stdout is not None
    lock = threading.Lock()
    out_thread = threading.Thread(
        target=_copy_stdout, args=(child.stdout.fileno(), out, lock), daemon=True
    )
    out_thread.start()
    returncode = child.wait()
    # A grandchild the agent left behind may still hold the pipe open; do not wait for
    # it forever: the engine kills what is left of the group once the exit is recorded.
    out_thread.join(timeout=DRAIN_SECONDS)
    err_thread.join(timeout=DRAIN_SECONDS)
    with lock:
        out.finish()
    _write_json_atomically(
        os.path.join(run_dir, "exit.json"),
        {
            "exit_code": returncode if returncode >= 0 else None,
            "signal": -returncode if returncode < 0 else None,
            "started_at": started,
            "ended_at": time.time(),
            "output_bytes": out.written,
            "dropped_bytes": out.dropped,
            "terminated": bool(terminated),
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
