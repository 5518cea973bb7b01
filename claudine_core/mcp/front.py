"""``claudine --headless``: the engine served over MCP stdio, answering in well under a second.

Claude Code starts every configured MCP server at the start of each session, so the time
from launch to the answers to ``initialize`` and ``tools/list`` is felt by every user.
Importing the ``mcp`` SDK alone takes over a second here, so start-up is split:

1. At once, with the standard library only, a small front reads stdin and answers
   ``initialize``, ``tools/list`` and ``ping`` from the static catalogue in mcp_tools.py
   (the same dictionaries the SDK server publishes).
2. Meanwhile a background thread imports the engine (~0.1 s), which starts on the event
   loop and tries to own the home (else it runs as a client and keeps trying), then
   imports the SDK server (mcp_sdk.py, over a second).
3. As soon as the engine has started, the front answers ``tools/call`` too, through
   :func:`tool_call_result`: the very function the SDK server's handler calls, so a call
   gets the same answer on either path (tests/mcp/test_fast_front.py). It answers only
   calls of the plain shape the SDK takes as it is, and only while nothing sent before
   them waits for the SDK, so requests are answered in order; a call that arrives before
   the engine has started waits for it, and so do the ping or tools/list behind it.
4. The SDK server then takes over the same stream: the front replays the handshake to it
   (its replies are swallowed), then everything queued, then every later line. Anything
   else the front does not answer (other methods, odd shapes, a second ``initialize``)
   waits in that queue, and so does every tool call after it (a ping or tools/list is
   still answered at once, as before the engine was up).
   Notifications (``notifications/cancelled`` included) wait there too without holding
   anything up: a call the front answered is complete before the next line is read, so
   there is nothing to cancel, and the SDK ignores a cancellation of a request it has
   never seen.

Nothing but protocol reaches stdout: fd 1 is pointed at stderr for the whole run (stray
prints and child processes cannot corrupt the wire) and replies go to a private
duplicate of the original stdout. This module imports no third-party package at import
time; ``build_server`` is re-exported lazily for tests and embedders.

SIGTERM and SIGINT end the run as the end of stdin does: requests already read are
answered, the engine stops and releases the home, running agents are left to the next
owner (they outlive the engine), and the exit status is 0 (tests/mcp/test_sigterm.py).

Every line is screened here first (:func:`screen`), in both phases, because the SDK
drops a frame it cannot parse without a word and the host would wait forever: a line
that is not UTF-8, not JSON or nested too deeply gets -32700; JSON that is no acceptable
message (not an object, a bad id, a lone UTF-16 surrogate, over :data:`MAX_FRAME_BYTES`)
gets -32600 (-32602 when the surrogate is in params); either carries the request's id
when one can be read. A tools/call whose arguments hold a lone surrogate gets the tool's
own isError result, as the SDK path gives for any other bad argument. What passes the
screen and the SDK still refuses is answered by the bridge (mcp_sdk.StreamBridge). No
line can stop the server.

A home the server cannot write is reported in one line on stderr before anything is
served (exit status 1): the engine could not keep its store or lock there.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import logging
import os
import re
import signal
import sqlite3
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from claudine_core.mcp.tools import TOOLS, ToolInputError, check_arguments, initialize_result

if TYPE_CHECKING:
    from claudine_core.config import Config
    from claudine_core.engine import Engine
    from claudine_core.mcp.sdk_bridge import StreamBridge
    from claudine_core.service import TaskService

log = logging.getLogger("claudine.mcp")

REPLAY_INIT_ID = "claudine-replayed-initialize"
_TOOLS_RESULT = {"tools": TOOLS}
PARSE_ERROR, INVALID_REQUEST, INVALID_PARAMS, INTERNAL_ERROR = -32700, -32600, -32602, -32603
MAX_FRAME_BYTES = 16 * 1024 * 1024
"""The longest line read as a message: six times the largest prompt, fully escaped."""
MAX_DEPTH = 64
"""The deepest nesting of arrays and objects in a message (the SDK's parser stops near 200;
no MCP message comes close to either)."""
EXIT_BAD_HOME = 1  # as every other "claudine: error: ..." of the CLI


def build_server(config: Config, *, engine: Engine | None = None) -> Any:
    """The SDK server (see :func:`claudine_core.mcp_sdk.build_server`); imports the SDK."""
    from claudine_core.mcp.sdk_bridge import build_server as build

    return build(config, engine=engine)


def tool_call_result(service: TaskService, name: str,
                     arguments: dict[str, Any] | None) -> dict[str, Any]:
    """Run a tool and give its ``tools/call`` result as it goes on the wire.

    The one encoding of a tool's answer, for both paths: the front sends this dictionary
    as it is, the SDK server validates it into its ``CallToolResult``. ``content`` is the
    text for the model, ``structuredContent`` is there only when the tool has one (an
    error has none, see mcp_handlers.ToolOutcome), ``isError`` always. Imports the
    handlers (and so the service) when first called: by then the engine has loaded them.
    """
    from claudine_core.mcp.handlers import error, run_tool

    try:
        outcome = run_tool(service, name, arguments)
    except Exception as exc:  # a bug must still answer the model, not kill the call
        log.exception("tool %s failed", name)
        outcome = error(f"internal error in {name}: {exc}; see the server's stderr")
    result: dict[str, Any] = {"content": [{"type": "text", "text": outcome.text}],
                              "isError": outcome.is_error}
    if outcome.structured is not None:  # absent on the wire, not null
        result["structuredContent"] = outcome.structured
    return result


_CALL_PARAMS = frozenset({"name", "arguments", "_meta"})
_RESERVED_META = "io.modelcontextprotocol/"  # the 2026 envelope, refused on this connection


def front_call(params: Any) -> tuple[str, dict[str, Any] | None] | None:
    """``(name, arguments)`` of a ``tools/call`` the front may answer, else None.

    Only the plain shape, which the SDK server takes as it is and hands to the same
    handler: a string name, arguments an object or absent, and at most a ``_meta`` with
    nothing the SDK would act on or refuse. Anything else waits for the SDK server,
    which answers it as it always has (a test keeps this check no wider than the SDK's).
    """
    if not isinstance(params, dict) or not params.keys() <= _CALL_PARAMS:
        return None
    name, arguments, meta = params.get("name"), params.get("arguments"), params.get("_meta")
    if not isinstance(name, str) or not (arguments is None or isinstance(arguments, dict)):
        return None
    if meta is not None:
        if not isinstance(meta, dict) or any(key.startswith(_RESERVED_META) for key in meta):
            return None
        token = meta.get("progressToken")
        if "progressToken" in meta and not (isinstance(token, str) or _is_id(token)):
            return None
    return name, arguments


class Queued(NamedTuple):
    """A line the front has not answered (yet).

    ``answer`` is set for a request the front answers once the engine has started (a
    tools/call, and what came after one); ``blocks`` says whether the line waits for the
    SDK server and must be answered before any later tools/call (a notification waits
    too, but answers nothing and holds nothing up).
    """

    line: bytes
    answer: Callable[[], None] | None = None
    blocks: bool = True


def run_stdio(config: Config) -> int:
    """Serve MCP on this process's stdin/stdout until stdin closes or a signal arrives."""
    problem = home_problem(config.home)
    if problem is not None:
        print(f"claudine: error: {problem}", file=sys.stderr, flush=True)
        return EXIT_BAD_HOME
    wire_in = _claim_fd(0, os.O_RDONLY)
    wire_out = _claim_fd(1, os.O_WRONLY)
    sys.stdout = sys.stderr  # print() now lands on stderr too
    _configure_logging(config)
    out = os.fdopen(wire_out, "wb", buffering=0)
    front = StdioFront(config, out.write)
    code = asyncio.run(front.serve(wire_in))
    if front.loader is not None and front.loader.is_alive():
        # Input ended before the SDK finished importing: nothing is left to serve and a
        # half-done import cannot be interrupted, so do not wait ~1 s for it.
        sys.stderr.flush()
        os._exit(code)
    return code


class StdioFront:
    """Line-level MCP stdio: the fast handshake, then the SDK server on the same stream."""

    def __init__(self, config: Config, write: Any) -> None:
        self.config = config
        self._write = write
        self._write_lock = threading.Lock()
        self.replay: list[bytes] = []  # handshake lines, in order, for the SDK server
        self.pending: list[Queued] = []  # lines not answered yet, in order
        self.answered_init = False
        self.bridge: StreamBridge | None = None
        self.engine: Engine | None = None
        self.service: TaskService | None = None  # set once the engine has started
        self.engine_started = threading.Event()  # ... or failed to: the SDK may load now
        self.loader: threading.Thread | None = None

    def write(self, data: bytes) -> None:
        with self._write_lock:
            self._write(data)

    def reply(self, request_id: Any, result: dict[str, Any]) -> None:
        self.write(json.dumps({"jsonrpc": "2.0", "id": request_id, "result": result},
                              separators=(",", ":")).encode() + b"\n")

    async def serve(self, wire_in: int) -> int:
        loop = asyncio.get_running_loop()
        lines: asyncio.Queue[bytes | TooLong | None] = asyncio.Queue()
        threading.Thread(target=_read_lines, args=(wire_in, loop, lines), daemon=True,
                         name="claudine-mcp-stdin").start()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, lines.put_nowait, None)
        engine_ready: asyncio.Future[Any] = loop.create_future()
        sdk_ready: asyncio.Future[Any] = loop.create_future()
        self.loader = threading.Thread(target=_load_backend,
                                       args=(loop, engine_ready, self.engine_started,
                                             sdk_ready), daemon=True,
                                       name="claudine-mcp-loader")
        self.loader.start()
        backend = asyncio.ensure_future(self._start_backend(engine_ready, sdk_ready))
        bridge_run: asyncio.Future[None] | None = None
        try:
            while True:
                next_line = asyncio.ensure_future(lines.get())
                waiting = {next_line} if backend.done() else {next_line, backend}
                await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                if backend.done() and bridge_run is None:
                    # Inline, so no line is handled while the stream changes hands.
                    bridge_run = await self._attach(backend.result())
                if not next_line.done():
                    next_line.cancel()
                    continue
                line = next_line.result()
                if line is None:
                    break
                await self._handle_safely(line)
            if bridge_run is None and any(q.blocks or q.answer for q in self.pending):
                # The client sent requests not answered yet, then closed its input:
                # answer them before leaving.
                bridge_run = await self._attach(await backend)
        except HomeUnusable as exc:
            for queued in self.pending:  # the host is told why, not left waiting
                with contextlib.suppress(Exception):
                    request_id = json.loads(queued.line).get("id")
                    if _is_id(request_id):
                        self.write(error_frame(request_id, INTERNAL_ERROR, str(exc)))
            print(f"claudine: error: {exc}", file=sys.stderr, flush=True)
            return EXIT_BAD_HOME
        except Exception:
            log.exception("the headless server failed")
            return 1
        finally:
            await self._shutdown(backend, bridge_run)
        return 0

    async def _handle_safely(self, line: bytes | TooLong) -> None:
        """Handle one line; whatever goes wrong costs that line an error reply, not the run."""
        try:
            if isinstance(line, TooLong):
                log.info("refused a message of %d bytes", line.size)
                self.write(error_frame(recover_id(line.head.decode("utf-8", "replace")),
                                       INVALID_REQUEST,
                                       f"Invalid Request: the message is {line.size:,} bytes "
                                       f"long; the limit is {MAX_FRAME_BYTES:,}"))
                return
            await self._handle(line)
        except Exception as exc:
            log.exception("could not handle a message")
            with contextlib.suppress(OSError):  # the host may be gone
                self.write(error_frame(recover_id(line.decode("utf-8", "replace"))
                                       if isinstance(line, bytes) else None,
                                       INTERNAL_ERROR, f"Internal error: {exc}; see the "
                                       "server's stderr"))

    async def _handle(self, line: bytes) -> None:
        message, rejection = screen(line)
        if rejection is not None:
            log.info("refused a message (%s): %s", "front" if self.bridge is None else "bridge",
                     rejection[:300].decode(errors="replace").rstrip())
            self.write(rejection)
            return
        if message is None:  # a blank line
            return
        if self.bridge is not None:
            await self.bridge.feed(line)
            return
        request_id = message.get("id")  # screen() let through only a valid id, or none
        params = message.get("params")
        # Only what is plainly well-formed is answered here; the rest waits for the SDK,
        # which answers it (an error, as often as not) exactly as it will later.
        plain = message.get("jsonrpc") == "2.0" and (params is None or isinstance(params, dict))
        method = message.get("method") if plain else None
        if (method == "initialize" and not self.answered_init and request_id is not None
                and isinstance(params, dict) and isinstance(params.get("protocolVersion"), str)):
            self.reply(request_id, initialize_result(params))
            self.answered_init = True
            self.replay.append(json.dumps({**message, "id": REPLAY_INIT_ID}).encode())
        elif method == "notifications/initialized" and self.answered_init and not self.pending:
            self.replay.append(line)
        elif method in ("tools/list", "ping") and self.answered_init and request_id is not None:
            result = _TOOLS_RESULT if method == "tools/list" else {}
            self._answer(line, lambda: self.reply(request_id, result), needs_engine=False)
        elif (method == "tools/call" and self.answered_init and request_id is not None
              and (call := front_call(params)) is not None and not self.waiting_for_sdk()):
            self._answer(line, lambda: self.answer_call(request_id, *call), needs_engine=True)
        else:
            notification = isinstance(method, str) and "id" not in message
            self.pending.append(Queued(line, blocks=not notification))

    def _answer(self, line: bytes, answer: Callable[[], None], *, needs_engine: bool) -> None:
        """Answer now, or once the engine has started if it needs it or a call waits for it."""
        if self.service is None and (needs_engine or any(q.answer for q in self.pending)):
            self.pending.append(Queued(line, answer, blocks=False))
        else:
            answer()

    def waiting_for_sdk(self) -> bool:
        """Whether a line read earlier waits for the SDK server (later calls wait too)."""
        return any(queued.blocks for queued in self.pending)

    def answer_call(self, request_id: Any, name: str, arguments: dict[str, Any] | None) -> None:
        assert self.service is not None
        self.reply(request_id, tool_call_result(self.service, name, arguments))
        log.debug("the front answered tools/call %s (id %r)", name, request_id)

    def _serve_queued_calls(self) -> None:
        """The engine has started: answer the requests that waited for it, in order.

        No line that waits for the SDK is ahead of a queued call (a call is queued for
        the front only when none is), and a ping or tools/list jumps such lines anyway.
        """
        queued, self.pending = self.pending, []
        for entry in queued:
            if entry.answer is not None:
                try:
                    entry.answer()
                except Exception:  # the host gone, as a rule: the next read will tell
                    log.exception("could not answer a queued request")
            else:
                self.pending.append(entry)

    async def _start_backend(self, engine_ready: asyncio.Future[Any],
                             sdk_ready: asyncio.Future[Any]) -> Any:
        try:
            engine_module = await engine_ready
            self.engine = engine_module.Engine(self.config, kind="mcp")
            await self.engine.start()
        except (OSError, sqlite3.Error, _store_errors()) as exc:  # the home, as found now
            raise HomeUnusable(f"the engine cannot use the claudine home {self.config.home}: "
                               f"{exc}. {_HOME_ADVICE}") from exc
        finally:
            self.engine_started.set()
        log.info("headless server is the %s of %s", self.engine.role, self.config.home)
        self.service = self.engine.service
        self._serve_queued_calls()
        return await sdk_ready

    async def _attach(self, sdk_module: Any) -> asyncio.Future[None]:
        """Hand the stream to the SDK server: handshake replay, queued lines, then live."""
        server = sdk_module.build_server(self.config, engine=self.engine)
        bridge = sdk_module.StreamBridge(server, self.write)
        bridge.swallow.add(REPLAY_INIT_ID)
        run = asyncio.ensure_future(bridge.run())
        for line in [*self.replay, *(queued.line for queued in self.pending)]:
            await bridge.feed(line)
        self.replay.clear()
        self.pending.clear()
        self.bridge = bridge
        log.debug("the SDK server has taken over the stream")
        return run

    async def _shutdown(self, backend: asyncio.Future[Any],
                        bridge_run: asyncio.Future[None] | None) -> None:
        if self.bridge is not None:
            await self.bridge.close_input()
        if bridge_run is not None:
            try:
                await asyncio.wait_for(bridge_run, timeout=10)
            except Exception:
                log.exception("the SDK server did not stop cleanly")
        if not backend.done():
            backend.cancel()
            with contextlib.suppress(BaseException):
                await backend
        if self.engine is not None:
            await self.engine.stop()


