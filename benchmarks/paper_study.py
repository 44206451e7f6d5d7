"""The paper study's cost: a replay per optimizer, timed, its time split four ways.

    python benchmarks/paper_study.py [--task text_classifier] [--optimizers smac,bohb]
        [--seeds 0-1] [--budget 60x] [--jobs 2] [--runs 100] [--no-profile]

Each optimizer × seed runs as one run of a replayed study (the serial path, in this
process), timed with a wall clock. Then the same run is repeated under cProfile, and its
own time (tottime) per function is summed by where the function lives:

- library: the optimizer's library (smac, ConfigSpace, hpbandster, optuna, and what they
  call: numpy, scipy, sklearn, the random forest);
- adapter: `suite/optimizers/` (our ask/tell wrappers);
- log: `suite/log.py`, `suite/records.py`, `suite/_json.py` and the json module (encode +
  write);
- runner: the rest (the runner's loop, ledger, simulated executor, bookkeeping).

A C function (a builtin, `~` in the profile) is charged to its callers' parts in
proportion to the time each caller spent in it. cProfile slows Python code more than C
code, so the split is given as fractions of the profiled time, applied to the unprofiled
wall time. The estimate: every optimizer's mean seconds per seed × `--runs` seeds,
divided by `--jobs` (runs are independent, `suite run --jobs`), from wall time and from
the process's CPU time (the better one on a machine shared with other work).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

PARTS = ("library", "adapter", "runner", "log")
OPTIMIZERS = "grid,random,tpe,hyperband,bohb,smac,asha"


def part_of(filename: str) -> str | None:
    """The part a Python function belongs to by its file; None: a C function."""
    path = filename.replace("\\", "/")
    if path == "~" or path.startswith("<"):
        return None
    if "/suite/optimizers/" in path:
        return "adapter"
    if path.endswith(("/suite/log.py", "/suite/records.py", "/suite/_json.py")) or \
            "/json/" in path:
        return "log"
    if "/suite/" in path:
        return "runner"
    return "library"


def split(stats: pstats.Stats) -> dict[str, float]:
    """Seconds of own time per part (C functions charged to their callers' parts)."""
    seconds: dict[str, float] = defaultdict(float)
    for (filename, _, _), (_, _, tottime, _, callers) in stats.stats.items():
        part = part_of(filename)
        if part is not None:
            seconds[part] += tottime
            continue
        by_part: dict[str, float] = defaultdict(float)
        for (caller_file, _, _), caller_stats in callers.items():
            by_part[part_of(caller_file) or "runner"] += caller_stats[2]  # caller's tottime
        total = sum(by_part.values())
        for name, share in by_part.items():
            seconds[name] += tottime * (share / total if total else 1 / len(by_part))
    return {p: seconds.get(p, 0.0) for p in PARTS}


def one_run(task: str, table: str, optimizer: str, seed: int, budget: str, out: Path,
            profile: cProfile.Profile | None = None) -> tuple[float, float]:
    """(wall, CPU) seconds of one run; the imports are done before (`warm_up`), as a
    pool's worker process does them once for all its runs."""
    from suite.study import StudySpec, run_study

    spec = StudySpec(task=task, optimizers=(optimizer,), seeds=(seed,), budget=budget,
                     table=table)
    t0, c0 = time.perf_counter(), time.process_time()
    if profile is not None:
        profile.enable()
    try:
        run_study(spec, out, jobs=1)
    finally:
        if profile is not None:
            profile.disable()
    return time.perf_counter() - t0, time.process_time() - c0


def warm_up(task: str, table: str, optimizers: list[str], out: Path) -> None:
    """Import the task (torch) and every library before anything is timed."""
    for name in optimizers:
        one_run(task, table, name, 0, "1x", out / f"warm-{name}")


def measure(args: argparse.Namespace) -> dict[str, dict]:
    from suite.study import parse_seeds

    results = {}
    with tempfile.TemporaryDirectory(prefix="paper-study-") as tmp:
        warm_up(args.task, args.table, args.optimizers.split(","), Path(tmp))
        for name in args.optimizers.split(","):
            walls, cpus, fractions = [], [], defaultdict(list)
            for seed in parse_seeds(args.seeds):
                wall, cpu = one_run(args.task, args.table, name, seed, args.budget,
                                    Path(tmp) / f"{name}-{seed}")
                walls.append(wall)
                cpus.append(cpu)
                if args.profile:
                    prof = cProfile.Profile()
                    one_run(args.task, args.table, name, seed, args.budget,
                            Path(tmp) / f"{name}-{seed}-profiled", prof)
                    seconds = split(pstats.Stats(prof))
                    total = sum(seconds.values())
                    for part in PARTS:
                        fractions[part].append(seconds[part] / total)
            results[name] = {"seconds": walls, "cpu": cpus,
                             "split": {p: statistics.mean(v) for p, v in fractions.items()}}
            print(_line(name, results[name]), flush=True)
    return results


def _line(name: str, result: dict) -> str:
    mean = statistics.mean(result["seconds"])
    text = f"{name:10s} {mean:8.2f} s/seed (seeds: " + \
        ", ".join(f"{s:.2f}" for s in result["seconds"]) + \
        f"; CPU {statistics.mean(result['cpu']):.2f} s/seed)"
    if result["split"]:
        text += "  " + "  ".join(f"{p} {mean * f:.2f} s ({100 * f:.0f}%)"
                                 for p, f in result["split"].items())
    return text


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--task", default="text_classifier")
    p.add_argument("--table", default=None, help="default results/tables/<task>.parquet")
    p.add_argument("--optimizers", default=OPTIMIZERS)
    p.add_argument("--seeds", default="0-1")
    p.add_argument("--budget", default="60x")
    p.add_argument("--jobs", type=int, default=2, help="parallel runs assumed (the cores)")
    p.add_argument("--runs", type=int, default=100, help="seeds per optimizer in the study")
    p.add_argument("--no-profile", dest="profile", action="store_false")
    args = p.parse_args(argv)
    args.table = args.table or f"results/tables/{args.task}.parquet"
    print(f"{args.task} replay at {args.budget}, seeds {args.seeds}: wall seconds per seed"
          + (" and their split (cProfile fractions of the wall time)" if args.profile else ""))
    results = measure(args)
    for what in ("seconds", "cpu"):
        per_seed = sum(statistics.mean(r[what]) for r in results.values())
        print(f"estimate from {'wall' if what == 'seconds' else 'CPU'} time: {len(results)} "
              f"optimizers x {args.runs} seeds at {args.budget} with --jobs {args.jobs}: "
              f"{per_seed * args.runs / args.jobs / 60:.1f} min (sum of seconds per seed "
              f"{per_seed:.2f} x {args.runs} / {args.jobs})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
