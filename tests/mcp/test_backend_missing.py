"""The headless server of a home whose ``backend`` setting names Ray, in a Python without
Ray: the waiting request is told why, stderr says it in one line (how to install it), and
the server exits with status 1, no traceback."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from mcp_helpers import StdioServer

pytestmark = pytest.mark.skipif(importlib.util.find_spec("ray") is not None,
                                reason="ray is installed here: the backend would connect")


def test_a_ray_backend_without_ray_is_one_line_and_an_exit(
    home_env: tuple[Path, dict[str, str]],
) -> None:
    _, env = home_env
    server = StdioServer({**env, "CLAUDINE_BACKEND": "ray",
                          "CLAUDINE_RAY_ADDRESS": "127.0.0.1:6379"})
    try:
        server.initialize()
        reply = server.request("tools/call", {"name": "TaskStatus", "arguments": {}})
        assert reply["error"]["code"] == -32603, reply
        assert "pip install 'claudine[ray]'" in reply["error"]["message"], reply
    finally:
        code = server.close()
    assert code == 1
    assert "Traceback" not in server.stderr
    last = server.stderr.strip().splitlines()[-1]
    assert last.startswith("claudine: error: backend = 'ray' (CLAUDINE_BACKEND) needs Ray")