class HomeUnusable(Exception):
    """The engine could not open its store or lock in the home (said in one line)."""


class TooLong:
    """A line over :data:`MAX_FRAME_BYTES`: its start (for the id) and its length."""

    def __init__(self, head: bytes, size: int) -> None:
        self.head = head
        self.size = size


def _read_lines(fd: int, loop: asyncio.AbstractEventLoop, lines: asyncio.Queue[Any]) -> None:
    with contextlib.suppress(Exception), os.fdopen(fd, "rb", closefd=False) as source:
        while line := source.readline(MAX_FRAME_BYTES + 1):
            item: bytes | TooLong = line
            if len(line) > MAX_FRAME_BYTES and not line.endswith(b"\n"):
                size = len(line)
                while (rest := source.readline(MAX_FRAME_BYTES)) and not rest.endswith(b"\n"):
                    size += len(rest)
                item = TooLong(line[:4096], size + len(rest.rstrip(b"\n")))
            loop.call_soon_threadsafe(lines.put_nowait, item)
    with contextlib.suppress(RuntimeError):  # the loop may be gone already
        loop.call_soon_threadsafe(lines.put_nowait, None)


def _load_backend(loop: asyncio.AbstractEventLoop, engine_ready: asyncio.Future[Any],
                  engine_started: threading.Event, sdk_ready: asyncio.Future[Any]) -> None:
    """Import the engine and the tool handlers (~0.1 s), then the SDK server (~1 s).

    The SDK's import waits until the engine has started (or failed to): two threads
    share one interpreter lock, and importing the SDK alongside would slow the engine's
    start, and so the first tool call, about twice.
    """
    try:
        engine = importlib.import_module("claudine_core.engine")
        importlib.import_module("claudine_core.mcp.handlers")
        with contextlib.suppress(ImportError):  # what Engine() would import on the loop
            importlib.import_module("claudine_core.isolation.worktrees")
    except BaseException as exc:  # reported on the loop, where the front can say so
        _settle(loop, engine_ready, exc=exc)
        return
    _settle(loop, engine_ready, value=engine)
    engine_started.wait()
    try:
        sdk = importlib.import_module("claudine_core.mcp.sdk_bridge")
    except BaseException as exc:
        _settle(loop, sdk_ready, exc=exc)
        return
    _settle(loop, sdk_ready, value=sdk)


