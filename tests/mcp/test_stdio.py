"""End to end over stdio against the installed ``claudine --headless`` console script."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters
from mcp_helpers import CLAUDINE, StdioServer, assert_matches_output_schema

from claudine_core.mcp.tools import TOOLS
from claudine_core.ownership import current_owner

HandshakeBudget = 3.0  # generous for a loaded CI box; bench/bench_mcp_startup.py measures it


def test_handshake_is_fast_and_lists_the_tools(home_env: tuple[Path, dict[str, str]]) -> None:
    home, env = home_env
    server = StdioServer(env)
    try:
        init = server.initialize()
        init_at = time.monotonic() - server.started
        tools = server.request("tools/list")
        listed_at = time.monotonic() - server.started
        assert init["result"]["serverInfo"]["name"] == "claudine"
        assert init["result"]["protocolVersion"] == "2025-06-18"
        assert tools["result"]["tools"] == TOOLS
        assert listed_at < HandshakeBudget, (init_at, listed_at)
        assert server.request("ping")["result"] == {}
    finally:
        assert server.close() == 0
    server.assert_only_protocol_on_stdout()
    assert current_owner(home / "engine.lock") is None  # released on exit


def test_delegate_runs_and_logs_over_stdio(
    home_env: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    _, env = home_env
    server = StdioServer(env, cwd=str(tmp_path))
    try:
        server.initialize()
        server.request("tools/list")
        # Sent at once: answered when the SDK server has taken over the stream.
        result = server.call("DelegateTask", prompt="[text:over stdio] done", priority="P0")
        assert not result["isError"], result
        assert_matches_output_schema("DelegateTask", result["structuredContent"])  # as sent
        task_id = result["structuredContent"]["taskId"]
        assert result["structuredContent"]["task"]["cwd"] == str(tmp_path)
        status = server.wait_for_status(task_id, {"completed", "failed"})
        assert status["status"] == "completed", status
        logs = server.call("TaskLogs", taskId=task_id, tail=50)
        assert "over stdio" in logs["content"][0]["text"]
        assert_matches_output_schema("TaskLogs", logs["structuredContent"])
        bad = server.call("CancelTask", taskId=task_id)
        assert bad["isError"] and "already completed" in bad["content"][0]["text"]
        # Only the text: a TypeScript host would check structuredContent against the
        # outputSchema even on an error, and show its complaint instead of this message.
        assert "structuredContent" not in bad
        assert server.request("tools/list")["result"]["tools"] == TOOLS  # SDK answers now
    finally:
        assert server.close() == 0
    server.assert_only_protocol_on_stdout()
    assert "owning" in server.stderr  # logs go to stderr


def test_requests_before_the_handshake_answer_are_kept_in_order(
    home_env: tuple[Path, dict[str, str]],
) -> None:
    _, env = home_env
    server = StdioServer(env)
    try:
        server.send({"jsonrpc": "2.0", "id": 1, "method": "initialize",
                     "params": {"protocolVersion": "2025-03-26", "capabilities": {},
                                "clientInfo": {"name": "t", "version": "1"}}})
        server.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        server.send({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                     "params": {"name": "TaskStatus", "arguments": {}}})
        server.send({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
                     "params": {"name": "TaskStatus", "arguments": {"limit": 0}}})
        server.send({"jsonrpc": "2.0", "id": 4, "method": "no/such/method"})
        assert server.response(1)["result"]["protocolVersion"] == "2025-03-26"
        assert server.response(2)["result"]["structuredContent"]["total"] == 0
        assert server.response(3)["result"]["isError"]
        assert server.response(4)["error"]["code"] == -32601
    finally:
        assert server.close() == 0


def test_input_closed_with_unanswered_requests_still_answers(
    home_env: tuple[Path, dict[str, str]],
) -> None:
    home, env = home_env
    server = StdioServer(env)
    server.send({"jsonrpc": "2.0", "id": 1, "method": "initialize",
                 "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                            "clientInfo": {"name": "t", "version": "1"}}})
    server.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
    server.send({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                 "params": {"name": "DelegateTask", "arguments": {"prompt": "closed input"}}})
    assert server.close() == 0
    replies = [json.loads(line) for line in server.stdout_lines]
    assert [r["id"] for r in replies] == [1, 2]
    assert replies[1]["result"]["structuredContent"]["status"] == "queued"
    # The server may have started the agent before it exited, and leaves it running for
    # the next owner, as it should; this one ends by itself: let it, so that nothing this
    # test started outlives it (the wrapper writes exit.json as it ends).
    for run in home.glob("runs/*/attempt-*"):
        _wait_for(lambda run=run: (run / "exit.json").exists(), f"the agent in {run} to end")


def _wait_for(condition: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_the_sdk_stdio_client_works(
    home_env: tuple[Path, dict[str, str]], mode: str
) -> None:
    _, env = home_env
    params = StdioServerParameters(command=CLAUDINE, args=["--headless"], env=env)
    async with Client(params, mode=mode) as client:  # type: ignore[arg-type]
        listed = await client.list_tools()
        assert [t.name for t in listed.tools][0] == "DelegateTask"
        result = await client.call_tool("DelegateTask", {"prompt": "sdk client"})
        assert not result.is_error
        status = await client.call_tool(
            "TaskStatus", {"taskId": result.structured_content["taskId"]})  # type: ignore
        assert status.structured_content["taskId"] == result.structured_content["taskId"]  # type: ignore
