"""Tests for reading the stream-json output of ``claude`` agents: parsing, line splitting,
the running summary and rendering (claudine_core.agents.stream_parse, summary, log_text,
and the console's claudine_tui.log_render)."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from rich.text import Text

from claudine_core.agents.log_text import render_plain
from claudine_core.agents.run_log import read_events
from claudine_core.agents.stream_events import (
    AgentInit,
    AgentResult,
    ApiRetry,
    AssistantText,
    InvalidLine,
    OtherEvent,
    StreamEvent,
    ToolResult,
    ToolUse,
    UserText,
)
from claudine_core.agents.stream_parse import LineSplitter, parse_line, parse_lines
from claudine_core.agents.summary import StreamSummary
from claudine_tui.log_render import render_rich

REFERENCE = Path("/work/shared/reference/claude-stream-json-bash-tool.jsonl")
SESSION = "64f1760b-ed1f-4f94-bd94-e27258e05faa"

# The reference transcript, inlined so the tests do not depend on the shared folder.
TRANSCRIPT = [
    {
        "type": "system",
        "subtype": "init",
        "cwd": "<cwd>",
        "session_id": SESSION,
        "tools": ["Task", "Bash"],
        "mcp_servers": [],
        "model": "claude-opus-4-8[1m]",
        "permissionMode": "bypassPermissions",
        "claude_code_version": "2.1.197",
    },
    {
        "type": "assistant",
        "message": {
            "id": "msg_fake00000009",
            "model": "claude-opus-4-8",
            "content": [{"type": "text", "text": "Running the requested tool."}],
        },
        "session_id": SESSION,
    },
    {
        "type": "assistant",
        "message": {
            "id": "msg_fake00000009",
            "content": [
                {
                    "type": "tool_use",
                    "id": "toolu_fake00000008",
                    "name": "Bash",
                    "input": {
                        "command": "echo hi-from-bash > out.txt && cat out.txt",
                        "description": "write a file",
                    },
                }
            ],
        },
    },
    {
        "type": "user",
        "message": {
            "role": "user",
            "content": [
                {
                    "tool_use_id": "toolu_fake00000008",
                    "type": "tool_result",
                    "content": "hi-from-bash",
                    "is_error": False,
                }
            ],
        },
        "tool_use_result": {"stdout": "hi-from-bash", "stderr": ""},
    },
    {
        "type": "assistant",
        "message": {
            "id": "msg_fake00000011",
            "content": [{"type": "text", "text": "FAKE_DONE: hi-from-bash"}],
        },
    },
    {
        "type": "result",
        "subtype": "success",
        "is_error": False,
        "api_error_status": None,
        "duration_ms": 354,
        "num_turns": 2,
        "result": "FAKE_DONE: hi-from-bash",
        "session_id": SESSION,
        "total_cost_usd": 0.0183,
        "permission_denials": [],
        "terminal_reason": "completed",
    },
]

EXPECTED = [
    AgentInit(SESSION, "claude-opus-4-8[1m]", "<cwd>", "bypassPermissions", "2.1.197"),
    AssistantText("Running the requested tool."),
    ToolUse(
        "toolu_fake00000008",
        "Bash",
        "echo hi-from-bash > out.txt && cat out.txt",
        {"command": "echo hi-from-bash > out.txt && cat out.txt", "description": "write a file"},
    ),
    ToolResult("toolu_fake00000008", "hi-from-bash", False),
    AssistantText("FAKE_DONE: hi-from-bash"),
    AgentResult(
        subtype="success",
        is_error=False,
        api_error_status=None,
        num_turns=2,
        result="FAKE_DONE: hi-from-bash",
        session_id=SESSION,
        total_cost_usd=0.0183,
        duration_ms=354.0,
        permission_denials=0,
    ),
]


def line(obj: Any) -> bytes:
    return json.dumps(obj).encode() + b"\n"


def one(obj: Any) -> StreamEvent:
    events = parse_line(json.dumps(obj))
    assert len(events) == 1, events
    return events[0]


def transcript_events() -> list[StreamEvent]:
    return [event for obj in TRANSCRIPT for event in parse_line(line(obj))]


# --- parse_line -------------------------------------------------------------------------


def test_inline_transcript_parses_to_expected_events() -> None:
    assert transcript_events() == EXPECTED


@pytest.mark.skipif(not REFERENCE.exists(), reason="shared reference transcript not present")
def test_real_reference_transcript_parses_to_expected_events() -> None:
    events = [event for raw in REFERENCE.read_bytes().splitlines() for event in parse_line(raw)]
    assert events == EXPECTED


def test_str_and_bytes_input_agree() -> None:
    raw = json.dumps(TRANSCRIPT[2])
    assert parse_line(raw) == parse_line(raw.encode()) == parse_line(raw + "\r\n")


def test_assistant_line_with_several_blocks_keeps_order_and_skips_thinking() -> None:
    events = parse_line(
        json.dumps(
            {
                "type": "assistant",
                "message": {
                    "content": [
                        {"type": "thinking", "thinking": "hmm", "signature": "x"},
                        {"type": "text", "text": "first"},
                        {
                            "type": "tool_use",
                            "id": "t1",
                            "name": "Read",
                            "input": {"file_path": "/a/b.py"},
                        },
                        {"type": "text", "text": "second"},
                    ]
                },
            }
        )
    )
    assert events == [
        AssistantText("first"),
        ToolUse("t1", "Read", "/a/b.py", {"file_path": "/a/b.py"}),
        AssistantText("second"),
    ]


def test_thinking_only_line_gives_no_events() -> None:
    assert (
        parse_line(
            json.dumps({"type": "assistant", "message": {"content": [{"type": "thinking"}]}})
        )
        == []
    )


@pytest.mark.parametrize(
    ("name", "tool_input", "summary"),
    [
        ("Bash", {"command": "ls -la", "description": "list"}, "ls -la"),
        ("Bash", {"command": "cat <<EOF\nhello\n  world\nEOF"}, "cat <<EOF hello world EOF"),
        ("Read", {"file_path": "/x/y.py", "offset": 3}, "/x/y.py"),
        ("Write", {"file_path": "/x/z.txt", "content": "big"}, "/x/z.txt"),
        ("Edit", {"file_path": "/x/e.py", "old_string": "a", "new_string": "b"}, "/x/e.py"),
        ("Grep", {"pattern": "def main", "path": "src"}, "def main"),
        ("Glob", {"pattern": "**/*.py"}, "**/*.py"),
        ("WebFetch", {"url": "https://example.com", "prompt": "read"}, "https://example.com"),
        ("Task", {"description": "find bugs", "prompt": "long"}, "find bugs"),
        ("mcp__srv__tool", {"a": 1, "b": "x"}, '{"a":1,"b":"x"}'),
        ("Unknown", {}, ""),
        ("Bash", {"command": 42}, '{"command":42}'),
    ],
)
def test_tool_use_summary(name: str, tool_input: dict[str, Any], summary: str) -> None:
    event = one(
        {
            "type": "assistant",
            "message": {
                "content": [{"type": "tool_use", "id": "t", "name": name, "input": tool_input}]
            },
        }
    )
    assert event == ToolUse("t", name, summary, tool_input)


def test_tool_use_summary_is_cut_to_200_chars() -> None:
    event = one(
        {
            "type": "assistant",
            "message": {
                "content": [
                    {"type": "tool_use", "id": "t", "name": "Bash", "input": {"command": "x" * 500}}
                ]
            },
        }
    )
    assert isinstance(event, ToolUse)
    assert len(event.summary) == 200
    assert event.summary.endswith("…")
    assert event.input["command"] == "x" * 500


def tool_result_line(content: Any, is_error: Any = False) -> dict[str, Any]:
    block = {"type": "tool_result", "tool_use_id": "t9", "content": content, "is_error": is_error}
    return {"type": "user", "message": {"role": "user", "content": [block]}}


def test_tool_result_content_as_list_of_blocks_is_flattened() -> None:
    content = [
        {"type": "text", "text": "line one"},
        {"type": "image", "source": {"type": "base64", "data": "AAAA"}},
        {"type": "text", "text": "line two"},
    ]
    assert one(tool_result_line(content)) == ToolResult("t9", "line one\n[image]\nline two", False)


def test_tool_result_error_and_missing_content() -> None:
    assert one(tool_result_line("denied", True)) == ToolResult("t9", "denied", True)
    assert one(tool_result_line(None, "yes")) == ToolResult("t9", "", False)


def test_tool_result_content_is_cut_to_2000_chars() -> None:
    event = one(tool_result_line("y" * 10_000))
    assert isinstance(event, ToolResult)
    assert len(event.content) == 2000


def test_a_user_turn_echoed_back_is_shown_as_the_users() -> None:
    # --replay-user-messages: the prompt, or a message sent to the running agent.
    echoed = {"type": "user", "message": {"role": "user", "content": "do the thing"},
              "isReplay": True}
    assert parse_line(json.dumps(echoed)) == [UserText("do the thing")]
    assert render_plain(UserText("do the thing")) == "you: do the thing"


def test_user_line_without_tool_result_or_text_is_other() -> None:
    empty = {"type": "user", "message": {"role": "user", "content": []}}
    assert parse_line(json.dumps(empty)) == [OtherEvent("user")]


def test_api_retry() -> None:
    event = one(
        {
            "type": "system",
            "subtype": "api_retry",
            "attempt": 2,
            "max_retries": 10,
            "retry_delay_ms": 1200,
            "error_status": 529,
            "error": "overloaded",
        }
    )
    assert event == ApiRetry(2, 10, 1200.0, 529, "overloaded")


def test_api_retry_with_odd_fields() -> None:
    event = one({"type": "system", "subtype": "api_retry", "attempt": "3", "error": {"x": 1}})
    assert event == ApiRetry(3, None, None, None, '{"x":1}')


def test_result_with_api_error() -> None:
    event = one(
        {
            "type": "result",
            "subtype": "success",
            "is_error": True,
            "api_error_status": 529,
            "num_turns": 1,
            "result": "API Error: 529 overloaded",
            "session_id": "s",
            "total_cost_usd": 0,
            "duration_ms": 1500,
            "permission_denials": [{"tool_name": "Bash"}, {"tool_name": "Write"}],
        }
    )
    assert event == AgentResult(
        "success", True, 529, 1, "API Error: 529 overloaded", "s", 0.0, 1500.0, 2
    )
    assert isinstance(event, AgentResult) and not event.ok


def test_result_with_missing_fields() -> None:
    event = one({"type": "result"})
    assert event == AgentResult("", False, None, None, None, None, None, None, 0)


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        ({"type": "stream_event", "event": {"type": "ping"}}, OtherEvent("stream_event")),
        ({"type": "system", "subtype": "compact_boundary"}, OtherEvent("system:compact_boundary")),
        ({"type": "system"}, OtherEvent("system")),
        ({"no_type": 1}, OtherEvent("unknown")),
        ({"type": 7}, OtherEvent("unknown")),
    ],
)
def test_other_events(obj: dict[str, Any], expected: OtherEvent) -> None:
    assert parse_line(json.dumps(obj)) == [expected]


@pytest.mark.parametrize("raw", [b"not json", b"[1, 2]", b'"text"', b"42", b"\xff\xfe\x00", b"{"])
def test_invalid_lines(raw: bytes) -> None:
    events = parse_line(raw)
    assert len(events) == 1
    assert isinstance(events[0], InvalidLine)
    assert events[0].error


def test_invalid_raw_is_cut_to_200_chars() -> None:
    (event,) = parse_line("z" * 5000)
    assert isinstance(event, InvalidLine)
    assert len(event.raw) == 200


@pytest.mark.parametrize("raw", [b"", b"   ", b"\n", ""])
def test_blank_lines_give_nothing(raw: bytes | str) -> None:
    assert parse_line(raw) == []


def test_deeply_nested_json_does_not_raise() -> None:
    events = parse_line("[" * 100_000 + "]" * 100_000)
    assert len(events) == 1 and isinstance(events[0], InvalidLine)


def test_every_truncation_of_every_transcript_line_is_safe() -> None:
    for obj in TRANSCRIPT:
        raw = line(obj).rstrip(b"\n")
        for cut in range(len(raw)):
            events = parse_line(raw[:cut])
            assert all(isinstance(event, StreamEvent) for event in events)
            if cut:
                assert len(events) == 1 and isinstance(events[0], InvalidLine)


def test_fuzz_random_bytes_and_mutations_never_raise() -> None:
    rng = random.Random(1234)
    samples = [line(obj) for obj in TRANSCRIPT]
    for _ in range(3000):
        if rng.random() < 0.5:
            raw = bytes(rng.randrange(256) for _ in range(rng.randrange(64)))
        else:
            mutated = bytearray(rng.choice(samples))
            for _ in range(rng.randrange(1, 6)):
                mutated[rng.randrange(len(mutated))] = rng.randrange(256)
            raw = bytes(mutated)
        for event in parse_line(raw):
            assert isinstance(event, StreamEvent)
            render_plain(event)
            render_rich(event)


def test_fuzz_wrong_json_types_never_raise() -> None:
    odd_values: list[Any] = [None, 1, -1, 1.5, True, "s", [], {}, [1, "a"], {"k": None}]
    rng = random.Random(99)
    for _ in range(2000):
        obj = json.loads(json.dumps(rng.choice(TRANSCRIPT)))
        target = obj.get("message", obj) if rng.random() < 0.5 else obj
        if isinstance(target, dict) and target:
            target[rng.choice(list(target))] = json.loads(json.dumps(rng.choice(odd_values)))
        if isinstance(obj.get("message"), dict) and isinstance(obj["message"].get("content"), list):
            obj["message"]["content"].append(json.loads(json.dumps(rng.choice(odd_values))))
        for event in parse_line(json.dumps(obj)):
            assert isinstance(event, StreamEvent)
            render_plain(event)


# --- LineSplitter -----------------------------------------------------------------------


def test_splitter_joins_lines_split_across_feeds() -> None:
    splitter = LineSplitter()
    assert splitter.feed(b'{"a":') == []
    assert splitter.feed(b'1}\n{"b"') == [b'{"a":1}']
    assert splitter.feed(b":2}\n\n") == [b'{"b":2}', b""]
    assert splitter.flush() == []


def test_splitter_byte_by_byte_matches_whole() -> None:
    data = b"".join(line(obj) for obj in TRANSCRIPT) + b"tail"
    splitter = LineSplitter()
    pieces = [piece for byte in data for piece in splitter.feed(bytes([byte]))]
    assert pieces == data.split(b"\n")[:-1]
    assert splitter.flush() == [b"tail"]
    assert splitter.flush() == []


def test_splitter_line_exactly_at_cap_is_whole() -> None:
    splitter = LineSplitter(max_line_bytes=4)
    assert splitter.feed(b"abcd") == []
    assert splitter.feed(b"\nxy\n") == [b"abcd", b"xy"]


def test_splitter_cuts_long_line_and_discards_rest_until_newline() -> None:
    splitter = LineSplitter(max_line_bytes=4)
    assert splitter.feed(b"abcdef") == [b"abcd"]
    assert splitter.feed(b"ghij") == []
    assert splitter.feed(b"kl\nok\n") == [b"ok"]
    assert splitter.feed(b"1234567\n12") == [b"1234"]
    assert splitter.flush() == [b"12"]


def test_splitter_memory_stays_bounded_for_huge_output() -> None:
    cap = 1024
    splitter = LineSplitter(max_line_bytes=cap)
    rng = random.Random(7)
    emitted: list[bytes] = []
    for _ in range(2000):
        chunk = b"x" * rng.randrange(1, 3000)
        if rng.random() < 0.05:
            chunk += b"\n"
        emitted += splitter.feed(chunk)
        assert splitter.buffered_bytes <= cap
        assert len(splitter._buffer) <= cap
    assert emitted and all(len(piece) <= cap for piece in emitted)


def test_splitter_rejects_zero_cap() -> None:
    with pytest.raises(ValueError):
        LineSplitter(max_line_bytes=0)


# --- StreamSummary ----------------------------------------------------------------------


def test_summary_over_reference_transcript() -> None:
    summary = StreamSummary()
    changes = [summary.update(event) for event in transcript_events()]
    # The successful tool result changes nothing a screen shows.
    assert changes == [True, True, True, False, True, True]
    assert summary.session_id == SESSION
    assert summary.model == "claude-opus-4-8[1m]"
    assert summary.num_turns == 2
    assert summary.cost_usd == pytest.approx(0.0183)
    assert summary.result == EXPECTED[-1]
    assert summary.tool_uses == 1
    assert summary.last_activity == "FAKE_DONE: hi-from-bash"
    assert summary.invalid_lines == 0 and summary.api_retries == 0


def test_summary_activity_and_turn_estimate() -> None:
    summary = StreamSummary()
    assert summary.num_turns is None and summary.last_activity is None
    summary.update(ToolUse("1", "Bash", "ls -la", {"command": "ls -la"}))
    assert summary.last_activity == "Bash: ls -la"
    assert summary.num_turns == 2
    summary.update(AssistantText("Done.\nAll good now\n\n  "))
    assert summary.last_activity == "All good now"
    summary.update(AssistantText("w" * 500))
    assert summary.last_activity is not None and len(summary.last_activity) == 120
    assert summary.update(ApiRetry(2, 10, 1000.0, 529, "overloaded")) is True
    assert summary.last_activity == "retrying API (attempt 2/10, 529)"
    assert summary.api_retries == 1
    assert summary.update(InvalidLine("x", "bad")) is True
    assert summary.invalid_lines == 1
    assert summary.update(OtherEvent("stream_event")) is False


def test_summary_resumed_run_clears_result() -> None:
    summary = StreamSummary()
    for event in transcript_events():
        summary.update(event)
    summary.update(AgentInit(SESSION, None, None, None, None))
    assert summary.result is None
    assert summary.model == "claude-opus-4-8[1m]"
    summary.update(AssistantText("again"))
    assert summary.num_turns == 1


# --- rendering --------------------------------------------------------------------------


def test_render_reference_transcript_plain() -> None:
    rendered = [render_plain(event) for event in transcript_events()]
    assert rendered == [
        "● session 64f1760b…  model claude-opus-4-8[1m]  mode bypassPermissions",
        "Running the requested tool.",
        "▸ Bash: echo hi-from-bash > out.txt && cat out.txt",
        "  ✓ hi-from-bash",
        "FAKE_DONE: hi-from-bash",
        "■ completed in 0.4s · 2 turns · $0.0183",
    ]


def test_render_long_tool_result_is_capped_at_five_lines() -> None:
    text = render_plain(ToolResult("t", "\n".join(f"row{i}" for i in range(12)), False))
    assert text is not None
    lines = text.splitlines()
    assert lines[0] == "  ✓ row0"
    assert lines[4] == "    row4"
    assert lines[-1] == "  … (7 more lines)"
    assert "row5" not in text


def test_render_tool_error_shows_error_text_in_red() -> None:
    event = ToolResult("t", "Permission denied: rm -rf /", True)
    assert render_plain(event) == "  ✗ Permission denied: rm -rf /"
    rich = render_rich(event)
    assert isinstance(rich, Text)
    assert "red" in str(rich.spans[0].style)


def test_render_retry() -> None:
    event = ApiRetry(2, 10, 1200.0, 529, "overloaded")
    assert render_plain(event) == "↻ API retry 2/10 (529 overloaded) in 1.2s"
    rich = render_rich(event)
    assert rich is not None and "yellow" in str(rich.spans[0].style)


def test_render_failed_result_has_status_reason_and_cost() -> None:
    event = AgentResult(
        "success", True, 529, 1, "API Error: 529 overloaded", "s", 0.0042, 2500.0, 1
    )
    text = render_plain(event)
    assert text is not None
    assert text.startswith("■ failed: API error 529")
    for needle in ("API Error: 529 overloaded", "2.5s", "1 turn", "$0.0042", "permission denial"):
        assert needle in text
    rich = render_rich(event)
    assert rich is not None and "red" in str(rich.spans[0].style)


def test_render_failed_result_by_subtype() -> None:
    event = AgentResult("error_max_turns", True, None, 30, None, None, 1.5, 125_000.0, 0)
    assert render_plain(event) == "■ failed: error_max_turns · 2m 05s · 30 turns · $1.5000"


def test_render_success_is_green_and_tool_name_bold_cyan() -> None:
    ok = render_rich(EXPECTED[-1])
    assert ok is not None and "green" in str(ok.spans[0].style)
    tool = render_rich(EXPECTED[2])
    assert tool is not None
    styled = {tool.plain[span.start : span.end]: str(span.style) for span in tool.spans}
    assert styled["Bash"] == "bold cyan"


def test_render_invalid_line_and_skipped_events() -> None:
    text = render_plain(InvalidLine("garbage{", "JSONDecodeError: bad"))
    assert text is not None and "invalid output line: garbage{" in text
    assert render_plain(OtherEvent("stream_event")) is None
    assert render_rich(OtherEvent("stream_event")) is None
    assert render_plain(AssistantText("  \n ")) is None


def test_render_rich_keeps_markup_literal() -> None:
    rich = render_rich(AssistantText("[bold]not markup[/bold]"))
    assert rich is not None and rich.plain == "[bold]not markup[/bold]"


def test_render_rich_matches_plain() -> None:
    for event in transcript_events():
        rich = render_rich(event)
        assert rich is not None and rich.plain == render_plain(event)


# --- run_log.read_events: events from an offset (the rest of run_log: test_run_log.py) ---


def test_read_events_consumes_only_complete_lines(tmp_path: Path) -> None:
    path = tmp_path / "stdout.jsonl"
    lines = [line(obj) for obj in TRANSCRIPT]
    path.write_bytes(lines[0] + lines[1] + lines[2][:10])
    events, offset = read_events(path)
    assert events == EXPECTED[:2]
    assert offset == len(lines[0] + lines[1])

    with path.open("ab") as handle:
        handle.write(lines[2][10:] + b"".join(lines[3:]))
    events, offset = read_events(path, offset)
    assert events == EXPECTED[2:]
    assert offset == path.stat().st_size
    assert read_events(path, offset) == ([], offset)


def test_read_events_respects_max_bytes(tmp_path: Path) -> None:
    path = tmp_path / "stdout.jsonl"
    path.write_bytes(b"".join(line(obj) for obj in TRANSCRIPT))
    events: list[StreamEvent] = []
    offset = 0
    for _ in range(100):
        batch, offset = read_events(path, offset, max_bytes=2000)
        events += batch
        if offset == path.stat().st_size:
            break
    assert events == EXPECTED


def test_read_events_skips_line_longer_than_max_bytes(tmp_path: Path) -> None:
    path = tmp_path / "stdout.jsonl"
    path.write_bytes(b'{"type":"x","pad":"' + b"p" * 5000)
    assert read_events(path, 0, max_bytes=100) == ([], 0)  # still being written
    with path.open("ab") as handle:
        handle.write(b'"}\n' + line(TRANSCRIPT[1]))
    events, offset = read_events(path, 0, max_bytes=100)
    assert len(events) == 1 and isinstance(events[0], InvalidLine)
    assert "longer than 100 bytes" in events[0].error
    events, offset = read_events(path, offset, max_bytes=1000)
    assert events == [EXPECTED[1]]
    assert offset == path.stat().st_size


def test_read_events_missing_file(tmp_path: Path) -> None:
    assert read_events(tmp_path / "nope.jsonl", 5) == ([], 5)


# --- the summary from raw lines (the owner's fast path) ----------------------------------

FAKE_CLAUDE = Path(__file__).resolve().parent.parent / "fakes" / "fake_claude.py"


def compact(obj: Any) -> bytes:
    """A line as the CLI writes it: compact JSON, ``type`` first."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def summary_state(summary: StreamSummary) -> tuple[Any, ...]:
    return (
        summary.session_id, summary.model, summary.num_turns, summary.cost_usd,
        summary.last_activity, summary.result, summary.tool_uses, summary.invalid_lines,
        summary.api_retries, summary._run_tool_uses,
    )  # fmt: skip


