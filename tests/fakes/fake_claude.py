#!/usr/bin/env python3
"""A stand-in for the `claude` CLI that claudine's tests can run by the hundred.

It takes the flags claudine passes to ``claude`` and prints stream-json lines shaped like the
real CLI's (measured on Claude Code 2.1.197, see ``tests/fakes/test_fakes.py`` which checks the
two against each other). Behaviour is scripted by ``[directive]`` tokens in the prompt, run in
order of appearance; with none it answers ``FAKE_DONE: <first 40 chars of prompt>``.

Directives::

    [sleep:SECONDS]        Bash tool_use ``sleep N``, really sleep, then its tool_result
    [text:WORDS]           an assistant text message
    [tool:NAME]            tool_use + tool_result of that tool; [tool-error:NAME] with is_error
    [write:FILE=CONTENT]   really write CONTENT (``\\n`` = newline) to FILE (relative to cwd)
    [fail]                 API error 400: synthetic "API Error" message, is_error result, exit 1
    [api-error:STATUS]     the same with that HTTP status
    [api-retry:N]          N ``system/api_retry`` lines
    [overloaded]           the main model is overloaded (529): with ``--fallback-model M``,
                           two ``api_retry`` lines then the real ``system/model_fallback``
                           line (trigger ``overloaded``) and the rest of the run answers as
                           M; without it, like [api-error:529]
    [api-error-once:S:PATH] [api-error:S] only while PATH does not exist (then creates it)
    [usage-limit:SECONDS]  the subscription's usage limit, as the real CLI shows it with an
                           OAuth token: a ``rate_limit_event`` (status ``rejected``,
                           ``resetsAt`` = now + SECONDS), the synthetic assistant message
                           "You've hit your session limit · resets 8:16am (UTC)" with
                           ``"error": "rate_limit"``, an is_error result with
                           ``api_error_status`` 429, exit 1
    [rate-limit:SECONDS]   an API-key rate limit whose ``retry-after`` is SECONDS and that
                           outlasts the retries: when SECONDS <= 60 one ``system/api_retry``
                           line per allowed retry (``CLAUDE_CODE_MAX_RETRIES``, default 10),
                           ``retry_delay_ms`` = SECONDS * 1000, really waiting that long
                           before the next; then the synthetic "API Error: Request rejected
                           (429) · ..." message, an is_error result (429), exit 1. Above 60 s
                           the real CLI does not retry, nor does this.
    [usage-warning:UTIL]   a ``rate_limit_event`` with status ``allowed_warning`` (five_hour,
                           ``utilization`` UTIL, ``surpassedThreshold`` 0.9, reset in 3 h)
                           after the next assistant message, as a subscription near its
                           limit; the run goes on normally
    [cost:USD]             what each model turn costs (default 0.009); ``total_cost_usd`` is
                           the running total of the process, as in the real CLI
    [crash]                a few lines, a message on stderr, exit 3 without a result line
    [exit-now]             exit 2 at once, nothing on stdout, a message on stderr
    [segv]                 SIGSEGV itself after init
    [hang]                 sleep forever (after init)
    [hang-unless:PATH]     [hang] unless PATH exists when this is reached
    [ignore-sigterm]       ignore SIGTERM from the start (combine with hang/sleep)
    [grandchild:PATH]      spawn ``sleep 1000`` (same session/process group), write its pid
    [flood:MB]             MB megabytes of ~1 KB assistant text lines, as fast as possible
    [invalid-json:N]       N non-JSON lines and one truncated JSON line, then carry on
    [as-root-refusal]      the real CLI's root refusal (also automatic, see below)
    [env:NAME]             assistant text ``ENV NAME=<value or <unset>>``
    [pid-file:PATH]        write own pid to PATH at start
    [ledger:PATH]          append one JSON line ``{"event": "start"|"end", "marker", "run",
                           "pid", "time", "resumed"}`` to PATH (O_APPEND, one write) at start
                           and once the result line is out; ``marker`` is the prompt without
                           its directives, ``run`` the wrapper's run folder (task and attempt)
                           or null. ``FAKE_CLAUDE_LEDGER=PATH`` does the same for every run,
                           resumed ones too (their prompt has no directive). Fault tests
                           count agent runs with it.

Usage limits are account-wide in reality. With ``FAKE_CLAUDE_LIMIT_FILE=PATH``,
``[usage-limit:S]`` (and ``[rate-limit:S]``) also write ``{"until": EPOCH, "kind": "usage"}``
(``"rate"``) to PATH, and every user turn of every run (any prompt, resumed runs too) that
starts while ``now < until`` hits that limit before anything else: ``usage`` as above;
``rate`` as a server that refuses until ``until``: ``api_retry`` lines that really wait the
seconds left (at most 60 s each, as the real CLI), then the turn goes on normally, or the
failure when the retries run out. A directive arms the file only the first time its prompt is
seen (the file lists those prompts under ``"armed_by"``), so a run that repeats the prompt
after the reset is not limited again. Tests may write the file themselves.

``--max-budget-usd X`` ends the run after the model turn that brings the running cost to X or
more, with the real ``error_max_budget_usd`` result (exit 1); a turn that asked for a tool
stops before the tool runs, as measured. ``--fallback-model`` is accepted (and logged).

Like the real CLI: as root with ``--dangerously-skip-permissions`` (or ``--permission-mode
bypassPermissions``) and without ``IS_SANDBOX=1`` it refuses, exit 1, nothing on stdout.
``--resume ID`` keeps that session id (``--fork-session``: a new one, starting as a copy) and
the answer starts with ``RESUMED``; when
``CLAUDE_CONFIG_DIR`` is set, sessions are recorded under ``<config>/projects/<cwd-slug>/`` as
the real CLI does, and resuming an unknown id fails the same way (exit 1). ``--max-turns N``
ends with ``error_max_turns`` (exit 1) when the tool calls need more turns.
``--input-format stream-json`` reads user turns from stdin one line at a time, one
init+result per turn, each turn answered before the next line is read, until stdin closes
(as the real CLI, which however folds a message that arrives during a turn into that turn);
the first turn carries the directives. A turn that ends in an error result does not end the
process: it waits for the next line or EOF like the real CLI (the exit status is the last
turn's). ``--replay-user-messages`` echoes each user turn as a
``{"type": "user", "message": {"role": "user", "content": TEXT}}`` line after its init.
If ``FAKE_CLAUDE_LOG`` is set, one JSON line ``{"argv", "cwd", "pid"}`` is appended per run.

Stdlib only and only light imports: tests start many of these, start-up time matters.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any, NoReturn

VERSION = "2.1.197"
DEFAULT_MODEL = "claude-opus-4-8[1m]"  # what the real init line reports
MESSAGE_MODEL = "claude-opus-4-8"  # what its assistant messages report
ROOT_REFUSAL = (
    "--dangerously-skip-permissions cannot be used with root/sudo privileges for security reasons"
)
# The real init line's tool list (2.1.197, no MCP servers).
BASE_TOOLS = [
    "Task", "Bash", "CronCreate", "CronDelete", "CronList", "Edit", "EnterWorktree",
    "ExitWorktree", "NotebookEdit", "Read", "ReportFindings", "ScheduleWakeup", "SendMessage",
    "Skill", "TaskCreate", "TaskGet", "TaskList", "TaskOutput", "TaskStop", "TaskUpdate",
    "WebFetch", "WebSearch", "Workflow", "Write",
]  # fmt: skip

# Flags taking one value / a variadic list of values / none. Anything else is ignored, as the
# brief asks (an unknown flag is treated as a boolean).
VALUE_FLAGS = {
    "--output-format", "--input-format", "--model", "--resume", "-r", "--session-id",
    "--permission-mode", "--max-turns", "--append-system-prompt", "--system-prompt",
    "--fallback-model", "--settings", "--setting-sources", "--permission-prompt-tool",
    "--max-budget-usd",
}  # fmt: skip
VARIADIC_FLAGS = {
    "--allowedTools", "--allowed-tools", "--disallowedTools", "--disallowed-tools",
    "--mcp-config", "--add-dir", "--tools", "--betas",
}  # fmt: skip

DIRECTIVE_RE = re.compile(r"\[([a-z][a-z\-]*)(?::([^\]]*))?\]")

DEFAULT_TURN_COST_USD = 0.009
# Measured: the real CLI retries a 429 only when its delay (retry-after) is at most 60 s.
MAX_RETRY_DELAY_MS = 60_000
DEFAULT_MAX_RETRIES = 10
# The API's message for a per-minute rate limit, which the CLI quotes after "API Error".
RATE_LIMIT_MESSAGE = "Number of request tokens has exceeded your per-minute rate limit"


class BudgetReached(Exception):
    """The running cost reached ``--max-budget-usd`` after a model turn."""

    def __init__(self, stop_reason: str) -> None:
        super().__init__(stop_reason)
        self.stop_reason = stop_reason


class Args:
    """The parsed command line (only what the fake cares about)."""

    def __init__(self) -> None:
        self.prompt: str | None = None
        self.print_mode = False
        self.values: dict[str, str] = {}
        self.lists: dict[str, list[str]] = {}
        self.flags: set[str] = set()

    def get(self, *names: str) -> str | None:
        for name in names:
            if name in self.values:
                return self.values[name]
        return None


def parse_args(argv: list[str]) -> Args:
    args = Args()
    i = 0
    while i < len(argv):
        tok = argv[i]
        i += 1
        if tok.startswith("--") and "=" in tok:
            name, value = tok.split("=", 1)
            if name in VARIADIC_FLAGS:
                args.lists.setdefault(name, []).extend(value.split(","))
            else:
                args.values[name] = value
            continue
        if tok in ("-p", "--print"):
            args.print_mode = True
            # The real CLI takes the prompt as a positional; `-p PROMPT` is the usual spelling.
            if i < len(argv) and not argv[i].startswith("-") and args.prompt is None:
                args.prompt = argv[i]
                i += 1
        elif tok in VALUE_FLAGS:
            if i < len(argv):
                args.values[tok] = argv[i]
                i += 1
        elif tok in VARIADIC_FLAGS:
            # Variadic until the next flag, like commander.js in the real CLI.
            values = args.lists.setdefault(tok, [])
            while i < len(argv) and not argv[i].startswith("-"):
                values.extend(v for v in re.split(r"[,\s]+", argv[i]) if v)
                i += 1
        elif tok.startswith("-") and tok != "-":
            args.flags.add(tok)
        elif args.prompt is None:
            args.prompt = tok
    return args


class Emitter:
    """Writes stream-json lines shaped like the real CLI's, one flushed line each."""

    def __init__(self, session_id: str, model: str, out_format: str) -> None:
        self.session_id = session_id
        self.model = model
        self.message_model = model if model != DEFAULT_MODEL else MESSAGE_MODEL
        self.out_format = out_format
        self.counter = 0
        self.num_turns = 1
        self.last_text = ""
        self.started = time.monotonic()
        self.transcript: list[dict[str, Any]] = []
        self.turn_cost = DEFAULT_TURN_COST_USD
        self.spent = 0.0  # the process's running total, as the real total_cost_usd
        self.budget: float | None = None
        # rate_limit_event lines to write after the next assistant message (the real CLI
        # reports an answer's rate-limit headers once its message is out).
        self.pending_events: list[dict[str, Any]] = []

    def next_id(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}_fake{os.getpid() % 100000:05d}{self.counter:05d}"

    def write(self, obj: dict[str, Any]) -> None:
        self.transcript.append(obj)
        if self.out_format == "stream-json":
            sys.stdout.write(json.dumps(obj, separators=(",", ":")) + "\n")
            sys.stdout.flush()

    def raw(self, line: str) -> None:
        if self.out_format == "stream-json":
            sys.stdout.write(line + "\n")
            sys.stdout.flush()

    def init(self, cwd: str, permission_mode: str, mcp_servers: list[str]) -> None:
        self.write(
            {
                "type": "system",
                "subtype": "init",
                "cwd": cwd,
                "session_id": self.session_id,
                "tools": BASE_TOOLS,
                # The fake starts no MCP servers, so it cannot claim they connected.
                "mcp_servers": [{"name": n, "status": "failed"} for n in mcp_servers],
                "model": self.model,
                "permissionMode": permission_mode,
                "slash_commands": ["debug", "code-review", "simplify"],
                "apiKeySource": api_key_source(),
                "claude_code_version": VERSION,
                "output_style": "default",
                "agents": ["claude", "Explore", "general-purpose"],
                "skills": [],
                "plugins": [],
                "analytics_disabled": True,
                "product_feedback_disabled": True,
                "uuid": str(uuid.uuid4()),
                "memory_paths": {"auto": os.path.join(cwd, ".claude-memory")},
                "fast_mode_state": "off",
            }
        )

    def assistant(
        self,
        blocks: list[dict[str, Any]],
        msg_id: str | None = None,
        model: str | None = None,
        error: str | None = None,
    ) -> None:
        """One line per content block, all with the same message id (as the real CLI)."""
        msg_id = msg_id or self.next_id("msg")
        request_id = self.next_id("req")
        for block in blocks:
            if block["type"] == "text":
                self.last_text = block["text"]
            line: dict[str, Any] = {
                "type": "assistant",
                "message": {
                    "id": msg_id,
                    "type": "message",
                    "role": "assistant",
                    "model": model or self.message_model,
                    "content": [block],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {
                        "input_tokens": 1700,
                        "output_tokens": 1,
                        "cache_creation_input_tokens": 0,
                        "cache_read_input_tokens": 0,
                    },
                    "context_management": None,
                },
                "parent_tool_use_id": None,
                "session_id": self.session_id,
                "uuid": str(uuid.uuid4()),
                "request_id": request_id,
            }
            if error is not None:
                # Measured on the synthetic API-error message.
                line["error"] = error
                line["message"].update(
                    container=None, stop_details=None, stop_reason="stop_sequence", stop_sequence=""
                )
            self.write(line)
        for event in self.pending_events:
            self.write(event)
        self.pending_events.clear()

    def text(self, text: str) -> None:
        self.assistant([{"type": "text", "text": text}])

    def tool_use(self, name: str, tool_input: dict[str, Any]) -> str:
        """A model turn calling a tool: narration text + tool_use in one message."""
        tool_id = self.next_id("toolu")
        self.assistant(
            [
                {"type": "text", "text": "Running the requested tool."},
                {"type": "tool_use", "id": tool_id, "name": name, "input": tool_input},
            ]
        )
        self.charge_turn("tool_use")
        return tool_id

    def charge_turn(self, stop_reason: str) -> None:
        """Count one model turn's cost; past the budget the run stops here (real check:
        running cost >= budget, after each model message)."""
        self.spent += self.turn_cost
        if self.budget is not None and self.spent >= self.budget:
            raise BudgetReached(stop_reason)

    def tool_result(self, tool_id: str, content: str, is_error: bool, extra: Any) -> None:
        self.num_turns += 1  # the model gets another turn to read the result
        self.write(
            {
                "type": "user",
                "message": {
                    "role": "user",
                    "content": [
                        {
                            "tool_use_id": tool_id,
                            "type": "tool_result",
                            "content": content,
                            "is_error": is_error,
                        }
                    ],
                },
                "parent_tool_use_id": None,
                "session_id": self.session_id,
                "uuid": str(uuid.uuid4()),
                "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
                "tool_use_result": extra,
            }
        )

    def api_retry(self, attempt: int, max_retries: int, status: int, delay_ms: int = 0) -> None:
        kinds = {529: "overloaded", 429: "rate_limit"}
        self.write(
            {
                "type": "system",
                "subtype": "api_retry",
                "attempt": attempt,
                "max_retries": max_retries,
                "retry_delay_ms": delay_ms,
                "error_status": status,
                "error": kinds.get(status, "server_error"),
                "session_id": self.session_id,
                "uuid": str(uuid.uuid4()),
            }
        )

    def rate_limit_event(
        self, status: str, resets_at: int, utilization: float | None = None
    ) -> dict[str, Any]:
        """Measured with an OAuth token: the subscription limit's state, from the API's
        ``anthropic-ratelimit-unified-*`` headers (a warning adds its utilization)."""
        info: dict[str, Any] = {
            "status": status,
            "resetsAt": resets_at,
            "rateLimitType": "five_hour",
        }
        if utilization is not None:
            info["utilization"] = utilization
        info["isUsingOverage"] = False
        if utilization is not None:
            info["surpassedThreshold"] = 0.9
        return {
            "type": "rate_limit_event",
            "rate_limit_info": info,
            "uuid": str(uuid.uuid4()),
            "session_id": self.session_id,
        }

    def result(
        self,
        *,
        is_error: bool = False,
        api_error_status: int | None = None,
        subtype: str = "success",
        stop_reason: str | None = "end_turn",
        errors: list[str] | None = None,
        terminal_reason: str | None = "completed",
    ) -> None:
        cost = round(self.spent, 6)
        obj: dict[str, Any] = {
            "type": "result",
            "subtype": subtype,
            "is_error": is_error,
            "api_error_status": api_error_status,
            "duration_ms": int((time.monotonic() - self.started) * 1000),
            "duration_api_ms": 0,
            "num_turns": self.num_turns,
            "result": self.last_text,
            "stop_reason": stop_reason,
            "session_id": self.session_id,
            "total_cost_usd": cost,
            "usage": {
                "input_tokens": 0 if api_error_status else 1700 * self.num_turns,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
                "output_tokens": 0 if api_error_status else 20 * self.num_turns,
                "server_tool_use": {"web_search_requests": 0, "web_fetch_requests": 0},
                "service_tier": "standard",
            },
            "modelUsage": {}
            if api_error_status
            else {self.model: {"inputTokens": 1700 * self.num_turns, "costUSD": cost}},
            "permission_denials": [],
            "terminal_reason": terminal_reason,
            "fast_mode_state": "off",
            "uuid": str(uuid.uuid4()),
        }
        if not is_error:
            # Measured: only successful API turns report latency figures.
            obj["ttft_ms"] = obj["ttft_stream_ms"] = obj["time_to_request_ms"] = 1
        if errors is not None:
            # Measured: error_max_turns / error_during_execution carry `errors` and have no
            # `result` / `api_error_status` keys.
            obj["errors"] = errors
            obj.pop("result")
            obj.pop("api_error_status")
        if subtype == "error_max_budget_usd":
            obj.pop("terminal_reason")  # measured: the budget stop has no terminal_reason
        elif terminal_reason is None:
            # Measured: a run that fails before any turn (unknown --resume id) has neither.
            obj.pop("terminal_reason")
            obj.pop("fast_mode_state")
        if self.out_format == "json":
            sys.stdout.write(json.dumps(obj) + "\n")
        elif self.out_format == "text":
            sys.stdout.write(self.last_text + "\n")
        self.write(obj)
        sys.stdout.flush()


