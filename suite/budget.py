"""The budget ledger: one account for every optimizer, in three units at once.

Every trained epoch is charged as 1 epoch, its measured device-seconds, and
1/max_epochs full-fidelity equivalents. The unit the user chose (`600s`, `300e`, `20x`)
decides when the run stops. A promotion that resumes from a checkpoint trains, and so
pays for, only its new epochs; under the retrain policy it trains and pays for all of them.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from enum import StrEnum

from suite.errors import SuiteError

__all__ = ["Unit", "Budget", "Totals", "Ledger", "parse_budget", "CarpsBudget",
           "parse_budget_spelling", "carps_trials", "resolve_budget", "space_dims",
           "budget_in_carps"]


class Unit(StrEnum):
    SECONDS = "s"
    EPOCHS = "e"
    FULL = "x"


UNIT_NAMES = {Unit.SECONDS: "device-seconds", Unit.EPOCHS: "epochs",
              Unit.FULL: "full-fidelity equivalents"}


@dataclass(frozen=True)
class Budget:
    amount: float
    unit: Unit

    def __str__(self) -> str:
        return f"{self.amount:g}{self.unit.value}"

    def full_trials(self, max_epochs: int, seconds_per_epoch: float | None = None) -> int:
        """How many full-fidelity trials this budget pays for (a hint for grid resolution)."""
        if self.unit is Unit.FULL:
            return int(self.amount)
        if self.unit is Unit.EPOCHS:
            return int(self.amount // max_epochs)
        if seconds_per_epoch:
            return int(self.amount // (seconds_per_epoch * max_epochs))
        return 0


# Far above any real study (1e9 device-seconds are 31 GPU-years), and finite: a budget of
# 400 digits parses as inf, and inf × max_epochs breaks the grid's size hint.
MAX_BUDGET = 1e9

_BUDGET = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([sex])\s*$")


def parse_budget(text: str) -> Budget:
    """Parse `600s` (device-seconds), `300e` (epochs) or `20x` (full-fidelity equivalents)."""
    match = _BUDGET.match(text or "")
    if not match:
        raise SuiteError(f"malformed budget {text!r}: expected a positive number followed by "
                         "s (device-seconds), e (epochs), x (full-fidelity equivalents) or "
                         "carps (CARP-S budgets), e.g. 600s, 300e, 20x or 0.5carps")
    amount = float(match.group(1))
    if amount <= 0:
        raise SuiteError(f"budget {text!r} must be positive")
    if not amount <= MAX_BUDGET:
        shown = text.strip() if len(text.strip()) <= 24 else text.strip()[:20] + "…"
        raise SuiteError(f"budget {shown!r} must be at most 1e9 in its unit")
    return Budget(amount, Unit(match.group(2)))


@dataclass(frozen=True)
class CarpsBudget:
    """A budget in the unit of YAHPO Gym and CARP-S: `fraction` of ⌈20 + 40·√d⌉
    full-fidelity equivalents for a d-dimensional space (`carps_trials`), so that results
    can be set beside published ones. Spelled `1carps`, `0.5carps`; resolved against the
    task's space to `x` when the study is planned (`resolve`)."""

    fraction: float

    def __str__(self) -> str:
        return f"{self.fraction:g}carps"

    def resolve(self, dims: int) -> Budget:
        """The budget in full-fidelity equivalents for a space of `dims` hyperparameters."""
        return Budget(float(f"{self.fraction * carps_trials(dims):.10g}"), Unit.FULL)


_CARPS = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*carps\s*$")


def carps_trials(dims: int) -> int:
    """⌈20 + 40·√d⌉: the full-fidelity evaluations YAHPO Gym and CARP-S give a
    d-dimensional space (d = 7: 126)."""
    if dims < 1:
        raise SuiteError(f"a search space of {dims} hyperparameters has no CARP-S budget")
    return math.ceil(20 + 40 * math.sqrt(dims))


def space_dims(space) -> int:
    """d of a ConfigSpace space: every hyperparameter, conditional and constant ones included
    (as CARP-S counts `len(space)`)."""
    return len(list(space.values()))


def parse_budget_spelling(text: str) -> Budget | CarpsBudget:
    """What `--budget` accepts: `parse_budget`'s units, or a number of CARP-S budgets
    (`1carps`, `0.5carps`), which `resolve_budget` turns into `x` for a given space."""
    match = _CARPS.match(text or "") if isinstance(text, str) else None
    if not match:
        return parse_budget(text)
    fraction = float(match.group(1))
    if fraction <= 0:
        raise SuiteError(f"budget {text!r} must be positive")
    if not fraction <= _MAX_CARPS:
        raise SuiteError(f"budget {text.strip()[:24]!r} must be at most {_MAX_CARPS:g} "
                         "CARP-S budgets")
    return CarpsBudget(fraction)


_MAX_CARPS = 1e6  # × at most a few thousand per budget: far below MAX_BUDGET, and finite


def resolve_budget(text: str, dims: int) -> str:
    """The budget `text` in a unit the ledger charges: CARP-S budgets become `x` for a
    space of `dims` hyperparameters; any other spelling is returned as it is."""
    budget = parse_budget_spelling(text)
    return str(budget.resolve(dims)) if isinstance(budget, CarpsBudget) else text


def budget_in_carps(budget: str, dims: int | None) -> str:
    """A budget in both units for a report: `60x = 0.48 CARP-S budgets (d = 7: 126x)`;
    only `budget` where it is not in `x` or d is unknown."""
    parsed = parse_budget(budget)
    if parsed.unit is not Unit.FULL or not dims:
        return budget
    full = carps_trials(dims)
    return f"{budget} = {parsed.amount / full:.2g} CARP-S budgets (d = {dims}: {full}x)"


@dataclass(frozen=True)
class Totals:
    """Cumulative charges: what was spent, in every unit."""

    epochs: int = 0
    device_seconds: float = 0.0
    full: float = 0.0

    def in_unit(self, unit: Unit) -> float:
        return {Unit.SECONDS: self.device_seconds, Unit.EPOCHS: float(self.epochs),
                Unit.FULL: self.full}[unit]


class Ledger:
    """Charges trained epochs against a budget.

    The check is made after each charge: the epoch that crosses the boundary is charged in
    full (it was trained), so a run overshoots its budget by less than one epoch, and the
    trial that trained it is stopped there and logged `cut`.
    """

    def __init__(self, budget: Budget, *, max_epochs: int, totals: Totals | None = None):
        self.budget = budget
        self.max_epochs = max_epochs
        self.totals = totals or Totals()

    def charge(self, *, epochs: int = 1, device_seconds: float) -> Totals:
        """Charge trained epochs and the device time they took; return the new totals."""
        if epochs < 0 or device_seconds < 0:
            raise ValueError("charges are never negative")
        t = self.totals
        # Full equivalents derive from the integer epoch count, never from a float sum.
        self.totals = replace(t, epochs=t.epochs + epochs,
                              device_seconds=t.device_seconds + device_seconds,
                              full=(t.epochs + epochs) / self.max_epochs)
        return self.totals

    @property
    def spent(self) -> float:
        return self.totals.in_unit(self.budget.unit)

    @property
    def exhausted(self) -> bool:
        return self.spent >= self.budget.amount - 1e-12 * self.budget.amount

    @property
    def fraction(self) -> float:
        return min(1.0, self.spent / self.budget.amount)
