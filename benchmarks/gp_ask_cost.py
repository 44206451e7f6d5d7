"""Seconds per ask+tell of `gp` (Optuna's GPSampler) once N results are told, on the toy task.

The speed benchmark warms an optimizer up by asking and telling N times; for GP that warm-up
refits the Gaussian process N times (cubic in the results), hours at N = 1,000 on 2 cores.
Here the N results are random configurations added to its Optuna study as complete trials
(what the warm-up would leave, minus the GP's proposals), then a few ask+tells are timed.

    python benchmarks/gp_ask_cost.py 100 1000 [--asks 3]
"""

from __future__ import annotations

import argparse
import time

import optuna

from suite.optimizers import make_optimizer
from suite.optimizers._tpe import _suggest_config
from suite.testing import ToyTask
from suite.types import Status, TrialResult


def seconds_per_ask_tell(told: int, asks: int) -> list[float]:
    task = ToyTask()
    space, epochs = task.config_space(seed=0), task.info.fidelity.max_epochs
    gp = make_optimizer("gp", space=space, fidelity=task.info.fidelity, seed=0)
    random = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(told):
        trial = random.ask()
        random.tell(trial, task.curve(_suggest_config(space, trial), epochs, 0))
    gp._study.add_trials(random.trials)
    seconds = []
    for _ in range(asks):
        start = time.perf_counter()
        trial = gp.ask()
        gp.tell(TrialResult(trial, Status.OK, task.curve(trial.config, epochs, 0), epochs))
        seconds.append(time.perf_counter() - start)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("told", type=int, nargs="+")
    parser.add_argument("--asks", type=int, default=3)
    args = parser.parse_args()
    for told in args.told:
        seconds = seconds_per_ask_tell(told, args.asks)
        print(f"gp @{told}: ask+tell " + ", ".join(f"{s:.2f}" for s in seconds) + " s")


if __name__ == "__main__":
    main()
