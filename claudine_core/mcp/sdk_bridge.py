"""The MCP server on the official ``mcp`` SDK (2.x): tools over the engine, and a stream bridge.

Importing this module costs over a second (the SDK pulls in pydantic, starlette and
more), which is why the fast front (fast_front.py) answers the handshake and the first
tool calls before it is loaded, then hands its stream to :class:`StreamBridge`. It shares
with the front what both need (frames.py, calls.py, tools.py) and imports nothing of the
front itself, so the front can import it lazily without a cycle. Tests use
:func:`build_server` with the SDK's in-memory ``Client``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import mcp_types as types
from mcp.server import Server, ServerRequestContext
from mcp.shared.message import SessionMessage
from pydantic import ValidationError

from claudine_core.config import Config
from claudine_core.engine import Engine
from claudine_core.mcp.calls import tool_call_result
from claudine_core.mcp.frames import (
    INVALID_REQUEST,
    PARSE_ERROR,
    REPLAY_INIT_ID,
    error_frame,
    recover_id,
)
from claudine_core.mcp.tools import (
    INSTRUCTIONS,
    LATEST_HANDSHAKE_VERSION,
    SERVER_NAME,
    SERVER_VERSION,
    TOOLS,
)

log = logging.getLogger("claudine.mcp")

_TOOL_MODELS = [types.Tool.model_validate(tool) for tool in TOOLS]


def build_server(config: Config, *, engine: Engine | None = None) -> Server[Engine]:
    """The claudine MCP server; its lifespan owns (or attaches to) an :class:`Engine`.

    Args:
        config: the loaded configuration (its home is the one served).
        engine: an engine that is already started (the stdio front starts it early);
            None makes the lifespan start one (kind "mcp") and stop it on exit.
    """

    @asynccontextmanager
    async def lifespan(_server: Server[Engine]) -> AsyncIterator[Engine]:
        if engine is not None:
            yield engine
            return
        own = Engine(config, kind="mcp")
        await own.start()
        try:
            yield own
        finally:
            await own.stop()

    async def list_tools(
        _ctx: ServerRequestContext[Engine], _params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=_TOOL_MODELS)

    async def call_tool(
        ctx: ServerRequestContext[Engine], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        # The encoding the stdio front sends as it is, so both paths answer alike.
        result = tool_call_result(ctx.lifespan_context.service, params.name, params.arguments)
        return types.CallToolResult.model_validate(result, by_name=False)

    return Server(
        SERVER_NAME,
        version=SERVER_VERSION,
        instructions=INSTRUCTIONS,
        lifespan=lifespan,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )


class StreamBridge:
    """Runs an SDK server behind line-level plumbing the caller controls.

    The stdio front feeds it raw JSON-RPC lines (``feed``) and gets serialized replies
    through ``write``; replies to ids in ``swallow`` (the replayed handshake) are dropped.
    A line the SDK cannot take as a JSON-RPC message (which it would drop without an
    answer) is answered here: -32700 if it is no JSON the SDK can read, -32600 otherwise,
    with the request's id when it can be read.
    """

    def __init__(self, server: Server[Any], write: Callable[[bytes], None]) -> None:
        self.server = server
        self.write = write
        self.swallow: set[str | int] = set()
        self._outstanding: set[str | int] = set()  # request ids fed and not yet answered
        self._answered = anyio.Event()
        self._to_server, self._server_in = anyio.create_memory_object_stream[
            SessionMessage | Exception](64)
        self._server_out, self._from_server = anyio.create_memory_object_stream[
            SessionMessage](64)

    async def feed(self, line: bytes) -> None:
        try:
            message = types.jsonrpc_message_adapter.validate_json(line, by_name=False)
        except Exception as exc:
            self._refuse(line, exc)
            return
        if isinstance(message, types.JSONRPCRequest) and message.id == REPLAY_INIT_ID:
            message.params = replayable_handshake(message.params)
        if isinstance(message, types.JSONRPCRequest):
            self._outstanding.add(message.id)
        await self._to_server.send(SessionMessage(message))

    def _refuse(self, line: bytes, exc: Exception) -> None:
        request_id = recover_id(line.decode("utf-8", "replace"))
        if request_id in self.swallow:
            log.error("the replayed handshake was refused: %s", exc)
            return
        code, text = describe_invalid(exc)
        log.info("refused a message: %s", text)
        self.write(error_frame(request_id, code, text))

    async def close_input(self, drain_s: float = 10.0) -> None:
        """End the input, once every request fed so far is answered (or ``drain_s`` passed).

        The SDK cancels in-flight handlers when its input ends, but a host that sends a
        request and closes its end at once still deserves the answer.
        """
        with anyio.move_on_after(drain_s):
            while self._outstanding:
                self._answered = anyio.Event()
                await self._answered.wait()
        await self._to_server.aclose()

    async def run(self) -> None:
        """Serve until the input is closed and every reply is written."""
        async with anyio.create_task_group() as group:
            group.start_soon(self._pump_out)
            await self.server.run(self._server_in, self._server_out,
                                  self.server.create_initialization_options())

    async def _pump_out(self) -> None:
        async with self._from_server:
            async for session_message in self._from_server:
                message = session_message.message
                answered = None if hasattr(message, "method") else getattr(message, "id", None)
                if answered is not None:
                    self._outstanding.discard(answered)
                    self._answered.set()
                    if answered in self.swallow:
                        continue
                data = message.model_dump_json(by_alias=True, exclude_unset=True)
                self.write(data.encode() + b"\n")


def describe_invalid(exc: Exception) -> tuple[int, str]:
    """The JSON-RPC error code and a short message for a frame the SDK refused."""
    if not isinstance(exc, ValidationError):
        return INVALID_REQUEST, f"Invalid Request: {exc}"[:300]
    problems = exc.errors(include_url=False, include_input=False)
    for problem in problems:
        if problem["type"] == "json_invalid":
            detail = str(problem["msg"]).removeprefix("Invalid JSON: ")
            if "recursion limit" in detail:
                detail += " (the JSON is nested too deeply)"
            return PARSE_ERROR, f"Parse error: {detail}"
    # One complaint per kind of message it might have been; the closest is the one with
    # the fewest problems (a request with a bad field, rather than a response).
    by_kind: dict[str, list[str]] = {}
    for problem in problems:
        kind, *where = [str(part) for part in problem["loc"]] or ["message"]
        by_kind.setdefault(kind, []).append(f"{'.'.join(where) or 'message'}: {problem['msg']}")
    closest = min(by_kind.values(), key=len, default=["not a JSON-RPC 2.0 message"])
    return INVALID_REQUEST, "Invalid Request: " + "; ".join(closest[:3])


def replayable_handshake(params: dict[str, Any] | None) -> dict[str, Any]:
    """The client's initialize params as the SDK accepts them, for the replayed handshake.

    The front answers ``initialize`` from a light check; params the SDK would refuse
    (capabilities or clientInfo of the wrong shape) would leave its session never
    initialized, and every later request refused. The parts it refuses are replaced.
    """
    params = dict(params or {})
    try:
        types.InitializeRequestParams.model_validate(params, by_name=False)
        return params
    except ValidationError as exc:
        log.warning("the client's initialize params are malformed (%s); serving it anyway",
                    exc.error_count())
    version = params.get("protocolVersion")
    fixed: dict[str, Any] = {
        "protocolVersion": version if isinstance(version, str) else LATEST_HANDSHAKE_VERSION,
        "capabilities": {},
        "clientInfo": {"name": "unknown", "version": "0"},
    }
    for field, model in (("capabilities", types.ClientCapabilities),
                         ("clientInfo", types.Implementation)):
        try:
            model.model_validate(params.get(field), by_name=False)
        except ValidationError:
            continue
        fixed[field] = params[field]
    return fixed
