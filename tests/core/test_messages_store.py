"""The message table (schema v9): its columns are the Message declaration's, a populated
v8 store upgrades keeping every row, and a message row round-trips."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

from engine_helpers import make_config

from claudine_core.messages import Message, MessageRepo
from claudine_core.service import TaskService
from claudine_core.store.db import open_database
from claudine_core.store.migrations import migrate


def v8_store(path: Path) -> list[tuple[object, ...]]:
    """A store at schema 8 with tasks in several states; the rows as stored."""
    db = open_database(path)
    migrate(db, target=8)
    rows = [
        ("task-000000000001", "first", 0, "completed", "/w", 1.0, 2.0, 2.5),
        ("task-000000000002", "a 'quoted' prompt\nwith lines ✓", 2, "running", "/w", 3.0,
         4.0, None),
        ("task-000000000003", "third", 1, "queued", "/x", 5.0, 6.0, None),
    ]
    for row in rows:
        db.execute_sql("INSERT INTO task (id, prompt, priority, status, cwd, created_at, "
                       "updated_at, notified_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", row)
    found = db.execute_sql("SELECT * FROM task ORDER BY seq").fetchall()
    db.close()
    return [tuple(row) for row in found]


def test_a_populated_v8_store_upgrades_keeping_every_row(tmp_path: Path) -> None:
    path = tmp_path / "claudine.db"
    before = v8_store(path)
    db = open_database(path)
    assert migrate(db, target=9) == 8  # the step that adds the message table
    after = [tuple(row) for row in db.execute_sql("SELECT * FROM task ORDER BY seq")]
    assert after == before and len(after) == 3
    assert db.execute_sql("SELECT COUNT(*) FROM message").fetchone()[0] == 0
    columns = [row[1] for row in db.execute_sql("PRAGMA table_info(message)")]
    assert columns == [f.name for f in fields(Message)]  # declared once, created as declared
    db.close()


def test_a_message_row_round_trips_on_a_migrated_store(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    v8_store(home / "claudine.db")
    service = TaskService(make_config(home))
    try:
        repo = MessageRepo(service.db, lambda: None)
        sent = Message(id="msg-0123456789ab", task_id="task-000000000002",
                       text="a 'quoted' message\nwith lines ✓", created_at=7.0, attempt=1)
        repo.insert(sent)
        repo.update(sent.id, delivered_at=8.5)
        (stored,) = repo.for_task("task-000000000002")
        assert stored == Message(**{**{f.name: getattr(sent, f.name) for f in fields(Message)},
                                    "delivered_at": 8.5})
        assert stored.to_json()["delivered_at"].startswith("1970-01-01T00:00:08")
        assert service.get("task-000000000002").status.value == "running"
    finally:
        service.close()
