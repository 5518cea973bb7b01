"""Malformed input over stdio, and a home the server cannot use, against the real process.

A host that sends a line the server cannot take must get an answer it can match (the
request's id when one can be read, else null) and the server must go on serving: the
MCP SDK drops such a line without a word, and before these fixes some lines (a lone
UTF-16 surrogate, bytes that are not UTF-8) were never answered and one (JSON nested
100,000 deep) killed the server. Both phases are covered: the fast front, which serves
until the SDK has loaded, and the SDK server behind the bridge.
"""

from __future__ import annotations

import json
import queue
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from engine_helpers import cli_env
from fuzz_values import json_values, small_text
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp_helpers import CLAUDINE, INIT_PARAMS, StdioServer

from claudine_core.config import Config
from claudine_core.mcp.frames import MAX_FRAME_BYTES, recover_id
from claudine_core.mcp.tools import TOOLS

Check = Callable[[dict[str, Any]], bool]


def error(code: int, *words: str) -> Check:
    return lambda reply: (reply.get("error", {}).get("code") == code
                          and all(w in reply["error"]["message"] for w in words))


def tool_error(*words: str) -> Check:
    return lambda reply: (reply.get("result", {}).get("isError") is True
                          and all(w in reply["result"]["content"][0]["text"] for w in words))


def request(request_id: int, method: str, **params: Any) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": request_id, "method": method,
                       "params": params}).encode()


# (what it is, the line, the id the answer must carry, what the answer must say)
CASES: list[tuple[str, bytes, int | None, Check]] = [
    ("a lone surrogate in a tool argument",
     request(11, "tools/call", name="TaskStatus", arguments={"taskId": "\ud800"}), 11,
     tool_error("taskId", "lone UTF-16 surrogate")),
    ("a lone surrogate in a prompt",
     request(12, "tools/call", name="DelegateTask", arguments={"prompt": "go \udc00"}), 12,
     tool_error("prompt", "surrogate")),
    ("a lone surrogate in the method", request(13, "\ud83d"), 13,
     error(-32600, "method", "surrogate")),
    ("bytes that are not UTF-8",
     b'{"jsonrpc":"2.0","id":14,"method":"tools/call","params":{"name":"TaskStatus",'
     b'"arguments":{"taskId":"\xff\xfe"}}}', 14, error(-32700, "UTF-8")),
    ("a line cut short", request(15, "tools/call", name="TaskStatus")[:-20], 15,
     error(-32700)),
    ("NaN", b'{"jsonrpc":"2.0","id":16,"method":"ping","params":{"x":NaN}}', 16,
     error(-32700, "NaN")),
    ("no JSON at all", b"hello?", None, error(-32700)),
    ("100,000 nested arrays", b"[" * 100_000, None, error(-32700, "nested too deeply")),
    ("a request nested 300 deep",
     b'{"jsonrpc":"2.0","id":17,"method":"ping","params":{"x":' + b"[" * 300 + b"]" * 300
     + b"}}", 17, error(-32700, "nested too deeply")),
    ("a batch", b'[{"jsonrpc":"2.0","id":18,"method":"ping"}]', None,
     error(-32600, "batches")),
    ("a bare number", b"42", None, error(-32600)),
    ("an id that is a fraction", b'{"jsonrpc":"2.0","id":1.5,"method":"ping"}', None,
     error(-32600, "id")),
    ("an id that is true", b'{"jsonrpc":"2.0","id":true,"method":"ping"}', None,
     error(-32600, "id")),
    ("an id and nothing else", b'{"jsonrpc":"2.0","id":19}', 19, error(-32600, "method")),
    ("JSON-RPC 1.0", b'{"jsonrpc":"1.0","id":20,"method":"ping"}', 20,
     error(-32600, "jsonrpc")),
    ("params that are a list", b'{"jsonrpc":"2.0","id":21,"method":"ping","params":[1]}', 21,
     error(-32600, "params")),
    ("a NUL in a tool argument",
     request(22, "tools/call", name="DelegateTask", arguments={"prompt": "a\x00b"}), 22,
     tool_error("prompt", "NUL")),
    ("an offset of 10**30",
     request(23, "tools/call", name="TaskStatus", arguments={"offset": 10**30}), 23,
     tool_error("offset", "too large")),
]


