"""Every tool and every error path through the SDK's in-memory client."""

from __future__ import annotations

import re
from typing import Any

import pytest
from engine_helpers import agent_env, make_config, wait_for_state
from mcp import Client
from mcp_helpers import assert_matches_output_schema

from claudine_core.config import Config
from claudine_core.engine import Engine
from claudine_core.mcp.front import build_server
from claudine_core.models import TASK_ID_PATTERN, TaskState
from claudine_core.ownership import OwnerLock
from claudine_core.service import TaskService

DONE = {TaskState.COMPLETED, TaskState.FAILED, TaskState.CANCELLED}


async def call(client: Client, tool: str, **arguments: Any) -> tuple[dict[str, Any], str]:
    """A successful call: (structured content, text); the content fits the outputSchema."""
    result = await client.call_tool(tool, arguments)
    text = result.content[0].text  # type: ignore[union-attr]
    assert not result.is_error, text
    assert result.structured_content is not None
    assert_matches_output_schema(tool, result.structured_content)
    return result.structured_content, text


async def call_error(client: Client, tool: str, **arguments: Any) -> str:
    """A call that must fail as an isError result; returns its message.

    An error is readable text and nothing else: structured content on it would be checked
    against the outputSchema by the TypeScript SDK and replace the message with a complaint.
    """
    result = await client.call_tool(tool, arguments)
    assert len(result.content) == 1 and result.content[0].type == "text", result.content
    text = result.content[0].text
    assert result.is_error, text
    assert result.structured_content is None
    assert text.strip()
    return text


async def delegate(client: Client, workdir: str, prompt: str, **extra: Any) -> str:
    structured, _ = await call(client, "DelegateTask", prompt=prompt, workingDirectory=workdir,
                               **extra)
    return str(structured["taskId"])


# -- DelegateTask ---------------------------------------------------------------------------


async def test_delegate_runs_the_task_to_completion(
    connect: Any, engine: Engine, workdir: str
) -> None:
    async with connect() as client:
        structured, text = await call(client, "DelegateTask", prompt="say hello",
                                      workingDirectory=workdir, priority="P1", model="sonnet",
                                      timeout=60_000, maxOutputBuffer=65_536)
        task_id = structured["taskId"]
        assert re.match(TASK_ID_PATTERN, task_id)
        assert structured["status"] == "queued" and task_id in text
        task = structured["task"]
        assert (task["priority"], task["model"], task["timeout_s"], task["max_output_bytes"],
                task["cwd"]) == ("P1", "sonnet", 60.0, 65_536, workdir)
        done = await wait_for_state(engine, task_id, DONE)
        assert done.status is TaskState.COMPLETED, done.error
        assert "FAKE_DONE" in (done.result or "")


