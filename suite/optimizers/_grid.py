"""Grid search over ConfigSpace's `generate_grid`, in a seeded shuffled order."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import Any

import numpy as np
from ConfigSpace import ConfigurationSpace
from ConfigSpace.hyperparameters import (
    CategoricalHyperparameter,
    Constant,
    IntegerHyperparameter,
    NumericalHyperparameter,
    OrdinalHyperparameter,
)
from ConfigSpace.util import generate_grid

from suite.errors import SuiteError
from suite.optimizers._spaces import checked_default, is_active, plain_config
from suite.optimizers.base import FullFidelitySearch, config_key
from suite.types import Fidelity, Trial

__all__ = ["GridSearch", "grid_steps"]

DEFAULT_STEPS = 3  # per numeric hyperparameter when the budget gives no hint


class GridSearch(FullFidelitySearch):
    """Every point of a grid once, at full fidelity, in an order shuffled by the seed.

    The resolution is `grid_steps(space, max_full_trials)` points per numeric hyperparameter;
    conditional hyperparameters are gridded only where active (ConfigSpace's own rule).
    Shuffling makes anytime curves fair: a row-major grid would sweep one corner first.
    With a default configuration it comes first and its grid duplicate (if any) is dropped.
    Recommendation (no rule of its own): the lowest loss told so far, the earlier of equals.
    """

    name = "grid"

    def __init__(self, *, space: ConfigurationSpace, fidelity: Fidelity, seed: int,
                 default_config: Mapping[str, Any] | None = None,
                 max_full_trials: int | None = None) -> None:
        super().__init__()
        self._epochs = fidelity.max_epochs
        self.steps = grid_steps(space, max_full_trials)
        points = _grid(space, self.steps)
        order = np.random.default_rng(seed).permutation(len(points))
        queue = [points[i] for i in order]
        default = checked_default(space, default_config)
        if default is not None:
            queue = [default] + [p for p in queue if p != default]
        self._queue = deque(queue)

    @property
    def finished(self) -> bool:
        return not self._queue

    def ask(self) -> Trial | None:
        if not self._queue:
            return None
        config = self._queue.popleft()
        return self._book.new_trial(config, self._epochs, config_key(config))


MAX_GRID_POINTS = 10_000


def grid_steps(space: ConfigurationSpace, max_full_trials: int | None) -> int:
    """Points per numeric hyperparameter: the largest k >= 2 whose grid fits the budget.

    The grid may hold at most max(max_full_trials, 2**n_numeric) points (a budget too small
    for even a 2-point grid still gets one), and never more than `MAX_GRID_POINTS`; without
    a hint, `DEFAULT_STEPS`.
    """
    numeric = [n for n in space.keys() if isinstance(space[n], NumericalHyperparameter)]
    if max_full_trials is None:
        return DEFAULT_STEPS
    # the grid is materialized up front: a huge budget must not make it fill the memory
    limit = min(max(max_full_trials, 2 ** len(numeric)), MAX_GRID_POINTS)
    cap = max([_capacity(space[n]) for n in numeric] + [2])
    steps = 2
    while steps < min(cap, limit) and _grid_size(space, steps + 1, limit) <= limit:
        steps += 1
    return steps


def _grid(space: ConfigurationSpace, steps: int) -> list[dict[str, Any]]:
    numeric = {n: steps for n in space.keys() if isinstance(space[n], NumericalHyperparameter)}
    try:
        configs = generate_grid(space, numeric)
    except TypeError as exc:  # e.g. a Normal- or Beta-prior hyperparameter
        raise SuiteError(f"grid: {exc}") from None
    unique = {config_key(c): c for c in map(plain_config, configs)}  # ints may round together
    return list(unique.values())


def _capacity(hp: Any) -> float:
    """How many distinct grid values `hp` can take (integers saturate)."""
    if isinstance(hp, IntegerHyperparameter):
        return int(hp.upper) - int(hp.lower) + 1
    return float("inf")


def _values(hp: Any, steps: int) -> list[Any]:
    """The grid values of one hyperparameter, as `generate_grid` computes them."""
    if isinstance(hp, CategoricalHyperparameter):
        return list(hp.choices)
    if isinstance(hp, OrdinalHyperparameter):
        return list(hp.sequence)
    if isinstance(hp, Constant):
        return [hp.value]
    lower, upper = (np.log([hp.lower, hp.upper]) if hp.log else (hp.lower, hp.upper))
    points = np.linspace(lower, upper, steps)
    points = np.exp(points) if hp.log else points
    if isinstance(hp, IntegerHyperparameter):
        points = np.round(points).astype(int)
    return sorted(set(np.clip(points, hp.lower, hp.upper).tolist()))


def _grid_size(space: ConfigurationSpace, steps: int, limit: int) -> int:
    """Points in the grid at `steps` (forbidden clauses ignored), counting stops past `limit`."""
    names = list(space.keys())
    values = {n: _values(space[n], steps) for n in names}

    def count(i: int, assignment: dict[str, Any]) -> int:
        if i == len(names):
            return 1
        name = names[i]
        if not is_active(space, name, assignment):
            return count(i + 1, assignment)
        total = 0
        for value in values[name]:
            total += count(i + 1, {**assignment, name: value})
            if total > limit:
                break
        return total

    return count(0, {})
