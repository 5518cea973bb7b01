"""Where a task's runs live on disk: ``<runs>/<task id>/attempt-N/``.

Plain path helpers with no imports beyond the standard library, so a short-lived command
(``claudine logs``, a status that checks whether an agent ended) finds a run's files without
loading the supervisor and the stream machinery.
"""

from __future__ import annotations

from pathlib import Path

REMOTE_RUN_FILE = "remote-run.json"
"""In a run folder of a run on a remote backend: its name, written before it is started,
and where it runs once it is (claudine_core/backends/remote.py)."""


def run_dir_for(runs_dir: Path, task_id: str, attempt: int) -> Path:
    return runs_dir / task_id / f"attempt-{attempt}"


def attempt_dirs(runs_dir: Path, task_id: str) -> list[Path]:
    """The run folders of every attempt of the task that started, oldest first."""
    task_dir = runs_dir / task_id
    if not task_dir.is_dir():
        return []
    runs = [p for p in task_dir.iterdir()
            if p.name.startswith("attempt-") and p.name[8:].isdigit()]
    return sorted(runs, key=lambda p: int(p.name[8:]))


def latest_run_dir(runs_dir: Path, task_id: str) -> Path | None:
    """The folder of the task's most recent attempt, if it ever started."""
    runs = attempt_dirs(runs_dir, task_id)
    return runs[-1] if runs else None


def spawn_began(run_dir: Path) -> bool:
    """Whether an agent may have been started for this run (``spawn`` creates the wrapper's
    log before it starts the process, a remote start its record); False means certainly
    not."""
    return (run_dir / "wrapper.log").exists() or (run_dir / REMOTE_RUN_FILE).exists()
