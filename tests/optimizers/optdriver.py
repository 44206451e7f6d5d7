"""A small simulated-worker driver for the optimizer tests (also run in subprocesses).

Workers train on `ToyTask.curve` on an event clock: each trial takes `epoch_seconds` per
newly trained epoch (a promotion resumes its `resume_from` trial's checkpoint), so with more
than one worker results come back in a deterministic order that is not the ask order.
"""

from __future__ import annotations

import heapq
import json
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from suite.optimizers import Optimizer, make_optimizer
from suite.testing import ToyTask
from suite.types import Status, Trial, TrialResult

TASK = ToyTask()


@dataclass(frozen=True)
class Run:
    """What a driven optimizer did: trials in ask order, results in tell order."""

    trials: list[Trial]
    results: list[TrialResult]
    waits: int  # asks answered None while results were pending


def build(name: str, *, seed: int = 0, default: bool = False,
          max_full_trials: int | None = None) -> Optimizer:
    return make_optimizer(name, space=TASK.config_space(), fidelity=TASK.info.fidelity,
                          seed=seed, default_config=TASK.default_config() if default else None,
                          max_full_trials=max_full_trials)


def drive(opt: Optimizer, *, workers: int = 1, n_trials: int = 40, fail_every: int = 0,
          seed: int = 0, history: Sequence[Trial] = ()) -> Run:
    """Keep up to `workers` trials pending until `n_trials` were asked or `opt.finished`.

    With `fail_every=k`, every k-th result told is Status.FAILED with loss inf. `history`:
    trials `opt` asked (and was told) before this drive, which promotions may resume.
    """
    trials: list[Trial] = []
    results: list[TrialResult] = []
    pending: list[tuple[float, int, Trial]] = []  # (finish time, trial_id, trial)
    clock, waits = 0.0, 0
    epochs_of = {t.trial_id: t.epochs for t in history}

    def tell_next() -> float:
        finish, _, trial = heapq.heappop(pending)
        failed = fail_every > 0 and len(results) % fail_every == fail_every - 1
        loss = math.inf if failed else TASK.curve(trial.config, trial.epochs, seed)
        result = TrialResult(trial, Status.FAILED if failed else Status.OK, loss, trial.epochs)
        results.append(result)
        opt.tell(result)
        return finish

    while len(trials) < n_trials and not opt.finished:
        trial = opt.ask() if len(pending) < workers else None
        if trial is None:
            if not pending:
                break  # stuck with nothing pending: the test decides whether that is legal
            waits += len(pending) < workers
            clock = tell_next()
            continue
        trials.append(trial)
        epochs_of[trial.trial_id] = trial.epochs
        done = epochs_of[trial.resume_from] if trial.resume_from is not None else 0
        duration = (trial.epochs - done) * TASK.epoch_seconds(trial.config)
        heapq.heappush(pending, (clock + duration, trial.trial_id, trial))
    return Run(trials, results, waits)


def signature(run: Run) -> list[tuple]:
    """What must be identical between two runs with one seed."""
    return [(json.dumps(t.config, sort_keys=True), t.epochs, t.config_id, t.resume_from)
            for t in run.trials]


if __name__ == "__main__":  # python optdriver.py NAME SEED WORKERS N FAIL_EVERY
    name, seed, workers, n, fail_every = sys.argv[1], *map(int, sys.argv[2:6])
    run = drive(build(name, seed=seed), workers=workers, n_trials=n, fail_every=fail_every)
    print(json.dumps(signature(run)))
