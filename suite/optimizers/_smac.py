"""SMAC3 through ask/tell: its multi-fidelity facade (`smac`) and its Hyperband (`smac-hyperband`).

Settings: `smac` is `MultiFidelityFacade` with its defaults (random-forest surrogate on
log-scaled costs, a random initial design of 10 configurations per hyperparameter);
`smac-hyperband` is `HyperbandFacade` with its defaults (no model: random configurations, a
Hyperband intensifier; its initial design is the space's default configuration). Both:
budgets `fidelity.min_epochs..max_epochs`, `eta=fidelity.eta`, `deterministic=True` (one
seed per configuration), `n_trials` large because the runner's ledger, not SMAC, ends the
run; with `--include-default` the task default is the initial design's first entry.

I/O: SMAC writes its scenario and run history when the facade is built, so it is built inside
a throwaway temporary directory that is deleted right away; results are told with
`save=False` and nothing is written afterwards.

Failures: SMAC's model needs finite costs, so a failed trial is told as `StatusType.CRASHED`
with cost `FAILED_LOSS_PENALTY` (also the scenario's `crash_cost`).

Lineage: SMAC has no notion of it. A trial's `resume_from` is the most recent earlier trial
of the same configuration at fewer epochs that finished OK (a checkpoint to continue), if
any. Epochs are `int(round(budget))`. Determinism: the same seed proposes the same
configurations in any process, whatever its hash seed: SMAC iterates a set of
Configurations (hashed as strings) for its local search's start points, so the `smac`
adapter hands it a local search that sorts them (`_acquisition_maximizer`;
tests/optimizers/test_optimizers_smac.py); Hyperband's random search has no such set.

Hyperband's brackets: SMAC's follow the paper (Li et al. 2018: n = ceil((s_max + 1) /
(s + 1) * eta**s)), hpbandster's do not (floor((s_max + 1) / (s + 1)) * eta**s), so on
1..27 by 3 the middle bracket holds 12/4/1 configurations in SMAC and 9/3/1 in `hyperband`;
budgets per rung are equal (tests/optimizers/test_optimizers_smac_hyperband.py).

Equivalence: with one worker, each adapter proposes the (configuration, budget) sequence
of SMAC's own `optimize` loop on the facade `_build_facade` builds, crashes included, and
recommends its final incumbent (tests/optimizers/test_optimizers_smac_optimize.py).

Recommendation: SMAC's own, `intensifier.get_incumbent()` (SMAC keeps it up to date as
results are told: reading it refits nothing), mapped back to the trial of that
configuration with the most epochs that finished OK (the latest of equals).
"""

from __future__ import annotations

import contextlib
import tempfile
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ConfigSpace import Configuration, ConfigurationSpace

from suite.optimizers._spaces import checked_default, plain_config, seeded_copy
from suite.optimizers.base import (
    FAILED_LOSS_PENALTY,
    TrialBook,
    config_key,
    is_failure,
    penalized_loss,
)
from suite.types import Fidelity, Trial, TrialResult

__all__ = ["SMACHyperband", "SMACOptimizer"]

_N_TRIALS = 10**9  # not enforced in ask/tell; large so SMAC never caps its initial design


class _SMACFacade:
    """Shared ask/tell driver; subclasses name the facade and its extra components."""

    name: str

    def __init__(self, *, space: ConfigurationSpace, fidelity: Fidelity, seed: int,
                 default_config: Mapping[str, Any] | None = None,
                 max_full_trials: int | None = None) -> None:
        self._space = seeded_copy(space, seed)
        self._fidelity = fidelity
        default = checked_default(space, default_config)
        self._facade = _build_facade(
            self._facade_class(), self._space, fidelity, seed,
            None if default is None else Configuration(self._space, values=default),
            self._components)
        self._infos: dict[int, Any] = {}  # trial_id -> SMAC TrialInfo
        self._completed: dict[tuple, list[tuple[int, int]]] = {}  # key -> [(trial_id, epochs)]
        self._book = TrialBook()
        self._exhausted = False
        self._incumbent: Configuration | None = None
        self._incumbent_key: tuple = ()

    @property
    def finished(self) -> bool:
        return self._exhausted

    def ask(self) -> Trial | None:
        from smac.main.exceptions import ConfigurationSpaceExhaustedException

        if self._exhausted:
            return None
        with warnings.catch_warnings():
            # SMAC's local search logs np.mean of its step timings, empty when no step ran.
            warnings.simplefilter("ignore", RuntimeWarning)
            try:
                info = self._facade.ask()
            except ConfigurationSpaceExhaustedException:
                # A finite space (a table grid) fully tried: nothing new will ever come.
                self._exhausted = True
                return None
        config = plain_config(info.config)
        epochs = min(max(int(round(info.budget)), self._fidelity.min_epochs),
                     self._fidelity.max_epochs)
        key = config_key(config)
        earlier = [tid for tid, e in self._completed.get(key, []) if e < epochs]
        trial = self._book.new_trial(config, epochs, key, max(earlier, default=None))
        self._infos[trial.trial_id] = info
        return trial

    def recommend(self) -> int | None:
        incumbent = self._facade.intensifier.get_incumbent()
        if incumbent is None:
            return None
        if incumbent is not self._incumbent:  # its key, computed once per incumbent
            self._incumbent, self._incumbent_key = incumbent, config_key(plain_config(incumbent))
        done = self._completed.get(self._incumbent_key)
        if not done:  # never happens for an incumbent SMAC learned from our results
            return None
        return max(done, key=lambda told: (told[1], told[0]))[0]

    def tell(self, result: TrialResult) -> None:
        from smac.runhistory.dataclasses import TrialValue
        from smac.runhistory.enumerations import StatusType

        trial = self._book.settle(result)
        info = self._infos.pop(trial.trial_id)
        failed = is_failure(result)
        status = StatusType.CRASHED if failed else StatusType.SUCCESS
        value = TrialValue(cost=penalized_loss(result), status=status)
        self._facade.tell(info, value, save=False)
        if not failed:
            self._completed.setdefault(config_key(trial.config), []).append(
                (trial.trial_id, trial.epochs))

    @staticmethod
    def _facade_class() -> type:
        raise NotImplementedError

    @staticmethod
    def _components(scenario: Any) -> dict[str, Any]:
        """Facade arguments beyond the scenario, initial design and intensifier."""
        return {}