def probe_id(n: int) -> str:
    return f"probe-{n}"


def feed_cases(server: StdioServer) -> dict[str, dict[str, Any]]:
    """Send every case, each followed by a ping; return each case's answer.

    A line refused outright is answered before the ping after it; one the SDK refuses
    may be answered later (before the SDK has taken over, it waits in the queue).
    """
    assert server.process.stdin is not None
    answers: dict[str, dict[str, Any]] = {}
    by_id: dict[Any, dict[str, Any]] = {}
    for n, (label, line, request_id, _) in enumerate(CASES):
        server.process.stdin.write(line + b"\n")
        server.send({"jsonrpc": "2.0", "id": probe_id(n), "method": "ping"})
        before_ping = []
        while True:
            reply = next_reply(server)
            if reply.get("id") == probe_id(n):
                assert reply["result"] == {}, reply
                break
            before_ping.append(reply)
            by_id[reply.get("id")] = reply
        if request_id is None:
            assert len(before_ping) == 1, (label, before_ping)
            answers[label] = before_ping[0]
    for label, _, request_id, _ in CASES:
        if request_id is not None:
            while request_id not in by_id:
                reply = next_reply(server)
                by_id[reply.get("id")] = reply
            answers[label] = by_id[request_id]
    return answers


def next_reply(server: StdioServer, timeout: float = 30) -> dict[str, Any]:
    try:
        line = server.lines.get(timeout=timeout)
    except queue.Empty:
        raise AssertionError(f"no answer; stderr:\n{server.stderr[-3000:]}") from None
    assert line is not None, f"the server closed stdout; stderr:\n{server.stderr[-3000:]}"
    reply = json.loads(line)
    assert reply["jsonrpc"] == "2.0" and ("result" in reply) != ("error" in reply), reply
    return dict(reply)


@pytest.mark.parametrize("phase", ["front", "bridge"])
def test_every_malformed_line_is_answered_and_the_server_goes_on(
    home_env: tuple[Path, dict[str, str]], phase: str
) -> None:
    _, env = home_env
    server = StdioServer(env)
    try:
        if phase == "front":  # at once: the SDK takes a second to load
            server.send({"jsonrpc": "2.0", "id": 1, "method": "initialize",
                         "params": INIT_PARAMS})
            server.notify("notifications/initialized")
            assert next_reply(server)["id"] == 1
        else:
            server.initialize()
            # Only the SDK server answers a method the front does not know (the front
            # answers tool calls too, once the engine is up): from here the bridge serves.
            assert server.request("no/such/method")["error"]["code"] == -32601
            assert server.call("TaskStatus")["isError"] is False
        answers = feed_cases(server)
        wrong = {label: answers[label] for label, _, request_id, check in CASES
                 if not check(answers[label]) or answers[label].get("id") != request_id}
        assert not wrong, json.dumps(wrong, indent=1)
        # Still serving, and in the phase the test meant.
        assert server.request("tools/list")["result"]["tools"]
        assert server.call("TaskStatus")["structuredContent"]["total"] == 0
        assert f"refused a message ({phase})" in server.stderr
    finally:
        assert server.close() == 0
    server.assert_only_protocol_on_stdout()
    assert "Traceback" not in server.stderr


