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
    [api-error-once:S:PATH] [api-error:S] only while PATH does not exist (then creates it)
    [crash]                a few lines, a message on stderr, exit 3 without a result line
    [exit-now]             exit 2 at once, nothing on stdout, a message on stderr
    [segv]                 SIGSEGV itself after init
    [hang]                 sleep forever (after init)
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
the first turn carries the directives. ``--replay-user-messages`` echoes each user turn as a
``{"type": "user", "message": {"role": "user", "content": TEXT}}`` line after its init.
If ``FAKE_CLAUDE_LOG`` is set, one JSON line ``{"argv", "cwd", "pid"}`` is appended per run.

Stdlib only and only light imports: tests start many of these, start-up time matters.
"""

from __future__ import annotations

import itertools
import json
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
}  # fmt: skip
VARIADIC_FLAGS = {
    "--allowedTools", "--allowed-tools", "--disallowedTools", "--disallowed-tools",
    "--mcp-config", "--add-dir", "--tools", "--betas",
}  # fmt: skip

DIRECTIVE_RE = re.compile(r"\[([a-z][a-z\-]*)(?::([^\]]*))?\]")


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
                "apiKeySource": "ANTHROPIC_API_KEY",
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
        return tool_id

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

    def api_retry(self, attempt: int, max_retries: int, status: int) -> None:
        self.write(
            {
                "type": "system",
                "subtype": "api_retry",
                "attempt": attempt,
                "max_retries": max_retries,
                "retry_delay_ms": 0,
                "error_status": status,
                "error": "overloaded" if status == 529 else "server_error",
                "session_id": self.session_id,
                "uuid": str(uuid.uuid4()),
            }
        )

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
        cost = 0.0 if api_error_status else round(0.009 * self.num_turns, 6)
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
        if terminal_reason is None:
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
    em.assistant(
        [{"type": "text", "text": f"API Error: {status} fake {kind}."}],
        msg_id=str(uuid.uuid4()),
        model="<synthetic>",
        error="server_error" if status >= 500 else "invalid_request",
    )
    em.result(is_error=True, api_error_status=status, stop_reason="stop_sequence")
    return 1


def run_turn(em: Emitter, prompt: str, args: Args, resumed: bool) -> int:
    """Play one user turn's directives; return the exit code (0 ok, 1 error result)."""
    directives = [(m.group(1), m.group(2) or "") for m in DIRECTIVE_RE.finditer(prompt)]
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
        elif name == "hang":
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
        if code:
            break
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
