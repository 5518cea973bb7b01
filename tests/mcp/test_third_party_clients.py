"""Real third-party MCP clients against the installed ``claudine --headless``.

- The MCP Inspector CLI (npm, pinned, installed by scripts/install-mcp-inspector.sh).
- The real ``claude`` CLI as the MCP host, its model a fake Messages API that makes it call
  ``mcp__claudine__DelegateTask``; the delegated task (fake agent) then runs and completes.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from mcp_helpers import CLAUDINE, StdioServer

from claudine_core.config import load_config
from claudine_core.service import TaskService

pytestmark = pytest.mark.slow


def run_inspector(inspector: Path, env: dict[str, str], *method: str) -> Any:
    env_args = [arg for name in ("CLAUDINE_HOME", "CLAUDINE_CLAUDE_BIN", "CLAUDINE_CONFIG",
                                 "IS_SANDBOX", "CLAUDINE_CPU_THRESHOLD",
                                 "CLAUDINE_MEMORY_RESERVE")
                for arg in ("-e", f"{name}={env[name]}")]
    result = subprocess.run([str(inspector), "--cli", *env_args, CLAUDINE, "--headless",
                             *method], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_inspector_lists_tools_and_calls_them(
    inspector: Path, home_env: tuple[Path, dict[str, str]]
) -> None:
    home, env = home_env
    listed = run_inspector(inspector, env, "--method", "tools/list")
    assert [tool["name"] for tool in listed["tools"]] == [
        "DelegateTask", "TaskStatus", "TaskLogs", "CancelTask", "RetryTask", "ResumeTask",
        "SendMessage", "SetTaskPriority", "CreatePipeline", "ScheduleTask", "ListSchedules",
        "GetSchedule", "CancelSchedule", "PauseSchedule", "ResumeSchedule"]
    delegated = run_inspector(inspector, env, "--method", "tools/call", "--tool-name",
                              "DelegateTask", "--tool-arg", "prompt=[hang] from the inspector",
                              "--tool-arg", "priority=P1")
    task_id = delegated["structuredContent"]["taskId"]
    assert delegated["structuredContent"]["task"]["priority"] == "P1"
    status = run_inspector(inspector, env, "--method", "tools/call", "--tool-name",
                           "TaskStatus", "--tool-arg", f"taskId={task_id}")
    assert status["structuredContent"]["taskId"] == task_id
    assert not status.get("isError")
    bad = run_inspector(inspector, env, "--method", "tools/call", "--tool-name",
                        "DelegateTask", "--tool-arg", "prompt=x", "--tool-arg", "colour=red")
    assert bad["isError"] and "does not take 'colour'" in bad["content"][0]["text"]
    # Stop the agent the inspector's short-lived servers left running (the next owner
    # adopts it): a server on the same home takes over and cancels it.
    server = StdioServer(env)
    try:
        server.initialize()
        assert not server.call("CancelTask", taskId=task_id)["isError"]
        server.wait_for_status(task_id, {"cancelled"})
    finally:
        server.close()


@pytest.mark.real_claude
def test_claude_code_delegates_through_claudine(
    real_claude_bin: Path, real_claude_env: dict[str, str], fake_api: Any,
    home_env: tuple[Path, dict[str, str]], tmp_path: Path,
) -> None:
    home, server_env = home_env
    mcp_config = tmp_path / "mcp.json"
    mcp_config.write_text(json.dumps({"mcpServers": {"claudine": {
        "command": CLAUDINE, "args": ["--headless"],
        "env": {name: server_env[name] for name in server_env if name.startswith("CLAUDINE_")}
        | {"IS_SANDBOX": "1"},
    }}}))
    prompt = ('Delegate it.\nTOOL: mcp__claudine__DelegateTask '
              '{"prompt":"[text:delegated from claude code] finish"}')
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLAUDINE_")}
    env.update(real_claude_env)
    result = subprocess.run(
        [str(real_claude_bin), "-p", prompt, "--output-format", "stream-json", "--verbose",
         "--mcp-config", str(mcp_config), "--strict-mcp-config",
         "--allowedTools", "mcp__claudine__DelegateTask"],
        capture_output=True, text=True, env=env, cwd=str(tmp_path), timeout=120,
    )
    assert result.returncode == 0, result.stderr + result.stdout
    events = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    init = events[0]
    assert {"name": "claudine", "status": "connected"} in init["mcp_servers"], init
    tool_results = [block for event in events if event["type"] == "user"
                    for block in event["message"]["content"]
                    if block.get("type") == "tool_result"]
    assert tool_results and not tool_results[0].get("is_error"), tool_results
    # Claude Code hands the model the structured content when there is some.
    assert '\\"status\\":\\"queued\\"' in json.dumps(tool_results[0]["content"])
    # The host has closed the server; a new one on the same home runs the task to the end.
    config = load_config(env={"CLAUDINE_HOME": str(home)}, config_file=Path(
        server_env["CLAUDINE_CONFIG"]))
    service = TaskService(config)
    try:
        tasks = service.list_tasks()
    finally:
        service.close()
    assert len(tasks) == 1 and tasks[0].prompt == "[text:delegated from claude code] finish"
    server = StdioServer(server_env)
    try:
        server.initialize()
        status = server.wait_for_status(tasks[0].id, {"completed", "failed"})
        assert status["status"] == "completed", status
        logs = server.call("TaskLogs", taskId=tasks[0].id)
        assert "delegated from claude code" in logs["content"][0]["text"]
    finally:
        server.close()