def assert_fast_summary_matches(data: bytes, seed: int = 0) -> StreamSummary:
    """Feed ``data`` in random chunks to both summaries; they agree after every chunk."""
    rng = random.Random(seed)
    full, fast = StreamSummary(), StreamSummary()
    full_split, fast_split = LineSplitter(), LineSplitter()
    position = 0
    while position < len(data):
        chunk = data[position : position + rng.choice([1, 7, 100, 700, 5000, 10**6])]
        position += len(chunk)
        full.update_all(parse_lines(full_split.feed(chunk)))
        fast.update_from_lines(fast_split.feed(chunk))
        assert summary_state(fast) == summary_state(full)
    for rest in fast_split.flush():
        fast.update_all(parse_line(rest))
    for rest in full_split.flush():
        full.update_all(parse_line(rest))
    assert summary_state(fast) == summary_state(full)
    return fast


def fake_output(prompt: str, *args: str) -> bytes:
    argv = [sys.executable, str(FAKE_CLAUDE), "-p", prompt, "--output-format", "stream-json",
            "--verbose", *args]  # fmt: skip
    env = {**os.environ, "IS_SANDBOX": "1"}
    return subprocess.run(argv, capture_output=True, env=env, timeout=60).stdout


@pytest.mark.skipif(not REFERENCE.exists(), reason="shared reference transcript not present")
@pytest.mark.parametrize("seed", range(5))
def test_fast_summary_on_real_reference_transcript(seed: int) -> None:
    summary = assert_fast_summary_matches(REFERENCE.read_bytes(), seed)
    assert summary.session_id == SESSION
    assert summary.num_turns == 2
    assert summary.cost_usd == pytest.approx(0.0183)
    assert summary.last_activity == "FAKE_DONE: hi-from-bash"
    assert summary.result == EXPECTED[-1]
    assert summary.result.is_error is False and summary.result.api_error_status is None