def die(code: int, message: str) -> NoReturn:
    sys.stdout.flush()
    sys.stderr.write(message + "\n")
    sys.stderr.flush()
    os._exit(code)  # no cleanup: mimics an abrupt exit


def log_invocation(argv: list[str]) -> None:
    path = os.environ.get("FAKE_CLAUDE_LOG")
    if path:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"argv": argv, "cwd": os.getcwd(), "pid": os.getpid()}) + "\n")


def ledger(prompt: str, event: str, resumed: bool) -> None:
    """A line per ``[ledger:PATH]`` directive and for ``FAKE_CLAUDE_LEDGER``: one O_APPEND
    write each, so lines from many agents at once never interleave (each is far below
    PIPE_BUF)."""
    paths = [m.group(2) for m in DIRECTIVE_RE.finditer(prompt) if m.group(1) == "ledger"]
    if os.environ.get("FAKE_CLAUDE_LEDGER"):
        paths.append(os.environ["FAKE_CLAUDE_LEDGER"])
    paths = list(dict.fromkeys(paths))  # the same file named twice gets one line
    if not paths:
        return
    record = {"event": event, "marker": DIRECTIVE_RE.sub("", prompt).strip(),
              "run": wrapper_run_dir(), "pid": os.getpid(), "time": time.time(),
              "resumed": resumed}
    data = (json.dumps(record) + "\n").encode()
    for path in paths:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)


