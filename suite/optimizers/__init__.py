"""Ask/tell optimizers behind one protocol, wrapping the reference libraries.

`make_optimizer(name, space=..., fidelity=..., seed=...)` builds one of `OPTIMIZERS`:
grid and random (ConfigSpace), tpe and gp (Optuna), hyperopt (HyperOpt's TPE), hyperband and
bohb (hpbandster's own objects, without Pyro), dehb (DEHB), smac and smac-hyperband (SMAC3's
multi-fidelity and Hyperband facades), asha (asynchronous successive halving), ray-asha (Ray
Tune's AsyncHyperBandScheduler), and tpe-median and tpe-hyperband (Optuna's TPE with a
pruner deciding epoch by epoch).
Heavy libraries are imported when an optimizer is built, not on import.
"""

from suite.optimizers._asha import ASHA, asha_rungs
from suite.optimizers._dehb import DEHBOptimizer
from suite.optimizers._gp import GP
from suite.optimizers._grid import GridSearch, grid_steps
from suite.optimizers._hpbandster import (
    BOHBOptimizer,
    HyperbandOptimizer,
    hpbandster_budgets,
    hpbandster_iteration,
)
from suite.optimizers._hyperopt import HyperOpt
from suite.optimizers._random import RandomSearch
from suite.optimizers._ray_asha import RayASHA
from suite.optimizers._registry import OPTIMIZERS, make_optimizer
from suite.optimizers._smac import SMACHyperband, SMACOptimizer
from suite.optimizers._spaces import OrdinalCodec
from suite.optimizers._tpe import TPE
from suite.optimizers._tpe_pruners import TPEHyperband, TPEMedian
from suite.optimizers.base import FAILED_LOSS_PENALTY, Optimizer, TrialBook

__all__ = [
    "ASHA",
    "BOHBOptimizer",
    "DEHBOptimizer",
    "FAILED_LOSS_PENALTY",
    "GP",
    "GridSearch",
    "HyperOpt",
    "HyperbandOptimizer",
    "OPTIMIZERS",
    "Optimizer",
    "OrdinalCodec",
    "RandomSearch",
    "RayASHA",
    "SMACHyperband",
    "SMACOptimizer",
    "TPE",
    "TPEHyperband",
    "TPEMedian",
    "TrialBook",
    "asha_rungs",
    "grid_steps",
    "hpbandster_budgets",
    "hpbandster_iteration",
    "make_optimizer",
]
