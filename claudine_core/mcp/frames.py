"""JSON-RPC frames as the headless server reads and writes them, with no SDK in sight.

Every line is screened here (:func:`screen`) before anything else sees it, by the fast
front and, after the hand-over, for the SDK server too: the SDK drops a frame it cannot
parse without a word, and the host would wait forever for the answer. A line that is not
UTF-8, not JSON or nested too deeply gets -32700; JSON that is no acceptable message (not
an object, a bad id, a lone UTF-16 surrogate) gets -32600 (-32602 when the surrogate is in
params); either carries the request's id when one can be read (:func:`recover_id`). A
tools/call whose arguments hold a lone surrogate gets the tool's own isError result, as
the SDK path gives for any other bad argument. What passes the screen and the SDK still
refuses is answered by the bridge (sdk_bridge.StreamBridge), with :func:`error_frame` and
:func:`recover_id` from here.

Standard library only: the fast front imports this before its first answer.
"""

from __future__ import annotations

import json
import re
from typing import Any

from claudine_core.mcp.tools import ToolInputError, check_arguments

PARSE_ERROR, INVALID_REQUEST, INVALID_PARAMS, INTERNAL_ERROR = -32700, -32600, -32602, -32603
MAX_FRAME_BYTES = 16 * 1024 * 1024
"""The longest line read as a message: six times the largest prompt, fully escaped."""
MAX_DEPTH = 64
"""The deepest nesting of arrays and objects in a message (the SDK's parser stops near 200;
no MCP message comes close to either)."""
REPLAY_INIT_ID = "claudine-replayed-initialize"
"""The id under which the front replays the client's ``initialize`` to the SDK server at
the hand-over; the bridge swallows the reply to it (the client had its answer already)."""


def screen(line: bytes) -> tuple[dict[str, Any] | None, bytes | None]:
    """``(message, None)`` for a line to serve, ``(None, reply)`` for one to refuse.

    ``(None, None)`` is a blank line. The message is the parsed JSON object: it is still
    to be validated as JSON-RPC by the SDK (which sdk_bridge.StreamBridge answers for).
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
    if "id" in message and not is_id(request_id):
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
                return None, frame({"jsonrpc": "2.0", "id": reply_id, "result": {
                    "content": [{"type": "text", "text": str(exc)}], "isError": True}})
        code = INVALID_PARAMS if where[:1] == ["params"] else INVALID_REQUEST
        kind = "Invalid params" if code == INVALID_PARAMS else "Invalid Request"
        return None, error_frame(
            reply_id, code,
            f"{kind}: {_path(where)} is not valid Unicode: it holds a lone UTF-16 surrogate; "
            "send text as UTF-8 (a character outside the BMP as a surrogate pair)")
    return message, None


def error_frame(request_id: Any, code: int, message: str) -> bytes:
    """A JSON-RPC error response, as one line (an id that cannot go back as it came: null)."""
    return frame({"jsonrpc": "2.0", "id": request_id if is_id(request_id) else None,
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
    return None if _is_response(keys) or not is_id(found) else found


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


def is_id(value: Any) -> bool:
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


def frame(payload: dict[str, Any]) -> bytes:
    """A JSON-RPC message as one line of the wire: compact JSON and a newline."""
    return json.dumps(payload, separators=(",", ":")).encode() + b"\n"
