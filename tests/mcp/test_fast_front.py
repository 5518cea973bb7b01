"""The stdio front answers tool calls before the SDK has loaded, exactly as the SDK would.

The front (fast_front.StdioFront) answers ``tools/call`` as soon as the engine has started,
through ``calls.tool_call_result``: the same function the SDK server's handler calls.
Here: both paths give the same answer to the same call, for every tool (in one process);
the front takes no call the SDK would treat differently; and a real ``claudine --headless``
answers a call sent right after ``initialize`` from the front (its debug log says which
path answered), keeps the order of a burst of calls across the hand-over, and goes on
answering after it.
"""

from __future__ import annotations

import asyncio
import json
import queue
import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import mcp_types as types
import pytest
from mcp_helpers import INIT_PARAMS, StdioServer
from mcp_types import methods as sdk_methods
from pydantic import ValidationError

from claudine_core.config import Config
from claudine_core.engine import Engine
from claudine_core.mcp.calls import front_call
from claudine_core.mcp.fast_front import StdioFront
from claudine_core.mcp.sdk_bridge import StreamBridge, build_server
from claudine_core.mcp.tools import TOOLS
from claudine_core.models import Priority, TaskSpec

TAKEN_OVER = "the SDK server has taken over the stream"


def front_answered(request_id: Any) -> str:
    return f"(id {request_id!r})"


# -- the same answer on both paths, in one process ----------------------------------------


def _line(message: dict[str, Any]) -> bytes:
    return json.dumps(message).encode()


