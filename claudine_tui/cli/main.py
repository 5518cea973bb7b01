"""The ``claudine`` command: the console, the headless MCP server, and script commands.

Every script command is a client of the home: it commits its request to the store and
returns; the owner (a console, a headless server or ``claudine serve``) applies it. Heavy
front ends are imported only by the commands that need them, so ``claudine status`` and
``claudine --headless`` never load Textual.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from claudine_core.errors import ClaudineError, InvalidRequest
from claudine_core.models import MergeStrategy, PermissionMode
from claudine_tui.cli import commands
from claudine_tui.cli.common import add_limit_options

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2
EXIT_BROKEN_PIPE = 128 + 13  # SIGPIPE


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # type: ignore[override]
        # argparse's own message plus a pointer to help; exit status 2 as argparse does.
        self.print_usage(sys.stderr)
        hint = f"Try 'claudine {self._sub_name()}--help'."
        self.exit(EXIT_USAGE, f"claudine: error: {message}\n{hint}\n")

    def _sub_name(self) -> str:
        parts = self.prog.split()[1:]
        return " ".join(parts) + " " if parts else ""


def _add_json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="claudine",
        description="Run many background Claude Code agents: console, MCP server and CLI.",
        epilog="With no command, opens the console.",
    )
    parser.add_argument("--headless", action="store_true",
                        help="serve the engine as an MCP stdio server (for Claude Code)")
    parser.add_argument("--home", help="the claudine home (default: $CLAUDINE_HOME or the "
                        "platform data dir)")
    parser.add_argument("--version", action="store_true", help="print the version")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser, metavar="COMMAND")

    p = sub.add_parser("delegate", help="queue a task for a background agent")
    p.add_argument("prompt", help="what the agent should do")
    _add_task_options(p)
    p.add_argument("--depends-on", action="append", metavar="ID",
                   help="start only after task ID completed (repeatable); the task is "
                   "blocked until then")
    p.add_argument("--on-dependency-failure", metavar="fail|cancel|run",
                   help="when a dependency fails or is cancelled: fail (default; run with "
                   "--continue-from), cancel, or run anyway")
    p.add_argument("--continue-from", metavar="ID",
                   help="continue task ID's conversation once it has ended (claude --resume "
                   "--fork-session, in its directory or worktree); implies --depends-on ID")
    _add_no_serve(p)
    _add_json(p)

    p = sub.add_parser("pipeline", help="queue steps that run one after another")
    p.add_argument("steps", nargs="+", metavar="STEP",
                   help="each step's prompt, in order; a step starts once the one before "
                   "completed, and a failed step fails the rest")
    p.add_argument("--continue", dest="continue_conversation", action="store_true",
                   help="each step continues the previous step's conversation")
    _add_task_options(p)
    _add_no_serve(p)
    _add_json(p)

    p = sub.add_parser("status", help="show one task, or a table of tasks")
    p.add_argument("task", nargs="?", help="task id (full, short or unique prefix), or a "
                   "pipeline id (pipe-...) for its steps")
    p.add_argument("--status", "-s", action="append",
                   help="only tasks in this state (repeatable)")
    p.add_argument("--limit", "-n", type=int, default=50, help="rows in the table (default 50)")
    p.add_argument("--tmux", action="store_true",
                   help="one short line of counts for tmux's status-right: running, "
                   "queued, failed in the last 24 hours (empty when none)")
    _add_json(p)

    p = sub.add_parser("logs", help="show what a task's agent did")
    p.add_argument("task", help="task id")
    p.add_argument("--tail", "-n", type=int, help="only the last N lines")
    p.add_argument("--follow", "-f", action="store_true", help="keep printing until it ends")
    p.add_argument("--raw", action="store_true", help="the agent's JSON lines as written")
    p.add_argument("--stderr", action="store_true", help="the agent's stderr instead")
    p.add_argument("--attempt", type=int, metavar="N",
                   help="only attempt N (default: every attempt, oldest first)")

    p = sub.add_parser("cancel", help="cancel a queued, parked or running task")
    p.add_argument("task", help="task id (with --pipeline: a step's task id or the "
                   "pipeline id)")
    p.add_argument("reason", nargs="?", help="why (recorded on the task)")
    p.add_argument("--pipeline", action="store_true",
                   help="cancel every unfinished step of the task's pipeline")
    _add_json(p)

    p = sub.add_parser("retry", help="queue a finished task again, as a new task")
    p.add_argument("task", help="task id")
    _add_json(p)

    p = sub.add_parser("resume", help="continue a finished task's agent session")
    p.add_argument("task", help="task id")
    p.add_argument("context", nargs="?", help="what to tell the agent")
    _add_json(p)

    p = sub.add_parser("priority", help="change a queued task's priority")
    p.add_argument("task", help="task id")
    p.add_argument("priority", help="P0, P1 or P2")
    _add_json(p)

    p = sub.add_parser("wait", help="block until tasks end; exit 0 only if all completed")
    p.add_argument("tasks", nargs="+", help="task ids (a pipeline id: all its steps)")
    p.add_argument("--timeout", type=float, help="give up after this many seconds (exit 3)")
    _add_json(p)

    p = sub.add_parser("serve", help="run the engine with no UI (owner of the home)")
    p.add_argument("--detach", action="store_true", help="start in the background and return")
    p.add_argument("--idle-exit", type=float, help="exit after this many idle seconds")
    p.add_argument("--auto", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--stop-agents-on-exit", action="store_true",
                   help="stop running agents on exit (default: leave them to the next owner)")

    p = sub.add_parser("config", help="print the effective settings and where they come from")
    _add_json(p)

    p = sub.add_parser("mcp", help="the MCP server: start, test, config")
    p.add_argument("action", choices=["start", "test", "config"])

    commands.add_extra_parsers(sub)
    return parser


def _add_task_options(p: argparse.ArgumentParser) -> None:
    """The options of a task request, shared by ``delegate`` and ``pipeline``."""
    p.add_argument("--priority", "-p", default="P2", help="P0 (urgent), P1 or P2 (default)")
    p.add_argument("--cwd", help="working directory of the agent (default: here; with "
                   "--continue-from, the continued task's)")
    # Values are checked by the core's one validation (claudine_core.task_request), which
    # names the flag of every wrong one; argparse only collects them.
    p.add_argument("--timeout", help="seconds before the agent is stopped")
    p.add_argument("--model", help="model for the agent (claude --model)")
    add_limit_options(p)
    p.add_argument("--permission-mode", metavar="|".join(m.value for m in PermissionMode),
                   help="how the agent gets past permission prompts (default: the "
                   "configured one)")
    p.add_argument("--allowed-tools", help="comma-separated tools for --permission-mode "
                   "allowedTools")
    p.add_argument("--max-output", help="bytes of agent output kept, e.g. 10MB (default: "
                   "MAX_OUTPUT_BUFFER)")
    isolation = p.add_mutually_exclusive_group()
    isolation.add_argument("--worktree", dest="worktree", action="store_const", const=True,
                           default=None, help="run in a new git worktree on its own branch "
                           "(default: the CLAUDINE_WORKTREE setting)")
    isolation.add_argument("--no-worktree", dest="worktree", action="store_const",
                           const=False, help="run in --cwd itself, even when "
                           "CLAUDINE_WORKTREE is on")
    p.add_argument("--base", help="base branch for --worktree (default: the current one)")
    p.add_argument("--merge", metavar="|".join(s.value for s in MergeStrategy),
                   help="what to do with a worktree task's branch when it finishes")
    p.add_argument("--no-commit", dest="commit", action="store_false", default=None,
                   help="leave what a worktree agent did not commit uncommitted in its "
                   "worktree, for review (default: commit it to the task branch)")


def _add_no_serve(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-serve", action="store_true",
                   help="do not start a background owner if none is running")


def _command_parser(parser: argparse.ArgumentParser, command: str | None) -> Any:
    for action in parser._subparsers._group_actions if parser._subparsers else ():
        choices = getattr(action, "choices", None) or {}
        if command in choices:
            return choices[command]
    return parser


HANDLERS: dict[str, Callable[[argparse.Namespace], int]] = {
    "delegate": commands.delegate,
    "pipeline": commands.pipeline,
    "status": commands.status,
    "logs": commands.logs,
    "cancel": commands.cancel,
    "retry": commands.retry,
    "resume": commands.resume,
    "priority": commands.priority,
    "wait": commands.wait,
    "serve": commands.serve,
    "config": commands.show_config,
    "mcp": commands.mcp,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``claudine`` command; returns its exit status.

    Output piped into a reader that stops early (``claudine status | head -3``) ends the
    command quietly with status 141, what a shell shows for a tool ended by SIGPIPE.
    """
    try:
        try:
            return _run(argv)
        finally:
            # Flushed here, not by the interpreter at exit, so that a reader gone by
            # then is caught below too (help, --version and the last lines included).
            if sys.stdout is not None:  # None: started with stdout closed
                sys.stdout.flush()
    except BrokenPipeError:
        _discard_stdout()
        return EXIT_BROKEN_PIPE


