"""Ray Tune's ASHA: its own `AsyncHyperBandScheduler`, driven in-process through ask/tell.

Ray's scheduler decides once per trial and rung: when a trial's reported epoch count first
reaches a rung milestone (`min_t * rf**k`), it records the loss there and stops the trial
if the loss is worse than the (1 - 1/rf) percentile of the losses recorded earlier at that
rung (the first arrival always continues); at `max_t` it always stops. Between milestones
`on_trial_result` finds every milestone below already recorded and answers CONTINUE without
changing anything. So a suite trial trains straight to the trial's next milestone (a
chain: `resume_from` is the chain's previous trial, no epoch is trained twice), and Ray is
asked exactly the questions Tune would ask it there. A stop ends the chain; a continue
queues it, and the next `ask` resumes it before any new configuration starts (in Tune a
continued trial keeps its worker). tests/optimizers/test_optimizers_ray_asha.py checks the
decisions against the scheduler driven epoch by epoch as Tune's controller drives it.

Calls, as `TuneController` makes them: `on_trial_add` when a configuration starts,
`on_trial_result` with `{"training_iteration": epochs, "loss": loss}` when a chain
reaches a milestone, `on_trial_complete` with that same result after a STOP (Tune's
`stop_trial`; at `max_t` this records the top rung), and `on_trial_error` for a failed
trial (Tune's path for a trainable that raised: AsyncHyperBand inherits FIFO's no-op, so a
failure records nothing and ends the chain). Ray's scheduler reads only `trial.trial_id`
from its `Trial` and nothing from its `TuneController`: it gets a stand-in holding that id
and `None`. No Ray instance is started (`ray.init` is never called).

Settings: `max_t = max_epochs`, `grace_period = min_epochs` (the first milestone is the
smallest trial the fidelity allows), `reduction_factor = eta`, `brackets = 1` (Ray's
default, and Made With ML's), `metric = "loss"`, `mode = "min"` (the suite's loss is
already oriented), `time_attr = "training_iteration"` (Ray's default; one report per epoch
makes it the epoch count), `stop_last_trials = True` (Ray's default). Ray draws each
trial's bracket from numpy's global RNG (even with one bracket the draw consumes a
number): the call runs with the global state swapped for this optimizer's own
`RandomState(seed)` state and restored afterwards. Configurations: seeded ConfigSpace
sampling, the task default first (as `random` and `asha`).

Recommendation: Ray has no rule of its own (Tune's `get_best_result` picks the best
last-reported value after the run), so the stated rule, `HighestFidelityBest`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from ConfigSpace import ConfigurationSpace

from suite.errors import SuiteError
from suite.optimizers._spaces import DefaultFirstSampler
from suite.optimizers.base import BookedOptimizer, is_failure
from suite.types import Fidelity, Trial, TrialResult

__all__ = ["RayASHA"]

TIME_ATTR = "training_iteration"


@dataclass(frozen=True)
class _TuneTrial:
    """What Ray's scheduler reads from a `ray.tune.experiment.Trial`: its id."""

    trial_id: str


@dataclass
class _Chain:
    """One configuration's Ray trial: the suite trials that trained it so far."""

    config: dict[str, Any]
    tune_trial: _TuneTrial
    milestones: tuple[int, ...]  # the epochs Ray decides at, ascending, ending at max_t
    epochs: int = 0
    last_trial_id: int | None = None


def import_scheduler() -> type:
    """Ray Tune's `AsyncHyperBandScheduler`, or a one-line error naming the extra."""
    try:
        from ray.tune.schedulers import AsyncHyperBandScheduler
    except ImportError:  # Ray itself, or what ray.tune imports (pydantic)
        raise SuiteError("the ray-asha optimizer needs Ray Tune, an optional extra: "
                         "pip install 'hpo-suite[ray]'") from None
    return AsyncHyperBandScheduler


class RayASHA(BookedOptimizer):
    """Ray Tune's `AsyncHyperBandScheduler` deciding chains of suite trials (module docstring)."""

    name = "ray-asha"

    def __init__(self, *, space: ConfigurationSpace, fidelity: Fidelity, seed: int,
                 default_config: Mapping[str, Any] | None = None,
                 max_full_trials: int | None = None) -> None:
        super().__init__()
        self._scheduler = import_scheduler()(
            time_attr=TIME_ATTR, metric="loss", mode="min", max_t=fidelity.max_epochs,
            grace_period=fidelity.min_epochs, reduction_factor=fidelity.eta)
        self._max_t = fidelity.max_epochs
        self._rng_state = np.random.RandomState(seed).get_state()
        self._sampler = DefaultFirstSampler(space, seed, default_config)
        self._chains: list[_Chain] = []  # lineage -> chain
        self._continuing: deque[int] = deque()  # lineages Ray continued, in decision order
        self._asked: dict[int, int] = {}  # trial_id -> lineage

    def ask(self) -> Trial | None:
        lineage = self._continuing.popleft() if self._continuing else self._start()
        chain = self._chains[lineage]
        epochs = next(m for m in chain.milestones if m > chain.epochs)
        trial = self._book.new_trial(chain.config, epochs, lineage, chain.last_trial_id)
        self._asked[trial.trial_id] = lineage
        return trial

    def tell(self, result: TrialResult) -> None:
        trial = self._settle(result)
        lineage = self._asked.pop(trial.trial_id)
        chain = self._chains[lineage]
        if is_failure(result):
            self._scheduler.on_trial_error(None, chain.tune_trial)
            return
        report = {TIME_ATTR: int(result.epochs), "loss": float(result.loss)}
        decision = self._scheduler.on_trial_result(None, chain.tune_trial, report)
        if decision == self._scheduler.STOP:
            self._scheduler.on_trial_complete(None, chain.tune_trial, report)
            return
        chain.epochs, chain.last_trial_id = int(result.epochs), trial.trial_id
        self._continuing.append(lineage)

    def resumable(self) -> list[int]:
        """The last trial of each chain Ray continued and not yet asked again; a chain Ray
        stopped is never continued (`suite._retention`)."""
        return [self._chains[lineage].last_trial_id for lineage in self._continuing]

    def _start(self) -> int:
        """A new configuration, added to Ray's scheduler as a new Tune trial."""
        lineage = len(self._chains)
        tune_trial = _TuneTrial(f"{lineage:05d}")
        saved = np.random.get_state()
        np.random.set_state(self._rng_state)
        try:
            self._scheduler.on_trial_add(None, tune_trial)
        finally:
            self._rng_state = np.random.get_state()
            np.random.set_state(saved)
        bracket = self._scheduler._trial_info[tune_trial.trial_id]
        milestones = _milestones(bracket, self._max_t)
        self._chains.append(_Chain(self._sampler.sample(), tune_trial, milestones))
        return lineage


def _milestones(bracket: Any, max_t: int) -> tuple[int, ...]:
    """The epochs at which Ray's bracket decides, ascending, then `max_t` (always a STOP).

    Read from the bracket's `_rungs` (Ray 2.x: `(milestone, recorded)` pairs, descending),
    so they are Ray's own, floating-point rounding included."""
    below = {int(milestone) for milestone, _ in bracket._rungs if milestone < max_t}
    return (*sorted(below), max_t)
