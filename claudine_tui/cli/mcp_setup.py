"""``claudine mcp test`` and ``claudine mcp config``: check the MCP setup, print host snippets."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from claudine_core.config import Config

START_TIMEOUT_S = 20.0


def run(action: str, config: Config) -> int:
    if action == "test":
        return check_setup(config)
    if action == "config":
        print(host_snippets(config))
        return 0
    print(f"claudine: error: unknown mcp action {action!r}", file=sys.stderr)
    return 2


# -- claudine mcp test ----------------------------------------------------------------------


def check_setup(config: Config) -> int:
    """Say, check by check, whether a host can use ``claudine --headless``; 1 on a problem."""
    checks = [_check_claude(config), _check_home(config), _check_server(config)]
    for ok, message in checks:
        print(f"{'ok  ' if ok else 'FAIL'} {message}")
    failed = sum(not ok for ok, _ in checks)
    print("All good: add it with 'claudine mcp config'." if not failed
          else f"{failed} problem(s) found; fix them and run 'claudine mcp test' again.")
    return 1 if failed else 0


def _check_claude(config: Config) -> tuple[bool, str]:
    from claudine_core.agents.claude import AgentNotFound, resolve_executable

    try:
        path = resolve_executable(config.claude_bin, os.environ)
    except AgentNotFound as exc:
        return False, f"claude binary: {exc}"
    return True, f"claude binary: {path}"


def _check_home(config: Config) -> tuple[bool, str]:
    home = config.home
    try:
        home.mkdir(mode=0o700, parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=home, prefix=".write-test-"):
            pass
    except OSError as exc:
        return False, (f"home {home} is not writable ({exc.strerror or exc}): fix its "
                       "permissions or set CLAUDINE_HOME to another directory")
    from claudine_core.ownership import current_owner

    owner = current_owner(config.lock_path)
    who = (f"owned by {owner.get('kind', '?')} (pid {owner.get('pid', '?')})" if owner
           else "no owner running; a headless server will own it")
    return True, f"home {home} is writable; {who}"


def server_command() -> list[str]:
    """How to start this installation's headless server (absolute, for hosts without PATH)."""
    script = Path(sys.executable).with_name("claudine")
    if script.exists():
        return [str(script), "--headless"]
    found = shutil.which("claudine")
    if found:
        return [found, "--headless"]
    return [sys.executable, "-m", "claudine_tui", "--headless"]


def _check_server(config: Config) -> tuple[bool, str]:
    command = [*server_command(), "--home", str(config.home)]
    started = time.monotonic()
    try:
        process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE)
    except OSError as exc:
        return False, f"server: could not start {command[0]}: {exc}"
    stderr: list[bytes] = []
    assert process.stderr is not None
    threading.Thread(target=lambda: stderr.extend(process.stderr or []), daemon=True).start()
    try:
        init = _exchange(process, 1, "initialize", {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "claudine-mcp-test", "version": "1"}})
        init_at = time.monotonic() - started
        _send(process, {"jsonrpc": "2.0", "method": "notifications/initialized"})
        listed = _exchange(process, 2, "tools/list", None)
        listed_at = time.monotonic() - started
    except (OSError, ValueError, TimeoutError) as exc:
        process.kill()
        process.wait()
        tail = b"".join(stderr).decode(errors="replace").strip()[-800:]
        return False, f"server: {' '.join(command)} did not answer ({exc}). stderr:\n{tail}"
    finally:
        if process.stdin:
            process.stdin.close()
    try:
        process.wait(timeout=START_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
    names = [tool.get("name") for tool in listed.get("result", {}).get("tools", [])]
    if "error" in init or not names:
        return False, f"server answered with an error: {init.get('error') or listed}"
    return True, (f"server: {' '.join(command[:2])} answered initialize in {init_at:.2f} s "
                  f"and listed {len(names)} tools in {listed_at:.2f} s ({', '.join(names)})")


def _send(process: subprocess.Popen[bytes], message: dict[str, Any]) -> None:
    assert process.stdin is not None
    process.stdin.write(json.dumps(message).encode() + b"\n")
    process.stdin.flush()


def _exchange(process: subprocess.Popen[bytes], request_id: int, method: str,
              params: dict[str, Any] | None) -> dict[str, Any]:
    message: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
    if params is not None:
        message["params"] = params
    _send(process, message)
    box: list[bytes] = []
    reader = threading.Thread(target=lambda: box.append(process.stdout.readline()  # type: ignore[union-attr]
                                                        ), daemon=True)
    reader.start()
    reader.join(START_TIMEOUT_S)
    if not box:
        raise TimeoutError(f"no answer to {method} within {START_TIMEOUT_S:g} s")
    if not box[0]:
        raise ValueError(f"the server exited before answering {method}")
    reply = json.loads(box[0])
    if reply.get("id") != request_id:
        raise ValueError(f"unexpected reply to {method}: {box[0][:200]!r}")
    return dict(reply)


# -- claudine mcp config --------------------------------------------------------------------


def host_snippets(config: Config) -> str:
    command = server_command()
    env = {"CLAUDINE_HOME": str(config.home)} if os.environ.get("CLAUDINE_HOME") else {}
    entry: dict[str, Any] = {"command": command[0], "args": command[1:]}
    if env:
        entry["env"] = env
    env_flags = "".join(f" -e {k}={v}" for k, v in env.items())
    project = json.dumps({"mcpServers": {"claudine": {"type": "stdio", **entry}}}, indent=2)
    desktop = json.dumps({"mcpServers": {"claudine": entry}}, indent=2)
    return "\n".join([
        "# Claude Code, for every project of this user:",
        f"claude mcp add --scope user{env_flags} claudine -- {' '.join(command)}",
        "",
        "# Claude Code, for one project: .mcp.json at the project root",
        project,
        "",
        "# Claude Desktop: claude_desktop_config.json (macOS: ~/Library/Application Support/"
        "Claude/, Windows: %APPDATA%\\Claude\\)",
        desktop,
    ])
