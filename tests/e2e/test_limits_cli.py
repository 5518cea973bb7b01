"""Usage limits and budgets from the command line, through the installed ``claudine``.

Separate processes on one home, with the fake agent: ``--max-budget-usd`` and
``--fallback-model`` reach the agent's own flags (its argv is logged by FAKE_CLAUDE_LOG),
bad values are refused naming the flag with nothing stored, and a task a usage limit
stopped (``[usage-limit:S]``, the subscription's limit as the real CLI shows it) is shown
parked by ``status``, released by ``release``, and its cost totalled by ``costs``.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from engine_helpers import cli_env

CLAUDINE = str(Path(sys.executable).with_name("claudine"))
ENDED = {"completed", "failed", "cancelled"}


class Cli:
    """The installed command against one home, and an owner (``claudine serve``)."""

    def __init__(self, home: Path, **env: str) -> None:
        self.env = cli_env(home, **env)
        self.serve: subprocess.Popen[bytes] | None = None

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([CLAUDINE, *args], env=self.env, capture_output=True,
                              text=True, timeout=60)

    def ok(self, *args: str) -> str:
        result = self(*args)
        assert result.returncode == 0, (args, result.stderr)
        return result.stdout

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args, "--json"))

    def start_owner(self) -> None:
        self.serve = subprocess.Popen([CLAUDINE, "serve"], env=self.env,
                                      stderr=subprocess.DEVNULL)

    def stop_owner(self) -> None:
        if self.serve is not None:
            self.serve.terminate()
            self.serve.wait(timeout=20)

    def wait_for(self, task_id: str, states: set[str], timeout: float = 60) -> dict[str, Any]:
        """Poll ``status ID --json`` until the task is in one of ``states``."""
        deadline = time.monotonic() + timeout
        while True:
            task: dict[str, Any] = self.json("status", task_id)
            if task["status"] in states:
                return task
            assert time.monotonic() < deadline, f"{task_id} still {task['status']}"
            time.sleep(0.1)


@pytest.fixture
def work(tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    return path


@pytest.fixture
def runs_log(tmp_path: Path) -> Path:
    return tmp_path / "agent-runs.jsonl"


@pytest.fixture
def cli(tmp_path: Path, runs_log: Path) -> Iterator[Cli]:
    c = Cli(tmp_path / "home", FAKE_CLAUDE_LOG=str(runs_log))
    yield c
    c.stop_owner()


def last_agent_argv(runs_log: Path) -> list[str]:
    """The argv of the latest agent run (the fake logs one line per run, in order)."""
    runs = [json.loads(line)["argv"] for line in runs_log.read_text().splitlines()]
    assert runs, "no agent ran"
    return list(runs[-1])


def flag_value(argv: list[str], flag: str) -> str | None:
    return argv[argv.index(flag) + 1] if flag in argv else None


# -- the flags ----------------------------------------------------------------------------------


def test_budget_and_fallback_flags_reach_the_agent(cli: Cli, work: Path,
                                                   runs_log: Path) -> None:
    cli.start_owner()
    task_id = cli.ok("delegate", "hi", "--no-serve", "--cwd", str(work), "--model", "opus",
                     "--max-budget-usd", "2.5", "--fallback-model", "haiku").strip()
    done = cli.wait_for(task_id, ENDED)
    assert done["status"] == "completed", done["error"]
    assert (done["max_budget_usd"], done["fallback_model"]) == (2.5, "haiku")
    argv = last_agent_argv(runs_log)
    assert flag_value(argv, "--max-budget-usd") == "2.5"
    assert flag_value(argv, "--fallback-model") == "haiku"

    # A pipeline gives them to each step's agent.
    made = cli.json("pipeline", "one", "--no-serve", "--cwd", str(work),
                    "--max-budget-usd", "0.75", "--fallback-model", "sonnet")
    step = made["tasks"][0]
    assert (step["max_budget_usd"], step["fallback_model"]) == (0.75, "sonnet")
    assert cli.wait_for(step["id"], ENDED)["status"] == "completed"
    argv = last_agent_argv(runs_log)
    assert flag_value(argv, "--max-budget-usd") == "0.75"
    assert flag_value(argv, "--fallback-model") == "sonnet"


def test_a_task_without_the_flags_passes_neither(cli: Cli, work: Path,
                                                 runs_log: Path) -> None:
    cli.start_owner()
    task_id = cli.ok("delegate", "plain", "--no-serve", "--cwd", str(work)).strip()
    assert cli.wait_for(task_id, ENDED)["status"] == "completed"
    argv = last_agent_argv(runs_log)
    assert "--max-budget-usd" not in argv and "--fallback-model" not in argv


def test_a_schedule_keeps_the_flags_in_its_template(cli: Cli, work: Path) -> None:
    made = cli.json("schedule", "add", "nightly", "--cron", "0 3 * * *", "--no-serve",
                    "--cwd", str(work), "--max-budget-usd", "1.25", "--fallback-model",
                    "haiku")
    shown = cli.json("schedule", "show", made["id"])
    template = shown["template"]
    assert (template["max_budget_usd"], template["fallback_model"]) == (1.25, "haiku")


@pytest.mark.parametrize(
    ("flags", "flag", "words"),
    [
        (["--max-budget-usd", "0"], "--max-budget-usd", "must be more than 0 and at most "
         "10000 USD"),
        (["--max-budget-usd", "-3"], "--max-budget-usd", "must be more than 0"),
        (["--max-budget-usd", "nan"], "--max-budget-usd", "must be more than 0"),
        (["--max-budget-usd", "20000"], "--max-budget-usd", "at most 10000 USD"),
        (["--max-budget-usd", "two"], "--max-budget-usd", "'two' is not an amount of US "
         "dollars"),
        (["--fallback-model", "my model"], "--fallback-model", "'my model' is not a model "
         "name"),
        (["--model", "sonnet", "--fallback-model", "sonnet"], "--fallback-model",
         "'sonnet' is the model itself"),
    ],
)
def test_a_bad_value_is_refused_naming_its_flag_and_nothing_is_stored(
        cli: Cli, work: Path, flags: list[str], flag: str, words: str) -> None:
    for command in (["delegate", "x"], ["pipeline", "x"],
                    ["schedule", "add", "x", "--cron", "0 3 * * *"]):
        result = cli(*command, "--no-serve", "--cwd", str(work), *flags)
        assert result.returncode == 2, (command, result.stderr)
        assert f"claudine: error: {flag}: " in result.stderr, (command, result.stderr)
        assert words in result.stderr, (command, result.stderr)
    assert cli.json("status") == []
    assert cli.json("schedule", "list") == []


def test_json_errors_name_both_flags(cli: Cli, work: Path) -> None:
    result = cli("delegate", "x", "--no-serve", "--json", "--cwd", str(work),
                 "--max-budget-usd", "0", "--fallback-model", "a b")
    assert result.returncode == 2
    assert set(json.loads(result.stdout)["problems"]) == {"--max-budget-usd",
                                                           "--fallback-model"}


# -- a parked task: status, release, cancel, costs ------------------------------------------


def wait_for_reason(cli: Cli, task_id: str, timeout: float = 30) -> str:
    """The waiting reason of a queued task, once the owner has published one."""
    deadline = time.monotonic() + timeout
    while not (reason := cli.json("status", task_id)["waiting_reason"]):
        assert time.monotonic() < deadline, "no waiting reason"
        time.sleep(0.1)
    return str(reason)



def park_one(cli: Cli, work: Path, seconds: int = 600) -> str:
    """A task a subscription usage limit stopped (reset ``seconds`` ahead): parked."""
    task_id = cli.ok("delegate", f"[usage-limit:{seconds}] write the report", "--no-serve",
                     "--cwd", str(work)).strip()
    parked = cli.wait_for(task_id, {"parked", *ENDED})
    assert parked["status"] == "parked", parked
    return task_id


def test_status_shows_the_pause_and_the_parked_task(cli: Cli, work: Path) -> None:
    cli.start_owner()
    task_id = park_one(cli, work)
    short = task_id.removeprefix("task-")[:8]

    lines = cli.ok("status").splitlines()
    assert re.fullmatch(r"paused: usage limit reached \(five-hour\) until (\w{3} )?\d\d:\d\d, "
                        r"in \d+ min · 1 parked", lines[0]), lines
    row = next(line for line in lines if line.startswith(short))
    assert re.search(r"◷ parked .* until (\w{3} )?\d\d:\d\d: \[usage-limit:600\] write", row), row
    assert cli.ok("status", "--tmux").strip() == "◷1"

    details = cli.ok("status", task_id)
    assert details.startswith(f"{task_id}  ◷ parked")
    assert re.search(r"waiting: +until (\w{3} )?\d\d:\d\d · usage limit reached \(five-hour\); "
                     f"'claudine release {short}' starts it now", details), details
    assert re.search(r"parks: +1", details), details

    shown = cli.json("status", task_id)
    assert shown["status"] == "parked" and shown["parks"] == 1
    assert shown["parked_until"] == shown["usage_pause"]["until"]
    assert shown["usage_pause"]["kind"] == "usage"
    assert shown["usage_pause"]["task_id"] == task_id
    assert shown["budget"] is None  # no budget set
    assert [t["status"] for t in cli.json("status")] == ["parked"]  # still a plain array

    # Nothing else starts while the home is paused, and the queued task says why.
    waiting = cli.ok("delegate", "after the limit", "--no-serve", "--cwd", str(work)).strip()
    assert wait_for_reason(cli, waiting).startswith("paused: usage limit reached (five-hour)")
    assert cli.json("status", waiting)["status"] == "queued"


def test_release_lets_a_parked_task_go_on_and_all_lifts_the_pause(cli: Cli,
                                                                  work: Path) -> None:
    cli.start_owner()
    task_id = park_one(cli, work)
    waiting = cli.ok("delegate", "queued behind the pause", "--no-serve", "--cwd",
                     str(work)).strip()

    assert cli.ok("release", task_id[:9]) == f"{task_id}\n"
    done = cli.wait_for(task_id, ENDED)
    assert done["status"] == "completed", done["error"]
    assert done["parks"] == 1 and done["session_id"]
    # Released by hand: the home stays paused, the queued task waits.
    assert cli.json("status", waiting)["status"] == "queued"
    assert wait_for_reason(cli, waiting).startswith("paused: usage limit reached")
    assert cli.ok("status").startswith("paused: usage limit reached")

    not_parked = cli("release", task_id)
    assert not_parked.returncode == 1
    assert f"task {task_id[5:13]} is completed: only a parked task can be released" in \
        not_parked.stderr
    unknown = cli("release", "task-000000000000")
    assert unknown.returncode == 1 and "no task with id" in unknown.stderr
    assert cli("release").returncode == 2
    assert cli("release", task_id, "--all").returncode == 2

    assert cli.json("release", "--all") == []  # nothing parked now; the pause is lifted
    assert cli.wait_for(waiting, ENDED)["status"] == "completed"
    assert not cli.ok("status").startswith("paused")


def test_an_unknown_id_among_several_releases_none(cli: Cli, work: Path) -> None:
    cli.start_owner()
    task_id = park_one(cli, work)
    result = cli("release", task_id, "abcd0000")
    assert result.returncode == 1 and "abcd0000" in result.stderr
    assert cli.json("status", task_id)["status"] == "parked"


def test_release_all_releases_the_parked_tasks(cli: Cli, work: Path) -> None:
    cli.start_owner()
    task_id = park_one(cli, work)
    released = cli.json("release", "--all")
    assert [t["id"] for t in released] == [task_id]
    assert released[0]["status"] == "queued" and released[0]["resuming"] is True
    assert cli.wait_for(task_id, ENDED)["status"] == "completed"


def test_cancel_a_parked_task(cli: Cli, work: Path) -> None:
    cli.start_owner()
    task_id = park_one(cli, work)
    assert cli.ok("cancel", task_id, "not needed any more") == f"{task_id}\n"
    cancelled = cli.json("status", task_id)
    assert cancelled["status"] == "cancelled"
    assert cancelled["cancel_reason"] == "not needed any more"
    # The home stays paused until the reset, with nothing parked any more.
    assert re.fullmatch(r"paused: usage limit reached \(five-hour\) until (\w{3} )?\d\d:\d\d, "
                        r"in \d+ min", cli.ok("status").splitlines()[0])


def test_costs_per_day_and_directory_and_against_the_budgets(tmp_path: Path, work: Path,
                                                             runs_log: Path) -> None:
    cli = Cli(tmp_path / "home", FAKE_CLAUDE_LOG=str(runs_log),
              CLAUDINE_DAILY_BUDGET_USD="0.10")
    other = tmp_path / "other"
    other.mkdir()
    cli.start_owner()
    try:
        first = cli.ok("delegate", "[cost:0.04] a", "--no-serve", "--cwd", str(work)).strip()
        assert cli.wait_for(first, ENDED)["status"] == "completed"
        second = cli.ok("delegate", "[cost:0.07] b", "--no-serve", "--cwd", str(other)).strip()
        assert cli.wait_for(second, ENDED)["status"] == "completed"

        report = cli.json("costs")
        today = report["to"]
        assert report["by_day"] == [{"day": today, "cost_usd": 0.11, "tasks": 2}]
        assert report["by_directory"] == [{"cwd": str(other), "cost_usd": 0.07, "tasks": 1},
                                          {"cwd": str(work), "cost_usd": 0.04, "tasks": 1}]
        assert report["total_usd"] == 0.11
        budget = report["budget"]
        assert (budget["today_usd"], budget["daily_budget_usd"]) == (0.11, 0.1)
        assert budget["reached"].startswith("daily budget reached: $0.11 of $0.10 spent today")

        text = cli.ok("costs", "--days", "1").splitlines()
        assert text[0] == "spent today: $0.11"
        assert f"  {other}  $0.07  1 task" in text
        assert text[-1].startswith("budget: daily budget reached: $0.11 of $0.10 spent today; "
                                   "new agents start after midnight")

        # The budget holds new agents; status says so first.
        held = cli.ok("delegate", "c", "--no-serve", "--cwd", str(work)).strip()
        status = cli.ok("status").splitlines()
        assert status[0].startswith("budget: daily budget reached: $0.11 of $0.10"), status
        assert cli.json("status", held)["status"] == "queued"
        assert cli.json("status", held)["budget"]["reached"].startswith("daily budget")
    finally:
        cli.stop_owner()


def test_costs_of_an_empty_home_and_bad_days(cli: Cli) -> None:
    text = cli.ok("costs", "--days", "7").splitlines()
    assert text[0].startswith("spent ") and text[0].endswith(": $0.00 (no agent reported a "
                                                            "cost)")
    assert text[-1] == ("budget: no budget set (daily_budget_usd, monthly_budget_usd): "
                        "$0.00 today, $0.00 this month")
    report = cli.json("costs", "--days", "7")
    assert (report["by_day"], report["by_directory"], report["total_usd"]) == ([], [], 0)
    for days in ("0", "-1", "100000"):
        result = cli("costs", "--days", days)
        assert result.returncode == 2
        assert f"claudine: error: --days: {days} days: give 1 to 36600" in result.stderr


