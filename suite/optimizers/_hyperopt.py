"""HyperOpt's TPE (hyperopt 0.3) through its own `Trials` documents, one ask at a time.

Settings: `hyperopt.tpe.suggest` with hyperopt's defaults (20 random start-up trials, gamma
0.25, 24 EI candidates, prior weight 1: what `fmin` uses, and Ray Tune's `HyperOptSearch`
keeps), `verbose=False` (no log line per suggestion). Seeding as `fmin` does it: one
`numpy.random.default_rng(seed)` draws each suggestion's seed, so with one worker the adapter
proposes what `fmin(..., rstate=default_rng(seed))` proposes
(tests/optimizers/test_optimizers_hyperopt.py).

Translation: the space becomes a hyperopt expression that keeps its conditions as hyperopt's
own tree (`hp.choice` nesting), so TPE models a child only on the trials where it was active,
as hyperopt users write conditional spaces: a categorical with conditional children is an
`hp.choice` over one dict per value, holding the children active under that value. Floats are
`hp.uniform`/`hp.loguniform`, integers `hp.uniformint`/`hp.qloguniform(q=1)`, ordinals an
`hp.uniformint` index (which keeps their order), constants literals. A child active under
several values of its parent (`InCondition`) stands in each branch under its own label
(`name@parent=value`): hyperopt labels are unique. Conditions on non-categorical parents and
conjunctions have no `hp.choice` form and are refused with a one-line error. Forbidden clauses
are invisible to hyperopt: a forbidden proposal is told as failed and another one drawn.

Parallel workers: an asked document stays in hyperopt's `JOB_STATE_RUNNING` without a loss
until told; `tpe.suggest` counts it as an observation of infinite loss (its own treatment of
running jobs). Failures (and NaN losses) are told as hyperopt's `STATUS_FAIL`. The task
default, when given, is the first document (as `points_to_evaluate` in `fmin` and Ray).

Recommendation: hyperopt's own, `trials.best_trial` (the lowest loss among `STATUS_OK`
documents, the earlier of equals), mapped back to the suite's trial id.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ConfigSpace import ConfigurationSpace
from ConfigSpace.conditions import EqualsCondition, InCondition
from ConfigSpace.hyperparameters import (
    CategoricalHyperparameter,
    Constant,
    FloatHyperparameter,
    IntegerHyperparameter,
    OrdinalHyperparameter,
)

from suite.config import to_plain
from suite.errors import SuiteError
from suite.optimizers._spaces import checked_default, first_allowed
from suite.optimizers.base import TrialBook, config_key, is_failure
from suite.types import Fidelity, Trial, TrialResult

__all__ = ["HyperOpt", "hyperopt_space"]

_EXTRA = "pip install 'hpo-suite[more-optimizers]'"


def _hyperopt() -> Any:
    try:
        import hyperopt
    except ImportError:
        raise SuiteError(f"the hyperopt optimizer needs hyperopt: {_EXTRA}") from None
    return hyperopt


def _ho_scope() -> Any:
    from hyperopt.pyll import scope

    return scope


@dataclass(frozen=True)
class _Param:
    """One labelled hyperparameter of the expression; `branches[i]`: the children active when
    a categorical takes its i-th choice (empty for a parameter without children)."""

    label: str
    hp: Any
    branches: tuple[tuple[_Param, ...], ...] = ()

    def raw(self, value: Any) -> Any:
        """A plain value as hyperopt stores it in a document's `vals`."""
        hp = self.hp
        if isinstance(hp, CategoricalHyperparameter):
            return [to_plain(c) for c in hp.choices].index(value)
        if isinstance(hp, OrdinalHyperparameter):
            return float([to_plain(v) for v in hp.sequence].index(value))
        return float(value)

    def value(self, raw: Any) -> Any:
        """A document's stored value as the plain value of the hyperparameter."""
        hp = self.hp
        if isinstance(hp, CategoricalHyperparameter):
            return to_plain(hp.choices[int(raw)])
        if isinstance(hp, OrdinalHyperparameter):
            return to_plain(hp.sequence[int(round(raw))])
        clipped = min(max(float(raw), float(hp.lower)), float(hp.upper))  # exp(log(x)) ulps
        return int(round(clipped)) if isinstance(hp, IntegerHyperparameter) else clipped


