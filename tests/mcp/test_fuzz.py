"""Fuzzing the tools: whatever arguments a host sends, it gets a result, never a crash.

Every tool's arguments (types, sizes, unicode with NUL and lone surrogates, huge numbers,
extra fields), with Hypothesis and exhaustively at each field's edges, through ``run_tool``
and through the SDK's in-memory client: every call returns a result, none says "internal
error", and an argument refused at the door is named in the message. (The wire, raw lines
to a real process, is fuzzed in test_malformed.py.)

The tasks a fuzzed DelegateTask queues never run: the home is owned by a lock the test
holds, so every engine here is a client (commands are committed rows, nothing starts).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fuzz_values import json_values, small_text
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp import Client

from claudine_core.config import Config
from claudine_core.engine import Engine
from claudine_core.mcp.front import build_server
from claudine_core.mcp.handlers import ToolOutcome, run_tool
from claudine_core.mcp.tools import TOOLS, TOOLS_BY_NAME, ToolInputError, check_arguments

FUZZ = settings(max_examples=100, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])

# -- values ---------------------------------------------------------------------------------

KNOWN, KNOWN_PREFIX = "<known task>", "<known task prefix>"  # stand for a task that exists


def edges(field: str, spec: dict[str, Any]) -> list[Any]:
    """Values a real host might send for ``field``: valid ones and ones just past an edge."""
    kind = spec.get("type")
    if "enum" in spec:
        return [*spec["enum"], *(v.lower() for v in spec["enum"]), " P0 ", "P9", ""]
    if kind == "integer":
        low, high = spec.get("minimum", 0), spec.get("maximum", 2**53)
        return [low, high, low - 1, high + 1, (low + high) // 2, float(low), 2**63, -(2**63)]
    if kind == "boolean":
        return [True, False]
    if kind == "number":
        low, high = spec.get("exclusiveMinimum", 0), spec.get("maximum", 2**53)
        return [high, high / 2, 0.01, low, low - 1, high + 0.01, 1e-300, 2**63, 10**400,
                float("inf"), float("nan")]
    if kind == "array":
        items = edges(field, spec["items"])
        return [[], items[:1], items, items * 50, items[:1] * 300_000, items[0]]
    if field == "workingDirectory":
        return [WORKDIR, "/", "/no/such/dir", "~", "relative", "/" + "a" * 300,
                "/" + "é" * 200, "/etc/passwd", "/etc/passwd/x", "/proc/self/root" * 200,
                "~nobody-such/x", "//", "/tmp/../tmp", "/" + "a/" * 2_000]
    if field == "taskId":
        return [KNOWN, KNOWN_PREFIX, "task-000000000000", "000000000000", "0000", "00",
                "task-", "TASK-0", "  task-0000  ", "task-0123456789ab" * 2, "task-zzzz", ""]
    limit = spec.get("maxLength", 4_096)
    return ["x", " ", "a" * limit, "é" * min(limit, 1_048_576 // 2 + 1), "\U0001f600",
            "two\nlines", "-rf /", "$(reboot)", "' OR 1=1 --"]


def plausible(field: str, spec: dict[str, Any]) -> st.SearchStrategy[Any]:
    return st.sampled_from(edges(field, spec))


WORKDIR = "/tmp"


def arguments_for(tool: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Argument objects for ``tool``: its own fields (mostly plausible, some arbitrary),
    now and then extra ones, and now and then not an object at all."""
    schema = tool["inputSchema"]

    def value(name: str) -> st.SearchStrategy[Any]:
        edge = plausible(name, schema["properties"][name])
        return st.one_of(edge, edge, edge, json_values)

    fields = st.fixed_dictionaries(
        {name: value(name) for name in schema["required"]},
        optional={name: value(name) for name in schema["properties"]
                  if name not in schema["required"]})
    extra = st.dictionaries(small_text, json_values, min_size=1, max_size=2)
    objects = st.one_of(fields, fields, fields,
                        st.builds(lambda own, more: {**more, **own}, fields, extra))
    return st.one_of(objects, objects, objects, objects, st.none(), json_values)


