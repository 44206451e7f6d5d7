"""The optimizer registry (name -> class) and the factory the runner and CLI use."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ConfigSpace import ConfigurationSpace

from suite.errors import SuiteError
from suite.optimizers._asha import ASHA
from suite.optimizers._dehb import DEHBOptimizer
from suite.optimizers._gp import GP
from suite.optimizers._grid import GridSearch
from suite.optimizers._hpbandster import BOHBOptimizer, HyperbandOptimizer
from suite.optimizers._hyperopt import HyperOpt
from suite.optimizers._random import RandomSearch
from suite.optimizers._ray_asha import RayASHA
from suite.optimizers._smac import SMACHyperband, SMACOptimizer
from suite.optimizers._tpe import TPE
from suite.optimizers._tpe_pruners import TPEHyperband, TPEMedian
from suite.optimizers.base import Optimizer
from suite.types import Fidelity

__all__ = ["OPTIMIZERS", "make_optimizer"]

# Every class takes the same keyword-only arguments as `make_optimizer`.
OPTIMIZERS: dict[str, type] = {
    cls.name: cls
    for cls in (GridSearch, RandomSearch, TPE, HyperbandOptimizer, BOHBOptimizer,
                SMACOptimizer, ASHA, RayASHA, SMACHyperband, TPEMedian, TPEHyperband,
                HyperOpt, GP, DEHBOptimizer)
}


def make_optimizer(name: str, *, space: ConfigurationSpace, fidelity: Fidelity, seed: int,
                   default_config: Mapping[str, Any] | None = None,
                   max_full_trials: int | None = None) -> Optimizer:
    """Build the optimizer registered as `name`.

    Args:
        name: a key of `OPTIMIZERS`.
        space: the task's search space (not modified; optimizers sample from seeded copies).
        fidelity: epochs range and eta.
        seed: the only source of randomness.
        default_config: the task default, to be among the first trials (`--include-default`):
            the first trial for full-fidelity methods, in the first bracket/rung otherwise.
        max_full_trials: how many full-fidelity trials the budget can pay for (a hint; grid
            sets its resolution from it).

    Raises:
        SuiteError: unknown name, or a default configuration that does not fit the space.
    """
    if name not in OPTIMIZERS:
        raise SuiteError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}")
    return OPTIMIZERS[name](space=space, fidelity=fidelity, seed=seed,
                            default_config=default_config, max_full_trials=max_full_trials)