def wrapper_run_dir() -> str | None:
    """The run folder claudine's wrapper (our parent) names in its argv, if it is one:
    ``RUN_DIR`` of ``wrapper.py RUN_DIR MAX_OUTPUT_BYTES -- ARGV...`` (Linux only)."""
    try:
        with open(f"/proc/{os.getppid()}/cmdline", "rb") as fh:
            words = fh.read().decode("utf-8", "replace").split("\0")
    except OSError:
        return None
    for n, word in enumerate(words[:-1]):
        if word.endswith("wrapper.py"):
            return words[n + 1]
    return None


def session_file(session_id: str) -> str | None:
    """Where the real CLI keeps a session; None when no CLAUDE_CONFIG_DIR (then not tracked)."""
    config = os.environ.get("CLAUDE_CONFIG_DIR")
    if not config:
        return None
    slug = re.sub(r"[^A-Za-z0-9]", "-", os.getcwd())
    return os.path.join(config, "projects", slug, f"{session_id}.jsonl")


def mcp_server_names(configs: list[str]) -> list[str]:
    names: list[str] = []
    for cfg in configs:
        try:
            text = cfg if cfg.lstrip().startswith("{") else open(cfg, encoding="utf-8").read()
            names.extend(json.loads(text).get("mcpServers", {}))
        except (OSError, ValueError, AttributeError):
            pass  # the real CLI reports bad configs differently; not needed by claudine tests
    return names


