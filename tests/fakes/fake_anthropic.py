#!/usr/bin/env python3
"""A fake Anthropic Messages API on 127.0.0.1 that the REAL `claude` CLI can talk to.

Point the CLI at it with ``ANTHROPIC_BASE_URL=<url>`` (see ``tests/conftest.py``'s
``real_claude_env``). The reply is scripted by directives in the text of the prompt: the latest
human-written user message of the conversation (for a ``claude -p`` run the first user message;
after ``--resume`` the new prompt, so follow-up turns can be scripted too). The CLI wraps the
prompt in content blocks, sometimes next to ``<system-reminder>`` blocks, so every text block of
that message is searched:

- no directive: text ``FAKE_DONE: <first 40 chars of prompt>``, ``end_turn``.
- ``BASH: <command>`` (to end of line): text + ``tool_use`` Bash ``{command, description}``;
  once the ``tool_result`` comes back: text ``FAKE_DONE: <tool result, first 200 chars>``.
- ``TOOL: <name> <json input>``: a ``tool_use`` of any tool (e.g. an MCP tool
  ``mcp__claudine__DelegateTask {"prompt": "hi"}``), then ``FAKE_DONE: <result text>``.
  Several ``BASH:``/``TOOL:`` lines run one per model turn, in order of appearance.
- ``API_ERROR: <status>``: answer with that HTTP status and an Anthropic error JSON body.
  ``API_ERROR: <status> times=N`` fails only the first N requests of that prompt, then
  answers normally (to exercise the CLI's retries / ``api_retry`` lines).
- ``SLOW: <seconds>``: wait that long before answering each request (a slow model, used to
  measure an idle CLI and to test killing a busy agent). ``stop()`` cuts the wait short.
- ``USAGE_LIMIT: <seconds>``: the whole server becomes "limited", as a subscription account
  does, until (time of this request + seconds): every ``/v1/messages`` request, whatever its
  prompt (resumed conversations too), is answered 429 with the subscription's
  ``anthropic-ratelimit-unified-*`` headers (status ``rejected``, ``reset`` = that moment
  rounded up to a whole epoch second, claim ``five_hour``) and ``retry-after`` = seconds
  left; after that moment requests are answered normally again. The real CLI shows this
  only when it runs with an OAuth token (``CLAUDE_CODE_OAUTH_TOKEN``), see
  ``docs/claude-usage-limits.md``.
- ``RATE_LIMIT: <seconds>``: the same, shaped as an API-key rate limit: 429
  ``rate_limit_error`` with ``retry-after`` and the ``anthropic-ratelimit-{requests,tokens,
  input-tokens,output-tokens}-{limit,remaining,reset}`` headers (reset in RFC 3339).

  A limit directive arms the limit only the first time its prompt (the current human turn)
  is seen, so the CLI's retries and later runs that repeat the prompt do not extend it.
  Tests can also call ``limit_until(epoch, kind="usage"|"rate")`` and ``clear_limit()``.
- ``USAGE_WARNING: <utilization>`` (e.g. ``0.95``): the answers to that prompt carry the
  subscription's warning headers (``unified-status: allowed_warning``, claim ``five_hour``,
  ``-5h-utilization``, ``-5h-surpassed-threshold: 0.9``, one reset 3 h after the server
  started), which the real CLI reports as a ``rate_limit_event`` with status
  ``allowed_warning`` (OAuth token only).

Use it in tests as a context manager::

    with FakeAnthropic() as api:
        env["ANTHROPIC_BASE_URL"] = api.url
        ...
        assert api.requests[0]["path"].startswith("/v1/messages")

Each recorded request is ``{"method", "path", "headers", "body", "time"}`` (``time``: epoch
seconds when it arrived).

or stand-alone (benchmarks, tmux tests): ``python tests/fakes/fake_anthropic.py --port 0``
prints the URL on one line and serves until killed.

Stdlib only, so it starts fast and needs nothing installed.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import re
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# Directive patterns. MULTILINE so "BASH:" must start a line or follow whitespace; the command
# runs to the end of its line so prompts can hold several directives.
_BASH_RE = re.compile(r"BASH:[ \t]*(?P<cmd>[^\n]+)")
_TOOL_RE = re.compile(r"TOOL:[ \t]*(?P<name>[A-Za-z0-9_\-]+)[ \t]*(?P<input>\{[^\n]*\})?")
_API_ERROR_RE = re.compile(r"API_ERROR:[ \t]*(?P<status>\d{3})(?:[ \t]+times=(?P<times>\d+))?")
_SLOW_RE = re.compile(r"SLOW:[ \t]*(?P<secs>\d+(?:\.\d+)?)")
_LIMIT_RE = re.compile(r"(?P<kind>USAGE|RATE)_LIMIT:[ \t]*(?P<secs>\d+(?:\.\d+)?)")
_WARNING_RE = re.compile(r"USAGE_WARNING:[ \t]*(?P<util>\d+(?:\.\d+)?)")

# Anthropic error "type" per HTTP status, so the CLI classifies errors as with the real API.
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}

DEFAULT_MODEL = "claude-opus-4-8"


@dataclass
class _Step:
    """One tool call the fake model will make (one model turn)."""

    name: str
    input: dict[str, Any]


@dataclass
class _Script:
    """What a prompt asks the fake model to do, parsed once per request."""

    prompt: str
    steps: list[_Step] = field(default_factory=list)
    error_status: int | None = None
    error_times: int | None = None  # None = fail every time
    slow_secs: float = 0.0
    limit_kind: str | None = None  # "usage" (USAGE_LIMIT) or "rate" (RATE_LIMIT)
    limit_secs: float = 0.0
    warning_utilization: float | None = None  # USAGE_WARNING


@dataclass(frozen=True)
class Limit:
    """The server-wide limit in force: every message request is refused until ``until``."""

    until: float  # epoch seconds
    kind: str  # "usage": subscription usage limit; "rate": API-key rate limit


def _limit_headers(limit: Limit, now: float) -> dict[str, str]:
    """The headers the real API sends with a 429 of that kind (names as measured with the
    CLI; values shaped like the real ones)."""
    reset_epoch = math.ceil(limit.until)
    headers = {"retry-after": str(max(0, math.ceil(limit.until - now)))}
    if limit.kind == "usage":
        headers.update(
            {
                "anthropic-ratelimit-unified-status": "rejected",
                "anthropic-ratelimit-unified-reset": str(reset_epoch),
                "anthropic-ratelimit-unified-representative-claim": "five_hour",
                "anthropic-ratelimit-unified-5h-status": "rejected",
                "anthropic-ratelimit-unified-5h-reset": str(reset_epoch),
                "anthropic-ratelimit-unified-5h-utilization": "1.0",
            }
        )
    else:
        reset_text = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(reset_epoch))
        for bucket in ("requests", "tokens", "input-tokens", "output-tokens"):
            headers[f"anthropic-ratelimit-{bucket}-limit"] = "50"
            headers[f"anthropic-ratelimit-{bucket}-remaining"] = "0"
            headers[f"anthropic-ratelimit-{bucket}-reset"] = reset_text
    return headers


def _warning_headers(utilization: float, reset_epoch: int) -> dict[str, str]:
    """A subscription answer that is allowed but close to the five-hour limit."""
    return {
        "anthropic-ratelimit-unified-status": "allowed_warning",
        "anthropic-ratelimit-unified-reset": str(reset_epoch),
        "anthropic-ratelimit-unified-representative-claim": "five_hour",
        "anthropic-ratelimit-unified-5h-status": "allowed_warning",
        "anthropic-ratelimit-unified-5h-reset": str(reset_epoch),
        "anthropic-ratelimit-unified-5h-utilization": str(utilization),
        "anthropic-ratelimit-unified-5h-surpassed-threshold": "0.9",
    }


def _limit_error_body(kind: str) -> dict[str, Any]:
    message = (
        "You have reached your usage limit."  # not shown by the CLI, which writes its own text
        if kind == "usage"
        else "Number of request tokens has exceeded your per-minute rate limit"
    )
    return {"type": "error", "error": {"type": "rate_limit_error", "message": message}}


def _text_of(content: Any) -> str:
    """Concatenate the text of a message ``content`` (a string or a list of blocks)."""
    if isinstance(content, str):
        return content
    parts: list[str] = []
    if isinstance(content, list):
        for block in content:
            if not isinstance(block, dict):
                continue
            if block.get("type") == "text":
                parts.append(str(block.get("text", "")))
            elif block.get("type") == "tool_result":
                parts.append(_text_of(block.get("content", "")))
    return "\n".join(parts)


def _is_human_turn(msg: dict[str, Any]) -> bool:
    """A user message typed by the human (the prompt), not one carrying tool results."""
    if msg.get("role") != "user":
        return False
    content = msg.get("content", "")
    if isinstance(content, str):
        return True
    return isinstance(content, list) and not any(
        isinstance(b, dict) and b.get("type") == "tool_result" for b in content
    )


def _current_turn(messages: list[dict[str, Any]]) -> tuple[dict[str, Any] | None, int]:
    """The latest human message and its index. For a plain ``-p`` run that is the first user
    message; after ``--resume`` it is the new prompt, so follow-up turns can carry directives."""
    for index in range(len(messages) - 1, -1, -1):
        if _is_human_turn(messages[index]):
            return messages[index], index
    return None, len(messages)


def _prompt_text(msg: dict[str, Any] | None) -> str:
    """The prompt's text with CLI-injected ``<system-reminder>`` blocks left out."""
    if msg is None:
        return ""
    content = msg.get("content", "")
    if isinstance(content, str):
        return content
    texts = [
        str(b.get("text", "")) for b in content if isinstance(b, dict) and b.get("type") == "text"
    ]
    plain = [t for t in texts if not t.lstrip().startswith("<system-reminder>")]
    return "\n".join(plain or texts)