INIT = {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": INIT_PARAMS}
INITIALIZED = {"jsonrpc": "2.0", "method": "notifications/initialized"}


class Paths:
    """One call sent to the front and to the SDK server behind its bridge, raw replies back."""

    def __init__(self, config: Config, engine: Engine) -> None:
        self.front_out: list[bytes] = []
        self.front = StdioFront(config, self.front_out.append)
        self.front.engine, self.front.service = engine, engine.service
        self.sdk_out: list[bytes] = []
        self.bridge = StreamBridge(build_server(config, engine=engine), self.sdk_out.append)
        self.run: asyncio.Future[None] | None = None

    async def start(self) -> None:
        await self.front._handle(_line(INIT))
        await self.front._handle(_line(INITIALIZED))
        self.run = asyncio.ensure_future(self.bridge.run())
        await self.bridge.feed(_line(INIT))
        await self.bridge.feed(_line(INITIALIZED))
        await self._sdk_reply(0)

    async def _sdk_reply(self, request_id: Any) -> dict[str, Any]:
        deadline = time.monotonic() + 30
        while True:
            for raw in self.sdk_out:
                reply = json.loads(raw)
                if reply.get("id") == request_id:
                    self.sdk_out.remove(raw)
                    return dict(reply)
            assert time.monotonic() < deadline, self.sdk_out
            await asyncio.sleep(0.005)

    async def front_call(self, request_id: int, params: dict[str, Any]) -> dict[str, Any]:
        self.front_out.clear()
        await self.front._handle(_line({"jsonrpc": "2.0", "id": request_id,
                                        "method": "tools/call", "params": params}))
        assert len(self.front_out) == 1 and not self.front.pending, \
            "the front did not answer the call itself"
        return dict(json.loads(self.front_out[0]))

    async def sdk_call(self, request_id: int, params: dict[str, Any]) -> dict[str, Any]:
        await self.bridge.feed(_line({"jsonrpc": "2.0", "id": request_id,
                                      "method": "tools/call", "params": params}))
        return await self._sdk_reply(request_id)

    async def close(self) -> None:
        await self.bridge.close_input()
        assert self.run is not None
        await asyncio.wait_for(self.run, 10)


Setup = Callable[[Engine, str], dict[str, Any]]  # (engine, workdir) -> arguments


def queued(engine: Engine, workdir: str) -> str:
    return engine.service.delegate(TaskSpec(prompt="a queued task", priority=Priority.P1,
                                            cwd=workdir)).id


def cancelled(engine: Engine, workdir: str) -> str:
    task_id = queued(engine, workdir)
    engine.service.cancel(task_id, "for the test")
    return task_id


# (case, tool, make the arguments: run once for each path, so a call that changes a task
# changes its own)
CASES: list[tuple[str, str, Setup]] = [
    ("delegate", "DelegateTask", lambda e, w: {"prompt": "go", "priority": "P0",
                                               "workingDirectory": w, "model": "m"}),
    ("delegate, bad arguments", "DelegateTask", lambda e, w: {"prompt": 5}),
    ("delegate, worktree options without one", "DelegateTask",
     lambda e, w: {"prompt": "go", "baseBranch": "main", "workingDirectory": w}),
    ("status, the list", "TaskStatus", lambda e, w: {}),
    ("status, a page", "TaskStatus", lambda e, w: {"limit": 1, "offset": 1,
                                                   "status": ["queued", "cancelled"]}),
    ("status, one task", "TaskStatus", lambda e, w: {"taskId": queued(e, w)}),
    ("status, an unknown task", "TaskStatus", lambda e, w: {"taskId": "task-0123456789ab"}),
    ("status, an offset of 10**30", "TaskStatus", lambda e, w: {"offset": 10**30}),
    ("status, an unknown argument", "TaskStatus", lambda e, w: {"nope": 1}),
    ("logs, not started", "TaskLogs", lambda e, w: {"taskId": queued(e, w), "tail": 5}),
    ("logs, bad tail", "TaskLogs", lambda e, w: {"taskId": queued(e, w), "tail": -1}),
    ("cancel", "CancelTask", lambda e, w: {"taskId": queued(e, w), "reason": "why not"}),
    ("cancel, already cancelled", "CancelTask", lambda e, w: {"taskId": cancelled(e, w)}),
    ("retry", "RetryTask", lambda e, w: {"taskId": cancelled(e, w)}),
    ("retry, still queued", "RetryTask", lambda e, w: {"taskId": queued(e, w)}),
    ("resume", "ResumeTask", lambda e, w: {"taskId": cancelled(e, w),
                                           "additionalContext": "more"}),
    ("send message, not started", "SendMessage", lambda e, w: {"taskId": queued(e, w),
                                                               "message": "hello"}),
    ("send message, empty", "SendMessage", lambda e, w: {"taskId": queued(e, w),
                                                         "message": " "}),
    ("set priority", "SetTaskPriority", lambda e, w: {"taskId": queued(e, w),
                                                      "priority": "P0"}),
    ("set priority, bad value", "SetTaskPriority", lambda e, w: {"taskId": queued(e, w),
                                                                 "priority": "P9"}),
    ("create pipeline", "CreatePipeline", lambda e, w: {"steps": ["a", "b"],
                                                        "workingDirectory": w,
                                                        "continueConversation": True}),
    ("create pipeline, a bad step", "CreatePipeline",
     lambda e, w: {"steps": ["a", " "], "workingDirectory": w}),
    ("cancel, whole pipeline", "CancelTask",
     lambda e, w: {"taskId": e.service.create_pipeline(
         ["a", "b"], TaskSpec(prompt="-", cwd=w))[1][1].id, "wholePipeline": True}),
    ("delegate, continue from", "DelegateTask",
     lambda e, w: {"prompt": "go on", "continueFrom": queued(e, w)}),
    ("an unknown tool", "NoSuchTool", lambda e, w: {}),
]

_TASK_ID = re.compile(r"task-[0-9a-f]{12}")
_PIPELINE_ID = re.compile(r"pipe-[0-9a-f]{12}")
_SHORT_ID = re.compile(r"\b[0-9a-f]{8}\b")
_SEQ = re.compile(r'"seq": \d+')  # a task's place in the store: each path made its own
_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)?")


def normalized(reply: dict[str, Any]) -> Any:
    """The reply with what differs by nature (task ids and places, times) replaced."""
    text = _SEQ.sub('"seq": 0', json.dumps(reply, sort_keys=True))
    text = _PIPELINE_ID.sub("PIPELINE", _TASK_ID.sub("TASK", text))
    text = _SHORT_ID.sub("SHORT", _TIME.sub("TIME", text))
    return json.loads(text)