def test_fast_summary_on_inline_transcript() -> None:
    data = b"".join(compact(obj) + b"\n" for obj in TRANSCRIPT)
    summary = assert_fast_summary_matches(data)
    assert summary.result == EXPECTED[-1] and summary.last_activity == "FAKE_DONE: hi-from-bash"


FAKE_PROMPTS = [
    "plain answer",
    "bench " + ("[text:flood]" * 50 + "[sleep:0]") * 3,  # what bench_console.py floods with
    "[text:one][tool:Read][tool-error:Bash][text:two]",
    "[api-retry:3][text:after the retries]",
    "[invalid-json:3][text:still going]",
    "[text:about to fail][fail]",
    "[api-error:529]",
    "[text:about to crash][crash]",
    "[flood:0.2]",
]


@pytest.mark.parametrize("prompt", FAKE_PROMPTS)
def test_fast_summary_on_fake_agent_output(prompt: str) -> None:
    data = fake_output(prompt)
    assert data.count(b"\n") >= 2
    expected = StreamSummary()
    expected.update_all(parse_lines(data.splitlines()))
    for seed in range(3):
        summary = assert_fast_summary_matches(data, seed)
        assert summary_state(summary) == summary_state(expected)


def test_fast_summary_on_a_resumed_run() -> None:
    first = fake_output("[text:first][tool:Read]")
    session = json.loads(first.splitlines()[0])["session_id"]
    second = fake_output("[text:second]", "--resume", session)
    summary = assert_fast_summary_matches(first + second)
    assert summary.session_id == session and summary.result is not None
    assert summary.last_activity is not None and summary.last_activity.startswith("RESUMED")


