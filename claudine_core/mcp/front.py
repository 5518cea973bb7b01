"""``claudine --headless``: the engine served over MCP stdio, answering in well under a second.

Claude Code starts every configured MCP server at the start of each session, so the time
from launch to the answers to ``initialize``, ``tools/list`` and the first ``tools/call``
is felt by every user. Importing the ``mcp`` SDK alone takes over a second here, so a
small front written on the standard library answers those at once and hands the stream
to the SDK server once it has loaded (docs/architecture.md, "The headless fast front";
the package's docstring says which module does what). This module is the process: the
home checked, the wire claimed, logging, the run.

Nothing but protocol reaches stdout: fd 1 is pointed at stderr for the whole run (stray
prints and child processes cannot corrupt the wire) and replies go to a private
duplicate of the original stdout. No third-party package is imported at import time;
:func:`build_server` imports the SDK when called (tests and embedders).

SIGTERM and SIGINT end the run as the end of stdin does: requests already read are
answered, the engine stops and releases the home, running agents are left to the next
owner (they outlive the engine), and the exit status is 0 (tests/mcp/test_sigterm.py).
A home the server cannot write is reported in one line on stderr before anything is
served (exit status 1, home.py). No line of input can stop the server.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from typing import TYPE_CHECKING, Any

from claudine_core.mcp.fast_front import StdioFront
from claudine_core.mcp.home import EXIT_BAD_HOME, home_problem

if TYPE_CHECKING:
    from claudine_core.config import Config
    from claudine_core.engine import Engine


def build_server(config: Config, *, engine: Engine | None = None) -> Any:
    """The SDK server (see :func:`claudine_core.mcp.sdk_bridge.build_server`); imports the SDK."""
    from claudine_core.mcp.sdk_bridge import build_server as build

    return build(config, engine=engine)


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
