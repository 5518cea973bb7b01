"""What the console's snapshot reads again after every change, and the summary writes that
cause most of those changes. Real SQLite in ``tmp_path``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from claudine_core.events import state_version, store_version
from claudine_core.models import ACTIVE_STATES, TERMINAL_STATES, TaskSpec, TaskState
from claudine_core.store import ListCache, TaskRepo, open_database
from claudine_core.store.migrations import migrate

LONG = "Refactor the billing module. " + "Context line. " * 7000  # ~100 KB, like the bench's


def open_repo(path: Path) -> TaskRepo:
    db = open_database(path)
    migrate(db)
    return TaskRepo(db)


def start(repo: TaskRepo, prompt: str, cwd: str) -> str:
    task = repo.insert(TaskSpec(prompt, cwd=cwd, worktree=False), cwd=cwd)
    assert repo.transition(task.id, [TaskState.QUEUED], status=TaskState.RUNNING,
                           started_at=task.created_at)
    return task.id


def listed(repo: TaskRepo, cache: ListCache) -> dict[str, object]:
    """Both lists the snapshot reads, as the snapshot reads them."""
    tasks = repo.list_tasks(statuses=ACTIVE_STATES, cache=cache)
    tasks += repo.list_tasks(statuses=TERMINAL_STATES, limit=300, cache=cache)
    cache.forget_unlisted()
    return {task.id: task for task in tasks}


def test_cached_lists_are_the_tasks_the_store_holds(tmp_path: Path) -> None:
    repo = open_repo(tmp_path / "claudine.db")
    running = [start(repo, f"{n}: {LONG}", str(tmp_path)) for n in range(3)]
    queued = repo.insert(TaskSpec("waiting", cwd=str(tmp_path), worktree=False),
                         cwd=str(tmp_path)).id
    cache = ListCache()
    first = listed(repo, cache)
    assert set(first) == {*running, queued}
    for task_id, task in first.items():
        assert task == repo.get(task_id)  # every field, the whole prompt included
    assert first[running[0]].prompt.endswith("Context line. ")


def test_an_unchanged_row_comes_back_as_the_same_task(tmp_path: Path) -> None:
    repo = open_repo(tmp_path / "claudine.db")
    one, two = (start(repo, LONG, str(tmp_path)) for _ in range(2))
    cache = ListCache()
    first = listed(repo, cache)
    repo.update_summaries({one: {"last_activity": "Bash: pytest", "num_turns": 3}})
    second = listed(repo, cache)
    assert second[two] is first[two]  # untouched: the table can skip it by identity
    assert second[one] is not first[one]
    assert second[one].last_activity == "Bash: pytest" and second[one].num_turns == 3
    assert second[one].prompt == LONG


def test_the_cache_holds_only_what_was_listed_last(tmp_path: Path) -> None:
    repo = open_repo(tmp_path / "claudine.db")
    task_id = start(repo, "soon cancelled", str(tmp_path))
    cache = ListCache()
    listed(repo, cache)
    assert set(cache.prompts) == {task_id}
    repo.transition(task_id, [TaskState.RUNNING], status=TaskState.CANCELLED, ended_at=1.0)
    repo.db.execute_sql("DELETE FROM task WHERE id = ?", (task_id,))
    fresh = start(repo, "a new one", str(tmp_path))
    assert set(listed(repo, cache)) == {fresh}
    assert set(cache.prompts) == {fresh}


def test_summaries_with_different_columns_are_written_to_running_tasks_only(
        tmp_path: Path) -> None:
    repo = open_repo(tmp_path / "claudine.db")
    plain, with_session = (start(repo, "p", str(tmp_path)) for _ in range(2))
    finished = start(repo, "done", str(tmp_path))
    repo.transition(finished, [TaskState.RUNNING], status=TaskState.COMPLETED, ended_at=2.0,
                    result="all good")
    repo.update_summaries({
        plain: {"last_activity": "Read: a.py", "output_bytes": 10},
        with_session: {"last_activity": "Edit: b.py", "output_bytes": 20,
                       "session_id": "sess-1", "num_turns": 4, "cost_usd": 0.25},
        finished: {"last_activity": "too late", "output_bytes": 30},
    })
    assert (repo.get(plain).last_activity, repo.get(plain).output_bytes) == ("Read: a.py", 10)
    both = repo.get(with_session)
    assert (both.session_id, both.num_turns, both.cost_usd) == ("sess-1", 4, 0.25)
    assert both.last_activity == "Edit: b.py" and both.output_bytes == 20
    assert repo.get(finished).last_activity is None and repo.get(finished).result == "all good"


def test_a_summary_write_moves_what_screens_watch_not_what_the_owners_passes_watch(
        tmp_path: Path) -> None:
    repo = open_repo(tmp_path / "claudine.db")
    one = start(repo, "first", str(tmp_path))
    shown, states = store_version(repo), state_version(repo)
    repo.update_summaries({one: {"last_activity": "Bash: pytest"}})
    assert store_version(repo) != shown  # the console shows the new activity
    assert state_version(repo) == states  # no task changed state: no pass re-reads
    other = open_repo(tmp_path / "claudine.db")  # another process's connection
    other.update_summaries({one: {"last_activity": "Read: app.py"}})
    assert state_version(repo) != states  # another process's commit may be anything
    states = state_version(repo)
    repo.request_cancel(one, "changed my mind")
    assert state_version(repo) != states


def test_summary_writes_leave_state_changes_synchronous(tmp_path: Path) -> None:
    """Summaries skip the fsync; whatever happens, the connection goes back to FULL (2)."""
    repo = open_repo(tmp_path / "claudine.db")
    one = start(repo, "first", str(tmp_path))
    repo.update_summaries({one: {"last_activity": "Bash: pytest", "num_turns": 2}})
    assert repo.db.execute_sql("PRAGMA synchronous").fetchone()[0] == 2
    with pytest.raises(KeyError):
        repo.update_summaries({one: {"no_such_column": 1}})
    assert repo.db.execute_sql("PRAGMA synchronous").fetchone()[0] == 2
    assert repo.get(one).last_activity == "Bash: pytest"
