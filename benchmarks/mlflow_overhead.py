"""What `--mlflow` costs a replayed study: its wall time with and without, in one run.

    SUITE_MLFLOW_SERVER=/path/to/mlflow python benchmarks/mlflow_overhead.py \
        [--optimizers hyperband,random] [--budget 10x] [--repeats 3] [--uri URI]

Replays the toy task's recorded table (`suite.testing.toy_table`) through `suite.api.start`
(what `suite run --table` calls), alternately without and with `mlflow=URI`, `--repeats`
times each after one warm-up of each (MLflow's import is paid there, not in the timings).
A study's wall time with `--mlflow` runs from its start until its follower has sent the
last row (`suite.mlflow_export`): the whole price, the final catch-up included; beside it,
the time until its last log row was written (the study itself, the follower running
beside it), so the two parts of the price show. Without
`--uri`, a real tracking server (SQLite backend in a temporary folder) is started from
`SUITE_MLFLOW_SERVER`, as the tests do, and stopped at the end. Every study it sent is
checked in MLflow (one run per trial, one step per epoch). Prints the medians and their
ratio, and the log rows and MLflow runs per study.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from mlflow_checks import Server, check_study  # noqa: E402

from suite.api import Placement, Plan, start  # noqa: E402
from suite.log import read_rows  # noqa: E402
from suite.mlflow_export import connect  # noqa: E402
from suite.testing import toy_table  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--optimizers", default="hyperband,random")
    parser.add_argument("--budget", default="10x")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--uri", help="an MLflow tracking server already running")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mlflow-overhead-"))
    server = None
    if args.uri is None:
        executable = os.environ.get("SUITE_MLFLOW_SERVER")
        if not executable:
            sys.exit("set SUITE_MLFLOW_SERVER to a full mlflow's `mlflow` executable, or --uri")
        server = Server(executable, work).start()
    uri = args.uri or server.url
    try:
        report(measure(work, uri, args), args)
    finally:
        if server is not None:
            server.kill()


def measure(work: Path, uri: str, args) -> dict:
    table = toy_table(work / "toy.parquet", seeds=1)
    plan = Plan(task="toy", optimizers=tuple(args.optimizers.split(",")), budget=args.budget)
    where = Placement(table=str(table))
    client, _ = connect(uri)
    times: dict[str, list[float]] = {"without": [], "with": [], "logged": []}
    studies = 0
    for round_ in range(args.repeats + 1):  # round 0: the warm-up of each
        for kind in ("without", "with"):
            out = work / f"{kind}-{round_}"
            began, began_epoch = time.perf_counter(), time.time()
            start(plan, where, out, jobs=1, mlflow=uri if kind == "with" else None)
            elapsed = time.perf_counter() - began
            logged = max(p.stat().st_mtime for p in out.glob("*/seed-*/log.jsonl"))
            if round_:
                times[kind].append(elapsed)
                if kind == "with":
                    times["logged"].append(logged - began_epoch)
            if kind == "with":
                trials = check_study(client, out)  # all of it arrived, once
                studies += 1
    rows = sum(len(read_rows(d)) for d in out.glob("*/seed-*"))
    return {"times": times, "rows": rows, "trials": trials, "studies": studies}


def report(result: dict, args) -> None:
    without = statistics.median(result["times"]["without"])
    with_ = statistics.median(result["times"]["with"])
    print(f"replay of {args.optimizers} at {args.budget} on the toy table, {args.repeats} "
          f"repeats after a warm-up; {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    print(f"per study: {result['rows']} log rows, {result['trials']} trials "
          f"({result['trials'] + len(args.optimizers.split(',')) + 1} MLflow runs); "
          f"{result['studies']} studies checked in MLflow")
    print("wall seconds without --mlflow: " + ", ".join(
        f"{t:.2f}" for t in result["times"]["without"]))
    print("wall seconds with --mlflow:    " + ", ".join(
        f"{t:.2f}" for t in result["times"]["with"]))
    logged = statistics.median(result["times"]["logged"])
    print("of which until the last log row:  " + ", ".join(
        f"{t:.2f}" for t in result["times"]["logged"]))
    print(f"median {without:.2f} s without, {with_:.2f} s with: ratio {with_ / without:.2f}; "
          f"the study's own rows were all written after {logged:.2f} s: ratio "
          f"{logged / without:.2f}")


if __name__ == "__main__":
    main()
