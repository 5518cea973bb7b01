"""Schema versions. Each step only adds; none drops or rewrites user data.

The version lives in SQLite's ``user_version`` so a glance with the sqlite3 shell tells it.
A newer database than this code knows is refused rather than guessed at.
"""

from __future__ import annotations

from collections.abc import Callable

import peewee

from claudine_core.store.db import StoreError

SCHEMA_VERSION = 11

_V1_TASK_COLUMNS = """
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    prompt TEXT NOT NULL,
    priority INTEGER NOT NULL DEFAULT 2,
    status TEXT NOT NULL DEFAULT 'queued',
    cwd TEXT NOT NULL,
    model TEXT,
    timeout_s REAL,
    max_output_bytes INTEGER,
    permission_mode TEXT,
    allowed_tools TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    started_at REAL,
    ended_at REAL,
    exit_code INTEGER,
    error TEXT,
    session_id TEXT,
    num_turns INTEGER,
    cost_usd REAL,
    pid INTEGER,
    pid_started_at REAL,
    attempt INTEGER NOT NULL DEFAULT 0,
    not_before REAL,
    last_activity TEXT,
    last_activity_at REAL,
    result TEXT,
    is_error INTEGER,
    api_error_status INTEGER,
    resume_session_id TEXT,
    resume_prompt TEXT,
    parent_id TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    cancel_reason TEXT,
    output_bytes INTEGER NOT NULL DEFAULT 0,
    output_truncated INTEGER NOT NULL DEFAULT 0
"""