def differences(a: Any, b: Any, where: str = "") -> list[str]:
    """Where two JSON values differ, leaf by leaf (for a readable failure)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [f"{where}.{key}: only on one side" if (key in a) != (key in b) else diff
                for key in sorted(set(a) | set(b))
                for diff in ([""] if (key in a) != (key in b) else
                             differences(a[key], b[key], f"{where}.{key}")) if diff or
                (key in a) != (key in b)]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [diff for n, (x, y) in enumerate(zip(a, b, strict=True))
                for diff in differences(x, y, f"{where}[{n}]")]
    return [] if a == b else [f"{where}: {a!r} != {b!r}"]


def test_every_tool_has_a_case() -> None:
    # The schedule tools have theirs in test_schedule_tools.py (same comparison).
    from claudine_core.mcp.schedule_handlers import SCHEDULE_HANDLERS

    assert {tool["name"] for tool in TOOLS} - set(SCHEDULE_HANDLERS) <= {
        tool for _, tool, _ in CASES}


@pytest.mark.parametrize(("case", "tool", "arguments"), CASES, ids=[c[0] for c in CASES])
async def test_the_front_and_the_sdk_answer_a_call_alike(
    client_engine: Engine, tmp_path: Path, case: str, tool: str, arguments: Setup
) -> None:
    workdir = tmp_path / "work"
    workdir.mkdir()
    for _ in range(3):  # something to list
        queued(client_engine, str(workdir))
    paths = Paths(client_engine.config, client_engine)
    await paths.start()
    try:
        front = await paths.front_call(7, {"name": tool,
                                           "arguments": arguments(client_engine, str(workdir))})
        sdk = await paths.sdk_call(7, {"name": tool,
                                       "arguments": arguments(client_engine, str(workdir))})
    finally:
        await paths.close()
    assert set(front) == set(sdk) == {"jsonrpc", "id", "result"}
    assert set(front["result"]) == set(sdk["result"]), (front, sdk)
    assert front["result"]["content"][0]["type"] == "text"
    if front["result"]["isError"]:
        assert "structuredContent" not in front["result"]
    assert normalized(front) == normalized(sdk), differences(normalized(front), normalized(sdk))
    if "list" in case or "page" in case:  # read-only: identical, not just alike
        assert front == sdk


async def test_a_tool_that_raises_is_answered_alike(
    client_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from claudine_core.mcp import handlers as mcp_handlers

    def broken(_service: Any, _args: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setitem(mcp_handlers.HANDLERS, "TaskStatus", broken)
    paths = Paths(client_engine.config, client_engine)
    await paths.start()
    try:
        front = await paths.front_call(3, {"name": "TaskStatus"})
        sdk = await paths.sdk_call(3, {"name": "TaskStatus"})
    finally:
        await paths.close()
    assert front == sdk
    assert front["result"]["isError"] and "a bug" in front["result"]["content"][0]["text"]


# -- the front takes only calls the SDK would take as they are -----------------------------

PARAMS: list[Any] = [
    {"name": "TaskStatus"},
    {"name": "TaskStatus", "arguments": None},
    {"name": "TaskStatus", "arguments": {"limit": 1}},
    {"name": "TaskStatus", "arguments": {}, "_meta": {"progressToken": 3}},
    {"name": "TaskStatus", "arguments": {}, "_meta": {"progressToken": "p"}},
    {"name": "TaskStatus", "arguments": {}, "_meta": {"claudecode/toolUseId": "t"}},
    {"name": "TaskStatus", "_meta": None},
    {"name": "NoSuchTool", "arguments": {}},
    {"name": "TaskStatus", "_meta": {"progressToken": True}},
    {"name": "TaskStatus", "_meta": {"progressToken": 1.5}},
    {"name": "TaskStatus", "_meta": {"progressToken": None}},
    {"name": "TaskStatus", "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28"}},
    {"name": "TaskStatus", "_meta": []},
    {"name": "TaskStatus", "arguments": [1]},
    {"name": "TaskStatus", "arguments": "{}"},
    {"name": 5},
    {"arguments": {}},
    {"name": "TaskStatus", "task": {}},
    {"name": "TaskStatus", "inputResponses": {}},
    {"name": "TaskStatus", "extra": 1},
    [],
    None,
]


@pytest.mark.parametrize("params", PARAMS, ids=[json.dumps(p)[:60] for p in PARAMS])
def test_the_front_takes_no_call_the_sdk_would_treat_otherwise(params: Any) -> None:
    taken = front_call(params)
    if taken is None:
        return
    assert taken == (params["name"], params.get("arguments"))
    for version in ("2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"):
        sdk_methods.validate_client_request("tools/call", version, params)
    model = types.CallToolRequestParams.model_validate(params, by_name=False)
    assert (model.name, model.arguments) == taken


def test_the_plain_calls_are_taken() -> None:
    assert front_call({"name": "TaskStatus", "arguments": {"limit": 1}}) is not None
    assert front_call({"name": "DelegateTask", "arguments": {"prompt": "x"},
                       "_meta": {"progressToken": 1, "claudecode/toolUseId": "t"}}) is not None
    with pytest.raises(ValidationError):  # what the front leaves to the SDK, it refuses
        types.CallToolRequestParams.model_validate({"name": 5}, by_name=False)


# -- a real process ------------------------------------------------------------------------


@pytest.fixture
def debug_env(home_env: tuple[Path, dict[str, str]]) -> dict[str, str]:
    return {**home_env[1], "CLAUDINE_LOG_LEVEL": "debug"}


def _wait_for(condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


def _call(request_id: int, tool: str, **arguments: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "method": "tools/call",
            "params": {"name": tool, "arguments": arguments}}


@pytest.fixture
def server(debug_env: dict[str, str], tmp_path: Path) -> Iterator[StdioServer]:
    server = StdioServer(debug_env, cwd=str(tmp_path))
    try:
        yield server
    finally:
        assert server.close() == 0
        server.assert_only_protocol_on_stdout()
        assert "Traceback" not in server.stderr, server.stderr[-3000:]


def test_a_call_right_after_initialize_is_answered_before_the_sdk_has_loaded(
    server: StdioServer,
) -> None:
    server.send({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": INIT_PARAMS})
    server.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
    server.send(_call(2, "TaskStatus"))
    server.send({"jsonrpc": "2.0", "method": "notifications/cancelled",
                 "params": {"requestId": 2, "reason": "too late: answered"}})
    server.send(_call(3, "DelegateTask", prompt="[text:fast] done", priority="P0"))
    assert server.response(1)["result"]["serverInfo"]["name"] == "claudine"
    assert server.response(2)["result"]["structuredContent"]["total"] == 0
    delegated = server.response(3)["result"]
    assert not delegated["isError"] and delegated["structuredContent"]["status"] == "queued"
    _wait_for(lambda: front_answered(3) in server.stderr, "the front's log line")
    # Both calls came from the front, before the SDK server took over.
    log = server.stderr
    assert TAKEN_OVER not in log[:log.index(front_answered(3))]
    assert "the front answered tools/call TaskStatus (id 2)" in log
    # ...which it then does, and it answers from there on (the cancellation of a request
    # the front answered reached it and changed nothing).
    _wait_for(lambda: TAKEN_OVER in server.stderr, "the SDK server to take over")
    task_id = delegated["structuredContent"]["taskId"]
    status = server.request("tools/call", {"name": "TaskStatus", "arguments": {"taskId": task_id}})
    assert status["result"]["structuredContent"]["taskId"] == task_id
    assert front_answered(status["id"]) not in server.stderr
    assert server.request("tools/list")["result"]["tools"] == TOOLS


def test_a_call_after_a_line_only_the_sdk_answers_waits_its_turn(
    server: StdioServer,
) -> None:
    server.send({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": INIT_PARAMS})
    server.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
    server.send({"jsonrpc": "2.0", "id": 2, "method": "no/such/method"})
    server.send(_call(3, "TaskStatus"))
    assert server.response(1)["result"]
    assert server.response(2)["error"]["code"] == -32601
    assert server.response(3)["result"]["structuredContent"]["total"] == 0
    assert front_answered(3) not in server.stderr
    assert TAKEN_OVER in server.stderr


def limit(request_id: int) -> int:
    """A page size that tells the burst's calls apart (within the limit of 200)."""
    return request_id % 150 + 1


