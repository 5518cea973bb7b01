"""The schedule commands and queries every front end shares (``TaskService.schedules``)."""

from __future__ import annotations

from collections.abc import Callable

from claudine_core.config import Config
from claudine_core.models import Task, TaskSpec
from claudine_core.store import TaskRepo


class ScheduleService:
    """Schedules of one home.

    Args:
        config: the home's configuration.
        repo: the home's store.
        prepare: checks a task template and fixes its task-scoped settings from the
            calling process (TaskService.prepare).
        delegate: creates a task from a request (TaskService.delegate).
    """

    def __init__(self, config: Config, repo: TaskRepo, *,
                 prepare: Callable[[TaskSpec], TaskSpec],
                 delegate: Callable[[TaskSpec], Task]) -> None:
        self.config = config
        self.repo = repo
        self.prepare = prepare
        self.delegate = delegate
