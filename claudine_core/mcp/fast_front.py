"""The fast front: line-level MCP stdio that answers before the SDK has loaded, then hands over.

:class:`StdioFront` reads the wire line by line (after :func:`frames.screen`) and:

1. At once, from the static catalogue in tools.py (the same dictionaries the SDK server
   publishes), answers ``initialize``, ``tools/list`` and ``ping``.
2. Meanwhile a loader thread imports the engine (~0.1 s), which starts on the event loop
   and tries to own the home (else it runs as a client and keeps trying), then imports
   the SDK server (sdk_bridge.py, over a second).
3. As soon as the engine has started, answers ``tools/call`` too, through
   :func:`calls.tool_call_result`: the very function the SDK server's handler calls. It
   answers only calls of the plain shape the SDK takes as it is, and only while nothing
   sent before them waits for the SDK, so requests are answered in order; a call that
   arrives before the engine has started waits for it, and so do the ping or tools/list
   behind it.
4. Once the SDK server has loaded, hands it the same stream: replays the handshake to it
   (its replies are swallowed), then everything queued, then every later line. Anything
   else the front does not answer (other methods, odd shapes, a second ``initialize``)
   waits in that queue, and so does every tool call after it (a ping or tools/list is
   still answered at once, as before the engine was up). Notifications
   (``notifications/cancelled`` included) wait there too without holding anything up: a
   call the front answered is complete before the next line is read, so there is nothing
   to cancel, and the SDK ignores a cancellation of a request it has never seen.

Imports no third-party package: the SDK module is imported by name on the loader thread,
and only used through what it hands back.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import logging
import os
import signal
import sqlite3
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

from claudine_core.errors import ClaudineError, StoreError
from claudine_core.mcp.calls import front_call, tool_call_result
from claudine_core.mcp.frames import (
    INTERNAL_ERROR,
    INVALID_REQUEST,
    MAX_FRAME_BYTES,
    REPLAY_INIT_ID,
    error_frame,
    frame,
    is_id,
    recover_id,
    screen,
)
from claudine_core.mcp.home import EXIT_BAD_HOME, HOME_ADVICE, HomeUnusable
from claudine_core.mcp.tools import TOOLS, initialize_result

if TYPE_CHECKING:
    from claudine_core.config import Config
    from claudine_core.engine import Engine
    from claudine_core.mcp.sdk_bridge import StreamBridge
    from claudine_core.service import TaskService

log = logging.getLogger("claudine.mcp")

_TOOLS_RESULT = {"tools": TOOLS}


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
        self.write(frame({"jsonrpc": "2.0", "id": request_id, "result": result}))

    async def serve(self, wire_in: int) -> int:
        """Serve the wire until its input ends or a signal arrives; the exit status."""
        loop = asyncio.get_running_loop()
        lines = self._start_reading(wire_in, loop)
        backend = asyncio.ensure_future(self._start_backend(*self._start_loader(loop)))
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
            self._refuse_pending(str(exc))
            print(f"claudine: error: {exc}", file=sys.stderr, flush=True)
            return EXIT_BAD_HOME
        except Exception:
            log.exception("the headless server failed")
            return 1
        finally:
            await self._shutdown(backend, bridge_run)
        return 0

    def _start_reading(self, wire_in: int,
                       loop: asyncio.AbstractEventLoop) -> asyncio.Queue[bytes | TooLong | None]:
        """Lines of the wire, read on a thread; None when it ends or a signal asks to stop."""
        lines: asyncio.Queue[bytes | TooLong | None] = asyncio.Queue()
        threading.Thread(target=_read_lines, args=(wire_in, loop, lines), daemon=True,
                         name="claudine-mcp-stdin").start()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, lines.put_nowait, None)
        return lines

    def _start_loader(self, loop: asyncio.AbstractEventLoop
                      ) -> tuple[asyncio.Future[Any], asyncio.Future[Any]]:
        """Start importing the engine, then the SDK; the futures of the two modules."""
        engine_ready: asyncio.Future[Any] = loop.create_future()
        sdk_ready: asyncio.Future[Any] = loop.create_future()
        self.loader = threading.Thread(target=_load_backend,
                                       args=(loop, engine_ready, self.engine_started,
                                             sdk_ready), daemon=True,
                                       name="claudine-mcp-loader")
        self.loader.start()
        return engine_ready, sdk_ready

    def _refuse_pending(self, reason: str) -> None:
        """Answer every request still waiting with ``reason``: told why, not left waiting."""
        for queued in self.pending:
            with contextlib.suppress(Exception):
                request_id = json.loads(queued.line).get("id")
                if is_id(request_id):
                    self.write(error_frame(request_id, INTERNAL_ERROR, reason))

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
        except (OSError, sqlite3.Error, StoreError) as exc:  # the home, as found now
            raise HomeUnusable(f"the engine cannot use the claudine home {self.config.home}: "
                               f"{exc}. {HOME_ADVICE}") from exc
        except ClaudineError as exc:  # a setting this Python cannot run (backend: no ray)
            raise HomeUnusable(str(exc)) from exc
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
