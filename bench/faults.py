"""Fault bench: the long versions of tests/faults. Prints figures, asserts nothing.

Run: python bench/faults.py [--scenario kills|crash-points|clients|all] [--repeat N] ...

Scenarios, each on a fresh temporary home, driven only through real processes (the
``claudine`` CLI, ``claudine serve`` owners, the fake agent):

- ``kills``: CLI clients delegate ``--tasks`` tasks (fake agents taking a random
  ``--min-sleep``..``--max-sleep`` seconds) while ``--kills`` owners are SIGKILLed, each at a
  random moment of its life (0..``--max-life`` s after taking the lock), half the time with a
  standby client ready to take over. A last owner then drains the queue.
- ``crash-points``: per round, an owner armed at each crash point (claimed, spawned,
  pid_recorded, finished) after a random 0..3 passes, with ``--burst`` tasks in flight.
- ``clients``: ``--clients`` real ``claudine delegate`` processes at once, ``--per-client``
  calls each, against one owner (``--auto``: no owner, every call may auto-start one).

Figures per round: kills (owners SIGKILLed, all survived when "ok"), tasks acknowledged,
lost (acknowledged, then no row or no agent ever completed it), run twice (a second agent
process started for a task), stuck (still queued/running after the drain), not completed
(ended failed/cancelled), wall time. With ``--repeat`` > 1, the median and range of each.
"""

from __future__ import annotations

import argparse
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "faults"))

from fault_harness import (  # noqa: E402
    FaultHome,
    Feeder,
    Verdict,
    flow_prompts,
    kill_owners,
    many_clients,
    verdict,
)

CRASH_POINTS = ("claimed", "spawned", "pid_recorded", "finished")


@dataclass
class Round:
    scenario: str
    kills: int
    result: Verdict
    wall_s: float
    errors: int = 0  # CLI calls that failed (none expected)

    def row(self) -> list[str]:
        r = self.result
        return [self.scenario, str(self.kills), str(r.tasks), str(len(r.lost)),
                str(len(r.run_twice)), str(len(r.stuck)), str(len(r.not_completed)),
                str(self.errors), f"{self.wall_s:.1f}", "ok" if r.ok and not self.errors
                else "FAIL"]


HEADER = ["scenario", "kills", "tasks", "lost", "run twice", "stuck", "not completed",
          "cli errors", "wall s", ""]


def with_home(run: Callable[[FaultHome], Round]) -> Round:
    root = Path(tempfile.mkdtemp(prefix="claudine-faults-"))
    home = FaultHome(root)
    try:
        return run(home)
    finally:
        home.close()
        shutil.rmtree(root, ignore_errors=True)


def kills_round(args: argparse.Namespace, rng: random.Random) -> Round:
    def run(home: FaultHome) -> Round:
        started = time.monotonic()
        feeder = Feeder(home, flow_prompts(args.tasks, rng, min_s=args.min_sleep,
                                           max_s=args.max_sleep), threads=args.feeders)
        kills = kill_owners(home, kills=args.kills, rng=rng, max_life_s=args.max_life)
        ids = feeder.join()
        home.serve()
        home.wait_settled(ids, timeout=args.drain)
        return Round("kills", kills, verdict(home, ids), time.monotonic() - started,
                     len(feeder.errors))
    return with_home(run)


def crash_points_round(args: argparse.Namespace, rng: random.Random) -> Round:
    def run(home: FaultHome) -> Round:
        started = time.monotonic()
        ids: list[str] = []
        kills = 0
        for point in CRASH_POINTS:
            owner = home.serve(CLAUDINE_CRASH_AT=point, CLAUDINE_CRASH_AFTER=str(rng.randint(0, 3)))
            home.wait_owner()
            ids += [home.delegate(prompt) for prompt in flow_prompts(
                args.burst, rng, min_s=args.min_sleep, max_s=args.max_sleep, label=point)]
            try:
                owner.wait(timeout=30)
            except subprocess.TimeoutExpired:  # too few passes to reach the point
                home.kill(owner.pid)
            kills += owner.returncode == -signal.SIGKILL
        home.serve()
        home.wait_settled(ids, timeout=args.drain)
        return Round("crash-points", kills, verdict(home, ids), time.monotonic() - started)
    return with_home(run)


