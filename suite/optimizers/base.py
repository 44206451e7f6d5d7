"""The optimizer protocol and the bookkeeping every adapter shares.

An optimizer is a pure ask/tell state machine: no I/O, no clocks, no torch, no global
random state. `ask()` proposes a `Trial` (or `None` when nothing is runnable until pending
results come back); `tell()` receives its `TrialResult`. Trial ids are assigned in ask
order; `config_id` names a configuration's lineage; `resume_from` names the lower-rung trial
a promotion continues (the runner decides whether it resumes that checkpoint or retrains).
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping
from typing import Any, Protocol, runtime_checkable

from suite.types import Status, Trial, TrialResult

__all__ = [
    "FAILED_LOSS_PENALTY",
    "BookedOptimizer",
    "FullFidelitySearch",
    "HighestFidelityBest",
    "Optimizer",
    "Recommending",
    "TrialBook",
    "config_key",
    "is_failure",
    "loss_or_inf",
    "penalized_loss",
]

# A finite stand-in for a failed trial's loss, for libraries whose models need finite values
# (SMAC's random forest). Far above any loss the suite's tasks report (cross-entropies of a
# few units, negated accuracies in [-1, 0]); SMAC log-scales costs, so the outlier costs the
# model a constant offset rather than squashing the differences between good configurations.
FAILED_LOSS_PENALTY = 1e6


@runtime_checkable
class Optimizer(Protocol):
    """What the runner drives: proposes trials, learns from their results.

    Attributes:
        name: the registry name (`grid`, `random`, `tpe`, ...).
    """

    name: str

    def ask(self) -> Trial | None:
        """The next trial to run, or None if nothing is runnable until results come back."""
        ...

    def tell(self, result: TrialResult) -> None:
        """Report how an asked trial ended (Status.OK or Status.FAILED with `math.inf`)."""
        ...

    @property
    def finished(self) -> bool:
        """True when the optimizer can never propose anything again (e.g. grid exhausted)."""
        ...


@runtime_checkable
class Recommending(Protocol):
    """An optimizer that says what it would return if stopped now (optional for an
    `Optimizer`; every built-in one has it, and the runner logs it when it changes).

    Its docstring states its rule: the library's own where the library has one.
    """

    def recommend(self) -> int | None:
        """The trial id of the recommended configuration's result: a trial told with
        status OK; None while there is none. Cheap: the runner calls it after every tell."""
        ...


class HighestFidelityBest:
    """The stated rule for optimizers without one of their own (grid, random, ASHA), the
    runner's incumbent rule: among results told OK, the most epochs, then the lowest
    loss; an equal result later does not replace the earlier one."""

    def __init__(self) -> None:
        self._key: tuple[int, float] | None = None
        self.trial_id: int | None = None

    def offer(self, result: TrialResult) -> None:
        """Consider a told result (failures are never recommended)."""
        if is_failure(result):
            return
        key = (int(result.epochs), -float(result.loss))
        if self._key is None or key > self._key:
            self._key, self.trial_id = key, result.trial.trial_id


def is_failure(result: TrialResult) -> bool:
    """A result no model should learn a value from: failed, or a non-finite loss."""
    return result.status != Status.OK or not math.isfinite(result.loss)


def loss_or_inf(result: TrialResult) -> float:
    """The loss, with every failure mapped to +inf (worst) and never NaN."""
    return math.inf if is_failure(result) else float(result.loss)


def penalized_loss(result: TrialResult) -> float:
    """The loss, with every failure mapped to the finite `FAILED_LOSS_PENALTY`."""
    return FAILED_LOSS_PENALTY if is_failure(result) else float(result.loss)


def config_key(config: Mapping[str, Any]) -> tuple:
    """A hashable, order-independent key for a plain configuration."""
    return tuple(sorted(config.items()))


class TrialBook:
    """Assigns trial ids in ask order and config ids per lineage key; tracks pending trials."""

    def __init__(self) -> None:
        self._next_trial_id = 0
        self._config_ids: dict[Hashable, int] = {}
        self.pending: dict[int, Trial] = {}

    def new_trial(self, config: Mapping[str, Any], epochs: int, lineage: Hashable,
                  resume_from: int | None = None) -> Trial:
        """Create the next trial; `lineage` keys the config id (same key, same config id)."""
        config_id = self._config_ids.setdefault(lineage, len(self._config_ids))
        trial = Trial(self._next_trial_id, dict(config), int(epochs), config_id, resume_from)
        self._next_trial_id += 1
        self.pending[trial.trial_id] = trial
        return trial

    def settle(self, result: TrialResult) -> Trial:
        """Remove a told trial from the pending set; unknown or repeated tells are bugs."""
        trial = self.pending.pop(result.trial.trial_id, None)
        if trial is None:
            raise ValueError(f"trial {result.trial.trial_id} was not asked or was already told")
        return trial


class BookedOptimizer:
    """What the optimizers the suite drives itself share (grid, random, ASHA, Ray's ASHA,
    DEHB): trial ids from a `TrialBook`, never finished unless a subclass says so, and the
    recommendation by the stated rule (`HighestFidelityBest`) unless a subclass keeps its
    library's. A subclass's `tell` starts with `_settle(result)`."""

    name = "?"

    def __init__(self) -> None:
        self._book = TrialBook()
        self._best = HighestFidelityBest()

    @property
    def finished(self) -> bool:
        return False

    def recommend(self) -> int | None:
        return self._best.trial_id

    def _settle(self, result: TrialResult) -> Trial:
        """The told trial, off the pending set, its result offered to the stated rule."""
        trial = self._book.settle(result)
        self._best.offer(result)
        return trial


class FullFidelitySearch(BookedOptimizer):
    """Every trial at full fidelity and from scratch (grid, random): a result changes
    nothing but the recommendation."""

    def tell(self, result: TrialResult) -> None:
        self._settle(result)

    def resumable(self) -> tuple[int, ...]:
        """Never any: every trial trains from scratch (checkpoint retention:
        `suite._retention`)."""
        return ()