def flood(em: Emitter, megabytes: float) -> None:
    """~1 KB valid assistant lines, written in big chunks: tests the reader's throughput."""
    filler = "x" * 700
    template = (
        '{"type":"assistant","message":{"id":"msg_flood%08d","type":"message",'
        '"role":"assistant","model":"' + em.message_model + '","content":[{"type":"text",'
        '"text":"flood line %08d ' + filler + '"}],"stop_reason":null,"stop_sequence":null},'
        '"parent_tool_use_id":null,"session_id":"' + em.session_id + '"}\n'
    )
    count = int(megabytes * 1024 * 1024 / len(template))
    chunk: list[str] = []
    for n in range(count):
        chunk.append(template % (n, n))
        if len(chunk) >= 256:
            sys.stdout.write("".join(chunk))
            chunk.clear()
    sys.stdout.write("".join(chunk))
    sys.stdout.flush()
    em.last_text = f"flood line {count - 1:08d} {filler}" if count else em.last_text


def api_error(em: Emitter, status: int) -> int:
    """The real CLI's API failure: a synthetic assistant message, an is_error result, exit 1."""
    kind = "server-side issue" if status >= 500 else "invalid request"
    error = "server_error" if status >= 500 else "invalid_request"
    return synthetic_error(em, f"API Error: {status} fake {kind}.", status, error)


