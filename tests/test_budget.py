import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from suite.budget import (
    Budget,
    CarpsBudget,
    Ledger,
    Unit,
    budget_in_carps,
    carps_trials,
    parse_budget,
    parse_budget_spelling,
    resolve_budget,
    space_dims,
)
from suite.errors import SuiteError


@pytest.mark.parametrize("text, amount, unit", [
    ("600s", 600, Unit.SECONDS), ("300e", 300, Unit.EPOCHS), ("20x", 20, Unit.FULL),
    ("0.5x", 0.5, Unit.FULL), (" 12 e ", 12, Unit.EPOCHS),
])
def test_parse_budget(text, amount, unit):
    assert parse_budget(text) == Budget(amount, unit)


@pytest.mark.parametrize("text", ["", "20", "x", "20y", "-5x", "0x", "1e3s", "20 xx", "nanx"])
def test_malformed_budgets_are_rejected(text):
    with pytest.raises(SuiteError, match="budget"):
        parse_budget(text)


def test_ledger_charges_three_units_at_once():
    ledger = Ledger(parse_budget("2x"), max_epochs=27)
    for _ in range(27):
        ledger.charge(device_seconds=0.5)
    assert ledger.totals.epochs == 27 and ledger.totals.device_seconds == pytest.approx(13.5)
    assert ledger.totals.full == 1.0 and ledger.fraction == 0.5 and not ledger.exhausted
    for _ in range(27):
        ledger.charge(device_seconds=0.5)
    assert ledger.exhausted and ledger.totals.full == 2.0


def test_full_trials_hint():
    assert parse_budget("20x").full_trials(27) == 20
    assert parse_budget("300e").full_trials(27) == 11
    assert parse_budget("600s").full_trials(27) == 0
    assert parse_budget("600s").full_trials(27, seconds_per_epoch=1.0) == 22


@given(st.sampled_from(["s", "e", "x"]), st.floats(0.5, 50),
       st.lists(st.floats(0.0, 3.0, allow_nan=False), min_size=1, max_size=300))
def test_ledger_totals_are_sums_and_overshoot_is_below_one_epoch(unit, amount, seconds):
    ledger = Ledger(parse_budget(f"{amount}{unit}"), max_epochs=9)
    charged = []
    for s in seconds:
        if ledger.exhausted:
            break
        ledger.charge(device_seconds=s)
        charged.append(s)
    assert ledger.totals.epochs == len(charged)
    assert ledger.totals.device_seconds == pytest.approx(math.fsum(charged))
    assert ledger.totals.full == pytest.approx(len(charged) / 9)
    if ledger.exhausted:  # the epoch that crossed the boundary is the only overshoot
        last = {"s": charged[-1], "e": 1.0, "x": 1 / 9}[unit]
        assert ledger.spent - amount < last + 1e-9


@pytest.mark.parametrize(("dims", "trials"), [(1, 60), (4, 100), (5, 110), (7, 126), (9, 140)])
def test_carps_budget_is_the_ceiling_of_20_plus_40_root_d(dims, trials):
    assert carps_trials(dims) == trials


def test_carps_spelling_resolves_against_the_space():
    assert parse_budget_spelling("0.5carps") == CarpsBudget(0.5)
    assert parse_budget_spelling(" 1 carps ") == CarpsBudget(1.0)
    assert parse_budget_spelling("20x") == Budget(20, Unit.FULL)  # the other units pass
    assert resolve_budget("1carps", 7) == "126x"
    assert resolve_budget("0.5carps", 7) == "63x"
    assert resolve_budget("0.3carps", 7) == "37.8x"
    assert resolve_budget("300e", 7) == "300e"
    with pytest.raises(SuiteError, match="no CARP-S budget"):
        carps_trials(0)


@pytest.mark.parametrize("text", ["carps", "0carps", "-1carps", "1.2.3carps", "1carp",
                                  "1 carpss", "1e3carps", "10000000carps"])
def test_malformed_carps_budgets_are_rejected(text):
    with pytest.raises(SuiteError, match="budget"):
        parse_budget_spelling(text)


def test_a_budget_stated_in_both_units():
    assert budget_in_carps("60x", 7) == "60x = 0.48 CARP-S budgets (d = 7: 126x)"
    assert budget_in_carps("30x", 7) == "30x = 0.24 CARP-S budgets (d = 7: 126x)"
    assert budget_in_carps("600s", 7) == "600s"  # not in full-fidelity equivalents
    assert budget_in_carps("60x", None) == "60x"  # d unknown (a run from before it was kept)


def test_space_dims_counts_conditional_hyperparameters():
    from suite.testing import ToyTask

    assert space_dims(ToyTask().config_space()) == 5  # beta is active only under momentum
