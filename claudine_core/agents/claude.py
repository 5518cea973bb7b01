"""The Claude Code agent profile: how a task becomes a ``claude`` command line.

Kept apart from the supervisor so another agent CLI (or a remote backend) can plug in
behind the same narrow seam: argv, environment, and how to read its failure.
"""

from __future__ import annotations

import os
import shutil
import signal
from collections.abc import Mapping
from pathlib import Path

from claudine_core.models import PermissionMode, Task

# Variables that make a child `claude` believe it runs nested inside another Claude Code
# session (and change its behaviour); an agent must start as a fresh top-level session.
NESTED_SESSION_VARIABLES = (
    "CLAUDECODE",
    "CLAUDE_CODE_ENTRYPOINT",
    "CLAUDE_CODE_SSE_PORT",
    "CLAUDE_AGENT_SDK_VERSION",
    "CLAUDE_CODE_SESSION_ID",
)

ROOT_REFUSAL_MARKER = "cannot be used with root/sudo privileges"

RESUME_AFTER_INTERRUPTION = (
    "Your previous run of this task was interrupted before it finished. "
    "Continue the task from where you left off."
)


class AgentNotFound(FileNotFoundError):
    """The agent executable is not installed or not on PATH."""


def resolve_executable(claude_bin: str, env: Mapping[str, str] | None = None) -> str:
    """Absolute path of the agent executable, or AgentNotFound with what to do."""
    path_var = (env or os.environ).get("PATH")
    found = shutil.which(claude_bin, path=path_var)
    if found:
        return found
    if os.sep in claude_bin and Path(claude_bin).exists():
        raise AgentNotFound(f"the agent executable {claude_bin} is not executable (chmod +x it)")
    raise AgentNotFound(
        f"the agent executable {claude_bin!r} was not found on PATH. Install Claude Code "
        "(npm install -g @anthropic-ai/claude-code) or set CLAUDINE_CLAUDE_BIN to its path."
    )


def build_argv(
    task: Task,
    executable: str,
    *,
    default_permission_mode: str,
    default_allowed_tools: tuple[str, ...],
    extra_args: tuple[str, ...] = (),
) -> list[str]:
    """The agent's argv as a list (never a shell string: prompts are not shell-quoted)."""
    resume_from = task.resume_session_id
    prompt = task.prompt
    if resume_from and task.extra.get("resume_prompt"):
        prompt = str(task.extra["resume_prompt"])
    argv = [executable, "-p", prompt, "--output-format", "stream-json", "--verbose"]
    if resume_from:
        argv += ["--resume", resume_from]
    if task.model:
        argv += ["--model", task.model]
    mode = PermissionMode(task.permission_mode or default_permission_mode)
    tools = task.allowed_tools or default_allowed_tools
    if mode is PermissionMode.SKIP:
        argv.append("--dangerously-skip-permissions")
    elif mode is PermissionMode.ACCEPT_EDITS:
        argv += ["--permission-mode", "acceptEdits"]
    if mode is PermissionMode.ALLOWED_TOOLS or (tools and mode is not PermissionMode.SKIP):
        argv += ["--allowedTools", *tools]
    argv += list(extra_args)
    return argv


def build_env(base: Mapping[str, str]) -> dict[str, str]:
    """The owner's environment minus the nested-session markers."""
    return {k: v for k, v in base.items() if k not in NESTED_SESSION_VARIABLES}


def explain_failure(exit_code: int | None, signal_number: int | None, stderr_tail: str) -> str:
    """A reason a person can act on, from how the agent process ended."""
    if ROOT_REFUSAL_MARKER in stderr_tail:
        return (
            "claude refused --dangerously-skip-permissions because it runs as root. "
            "Set IS_SANDBOX=1 in the environment of the claudine owner if this machine is "
            "a sandbox, or choose another permission mode (CLAUDINE_PERMISSION_MODE="
            "acceptEdits or allowedTools)."
        )
    last_line = stderr_tail.strip().splitlines()[-1] if stderr_tail.strip() else ""
    if signal_number is not None:
        try:
            name = signal.Signals(signal_number).name
        except ValueError:
            name = f"signal {signal_number}"
        return f"agent killed by {name}" + (f": {last_line}" if last_line else "")
    detail = f": {last_line}" if last_line else ""
    return f"agent exited with code {exit_code} without a final result{detail}"