def _assistant(*blocks: dict[str, Any]) -> dict[str, Any]:
    return {"type": "assistant", "message": {"content": list(blocks), "stop_reason": None}}


def _random_line(rng: random.Random) -> bytes:
    text = {"type": "text", "text": rng.choice(["hello", "two\nlines", "  \n ", "x" * 300])}
    tool = {"type": "tool_use", "id": "t", "name": "Bash", "input": {"command": "ls"}}
    choices: list[Any] = [
        _assistant(text),
        _assistant(text, {"type": "text", "text": "   "}),
        _assistant({"type": "thinking", "thinking": "hmm"}),
        _assistant(text, tool),
        _assistant({"type": "text", "text": 'says "type":"tool_use" in text'}),
        {"type": "assistant", "message": {"content": "a string content"}},
        {"type": "assistant", "message": {"content": [text], "stop_reason": "tool_use"}},
        {"type": "user", "message": {"content": [{"type": "tool_result", "content": "ok"}]}},
        {"type": "stream_event", "event": {"type": "content_block_delta"}},
        {"type": "system", "subtype": "init", "session_id": rng.choice(["s1", "s2"])},
        {"type": "system", "subtype": "api_retry", "attempt": 1, "error_status": 529},
        {"type": "result", "subtype": "success", "is_error": rng.random() < 0.3,
         "num_turns": rng.randrange(1, 9), "total_cost_usd": rng.random(), "result": "r",
         "api_error_status": rng.choice([None, 429])},
        {"type": "rate_limit_event"},
    ]  # fmt: skip
    pick = rng.randrange(len(choices) + 5)
    if pick < len(choices):
        raw = compact(choices[pick])
        return raw if rng.random() < 0.8 else json.dumps(choices[pick]).encode()  # spaced
    return [
        b"",
        b"Warning: not json at all",
        b'{"type":"assistant","message":{"content":[{"type":"te',  # cut by a crash
        b'{"type":"\\u0061ssistant","message":{"content":"escaped type"}}',
        b'{"type":"assistant","message":{"content":[]}}  ',
    ][pick - len(choices)]