class SMACOptimizer(_SMACFacade):
    """SMAC3 `MultiFidelityFacade` (see the module docstring for settings and lineage)."""

    name = "smac"

    @staticmethod
    def _facade_class() -> type:
        from smac import MultiFidelityFacade

        return MultiFidelityFacade

    @staticmethod
    def _components(scenario: Any) -> dict[str, Any]:
        return {"acquisition_maximizer": _acquisition_maximizer(scenario)}


class SMACHyperband(_SMACFacade):
    """SMAC3 `HyperbandFacade`: model-free Hyperband, random configurations (module docstring)."""

    name = "smac-hyperband"

    @staticmethod
    def _facade_class() -> type:
        from smac import HyperbandFacade

        return HyperbandFacade


def _build_facade(facade: type, space: ConfigurationSpace, fidelity: Fidelity, seed: int,
                  default: Configuration | None,
                  components: Callable[[Any], dict[str, Any]], *,
                  target: Callable[..., float] | None = None,
                  output_directory: Path | None = None) -> Any:
    """The facade the adapters drive. `target` and `output_directory` exist for the test that
    runs SMAC's own `optimize` on this very facade (it calls `target` and saves its run
    history as it goes, so its directory must outlive the build); the adapters pass neither.
    """
    from smac import Scenario

    directory = (contextlib.nullcontext(str(output_directory)) if output_directory is not None
                 else tempfile.TemporaryDirectory(prefix="suite-smac-"))
    # SMAC serializes its initial design with ConfigSpace's deprecated `get_dictionary`.
    with directory as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        scenario = Scenario(
            space, deterministic=True, n_trials=_N_TRIALS, seed=seed,
            min_budget=fidelity.min_epochs, max_budget=fidelity.max_epochs,
            crash_cost=FAILED_LOSS_PENALTY, output_directory=Path(tmp))
        return facade(
            scenario, _ask_tell_only if target is None else target,
            initial_design=_initial_design(facade, scenario, default),
            intensifier=facade.get_intensifier(scenario, eta=fidelity.eta),
            **components(scenario),
            overwrite=True,  # never prompt on stdin about an earlier run
            logging_level=False)  # leave the application's logging configuration alone


def _acquisition_maximizer(scenario: Any) -> Any:
    """SMAC's own (local and sorted random search), its local search's start points in an
    order that does not follow the hash seed.

    SMAC deduplicates those points through a `set` of Configurations, whose hash is that of
    their repr (a string): iterated, the set's order, and with it the local search and the
    configurations SMAC proposes, changed with PYTHONHASHSEED. The same points, sorted."""
    from smac import MultiFidelityFacade
    from smac.acquisition.maximizer.local_search import LocalSearch

    class OrderedLocalSearch(LocalSearch):
        def _get_initial_points(self, *args: Any, **kwargs: Any) -> list[Configuration]:
            return sorted(super()._get_initial_points(*args, **kwargs), key=repr)

    maximizer = MultiFidelityFacade.get_acquisition_maximizer(scenario)
    maximizer._local_search.__class__ = OrderedLocalSearch  # built inside SMAC's __init__
    return maximizer


def _initial_design(facade: type, scenario: Any, default: Configuration | None) -> Any:
    """The facade's own initial design, with the task default (if any) as its first entry."""
    if default is None:
        return facade.get_initial_design(scenario)
    design = facade.get_initial_design(scenario, additional_configs=[default])

    class DefaultFirst(type(design)):
        # SMAC appends additional configurations after its own; the first bracket would miss
        # the default. Same configurations, default moved to the front.
        def select_configurations(self) -> list[Configuration]:
            configs = super().select_configurations()
            return [default] + [c for c in configs if c != default]

    design.__class__ = DefaultFirst  # built by the facade, with the facade's arguments
    return design


def _ask_tell_only(config: Configuration, seed: int = 0, budget: float = 0.0) -> float:
    """The target function SMAC's facade insists on; in ask/tell mode it is never called."""
    raise RuntimeError("the smac optimizers are driven through ask/tell")
