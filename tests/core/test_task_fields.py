"""Each task field is declared once (claudine_core.models) and derived everywhere else.

These tests fail when a field is added in one place only: a Task field whose migration
does not create the column, a TaskSpec field the store does not keep, a field ``--json``
shows but TaskStatus's outputSchema does not describe, a request field a retry forgets.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from claudine_core.config import Config
from claudine_core.mcp.tools import TOOLS_BY_NAME
from claudine_core.models import (
    DependencyPolicy,
    MergeStrategy,
    PermissionMode,
    Priority,
    Task,
    TaskSpec,
    TaskState,
    field_kind,
    field_types,
    spec_from_task,
)
from claudine_core.service import TaskService
from claudine_core.store import open_database
from claudine_core.store.migrations import migrate
from claudine_core.store.tables import task_columns

TASK_SCHEMA = TOOLS_BY_NAME["TaskStatus"]["outputSchema"]["oneOf"][0]["properties"]["task"]


def migrated_columns(path: Path) -> dict[str, dict[str, Any]]:
    db = open_database(path)
    try:
        migrate(db)
        rows = db.execute_sql("PRAGMA table_info(task)").fetchall()
    finally:
        db.close()
    return {name: {"type": kind, "notnull": bool(notnull)}
            for _, name, kind, notnull, _, _ in rows}


def test_the_migrations_create_exactly_the_declared_columns(tmp_path: Path) -> None:
    columns = migrated_columns(tmp_path / "tasks.db")
    declared = task_columns()
    assert set(columns) == set(declared)
    for name, field in declared.items():
        if name == "seq":
            continue  # the rowid alias: SQLite reports it as nullable INTEGER
        assert columns[name]["notnull"] == (not field.null), name


def test_every_request_field_is_a_stored_task_field() -> None:
    spec_types, task_types = field_types(TaskSpec), field_types(Task)
    for name, annotation in spec_types.items():
        assert name in task_types, f"TaskSpec.{name} has no Task field to be stored in"
        assert field_kind(annotation)[0] == field_kind(task_types[name])[0], name


def unusual_value(name: str, annotation: Any) -> Any:
    """A value for a request field that differs from its default (per field type)."""
    kind, _ = field_kind(annotation)
    special: dict[str, Any] = {
        "priority": Priority.P0, "permission_mode": PermissionMode.ACCEPT_EDITS,
        "merge_strategy": MergeStrategy.PATCH, "worktree": False, "commit_changes": False,
        "agent_env": {"ANTHROPIC_BASE_URL": "http://127.0.0.1:9"},
        "allowed_tools": ("Read", "Bash(git *)"), "agent_args": ("--verbose",),
        "timeout_s": 77.5, "max_output_bytes": 65_536, "claude_bin": "/bin/true",
        "parent_id": "task-0123456789ab", "resume_session_id": "session-1", "model": "opus",
        "fallback_model": "sonnet",
        "on_dependency_failure": DependencyPolicy.CANCEL, "depends_on": (),  # set per test
    }
    if name in special:
        return special[name]
    return {str: f"{name} value", int: 7, float: 7.5, bool: True}[kind]


@pytest.fixture
def service(tmp_path: Path) -> Any:
    service = TaskService(Config(home=tmp_path / "home", claude_bin="/bin/true"), env={})
    yield service
    service.close()


def test_a_task_keeps_every_request_field_and_a_retry_copies_the_carried_ones(
    service: TaskService, tmp_path: Path
) -> None:
    hints = field_types(TaskSpec)
    values = {f.name: unusual_value(f.name, hints[f.name]) for f in dataclasses.fields(TaskSpec)}
    dependency = service.repo.insert(TaskSpec(prompt="dep", worktree=False), cwd=str(tmp_path))
    values.update(prompt="every field", cwd=str(tmp_path), base_branch=None,
                  merge_strategy=None, commit_changes=None,  # those need a worktree
                  depends_on=(dependency.id,), continue_from=dependency.id)
    stored = service.repo.insert(TaskSpec(**values), cwd=str(tmp_path))
    again = service.get(stored.id)
    for name, value in values.items():
        assert getattr(again, name) == value, name
    service.repo.transition(stored.id, (TaskState.QUEUED,), status=TaskState.FAILED)
    retried = service.retry(stored.id)
    for field in dataclasses.fields(TaskSpec):
        if field.metadata["carried"]:
            assert getattr(retried, field.name) == values[field.name], field.name
    assert retried.parent_id == stored.id and retried.resume_session_id is None
    copied = spec_from_task(again)
    assert {f.name for f in dataclasses.fields(copied) if getattr(copied, f.name)
            != getattr(TaskSpec(prompt="x"), f.name)} >= {"priority", "timeout_s", "model"}


def test_json_shows_the_public_fields_and_the_schema_describes_each(
    service: TaskService, tmp_path: Path
) -> None:
    task = service.delegate(TaskSpec(prompt="shown", cwd=str(tmp_path), model="sonnet",
                                     allowed_tools=("Read",)))
    view = {**task.to_json(), "taskId": task.id}
    assert set(view) == set(TASK_SCHEMA["properties"])
    assert set(TASK_SCHEMA["required"]) == set(view)
    jsonschema.validate(view, TASK_SCHEMA)
    json.dumps(view)  # plain JSON values only
    assert "agent_env" not in view  # API keys stay in the store
    assert view["created_at"].endswith("Z") and view["priority"] == "P2"
