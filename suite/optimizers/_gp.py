"""Gaussian-process Bayesian optimization: Optuna's `GPSampler`, asked and told as `tpe` is.

Settings: `GPSampler(seed=seed, warn_independent_sampling=False)`, otherwise Optuna's
defaults: `n_startup_trials=10` random trials before the first GP fit (Optuna's choice, about
twice the toy task's dimension and close to the real tasks' 7 to 11), and
`deterministic_objective=False`: a configuration's loss is noisy (another training seed,
another value), so the GP fits a noise variance rather than interpolating every observation.
Running trials are Optuna's own business: the sampler conditions its acquisition on them
(log-EI over their fantasized values), so parallel workers get different proposals.

Translation: the define-by-run translation of `tpe` (suite/optimizers/_tpe.py). The GP models
the parameters every completed trial has (Optuna's intersection search space); conditional
children are drawn by its independent sampler (`RandomSampler`, seeded): that is Optuna's own
behaviour on a conditional space, and its per-trial warning about it is switched off. Failed
trials (and NaN losses) are told `TrialState.FAIL`; the GP learns only from complete trials.

Recommendation: Optuna's own, `study.best_trial`, as for `tpe`.
"""

from __future__ import annotations

from typing import Any

from suite.optimizers._tpe import TPE, optuna_study

__all__ = ["GP"]


class GP(TPE):
    """Optuna's `GPSampler` (see the module docstring for the settings), full fidelity."""

    name = "gp"

    def _new_study(self, seed: int) -> Any:
        import optuna

        sampler = optuna.samplers.GPSampler(seed=seed, warn_independent_sampling=False)
        return optuna_study(sampler)