async def test_delegate_defaults(connect: Any, workdir: str, monkeypatch: Any) -> None:
    async with connect() as client:
        monkeypatch.chdir(workdir)
        structured, _ = await call(client, "DelegateTask", prompt="[hang] defaults")
        assert structured["task"]["priority"] == "P2"
        assert structured["task"]["cwd"] == workdir
        assert structured["task"]["worktree"] is False


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ({"prompt": "x", "cronExpression": "* * * * *", "tags": 1},
         "does not take 'cronExpression', 'tags'"),
        ({}, "needs 'prompt'"),
        ({"prompt": "   "}, "prompt is empty"),
        ({"prompt": 5}, "prompt must be a string"),
        ({"prompt": "x", "priority": "urgent"}, "priority 'urgent' is not one of P0, P1, P2"),
        ({"prompt": "x", "timeout": 10}, "timeout 10 is out of range"),
        ({"prompt": "x", "timeout": "60s"}, "timeout must be an integer"),
        ({"prompt": "x", "maxOutputBuffer": 12}, "maxOutputBuffer 12 is out of range"),
        ({"prompt": "x", "workingDirectory": "/no/such/dir"}, "does not exist"),
        ({"prompt": "x", "useWorktree": "yes"}, "useWorktree must be true or false"),
        ({"prompt": "x", "baseBranch": "main"}, "add useWorktree: true"),
        ({"prompt": "x", "mergeStrategy": "auto"}, "add useWorktree: true"),
        ({"prompt": "x", "autoCommit": False},
         "autoCommit: only applies to a worktree task: add useWorktree: true or drop it"),
        ({"prompt": "x", "model": "my model"}, "model: 'my model' is not a model name"),
        ({"prompt": "x", "useWorktree": True, "baseBranch": "a..b"},
         "baseBranch: 'a..b' is not a branch name"),
        ({"prompt": "x", "useWorktree": False, "autoCommit": True}, "add useWorktree: true"),
        ({"prompt": "x", "useWorktree": True, "autoCommit": "no"},
         "autoCommit must be true or false"),
        ({"prompt": "x", "useWorktree": True, "mergeStrategy": "squash"},
         "mergeStrategy 'squash' is not one of manual, auto, patch, pr"),
        ({"prompt": "x" * 1_048_577}, "prompt is 1,048,577 bytes of UTF-8: the limit is "
                                      "1,048,576; put long material in a file"),
        ({"prompt": "é" * 524_289}, "prompt is 1,048,578 bytes of UTF-8"),
    ],
)
async def test_delegate_rejects_bad_input(
    connect: Any, arguments: dict[str, Any], expected: str
) -> None:
    async with connect() as client:
        assert expected in await call_error(client, "DelegateTask", **arguments)


async def test_delegate_refuses_a_worktree_outside_a_repository(
    connect: Any, workdir: str
) -> None:
    async with connect() as client:
        message = await call_error(client, "DelegateTask", prompt="isolated",
                                   workingDirectory=workdir, useWorktree=True)
        assert "is not inside a git repository" in message
        assert (await call(client, "TaskStatus"))[0]["total"] == 0  # nothing was queued


async def test_delegate_accepts_lower_case_priority(connect: Any, workdir: str) -> None:
    async with connect() as client:
        structured, _ = await call(client, "DelegateTask", prompt="[hang] p", priority="p0",
                                   workingDirectory=workdir)
        assert structured["task"]["priority"] == "P0"


async def test_delegate_maps_the_isolation_fields(
    connect_waiting: Any, repo_dir: str
) -> None:
    async with connect_waiting() as waiting_client:
        import importlib.util

        arguments = {"prompt": "isolated", "workingDirectory": repo_dir, "useWorktree": True,
                     "baseBranch": "main", "mergeStrategy": "patch"}
        if importlib.util.find_spec("claudine_core.isolation.worktrees") is None:
            message = await call_error(waiting_client, "DelegateTask", **arguments)
            assert "worktree isolation is not available" in message
            return
        structured, _ = await call(waiting_client, "DelegateTask", **arguments)
        task = structured["task"]
        assert (task["worktree"], task["base_branch"], task["merge_strategy"]) == (
            True, "main", "patch")


@pytest.mark.parametrize(("auto_commit", "stored"), [(False, False), (True, True), (None, None)])
async def test_delegate_auto_commit_lands_in_the_store(
    connect_waiting: Any, config: Config, repo_dir: str, auto_commit: bool | None,
    stored: bool | None,
) -> None:
    """autoCommit is the task's commit choice; omitted, the repository's setting decides."""
    extra = {} if auto_commit is None else {"autoCommit": auto_commit}
    async with connect_waiting() as waiting_client:
        structured, _ = await call(waiting_client, "DelegateTask", prompt="isolated",
                                   workingDirectory=repo_dir, useWorktree=True, **extra)
    assert structured["task"]["commit_changes"] is stored
    service = TaskService(config)  # what the owner will read, not what the tool echoed
    try:
        assert service.get(structured["taskId"]).commit_changes is stored
    finally:
        service.close()