def _settle(loop: asyncio.AbstractEventLoop, future: asyncio.Future[Any], *,
            value: Any = None, exc: BaseException | None = None) -> None:
    def apply() -> None:
        if future.done():
            return
        if exc is not None:
            future.set_exception(exc)
        else:
            future.set_result(value)

    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(apply)


def _claim_fd(fd: int, flags: int) -> int:
    """A private duplicate of ``fd`` for the wire; ``fd`` itself is diverted.

    stdin becomes /dev/null and stdout becomes stderr, so nothing else in the process
    (or its children) can read protocol input or write into the protocol output.
    """
    private = os.dup(fd)
    os.set_inheritable(private, False)
    diversion = os.open(os.devnull, flags) if fd == 0 else os.dup(2)
    os.dup2(diversion, fd)
    os.close(diversion)
    return private


def _configure_logging(config: Config) -> None:
    level = {"warn": "WARNING"}.get(config.log_level, config.log_level.upper())
    logging.basicConfig(level=level, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")


# -- screening: what the SDK would drop in silence gets an answer ----------------------------

def screen(line: bytes) -> tuple[dict[str, Any] | None, bytes | None]:
    """``(message, None)`` for a line to serve, ``(None, reply)`` for one to refuse.

    ``(None, None)`` is a blank line. The message is the parsed JSON object: it is still
    to be validated as JSON-RPC by the SDK (which :class:`StreamBridge` answers for).
    """
    if not line.strip():
        return None, None
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, error_frame(
            recover_id(line.decode("utf-8", "replace")), PARSE_ERROR,
            f"Parse error: the message is not UTF-8 text (byte 0x{line[exc.start]:02x} at "
            f"offset {exc.start}); send JSON encoded as UTF-8")
    try:
        message = json.loads(text, parse_constant=_not_json)
    except RecursionError:
        return None, error_frame(recover_id(text), PARSE_ERROR,
                                 "Parse error: the JSON is nested too deeply")
    except ValueError as exc:
        return None, error_frame(recover_id(text), PARSE_ERROR,
                                 f"Parse error: {_first_sentence(exc)}")
    if not isinstance(message, dict):
        batch = " (batches are not supported)" if isinstance(message, list) else ""
        return None, error_frame(None, INVALID_REQUEST,
                                 f"Invalid Request: a message is a JSON object{batch}")
    if _deeper_than(message, MAX_DEPTH):
        return None, error_frame(None if _is_response(message) else message.get("id"),
                                 PARSE_ERROR, f"Parse error: the JSON is nested too deeply "
                                 f"(over {MAX_DEPTH} levels)")
    request_id = message.get("id")
    if "id" in message and not _is_id(request_id):
        return None, error_frame(None, INVALID_REQUEST,
                                 "Invalid Request: the id must be a string (of valid "
                                 "Unicode) or an integer")
    reply_id = None if _is_response(message) else request_id
    where = _lone_surrogate(message) if ("\\ud" in text or "\\uD" in text) else None
    if where is not None:
        if (message.get("method") == "tools/call" and reply_id is not None
                and where[:2] == ["params", "arguments"] and isinstance(message["params"], dict)):
            try:
                check_arguments(message["params"].get("name"), message["params"]["arguments"])
            except ToolInputError as exc:
                return None, _frame({"jsonrpc": "2.0", "id": reply_id, "result": {
                    "content": [{"type": "text", "text": str(exc)}], "isError": True}})
        code = INVALID_PARAMS if where[:1] == ["params"] else INVALID_REQUEST
        kind = "Invalid params" if code == INVALID_PARAMS else "Invalid Request"
        return None, error_frame(
            reply_id, code,
            f"{kind}: {_path(where)} is not valid Unicode: it holds a lone UTF-16 surrogate; "
            "send text as UTF-8 (a character outside the BMP as a surrogate pair)")
    return message, None


def error_frame(request_id: Any, code: int, message: str) -> bytes:
    """A JSON-RPC error response, as one line."""
    return _frame({"jsonrpc": "2.0", "id": request_id if _is_id(request_id) else None,
                   "error": {"code": code, "message": message}})


_STRUCTURE = re.compile(r'[\\"{}\[\]:,]')
_SCALAR = json.JSONDecoder()
_MAX_SCAN = 1_000_000  # structural characters looked at for an id; past that, none is found


def recover_id(text: str) -> str | int | None:
    """The id of a request that could not be parsed, if its top level shows one.

    Reads JSON-ish text, however broken (cut short, nested too deep, not UTF-8), as far
    as its structure allows. A response (``result`` or ``error`` and no ``method``) gets
    no id: the client might take the answer for one to a request of its own.
    """
    depth, in_string, escaped_at, string_start = 0, False, -1, 0
    key_next, key, found, keys = False, None, None, set()
    for count, match in enumerate(_STRUCTURE.finditer(text)):
        if count > _MAX_SCAN:
            return None
        pos = match.start()
        char = text[pos]
        if in_string:
            if pos == escaped_at:
                continue
            if char == "\\":
                escaped_at = pos + 1
            elif char == '"':
                in_string = False
                if key_next:
                    key, key_next = text[string_start + 1:pos], False
            continue
        if char == '"':
            in_string, string_start = True, pos
        elif char in "{[":
            depth += 1
            key_next = depth == 1 and char == "{"
        elif char in "}]":
            depth -= 1
            if depth <= 0:
                break
        elif char == ",":
            key_next = depth == 1
        elif char == ":" and depth == 1 and key is not None:
            if key == "id":
                found = _scalar_at(text, pos + 1)
            keys.add(key)
            key = None
    return None if _is_response(keys) or not _is_id(found) else found


def _scalar_at(text: str, pos: int) -> Any:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    if pos >= len(text) or text[pos] not in '"-0123456789':
        return None  # an object or array is no id (and is not parsed: it may be deep)
    try:
        return _SCALAR.raw_decode(text, pos)[0]
    except (ValueError, RecursionError):
        return None


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether arrays and objects nest more than ``limit`` deep in ``value``."""
    level: list[Any] = [value]
    for _ in range(limit):
        level = [item for node in level if isinstance(node, (dict, list))
                 for item in (node.values() if isinstance(node, dict) else node)]
        if not level:
            return False
    return any(isinstance(node, (dict, list)) for node in level)


def _is_response(keys: Any) -> bool:
    return "method" not in keys and ("result" in keys or "error" in keys)


def _is_id(value: Any) -> bool:
    """A JSON-RPC id MCP allows (a string or an integer) that can be sent back as it came."""
    if isinstance(value, str):
        return _is_unicode(value)
    return isinstance(value, int) and not isinstance(value, bool)


def _lone_surrogate(message: dict[str, Any]) -> list[str | int] | None:
    """Where in ``message`` a string (a key or a value) holds a lone surrogate, if anywhere."""
    todo: list[tuple[list[str | int], Any]] = [([], message)]
    while todo:
        path, value = todo.pop()
        if isinstance(value, str):
            if not _is_unicode(value):
                return path
        elif isinstance(value, dict):
            for key, item in value.items():
                if not _is_unicode(key):
                    return [*path, key]
                todo.append(([*path, key], item))
        elif isinstance(value, list):
            todo.extend(([*path, index], item) for index, item in enumerate(value))
    return None


def _is_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _path(where: list[str | int]) -> str:
    parts = [f"[{part}]" if isinstance(part, int) else
             f".{part}" if _is_unicode(part) and part.isidentifier() else f"[{ascii(part)}]"
             for part in where]
    return "the message" if not parts else "".join(parts).lstrip(".")


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not a JSON value")


def _first_sentence(exc: Exception) -> str:
    return str(exc).split(";")[0][:200]


def _frame(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode() + b"\n"


# -- the home ---------------------------------------------------------------------------------

_HOME_ADVICE = ("Point CLAUDINE_HOME at a directory this user can write (or fix the "
                "permissions of this one) and start the server again.")


def home_problem(home: Path) -> str | None:
    """Why the engine could not keep its store and lock in ``home``, in a sentence; or None.

    Checked before the first answer, so a host sees the server exit with the reason
    rather than a handshake followed by a dead server. A real file is written and
    removed: permission bits say nothing when running as root, and a read-only mount
    or a file in the way only shows when something tries.
    """
    try:
        home.mkdir(mode=0o700, parents=True, exist_ok=True)
        probe, name = tempfile.mkstemp(prefix=".write-test-", dir=home)
        os.close(probe)
        os.unlink(name)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        where = f" ({exc.filename})" if exc.filename and str(exc.filename) != str(home) else ""
        return f"the claudine home {home} is not usable: {reason}{where}. {_HOME_ADVICE}"
    return None


def _store_errors() -> type[Exception]:
    """The store's error class, without importing the store before it is needed."""
    store = sys.modules.get("claudine_core.store")
    return getattr(store, "StoreError", OSError) if store is not None else OSError
