"""``tools/call`` on either path: which calls the fast front may take, and the one answer.

The fast front and the SDK server answer a tool call through the same function,
:func:`tool_call_result`, so a call gets the same answer whichever path it took
(tests/mcp/test_fast_front.py runs every tool both ways). The front takes only calls of
the plain shape the SDK takes as it is (:func:`front_call`); the rest waits for the SDK.

Standard library only at import time: the handlers (and with them the service and the
store) are imported on the first call, by which time the engine has loaded them.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from claudine_core.mcp.frames import is_id

if TYPE_CHECKING:
    from claudine_core.service import TaskService

log = logging.getLogger("claudine.mcp")

_CALL_PARAMS = frozenset({"name", "arguments", "_meta"})
_RESERVED_META = "io.modelcontextprotocol/"  # the 2026 envelope, refused on this connection


def tool_call_result(service: TaskService, name: str,
                     arguments: dict[str, Any] | None) -> dict[str, Any]:
    """Run a tool and give its ``tools/call`` result as it goes on the wire.

    The one encoding of a tool's answer, for both paths: the front sends this dictionary
    as it is, the SDK server validates it into its ``CallToolResult``. ``content`` is the
    text for the model, ``structuredContent`` is there only when the tool has one (an
    error has none, see handlers.ToolOutcome), ``isError`` always.
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
        if "progressToken" in meta and not (isinstance(token, str) or is_id(token)):
            return None
    return name, arguments
