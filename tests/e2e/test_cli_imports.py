"""The short-lived commands import only what they need (issue 9): ``claudine status``,
``delegate --no-serve``, ``logs`` and ``--version`` never load the console (Textual), the MCP
SDK, GitPython, rich, psutil, asyncio or the engine; only ``logs`` loads the stream parser
and the run-log reader.
Checked by what is in ``sys.modules`` after the command ran, in a fresh interpreter:
behaviour, not timings (the timings are in bench/bench_cli_startup.py, run by hand)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from engine_helpers import cli_env, make_config

from claudine_core.models import TaskSpec
from claudine_core.service import TaskService

REPO = Path(__file__).resolve().parents[2]

# Top-level names, or claudine modules, that no short-lived command below may load.
HEAVY = ("textual", "mcp", "git", "rich", "psutil", "asyncio", "anyio", "pydantic",
         "claudine_core.engine", "claudine_core.serve", "claudine_core.resources",
         "claudine_core.supervisor",
         "claudine_core.agents.stream_parse", "claudine_core.agents.summary",
         "claudine_core.agents.log_text", "claudine_core.agents.run_log",
         "claudine_tui.log_render", "claudine_tui.app")
# What ``logs`` may load of them: the run-log reader, the parser and the plain text form.
LOG_READER = {"claudine_core.agents.run_log", "claudine_core.agents.stream_parse",
              "claudine_core.agents.log_text"}

PROBE = """
import io, json, sys
from contextlib import redirect_stdout
from claudine_tui.cli.main import main
with redirect_stdout(io.StringIO()) as out:
    status = main(json.loads(sys.argv[1]))
heavy = json.loads(sys.argv[2])
loaded = sorted(m for m in heavy if m in sys.modules)
print(json.dumps({"status": status, "out": out.getvalue(), "loaded": loaded}))
"""


def run_probe(env: dict[str, str], *argv: str) -> dict[str, object]:
    """Run ``main(argv)`` in a fresh interpreter on this checkout's code."""
    env = {**env, "PYTHONPATH": os.pathsep.join(
        p for p in (str(REPO), env.get("PYTHONPATH")) if p)}
    done = subprocess.run([sys.executable, "-c", PROBE, json.dumps(argv), json.dumps(HEAVY)],
                          env=env, capture_output=True, text=True, timeout=60, cwd=REPO)
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout.splitlines()[-1])
    return result


@pytest.fixture(scope="module")
def home_with_tasks(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, str], str]:
    """A home holding a few queued tasks (no owner runs them), and one task's id."""
    home = tmp_path_factory.mktemp("imports") / "home"
    service = TaskService(make_config(home))
    try:
        ids = [service.delegate(TaskSpec(prompt=f"task {n}", cwd=str(home))).id
               for n in range(3)]
    finally:
        service.close()
    return cli_env(home), ids[0]


@pytest.mark.parametrize("argv", [
    ("--version",),
    ("status",),
    ("status", "--json"),
    ("status", "--status", "queued"),
    ("status", "{id}"),
    ("status", "{id}", "--json"),
    ("delegate", "--no-serve", "an import-hygiene probe"),
    ("delegate", "--no-serve", "--json", "an import-hygiene probe"),
])
def test_short_lived_commands_do_not_load_heavy_modules(
    home_with_tasks: tuple[dict[str, str], str], argv: tuple[str, ...]
) -> None:
    env, task_id = home_with_tasks
    result = run_probe(env, *(arg.format(id=task_id) for arg in argv))
    assert result["status"] == 0, result
    assert result["loaded"] == [], f"claudine {' '.join(argv)} loaded {result['loaded']}"


@pytest.mark.parametrize("argv", [("logs", "{id}"), ("logs", "{id}", "--raw")])
def test_logs_loads_the_stream_parser_and_nothing_heavier(
    home_with_tasks: tuple[dict[str, str], str], argv: tuple[str, ...]
) -> None:
    env, task_id = home_with_tasks
    result = run_probe(env, *(arg.format(id=task_id) for arg in argv))
    assert result["status"] == 0, result
    loaded = result["loaded"]
    assert isinstance(loaded, list)
    assert set(loaded) <= LOG_READER, loaded


def test_status_on_an_empty_home_loads_nothing_heavy(tmp_path: Path) -> None:
    result = run_probe(cli_env(tmp_path / "home"), "status")
    assert result["status"] == 0
    assert "no tasks yet" in str(result["out"])
    assert result["loaded"] == []


def test_the_probe_sees_a_heavy_import(home_with_tasks: tuple[dict[str, str], str]) -> None:
    """The check is not vacuous: rich, imported where the console's log pane renders
    (``claudine_tui.log_render``), still loads and works there."""
    env, _ = home_with_tasks
    env = {**env, "PYTHONPATH": str(REPO)}
    code = ("import sys\n"
            "from claudine_core.agents.stream_events import AssistantText\n"
            "from claudine_tui.log_render import render_rich\n"
            "assert render_rich(AssistantText('hi')).plain == 'hi'\n"
            "print('rich' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=60, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True"


def test_commands_that_start_an_owner_do_not_load_the_engine(tmp_path: Path) -> None:
    """cancel, priority, retry, ... make sure an owner runs: they start one as a separate
    process, so they load serve's ensure_owner but never the engine or asyncio."""
    home = tmp_path / "home"
    service = TaskService(make_config(home))
    try:
        task = service.delegate(TaskSpec(prompt="[hang] cancelled at once", cwd=str(home)))
    finally:
        service.close()
    result = run_probe(cli_env(home), "cancel", task.id)
    assert result["status"] == 0, result
    assert result["loaded"] == ["claudine_core.serve"], result["loaded"]