def api_key_source() -> str:
    """What the real init line reports: ``none`` when it runs on an OAuth token."""
    if not os.environ.get("ANTHROPIC_API_KEY") and os.environ.get("CLAUDE_CODE_OAUTH_TOKEN"):
        return "none"
    return "ANTHROPIC_API_KEY"


def js_number(value: float) -> str:
    """A number as JavaScript prints it (``5``, ``0.01``), for the budget message."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def reset_text(resets_at: int) -> str:
    """The real CLI's reset time: local clock time (``8:16am``, ``8am`` on the hour), with
    the date (``Dec 2, 2:50pm``) beyond 24 h and the year if another; then the time zone."""
    moment = time.localtime(resets_at)
    hour = f"{moment.tm_hour % 12 or 12}"
    minutes = f":{moment.tm_min:02d}" if moment.tm_min else ""
    clock = f"{hour}{minutes}{'am' if moment.tm_hour < 12 else 'pm'}"
    if resets_at - time.time() > 24 * 3600:
        date = time.strftime("%b ", moment) + str(moment.tm_mday)
        if moment.tm_year != time.localtime().tm_year:
            date += f", {moment.tm_year}"
        clock = f"{date}, {clock}"
    zone = (os.environ.get("TZ") or "UTC").lstrip(":")
    return f"{clock} ({zone})"


def synthetic_error(em: Emitter, text: str, status: int, error: str) -> int:
    """The message and result the real CLI writes when the API refused the turn; exit 1."""
    em.assistant(
        [{"type": "text", "text": text}],
        msg_id=str(uuid.uuid4()),
        model="<synthetic>",
        error=error,
    )
    em.result(is_error=True, api_error_status=status, stop_reason="stop_sequence")
    return 1


def usage_limit(em: Emitter, until: float) -> int:
    """The subscription's usage limit (measured with an OAuth token, claim five_hour)."""
    resets_at = math.ceil(until)
    em.write(em.rate_limit_event("rejected", resets_at))
    text = f"You've hit your session limit \u00b7 resets {reset_text(resets_at)}"
    return synthetic_error(em, text, 429, "rate_limit")


