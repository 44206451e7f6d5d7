"""How a replayed study's wall time scales with the number of Ray workers (1, then 2).

    python benchmarks/ray_scaling.py [--task toy] [--optimizers tpe,bohb] [--seeds 0-3]
        [--budget 10x] [--workers 1,2]

For each worker count a fresh local Ray instance with that many CPUs runs the same replay
with `--executor ray` (each run one Ray task, one CPU each) into a new folder; the wall
time of `run_study` is printed, and the ratio of the first to each other. `--task toy`
replays the toy task's table (`suite.testing.toy_table`, no torch), any other task its
table in results/tables/. The machine's load average is printed beside: on a machine
shared with other work the ratio says as much about the neighbours as about Ray.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path


def timed_study(spec, out: Path, workers: int) -> float:
    import ray

    from suite.study import run_study

    ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False,
             object_store_memory=128 * 1024**2)
    try:
        ray.get(ray.remote(lambda: None).remote())  # the instance up before the clock
        t0 = time.perf_counter()
        run_study(spec, out)
        return time.perf_counter() - t0
    finally:
        ray.shutdown()


def main(argv: list[str] | None = None) -> int:
    from suite.study import StudySpec, parse_seeds
    from suite.testing import toy_table

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--task", default="toy")
    p.add_argument("--optimizers", default="tpe,bohb")
    p.add_argument("--seeds", default="0-3")
    p.add_argument("--budget", default="10x")
    p.add_argument("--workers", default="1,2")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="ray-scaling-") as tmp:
        table = (toy_table(Path(tmp) / "toy.parquet", seeds=1) if args.task == "toy"
                 else Path(f"results/tables/{args.task}.parquet").absolute())
        spec = StudySpec(task=args.task, optimizers=tuple(args.optimizers.split(",")),
                         seeds=parse_seeds(args.seeds), budget=args.budget, table=str(table),
                         executor="ray")
        runs = len(spec.optimizers) * len(spec.seeds)
        print(f"{args.task} replay, {runs} runs ({args.optimizers} x seeds {args.seeds}) at "
              f"{args.budget}, each a Ray task; {os.cpu_count()} cores, load average "
              f"{os.getloadavg()[0]:.1f}")
        walls = {}
        for workers in map(int, args.workers.split(",")):
            walls[workers] = timed_study(spec, Path(tmp) / f"w{workers}", workers)
            print(f"{workers} Ray worker(s): {walls[workers]:.1f} s", flush=True)
        first = next(iter(walls))
        for workers, wall in list(walls.items())[1:]:
            print(f"speed-up {first} -> {workers} workers: {walls[first] / wall:.2f}x "
                  f"(load average now {os.getloadavg()[0]:.1f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
