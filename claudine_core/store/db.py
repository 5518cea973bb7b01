"""Opening the SQLite database with the pragmas every claudine process relies on."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import peewee

from claudine_core.errors import StoreError

# Every state transition is acknowledged to a user, so it must survive power loss:
# synchronous=FULL in WAL mode measured about 2,600 commits/s on the target machine.
SYNCHRONOUS = "full"
_PRAGMAS = {
    "journal_mode": "wal",
    "foreign_keys": 1,
    "synchronous": SYNCHRONOUS,
    "busy_timeout": 10_000,
}


class _Database(peewee.SqliteDatabase):
    """peewee's SQLite database, minus one way it hides the error that matters.

    After some errors (disk full, I/O error, out of memory) SQLite rolls the transaction
    back by itself. peewee's ``atomic()`` then sends ROLLBACK anyway, which fails with
    "cannot rollback - no transaction is active", and that error replaces the real one:
    an owner on a full disk logged it twice a second and never said "disk full".
    """

    def rollback(self) -> None:
        conn = None if self.is_closed() else self.connection()
        if conn is not None and not conn.in_transaction:
            return  # SQLite already rolled back; let the original error propagate
        super().rollback()


def open_database(path: Path) -> peewee.SqliteDatabase:
    """Open (creating if needed) the database at ``path``.

    Nothing is bound globally: a :class:`~claudine_core.store.repo.TaskRepo` made on the
    returned database declares its own tables on it, so several homes can be open at once.

    Raises:
        StoreError: the home is not writable, the disk is full, or the file is not a
            claudine database.
    """
    _create_private_file(path)
    db = _Database(str(path), pragmas=_PRAGMAS, check_same_thread=False)
    try:
        db.connect(reuse_if_open=True)
    except (peewee.OperationalError, peewee.DatabaseError, sqlite3.Error) as exc:
        raise StoreError(describe_sqlite_error(exc, path)) from exc
    return db


def _create_private_file(path: Path) -> None:
    # Prompts and logs can hold secrets: the database is created 0600 (SQLite gives the
    # -wal and -shm files the same mode as the main file).
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        os.close(fd)
    except PermissionError as exc:
        raise StoreError(
            f"cannot write the claudine home {path.parent}: {exc.strerror}. "
            "Make it writable or point CLAUDINE_HOME at a writable directory."
        ) from exc
    except FileExistsError as exc:
        raise StoreError(
            f"cannot create the claudine home {path.parent}: a file with that name exists. "
            "Move it or point CLAUDINE_HOME elsewhere."
        ) from exc
    except OSError as exc:
        raise StoreError(describe_sqlite_error(exc, path)) from exc


def describe_sqlite_error(exc: BaseException, path: Path | str) -> str:
    """Turn a SQLite error into a sentence a person can act on."""
    text = str(exc)
    lowered = text.lower()
    if "locked" in lowered or "busy" in lowered:
        return (
            f"the database {path} is locked by another process that has held a write "
            f"lock for more than 10 s ({text}). Retry; if it persists, find the process "
            "holding it (fuser) and stop it."
        )
    if "readonly" in lowered or "read-only" in lowered or "read only" in lowered:
        return (
            f"the database {path} is read-only ({text}). Make the claudine home writable "
            "or set CLAUDINE_HOME to a writable directory."
        )
    if ("disk" in lowered and "full" in lowered) or "no space" in lowered:
        return f"the disk holding {path} is full ({text}). Free some space and retry."
    if "disk i/o error" in lowered or "input/output error" in lowered:
        return (
            f"the disk holding {path} failed a read or write ({text}): its file system may "
            "have gone read-only after an error, or the disk may be failing (see dmesg). "
            "Stop claudine, repair or remount the file system, then start it again."
        )
    if "not a database" in lowered or "malformed" in lowered:
        return (
            f"{path} is not a usable claudine database ({text}). Move it aside; "
            "claudine will create a new one."
        )
    return f"database error on {path}: {text}"