async def test_delegate_names_every_wrong_argument_at_once(
    connect_waiting: Any, tmp_path: Any
) -> None:
    async with connect_waiting() as waiting_client:
        message = await call_error(waiting_client, "DelegateTask", prompt="x", model="a b",
                                   workingDirectory=str(tmp_path / "gone"),
                                   mergeStrategy="auto")
    problems = dict(part.split(": ", 1) for part in message.split("; "))
    assert set(problems) == {"workingDirectory", "model", "mergeStrategy"}
    assert "does not exist" in problems["workingDirectory"]


@pytest.mark.parametrize(("setting", "use_worktree", "stored"),
                         [(True, None, True), (True, False, False), (False, None, False),
                          (False, True, True)])
async def test_use_worktree_is_yes_no_or_the_setting(
    tmp_path: Any, repo_dir: str, setting: bool, use_worktree: bool | None, stored: bool
) -> None:
    """Without useWorktree the CLAUDINE_WORKTREE setting decides; false says no."""
    config = make_config(tmp_path / "home", default_worktree=setting)
    engine = Engine(config, kind="mcp", env=agent_env())
    lock = OwnerLock(config.lock_path, kind="test")  # someone else owns it: nothing runs
    assert lock.try_acquire()
    await engine.start()
    try:
        extra = {} if use_worktree is None else {"useWorktree": use_worktree}
        async with Client(build_server(config, engine=engine)) as client:
            structured, _ = await call(client, "DelegateTask", prompt="choice",
                                       workingDirectory=repo_dir, **extra)
        assert structured["task"]["worktree"] is stored
    finally:
        await engine.stop()
        lock.release()


async def test_delegate_without_a_worktree_stores_no_commit_choice(
    connect_waiting: Any, workdir: str
) -> None:
    async with connect_waiting() as waiting_client:
        structured, _ = await call(waiting_client, "DelegateTask", prompt="plain",
                                   workingDirectory=workdir)
    assert structured["task"]["commit_changes"] is None
    assert structured["task"]["worktree"] is False


async def test_unknown_tool_is_an_error_result(connect: Any) -> None:
    async with connect() as client:
        assert "unknown tool 'Nope'" in await call_error(client, "Nope")


# -- TaskStatus -----------------------------------------------------------------------------


async def test_status_of_one_task_by_full_and_short_id(
    connect_waiting: Any, workdir: str
) -> None:
    async with connect_waiting() as waiting_client:
        task_id = await delegate(waiting_client, workdir, "one")
        structured, text = await call(waiting_client, "TaskStatus", taskId=task_id)
        assert structured["taskId"] == task_id and structured["status"] == "queued"
        assert f"Task {task_id} is queued" in text
        short = task_id.removeprefix("task-")[:8]
        structured, _ = await call(waiting_client, "TaskStatus", taskId=short)
        assert structured["taskId"] == task_id


async def test_status_lists_pages_and_filters(
    connect: Any, engine: Engine, workdir: str
) -> None:
    async with connect() as client:
        finished = await delegate(client, workdir, "quick one")
        await wait_for_state(engine, finished, DONE)
        hanging = [await delegate(client, workdir, f"[hang] {i}") for i in range(4)]
        page, text = await call(client, "TaskStatus", limit=2)
        assert page["total"] == 5 and page["hasMore"] and page["nextOffset"] == 2
        assert [t["taskId"] for t in page["tasks"]] == hanging[::-1][:2]
        assert "offset 2" in text
        last, _ = await call(client, "TaskStatus", limit=2, offset=4)
        assert [t["taskId"] for t in last["tasks"]] == [finished]
        assert not last["hasMore"] and last["nextOffset"] is None
        completed, _ = await call(client, "TaskStatus", status=["completed"])
        assert [t["taskId"] for t in completed["tasks"]] == [finished]
        assert completed["total"] == 1 and completed["counts"]["completed"] == 1
        single, _ = await call(client, "TaskStatus", status="completed")
        assert single["total"] == 1
        none, text = await call(client, "TaskStatus", status=["blocked"])
        assert none["tasks"] == [] and text == "No tasks match."


