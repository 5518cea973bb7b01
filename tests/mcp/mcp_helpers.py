"""A line-level MCP stdio client for end-to-end tests of the installed ``claudine``.

Deliberately not the SDK: these tests check the bytes on the wire (nothing but JSON-RPC on
stdout) and the launch-to-answer times, which an SDK client would hide.
"""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from jsonschema import Draft7Validator, Draft202012Validator

from claudine_core.mcp.tools import TOOLS_BY_NAME

CLAUDINE = str(Path(sys.executable).with_name("claudine"))
INIT_PARAMS = {"protocolVersion": "2025-06-18", "capabilities": {},
               "clientInfo": {"name": "claudine-tests", "version": "1"}}


class StdioServer:
    """``claudine --headless`` in a child process, spoken to line by line."""

    def __init__(self, env: dict[str, str], *args: str, cwd: str | None = None) -> None:
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            [CLAUDINE, "--headless", *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, env=env, cwd=cwd,
        )
        self.lines: queue.Queue[bytes | None] = queue.Queue()
        self.stdout_lines: list[bytes] = []
        self.stderr_chunks: list[bytes] = []
        self._next_id = 0
        self._readers = [threading.Thread(target=self._read_stdout, daemon=True),
                         threading.Thread(target=self._read_stderr, daemon=True)]
        for reader in self._readers:
            reader.start()

    def _read_stdout(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.stdout_lines.append(line)
            self.lines.put(line)
        self.lines.put(None)

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        for chunk in self.process.stderr:
            self.stderr_chunks.append(chunk)

    @property
    def stderr(self) -> str:
        return b"".join(self.stderr_chunks).decode(errors="replace")

    def send(self, message: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(message).encode() + b"\n")
        self.process.stdin.flush()

    def request(self, method: str, params: dict[str, Any] | None = None,
                timeout: float = 30) -> dict[str, Any]:
        """Send a request and wait for its response (which must be the next message)."""
        self._next_id += 1
        request_id = self._next_id
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
        if params is not None:
            message["params"] = params
        self.send(message)
        return self.response(request_id, timeout)

    def response(self, request_id: int, timeout: float = 30) -> dict[str, Any]:
        line = self.lines.get(timeout=timeout)
        if line is None:
            raise AssertionError(f"server closed stdout; stderr:\n{self.stderr}")
        reply = json.loads(line)
        assert reply.get("id") == request_id, reply
        return dict(reply)

    def notify(self, method: str) -> None:
        self.send({"jsonrpc": "2.0", "method": method})

    def initialize(self) -> dict[str, Any]:
        reply = self.request("initialize", INIT_PARAMS)
        self.notify("notifications/initialized")
        return reply

    def call(self, tool: str, **arguments: Any) -> dict[str, Any]:
        reply = self.request("tools/call", {"name": tool, "arguments": arguments})
        assert "result" in reply, reply
        return dict(reply["result"])

    def wait_for_status(self, task_id: str, states: set[str], timeout: float = 60) -> dict:
        """Poll TaskStatus (what a model would do) until the task is in one of ``states``."""
        deadline = time.monotonic() + timeout
        while True:
            status = self.call("TaskStatus", taskId=task_id)["structuredContent"]
            if status["status"] in states:
                return dict(status)
            if time.monotonic() > deadline:
                raise AssertionError(f"{task_id} still {status['status']}")
            time.sleep(0.05)

    def close(self, timeout: float = 15) -> int:
        """Close stdin (how MCP hosts stop stdio servers) and wait for the exit status."""
        if self.process.stdin and not self.process.stdin.closed:
            self.process.stdin.close()
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise
        for reader in self._readers:
            reader.join(timeout)
        return code

    def assert_only_protocol_on_stdout(self) -> None:
        for line in self.stdout_lines:
            message = json.loads(line)
            assert message.get("jsonrpc") == "2.0", line


def assert_matches_output_schema(tool: str, structured: Any) -> None:
    """``structured`` conforms to the tool's published outputSchema.

    Checked under draft 2020-12 (the MCP spec's default, what the Python SDK client uses)
    and draft-07 (what Ajv, in the TypeScript SDK that Claude Code uses, assumes).
    """
    schema = TOOLS_BY_NAME[tool]["outputSchema"]
    for validator in (Draft202012Validator, Draft7Validator):
        validator.check_schema(schema)
        problems = [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
                    for e in validator(schema).iter_errors(structured)]
        assert not problems, f"{tool} result breaks its outputSchema ({validator.__name__}):\n" \
            + "\n".join(problems)