def clients_round(args: argparse.Namespace, rng: random.Random) -> Round:
    def run(home: FaultHome) -> Round:
        started = time.monotonic()
        if not args.auto:
            home.serve()
            home.wait_owner()
        else:
            home.env["CLAUDINE_IDLE_EXIT"] = "30"
        ids, errors = many_clients(home, processes=args.clients, per_process=args.per_client,
                                   real_cli=True, no_serve=not args.auto)
        if args.auto and home.owner_pid() is None:
            home.serve()  # the auto-started owner may have left while idle
        home.wait_settled(ids, timeout=args.drain)
        name = "clients-auto" if args.auto else "clients"
        return Round(name, 0, verdict(home, ids), time.monotonic() - started, len(errors))
    return with_home(run)


SCENARIOS = {"kills": kills_round, "crash-points": crash_points_round,
             "clients": clients_round}


def print_table(rows: list[list[str]]) -> None:
    widths = [max(len(r[i]) for r in [HEADER, *rows]) for i in range(len(HEADER))]
    for line in [HEADER, *rows]:
        print("  ".join(cell.rjust(w) for cell, w in zip(line, widths, strict=True)))


def spread(values: list[float], fmt: str = "{:g}") -> str:
    if len(values) == 1:
        return fmt.format(values[0])
    return (f"{fmt.format(statistics.median(values))} "
            f"[{fmt.format(min(values))}..{fmt.format(max(values))}]")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", choices=[*SCENARIOS, "all"], default="all")
    parser.add_argument("--repeat", type=int, default=1, help="rounds per scenario")
    parser.add_argument("--seed", type=int, help="random seed (default: from the clock)")
    parser.add_argument("--kills", type=int, default=40, help="owners SIGKILLed per round")
    parser.add_argument("--tasks", type=int, default=120, help="tasks per kills round")
    parser.add_argument("--feeders", type=int, default=2, help="CLI clients delegating")
    parser.add_argument("--max-life", type=float, default=1.5,
                        help="an owner lives 0..this many seconds after taking the lock")
    parser.add_argument("--min-sleep", type=float, default=0.05, help="agent time, min")
    parser.add_argument("--max-sleep", type=float, default=1.0, help="agent time, max")
    parser.add_argument("--burst", type=int, default=6, help="tasks per crash point")
    parser.add_argument("--clients", type=int, default=8, help="concurrent CLI processes")
    parser.add_argument("--per-client", type=int, default=50, help="delegates per client")
    parser.add_argument("--auto", action="store_true",
                        help="clients: no owner started; each call may auto-start one")
    parser.add_argument("--drain", type=float, default=600,
                        help="seconds the last owner gets to finish everything")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else time.time_ns() % 1_000_000
    rng = random.Random(seed)
    print(f"seed {seed}; {' '.join(sys.argv[1:]) or '(defaults)'}", flush=True)
    names = list(SCENARIOS) if args.scenario == "all" else [args.scenario]
    rounds: list[Round] = []
    for name in names:
        for n in range(args.repeat):
            done = SCENARIOS[name](args, rng)
            rounds.append(done)
            print(f"  {name} round {n + 1}: {done.result.summary()} "
                  f"({done.wall_s:.1f}s, {done.kills} kills)", flush=True)
    print()
    print_table([r.row() for r in rounds])
    if args.repeat > 1:
        print()
        for name in names:
            mine = [r for r in rounds if r.scenario.startswith(name)]
            print(f"{name}: wall s {spread([r.wall_s for r in mine], '{:.1f}')}; "
                  f"kills {spread([float(r.kills) for r in mine])}; "
                  f"lost {sum(len(r.result.lost) for r in mine)}, "
                  f"run twice {sum(len(r.result.run_twice) for r in mine)}, "
                  f"stuck {sum(len(r.result.stuck) for r in mine)} in total")
    return 0 if all(r.result.ok and not r.errors for r in rounds) else 1


if __name__ == "__main__":
    sys.exit(main())
