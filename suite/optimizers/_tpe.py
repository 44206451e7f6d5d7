"""TPE through Optuna's ask/tell API, with the ConfigSpace translated define-by-run.

Sampler settings: `TPESampler(seed=seed, multivariate=True, group=True, constant_liar=True)`.
Multivariate TPE models hyperparameters jointly (better than independent TPE on
single-objective problems, as in BOHB); `group=True` decomposes the space into the groups of
parameters that occur together, which is what makes the multivariate model work on a
conditional space (without it, a child that is absent from some trials drops out of the joint
model and is sampled independently). `constant_liar` treats running trials as bad so parallel
workers are not handed near-duplicates.

Translation: hyperparameters are suggested in ConfigSpace order (parents before children), a
child only when its condition holds under the values already sampled. Floats and integers
keep their bounds and log scale (Normal/Beta priors are ignored: TPE uses its own prior);
categoricals become categorical distributions; ordinals become an integer index, which keeps
their order; constants are not suggested. Failed trials are told `TrialState.FAIL`.

Recommendation: Optuna's own, `study.best_trial` (the lowest value among complete trials,
the earlier of equals; kept by the storage as trials complete, so asking is cheap), mapped
back to the suite's trial id.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

from ConfigSpace import ConfigurationSpace
from ConfigSpace.hyperparameters import (
    CategoricalHyperparameter,
    Constant,
    FloatHyperparameter,
    IntegerHyperparameter,
    OrdinalHyperparameter,
)

from suite.config import to_plain
from suite.errors import SuiteError
from suite.optimizers._spaces import checked_default, first_allowed, is_active
from suite.optimizers.base import TrialBook, config_key, is_failure
from suite.types import Fidelity, Trial, TrialResult

__all__ = ["TPE", "ask_allowed", "encode", "optuna_study", "tpe_study"]

class TPE:
    """Optuna's TPE sampler (see the module docstring for the settings), full fidelity."""

    name = "tpe"

    def __init__(self, *, space: ConfigurationSpace, fidelity: Fidelity, seed: int,
                 default_config: Mapping[str, Any] | None = None,
                 max_full_trials: int | None = None) -> None:
        import optuna  # lazily: keeps `import suite.optimizers` light

        self._study = self._new_study(seed)
        self._fail = optuna.trial.TrialState.FAIL
        self._space, self._epochs = space, fidelity.max_epochs
        default = checked_default(space, default_config)
        if default is not None:
            self._study.enqueue_trial(encode(space, default))
        self._running: dict[int, Any] = {}
        self._trial_ids: dict[int, int] = {}  # Optuna trial number -> our trial id
        self._book = TrialBook()

    def _new_study(self, seed: int) -> Any:
        """The study this adapter asks and tells (other Optuna samplers override it)."""
        return tpe_study(seed)

    @property
    def finished(self) -> bool:
        return False

    def ask(self) -> Trial | None:
        trial, config = ask_allowed(self._study, self._space, self.name)
        asked = self._book.new_trial(config, self._epochs, config_key(config))
        self._running[asked.trial_id] = trial
        return asked

    def tell(self, result: TrialResult) -> None:
        self._book.settle(result)
        trial = self._running.pop(result.trial.trial_id)
        if is_failure(result):
            self._study.tell(trial, state=self._fail)
        else:
            self._study.tell(trial, float(result.loss))
            self._trial_ids[trial.number] = result.trial.trial_id

    def resumable(self) -> tuple[int, ...]:
        """Never any: every trial trains from scratch (checkpoint retention:
        `suite._retention`)."""
        return ()

    def recommend(self) -> int | None:
        if not self._trial_ids:  # best_trial raises before the first complete trial
            return None
        return self._trial_ids.get(self._study.best_trial.number)


def tpe_study(seed: int, pruner: Any = None, *, study_name: str | None = None) -> Any:
    """An Optuna study minimizing with the TPE sampler of the module docstring.

    `study_name` matters to a `HyperbandPruner`, which draws a trial's bracket from a hash
    of the study's name and the trial's number: Optuna's default name is a random UUID.
    """
    import optuna

    with warnings.catch_warnings():  # `group` is flagged experimental
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        sampler = optuna.samplers.TPESampler(
            seed=seed, multivariate=True, group=True, constant_liar=True)
    return optuna_study(sampler, pruner, study_name=study_name)


def optuna_study(sampler: Any, pruner: Any = None, *, study_name: str | None = None) -> Any:
    """An Optuna study minimizing with `sampler`, its log records routed as other libraries'."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # Optuna's own handler holds the stderr of its import: its records go the way
    # of other libraries' instead (the application's handlers, or `sys.stderr` at
    # the time, which a study points at its library.log)
    optuna.logging.disable_default_handler()
    optuna.logging.enable_propagation()
    return optuna.create_study(direction="minimize", sampler=sampler, pruner=pruner,
                               study_name=study_name)


def ask_allowed(study: Any, space: ConfigurationSpace, name: str) -> tuple[Any, dict]:
    """A new Optuna trial and its configuration; forbidden ones are told failed and
    resampled (define-by-run cannot see forbidden clauses)."""
    from optuna.trial import TrialState

    def draw() -> tuple[Any, dict]:
        trial = study.ask()
        return trial, _suggest_config(space, trial)

    return first_allowed(space, draw, lambda trial: study.tell(trial, state=TrialState.FAIL),
                         name)


def _suggest_config(space: ConfigurationSpace, trial: Any) -> dict[str, Any]:
    config: dict[str, Any] = {}
    for name in space.keys():  # parents before children
        if is_active(space, name, config):
            config[name] = _suggest(trial, space[name])
    return config


def _suggest(trial: Any, hp: Any) -> Any:
    if isinstance(hp, Constant):
        return to_plain(hp.value)
    if isinstance(hp, CategoricalHyperparameter):
        return trial.suggest_categorical(hp.name, [to_plain(c) for c in hp.choices])
    if isinstance(hp, OrdinalHyperparameter):
        return to_plain(hp.sequence[trial.suggest_int(hp.name, 0, len(hp.sequence) - 1)])
    if isinstance(hp, IntegerHyperparameter):
        return trial.suggest_int(hp.name, int(hp.lower), int(hp.upper), log=bool(hp.log))
    if isinstance(hp, FloatHyperparameter):
        return trial.suggest_float(hp.name, float(hp.lower), float(hp.upper), log=bool(hp.log))
    raise SuiteError(f"tpe: unsupported hyperparameter type {type(hp).__name__} ({hp.name})")


def encode(space: ConfigurationSpace, config: Mapping[str, Any]) -> dict[str, Any]:
    """A plain configuration as Optuna parameters (ordinals as indices, constants dropped)."""
    params = {}
    for name, value in config.items():
        hp = space[name]
        if isinstance(hp, OrdinalHyperparameter):
            params[name] = [to_plain(v) for v in hp.sequence].index(value)
        elif not isinstance(hp, Constant):
            params[name] = value
    return params