def _v1(db: peewee.SqliteDatabase) -> None:
    db.execute_sql("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    db.execute_sql(f"CREATE TABLE IF NOT EXISTS task ({_V1_TASK_COLUMNS})")
    db.execute_sql("CREATE INDEX IF NOT EXISTS task_status ON task (status)")
    db.execute_sql("CREATE INDEX IF NOT EXISTS task_updated_at ON task (updated_at)")
    db.execute_sql(
        "CREATE INDEX IF NOT EXISTS task_status_priority_seq ON task (status, priority, seq)"
    )


def _v2(db: peewee.SqliteDatabase) -> None:
    # Isolation in git worktrees: new nullable columns, existing rows keep every value.
    for ddl in (
        "worktree INTEGER NOT NULL DEFAULT 0",
        "base_branch TEXT",
        "branch TEXT",
        "worktree_path TEXT",
        "merge_strategy TEXT",
        "merge TEXT",
    ):
        db.execute_sql(f"ALTER TABLE task ADD COLUMN {ddl}")


def _v3(db: peewee.SqliteDatabase) -> None:
    # A per-task "commit what the agent left uncommitted" choice; NULL keeps the old
    # behaviour (the repository's .claudine.toml, default yes).
    db.execute_sql("ALTER TABLE task ADD COLUMN commit_changes INTEGER")


def _v4(db: peewee.SqliteDatabase) -> None:
    # Task-scoped agent settings recorded at delegate time, and each attempt's outcome.
    # NULL in old rows means what it meant before: the owner's settings, no history.
    for ddl in ("claude_bin TEXT", "agent_env TEXT", "agent_args TEXT", "attempts TEXT"):
        db.execute_sql(f"ALTER TABLE task ADD COLUMN {ddl}")


def _v5(db: peewee.SqliteDatabase) -> None:
    # Dependencies: the ids a task waits on (JSON list) and what it does if one fails.
    # Old rows depend on nothing.
    for ddl in ("depends_on TEXT", "on_dependency_failure TEXT"):
        db.execute_sql(f"ALTER TABLE task ADD COLUMN {ddl}")


def _v6(db: peewee.SqliteDatabase) -> None:
    # Workflows: the conversation a task continues, what it left when it ended, and the
    # schedule or pipeline that made it. Old rows continue nothing and belong to neither.
    for ddl in ("continue_from TEXT", "end_state TEXT", "schedule_id TEXT",
                "pipeline_id TEXT", "pipeline_step INTEGER"):
        db.execute_sql(f"ALTER TABLE task ADD COLUMN {ddl}")
    db.execute_sql("CREATE INDEX IF NOT EXISTS task_pipeline_id ON task (pipeline_id)")


def _v7(db: peewee.SqliteDatabase) -> None:
    # Schedules (claudine_core/schedules/model.py declares the columns) and one row per
    # slot a schedule handled: UNIQUE(schedule_id, scheduled_for) is what makes a slot
    # fire at most once whatever the owners do. Tasks keep no new column (v6 added
    # schedule_id); the index finds a schedule's latest task (afterSchedule).
    db.execute_sql("""CREATE TABLE IF NOT EXISTS schedule (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL,
        cron TEXT,
        run_at REAL,
        timezone TEXT NOT NULL DEFAULT 'UTC',
        missed_run_policy TEXT NOT NULL DEFAULT 'skip',
        status TEXT NOT NULL DEFAULT 'active',
        template TEXT NOT NULL,
        max_runs INTEGER,
        runs INTEGER NOT NULL DEFAULT 0,
        expires_at REAL,
        after_schedule TEXT,
        next_run_at REAL,
        last_run_at REAL,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL DEFAULT 0,
        cancel_reason TEXT
    )""")
    db.execute_sql("CREATE INDEX IF NOT EXISTS schedule_status ON schedule (status)")
    db.execute_sql("CREATE INDEX IF NOT EXISTS schedule_next_run_at ON schedule (next_run_at)")
    db.execute_sql("""CREATE TABLE IF NOT EXISTS schedule_execution (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        schedule_id TEXT NOT NULL,
        scheduled_for REAL NOT NULL,
        fired_at REAL NOT NULL,
        task_id TEXT,
        outcome TEXT NOT NULL,
        error TEXT,
        UNIQUE (schedule_id, scheduled_for)
    )""")
    db.execute_sql("CREATE INDEX IF NOT EXISTS task_schedule_id ON task (schedule_id)")


def _v8(db: peewee.SqliteDatabase) -> None:
    # When the owner told about a task's end (notifications, the on_finish hook). Rows that
    # ended before this version count as told: an upgrade must not notify about old work.
    db.execute_sql("ALTER TABLE task ADD COLUMN notified_at REAL")
    db.execute_sql("UPDATE task SET notified_at = ended_at "
                   "WHERE status IN ('completed', 'failed', 'cancelled')")


def _v9(db: peewee.SqliteDatabase) -> None:
    # Messages sent to a task's agent (claudine_core/messages.py declares the columns; a
    # test checks this creates exactly those). Written before delivery, so none is lost.
    db.execute_sql("""CREATE TABLE IF NOT EXISTS message (
        id TEXT NOT NULL PRIMARY KEY,
        task_id TEXT NOT NULL,
        text TEXT NOT NULL,
        created_at REAL NOT NULL,
        attempt INTEGER,
        resume_task_id TEXT,
        delivered_at REAL
    )""")
    db.execute_sql("CREATE INDEX IF NOT EXISTS message_task_id ON message (task_id)")


def _v10(db: peewee.SqliteDatabase) -> None:
    # Usage limits and budgets: a task's own budget and fallback model, parking, and the
    # ledger of what each attempt spent (claudine_core/spending.py), filled with what the
    # tasks stored so far reported, so today's and this month's budgets count them.
    for column in ("max_budget_usd REAL", "fallback_model TEXT", "parked_until REAL",
                   "parks INTEGER NOT NULL DEFAULT 0", "resuming INTEGER NOT NULL DEFAULT 0"):
        db.execute_sql(f"ALTER TABLE task ADD COLUMN {column}")
    # One row per attempt: its cost as last reported, on the local day the attempt started.
    db.execute_sql("""CREATE TABLE IF NOT EXISTS spend (
        task_id TEXT NOT NULL,
        attempt INTEGER NOT NULL,
        day TEXT NOT NULL,
        cwd TEXT NOT NULL,
        cost_usd REAL NOT NULL,
        updated_at REAL NOT NULL,
        PRIMARY KEY (task_id, attempt)
    )""")
    db.execute_sql("CREATE INDEX IF NOT EXISTS spend_day ON spend (day)")
    db.execute_sql(
        "INSERT OR IGNORE INTO spend (task_id, attempt, day, cwd, cost_usd, updated_at) "
        "SELECT id, attempt, date(COALESCE(started_at, created_at), 'unixepoch', 'localtime'), "
        "cwd, cost_usd, updated_at FROM task WHERE cost_usd > 0")


def _v11(db: peewee.SqliteDatabase) -> None:
    # Execution backends: the node a task's run is on (Ray); old rows ran on this machine.
    db.execute_sql("ALTER TABLE task ADD COLUMN node TEXT")


MIGRATIONS: dict[int, Callable[[peewee.SqliteDatabase], None]] = {
    1: _v1, 2: _v2, 3: _v3, 4: _v4, 5: _v5, 6: _v6, 7: _v7, 8: _v8, 9: _v9, 10: _v10,
    11: _v11,
}


def current_version(db: peewee.SqliteDatabase) -> int:
    return int(db.execute_sql("PRAGMA user_version").fetchone()[0])


def migrate(db: peewee.SqliteDatabase, target: int = SCHEMA_VERSION) -> int:
    """Bring the schema to ``target``; returns the version found before.

    Each step runs in one IMMEDIATE transaction with the version bump, so two processes
    starting at once cannot both apply it, and a crash mid-step leaves the old version.
    """
    found = current_version(db)
    if found > SCHEMA_VERSION:
        raise StoreError(
            f"the database schema is version {found} but this claudine knows only up to "
            f"{SCHEMA_VERSION}: upgrade claudine (pip install -U claudine)"
        )
    for version in range(found + 1, target + 1):
        with db.atomic("IMMEDIATE"):
            # Re-read inside the lock: another process may have migrated meanwhile.
            if current_version(db) >= version:
                continue
            MIGRATIONS[version](db)
            db.execute_sql(f"PRAGMA user_version = {version}")
    return found
