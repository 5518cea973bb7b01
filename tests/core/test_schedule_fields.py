"""The schedule records are declared once (claudine_core/schedules/model.py): migration
v7 creates exactly their columns, a slot can have one execution row only, and a store
of the version before (v6) keeps every row when it is opened by this claudine."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import peewee
import pytest

from claudine_core.schedules.model import Schedule, ScheduleExecution
from claudine_core.schedules.store import declared_columns
from claudine_core.store import open_database
from claudine_core.store.migrations import migrate


def table_columns(path: Path, table: str) -> dict[str, bool]:
    """Column name -> NOT NULL, as SQLite reports them."""
    with sqlite3.connect(path) as conn:
        rows = conn.execute(f"PRAGMA table_info({table})").fetchall()
    return {name: bool(notnull) for _, name, _, notnull, _, _ in rows}


@pytest.mark.parametrize(("table", "record"), [("schedule", Schedule),
                                               ("schedule_execution", ScheduleExecution)])
def test_the_migration_creates_exactly_the_declared_columns(tmp_path: Path, table: str,
                                                           record: type) -> None:
    db = open_database(tmp_path / "claudine.db")
    migrate(db)
    db.close()
    columns = table_columns(tmp_path / "claudine.db", table)
    declared = declared_columns(record)
    assert set(columns) == set(declared)
    for name, column in declared.items():
        if name != "seq":  # the rowid alias: SQLite reports it as nullable
            assert columns[name] == (not column.null), name


def test_a_slot_has_one_execution_row_at_most(tmp_path: Path) -> None:
    db = open_database(tmp_path / "claudine.db")
    migrate(db)
    insert = ("INSERT INTO schedule_execution (schedule_id, scheduled_for, fired_at, "
              "outcome) VALUES ('sched-0123456789ab', 100.0, ?, 'created')")
    db.execute_sql(insert, (101.0,))
    with pytest.raises(peewee.IntegrityError):
        db.execute_sql(insert, (102.0,))
    db.close()


def v6_store(path: Path) -> list[tuple[Any, ...]]:
    """A store at schema v6 holding tasks of every kind of value; its task rows."""
    db = open_database(path)
    migrate(db, target=6)
    rows = [
        ("task-000000000001", "first", 0, "completed", "/w", 1.0, 2.0, '["task-0000000002"]',
         "sched-0123456789ab", '{"branch": "main"}'),
        ("task-000000000002", "second", 2, "queued", "/w", 3.0, 4.0, None, None, None),
        ("task-000000000003", "a 'quoted' prompt\nwith lines ✓", 1, "blocked", "/x", 5.0,
         6.0, '["task-000000000001"]', None, None),
    ]
    for row in rows:
        db.execute_sql("INSERT INTO task (id, prompt, priority, status, cwd, created_at, "
                       "updated_at, depends_on, schedule_id, end_state) VALUES "
                       "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", row)
    db.execute_sql("INSERT INTO meta (key, value) VALUES ('note', 'kept')")
    found = db.execute_sql("SELECT * FROM task ORDER BY seq").fetchall()
    db.close()
    return [tuple(row) for row in found]


def test_a_populated_v6_store_keeps_every_row(tmp_path: Path) -> None:
    path = tmp_path / "claudine.db"
    before = v6_store(path)
    db = open_database(path)
    assert migrate(db, target=7) == 6  # the step that adds the schedule tables
    assert db.execute_sql("PRAGMA user_version").fetchone()[0] == 7
    after = [tuple(row) for row in db.execute_sql("SELECT * FROM task ORDER BY seq")]
    assert after == before and len(after) == 3
    assert db.execute_sql("SELECT value FROM meta WHERE key='note'").fetchone()[0] == "kept"
    assert db.execute_sql("SELECT COUNT(*) FROM schedule").fetchone()[0] == 0
    db.close()


def test_the_service_reads_a_migrated_v6_store(tmp_path: Path) -> None:
    from claudine_core.config import Config
    from claudine_core.service import TaskService

    home = tmp_path / "home"
    home.mkdir()
    v6_store(home / "claudine.db")
    service = TaskService(Config(home=home, claude_bin="/bin/true"), env={})
    try:
        assert len(service.list_tasks()) == 3
        assert service.get("task-000000000001").schedule_id == "sched-0123456789ab"
        assert service.schedules.list() == [] and not service.schedules.has_active()
    finally:
        service.close()