@pytest.mark.parametrize("seed", range(30))
def test_fast_summary_matches_on_random_streams(seed: int) -> None:
    rng = random.Random(seed)
    data = b"".join(_random_line(rng) + b"\n" for _ in range(rng.randrange(1, 400)))
    assert_fast_summary_matches(data, seed)


def test_fast_summary_parses_only_what_it_needs(monkeypatch: pytest.MonkeyPatch) -> None:
    import claudine_core.agents.summary as summary_module

    parsed: list[bytes | str] = []
    real = summary_module.parse_line

    def counting(line: bytes | str) -> list[StreamEvent]:
        parsed.append(line)
        return real(line)

    monkeypatch.setattr(summary_module, "parse_line", counting)
    data = fake_output("bench " + ("[text:flood]" * 50 + "[sleep:0]") * 4)
    lines = data.splitlines()
    StreamSummary().update_from_lines(lines)
    # init, 4 x (last text before the tool call + the tool call), the final text, result
    assert len(parsed) <= 12 < len(lines) // 10


def test_fast_summary_counts_truncated_lines_but_not_skipped_invalid_ones() -> None:
    summary = StreamSummary()
    summary.update_from_lines([
        b'{"type":"user","message":{"content":[{"type":"te',  # no closing brace: parsed
        b"garbage",
        b'{"type":"user",not json}',  # looks whole and cannot change a summary: skipped
    ])  # fmt: skip
    assert summary.invalid_lines == 2