def test_a_line_over_the_limit_is_refused_and_the_next_one_served(
    home_env: tuple[Path, dict[str, str]],
) -> None:
    _, env = home_env
    server = StdioServer(env)
    try:
        server.initialize()
        assert server.process.stdin is not None
        huge = request(7, "tools/call", name="DelegateTask",
                       arguments={"prompt": "a" * (MAX_FRAME_BYTES + 1024)})
        server.process.stdin.write(huge + b"\n")
        reply = next_reply(server)
        assert reply["id"] == 7 and reply["error"]["code"] == -32600, reply
        assert f"{len(huge):,} bytes" in reply["error"]["message"]
        assert server.request("ping")["result"] == {}
        assert server.call("TaskStatus")["structuredContent"]["total"] == 0  # not queued
    finally:
        assert server.close() == 0


# -- the wire, fuzzed: one process, many lines -----------------------------------------

request_lines = st.builds(
    lambda request_id, method, params: {"jsonrpc": "2.0", "id": request_id, "method": method,
                                        **({} if params is None else {"params": params})},
    st.one_of(st.integers(min_value=-(2**70), max_value=2**70), small_text, st.none(),
              st.booleans(), st.floats(), st.lists(st.integers(), max_size=2)),
    st.one_of(st.sampled_from(["ping", "tools/list", "tools/call", "initialize",
                               "resources/list", "prompts/list", "notifications/cancelled",
                               "logging/setLevel", "completion/complete"]), small_text),
    st.one_of(st.none(), json_values,
              st.builds(lambda name, arguments: {"name": name, "arguments": arguments},
                        st.sampled_from([t["name"] for t in TOOLS]), json_values)),
)


def _encode(message: Any) -> bytes:
    return json.dumps(message, ensure_ascii=True).encode()


raw_lines = st.one_of(
    request_lines.map(_encode),
    json_values.map(_encode),
    json_values.map(lambda value: json.dumps(value, ensure_ascii=False)
                    .encode("utf-8", "surrogatepass")),  # raw surrogates: not UTF-8
    st.binary(max_size=80),
    request_lines.map(_encode).flatmap(
        lambda line: st.integers(0, max(0, len(line) - 1)).map(lambda cut: line[:cut])),
    st.sampled_from([b"[" * 100_000, b"{" * 5_000, b'{"a":' * 300 + b"1" + b"}" * 300,
                     b"\xff\xfe", b"null", b"[]", b'"\\ud800"', b"NaN", b"1" * 5_000,
                     b'{"jsonrpc":"2.0","id":1.5,"method":"ping"}', b"\x00",
                     b'{"jsonrpc":"2.0","method":"notifications/initialized"}']),
).map(lambda line: line.replace(b"\n", b" ").replace(b"\r", b" "))


def expects_answer(line: bytes) -> Any:
    """What ``line`` must be answered with: ("id", id) for a request, ("parse", None) for a
    line that is not JSON, ("message", None) for JSON that is no object; None otherwise."""
    if not line.strip():
        return None
    try:
        message = json.loads(line.decode("utf-8"), parse_constant=_refuse)
    except (ValueError, RecursionError):
        return ("parse", None)
    if not isinstance(message, dict):
        return ("message", None)
    request_id = message.get("id")
    if (isinstance(message.get("method"), str) and message.get("jsonrpc") == "2.0"
            and (isinstance(request_id, str) or type(request_id) is int)):
        try:
            request_id.encode("utf-8") if isinstance(request_id, str) else None
        except UnicodeEncodeError:
            return ("message", None)
        return ("id", request_id)
    return None


def _refuse(constant: str) -> Any:
    raise ValueError(constant)


