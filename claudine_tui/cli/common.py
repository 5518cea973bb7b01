"""What every ``claudine`` sub-command module shares: the error a command fails with,
loading the settings, opening the task service, and turning core errors into advice.

Both cli.commands and cli.worktrees import it; it imports neither (no import cycle).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from claudine_core.config import Config, ConfigError, load_config
from claudine_core.errors import InvalidTransition, StoreError, UnknownTask
from claudine_core.models import Task


class CommandError(Exception):
    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def load(args: argparse.Namespace) -> Config:
    try:
        overrides: dict[str, Any] = {}
        if getattr(args, "home", None):
            overrides["home"] = Path(args.home).expanduser().resolve()
        return load_config(override_sources={"home": "--home"}, **overrides)
    except ConfigError as exc:
        raise CommandError(str(exc), 2) from exc


def open_service(args: argparse.Namespace) -> Any:
    from claudine_core.service import TaskService

    config = load(args)
    try:
        return TaskService(config)
    except StoreError as exc:
        raise CommandError(str(exc)) from exc


def guard(action: Callable[[], Task]) -> Task:
    """Run a command on a task; the core's refusals become a CommandError (exit 1)."""
    from claudine_core.service import InvalidRequest

    try:
        return action()
    except (UnknownTask, InvalidRequest, InvalidTransition, ValueError) as exc:
        raise CommandError(str(exc).strip("'\"")) from exc
    except StoreError as exc:
        raise CommandError(str(exc)) from exc


def guard_store(action: Callable[[], Any]) -> Any:
    """Run a query; a StoreError becomes a CommandError (exit 1)."""
    try:
        return action()
    except StoreError as exc:
        raise CommandError(str(exc)) from exc
