"""``claudine --headless``: the engine served over MCP stdio, answering in well under a second.

Claude Code starts every configured MCP server at the start of each session, so the time
from launch to the answers to ``initialize`` and ``tools/list`` is felt by every user.
Importing the ``mcp`` SDK alone takes over a second here, so start-up is split:

1. At once, with the standard library only, a small front reads stdin and answers
   ``initialize``, ``tools/list`` and ``ping`` from the static catalogue in mcp_tools.py
   (the same dictionaries the SDK server publishes). Anything else waits in order.
2. Meanwhile a background thread imports the engine, which starts on the event loop and
   tries to own the home (else it runs as a client and keeps trying), then imports the
   SDK server (mcp_sdk.py).
3. The SDK server then takes over the same stream: the front replays the handshake to it
   (its replies are swallowed), then everything queued, then every later line.

Nothing but protocol reaches stdout: fd 1 is pointed at stderr for the whole run (stray
prints and child processes cannot corrupt the wire) and replies go to a private
duplicate of the original stdout. This module imports no third-party package at import
time; ``build_server`` is re-exported lazily for tests and embedders.

SIGTERM and SIGINT end the run as the end of stdin does: requests already read are
answered, the engine stops and releases the home, running agents are left to the next
owner (they outlive the engine), and the exit status is 0 (tests/mcp/test_sigterm.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import logging
import os
import signal
import sys
import threading
from typing import TYPE_CHECKING, Any

from claudine_core.mcp_tools import TOOLS, initialize_result

if TYPE_CHECKING:
    from claudine_core.config import Config
    from claudine_core.engine import Engine
    from claudine_core.mcp_sdk import StreamBridge

log = logging.getLogger("claudine.mcp")

REPLAY_INIT_ID = "claudine-replayed-initialize"
_TOOLS_RESULT = {"tools": TOOLS}


def build_server(config: Config, *, engine: Engine | None = None) -> Any:
    """The SDK server (see :func:`claudine_core.mcp_sdk.build_server`); imports the SDK."""
    from claudine_core.mcp_sdk import build_server as build

    return build(config, engine=engine)


def run_stdio(config: Config) -> int:
    """Serve MCP on this process's stdin/stdout until stdin closes or a signal arrives."""
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
        self.pending: list[bytes] = []  # lines only the SDK server can answer
        self.answered_init = False
        self.bridge: StreamBridge | None = None
        self.engine: Engine | None = None
        self.loader: threading.Thread | None = None

    def write(self, data: bytes) -> None:
        with self._write_lock:
            self._write(data)

    def reply(self, request_id: Any, result: dict[str, Any]) -> None:
        self.write(json.dumps({"jsonrpc": "2.0", "id": request_id, "result": result},
                              separators=(",", ":")).encode() + b"\n")

    async def serve(self, wire_in: int) -> int:
        loop = asyncio.get_running_loop()
        lines: asyncio.Queue[bytes | None] = asyncio.Queue()
        threading.Thread(target=_read_lines, args=(wire_in, loop, lines), daemon=True,
                         name="claudine-mcp-stdin").start()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, lines.put_nowait, None)
        engine_ready: asyncio.Future[Any] = loop.create_future()
        sdk_ready: asyncio.Future[Any] = loop.create_future()
        self.loader = threading.Thread(target=_load_backend,
                                       args=(loop, engine_ready, sdk_ready), daemon=True,
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
                await self._handle(line)
            if bridge_run is None and self.pending:
                # The client sent requests only the SDK server answers, then closed its
                # input: answer them before leaving.
                bridge_run = await self._attach(await backend)
        except Exception:
            log.exception("the headless server failed")
            return 1
        finally:
            await self._shutdown(backend, bridge_run)
        return 0

    async def _handle(self, line: bytes) -> None:
        if not line.strip():
            return
        if self.bridge is not None:
            await self.bridge.feed(line)
            return
        try:
            message = json.loads(line)
        except ValueError:
            message = None
        method = message.get("method") if isinstance(message, dict) else None
        request_id = message.get("id") if isinstance(message, dict) else None
        if method == "initialize" and not self.answered_init and request_id is not None:
            self.reply(request_id, initialize_result(message.get("params")))
            self.answered_init = True
            self.replay.append(json.dumps({**message, "id": REPLAY_INIT_ID}).encode())
        elif method == "notifications/initialized" and self.answered_init and not self.pending:
            self.replay.append(line)
        elif method in ("tools/list", "ping") and self.answered_init and request_id is not None:
            self.reply(request_id, _TOOLS_RESULT if method == "tools/list" else {})
        else:
            self.pending.append(line)

    async def _start_backend(self, engine_ready: asyncio.Future[Any],
                             sdk_ready: asyncio.Future[Any]) -> Any:
        engine_module = await engine_ready
        self.engine = engine_module.Engine(self.config, kind="mcp")
        await self.engine.start()
        log.info("headless server is the %s of %s", self.engine.role, self.config.home)
        return await sdk_ready

    async def _attach(self, sdk_module: Any) -> asyncio.Future[None]:
        """Hand the stream to the SDK server: handshake replay, queued lines, then live."""
        server = sdk_module.build_server(self.config, engine=self.engine)
        bridge = sdk_module.StreamBridge(server, self.write)
        bridge.swallow.add(REPLAY_INIT_ID)
        run = asyncio.ensure_future(bridge.run())
        for line in [*self.replay, *self.pending]:
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


def _read_lines(fd: int, loop: asyncio.AbstractEventLoop, lines: asyncio.Queue[Any]) -> None:
    with contextlib.suppress(Exception), os.fdopen(fd, "rb", closefd=False) as source:
        for line in source:
            loop.call_soon_threadsafe(lines.put_nowait, line)
    with contextlib.suppress(RuntimeError):  # the loop may be gone already
        loop.call_soon_threadsafe(lines.put_nowait, None)


def _load_backend(loop: asyncio.AbstractEventLoop, engine_ready: asyncio.Future[Any],
                  sdk_ready: asyncio.Future[Any]) -> None:
    """Import the engine (~0.1 s), then the SDK server (~1 s), settling each future."""
    for name, future in (("claudine_core.engine", engine_ready),
                         ("claudine_core.mcp_sdk", sdk_ready)):
        try:
            module: Any = importlib.import_module(name)
        except BaseException as exc:  # reported on the loop, where the front can say so
            _settle(loop, future, exc=exc)
            return
        _settle(loop, future, value=module)


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