def _discard_stdout() -> None:
    # The Python docs' recipe: what is still buffered for stdout would fail again when
    # the interpreter flushes it at exit; send it to /dev/null instead.
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def _run(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        # Report a stray flag against the sub-command it was given to, so the hint
        # points at the help that lists the right flags.
        _command_parser(parser, args.command).error(
            f"unrecognized arguments: {' '.join(unknown)}"
        )
    if args.version:
        from claudine_core import __version__

        print(f"claudine {__version__}")
        return EXIT_OK
    try:
        if args.headless:
            return commands.headless(args)
        if args.command is None:
            return commands.console(args)
        handler = HANDLERS.get(args.command) or commands.EXTRA_HANDLERS[args.command]
        return handler(args)
    except ClaudineError as exc:  # every refusal the core or a command explains
        return _report(exc, as_json=getattr(args, "json", False))
    except KeyboardInterrupt:
        return 130


# The flag (or argument) a user gives for each TaskSpec field, to name it in errors.
FLAGS = {"prompt": "", "priority": "--priority", "cwd": "--cwd", "timeout_s": "--timeout",
         "model": "--model", "fallback_model": "--fallback-model",
         "max_budget_usd": "--max-budget-usd", "max_output_bytes": "--max-output",
         "permission_mode": "--permission-mode", "allowed_tools": "--allowed-tools",
         "worktree": "--worktree", "base_branch": "--base", "merge_strategy": "--merge",
         "commit_changes": "--no-commit", "depends_on": "--depends-on",
         "on_dependency_failure": "--on-dependency-failure",
         "continue_from": "--continue-from", "steps": "STEP"}


def _report(exc: ClaudineError, *, as_json: bool) -> int:
    """Print a refusal: one line per wrong flag when the request had several problems."""
    from claudine_core.task_request import describe_problems

    lines = [exc.message]
    problems: dict[str, str] = {}
    if isinstance(exc, InvalidRequest):
        named = describe_problems(exc, FLAGS, worktree="--worktree")
        problems = {flag: message for flag, message in named if flag}
        lines = [f"{flag}: {message}" if flag else message for flag, message in named]
    if as_json:
        print(json.dumps({"error": "; ".join(lines), **({"problems": problems} if problems
                                                         else {})}))
    for line in lines:
        print(f"claudine: error: {line}", file=sys.stderr)
    return exc.exit_status


if __name__ == "__main__":
    sys.exit(main())
