"""The store: migrations that keep data, guarded transitions, queue order across restarts."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from claudine_core.models import Priority, TaskSpec, TaskState
from claudine_core.store import StoreError, TaskRepo, open_database
from claudine_core.store.migrations import SCHEMA_VERSION, current_version, migrate


def open_repo(path: Path) -> TaskRepo:
    db = open_database(path)
    migrate(db)
    return TaskRepo(db)


def test_upgrade_of_a_populated_v1_database_keeps_every_row(tmp_path: Path) -> None:
    path = tmp_path / "claudine.db"
    db = open_database(path)
    migrate(db, target=1)
    assert current_version(db) == 1
    for n in range(50):
        db.execute_sql(
            "INSERT INTO task (id, prompt, priority, status, cwd, created_at, updated_at, "
            "cost_usd, session_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (f"task-{n:012x}", f"prompt {n}", n % 3, "completed", "/tmp", 1000.0 + n,
             1000.0 + n, 0.01 * n, f"session-{n}"),
        )
    db.close()
    repo = open_repo(path)
    assert current_version(repo.db) == SCHEMA_VERSION
    tasks = repo.list_tasks(newest_first=False)
    assert len(tasks) == 50
    assert tasks[7].prompt == "prompt 7" and tasks[7].session_id == "session-7"
    assert tasks[7].cost_usd == pytest.approx(0.07)
    assert tasks[7].worktree is False and tasks[7].branch is None
    assert tasks[7].commit_changes is None  # v3: the repository's setting decides


def test_upgrade_of_a_v2_worktree_task_keeps_its_branch_and_merge(tmp_path: Path) -> None:
    path = tmp_path / "claudine.db"
    db = open_database(path)
    migrate(db, target=2)
    db.execute_sql(
        "INSERT INTO task (id, prompt, priority, status, cwd, created_at, updated_at, "
        "worktree, branch, merge) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        ("task-00000000000a", "isolated", 1, "completed", "/tmp", 1.0, 1.0, 1,
         "claudine/00000000-isolated", '{"status": "kept"}'),
    )
    db.close()
    task = open_repo(path).get("task-00000000000a")
    assert (task.worktree, task.branch, task.merge) == (
        True, "claudine/00000000-isolated", {"status": "kept"})
    assert task.commit_changes is None


def test_upgrade_of_a_v3_database_keeps_rows_and_leaves_agent_settings_to_the_owner(
    tmp_path: Path,
) -> None:
    path = tmp_path / "claudine.db"
    db = open_database(path)
    migrate(db, target=3)
    for n, status in enumerate(("queued", "running", "failed")):
        db.execute_sql(
            "INSERT INTO task (id, prompt, priority, status, cwd, created_at, updated_at, "
            "attempt, error, pid, commit_changes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (f"task-{n:012x}", f"prompt {n}", 1, status, "/tmp", 1.0 + n, 1.0 + n, n,
             "boom" if status == "failed" else None, 4242 if status == "running" else None,
             0),
        )
    db.close()
    repo = open_repo(path)
    assert current_version(repo.db) == SCHEMA_VERSION
    queued, running, failed = repo.list_tasks(newest_first=False)
    assert (queued.status, running.status, failed.status) == (
        TaskState.QUEUED, TaskState.RUNNING, TaskState.FAILED)
    assert running.pid == 4242 and failed.error == "boom" and failed.attempt == 2
    assert queued.commit_changes is False
    # v4 columns: NULL means "as before": the owner's binary and arguments, no history.
    assert (queued.claude_bin, queued.agent_env, queued.agent_args, queued.attempts) == (
        None, {}, (), ())


def test_upgrade_of_a_populated_v5_database_keeps_every_row_and_dependency(
    tmp_path: Path,
) -> None:
    """v6 adds the workflow columns. The original claudine lost every dependency row in
    such an upgrade; here each row, its dependencies and its policy come through."""
    path = tmp_path / "claudine.db"
    db = open_database(path)
    migrate(db, target=5)
    for n in range(30):
        status = ("completed", "blocked", "failed")[n % 3]
        depends = f'["task-{n - 1:012x}"]' if n else None
        db.execute_sql(
            "INSERT INTO task (id, prompt, priority, status, cwd, created_at, updated_at, "
            "depends_on, on_dependency_failure, session_id, agent_args, attempts) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (f"task-{n:012x}", f"prompt {n}", n % 3, status, "/tmp", 1.0 + n, 1.0 + n,
             depends, "cancel" if n % 2 else None, f"session-{n}", '["--verbose"]',
             '[{"attempt": 1, "state": "failed"}]' if status == "failed" else None),
        )
    db.close()
    repo = open_repo(path)
    assert current_version(repo.db) == SCHEMA_VERSION
    tasks = repo.list_tasks(newest_first=False)
    assert [t.id for t in tasks] == [f"task-{n:012x}" for n in range(30)]
    for n, task in enumerate(tasks):
        assert task.prompt == f"prompt {n}" and task.session_id == f"session-{n}"
        assert task.depends_on == ((f"task-{n - 1:012x}",) if n else ())
        assert (task.on_dependency_failure is not None) == bool(n % 2)
        assert task.agent_args == ("--verbose",)
        assert task.status.value == ("completed", "blocked", "failed")[n % 3]
        # v6 columns: old rows continue nothing and belong to no schedule or pipeline.
        assert (task.continue_from, task.end_state, task.schedule_id, task.pipeline_id,
                task.pipeline_step) == (None, None, None, None, None)
    assert tasks[2].attempts == ({"attempt": 1, "state": "failed"},)


def test_upgrade_to_v8_counts_tasks_that_had_ended_as_told(tmp_path: Path) -> None:
    """v8 adds notified_at; an upgrade must not notify about work that ended before it."""
    path = tmp_path / "claudine.db"
    db = open_database(path)
    migrate(db, target=7)
    for n, status in enumerate(("completed", "failed", "running", "queued")):
        db.execute_sql(
            "INSERT INTO task (id, prompt, priority, status, cwd, created_at, updated_at, "
            "ended_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (f"task-{n:012x}", f"prompt {n}", 2, status, "/tmp", 1.0, 1.0,
             5.0 if status in ("completed", "failed") else None))
    db.close()
    tasks = open_repo(path).list_tasks(newest_first=False)
    assert [t.notified_at for t in tasks] == [5.0, 5.0, None, None]
    assert [t.prompt for t in tasks] == [f"prompt {n}" for n in range(4)]


def test_newer_schema_is_refused_not_guessed(tmp_path: Path) -> None:
    path = tmp_path / "claudine.db"
    open_repo(path).db.execute_sql(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StoreError, match="upgrade claudine"):
        migrate(open_database(path))


def test_queue_order_is_priority_then_submit_order_across_reopen(tmp_path: Path) -> None:
    path = tmp_path / "claudine.db"
    repo = open_repo(path)
    ids = [repo.insert(TaskSpec(worktree=False, prompt=f"t{n}", priority=Priority(n % 3)),
                       cwd="/").id
           for n in range(9)]
    repo.db.close()
    again = open_repo(path)
    order = [t.id for t in again.dispatchable(limit=100, now=1e12)]
    expected = [ids[n] for n in (0, 3, 6, 1, 4, 7, 2, 5, 8)]
    assert order == expected
    assert again.queue_position(again.get(ids[1])) == 4


def test_guarded_transition_cannot_resurrect_or_double_claim(tmp_path: Path) -> None:
    repo = open_repo(tmp_path / "claudine.db")
    task = repo.insert(TaskSpec(worktree=False, prompt="x"), cwd="/")
    assert repo.transition(task.id, [TaskState.QUEUED], status=TaskState.RUNNING)
    assert not repo.transition(task.id, [TaskState.QUEUED], status=TaskState.RUNNING)
    assert repo.transition(task.id, [TaskState.RUNNING], status=TaskState.COMPLETED)
    assert not repo.transition(task.id, [TaskState.RUNNING], status=TaskState.FAILED)
    assert repo.get(task.id).status is TaskState.COMPLETED


def test_files_are_private(tmp_path: Path) -> None:
    path = tmp_path / "home" / "claudine.db"
    open_repo(path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o777 == 0o700


def test_home_under_a_file_gives_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(StoreError, match="cannot create the claudine home"):
        open_database(blocker / "claudine.db")


def test_not_a_database_is_explained(tmp_path: Path) -> None:
    path = tmp_path / "claudine.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="not a usable claudine database"):
        migrate(open_database(path))


def test_write_waits_for_another_writer_then_succeeds(tmp_path: Path) -> None:
    import threading

    path = tmp_path / "claudine.db"
    repo = open_repo(path)
    other = sqlite3.connect(path, timeout=1, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    release = threading.Timer(0.5, other.commit)
    release.start()
    # blocks ~0.5 s
    task = repo.insert(TaskSpec(worktree=False, prompt="waits for the lock"), cwd="/")
    release.join()
    assert repo.get(task.id).prompt == "waits for the lock"


@pytest.mark.slow
def test_writer_holding_the_lock_too_long_gives_clear_error_and_loses_nothing(
    tmp_path: Path,
) -> None:
    path = tmp_path / "claudine.db"
    repo = open_repo(path)
    kept = repo.insert(TaskSpec(worktree=False, prompt="stored before the lock"), cwd="/")
    other = sqlite3.connect(path, timeout=1)
    other.execute("BEGIN IMMEDIATE")
    with pytest.raises(StoreError, match="locked by another process"):
        repo.insert(TaskSpec(worktree=False, prompt="blocked"), cwd="/")
    other.rollback()
    after = repo.insert(TaskSpec(worktree=False, prompt="after the lock"), cwd="/")
    assert [t.id for t in repo.list_tasks(newest_first=False)] == [kept.id, after.id]


def test_upgrade_of_a_populated_v10_store_keeps_every_row_and_ran_them_here(
        tmp_path: Path) -> None:
    path = tmp_path / "claudine.db"
    db = open_database(path)
    migrate(db, target=10)
    for n, status in enumerate(["running", "completed", "queued"]):
        db.execute_sql(
            "INSERT INTO task (id, prompt, status, cwd, created_at, updated_at, pid, attempt, "
            "parks) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (f"task-{n:012x}", f"prompt {n}", status, "/w", 1.0 + n, 2.0 + n, 4000 + n, 1, n))
    before = [tuple(r) for r in db.execute_sql("SELECT * FROM task ORDER BY seq")]
    assert migrate(db) == 10 and current_version(db) == 11
    after = [tuple(r) for r in db.execute_sql("SELECT * FROM task ORDER BY seq")]
    assert [r[: len(before[0])] for r in after] == before
    db.close()
    tasks = open_repo(path).list_tasks(newest_first=False)
    assert [(t.status, t.pid, t.parks, t.node) for t in tasks] == [
        (TaskState.RUNNING, 4000, 0, None), (TaskState.COMPLETED, 4001, 1, None),
        (TaskState.QUEUED, 4002, 2, None)]
