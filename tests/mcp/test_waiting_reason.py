"""TaskStatus tells a model why its task has not started, as the owner (another process)
decided it, in the structured content and in the text."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest
from engine_helpers import CLAUDINE, cli_env
from mcp_helpers import StdioServer, assert_matches_output_schema

from claudine_core.ownership import current_owner

pytestmark = pytest.mark.slow


def test_task_status_carries_the_owners_waiting_reason(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    # The owner keeps 1 TiB free: nothing ever fits. The MCP server's own settings keep no
    # reserve, so the reason it reports can only be the owner's.
    owner = subprocess.Popen([*CLAUDINE, "serve"], env=cli_env(home, CLAUDINE_MEMORY_RESERVE="1T"),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server = None
    try:
        deadline = time.monotonic() + 30
        while (current_owner(home / "engine.lock") or {}).get("pid") != owner.pid:
            assert time.monotonic() < deadline, "the serve never owned the home"
            time.sleep(0.05)
        # Only now: a headless server started at the same time may take the home first
        # (its engine starts within about 0.1 s), and then the serve is the client.
        server = StdioServer(cli_env(home))
        server.initialize()
        delegated = server.call("DelegateTask", prompt="never runs", workingDirectory=str(
            tmp_path))
        task_id = delegated["structuredContent"]["taskId"]
        while True:
            result = server.call("TaskStatus", taskId=task_id)
            structured = result["structuredContent"]
            if structured["waitingReason"] or structured["status"] != "queued" or (
                    time.monotonic() > deadline + 30):
                break
            time.sleep(0.05)
        assert_matches_output_schema("TaskStatus", structured)
        assert structured["status"] == "queued"
        assert structured["waitingReason"].startswith("memory ")
        assert structured["waitingReason"].endswith("reserve 1024.0 GiB")
        assert f"Waiting: {structured['waitingReason']}." in result["content"][0]["text"]
    finally:
        if server is not None:
            server.close()
        owner.send_signal(signal.SIGTERM)
        owner.wait(timeout=20)
