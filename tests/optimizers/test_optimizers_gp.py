"""The gp adapter: Optuna's GPSampler with the stated settings, making the decisions of
Optuna's own loop (`study.optimize`) on the same objective."""

from __future__ import annotations

import optuna
import pytest
from optdriver import TASK, build, drive

from suite.optimizers._tpe import _suggest_config

EPOCHS = TASK.info.fidelity.max_epochs


def test_settings_are_optunas_defaults_but_the_seed_and_the_warning():
    sampler = build("gp", seed=3)._study.sampler
    assert isinstance(sampler, optuna.samplers.GPSampler)
    reference = optuna.samplers.GPSampler(seed=3)
    assert sampler._n_startup_trials == reference._n_startup_trials == 10
    assert sampler._deterministic is reference._deterministic is False
    assert sampler._warn_independent_sampling is False


def test_the_default_is_enqueued_first():
    opt = build("gp", default=True)
    assert opt.ask().config == TASK.default_config()


@pytest.mark.slow  # 2 x 3 GP fits: seconds each on 2 cores
def test_one_worker_proposes_what_study_optimize_proposes():
    """Optuna's own loop with the same sampler settings and the same define-by-run
    translation: the same configurations, past the 10 random start-up trials."""
    space = TASK.config_space()
    proposed = []

    def objective(trial):
        config = _suggest_config(space, trial)
        proposed.append(config)
        return TASK.curve(config, EPOCHS, 0)

    study = optuna.create_study(sampler=optuna.samplers.GPSampler(
        seed=6, warn_independent_sampling=False))
    study.optimize(objective, n_trials=13)
    run = drive(build("gp", seed=6), workers=1, n_trials=13)
    assert [t.config for t in run.trials] == proposed
