"""What every ``claudine`` sub-command module shares: the error a command fails with,
loading the settings, opening the task service, and turning core errors into advice.

Both cli.commands and cli.worktrees import it; it imports neither (no import cycle).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from claudine_core.config import Config, load_config
from claudine_core.errors import EXIT_FAILED, ClaudineError
from claudine_core.models import Task


class CommandError(ClaudineError):
    """A command's own refusal (the core's errors derive from ClaudineError too)."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILED) -> None:
        super().__init__(message, exit_status=exit_code)


def add_limit_options(p: argparse.ArgumentParser, *, each: str = "the agent") -> None:
    """``--max-budget-usd`` and ``--fallback-model``: what a task may spend, and the model
    its agent falls back to (delegate, pipeline, schedule add)."""
    p.add_argument("--max-budget-usd", metavar="USD",
                   help=f"most {each} may spend, in US dollars (claude --max-budget-usd); "
                   "a run stopped by it fails and is not retried")
    p.add_argument("--fallback-model", metavar="MODEL",
                   help=f"model {each} falls back to when its model is overloaded (claude "
                   "--fallback-model; default: the fallback_model setting)")


def load(args: argparse.Namespace) -> Config:
    """The settings, with ``--home``; a wrong one raises ConfigError (exit status 2)."""
    overrides: dict[str, Any] = {}
    if getattr(args, "home", None):
        overrides["home"] = Path(args.home).expanduser().resolve()
    return load_config(override_sources={"home": "--home"}, **overrides)


def open_service(args: argparse.Namespace) -> Any:
    """The task service of the home; an unusable store raises StoreError (exit status 1)."""
    from claudine_core.service import TaskService

    return TaskService(load(args))


def guard(action: Callable[[], Task]) -> Task:
    """Run a command on a task. The core's refusals (ClaudineError) go up to the one
    handler in main; a plain ValueError (a bad priority word) becomes a CommandError."""
    try:
        return action()
    except ClaudineError:
        raise
    except ValueError as exc:
        raise CommandError(str(exc).strip("'\"")) from exc


def ensure_owner(config: Config, *,
                 meanwhile: str = "the task waits until a console or 'claudine serve' "
                 "runs") -> None:
    """Make sure an owner runs to act on what the command wrote; if none can be started,
    warn with what happens ``meanwhile`` (never fail: the write is already committed)."""
    from claudine_core.serve import ensure_owner as start_owner

    try:
        started = start_owner(config)
    except OSError as exc:
        print(f"claudine: warning: could not start a background owner ({exc}); "
              f"{meanwhile}", file=sys.stderr)
        return
    if started is not None and sys.stdout.isatty():
        print(f"(started a background owner, pid {started})", file=sys.stderr)
