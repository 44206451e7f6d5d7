"""Asynchronous successive halving (ASHA; Li et al., MLSys 2020, Algorithm 2).

No maintained implementation fits an in-process ask/tell state machine: Optuna's
SuccessiveHalvingPruner prunes running trials from inside an objective rather than proposing
(configuration, rung) jobs, Ray Tune's ASHA is a trial scheduler tied to Tune's runner, and
SMAC's successive halving is synchronous. So this is the paper's algorithm, small and tested:

- rungs at `min_epochs * eta**k` below `max_epochs`, then `max_epochs` itself as the top rung
  (so a range that is not a power of eta still ends at full fidelity);
- `ask` scans rungs from the top down and promotes a configuration from rung k when it is in
  the top floor(n_k / eta) of the n_k results completed at rung k (failures count in n_k and
  rank last, and are never promoted) and has not been promoted from rung k yet; otherwise it
  samples a new configuration (seeded ConfigSpace sampling; the task default first) for the
  bottom rung. Ties rank by completion order. ASHA never waits, so `ask` never returns None.

Recommendation: the paper names none, so the stated rule of the runner's incumbent: the
result at the highest rung reached, lowest loss first (the earlier of equals).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ConfigSpace import ConfigurationSpace

from suite.optimizers._spaces import DefaultFirstSampler
from suite.optimizers.base import BookedOptimizer, loss_or_inf
from suite.types import Fidelity, Trial, TrialResult

__all__ = ["ASHA", "asha_rungs"]


def asha_rungs(fidelity: Fidelity) -> tuple[int, ...]:
    """Rung epochs: min_epochs * eta**k below max_epochs, then max_epochs."""
    rungs, epochs = [], fidelity.min_epochs
    while epochs < fidelity.max_epochs:
        rungs.append(epochs)
        epochs *= fidelity.eta
    return (*rungs, fidelity.max_epochs)


@dataclass
class _Rung:
    """Completed results at one rung, in completion order, and who already left it."""

    results: dict[int, float] = field(default_factory=dict)  # lineage -> loss
    trials: dict[int, int] = field(default_factory=dict)  # lineage -> trial_id
    promoted: set[int] = field(default_factory=set)

    def promotable(self, eta: int) -> int | None:
        """The best not-yet-promoted lineage in the top floor(n / eta), if any."""
        ranked = sorted(self.results, key=self.results.__getitem__)  # stable: ties by order
        for lineage in ranked[: len(ranked) // eta]:
            if lineage not in self.promoted and self.results[lineage] < float("inf"):
                return lineage
        return None


class ASHA(BookedOptimizer):
    """Asynchronous successive halving over epochs (see the module docstring)."""

    name = "asha"

    def __init__(self, *, space: ConfigurationSpace, fidelity: Fidelity, seed: int,
                 default_config: Mapping[str, Any] | None = None,
                 max_full_trials: int | None = None) -> None:
        super().__init__()
        self._sampler = DefaultFirstSampler(space, seed, default_config)
        self._eta = fidelity.eta
        self.rungs = asha_rungs(fidelity)
        self._state = [_Rung() for _ in self.rungs]
        self._configs: list[dict[str, Any]] = []  # lineage -> configuration
        self._asked: dict[int, tuple[int, int]] = {}  # trial_id -> (lineage, rung)

    def ask(self) -> Trial | None:
        for k in reversed(range(len(self.rungs) - 1)):
            lineage = self._state[k].promotable(self._eta)
            if lineage is not None:
                self._state[k].promoted.add(lineage)
                return self._new_trial(lineage, k + 1, self._state[k].trials[lineage])
        self._configs.append(self._sampler.sample())
        return self._new_trial(len(self._configs) - 1, 0, None)

    def tell(self, result: TrialResult) -> None:
        trial = self._settle(result)
        lineage, k = self._asked.pop(trial.trial_id)
        self._state[k].results[lineage] = loss_or_inf(result)
        self._state[k].trials[lineage] = trial.trial_id

    def resumable(self) -> list[int]:
        """Every result below the top rung not yet promoted and not failed: ASHA may
        promote it at any later ask (`suite._retention`)."""
        return [rung.trials[lineage] for rung in self._state[:-1]
                for lineage, loss in rung.results.items()
                if lineage not in rung.promoted and loss < float("inf")]

    def _new_trial(self, lineage: int, rung: int, resume_from: int | None) -> Trial:
        trial = self._book.new_trial(self._configs[lineage], self.rungs[rung], lineage,
                                     resume_from)
        self._asked[trial.trial_id] = (lineage, rung)
        return trial