def rate_limit_failure(em: Emitter) -> int:
    text = f"API Error: Request rejected (429) \u00b7 {RATE_LIMIT_MESSAGE}"
    return synthetic_error(em, text, 429, "rate_limit")


def max_retries() -> int:
    return int(os.environ.get("CLAUDE_CODE_MAX_RETRIES") or DEFAULT_MAX_RETRIES)


def persistent_rate_limit(em: Emitter, retry_after: float) -> int:
    """``[rate-limit:S]``: every attempt is refused with ``retry-after: S``."""
    delay_ms = math.ceil(retry_after * 1000)
    if delay_ms <= MAX_RETRY_DELAY_MS:
        retries = max_retries()
        for attempt in range(1, retries + 1):
            em.api_retry(attempt, retries, 429, delay_ms)
            time.sleep(delay_ms / 1000)
    return rate_limit_failure(em)


def rate_limited_until(em: Emitter, until: float) -> int | None:
    """A server refusing until ``until`` (a ``rate`` limit file): retry while it lasts, as
    the real CLI does; None once it is over (the turn goes on), else the failure."""
    retries = max_retries()
    for attempt in range(1, retries + 2):
        left = until - time.time()
        if left <= 0:
            return None
        delay_ms = math.ceil(left) * 1000  # the API's retry-after is whole seconds
        if attempt > retries or delay_ms > MAX_RETRY_DELAY_MS:
            break
        em.api_retry(attempt, retries, 429, delay_ms)
        time.sleep(delay_ms / 1000)
    return rate_limit_failure(em)


def fall_back(em: Emitter, fallback: str) -> None:
    """Measured: the third 529 in a row for the main model switches to the fallback model
    (the first two are retried), and the next requests use it."""
    retries = max_retries()
    for attempt in range(1, 3):
        em.api_retry(attempt, retries, 529, 500 * attempt)
    em.write(
        {
            "type": "system",
            "subtype": "model_fallback",
            "trigger": "overloaded",
            "original_model": em.model,
            "fallback_model": fallback,
            "content": f"Switched to {fallback} due to high demand for {em.model}",
            "session_id": em.session_id,
            "uuid": str(uuid.uuid4()),
        }
    )
    em.message_model = fallback


def limit_file() -> str | None:
    return os.environ.get("FAKE_CLAUDE_LIMIT_FILE") or None


def read_limit() -> dict[str, Any]:
    """The account-wide limit file's content ({} when there is none or it is unreadable)."""
    path = limit_file()
    if path is None:
        return {}
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def arm_limit(prompt: str, kind: str, seconds: float) -> bool:
    """Record a limit directive's limit in the limit file; False when this prompt already
    armed it once (then the directive does nothing). Always True without a limit file."""
    path = limit_file()
    if path is None:
        return True
    data = read_limit()
    armed_by = [str(p) for p in data.get("armed_by", [])]
    if prompt in armed_by:
        return False
    record = {"until": time.time() + seconds, "kind": kind, "armed_by": [*armed_by, prompt]}
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(record, fh)
    os.replace(tmp, path)  # readers never see half a file
    return True


def account_limit(em: Emitter) -> int | None:
    """Hit the limit in the limit file if it is still in force; None if there is none."""
    data = read_limit()
    try:
        until = float(data["until"])
    except (KeyError, TypeError, ValueError):
        return None
    if time.time() >= until:
        return None
    if data.get("kind") == "rate":
        return rate_limited_until(em, until)
    return usage_limit(em, until)


def run_turn(em: Emitter, prompt: str, args: Args, resumed: bool) -> int:
    """Play one user turn; return the exit code (0 ok, 1 error result)."""
    try:
        return play_directives(em, prompt, args, resumed)
    except BudgetReached as stop:
        budget = em.budget or 0.0
        em.result(
            is_error=True,
            subtype="error_max_budget_usd",
            stop_reason=stop.stop_reason,
            errors=[f"Reached maximum budget (${js_number(budget)})"],
        )
        return 1


