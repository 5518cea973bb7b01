"""CreatePipeline and CancelTask wholePipeline through the MCP Inspector CLI: the
TypeScript SDK's client checks a result's structured content against the tool's
outputSchema, so a result that did not fit would come back as a schema complaint."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from test_third_party_clients import run_inspector

from claudine_core.config import load_config
from claudine_core.service import TaskService

pytestmark = pytest.mark.slow


def test_inspector_creates_and_cancels_a_pipeline(
    inspector: Path, home_env: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    home, env = home_env
    created = run_inspector(inspector, env, "--method", "tools/call", "--tool-name",
                            "CreatePipeline", "--tool-arg", 'steps=["[hang] plan", "build"]',
                            "--tool-arg", f"workingDirectory={tmp_path}",
                            "--tool-arg", "continueConversation=true")
    assert not created.get("isError"), created
    pipeline_id = created["structuredContent"]["pipelineId"]
    steps = created["structuredContent"]["tasks"]
    assert [(s["pipeline_id"], s["pipeline_step"], s["status"]) for s in steps] == [
        (pipeline_id, 1, "queued"), (pipeline_id, 2, "blocked")]
    cancelled = run_inspector(inspector, env, "--method", "tools/call", "--tool-name",
                              "CancelTask", "--tool-arg", f"taskId={steps[1]['id']}",
                              "--tool-arg", "wholePipeline=true")
    assert not cancelled.get("isError"), cancelled
    assert cancelled["structuredContent"]["status"] == "cancelled"
    bad = run_inspector(inspector, env, "--method", "tools/call", "--tool-name",
                        "CreatePipeline", "--tool-arg", 'steps=["ok", ""]')
    assert bad["isError"]
    assert bad["content"][0]["text"] == ("steps: step 2: the prompt is empty: say what the "
                                         "agent should do")
    service = TaskService(load_config(env={"CLAUDINE_HOME": str(home)},
                                      config_file=Path(env["CLAUDINE_CONFIG"])))
    try:
        assert len(service.list_tasks()) == 2  # the refused pipeline stored nothing
        # The first step's agent is stopped by the owner the servers handed the home to.
        deadline = time.monotonic() + 30
        while service.get(steps[0]["id"]).status.value != "cancelled":
            assert time.monotonic() < deadline, service.get(steps[0]["id"])
            time.sleep(0.1)
    finally:
        service.close()
