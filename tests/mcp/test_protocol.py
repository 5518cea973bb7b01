"""The fast stdio front and the SDK server must say the same things; imports stay light."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import mcp_types
from mcp import Client

from claudine_core import models
from claudine_core.mcp import tools as mcp_tools
from claudine_core.mcp.tools import TOOLS, initialize_result


def test_constants_mirror_their_sources() -> None:
    assert mcp_tools.TASK_ID_PATTERN == models.TASK_ID_PATTERN
    assert mcp_tools.HANDSHAKE_PROTOCOL_VERSIONS == mcp_types.version.HANDSHAKE_PROTOCOL_VERSIONS
    assert mcp_tools.LATEST_HANDSHAKE_VERSION == mcp_types.version.LATEST_HANDSHAKE_VERSION
    assert list(mcp_tools.STATES) == [s.value for s in models.TaskState]
    assert list(mcp_tools.MERGE_STRATEGIES) == [m.value for m in models.MergeStrategy]


def test_schemas_are_strict_and_name_the_real_id_format() -> None:
    names = [tool["name"] for tool in TOOLS]
    assert names == ["DelegateTask", "TaskStatus", "TaskLogs", "CancelTask", "RetryTask",
                     "ResumeTask", "SendMessage", "SetTaskPriority", "CreatePipeline",
                     "ScheduleTask", "ListSchedules", "GetSchedule", "CancelSchedule",
                     "PauseSchedule", "ResumeSchedule"]
    for tool in TOOLS:
        schema = tool["inputSchema"]
        assert schema["additionalProperties"] is False
        if "taskId" in schema["properties"]:
            assert schema["properties"]["taskId"]["pattern"] == models.TASK_ID_PATTERN
    delegate = TOOLS[0]["inputSchema"]
    assert delegate["required"] == ["prompt"]
    assert delegate["properties"]["priority"]["default"] == "P2"


async def test_sdk_server_answers_like_the_fast_front(connect: Any) -> None:
    async with connect() as client:  # mode "auto": the modern per-request path
        listed = await client.list_tools()
    assert [t.model_dump(by_alias=True, exclude_none=True) for t in listed.tools] == TOOLS


async def test_sdk_handshake_matches_the_fast_front(config: Any, engine: Any) -> None:
    from claudine_core.mcp.front import build_server

    async with Client(build_server(config, engine=engine), mode="legacy") as client:
        listed = await client.list_tools()
        fast = initialize_result({"protocolVersion": client.protocol_version})
        assert client.protocol_version == fast["protocolVersion"]
        assert client.server_capabilities.model_dump(by_alias=True, exclude_none=True) == (
            fast["capabilities"])
        assert client.server_info is not None
        assert client.server_info.model_dump(by_alias=True, exclude_none=True) == (
            fast["serverInfo"])
        assert client.instructions == fast["instructions"]
    assert [t.model_dump(by_alias=True, exclude_none=True) for t in listed.tools] == TOOLS


def test_version_negotiation() -> None:
    assert initialize_result({"protocolVersion": "2024-11-05"})["protocolVersion"] == "2024-11-05"
    assert initialize_result({"protocolVersion": "1999-01-01"})["protocolVersion"] == (
        mcp_types.version.LATEST_HANDSHAKE_VERSION)


def test_headless_imports_neither_textual_nor_the_sdk_up_front() -> None:
    code = (
        "import sys, claudine_core.mcp.front, claudine_tui.cli.main, claudine_tui.cli.commands\n"
        "assert 'textual' not in sys.modules, 'textual'\n"
        "assert 'mcp' not in sys.modules, 'mcp SDK imported before the first answer'\n"
        "early = [m for m in ('claudine_core.store', 'claudine_core.engine',\n"
        "         'claudine_core.mcp.handlers', 'claudine_core.mcp.sdk_bridge')\n"
        "         if m in sys.modules]\n"
        "assert not early, f'imported before the loader thread asks: {early}'\n"
        "import claudine_core.mcp.sdk_bridge\n"
        "assert 'textual' not in sys.modules, 'textual via the SDK server'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
