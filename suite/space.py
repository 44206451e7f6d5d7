"""One grammar for search spaces: a ConfigurationSpace, or a dict of ranges.

The dict form is accepted wherever a space is: `task_from_function`'s `space`, a Task's
`config_space` returning one (`suite.types.Task` converts it), and `search_space` for a
user who wants the ConfigurationSpace itself. Each entry is

    (low, high)          floats: uniform; ints: integers
    (low, high, "log")   the same on a log scale
    [a, b, c]            categorical
    a single value       constant
    a ConfigSpace hyperparameter, as it is
"""

from __future__ import annotations

from collections.abc import Mapping
from numbers import Real
from typing import Any

from ConfigSpace import Categorical, ConfigurationSpace, Constant, Float, Integer
from ConfigSpace.hyperparameters import Hyperparameter

from suite.errors import SuiteError

__all__ = ["Space", "search_space"]

Space = ConfigurationSpace | Mapping[str, Any]


def search_space(space: Space, seed: int | None = None) -> ConfigurationSpace:
    """`space` as a ConfigurationSpace (a dict converted; one given is returned as is),
    seeded with `seed` where given. SuiteError, naming the entry, for what is neither."""
    if isinstance(space, ConfigurationSpace):
        if seed is not None:
            space.seed(seed)
        return space
    if not isinstance(space, Mapping) or not space:
        raise SuiteError(f"a search space is a ConfigurationSpace or a non-empty dict of "
                         f"ranges, not {_what(space)}")
    cs = ConfigurationSpace(seed=seed)
    cs.add([_hyperparameter(str(name), value) for name, value in space.items()])
    return cs


def _what(space: Any) -> str:
    return "an empty dict" if isinstance(space, Mapping) else f"a {type(space).__name__}"


def _hyperparameter(name: str, value: Any) -> Hyperparameter:
    try:
        if isinstance(value, Hyperparameter):
            return value
        if isinstance(value, list):
            return Categorical(name, value)
        if isinstance(value, tuple) and len(value) in (2, 3):
            low, high, *scale = value
            log = scale == ["log"]
            if scale and not log:
                raise SuiteError(f"hyperparameter {name}: the third item of a range is 'log'")
            numbers = all(isinstance(v, Real) and not isinstance(v, bool) for v in (low, high))
            if numbers and not low < high:
                raise SuiteError(f"hyperparameter {name}: a range's low {low!r} must be "
                                 f"below its high {high!r}")
            if numbers and log and low <= 0:
                raise SuiteError(f"hyperparameter {name}: a log range's low must be above "
                                 f"0, got {low!r}")
            if all(isinstance(v, int) and not isinstance(v, bool) for v in (low, high)):
                return Integer(name, (low, high), log=log)
            if all(isinstance(v, Real) and not isinstance(v, bool) for v in (low, high)):
                return Float(name, (float(low), float(high)), log=log)
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            return Constant(name, value)
    except (ValueError, TypeError) as exc:  # ConfigSpace's: low above high, log of 0
        raise SuiteError(f"hyperparameter {name}: {str(exc).splitlines()[0]}") from None
    raise SuiteError(f"hyperparameter {name}: {value!r} is not (low, high), (low, high, "
                     "'log'), a list of choices, a constant or a ConfigSpace hyperparameter")