@dataclass(frozen=True)
class HyperoptSpace:
    """A ConfigurationSpace as a hyperopt expression, and plain configurations both ways.

    `expr` evaluates (hyperopt's `rec_eval`, which `fmin` hands the objective) to nested
    dicts that `flatten` turns into the plain configuration."""

    params: tuple[_Param, ...]
    constants: Mapping[str, Any]  # unconditional constants, in every configuration
    expr: Any

    def decode(self, vals: Mapping[str, list]) -> dict[str, Any]:
        """A document's `misc.vals` (active labels hold one value) as a plain configuration."""
        return {**self.constants, **_decode(self.params, vals)}

    def vals(self, config: Mapping[str, Any], labels: Any) -> dict[str, list]:
        """A plain configuration as `misc.vals` over every label (inactive ones empty)."""
        active = _encode(self.params, config)
        return {label: active.get(label, []) for label in labels}


def hyperopt_space(space: ConfigurationSpace) -> HyperoptSpace:
    """Translate `space` (see the module docstring); a SuiteError for what has no form."""
    hp = _hyperopt().hp
    children = _children(space)
    top = [space[n] for n in space.keys() if not space.parent_conditions_of[n]]
    params = tuple(_param(h, "", space, children) for h in top if not isinstance(h, Constant))
    constants = {h.name: to_plain(h.value) for h in top if isinstance(h, Constant)}
    return HyperoptSpace(params, constants, {p.hp.name: _expr(p, hp) for p in params})


def flatten(evaluated: Mapping[str, Any]) -> dict[str, Any]:
    """What `expr` evaluates to, as a plain configuration (branch dicts merged in)."""
    config: dict[str, Any] = {}
    for key, value in evaluated.items():
        if isinstance(value, Mapping):
            config.update(flatten(value))
        else:
            config[key] = to_plain(value)
    return config


def _children(space: ConfigurationSpace) -> dict[tuple[str, Any], list[str]]:
    """(categorical parent, value) -> the names active under it; other conditions refused."""
    children: dict[tuple[str, Any], list[str]] = {}
    for name in space.keys():
        conditions = space.parent_conditions_of[name]
        if not conditions:
            continue
        condition = conditions[0]
        if (len(conditions) > 1 or not isinstance(condition, EqualsCondition | InCondition)
                or not isinstance(condition.parent, CategoricalHyperparameter)):
            raise SuiteError(f"hyperopt: the condition on {name} has no hp.choice form "
                             "(only equal/in conditions on one categorical parent do)")
        values = condition.values if isinstance(condition, InCondition) else [condition.value]
        for value in values:
            children.setdefault((condition.parent.name, to_plain(value)), []).append(name)
    return children


def _param(hp: Any, suffix: str, space: ConfigurationSpace,
           children: Mapping[tuple[str, Any], list[str]]) -> _Param:
    if not isinstance(hp, CategoricalHyperparameter):
        return _Param(hp.name + suffix, hp)
    branches = []
    for choice in (to_plain(c) for c in hp.choices):
        branch = []
        for name in children.get((hp.name, choice), []):
            # a child in several branches gets a label per branch (hyperopt: unique labels)
            several = sum(name in names for names in children.values()) > 1
            child_suffix = suffix + (f"@{hp.name}={choice}" if several else "")
            branch.append(_param(space[name], child_suffix, space, children))
        branches.append(tuple(branch))
    return _Param(hp.name + suffix, hp, tuple(branches) if any(branches) else ())


def _expr(param: _Param, hp: Any) -> Any:
    h, label = param.hp, param.label
    if isinstance(h, CategoricalHyperparameter):
        choices = [to_plain(c) for c in h.choices]
        if not param.branches:
            return hp.choice(label, choices)
        return hp.choice(label, [
            {h.name: choice, **{c.hp.name: _expr(c, hp) for c in branch}}
            for choice, branch in zip(choices, param.branches, strict=True)])
    if isinstance(h, Constant):
        return to_plain(h.value)
    if isinstance(h, OrdinalHyperparameter):  # the value at a sampled index (as hp.choice)
        index = hp.uniformint(label, 0, len(h.sequence) - 1)
        return _ho_scope().switch(index, *[to_plain(v) for v in h.sequence])
    return _numeric(h, label, hp)


def _numeric(h: Any, label: str, hp: Any) -> Any:
    low, high = float(h.lower), float(h.upper)
    if isinstance(h, IntegerHyperparameter):
        if h.log:
            return _ho_scope().int(hp.qloguniform(label, math.log(low), math.log(high), 1))
        return hp.uniformint(label, low, high)
    if isinstance(h, FloatHyperparameter):
        return hp.loguniform(label, math.log(low), math.log(high)) if h.log else \
            hp.uniform(label, low, high)
    raise SuiteError(f"hyperopt: unsupported hyperparameter type {type(h).__name__} ({h.name})")