async def test_status_with_no_tasks(connect: Any) -> None:
    async with connect() as client:
        structured, text = await call(client, "TaskStatus")
        assert structured["total"] == 0 and "DelegateTask" in text


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ({"taskId": "task-000000000000"}, "call TaskStatus without taskId"),
        ({"taskId": ""}, "empty task id"),
        ({"status": ["done"]}, "status 'done' is not one of queued, blocked"),
        ({"limit": 0}, "limit 0 is out of range: use 1 to 200"),
        ({"offset": -1}, "offset must be at least 0"),
        ({"taskID": "x"}, "does not take 'taskID'"),
    ],
)
async def test_status_rejects_bad_input(
    connect: Any, arguments: dict[str, Any], expected: str
) -> None:
    async with connect() as client:
        assert expected in await call_error(client, "TaskStatus", **arguments)


# -- TaskLogs -------------------------------------------------------------------------------


async def test_logs_are_readable_text_with_a_line_tail(
    connect: Any, engine: Engine, workdir: str
) -> None:
    async with connect() as client:
        task_id = await delegate(client, workdir, "[text:first words] [text:second words] end")
        await wait_for_state(engine, task_id, DONE)
        structured, text = await call(client, "TaskLogs", taskId=task_id)
        assert "first words" in text and "second words" in text
        assert not text.lstrip().startswith("{")  # rendered, not raw JSON lines
        assert structured["lines"] == text.split("\n")
        assert structured["totalLines"] >= 3
        tail, tail_text = await call(client, "TaskLogs", taskId=task_id, tail=1)
        assert tail["lines"] == [structured["lines"][-1]] and tail["truncated"]
        assert tail_text == structured["lines"][-1]


async def test_logs_of_a_task_that_has_not_started(connect_waiting: Any, workdir: str) -> None:
    async with connect_waiting() as waiting_client:
        task_id = await delegate(waiting_client, workdir, "later")
        structured, text = await call(waiting_client, "TaskLogs", taskId=task_id)
        assert structured["lines"] == [] and "has not started yet" in text


async def test_logs_show_stderr_of_a_failed_agent(
    connect: Any, engine: Engine, workdir: str
) -> None:
    async with connect() as client:
        task_id = await delegate(client, workdir, "[crash]")
        await wait_for_state(engine, task_id, DONE)
        structured, text = await call(client, "TaskLogs", taskId=task_id)
        assert structured["stderr"] and "[stderr]" in text


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ({}, "needs 'taskId'"),
        ({"taskId": "task-000000000000"}, "no task with id"),
        ({"taskId": "task-000000000000", "tail": 0}, "tail 0 is out of range"),
        ({"taskId": "task-000000000000", "follow": True}, "does not take 'follow'"),
    ],
)
async def test_logs_reject_bad_input(
    connect: Any, arguments: dict[str, Any], expected: str
) -> None:
    async with connect() as client:
        assert expected in await call_error(client, "TaskLogs", **arguments)


# -- CancelTask -----------------------------------------------------------------------------


async def test_cancel_a_running_task(connect: Any, engine: Engine, workdir: str) -> None:
    async with connect() as client:
        task_id = await delegate(client, workdir, "[hang]")
        await wait_for_state(engine, task_id, {TaskState.RUNNING})
        structured, text = await call(client, "CancelTask", taskId=task_id, reason="not needed")
        assert "Cancel requested" in text and structured["task"]["cancel_requested"]
        done = await wait_for_state(engine, task_id, DONE)
        assert done.status is TaskState.CANCELLED and done.cancel_reason == "not needed"
        again = await call_error(client, "CancelTask", taskId=task_id)
        assert "already cancelled: nothing to cancel" in again


async def test_cancel_a_queued_task(connect_waiting: Any, workdir: str) -> None:
    async with connect_waiting() as waiting_client:
        queued = await delegate(waiting_client, workdir, "queued")
        structured, text = await call(waiting_client, "CancelTask", taskId=queued)
        assert structured["status"] == "cancelled" and text == f"Cancelled task {queued}."