VALID = {"prompt": "do it", "taskId": KNOWN, "priority": "P1", "scheduleType": "cron",
         "message": "hello", "scheduleId": "sched-000000000000", "steps": ["do it"]}


def near_valid(tool: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """The required fields valid (the task exists), and one field at one of its edges:
    these get past the door and into the handlers and the service."""
    schema = tool["inputSchema"]
    base = {name: VALID[name] for name in schema["required"]}
    return st.sampled_from(list(schema["properties"])).flatmap(
        lambda name: plausible(name, schema["properties"][name]).map(
            lambda edge: {**base, name: edge}))


tool_calls = st.sampled_from(TOOLS).flatmap(
    lambda tool: st.tuples(st.just(tool["name"]),
                           st.one_of(arguments_for(tool), near_valid(tool))))


def names_an_argument(message: str, name: str, arguments: Any) -> bool:
    """The message says which argument is wrong (or which tool or shape it expected)."""
    fields = list(TOOLS_BY_NAME[name]["inputSchema"]["properties"]) if name in TOOLS_BY_NAME \
        else []
    keys = list(arguments) if isinstance(arguments, dict) else []
    return (any(field in message for field in fields)
            or any(ascii(key)[:20] in message for key in keys)
            or "unknown tool" in message or "takes its arguments as an object" in message)


# -- fixtures -------------------------------------------------------------------------------


@pytest.fixture
def known_task(client_engine: Engine) -> str:
    """A task that exists (finished, with an agent session: Retry and Resume take it)."""
    outcome = run_tool(client_engine.service, "DelegateTask", {"prompt": "exists"})
    assert outcome.structured is not None
    task_id = str(outcome.structured["taskId"])
    assert not run_tool(client_engine.service, "CancelTask", {"taskId": task_id}).is_error
    return task_id


def with_known(arguments: Any, task_id: str) -> Any:
    if isinstance(arguments, dict) and arguments.get("taskId") in (KNOWN, KNOWN_PREFIX):
        known = task_id if arguments["taskId"] == KNOWN else task_id[:9]
        return {**arguments, "taskId": known}
    return arguments


def check_outcome(outcome: Any, name: str, arguments: Any) -> None:
    assert isinstance(outcome, ToolOutcome)
    assert isinstance(outcome.text, str) and outcome.text.strip()
    outcome.text.encode("utf-8")  # it goes on the wire as it is
    assert "internal error" not in outcome.text, outcome.text
    if outcome.is_error:
        assert outcome.structured is None
    try:
        check_arguments(name, arguments)
    except ToolInputError as exc:  # refused at the door: the result says which argument
        assert outcome.is_error and outcome.text == str(exc)
        assert names_an_argument(outcome.text, name, arguments), outcome.text


# -- the tools, in memory -------------------------------------------------------------------


@FUZZ
@given(call=tool_calls)
def test_run_tool_answers_any_arguments(client_engine: Engine, known_task: str,
                                        call: tuple[str, Any]) -> None:
    name, arguments = call[0], with_known(call[1], known_task)
    outcome = run_tool(client_engine.service, name, arguments)
    check_outcome(outcome, name, arguments)


def every_edge(task_id: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Each field of each tool at each of its edges, the other fields valid."""
    for tool in TOOLS:
        schema = tool["inputSchema"]
        base = {name: VALID[name] for name in schema["required"]}
        for field, spec in schema["properties"].items():
            for edge in edges(field, spec):
                yield tool["name"], with_known({**base, field: edge}, task_id)


def test_every_edge_of_every_field(client_engine: Engine, known_task: str) -> None:
    """Exhaustive, so what lies deep in the handlers and the service (paths, lookups,
    the store's integer range) is reached for sure, not by luck."""
    for name, arguments in every_edge(known_task):
        check_outcome(run_tool(client_engine.service, name, arguments), name, arguments)


async def test_every_edge_of_every_field_through_the_sdk(
    held_home: Config, client_engine: Engine, known_task: str
) -> None:
    async with Client(build_server(held_home, engine=client_engine)) as client:
        for name, arguments in every_edge(known_task):
            result = await client.call_tool(name, arguments)
            text = result.content[0].text  # type: ignore[union-attr]
            assert "internal error" not in text, (name, arguments, text)
            assert result.structured_content is None if result.is_error else True


@FUZZ
@given(name=st.one_of(st.sampled_from([t["name"] for t in TOOLS]), small_text,
                      st.sampled_from(["taskstatus", "DelegateTask\x00", "Task\ud800"])),
       arguments=json_values)
def test_run_tool_answers_any_name(client_engine: Engine, name: str, arguments: Any) -> None:
    check_outcome(run_tool(client_engine.service, name, arguments), name, arguments)


def one_bad_argument() -> st.SearchStrategy[tuple[str, dict[str, Any], str]]:
    """A call whose arguments are all fine but one, which is broken in one way or another."""

    def bad_text(spec: dict[str, Any]) -> st.SearchStrategy[str]:
        too_long = "a" * (spec.get("maxLength", 4_096) + 1)
        return st.sampled_from(["a\x00b", "\x00", "x\ud800y", "\udfff", too_long])

    def build(tool: dict[str, Any]) -> st.SearchStrategy[tuple[str, dict[str, Any], str]]:
        props = tool["inputSchema"]["properties"]
        strings = [name for name, spec in props.items() if spec["type"] == "string"]
        integers = [name for name, spec in props.items() if spec["type"] == "integer"]
        base = {name: VALID[name] for name in tool["inputSchema"]["required"]}
        choices = [st.sampled_from(strings).flatmap(
            lambda field: st.tuples(st.just(field), bad_text(props[field])))] if strings else []
        choices.append(st.tuples(st.sampled_from(list(props)),
                                 st.sampled_from([[1], {"a": 1}, [None]])))
        # 1.5 is wrong for every field but a number of dollars.
        choices.append(st.tuples(st.sampled_from([name for name, spec in props.items()
                                                  if spec["type"] != "number"]),
                                 st.just(1.5)))
        numbers = [name for name, spec in props.items() if spec["type"] == "number"]
        if numbers:
            choices.append(st.tuples(st.sampled_from(numbers),
                                     st.sampled_from([0, -1, 10**30, float("inf"),
                                                      float("nan"), True, "12"])))
        if integers:
            choices.append(st.tuples(st.sampled_from(integers),
                                     st.sampled_from([10**30, -(10**30), 2**53, float("inf"),
                                                      float("nan"), True, "12"])))
        return st.one_of(choices).map(
            lambda pair: (tool["name"], {**base, pair[0]: pair[1]}, pair[0]))

    return st.sampled_from(TOOLS).flatmap(build)


@FUZZ
@given(call=one_bad_argument())
def test_a_bad_argument_is_named(client_engine: Engine, known_task: str,
                                 call: tuple[str, dict[str, Any], str]) -> None:
    name, arguments, bad = call[0], with_known(call[1], known_task), call[2]
    outcome = run_tool(client_engine.service, name, arguments)
    assert outcome.is_error, (arguments, outcome.text)
    assert outcome.text.startswith(bad) or f" {bad} " in outcome.text, outcome.text
    assert "internal error" not in outcome.text


@settings(max_examples=60, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(call=tool_calls)
async def test_the_sdk_client_gets_a_result_for_any_arguments(
    held_home: Config, client_engine: Engine, known_task: str, call: tuple[str, Any]
) -> None:
    """The same through the SDK server and its in-memory client."""
    name, arguments = call[0], with_known(call[1], known_task)
    if not isinstance(arguments, dict):  # the client's API takes an object
        arguments = {"value": arguments}
    async with Client(build_server(held_home, engine=client_engine)) as client:
        result = await client.call_tool(name, arguments)
    text = result.content[0].text  # type: ignore[union-attr]
    assert "internal error" not in text, text
    if result.is_error:
        assert result.structured_content is None


def test_the_door_limits_are_the_services() -> None:
    """The schema's limits are the ones the service enforces again (for the CLI and the
    console): a host that keeps to the schema is never refused by the service for size."""
    from claudine_core import service
    from claudine_core.mcp import tools as mcp_tools

    assert mcp_tools.MAX_PROMPT_BYTES == service.MAX_PROMPT_BYTES
    assert mcp_tools.MAX_FIELD_CHARS == service.MAX_FIELD_CHARS
