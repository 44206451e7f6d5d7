"""Live runs against their replays on one worker: the same decisions, row for row.

    python benchmarks/live_vs_replay.py [--table PATH] [--optimizers all] [--seeds 0-1]
        [--budget 6x] [--out results/live_vs_replay/one-worker.json]

For every optimizer and seed, one live study trains on the table's grid (`suite run --space
table PATH`: the local executor, one worker, as the table was recorded) and one replays
the table (`--table PATH`, one simulated worker); `suite.decisions.decision_differences`
compares their logs row by row, ignoring only the measured fields (`MEASURED`). Writes the
rows compared, the differences (none expected), and each side's charged device-seconds,
with the machine; prints a table. PATH defaults to the CPU table
results/tables/text_classifier-tiny-cpu.parquet. The table must have been recorded on this machine
(`suite tabulate --task text_classifier --scale tiny --seeds 2 --workers 1 --no-test`):
otherwise the live study is refused in one line.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from suite.decisions import MEASURED, decision_differences
from suite.env import environment, machine_line
from suite.log import read_log
from suite.optimizers import OPTIMIZERS
from suite.plan import parse_seeds
from suite.study import StudySpec, run_study

ROOT = Path(__file__).resolve().parents[1]
TABLE = ROOT / "results" / "tables" / "text_classifier-tiny-cpu.parquet"


def _charged(directory: Path) -> float:
    rows = read_log(directory)
    return sum(r.device_seconds for r in rows if getattr(r, "event", None) == "epoch")


def compare(table: Path, optimizers: list[str], seeds: tuple[int, ...], budget: str,
            work: Path) -> list[dict]:
    plan = {"task": "text_classifier", "optimizers": tuple(optimizers), "seeds": seeds,
            "budget": budget, "include_default": True}
    t0 = time.perf_counter()
    run_study(StudySpec(**plan, space=str(table), executor="local", workers=1), work / "live")
    live_wall = time.perf_counter() - t0
    run_study(StudySpec(**plan, table=str(table), workers=1), work / "replay", jobs=1)
    out = []
    for name in optimizers:
        for seed in seeds:
            live, replay = (work / side / name / f"seed-{seed}" for side in ("live", "replay"))
            rows = len((live / "log.jsonl").read_text().splitlines())
            out.append({"optimizer": name, "seed": seed, "rows": rows,
                        "differences": decision_differences(live, replay, most=3),
                        "live_device_seconds": round(_charged(live), 3),
                        "table_device_seconds": round(_charged(replay), 3)})
    print(f"live studies: {live_wall:.0f} s wall", file=sys.stderr)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", type=Path, default=TABLE)
    parser.add_argument("--optimizers", default="all")
    parser.add_argument("--seeds", default="0-1")
    parser.add_argument("--budget", default="6x")
    parser.add_argument("--out", type=Path,
                        default=ROOT / "results" / "live_vs_replay" / "one-worker.json")
    args = parser.parse_args()
    names = sorted(OPTIMIZERS) if args.optimizers == "all" else args.optimizers.split(",")
    with tempfile.TemporaryDirectory() as work:
        runs = compare(args.table.resolve(), names, parse_seeds(args.seeds), args.budget,
                       Path(work))
    same = sum(not r["differences"] for r in runs)
    print(f"{'optimizer':<16} seed  rows  differences  device-s live / table")
    for r in runs:
        print(f"{r['optimizer']:<16} {r['seed']:>4} {r['rows']:>5}  {len(r['differences']):>11}"
              f"  {r['live_device_seconds']:>7.2f} / {r['table_device_seconds']:.2f}")
        for line in r["differences"]:
            print(f"    {line}")
    print(f"{same} of {len(runs)} runs decided as their replays ({machine_line()})")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "command": "python benchmarks/live_vs_replay.py " + " ".join(sys.argv[1:]),
        "table": str(args.table.resolve().relative_to(ROOT)) if args.table.resolve()
        .is_relative_to(ROOT) else str(args.table), "budget": args.budget,
        "workers": 1, "ignored_fields": MEASURED, "machine": machine_line(),
        "environment": environment(), "same_decisions": same, "runs": runs}, indent=1) + "\n")
    return 0 if same == len(runs) else 1


if __name__ == "__main__":
    sys.exit(main())