def test_a_burst_of_calls_across_the_hand_over_is_answered_in_order_once_each(
    server: StdioServer,
) -> None:
    server.send({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": INIT_PARAMS})
    server.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
    server.send(_call(2, "DelegateTask", prompt="[text:burst] done"))
    sent = [1, 2]
    stop = threading.Event()

    def keep_sending() -> None:
        request_id, after_hand_over = 3, 0
        while after_hand_over < 20 and not stop.is_set():
            if request_id % 7 == 0:
                server.send({"jsonrpc": "2.0", "id": request_id, "method": "ping"})
            else:
                server.send(_call(request_id, "TaskStatus", limit=limit(request_id)))
            sent.append(request_id)
            request_id += 1
            if TAKEN_OVER in server.stderr:
                after_hand_over += 1
            time.sleep(0.01)

    sender = threading.Thread(target=keep_sending)
    sender.start()
    try:
        sender.join(120)
        assert not sender.is_alive()
    finally:
        stop.set()
    replies = [server.response(request_id) for request_id in sent]  # in order, or it fails
    for reply in replies[2:]:
        if reply["id"] % 7 == 0:
            assert reply["result"] == {}
        else:
            structured = reply["result"]["structuredContent"]
            assert structured["limit"] == limit(reply["id"]), reply
            assert structured["total"] == 1, reply  # the delegation before it is seen
    with pytest.raises(queue.Empty):  # none answered twice
        server.lines.get(timeout=0.5)
    by_front = [n for n in sent if front_answered(n) in server.stderr]
    assert by_front and by_front[0] == 2, "the front answered none of the burst"
    assert sent[-1] not in by_front  # the last ones were the SDK's