# --- LineSplitter: the one-split path agrees with the capped path --------------------------


@pytest.mark.parametrize("seed", range(20))
def test_splitter_fast_path_matches_capped_path(seed: int) -> None:
    rng = random.Random(seed)
    cap = rng.choice([1, 5, 40, 1000])
    data = b"".join(
        b"y" * rng.choice([0, 1, 4, 5, 6, 39, 40, 41, 300]) + b"\n" for _ in range(200)
    ) + b"z" * rng.randrange(0, 60)  # fmt: skip
    fast, capped = LineSplitter(cap), LineSplitter(cap)
    position = 0
    while position < len(data):
        chunk = data[position : position + rng.choice([1, 3, 50, 999, 10**6])]
        position += len(chunk)
        assert fast.feed(chunk) == capped._feed_capped(chunk)
        assert fast.buffered_bytes == capped.buffered_bytes <= cap
    assert fast.flush() == capped.flush()


# --- what the supervisor keeps of an agent's output ----------------------------------------


def test_read_output_without_events_keeps_the_same_summary(tmp_path: Path) -> None:
    from claudine_core.supervisor import READ_CHUNK, RunningAgent, Supervisor

    data = fake_output("[text:a][tool:Read][invalid-json:2]" + "[text:flood]" * 30)
    (tmp_path / "stdout.jsonl").write_bytes(data)
    supervisor = Supervisor(kill_grace_s=1)
    agents = [RunningAgent(f"task-{n}", tmp_path, None, None, 0.0, None) for n in range(2)]
    published = supervisor.read_output(agents[0])
    assert supervisor.read_output(agents[1], events=False) == []
    assert len(data) < READ_CHUNK and agents[0].offset == agents[1].offset == len(data)
    assert summary_state(agents[0].summary) == summary_state(agents[1].summary)
    assert agents[0].dirty and agents[1].dirty
    assert published == parse_lines(data.splitlines())
