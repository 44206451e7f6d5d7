"""Optuna the way its users run multi-fidelity: TPE proposes, a pruner stops trials epoch by epoch.

An Optuna trial runs as a chain of one-epoch suite trials. `ask` starts a new Optuna trial
(`study.ask()`, the task default first via `study.enqueue_trial`) at `min_epochs`, or, first,
continues an open chain at one epoch more with `resume_from` = the chain's previous suite
trial: the runner resumes that checkpoint, so no epoch is trained (or charged) twice. `tell`
reports the epoch's loss (`trial.report(loss, step=epochs)`) and asks the pruner
(`trial.should_prune()`), as an objective passed to `study.optimize` would: pruned →
`study.tell(trial, state=PRUNED)`; at `max_epochs` → `study.tell(trial, loss)`; otherwise
the chain waits to be continued. Chains are continued in the order their epochs were told
(so several workers keep several chains open, deterministically). A failure (or NaN) is
told `TrialState.FAIL`. With one worker the adapter makes exactly the decisions of
`study.optimize(objective, n_trials=N)` (tested).

Sampler: `tpe`'s (`suite/optimizers/_tpe.py`, the same settings and space translation).
The study is named after the optimizer: Optuna's default name is a random UUID, and
`HyperbandPruner` draws each trial's bracket from a hash of that name and the trial number.

Pruners:
- `tpe-median`: `MedianPruner()` with Optuna's defaults. `n_startup_trials=5`: no pruning
  until 5 trials completed at full fidelity (the median needs curves to compare with);
  `n_warmup_steps=0`: steps are epochs from `min_epochs` on, and the task's `min_epochs`
  already is the fewest epochs worth judging; `interval_steps=1`: a decision every epoch;
  `n_min_trials=1`: the median of the completed trials that reported that epoch.
- `tpe-hyperband`: `HyperbandPruner(min_resource=min_epochs, max_resource=max_epochs,
  reduction_factor=eta)`: the task's fidelity, the rungs every other multi-fidelity
  optimizer here uses (Optuna's `max_resource="auto"` would guess it from the first
  complete trial, and its default `min_resource=1` ignores a larger `min_epochs`);
  `bootstrap_count=0` (Optuna's default): no rung waits for results (its first arrival
  continues; later ones continue if in the top 1/eta of those so far).

Recommendation: Optuna's own, `study.best_trial` (the lowest value among complete trials,
i.e. full fidelity: pruned ones never count), mapped to the suite trial of its last epoch;
None before any trial completes (where `study.best_trial` raises).

Under `--promotion retrain` (or a task without checkpoints) every step retrains its chain
from scratch and pays for it: the cost of a chain grows with the square of its epochs.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import Any

from ConfigSpace import ConfigurationSpace

from suite.optimizers._spaces import checked_default
from suite.optimizers._tpe import ask_allowed, encode, tpe_study
from suite.optimizers.base import TrialBook, is_failure
from suite.types import Fidelity, Trial, TrialResult

__all__ = ["TPEHyperband", "TPEMedian"]


class _PrunedTPE:
    """TPE with a pruner over chains of one-epoch trials (see the module docstring)."""

    name = ""  # set by each subclass

    def __init__(self, *, space: ConfigurationSpace, fidelity: Fidelity, seed: int,
                 default_config: Mapping[str, Any] | None = None,
                 max_full_trials: int | None = None) -> None:
        from optuna.trial import TrialState  # lazily: keeps `import suite.optimizers` light

        self._study = tpe_study(seed, self._pruner(fidelity), study_name=self.name)
        self._states = TrialState
        self._space, self._fidelity = space, fidelity
        default = checked_default(space, default_config)
        if default is not None:
            self._study.enqueue_trial(encode(space, default))
        self._running: dict[int, Any] = {}  # suite trial id -> its Optuna trial
        self._open: deque[tuple[Any, Trial]] = deque()  # (Optuna trial, its last step)
        self._completed: dict[int, int] = {}  # Optuna trial number -> its last suite trial
        self._book = TrialBook()

    @staticmethod
    def _pruner(fidelity: Fidelity) -> Any:
        raise NotImplementedError

    @property
    def finished(self) -> bool:
        return False

    def ask(self) -> Trial | None:
        if self._open:  # a running Optuna trial's next epoch, from its checkpoint
            optuna_trial, previous = self._open.popleft()
            return self._step(optuna_trial, previous.config, previous.epochs + 1,
                              previous.trial_id)
        optuna_trial, config = ask_allowed(self._study, self._space, self.name)
        return self._step(optuna_trial, config, self._fidelity.min_epochs, None)

    def tell(self, result: TrialResult) -> None:
        trial = self._book.settle(result)
        optuna_trial = self._running.pop(trial.trial_id)
        if is_failure(result):
            self._study.tell(optuna_trial, state=self._states.FAIL)
            return
        optuna_trial.report(float(result.loss), step=trial.epochs)
        if optuna_trial.should_prune():
            self._study.tell(optuna_trial, state=self._states.PRUNED)
        elif trial.epochs >= self._fidelity.max_epochs:
            self._study.tell(optuna_trial, float(result.loss))
            self._completed[optuna_trial.number] = trial.trial_id
        else:
            self._open.append((optuna_trial, trial))

    def resumable(self) -> list[int]:
        """The last step of each open chain: a chain pruned or complete is never continued,
        and a continued one resumes from its newest step (`suite._retention`)."""
        return [step.trial_id for _, step in self._open]

    def recommend(self) -> int | None:
        if not self._completed:  # best_trial raises before the first complete trial
            return None
        return self._completed.get(self._study.best_trial.number)

    def _step(self, optuna_trial: Any, config: Mapping[str, Any], epochs: int,
              resume_from: int | None) -> Trial:
        # one lineage (config id, training seed) per Optuna trial, even for equal configs
        trial = self._book.new_trial(config, epochs, optuna_trial.number, resume_from)
        self._running[trial.trial_id] = optuna_trial
        return trial


class TPEMedian(_PrunedTPE):
    """Optuna's TPE with `MedianPruner()` (Optuna's defaults; see the module docstring)."""

    name = "tpe-median"

    @staticmethod
    def _pruner(fidelity: Fidelity) -> Any:
        import optuna

        return optuna.pruners.MedianPruner()


class TPEHyperband(_PrunedTPE):
    """Optuna's TPE with `HyperbandPruner` over the task's fidelity (see the module
    docstring)."""

    name = "tpe-hyperband"

    @staticmethod
    def _pruner(fidelity: Fidelity) -> Any:
        import optuna

        return optuna.pruners.HyperbandPruner(min_resource=fidelity.min_epochs,
                                              max_resource=fidelity.max_epochs,
                                              reduction_factor=fidelity.eta)
