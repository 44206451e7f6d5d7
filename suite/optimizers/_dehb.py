"""DEHB (Awad et al., IJCAI 2021: differential evolution inside Hyperband) through its own
ask/tell, `dehb` 0.1.1: the newest release without a `numpy<2` pin (0.1.2 adds it).

Settings: DEHB's defaults (mutation factor 0.5, crossover 0.5, `rand1_bin`), fidelities
`fidelity.min_epochs..max_epochs` with `eta=fidelity.eta` (DEHB's own Hyperband spacing,
rounded to whole epochs), `seed` for DEHB's generator and for a seeded copy of the space,
`n_workers=1` (no Dask cluster: the suite's runner is the scheduler), `save_freq=None` (DEHB
saves its state only at the end of its own `run`, which the adapter never calls).

I/O: DEHB adds a log file to the global loguru logger in its output folder when built; the
adapter builds it in a temporary folder, removes that handler and the folder right away.

Lineage: DEHB's `config_id` follows a configuration up the rungs; a promotion resumes the
latest trial of that id at fewer epochs that finished OK. Failures (and NaN losses) are told
as the finite `FAILED_LOSS_PENALTY`, worse than any loss: `inf` is DEHB's "not evaluated", and
a rung whose results are all `inf` crashes its promotion (an IndexError in
`_get_promotion_candidate`); a failed configuration is promoted only when nothing better is
there, and retrained (it has no checkpoint to resume), never recommended. The
task default, when given, replaces DEHB's first proposal (bottom rung of the first bracket)
the way DEHB's own `tell(replay=True)` rewrites a job: its configuration repository holds the
default's vector, so DE selects and mutates what was evaluated.

Recommendation: DEHB's own incumbent (`inc_score`: the lowest fitness told at any
fidelity), mapped to the trial whose result set it.
"""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Mapping
from typing import Any

from ConfigSpace import Configuration, ConfigurationSpace

from suite.errors import SuiteError
from suite.optimizers._spaces import checked_default, plain_config, seeded_copy
from suite.optimizers.base import BookedOptimizer, is_failure, penalized_loss
from suite.types import Fidelity, Trial, TrialResult

__all__ = ["DEHBOptimizer", "build_dehb"]

_EXTRA = "pip install 'hpo-suite[more-optimizers]'"


def build_dehb(space: ConfigurationSpace, fidelity: Fidelity, seed: int, f: Any = None) -> Any:
    """DEHB with the module docstring's settings on `space` (used as given: seed it), its
    loguru file handler and output folder removed; `f` only for DEHB's own `run`."""
    try:
        from dehb import DEHB
        from loguru import logger
    except ImportError:
        raise SuiteError(f"the dehb optimizer needs dehb: {_EXTRA}") from None
    before = set(logger._core.handlers)  # DEHB does not return the id of the file it adds
    with tempfile.TemporaryDirectory(prefix="suite-dehb-") as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # ConfigSpace 0.x names
        dehb = DEHB(f=f, cs=space, min_fidelity=fidelity.min_epochs,
                    max_fidelity=fidelity.max_epochs, eta=fidelity.eta, n_workers=1, seed=seed,
                    output_path=tmp, save_freq=None)
        for handler in set(logger._core.handlers) - before:
            logger.remove(handler)
    return dehb


class DEHBOptimizer(BookedOptimizer):
    """DEHB through ask/tell (see the module docstring). `max_full_trials` is unused."""

    name = "dehb"

    def __init__(self, *, space: ConfigurationSpace, fidelity: Fidelity, seed: int,
                 default_config: Mapping[str, Any] | None = None,
                 max_full_trials: int | None = None) -> None:
        super().__init__()
        self._space = seeded_copy(space, seed)
        self._fidelity = fidelity
        self._dehb = build_dehb(self._space, fidelity, seed)
        self._default = checked_default(space, default_config)
        self._jobs: dict[int, dict] = {}  # trial id -> DEHB's job
        self._completed: dict[int, list[tuple[int, int]]] = {}  # config_id -> [(trial, epochs)]
        self._incumbent: int | None = None

    def ask(self) -> Trial | None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            job = self._dehb.ask()
            if self._default is not None:
                self._replace_config(job, Configuration(self._space, values=self._default))
                self._default = None
        config = plain_config(job["config"])
        epochs = min(max(int(round(job["fidelity"])), self._fidelity.min_epochs),
                     self._fidelity.max_epochs)
        earlier = [t for t, e in self._completed.get(job["config_id"], []) if e < epochs]
        trial = self._book.new_trial(config, epochs, ("dehb", job["config_id"]),
                                     max(earlier, default=None))
        self._jobs[trial.trial_id] = job
        return trial

    def tell(self, result: TrialResult) -> None:
        trial = self._settle(result)
        job = self._jobs.pop(trial.trial_id)
        best = self._dehb.inc_score
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            self._dehb.tell(job, {"fitness": penalized_loss(result),
                                  "cost": float(trial.epochs)})
        if is_failure(result):
            return
        if self._dehb.inc_score < best:  # DEHB took this result as its incumbent
            self._incumbent = trial.trial_id
        self._completed.setdefault(job["config_id"], []).append((trial.trial_id, trial.epochs))

    def recommend(self) -> int | None:
        return self._incumbent

    def _replace_config(self, job: dict, config: Configuration) -> None:
        """`job` now evaluates `config`: the job and DEHB's repository entry (whose vector
        its `tell` selects and mutates), as DEHB's `tell(replay=True)` does."""
        job["config"] = config
        vector = self._dehb.configspace_to_vector(config)
        self._dehb.config_repository.configs[job["config_id"]].config = vector