def _parse_script(messages: list[dict[str, Any]]) -> _Script:
    msg, _ = _current_turn(messages)
    prompt = _prompt_text(msg)
    # Directives are searched in every text block (reminders included) in case the CLI ever
    # moves the prompt into a reminder-wrapped block.
    haystack = _text_of(msg.get("content", "")) if msg is not None else ""
    script = _Script(prompt=prompt)
    # Tool steps in order of appearance, whichever kind they are.
    found: list[tuple[int, _Step]] = []
    for m in _BASH_RE.finditer(haystack):
        cmd = m.group("cmd").strip()
        found.append((m.start(), _Step("Bash", {"command": cmd, "description": "fake bash"})))
    for m in _TOOL_RE.finditer(haystack):
        raw = m.group("input") or "{}"
        try:
            tool_input = json.loads(raw)
        except json.JSONDecodeError:
            tool_input = {"raw": raw}
        found.append((m.start(), _Step(m.group("name"), tool_input)))
    script.steps = [step for _, step in sorted(found, key=lambda pair: pair[0])]
    if m_err := _API_ERROR_RE.search(haystack):
        script.error_status = int(m_err.group("status"))
        script.error_times = int(m_err.group("times")) if m_err.group("times") else None
    if m_slow := _SLOW_RE.search(haystack):
        script.slow_secs = float(m_slow.group("secs"))
    if m_limit := _LIMIT_RE.search(haystack):
        script.limit_kind = m_limit.group("kind").lower()
        script.limit_secs = float(m_limit.group("secs"))
    if m_warning := _WARNING_RE.search(haystack):
        script.warning_utilization = float(m_warning.group("util"))
    return script


