"""The Claude Code agent profile: how a task becomes a ``claude`` command line.

Kept apart from the supervisor so another agent CLI (or a remote backend) can plug in
behind the same narrow seam: argv, environment, and how to read its failure.
"""

from __future__ import annotations

import os
import re
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

# How the CLI's argument parser (commander.js) rejects a command line, measured on 2.1.197:
# exit 1, nothing on stdout, and on stderr e.g. "error: unknown option '--bogus'" (plus
# "(Did you mean --verbose?)"), "error: option '--model <model>' argument missing", or
# "error: option '--output-format <format>' argument 'x' is invalid. Allowed choices are ...".
_USAGE_ERROR = re.compile(
    r"^error: (?:unknown option|unknown command|option '[^\n]*' (?:argument|cannot be used)"
    r"|too many arguments|missing required argument|required option)[^\n]*"
    r"(?:\n\(Did you mean [^\n]*\))?",
    re.MULTILINE,
)

STREAM_JSON_INPUT = ("--input-format", "stream-json")

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
    if os.sep in claude_bin:  # a path: PATH has nothing to do with it
        if Path(claude_bin).exists():
            raise AgentNotFound(f"the agent executable {claude_bin} is not executable "
                                "(chmod +x it)")
        raise AgentNotFound(
            f"the agent executable {claude_bin} does not exist. Install Claude Code (npm "
            "install -g @anthropic-ai/claude-code) or set CLAUDINE_CLAUDE_BIN to its path."
        )
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
    """The agent's argv as a list, without the prompt: that goes in on stdin (see
    :func:`agent_input`), so a prompt starting with ``-`` is never read as a flag and a long
    one does not hit the kernel's 128 KiB limit on one argv word.

    The agent reads its turns as stream-json lines: the wrapper writes the prompt as the
    first, then each message sent to the task (see docs/claude-stream-json-input.md)."""
    resume_from = task.resume_session_id
    argv = [executable, "-p", *STREAM_JSON_INPUT, "--output-format", "stream-json", "--verbose"]
    if resume_from:
        argv += ["--resume", resume_from]
        if task.continue_from:
            # A continuation goes on in a copy of the conversation: the continued task's
            # own session stays as it ended (another continuation may start from it too).
            argv.append("--fork-session")
    if task.model:
        argv += ["--model", task.model]
    if task.fallback_model:
        argv += ["--fallback-model", task.fallback_model]
    if task.max_budget_usd is not None:
        argv += ["--max-budget-usd", format(task.max_budget_usd, "g")]
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


def agent_input(task: Task) -> str:
    """What the agent reads on stdin: the prompt, or for a resumed session the follow-up,
    or for a continuation that cannot resume a conversation the prompt with what the
    continued task left (see claudine_core.continuation)."""
    if task.resume_prompt and (task.resume_session_id or task.continue_from):
        return task.resume_prompt
    return task.prompt


def build_env(base: Mapping[str, str]) -> dict[str, str]:
    """The owner's environment minus the nested-session markers."""
    return {k: v for k, v in base.items() if k not in NESTED_SESSION_VARIABLES}


def usage_error(stderr_tail: str) -> str | None:
    """The CLI's own message when it refused its command line (a bad flag or flag value).

    Such a run never started working, and the same command line fails the same way again.
    """
    match = _USAGE_ERROR.search(stderr_tail)
    return " ".join(match.group(0).split("\n")) if match else None


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
