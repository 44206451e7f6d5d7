import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from suite.budget import Budget, Ledger, Unit, parse_budget
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
