"""Model-based optimizers beat random search on the toy objective, at equal epochs.

Each run spends the same budget of trained epochs (30 full-fidelity equivalents; a promotion
resumes its checkpoint and pays only its new epochs) with one worker, and scores the best
loss seen at full fidelity; means over fixed seeds are compared. Runs are deterministic, so
these tests cannot flake; the margins measured when they were written are ~4 standard errors
(mean best loss: random 0.281, TPE 0.264, BOHB 0.261 over seeds 0-9; SMAC 0.252 vs random
0.279 over seeds 0-4). TPE is fast and runs by default; BOHB (KDE sampling in Python, ~3 s a
seed) and SMAC (random forest, ~13 s a seed) are
opt-in with `-m slow`.
"""

from __future__ import annotations

import math
import statistics

import pytest
from optdriver import TASK, build

from suite.types import Status, TrialResult

FULL_EQUIVALENTS = 30
MAX_EPOCHS = TASK.info.fidelity.max_epochs


def best_full_fidelity_loss(name: str, seed: int) -> float:
    opt, trials = build(name, seed=seed), []
    spent, best = 0, math.inf
    while spent < FULL_EQUIVALENTS * MAX_EPOCHS:
        trial = opt.ask()
        trials.append(trial)
        resumed = trials[trial.resume_from].epochs if trial.resume_from is not None else 0
        spent += trial.epochs - resumed
        loss = TASK.curve(trial.config, trial.epochs, seed)
        if trial.epochs == MAX_EPOCHS:
            best = min(best, loss)
        opt.tell(TrialResult(trial, Status.OK, loss, trial.epochs))
    return best


def mean_best(name: str, seeds: range) -> float:
    return statistics.fmean(best_full_fidelity_loss(name, s) for s in seeds)


def test_tpe_beats_random_search():
    seeds = range(10)
    assert mean_best("tpe", seeds) < mean_best("random", seeds) - 0.005


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("name, n_seeds", [("bohb", 10), ("smac", 5)])
def test_multi_fidelity_model_based_beat_random_search(name, n_seeds):
    seeds = range(n_seeds)
    assert mean_best(name, seeds) < mean_best("random", seeds) - 0.005