def play_directives(em: Emitter, prompt: str, args: Args, resumed: bool) -> int:
    """The turn's directives in order, then the final answer and result."""
    directives = [(m.group(1), m.group(2) or "") for m in DIRECTIVE_RE.finditer(prompt)]
    costs = [arg for name, arg in directives if name == "cost" and arg]
    if costs:  # from this turn on, like a pricier model
        em.turn_cost = float(costs[-1])
    limited = account_limit(em)
    if limited is not None:
        return limited
    max_turns = int(args.get("--max-turns") or 0)
    for name, arg in directives:
        # Every tool call costs a model turn; past --max-turns the real CLI stops right after
        # the tool result with error_max_turns (exit 1).
        if max_turns and em.num_turns > max_turns:
            break
        if name == "sleep":
            secs = float(arg or 1)
            tid = em.tool_use("Bash", {"command": f"sleep {arg}", "description": "sleep"})
            time.sleep(secs)
            em.tool_result(tid, "", False, {"stdout": "", "stderr": "", "interrupted": False})
        elif name == "text":
            em.text(arg)
        elif name in ("tool", "tool-error"):
            tool = arg or "Bash"
            tid = em.tool_use(tool, {"fake": True})
            if name == "tool":
                em.tool_result(tid, f"fake {tool} output", False, {"stdout": f"fake {tool}"})
            else:
                em.tool_result(tid, f"Error: fake {tool} failed", True, "Error: fake failure")
        elif name == "write":
            fname, _, content = arg.partition("=")
            path = os.path.abspath(fname)
            tid = em.tool_use("Write", {"file_path": path, "content": content})
            with open(path, "w", encoding="utf-8") as fh:
                fh.write(content.replace("\\n", "\n"))
            em.tool_result(
                tid,
                f"File created successfully at: {path}",
                False,
                {"type": "create", "filePath": path, "content": content},
            )
        elif name == "api-error-once":
            # STATUS:PATH — fail like [api-error] only while PATH does not exist yet, so
            # a retried run of the same prompt succeeds.
            status_text, _, marker = arg.partition(":")
            if not os.path.exists(marker):
                open(marker, "w").close()
                return api_error(em, int(status_text or 529))
        elif name in ("fail", "api-error"):
            return api_error(em, int(arg or 400))
        elif name == "usage-warning":
            resets_at = math.ceil(time.time() + 3 * 3600)
            event = em.rate_limit_event("allowed_warning", resets_at, float(arg or 0.9))
            em.pending_events.append(event)
        elif name == "usage-limit":
            seconds = float(arg or 3600)
            if arm_limit(prompt, "usage", seconds):
                return usage_limit(em, time.time() + seconds)
        elif name == "rate-limit":
            seconds = float(arg or 60)
            if arm_limit(prompt, "rate", seconds):
                return persistent_rate_limit(em, seconds)
        # cost was read before the turn.
        elif name == "overloaded":
            fallback = args.get("--fallback-model")
            if not fallback:
                return api_error(em, 529)
            fall_back(em, fallback)
        elif name == "api-retry":
            count = int(arg or 1)
            max_retries = int(os.environ.get("CLAUDE_CODE_MAX_RETRIES") or 10)
            for attempt in range(1, count + 1):
                em.api_retry(attempt, max(max_retries, count), 529)
        elif name == "crash":
            em.text("about to crash")
            die(3, "fake_claude: simulated crash (uncaught exception)")
        elif name == "segv":
            sys.stdout.flush()
            signal.signal(signal.SIGSEGV, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGSEGV)
        elif name == "hang" or (name == "hang-unless" and not os.path.exists(arg)):
            while True:  # signals (SIGTERM unless ignored, SIGKILL) end this
                time.sleep(3600)
        elif name == "grandchild":
            # Same session and process group as us: killing our group must kill it too.
            child = subprocess.Popen(
                ["sleep", "1000"],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            with open(arg, "w", encoding="utf-8") as fh:
                fh.write(str(child.pid))
        elif name == "flood":
            flood(em, float(arg or 1))
        elif name == "invalid-json":
            for n in range(int(arg or 1)):
                em.raw(f"not json line {n}: Warning: something odd happened")
                em.text(f"valid line {n}")
            em.raw('{"type":"assistant","message":{"id":"msg_trunc","content":[{"type":"te')
        elif name == "env":
            value = os.environ.get(arg)
            em.text(f"ENV {arg}={value if value is not None else '<unset>'}")
        # exit-now / as-root-refusal / pid-file / ignore-sigterm were handled at start-up.
    if max_turns and em.num_turns > max_turns:
        em.result(
            is_error=True,
            subtype="error_max_turns",
            stop_reason="tool_use",
            errors=[f"Reached maximum number of turns ({max_turns})"],
            terminal_reason="max_turns",
        )
        return 1
    prefix = "RESUMED " if resumed else ""
    em.text(f"{prefix}FAKE_DONE: {prompt[:40]}")
    em.charge_turn("end_turn")
    em.result()
    return 0


def startup_directives(prompt: str, args: Args) -> None:
    """Directives that act before any output, so they are race-free for tests."""
    names = {m.group(1): m.group(2) or "" for m in DIRECTIVE_RE.finditer(prompt)}
    if "pid-file" in names:
        with open(names["pid-file"], "w", encoding="utf-8") as fh:
            fh.write(str(os.getpid()))
    if "ignore-sigterm" in names:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if "exit-now" in names:
        die(2, "fake_claude: exiting immediately as asked ([exit-now])")
    bypass = (
        "--dangerously-skip-permissions" in args.flags
        or args.get("--permission-mode") == "bypassPermissions"
    )
    is_root = hasattr(os, "geteuid") and os.geteuid() == 0
    if "as-root-refusal" in names or (bypass and is_root and os.environ.get("IS_SANDBOX") != "1"):
        die(1, ROOT_REFUSAL)


def stream_json_turns() -> Iterator[str]:
    """User turns from stdin for ``--input-format stream-json``, each as soon as its line
    arrives (until EOF)."""
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            msg = json.loads(line).get("message", {})
        except ValueError:
            continue
        content = msg.get("content", "")
        if isinstance(content, list):
            content = "\n".join(b.get("text", "") for b in content if isinstance(b, dict))
        yield str(content)


def main(argv: list[str]) -> int:
    if "--version" in argv or "-v" in argv:
        print(f"{VERSION} (Claude Code)")
        return 0
    log_invocation(argv)
    args = parse_args(argv)
    out_format = args.get("--output-format") or "text"
    stream_input = args.get("--input-format") == "stream-json"
    prompt = args.prompt
    later_turns: Iterator[str] = iter(())
    if stream_input:
        later_turns = stream_json_turns()
        prompt = next(later_turns, "")  # the first turn's text carries the directives
    elif prompt is None and not sys.stdin.isatty():
        prompt = sys.stdin.read()  # the real CLI reads the prompt from stdin when not given
    startup_directives(prompt or "", args)
    if out_format == "stream-json" and "--verbose" not in args.flags:
        die(1, "Error: When using --print, --output-format=stream-json requires --verbose")

    resume_id = args.get("--resume", "-r")
    ledger(prompt or "", "start", bool(resume_id))
    forked = bool(resume_id) and "--fork-session" in args.flags
    session_id = (None if forked else resume_id) or args.get("--session-id") or str(uuid.uuid4())
    model = args.get("--model") or DEFAULT_MODEL
    em = Emitter(session_id, model, out_format)
    if args.get("--max-budget-usd"):
        em.budget = float(args.get("--max-budget-usd") or 0)
    store = session_file(session_id)
    resumed_store = session_file(resume_id) if resume_id else None
    if resumed_store is not None and not os.path.exists(resumed_store):
        message = f"No conversation found with session ID: {resume_id}"
        em.result(
            is_error=True,
            subtype="error_during_execution",
            stop_reason=None,
            errors=[message],
            terminal_reason=None,
        )
        die(1, message)

    if "--dangerously-skip-permissions" in args.flags:
        permission_mode = "bypassPermissions"
    else:
        permission_mode = args.get("--permission-mode") or "default"
    mcp = mcp_server_names(args.lists.get("--mcp-config", []))
    replay = stream_input and "--replay-user-messages" in args.flags
    code = 0
    if store is not None:
        # Created up front, like the real CLI, so a run that is killed can still be resumed.
        os.makedirs(os.path.dirname(store), exist_ok=True)
        open(store, "a", encoding="utf-8").close()
        if forked and resumed_store is not None:  # a fork starts as a copy of the original
            with open(resumed_store, encoding="utf-8") as original, \
                    open(store, "a", encoding="utf-8") as copy:
                copy.write(original.read())
    for turn_prompt in itertools.chain([prompt or ""], later_turns):
        em.num_turns = 1
        em.started = time.monotonic()
        em.init(os.getcwd(), permission_mode, mcp)  # measured: one init per turn
        if replay:
            em.write({"type": "user", "message": {"role": "user", "content": turn_prompt},
                      "session_id": session_id, "parent_tool_use_id": None, "isReplay": True})
        code = run_turn(em, turn_prompt, args, resumed=bool(resume_id))
        # After an error result the real CLI reads on (stream-json): the exit status is the
        # last turn's.
        if code == 0:
            ledger(turn_prompt, "end", bool(resume_id))
    if store is not None:
        with open(store, "a", encoding="utf-8") as fh:
            for obj in em.transcript:
                if obj["type"] in ("assistant", "user"):
                    fh.write(json.dumps(obj) + "\n")
    return code


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except BrokenPipeError:
        # The reader went away (e.g. claudine killed the pipe); exit quietly like a CLI would.
        os._exit(1)
