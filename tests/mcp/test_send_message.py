"""SendMessage through the SDK's in-memory client: to a running agent (its next turn),
to a finished task (a resume), refused before a task has started; TaskStatus shows the
delivery."""

from __future__ import annotations

from typing import Any

from engine_helpers import wait_for_state, wait_until
from test_tools import call, call_error

from claudine_core.agents import inbox
from claudine_core.engine import Engine
from claudine_core.models import TaskState

DONE = {TaskState.COMPLETED, TaskState.FAILED, TaskState.CANCELLED}


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