async def test_cancel_a_completed_task_is_an_error(
    connect: Any, engine: Engine, workdir: str
) -> None:
    async with connect() as client:
        task_id = await delegate(client, workdir, "quick")
        await wait_for_state(engine, task_id, DONE)
        assert "already completed: nothing to cancel" in await call_error(
            client, "CancelTask", taskId=task_id)


async def test_cancel_unknown_task(connect: Any) -> None:
    async with connect() as client:
        message = await call_error(client, "CancelTask", taskId="task-abcdefabcdef", reason="x")
        assert "no task with id 'task-abcdefabcdef'" in message


# -- RetryTask / ResumeTask -----------------------------------------------------------------


async def test_retry_and_resume_a_finished_task(
    connect: Any, engine: Engine, workdir: str
) -> None:
    async with connect() as client:
        first = await delegate(client, workdir, "original work")
        await wait_for_state(engine, first, DONE)
        retried, text = await call(client, "RetryTask", taskId=first)
        assert retried["taskId"] != first and retried["task"]["parent_id"] == first
        assert first in text
        resumed, _ = await call(client, "ResumeTask", taskId=first, additionalContext="now tests")
        assert resumed["task"]["resume_session_id"] == engine.service.get(first).session_id
        done = await wait_for_state(engine, resumed["taskId"], DONE)
        assert done.status is TaskState.COMPLETED and (done.result or "").startswith("RESUMED")
        await wait_for_state(engine, retried["taskId"], DONE)


async def test_retry_and_resume_refuse_an_unfinished_task(
    connect_waiting: Any, workdir: str
) -> None:
    async with connect_waiting() as waiting_client:
        task_id = await delegate(waiting_client, workdir, "waiting")
        assert "only a finished task can be retried" in await call_error(
            waiting_client, "RetryTask", taskId=task_id)
        assert "only a finished task can be resumed" in await call_error(
            waiting_client, "ResumeTask", taskId=task_id)


async def test_resume_without_a_session_is_an_error(connect_waiting: Any, workdir: str) -> None:
    async with connect_waiting() as waiting_client:
        task_id = await delegate(waiting_client, workdir, "never ran")
        await call(waiting_client, "CancelTask", taskId=task_id)
        assert "no agent session to resume" in await call_error(
            waiting_client, "ResumeTask", taskId=task_id)


@pytest.mark.parametrize("tool", ["RetryTask", "ResumeTask"])
async def test_retry_resume_bad_input(connect: Any, tool: str) -> None:
    async with connect() as client:
        assert "needs 'taskId'" in await call_error(client, tool)
        assert "no task with id" in await call_error(client, tool, taskId="task-123456789abc")
        assert "does not take 'prompt'" in await call_error(client, tool, taskId="x", prompt="y")


# -- SetTaskPriority ------------------------------------------------------------------------


async def test_set_priority_of_a_queued_task(connect_waiting: Any, workdir: str) -> None:
    async with connect_waiting() as waiting_client:
        task_id = await delegate(waiting_client, workdir, "reorder me")
        structured, text = await call(waiting_client, "SetTaskPriority", taskId=task_id,
                                      priority="P0")
        assert structured["task"]["priority"] == "P0" and text == f"Task {task_id} is now P0."


async def test_set_priority_errors(connect: Any, engine: Engine, workdir: str) -> None:
    async with connect() as client:
        task_id = await delegate(client, workdir, "[hang]")
        await wait_for_state(engine, task_id, {TaskState.RUNNING})
        assert "priority only matters while a task waits" in await call_error(
            client, "SetTaskPriority", taskId=task_id, priority="P0")
        assert "not one of P0, P1, P2" in await call_error(
            client, "SetTaskPriority", taskId=task_id, priority="high")
        assert "needs 'priority'" in await call_error(client, "SetTaskPriority", taskId=task_id)
        assert "no task with id" in await call_error(
            client, "SetTaskPriority", taskId="task-000000000001", priority="P1")