class WireProbe:
    """Feeds lines to one server and checks the answers, line by line."""

    def __init__(self, server: StdioServer) -> None:
        self.server = server
        self.probes = 0
        self.broken: str | None = None  # why the server stopped answering, once it did

    def feed(self, line: bytes, timeout: float = 30) -> list[dict[str, Any]]:
        """Send ``line`` then a ping; every reply up to the ping's (and the line's own)."""
        if self.broken is not None:
            # Hypothesis replays examples to shrink a failure; once this server stopped
            # answering, every replay would wait out the timeout again, for a long time.
            raise AssertionError(f"the server stopped answering earlier: {self.broken}")
        try:
            return self._feed(line, timeout)
        except AssertionError as exc:
            self.broken = str(exc)[:3000]
            raise

    def _feed(self, line: bytes, timeout: float) -> list[dict[str, Any]]:
        self.probes += 1
        probe_id = f"probe\x01{self.probes}"
        assert self.server.process.stdin is not None
        self.server.process.stdin.write(line + b"\n")
        self.server.process.stdin.flush()
        self.server.send({"jsonrpc": "2.0", "id": probe_id, "method": "ping"})
        expected = expects_answer(line)
        replies: list[dict[str, Any]] = []
        pinged = False
        deadline = time.monotonic() + timeout
        while not pinged or (expected and expected[0] == "id"
                             and not any(r.get("id") == expected[1] for r in replies)):
            try:
                raw = self.server.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no answer to {line[:200]!r} or the ping after it; "
                                     f"got {replies}; stderr:\n{self.server.stderr[-3000:]}"
                                     ) from None
            if raw is None:
                raise AssertionError(f"the server closed stdout after {line[:200]!r}; "
                                     f"stderr:\n{self.server.stderr[-3000:]}")
            reply = json.loads(raw)
            assert reply.get("jsonrpc") == "2.0" and ("result" in reply) != ("error" in reply)
            if reply.get("id") == probe_id:
                assert reply["result"] == {}
                pinged = True
            else:
                replies.append(reply)
        if expected and expected[0] == "parse":
            assert any(r.get("error", {}).get("code") == -32700 for r in replies), replies
        if expected and expected[0] == "message":
            assert any(r.get("error", {}).get("code") == -32600 for r in replies), replies
        return replies


@pytest.fixture(params=["front", "bridge"])
def wire(request: pytest.FixtureRequest, held_home: Config,
         tmp_path: Path) -> Iterator[WireProbe]:
    """One headless server (a client of the held home) with its handshake done: "front",
    the first lines reach the fast front (the SDK is still loading); "bridge", every line
    reaches the SDK server through the bridge."""
    env = cli_env(held_home.home)
    server = StdioServer(env, cwd=str(tmp_path))
    try:
        server.initialize()
        if request.param == "bridge":  # only the SDK server answers an unknown method
            assert server.request("no/such/method")["error"]["code"] == -32601
            assert "result" in server.request("tools/call",
                                              {"name": "TaskStatus", "arguments": {}})
        yield WireProbe(server)
    finally:
        assert server.close() == 0
        assert "Traceback" not in server.stderr, server.stderr[-3000:]


@settings(max_examples=150, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(line=raw_lines)
def test_the_wire_survives_any_line(wire: WireProbe, line: bytes) -> None:
    wire.feed(line)


def test_handshake_params_the_sdk_refuses_still_leave_a_working_server(
    held_home: Config, tmp_path: Path
) -> None:
    """The front answers initialize at once; the SDK, taking over, must not stay
    uninitialized (refusing every tool call) because the params were odd."""
    server = StdioServer(cli_env(held_home.home), cwd=str(tmp_path))
    try:
        odd = {**INIT_PARAMS, "capabilities": {"sampling": 5}, "clientInfo": {"name": 1}}
        assert server.request("initialize", odd)["result"]["serverInfo"]["name"] == "claudine"
        # No notifications/initialized (which would open the SDK's gate on its own).
        reply = server.request("tools/call", {"name": "TaskStatus", "arguments": {}})
        assert reply["result"]["isError"] is False, reply
    finally:
        assert server.close() == 0


# -- a home the server cannot use ------------------------------------------------------------


def run_headless(env: dict[str, str], *prefix: str) -> subprocess.CompletedProcess[bytes]:
    handshake = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize",
                            "params": INIT_PARAMS}).encode() + b"\n"
    return subprocess.run([*prefix, CLAUDINE, "--headless"], input=handshake,
                          capture_output=True, env=env, timeout=60)


