"""What the runner's `recommend()` call after every tell costs, per optimizer, on a replay.

    python benchmarks/recommend_cost.py [--optimizers smac,bohb] [--budget 60x] [--seed 0]

Replays one seed of each optimizer on the committed classifier table (`run_study`, the
task default first, as the paper study runs) with the optimizer's `recommend` wrapped in a
timer, and prints the calls, their total time, and the run's wall time. SMAC's answer is
its intensifier's incumbent, kept up to date as results are told: reading it refits
nothing, and this measures that it stays a small share of the run.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from suite.study import StudySpec, run_study

TABLE = Path(__file__).resolve().parents[1] / "results" / "tables" / "text_classifier.parquet"


def measure(name: str, budget: str, seed: int) -> dict[str, float]:
    spent = {"calls": 0, "seconds": 0.0}

    def on_run(_name, _seed, runner) -> None:
        inner = runner.optimizer.recommend

        def timed():
            t0 = time.perf_counter()
            try:
                return inner()
            finally:
                spent["seconds"] += time.perf_counter() - t0
                spent["calls"] += 1
        runner.optimizer.recommend = timed

    spec = StudySpec(task="text_classifier", optimizers=(name,), seeds=(seed,), budget=budget,
                     table=str(TABLE), workers=4, include_default=True)
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        run_study(spec, Path(out), on_run=on_run)
        wall = time.perf_counter() - t0
    return {**spent, "wall": wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--optimizers", default="smac,bohb,tpe")
    parser.add_argument("--budget", default="60x")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for name in args.optimizers.split(","):
        m = measure(name, args.budget, args.seed)
        print(f"{name}: {m['calls']} recommend() calls, {1e3 * m['seconds']:.1f} ms in all "
              f"({1e6 * m['seconds'] / max(m['calls'], 1):.1f} us each); run {m['wall']:.1f} s "
              f"wall ({100 * m['seconds'] / m['wall']:.3f}%)")


if __name__ == "__main__":
    main()