async def test_depends_on_blocks_a_task_and_names_what_it_waits_for(
    connect_waiting: Any, workdir: str
) -> None:
    async with connect_waiting() as client:
        first = await delegate(client, workdir, "[sleep:30] first")
        structured, _ = await call(client, "DelegateTask", prompt="second",
                                   workingDirectory=workdir, dependsOn=[first[5:13]],
                                   onDependencyFailure="cancel")
        task = structured["task"]
        assert task["status"] == "blocked" and task["depends_on"] == [first]
        assert task["on_dependency_failure"] == "cancel"
        shown, _ = await call(client, "TaskStatus", taskId=task["id"])
        assert shown["waitingReason"] == f"waiting for {first[5:13]} (queued)"
        message = await call_error(client, "DelegateTask", prompt="x", workingDirectory=workdir,
                                   dependsOn=["task-0123456789ab"])
        assert message.startswith("dependsOn: no task with id 'task-0123456789ab'")
        message = await call_error(client, "DelegateTask", prompt="x", workingDirectory=workdir,
                                   dependsOn=["task-0123456789ab"], model="my model")
        assert "model: " in message and "dependsOn: no task with id" in message
        message = await call_error(client, "DelegateTask", prompt="x", workingDirectory=workdir,
                                   dependsOn=[first], onDependencyFailure="skip")
        assert "onDependencyFailure 'skip' is not one of fail, cancel, run" in message


# -- continueFrom, CreatePipeline, CancelTask wholePipeline -------------------------------


async def test_continue_from_runs_in_the_continued_conversation(
    connect: Any, engine: Engine, workdir: str, monkeypatch: Any, tmp_path: Any
) -> None:
    monkeypatch.chdir(tmp_path)  # the server's directory is not the continued task's
    async with connect() as client:
        first = await delegate(client, workdir, "first")
        structured, text = await call(client, "DelegateTask", prompt="second",
                                      continueFrom=first[5:13])
        task = structured["task"]
        assert (task["continue_from"], task["depends_on"], task["cwd"]) == (
            first, [first], workdir)
        assert task["on_dependency_failure"] == "run"  # a failed task is continued too
        assert task["status"] in ("blocked", "queued") and task["status"] in text
        done = await wait_for_state(engine, task["id"], DONE)
        continued = engine.service.get(first)
    assert done.status is TaskState.COMPLETED, done.error
    assert done.resume_session_id == continued.session_id  # resumed it (as a fork)
    assert done.session_id != continued.session_id


async def test_continue_from_refusals_name_the_argument(
    connect_waiting: Any, workdir: str, tmp_path: Any
) -> None:
    async with connect_waiting() as client:
        message = await call_error(client, "DelegateTask", prompt="x",
                                   continueFrom="task-0123456789ab")
        assert message == ("continueFrom: no task with id 'task-0123456789ab': call TaskStatus "
                           "without taskId to list the task ids")
        first = await delegate(client, workdir, "first")
        message = await call_error(client, "DelegateTask", prompt="x", continueFrom=first,
                                   workingDirectory=str(tmp_path))
        assert message.startswith(f"workingDirectory: task {first[5:13]}, whose conversation "
                                  f"this task continues, ran in {workdir}")
        page, _ = await call(client, "TaskStatus")
        assert [t["id"] for t in page["tasks"]] == [first]  # nothing else stored


