"""Property-based tests (hypothesis): the ledger through whole runs, the log round trip
(torn lines included), and configurations through JSON, the log and validation."""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from suite.budget import parse_budget
from suite.config import to_plain, validate_config
from suite.errors import ConfigError
from suite.log import LOG_NAME, RunLog, read_rows
from suite.registry import get_task
from suite.study import StudySpec, run_study
from suite.testing import toy_table

FAST = settings(max_examples=30, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


# --- the ledger, charged by the runner over whole replayed runs ------------------------

@pytest.fixture(scope="module")
def table(tmp_path_factory):
    return toy_table(tmp_path_factory.mktemp("table") / "toy.parquet", seeds=1)


@FAST
@given(unit=st.sampled_from(["s", "e", "x"]), amount=st.floats(0.2, 6.0),
       optimizer=st.sampled_from(["random", "hyperband", "asha", "tpe"]),
       workers=st.integers(1, 4), seed=st.integers(0, 50))
def test_ledger_totals_are_the_logged_charges_and_overshoot_is_one_partial_epoch(
        table, unit, amount, optimizer, workers, seed):
    if unit == "s":
        amount *= 20  # the toy's epochs take about a device-second each
    if unit == "e":
        amount = max(1, round(amount * 10))
    budget = parse_budget(f"{amount:g}{unit}")
    spec = StudySpec(task="toy", optimizers=(optimizer,), seeds=(seed,), budget=str(budget),
                     workers=workers, table=str(table))
    with tempfile.TemporaryDirectory() as tmp:
        (outcome,) = run_study(spec, Path(tmp) / "s")
        rows = read_rows(outcome.directory)
    epochs = [r for r in rows if r["event"] == "epoch"]
    totals = outcome.ledger.totals
    assert totals.epochs == len(epochs)
    assert totals.device_seconds == pytest.approx(math.fsum(r["device_seconds"]
                                                            for r in epochs))
    assert totals.full == pytest.approx(len(epochs) / 27)
    assert rows[-1]["ledger"] == {"epochs": totals.epochs, "device_seconds":
                                  totals.device_seconds, "full": totals.full}
    spent = {"s": totals.device_seconds, "e": totals.epochs, "x": totals.full}[unit]
    if outcome.reason == "budget":
        last = {"s": epochs[-1]["device_seconds"], "e": 1, "x": 1 / 27}[unit]
        assert spent - budget.amount < last + 1e-9, "more than the crossing epoch's charge"
        assert spent - last < budget.amount + 1e-9, "ran on after the budget was spent"
    else:
        assert spent < budget.amount


# --- the log: any JSON rows round-trip; a torn last line is skipped, then repaired ------

JSON_SCALARS = (st.none() | st.booleans() | st.integers(-2**53, 2**53)
                | st.floats(allow_nan=False) | st.text(max_size=12))
JSON_VALUES = st.recursive(JSON_SCALARS, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=6), inner, max_size=4),
                           max_leaves=12)
ROWS = st.lists(st.dictionaries(st.text(min_size=1, max_size=8), JSON_VALUES, max_size=6)
                .map(lambda row: {**row, "event": "epoch"}), min_size=1, max_size=12)


@FAST
@given(rows=ROWS)
def test_any_rows_read_back_as_written(rows):
    with tempfile.TemporaryDirectory() as tmp:
        with RunLog.create(Path(tmp) / "run", {"task": "toy"}) as log:
            for row in rows:
                log.append(row)
        assert read_rows(Path(tmp) / "run") == rows


@FAST
@given(rows=ROWS, cut=st.floats(0.0, 1.0, exclude_max=True), extra=ROWS)
def test_a_torn_last_line_is_skipped_then_repaired_by_appending_only(rows, cut, extra):
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        with RunLog.create(run, {"task": "toy"}) as log:
            for row in rows:
                log.append(row)
        text = (run / LOG_NAME).read_bytes()
        start = text.rstrip(b"\n").rfind(b"\n") + 1  # where the last line begins
        torn = text[:start + int(cut * (len(text) - 1 - start))]
        assume(len(torn) > start)  # something of the last line survived
        (run / LOG_NAME).write_bytes(torn)
        assert read_rows(run) == rows[:-1]
        with RunLog.reopen(run) as log:
            for row in extra:
                log.append(row)
        assert (run / LOG_NAME).read_bytes().startswith(torn), "nothing rewritten"
        assert read_rows(run) == rows[:-1] + extra


# --- configurations: sampled, through JSON and the log, validate to themselves ----------

@pytest.fixture(scope="module", params=["toy", "text_classifier", "small_lm"])
def space(request):
    return get_task(request.param, scale="tiny").config_space()


@FAST
@given(seed=st.integers(0, 2**31 - 1))
def test_sampled_configurations_survive_json_the_log_and_validation(space, seed):
    space.seed(seed)
    config = to_plain(dict(space.sample_configuration()))
    assert json.loads(json.dumps(config)) == config
    with tempfile.TemporaryDirectory() as tmp:
        with RunLog.create(Path(tmp) / "run", {}) as log:
            log.append({"event": "start", "config": config})
        (logged,) = read_rows(Path(tmp) / "run")
    assert validate_config(space, logged["config"]) == config


ODD_VALUES = (st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8)
              | st.lists(st.integers(), max_size=2))


@FAST
@given(seed=st.integers(0, 2**31 - 1), data=st.data())
def test_a_changed_value_is_accepted_valid_or_rejected_as_a_config_error(space, seed, data):
    """Fuzz: replace one value (or add one key) with anything; the result is a valid
    configuration of the space or a ConfigError, never another exception."""
    space.seed(seed)
    config = to_plain(dict(space.sample_configuration()))
    name = data.draw(st.sampled_from([*space.keys(), "not_a_hyperparameter"]))
    config[name] = data.draw(ODD_VALUES)
    try:
        checked = validate_config(space, config)
    except ConfigError as exc:
        assert "\n" not in str(exc)
        return
    assert validate_config(space, checked) == checked
    # ConfigSpace keeps a float to 13 decimal places (hypothesis found 7.988059350125497e-07
    # kept as 7.988059e-07; 2,000 random floats matched round(x, 13) exactly)
    assert all(checked[k] == (round(config[k], 13) if type(config[k]) is float else config[k])
               for k in config if k in checked)