def _tool_results_so_far(messages: list[dict[str, Any]]) -> list[str]:
    """Texts of the tool_result blocks since the latest human turn, oldest first."""
    _, start = _current_turn(messages)
    results: list[str] = []
    for msg in messages[start + 1 :]:
        content = msg.get("content")
        if msg.get("role") != "user" or not isinstance(content, list):
            continue
        for block in content:
            if isinstance(block, dict) and block.get("type") == "tool_result":
                results.append(_text_of(block.get("content", "")))
    return results


def _last_message_has_tool_result(messages: list[dict[str, Any]]) -> bool:
    if not messages:
        return False
    content = messages[-1].get("content")
    return isinstance(content, list) and any(
        isinstance(b, dict) and b.get("type") == "tool_result" for b in content
    )


class FakeAnthropic:
    """A scripted Messages API server in a background thread, bound to 127.0.0.1."""

    def __init__(self, port: int = 0, host: str = "127.0.0.1") -> None:
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._error_counts: dict[str, int] = {}
        self._limit: Limit | None = None
        self._limit_prompts: set[str] = set()  # prompts whose limit directive has armed it
        # One reset for every warning, so the CLI sees one state (one rate_limit_event).
        self.warning_reset = math.ceil(time.time() + 3 * 3600)
        # Set on stop() so SLOW waits end at once instead of holding the test up.
        self._stopping = threading.Event()
        self._server = ThreadingHTTPServer((host, port), self._make_handler())
        # Daemon threads and no join on close: a client that never reads (or a SLOW reply)
        # must not make stop() hang.
        self._server.daemon_threads = True
        self._server.block_on_close = False
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------------
    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeAnthropic:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                # Short poll so stop() (shutdown) returns in ~50 ms: fixtures stop it per test.
                kwargs={"poll_interval": 0.05},
                name="fake-anthropic",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> FakeAnthropic:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- helpers for tests --------------------------------------------------------------
    def next_id(self, prefix: str) -> str:
        with self._lock:
            return f"{prefix}_fake{next(self._ids):08d}"

    def message_requests(self) -> list[dict[str, Any]]:
        """Recorded ``POST /v1/messages`` bodies (not count_tokens), oldest first."""
        with self._lock:
            return [
                r["body"]
                for r in self.requests
                if r["method"] == "POST"
                and r["path"].split("?")[0] == "/v1/messages"
                and isinstance(r["body"], dict)
            ]

    def limit_until(self, until: float, kind: str = "usage") -> None:
        """Refuse every message request until epoch ``until`` (``kind``: "usage" for the
        subscription's usage limit, "rate" for an API-key rate limit)."""
        if kind not in ("usage", "rate"):
            raise ValueError(f"unknown limit kind {kind!r}")
        with self._lock:
            self._limit = Limit(until, kind)

    def clear_limit(self) -> None:
        """Answer normally again at once."""
        with self._lock:
            self._limit = None

    def current_limit(self, now: float | None = None) -> Limit | None:
        """The limit in force at ``now`` (default: the current time), or None."""
        now = time.time() if now is None else now
        with self._lock:
            if self._limit is not None and now < self._limit.until:
                return self._limit
            return None

    def _arm_limit(self, script: _Script, now: float) -> None:
        """A limit directive sets the limit the first time its prompt is seen only."""
        if script.limit_kind is None:
            return
        with self._lock:
            if script.prompt in self._limit_prompts:
                return
            self._limit_prompts.add(script.prompt)
            self._limit = Limit(now + script.limit_secs, script.limit_kind)

    def _record(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self.requests.append(entry)

    def _should_fail(self, script: _Script) -> bool:
        if script.error_status is None:
            return False
        if script.error_times is None:
            return True
        with self._lock:
            done = self._error_counts.get(script.prompt, 0)
            self._error_counts[script.prompt] = done + 1
        return done < script.error_times

    # -- reply building -----------------------------------------------------------------
    def plan_reply(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        """The content blocks of the next assistant message for this request."""
        messages = body.get("messages") or []
        script = _parse_script(messages)
        results = _tool_results_so_far(messages)
        turn = len(results)
        if turn < len(script.steps) and (turn == 0 or _last_message_has_tool_result(messages)):
            step = script.steps[turn]
            return [
                {"type": "text", "text": "Running the requested tool."},
                {
                    "type": "tool_use",
                    "id": self.next_id("toolu"),
                    "name": step.name,
                    "input": step.input,
                },
            ]
        if results:
            return [{"type": "text", "text": f"FAKE_DONE: {results[-1][:200]}"}]
        return [{"type": "text", "text": f"FAKE_DONE: {script.prompt[:40]}"}]

    def _make_handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            # HTTP/1.1 so the CLI can keep connections alive; SSE bodies use chunked encoding.
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass  # keep test output clean

            # ---- plumbing
            def _read_body(self) -> Any:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                if not raw:
                    return None
                try:
                    return json.loads(raw)
                except json.JSONDecodeError:
                    return raw.decode("utf-8", "replace")

            def _record(self, body: Any) -> None:
                fake._record(
                    {
                        "method": self.command,
                        "path": self.path,
                        "headers": dict(self.headers.items()),
                        "body": body,
                        "time": time.time(),
                    }
                )

            def _send_json(
                self, status: int, obj: Any, extra: dict[str, str] | None = None
            ) -> None:
                data = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("request-id", fake.next_id("req"))
                for key, value in (extra or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            # ---- verbs
            def do_HEAD(self) -> None:  # noqa: N802 - http.server naming
                self._record(None)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_GET(self) -> None:  # noqa: N802
                self._record(None)
                path = self.path.split("?")[0]
                if path == "/v1/models":
                    self._send_json(
                        200,
                        {
                            "data": [
                                {
                                    "type": "model",
                                    "id": DEFAULT_MODEL,
                                    "display_name": "Fake Opus",
                                    "created_at": "2025-01-01T00:00:00Z",
                                }
                            ],
                            "has_more": False,
                            "first_id": DEFAULT_MODEL,
                            "last_id": DEFAULT_MODEL,
                        },
                    )
                else:
                    self._send_json(200, {})

            def do_POST(self) -> None:  # noqa: N802
                body = self._read_body()
                self._record(body)
                path = self.path.split("?")[0]
                if path == "/v1/messages/count_tokens":
                    size = len(json.dumps(body)) if body is not None else 0
                    self._send_json(200, {"input_tokens": max(1, size // 4)})
                    return
                if path != "/v1/messages" or not isinstance(body, dict):
                    self._send_json(
                        404,
                        {
                            "type": "error",
                            "error": {"type": "not_found_error", "message": "fake: no route"},
                        },
                    )
                    return
                script = _parse_script(body.get("messages") or [])
                now = time.time()
                fake._arm_limit(script, now)
                if limit := fake.current_limit(now):
                    self._send_json(429, _limit_error_body(limit.kind), _limit_headers(limit, now))
                    return
                if script.slow_secs and fake._stopping.wait(script.slow_secs):
                    return  # server stopping: drop the connection
                if fake._should_fail(script):
                    status = script.error_status or 500
                    self._send_json(
                        status,
                        {
                            "type": "error",
                            "error": {
                                "type": _ERROR_TYPES.get(status, "api_error"),
                                "message": f"fake API_ERROR {status}",
                            },
                        },
                        # The CLI honours retry-after; keep retries instant in tests.
                        {"retry-after": "0"},
                    )
                    return
                blocks = fake.plan_reply(body)
                model = str(body.get("model") or DEFAULT_MODEL)
                input_tokens = max(1, len(json.dumps(body.get("messages", []))) // 4)
                stop_reason = (
                    "tool_use" if any(b["type"] == "tool_use" for b in blocks) else "end_turn"
                )
                output_tokens = max(1, len(json.dumps(blocks)) // 4)
                msg_id = fake.next_id("msg")
                headers = (
                    {}
                    if script.warning_utilization is None
                    else _warning_headers(script.warning_utilization, fake.warning_reset)
                )
                if body.get("stream"):
                    self._send_sse(
                        msg_id, model, blocks, stop_reason, input_tokens, output_tokens, headers
                    )
                else:
                    self._send_json(
                        200,
                        {
                            "id": msg_id,
                            "type": "message",
                            "role": "assistant",
                            "model": model,
                            "content": blocks,
                            "stop_reason": stop_reason,
                            "stop_sequence": None,
                            "usage": {
                                "input_tokens": input_tokens,
                                "output_tokens": output_tokens,
                                "cache_creation_input_tokens": 0,
                                "cache_read_input_tokens": 0,
                            },
                        },
                        headers,
                    )

            def _send_sse(
                self,
                msg_id: str,
                model: str,
                blocks: list[dict[str, Any]],
                stop_reason: str,
                input_tokens: int,
                output_tokens: int,
                extra: dict[str, str],
            ) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.send_header("Transfer-Encoding", "chunked")
                self.send_header("request-id", fake.next_id("req"))
                for key, value in extra.items():
                    self.send_header(key, value)
                self.end_headers()

                def event(name: str, data: dict[str, Any]) -> None:
                    payload = f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()
                    self.wfile.write(f"{len(payload):x}\r\n".encode() + payload + b"\r\n")
                    self.wfile.flush()

                usage0 = {
                    "input_tokens": input_tokens,
                    "output_tokens": 1,
                    "cache_creation_input_tokens": 0,
                    "cache_read_input_tokens": 0,
                }
                event(
                    "message_start",
                    {
                        "type": "message_start",
                        "message": {
                            "id": msg_id,
                            "type": "message",
                            "role": "assistant",
                            "model": model,
                            "content": [],
                            "stop_reason": None,
                            "stop_sequence": None,
                            "usage": usage0,
                        },
                    },
                )
                event("ping", {"type": "ping"})
                for index, block in enumerate(blocks):
                    if block["type"] == "text":
                        event(
                            "content_block_start",
                            {
                                "type": "content_block_start",
                                "index": index,
                                "content_block": {"type": "text", "text": ""},
                            },
                        )
                        text = block["text"]
                        half = len(text) // 2
                        # Two deltas so clients' delta concatenation is exercised.
                        for piece in (text[:half], text[half:]):
                            event(
                                "content_block_delta",
                                {
                                    "type": "content_block_delta",
                                    "index": index,
                                    "delta": {"type": "text_delta", "text": piece},
                                },
                            )
                    else:
                        event(
                            "content_block_start",
                            {
                                "type": "content_block_start",
                                "index": index,
                                "content_block": {
                                    "type": "tool_use",
                                    "id": block["id"],
                                    "name": block["name"],
                                    "input": {},
                                },
                            },
                        )
                        raw = json.dumps(block["input"])
                        half = len(raw) // 2
                        for piece in (raw[:half], raw[half:]):
                            event(
                                "content_block_delta",
                                {
                                    "type": "content_block_delta",
                                    "index": index,
                                    "delta": {"type": "input_json_delta", "partial_json": piece},
                                },
                            )
                    event("content_block_stop", {"type": "content_block_stop", "index": index})
                event(
                    "message_delta",
                    {
                        "type": "message_delta",
                        "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                        "usage": {"output_tokens": output_tokens},
                    },
                )
                event("message_stop", {"type": "message_stop"})
                self.wfile.write(b"0\r\n\r\n")  # end of chunked body
                self.wfile.flush()

        return Handler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Fake Anthropic Messages API on 127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 = pick a free port")
    args = parser.parse_args(argv)
    server = FakeAnthropic(port=args.port)
    print(server.url, flush=True)  # callers read this one line to learn the port
    try:
        server._server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server._server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