def _decode(params: tuple[_Param, ...], vals: Mapping[str, list]) -> dict[str, Any]:
    config: dict[str, Any] = {}
    for param in params:
        if isinstance(param.hp, Constant):
            config[param.hp.name] = to_plain(param.hp.value)
            continue
        raw = vals[param.label][0]
        config[param.hp.name] = param.value(raw)
        if param.branches:
            config.update(_decode(param.branches[int(raw)], vals))
    return config


def _encode(params: tuple[_Param, ...], config: Mapping[str, Any]) -> dict[str, list]:
    vals: dict[str, list] = {}
    for param in params:
        if isinstance(param.hp, Constant):
            continue
        raw = param.raw(config[param.hp.name])
        vals[param.label] = [raw]
        if param.branches:
            vals.update(_encode(param.branches[raw], config))
    return vals


class HyperOpt:
    """HyperOpt's `tpe.suggest` on its own `Trials` (see the module docstring), full
    fidelity. `max_full_trials` is unused."""

    name = "hyperopt"

    def __init__(self, *, space: ConfigurationSpace, fidelity: Fidelity, seed: int,
                 default_config: Mapping[str, Any] | None = None,
                 max_full_trials: int | None = None) -> None:
        import numpy as np

        hyperopt = _hyperopt()
        # hyperopt's names, not its module: the optimizer stays deep-copyable (speed benchmark)
        self._suggest = hyperopt.tpe.suggest
        self._status = {"ok": hyperopt.STATUS_OK, "fail": hyperopt.STATUS_FAIL}
        self._states = {"running": hyperopt.JOB_STATE_RUNNING, "done": hyperopt.JOB_STATE_DONE}
        self._space, self._epochs = space, fidelity.max_epochs
        self._translated = hyperopt_space(space)
        self._domain = hyperopt.Domain(flatten, self._translated.expr)
        self._trials = hyperopt.Trials()
        self._rstate = np.random.default_rng(seed)  # fmin's: one seed drawn per suggestion
        self._default = checked_default(space, default_config)
        self._docs: dict[int, dict] = {}  # our trial id -> its pending document
        self._trial_ids: dict[int, int] = {}  # hyperopt tid -> our trial id (told OK)
        self._book = TrialBook()

    @property
    def finished(self) -> bool:
        return False

    def ask(self) -> Trial | None:
        def draw() -> tuple[dict, dict[str, Any]]:
            doc = self._next_doc()
            return doc, self._translated.decode(doc["misc"]["vals"])

        doc, config = first_allowed(
            self._space, draw, lambda doc: self._finish(doc, {"status": self._status["fail"]}),
            self.name)
        trial = self._book.new_trial(config, self._epochs, config_key(config))
        self._docs[trial.trial_id] = doc
        return trial

    def tell(self, result: TrialResult) -> None:
        self._book.settle(result)
        doc = self._docs.pop(result.trial.trial_id)
        if is_failure(result):
            self._finish(doc, {"status": self._status["fail"]})
        else:
            self._finish(doc, {"status": self._status["ok"], "loss": float(result.loss)})
            self._trial_ids[doc["tid"]] = result.trial.trial_id

    def resumable(self) -> tuple[int, ...]:
        """Never any: every trial trains from scratch (checkpoint retention:
        `suite._retention`)."""
        return ()

    def recommend(self) -> int | None:
        if not self._trial_ids:  # best_trial raises AllTrialsFailed before the first OK
            return None
        return self._trial_ids.get(self._trials.best_trial["tid"])

    def _next_doc(self) -> dict:
        """A new document from TPE (or the default's), inserted and marked running."""
        trials = self._trials
        new_ids = trials.new_trial_ids(1)
        trials.refresh()
        if self._default is not None:
            docs = self._default_docs(new_ids)
            self._default = None
        else:
            seed = int(self._rstate.integers(2**31 - 1))
            docs = self._suggest(new_ids, self._domain, trials, seed, verbose=False)
        trials.insert_trial_docs(docs)
        # insert_trial_docs stores copies; the stored one is what TPE reads (as in fmin)
        doc = trials._dynamic_trials[-1]
        doc["state"] = self._states["running"]
        trials.refresh()
        return doc

    def _default_docs(self, new_ids: list[int]) -> list[dict]:
        """The default as a document with every label (TPE indexes them all)."""
        tid = new_ids[0]
        vals = self._translated.vals(self._default, self._domain.params)
        misc = {"tid": tid, "cmd": self._domain.cmd, "workdir": None,
                "idxs": {label: [tid] if v else [] for label, v in vals.items()},
                "vals": vals}
        return self._trials.new_trial_docs([tid], [None], [self._domain.new_result()], [misc])

    def _finish(self, doc: dict, result: dict) -> None:
        doc["result"] = result
        doc["state"] = self._states["done"]
        self._trials.refresh()
