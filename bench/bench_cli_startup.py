"""Wall time of the short-lived ``claudine`` commands against ``python -c pass``.

Prints, side by side in one run, the median (and min..max) of N runs of:
``python -c pass``, ``claudine --version``, ``claudine status`` on an empty home and on a
home with 300 tasks, ``claudine status ID`` and ``claudine delegate --no-serve``, each with
its difference to ``python -c pass``. The commands run the installed console script next to
this interpreter (not a pyenv shim, whose own start-up would be counted) on this checkout's
code (``PYTHONPATH``, for ``python -c pass`` too), with ``CLAUDINE_HOME`` set to a temporary
home and ``CLAUDINE_CLAUDE_BIN`` to a stand-in, so ``delegate`` needs no Claude Code.
Bytecode is cached (under a temporary ``PYTHONPYCACHEPREFIX``) as for an installed package,
even if ``PYTHONDONTWRITEBYTECODE`` is set here; ``--no-pyc`` measures with every run
compiling claudine's sources instead. The runs are interleaved (one of each command per
round), so a change in the machine's load shows in every row rather than in one; the median
CPU time (user + system) of each command is printed too, as it varies less with the load.
``--against DIR`` times another checkout (an older commit's ``git worktree``) in the same
rounds, on homes of its own, for a before/after comparison.

    python bench/bench_cli_startup.py [-n 15] [--tasks 300] [--against DIR] [--no-pyc]
                                      [--check]

``--check`` exits 1 when ``status`` or ``delegate`` is more than 0.15 s above
``python -c pass`` (goal of issue 9). A script to run by hand: never a timed test in CI.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GOAL_S = 0.15
CHECKED = ("status", "delegate")  # labels starting with these are held to GOAL_S


def claudine_command() -> list[str]:
    script = Path(sys.executable).with_name("claudine")
    if script.exists():
        return [str(script)]
    found = shutil.which("claudine")
    return [found] if found else [sys.executable, "-m", "claudine_tui"]


FILL = """
import sys
from pathlib import Path
from claudine_core.config import load_config
from claudine_core.models import Priority, TaskSpec
from claudine_core.service import TaskService

home, count, cwd = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
service = TaskService(load_config(home=home))
try:
    for index in range(count):
        spec = TaskSpec(prompt=f"bench task {index}: " + "lorem ipsum " * 8,
                        priority=Priority.parse(f"P{index % 3}"), cwd=cwd)
        task_id = service.delegate(spec).id
finally:
    service.close()
print(task_id)
"""


def fill_home(home: Path, count: int, cwd: Path, env: dict[str, str]) -> str:
    """``count`` tasks in ``home`` through the library of the tree in ``env`` (fast);
    returns the last task's id."""
    done = subprocess.run([sys.executable, "-c", FILL, str(home), str(count), str(cwd)],
                          env=env, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def timed(command: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """Wall time and CPU time (user + system) of one run of ``command``."""
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, cwd=cwd, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    assert process.stderr is not None
    stderr = process.stderr.read()
    _, wait_status, usage = os.wait4(process.pid, 0)
    took = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(wait_status)
    process.stderr.close()
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({process.returncode}): "
                         f"{stderr.decode(errors='replace')}")
    return took, usage.ru_utime + usage.ru_stime


def load_line() -> str:
    try:
        one, five, _ = os.getloadavg()
    except OSError:
        return "load average unknown"
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min)"


Case = tuple[str, list[str], dict[str, str]]