def assert_one_line_exit(result: subprocess.CompletedProcess[bytes], home: str,
                         reason: str) -> None:
    stderr = result.stderr.decode()
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert result.returncode == 1, (result.returncode, stderr)
    assert result.stdout == b""  # nothing answered: the host sees the exit and the reason
    assert len(lines) == 1, stderr
    assert lines[0].startswith("claudine: error: ") and home in lines[0], lines[0]
    assert reason in lines[0] and "CLAUDINE_HOME" in lines[0], lines[0]
    assert "Traceback" not in stderr


@pytest.mark.parametrize(("layout", "reason"), [
    ("under a file", "Not a directory"),
    ("is a file", "File exists"),
    ("in /proc", "No such file or directory"),
])
def test_an_unusable_home_is_one_line_and_an_exit(
    home_env: tuple[Path, dict[str, str]], tmp_path: Path, layout: str, reason: str
) -> None:
    """What fails even for root, who ignores permission bits."""
    _, env = home_env
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    home = {"under a file": str(blocker / "home"), "is a file": str(blocker),
            "in /proc": "/proc/claudine-test-home"}[layout]
    assert_one_line_exit(run_headless({**env, "CLAUDINE_HOME": home}), home, reason)


def test_a_read_only_home_is_one_line_and_an_exit(
    home_env: tuple[Path, dict[str, str]],
) -> None:
    """A read-only bind mount (a private mount namespace): refused even to root."""
    home, env = home_env
    unshare = shutil.which("unshare")
    if unshare is None or subprocess.run([unshare, "-m", "true"],
                                         capture_output=True).returncode != 0:
        pytest.skip("no private mount namespaces here (unshare -m)")
    mount = ('mount --bind "$0" "$0" && mount -o remount,ro,bind "$0" "$0" && exec "$@"')
    result = run_headless(env, unshare, "-m", "sh", "-c", mount, str(home))
    assert_one_line_exit(result, str(home), "Read-only file system")


def test_a_home_whose_store_cannot_open_answers_then_exits_in_one_line(
    home_env: tuple[Path, dict[str, str]],
) -> None:
    """Found only when the engine opens its store (after the handshake): the waiting request
    gets an error saying why, stderr says it in one line, the exit status is 1."""
    home, env = home_env
    (home / "claudine.db").mkdir()  # the store's file is a directory
    server = StdioServer(env)
    try:
        server.initialize()
        reply = server.request("tools/call", {"name": "TaskStatus", "arguments": {}})
        assert reply["error"]["code"] == -32603, reply
        assert "claudine.db" in reply["error"]["message"], reply
    finally:
        code = server.close()  # the error above was sent on the way out
    assert code == 1
    assert "Traceback" not in server.stderr
    assert server.stderr.strip().splitlines()[-1].startswith("claudine: error: the engine "
                                                             "cannot use the claudine home")


# -- reading the id of a line that cannot be parsed ------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ('{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"Task', 7),
    ('{"method":"x","params":{"id":9,"a":"\\"id\\":3"},"jsonrpc":"2.0","id":"abc"', "abc"),
    ('{"method":"ping","params":{"x":' + "[" * 5_000, None),  # no id before it is cut
    ('{"params":{"x":' + "[" * 300 + "]" * 300 + '},"method":"ping","id":12}', 12),
    ('{"jsonrpc":"2.0","id":4,"result":{"cut', None),  # a response: never answered
    ('{"jsonrpc":"2.0","id":1.5,"method":"ping"', None),
    ('{"jsonrpc":"2.0","id":true,"method":"ping"', None),
    ('[{"jsonrpc":"2.0","id":1,"method":"ping"}', None),
    ('{"a":"\\\\","id":5,"method":1', 5),
    ("not json at all", None),
])
def test_the_id_of_a_broken_line_is_read_from_its_top_level(text: str, expected: Any) -> None:
    assert recover_id(text) == expected
