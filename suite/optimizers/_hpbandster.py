"""Hyperband and BOHB: hpbandster's own iteration and config-generator objects, without Pyro.

`hpbandster.core.master.Master.run` is a scheduling loop around three calls, reproduced here
as ask/tell: ask the active iterations in order for `get_next_run()`, start the next iteration
(built by the library's own `HyperBand.get_next_iteration` / `BOHB.get_next_iteration`) when
all of them are waiting, and on a result call `iteration.register_result(job)` and
`config_generator.new_result(job)` with hpbandster's own `Job` objects. Like `Master.run`
with unlimited iterations, ask never returns None. With one worker the (configuration,
budget) sequence equals what the real `Master` with its Pyro transport produces
(tests/optimizers/test_optimizers_hpbandster.py checks it).

Seeding: the config generators sample from the space's own RNG (a seeded copy) and BOHB also
draws from numpy's *global* RNG (`np.random.rand`, `randint`, scipy's `truncnorm.rvs`). Every
call into hpbandster runs with the global RNG swapped for this optimizer's own
`RandomState(seed)` state, restored afterwards, so runs are reproducible and the caller's
global state is untouched (not thread-safe: drive an optimizer from one thread). scipy 1.17
warns that `random_state=None` will one day mean a fresh entropy-seeded Generator instead of
the global RNG; when that lands, BOHB's proposals stop being reproducible and the determinism
tests will say so.

Failures: a failed trial is reported as hpbandster's workers report a crash (`result=None`,
an exception text): the iteration marks it CRASHED (never promoted) and BOHB ranks it with
loss +inf among the bad points of its KDE (the loss is only sorted, never computed with).

Encoding: BOHB's KDE rejects ordinal hyperparameters, so BOHB sees a copy of the space with
ordinals as integer indices (`OrdinalCodec`) and trials carry the real values. Hyperband
samples the original space. Epochs are `int(round(budget))`. Budgets are hpbandster's:
`max_epochs * eta**-k`, so when max/min is not a power of eta the bottom rung lies above
`min_epochs` (1..27 by 3 gives 1, 3, 9, 27; 2..50 by 3 gives 6, 17, 50).

Recommendation: hpbandster's incumbent rule, `Result.get_incumbent_id`: among the
configurations with a result at the maximum budget, the lowest loss (ties: the smaller
hpbandster config id); None until one has a result there. `Result` is built only after a
run, so the rule is applied to the results as they are registered, in constant time per
tell (tests/optimizers/test_optimizers_hpbandster.py checks it against `Result` built on
the same iterations), and mapped to the trial that ran that configuration at max budget.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any

import numpy as np
from ConfigSpace import ConfigurationSpace

from suite.optimizers._spaces import OrdinalCodec, checked_default, seeded_copy
from suite.optimizers.base import TrialBook, is_failure
from suite.types import Fidelity, Trial, TrialResult

__all__ = ["BOHBOptimizer", "HyperbandOptimizer", "hpbandster_budgets", "hpbandster_iteration"]

# hpbandster's generators log a warning for every crashed job; the runner already logs
# failures, so their messages go to a logger that prints nothing unless the app configures it.
_LOG = logging.getLogger("suite.optimizers.hpbandster")
_LOG.addHandler(logging.NullHandler())


def hpbandster_budgets(min_budget: float, max_budget: float, eta: int) -> tuple[int, np.ndarray]:
    """(max_SH_iter, budgets) exactly as `HyperBand.__init__` / `BOHB.__init__` compute them."""
    max_sh_iter = -int(np.log(min_budget / max_budget) / np.log(eta)) + 1
    budgets = max_budget * np.power(eta, -np.linspace(max_sh_iter - 1, 0, max_sh_iter))
    return max_sh_iter, budgets


def hpbandster_iteration(master_cls: type, index: int, *, min_budget: float, max_budget: float,
                         eta: int, config_generator: Any) -> Any:
    """Iteration `index` built by `master_cls.get_next_iteration` itself (no Master needed).

    `get_next_iteration` only reads `max_SH_iter`, `eta`, `budgets` and `config_generator`
    from the master, so it is called on a namespace holding exactly those.
    """
    max_sh_iter, budgets = hpbandster_budgets(min_budget, max_budget, eta)
    shim = SimpleNamespace(max_SH_iter=max_sh_iter, eta=eta, budgets=budgets,
                           config_generator=config_generator)
    # Master.run passes {'result_logger': None} when it has no result logger.
    return master_cls.get_next_iteration(shim, index, {"result_logger": None})


class _DefaultFirst:
    """A config generator whose first sample is the task default (`--include-default`)."""

    def __init__(self, generator: Any, default: dict[str, Any] | None) -> None:
        self._generator, self._default = generator, default

    def get_config(self, budget: float) -> tuple[dict[str, Any], dict]:
        if self._default is None:
            return self._generator.get_config(budget)
        config, self._default = self._default, None
        return config, {"model_based_pick": False, "default": True}


class _HpBandSter:
    """Shared driver; subclasses name the Master class and build the config generator."""

    name: str

    def __init__(self, *, space: ConfigurationSpace, fidelity: Fidelity, seed: int,
                 default_config: Mapping[str, Any] | None = None,
                 max_full_trials: int | None = None) -> None:
        self._fidelity = fidelity
        self._codec = self._codec_for(space, seed)
        self._rng_state = np.random.RandomState(seed).get_state()
        with self._library_context():
            self._generator = self._generator_for(self._codec.space)
        default = checked_default(space, default_config)
        self._sampler = _DefaultFirst(
            self._generator, None if default is None else self._codec.encode(default))
        self._iterations: list[Any] = []
        self._jobs: dict[int, Any] = {}  # trial_id -> hpbandster Job
        self._last_trial: dict[tuple, int] = {}  # hpbandster config_id -> latest trial_id
        self._incumbent: tuple[float, tuple, int] | None = None  # (loss, hb id, trial_id)
        self._book = TrialBook()

    @property
    def finished(self) -> bool:
        return False

    def ask(self) -> Trial | None:
        from hpbandster.core.dispatcher import Job

        with self._library_context():
            hb_id, config, budget = self._next_run()
        trial = self._book.new_trial(
            self._codec.decode(config), self._epochs(budget), hb_id, self._last_trial.get(hb_id))
        self._last_trial[hb_id] = trial.trial_id
        self._jobs[trial.trial_id] = Job(hb_id, config=config, budget=budget)
        return trial

    def tell(self, result: TrialResult) -> None:
        self._book.settle(result)
        job = self._jobs.pop(result.trial.trial_id)
        if is_failure(result):
            job.result, job.exception = None, f"trial failed (status={result.status})"
        else:
            job.result = {"loss": float(result.loss), "info": {}}
        with self._library_context():  # Master.job_callback's two calls, in its order
            self._iterations[job.id[0]].register_result(job)
            self._generator.new_result(job)
        if job.result is not None and job.kwargs["budget"] == self._fidelity.max_epochs:
            candidate = (job.result["loss"], job.id, result.trial.trial_id)
            if self._incumbent is None or candidate[:2] < self._incumbent[:2]:
                self._incumbent = candidate

    def resumable(self) -> list[int]:
        """The latest trial of each configuration its iteration may still promote (status
        QUEUED, RUNNING or REVIEW; TERMINATED, CRASHED and COMPLETED are final in
        hpbandster's `BaseIteration`), for checkpoint retention (`suite._retention`)."""
        return [trial_id for hb_id, trial_id in self._last_trial.items()
                if self._iterations[hb_id[0]].data[hb_id].status
                in ("QUEUED", "RUNNING", "REVIEW")]

    def recommend(self) -> int | None:
        return None if self._incumbent is None else self._incumbent[2]

    def _next_run(self) -> tuple[tuple, dict, float]:
        """`Master.run`'s scheduling loop, without the queue (the runner owns concurrency)."""
        while True:
            for iteration in self._iterations:
                if not iteration.is_finished:
                    run = iteration.get_next_run()
                    if run is not None:
                        return run
            self._iterations.append(hpbandster_iteration(
                self._master_class(), len(self._iterations), min_budget=self._fidelity.min_epochs,
                max_budget=self._fidelity.max_epochs, eta=self._fidelity.eta,
                config_generator=self._sampler))

    def _epochs(self, budget: float) -> int:
        epochs = int(round(budget))
        return min(max(epochs, self._fidelity.min_epochs), self._fidelity.max_epochs)

    @contextmanager
    def _library_context(self) -> Iterator[None]:
        """Swap in this optimizer's numpy global RNG state; hush ConfigSpace deprecations."""
        saved = np.random.get_state()
        np.random.set_state(self._rng_state)
        try:
            with warnings.catch_warnings():
                # Library-internal noise on every sample: ConfigSpace 0.x names (get_dictionary,
                # ...), scipy's notice that `random_state=None` will stop meaning the global
                # RNG (see the module docstring), statsmodels' divide-by-zero on a categorical
                # with one level among the good points (BOHB skips such non-finite EI values).
                for category in (DeprecationWarning, FutureWarning, RuntimeWarning):
                    warnings.simplefilter("ignore", category)
                yield
        finally:
            self._rng_state = np.random.get_state()
            np.random.set_state(saved)

    def _codec_for(self, space: ConfigurationSpace, seed: int) -> OrdinalCodec:
        raise NotImplementedError

    def _generator_for(self, space: ConfigurationSpace) -> Any:
        raise NotImplementedError

    def _master_class(self) -> type:
        raise NotImplementedError


class HyperbandOptimizer(_HpBandSter):
    """hpbandster's Hyperband: successive-halving brackets of random configurations."""

    name = "hyperband"

    def _codec_for(self, space: ConfigurationSpace, seed: int) -> OrdinalCodec:
        return OrdinalCodec(seeded_copy(space, seed))  # RandomSampling handles ordinals

    def _generator_for(self, space: ConfigurationSpace) -> Any:
        from hpbandster.optimizers.config_generators.random_sampling import RandomSampling

        return RandomSampling(space, logger=_LOG)

    def _master_class(self) -> type:
        from hpbandster.optimizers.hyperband import HyperBand

        return HyperBand


class BOHBOptimizer(_HpBandSter):
    """hpbandster's BOHB: Hyperband brackets whose new configurations come from a TPE-like KDE.

    The generator uses BOHB's defaults (those of `hpbandster.optimizers.BOHB`): top 15 %
    are "good", 64 samples to optimize EI, a third of the configurations random, bandwidth
    factor 3, minimum bandwidth 1e-3, a model once there are dimensions + 1 results. Its
    truncated-normal draws are batched (`suite.optimizers._bohb_sampler`): the same proposals
    and RNG state as the library's generator, about 5x less CPU per replay.
    """

    name = "bohb"

    def _codec_for(self, space: ConfigurationSpace, seed: int) -> OrdinalCodec:
        return OrdinalCodec.build(space, seed)

    def _generator_for(self, space: ConfigurationSpace) -> Any:
        from suite.optimizers._bohb_sampler import BatchedBOHB  # the library's, faster

        return BatchedBOHB(configspace=space, logger=_LOG)

    def _master_class(self) -> type:
        from hpbandster.optimizers.bohb import BOHB

        return BOHB