def tree_cases(tree: Path, root: Path, args: argparse.Namespace) -> list[Case]:
    """The commands to time against ``tree``'s code, on homes of its own under ``root``.

    With ``--against`` every tree runs as ``python -m claudine_tui``: the installed script
    names this checkout's entry point, which an older layout may not have.
    """
    claudine = [sys.executable, "-m", "claudine_tui"] if args.against else claudine_command()
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("CLAUDINE_")}
    base_env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(tree), os.environ.get("PYTHONPATH")) if p)
    base_env["CLAUDINE_CLAUDE_BIN"] = sys.executable  # found on any PATH; never run
    if args.no_pyc:
        base_env["PYTHONDONTWRITEBYTECODE"] = "1"
    else:  # compiled once (by the warm-up run), as for an installed package
        base_env.pop("PYTHONDONTWRITEBYTECODE", None)
        base_env["PYTHONPYCACHEPREFIX"] = str(root / "pycache")
    empty, full, scratch = root / "empty", root / "full", root / "delegate"
    for home in (empty, full, scratch):
        home.mkdir(parents=True)

    def env(home: Path) -> dict[str, str]:
        return {**base_env, "CLAUDINE_HOME": str(home)}

    task_id = fill_home(full, args.tasks, root, env(full))
    return [
        ("python -c pass", [sys.executable, "-c", "pass"], base_env),
        ("claudine --version", [*claudine, "--version"], env(empty)),
        ("status (empty home)", [*claudine, "status"], env(empty)),
        (f"status ({args.tasks} tasks)", [*claudine, "status"], env(full)),
        ("status ID", [*claudine, "status", task_id], env(full)),
        ("delegate --no-serve", [*claudine, "delegate", "--no-serve", "bench"], env(scratch)),
    ]


def report(title: str, times: dict[str, list[tuple[float, float]]]) -> list[str]:
    """Prints one tree's table; returns the checked commands over the goal."""
    print(title)
    baseline = statistics.median(wall for wall, _ in times["python -c pass"])
    print(f"  {'command':22} {'median':>8}  {'min..max':>11}  {'- python':>9}  {'CPU':>6}")
    over_goal = []
    for label, values in times.items():
        walls = [wall for wall, _ in values]
        median = statistics.median(walls)
        over = median - baseline
        cpu = statistics.median(cpu for _, cpu in values)
        print(f"  {label:22} {median * 1000:5.0f} ms  "
              f"{min(walls) * 1000:5.0f}..{max(walls) * 1000:<5.0f}  "
              f"{over * 1000:+6.0f} ms  {cpu * 1000:3.0f} ms")
        if label.startswith(CHECKED) and over > GOAL_S:
            over_goal.append(label)
    return over_goal


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=15, help="runs of each command (default 15)")
    parser.add_argument("--tasks", type=int, default=300,
                        help="tasks in the populated home (default 300)")
    parser.add_argument("--against", type=Path, metavar="DIR",
                        help="another checkout (e.g. a `git worktree` of an older commit) "
                        "timed in the same rounds, for a before/after comparison")
    parser.add_argument("--no-pyc", action="store_true",
                        help="no cached bytecode: every run compiles claudine's sources "
                        "(PYTHONDONTWRITEBYTECODE=1)")
    parser.add_argument("--check", action="store_true",
                        help=f"exit 1 if status or delegate is more than {GOAL_S} s above "
                        "python -c pass (this checkout)")
    args = parser.parse_args()
    trees = [REPO] + ([args.against.resolve()] if args.against else [])

    with tempfile.TemporaryDirectory(prefix="claudine-bench-") as tmp:
        cases = {tree: tree_cases(tree, Path(tmp) / str(i), args)
                 for i, tree in enumerate(trees)}
        for tree_list in cases.values():  # warm the page cache and the bytecode
            for _, command, env in tree_list:
                timed(command, env, Path(tmp))
        times: dict[Path, dict[str, list[tuple[float, float]]]] = {
            tree: {label: [] for label, _, _ in tree_list}
                 for tree, tree_list in cases.items()}
        load_before = load_line()
        for _ in range(args.n):  # interleaved: one run of each command per round
            for tree, tree_list in cases.items():
                for label, command, env in tree_list:
                    times[tree][label].append(timed(command, env, Path(tmp)))
        load_after = load_line()

    pyc = "no bytecode cache" if args.no_pyc else "bytecode cached"
    print(f"{' '.join(claudine_command())}: {args.n} runs each, {pyc}, "
          f"{os.cpu_count()} CPUs; wall time, and the median CPU time (user + system)")
    print(f"before: {load_before}; after: {load_after}")
    failed: list[str] = []
    for tree in reversed(trees):
        over_goal = report(str(tree), times[tree])
        if tree == REPO:
            failed = over_goal
    if args.check and failed:
        print(f"over the goal ({GOAL_S * 1000:.0f} ms above python -c pass): "
              + ", ".join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