async def test_create_pipeline_runs_the_steps_in_order(
    connect: Any, engine: Engine, workdir: str
) -> None:
    async with connect() as client:
        structured, text = await call(client, "CreatePipeline",
                                      steps=["plan", "build", "test"], workingDirectory=workdir,
                                      priority="P1", continueConversation=True)
        pipeline_id = structured["pipelineId"]
        tasks = structured["tasks"]
        assert re.fullmatch(r"pipe-[0-9a-f]{12}", pipeline_id) and pipeline_id in text
        assert [(t["pipeline_id"], t["pipeline_step"], t["priority"], t["status"])
                for t in tasks] == [(pipeline_id, 1, "P1", "queued"),
                                    (pipeline_id, 2, "P1", "blocked"),
                                    (pipeline_id, 3, "P1", "blocked")]
        assert [t["continue_from"] for t in tasks] == [None, tasks[0]["id"], tasks[1]["id"]]
        assert {t["on_dependency_failure"] for t in tasks} == {"fail"}
        ends = [await wait_for_state(engine, t["id"], DONE) for t in tasks]
    assert [e.status for e in ends] == [TaskState.COMPLETED] * 3
    assert [e.resume_session_id for e in ends] == [None, ends[0].session_id,
                                                   ends[1].session_id]


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ({"steps": []}, "steps has 0 item(s): give 1 to 50"),
        ({"steps": ["a"] * 51}, "steps has 51 item(s): give 1 to 50"),
        ({"steps": "one step"}, None),  # a lone string is a list of one (as for status)
        ({"steps": [1]}, "steps must be a string, not a number"),
        ({"steps": ["ok", " ", "x\x00y"]}, "steps contains a NUL character"),
        ({"steps": ["ok", " "]}, "steps: step 2: the prompt is empty"),
        ({"steps": ["ok"], "model": "my model", "timeout": 10}, "timeout 10 is out of range"),
        ({"steps": ["ok", ""], "model": "my model"},
         "model: 'my model' is not a model name: use one without spaces, e.g. sonnet, opus or "
         "claude-sonnet-4-5; steps: step 2: the prompt is empty: say what the agent should do"),
        ({"steps": ["ok"], "dependsOn": ["x"]}, "CreatePipeline does not take 'dependsOn'"),
        ({"steps": ["ok"], "baseBranch": "main"}, "baseBranch: only applies to a worktree"),
    ],
)
async def test_create_pipeline_rejects_bad_input_and_stores_nothing(
    connect_waiting: Any, workdir: str, arguments: dict[str, Any], expected: str | None
) -> None:
    async with connect_waiting() as client:
        if expected is None:
            structured, _ = await call(client, "CreatePipeline", workingDirectory=workdir,
                                       **arguments)
            assert [t["prompt"] for t in structured["tasks"]] == ["one step"]
            return
        message = await call_error(client, "CreatePipeline", workingDirectory=workdir,
                                   **arguments)
        assert expected in message
        page, _ = await call(client, "TaskStatus")
        assert page["tasks"] == []


async def test_cancel_whole_pipeline_from_any_step(connect_waiting: Any, workdir: str) -> None:
    async with connect_waiting() as client:
        made, _ = await call(client, "CreatePipeline", steps=["a", "b", "c"],
                             workingDirectory=workdir)
        ids = [t["id"] for t in made["tasks"]]
        alone = await delegate(client, workdir, "not in it")
        structured, text = await call(client, "CancelTask", taskId=ids[1][5:13],
                                      reason="stop it all", wholePipeline=True)
        assert structured["taskId"] == ids[1] and structured["status"] == "cancelled"
        assert text == (f"Cancelled pipeline {made['pipelineId']}: step 1 cancelled, step 2 "
                        "cancelled, step 3 cancelled.")
        for number, task_id in enumerate(ids, 1):
            shown, text = await call(client, "TaskStatus", taskId=task_id)
            assert (shown["status"], shown["task"]["cancel_reason"]) == ("cancelled",
                                                                         "stop it all")
            assert f"Step {number} of pipeline {made['pipelineId']}." in text
        shown, _ = await call(client, "TaskStatus", taskId=alone)
        assert shown["status"] == "queued"
        assert "has ended" in await call_error(client, "CancelTask", taskId=ids[0],
                                               wholePipeline=True)
        message = await call_error(client, "CancelTask", taskId=alone, wholePipeline=True)
        assert message == (f"task {alone} is not a step of a pipeline: drop wholePipeline to "
                           "cancel the task alone")
