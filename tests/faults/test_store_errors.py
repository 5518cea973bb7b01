"""The store's errors as a person reads them (claudine_core/store/db.py), in-process and fast.

A database capped with ``PRAGMA max_page_count`` fails exactly like a full disk
(SQLITE_FULL) without needing a mount, so the wording is checked on every run.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from claudine_core.models import TaskSpec
from claudine_core.store import StoreError, TaskRepo, open_database
from claudine_core.store.db import describe_sqlite_error
from claudine_core.store.migrations import migrate


def full_repo(tmp_path: Path) -> TaskRepo:
    """A store with one task whose file cannot grow by another page."""
    db = open_database(tmp_path / "claudine.db")
    migrate(db)
    repo = TaskRepo(db)
    repo.insert(TaskSpec(worktree=False, prompt="first", cwd=str(tmp_path)), cwd=str(tmp_path))
    pages = db.execute_sql("PRAGMA page_count").fetchone()[0]
    db.execute_sql(f"PRAGMA max_page_count={pages}")
    return repo


def test_a_batched_write_on_a_full_disk_says_disk_full(tmp_path: Path) -> None:
    repo = full_repo(tmp_path)
    task = repo.list_tasks()[0]
    repo.transition(task.id, [task.status], status="running")
    # The summaries batch is one transaction; SQLite rolls it back itself on SQLITE_FULL,
    # and a second ROLLBACK used to replace the error with "no transaction is active".
    with pytest.raises(StoreError) as caught:
        repo.update_summaries({task.id: {"last_activity": "x" * 200_000}})
    assert "is full" in str(caught.value)
    assert "cannot rollback" not in str(caught.value)
    assert repo.get(task.id).last_activity is None  # nothing half-written
    repo.update_summaries({task.id: {"last_activity": "short"}})  # room enough: it works
    assert repo.get(task.id).last_activity == "short"


def test_an_insert_on_a_full_disk_says_disk_full_and_leaves_no_row(tmp_path: Path) -> None:
    repo = full_repo(tmp_path)
    with pytest.raises(StoreError, match="is full"):
        repo.insert(TaskSpec(worktree=False, prompt="x" * 90_000, cwd=str(tmp_path)),
                    cwd=str(tmp_path))
    assert [t.prompt for t in repo.list_tasks()] == ["first"]


@pytest.mark.parametrize(("sqlite_text", "expected"), [
    ("database or disk is full", "is full"),
    ("database is locked", "locked by another process"),
    ("attempt to write a readonly database", "read-only"),
    ("disk I/O error", "file system may have gone read-only"),
    ("file is not a database", "not a usable claudine database"),
])
def test_sqlite_errors_become_sentences_that_say_what_to_do(
        sqlite_text: str, expected: str) -> None:
    message = describe_sqlite_error(Exception(sqlite_text), "/h/claudine.db")
    assert expected in message and "/h/claudine.db" in message
