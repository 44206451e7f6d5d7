"""Our `smac-hyperband` and `smac` adapters against SMAC3's own driver loop, `optimize`.

SMAC's side: the facade the adapter builds, through the adapter's own factory
(`_build_facade` with the adapter's facade class and components: scenario with seed,
budgets, eta, `deterministic=True`, crash cost, the facade's initial design, and for `smac`
the local search with sorted start points), given a real target function and a directory
that outlives the build, then `facade.optimize()`: SMAC asks, runs the target itself,
records a crash when it raises, and tells, until a callback stops it after N trials. Its
(configuration, budget) sequence is read from its run history, in insertion order (SMAC
adds a trial there when it is asked, so that is the ask order).

Our side: the adapter with the same seed, driven by one simulated worker on the same
target: each trial's loss is the toy curve at epochs = the budget, and a configuration
whose width is a multiple of 5 fails (SMAC's runner records the raise as
`StatusType.CRASHED` at the scenario's crash cost; we tell `Status.FAILED`, which the
adapter tells SMAC as CRASHED at the same cost). The sequences must be equal, trial by
trial, and SMAC's final incumbent must be the configuration of the adapter's recommendation.

Deliberate differences, none of which reaches SMAC's decisions: the adapter can put the task
default first in the initial design (`--include-default`); no default is passed here, so
both use the facade's own design. The adapter tells no wall time (SMAC's runner measures
one; no facade here models runtime) and does not save the run history (`save=False`).
SMAC's loop refuses a crash as its very first trial (`FirstRunCrashedException`); the
failure rule spares both facades' first configuration (asserted).
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from optdriver import TASK

from suite.optimizers import SMACHyperband, SMACOptimizer
from suite.optimizers._smac import _build_facade
from suite.optimizers._spaces import plain_config, seeded_copy
from suite.types import Status, TrialResult

SEED = 3
FIDELITY = TASK.info.fidelity  # 1..27 epochs, eta 3: brackets of 40, 17, 8 and 4 trials


def _fails(config: dict[str, Any]) -> bool:
    return config["width"] % 5 == 0


def _epochs(budget: float) -> int:
    return int(round(budget))


def _loss(config: dict[str, Any], epochs: int) -> float | None:
    """The toy curve at `epochs`, or None for a configuration that crashes."""
    return None if _fails(config) else TASK.curve(config, epochs, 0)


def _target(config: Any, seed: int, budget: float) -> float:
    """SMAC's target function: the same values, a crash raised as training would raise."""
    loss = _loss(plain_config(config), _epochs(budget))
    if loss is None:
        raise RuntimeError("injected crash")
    return loss


def smac_optimize(adapter: type, n_trials: int, tmp_path) -> tuple[list, list, dict, int]:
    """SMAC's own loop on the adapter's facade: [(config, epochs)], statuses, incumbent, and
    the size of its initial design (configurations proposed before any model or sampler)."""
    from smac.callback import Callback

    class StopAfter(Callback):
        def on_tell_end(self, smbo, info, value) -> bool | None:
            return False if smbo.runhistory.finished >= n_trials else None

    facade = _build_facade(adapter._facade_class(), seeded_copy(TASK.config_space(), SEED),
                           FIDELITY, SEED, None, adapter._components, target=_target,
                           output_directory=tmp_path)
    facade.optimizer.register_callback(StopAfter())
    incumbent = facade.optimize()
    n_initial = len(facade.intensifier.config_selector._initial_design_configs)
    history = facade.runhistory
    runs = [(plain_config(history.get_config(key.config_id)), key.budget, value.status)
            for key, value in history.items()]
    assert all(budget == _epochs(budget) for _, budget, _ in runs)  # whole epochs here
    return ([(c, _epochs(b)) for c, b, _ in runs], [s for _, _, s in runs],
            plain_config(incumbent), n_initial)


def adapter_run(adapter: type, n_trials: int) -> tuple[list, dict]:
    """The adapter with one worker: [(config, epochs)] in ask order, recommended config."""
    opt = adapter(space=TASK.config_space(), fidelity=FIDELITY, seed=SEED)
    trials = []
    for _ in range(n_trials):
        trial = opt.ask()
        trials.append(trial)
        loss = _loss(trial.config, trial.epochs)
        opt.tell(TrialResult(trial, Status.OK if loss is not None else Status.FAILED,
                             math.inf if loss is None else loss, trial.epochs))
    recommended = opt.recommend()
    return [(t.config, t.epochs) for t in trials], trials[recommended].config


def _check_same_decisions(adapter: type, n_trials: int, tmp_path) -> tuple[list, int]:
    """Asserts equal decisions; returns SMAC's [(config, epochs)] and its number of
    configurations beyond the initial design (proposed by its model or random sampler)."""
    from smac.runhistory.enumerations import StatusType

    expected, statuses, incumbent, n_initial = smac_optimize(adapter, n_trials, tmp_path)
    got, recommended = adapter_run(adapter, n_trials)
    assert len(expected) == n_trials
    assert not _fails(expected[0][0])  # SMAC's loop would stop on a first crash
    assert StatusType.CRASHED in statuses  # failures were exercised
    assert [s == StatusType.CRASHED for s in statuses] == [_fails(c) for c, _ in expected]
    assert got == expected
    assert recommended == incumbent
    n_configs = len({json.dumps(c, sort_keys=True) for c, _ in expected})
    return expected, n_configs - n_initial


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # SMAC's ConfigSpace 0.x names
def test_smac_hyperband_makes_the_decisions_of_smacs_own_optimize(tmp_path):
    # One whole first bracket (27 + 9 + 3 + 1) and the second's first rungs and promotions.
    expected, n_sampled = _check_same_decisions(SMACHyperband, 62, tmp_path)
    assert n_sampled > 40  # all but the default: Hyperband's random configurations
    epochs = [e for _, e in expected]
    assert epochs[:40] == [1] * 27 + [3] * 9 + [9] * 3 + [27]
    assert epochs[40:] == [3] * 12 + [9] * 4 + [27] + [9] * 5


@pytest.mark.slow  # a random-forest fit per proposal after the initial design
@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::RuntimeWarning")
def test_smac_multi_fidelity_makes_the_decisions_of_smacs_own_optimize(tmp_path):
    # The initial design (10 configurations per hyperparameter) fills the first round of
    # brackets (27 + 12 + 6 + 4 new configurations, 69 trials); the second round's first
    # rung then comes from the random forest and SMAC's interleaved random picks, and its
    # promotions follow.
    expected, n_modelled = _check_same_decisions(SMACOptimizer, 100, tmp_path)
    assert n_modelled > 20
    assert [e for _, e in expected[69:]] == [1] * 27 + [3] * 4
