"""SendMessage through the SDK's in-memory client: to a running agent (its next turn),
to a finished task (a resume), refused before a task has started; TaskStatus shows the
delivery."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from engine_helpers import wait_for_state, wait_until
from mcp import Client
from mcp_helpers import assert_matches_output_schema

from claudine_core.agents import inbox
from claudine_core.config import Config
from claudine_core.engine import Engine
from claudine_core.mcp.front import build_server
from claudine_core.models import TaskState
from claudine_core.ownership import OwnerLock

DONE = {TaskState.COMPLETED, TaskState.FAILED, TaskState.CANCELLED}


@pytest.fixture
async def connect_waiting(config: Config) -> AsyncIterator[Callable[[], Client]]:
    """Clients of a server whose engine is a client of a home another owner holds (that
    never runs anything), so tasks stay queued."""
    config.home.mkdir(parents=True, exist_ok=True)
    lock = OwnerLock(config.lock_path, kind="test")
    assert lock.try_acquire()
    engine = Engine(config, kind="mcp")
    await engine.start()
    try:
        yield lambda: Client(build_server(config, engine=engine))
    finally:
        await engine.stop()
        lock.release()


async def call(client: Client, tool: str, **arguments: Any) -> tuple[dict[str, Any], str]:
    result = await client.call_tool(tool, arguments)
    text = result.content[0].text  # type: ignore[union-attr]
    assert not result.is_error, text
    assert result.structured_content is not None
    assert_matches_output_schema(tool, result.structured_content)
    return result.structured_content, text


async def call_error(client: Client, tool: str, **arguments: Any) -> str:
    result = await client.call_tool(tool, arguments)
    text = result.content[0].text  # type: ignore[union-attr]
    assert result.is_error and result.structured_content is None, text
    return text


async def test_a_message_to_a_running_agent_is_delivered_and_shown(
    connect: Any, engine: Engine, workdir: str
) -> None:
    async with connect() as client:
        started, _ = await call(client, "DelegateTask", prompt="[sleep:2] work",
                                workingDirectory=workdir)
        task_id = started["taskId"]
        await wait_for_state(engine, task_id, {TaskState.RUNNING})
        await wait_until(lambda: any(inbox.accepting(str(d))
                                     for d in engine.service.attempt_dirs(task_id)))
        sent, text = await call(client, "SendMessage", taskId=task_id,
                                message="then tidy up")
        assert sent["resumeTaskId"] is None and "next turn" in text
        done = await wait_for_state(engine, task_id, DONE)
        assert done.result == "FAKE_DONE: then tidy up"
        status, text = await call(client, "TaskStatus", taskId=task_id)
        (message,) = status["messages"]
        assert message["id"] == sent["message"]["id"] and message["delivered_at"]
        assert "Messages sent: 1, delivered: 1." in text
        logs, _ = await call(client, "TaskLogs", taskId=task_id)
        assert "you: then tidy up" in logs["lines"]


async def test_a_message_to_a_finished_task_resumes_it(
    connect: Any, engine: Engine, workdir: str
) -> None:
    async with connect() as client:
        first, _ = await call(client, "DelegateTask", prompt="first", workingDirectory=workdir)
        await wait_for_state(engine, first["taskId"], DONE)
        sent, _ = await call(client, "SendMessage", taskId=first["taskId"], message="more")
        resumed = await wait_for_state(engine, sent["resumeTaskId"], DONE)
        assert resumed.status is TaskState.COMPLETED and resumed.result == "RESUMED FAKE_DONE: more"


async def test_a_message_is_refused_before_the_task_runs_and_when_empty(
    connect_waiting: Any, workdir: str
) -> None:
    async with connect_waiting() as client:
        queued, _ = await call(client, "DelegateTask", prompt="later", workingDirectory=workdir)
        refused = await call_error(client, "SendMessage", taskId=queued["taskId"],
                                   message="hello")
        assert "has no conversation yet" in refused
        empty = await call_error(client, "SendMessage", taskId=queued["taskId"], message=" ")
        assert "message" in empty and "empty" in empty
        status, _ = await call(client, "TaskStatus", taskId=queued["taskId"])
        assert status["messages"] == []
