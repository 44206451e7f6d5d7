"""Run logs → trial results, incumbent traces (the runner's rule), budget grids."""

import math

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from suite.report import (
    budget_grid,
    final_incumbents,
    incumbent_traces,
    load_runs,
    on_grid,
    run_curves,
    trial_results,
)
from suite.runner import Incumbent


def _results(pairs, run="r", optimizer="o", seed=0):
    """Completed trials (epochs, loss) in log order, one epoch of budget each."""
    return pd.DataFrame({"run": run, "optimizer": optimizer, "seed": seed,
                         "order": range(len(pairs)), "trial_id": range(len(pairs)),
                         "config_id": range(len(pairs)), "epoch": [e for e, _ in pairs],
                         "loss": [v for _, v in pairs],
                         "ledger.full": np.arange(1, len(pairs) + 1) / 9.0,
                         "ledger.epochs": np.arange(1, len(pairs) + 1),
                         "ledger.device_seconds": np.arange(1, len(pairs) + 1) * 0.5})


def test_incumbent_prefers_more_epochs_then_lower_loss():
    trace = incumbent_traces(_results([(1, 0.5), (3, 0.9), (1, 0.1), (3, 0.8), (9, 1.2)]))
    assert list(zip(trace["epoch"], trace["loss"], strict=True)) == [
        (1, 0.5), (3, 0.9), (3, 0.8), (9, 1.2)], "a rise at a new fidelity is the runner's"


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([1, 3, 9]),
                          st.floats(0.0, 5.0, allow_nan=False)), min_size=1, max_size=20))
def test_final_incumbent_equals_folding_the_runners_better_than(pairs):
    best = None
    for i, (epochs, loss) in enumerate(pairs):
        candidate = Incumbent(i, {}, epochs, loss, {})
        if candidate.better_than(best):
            best = candidate
    final = final_incumbents(incumbent_traces(_results(pairs)))
    assert int(final["trial_id"].iloc[0]) == best.trial_id


def test_on_grid_is_a_step_function_nan_before_the_first_and_after_the_end():
    results = _results([(1, 0.5), (1, 0.4)])
    rows = pd.DataFrame({"run": ["r"], "ledger.epochs": [3], "ledger.full": [3 / 9],
                         "ledger.device_seconds": [1.5]})
    trace = incumbent_traces(results, rows)
    assert trace["end"].tolist() == [False, False, True]
    values = on_grid(trace, "epochs", np.array([0.5, 1.0, 1.5, 2.0, 3.0, 4.0]))
    got = values["loss"].tolist()
    assert math.isnan(got[0]) and got[1:5] == [0.5, 0.5, 0.4, 0.4] and math.isnan(got[5])


def test_budget_grid_is_log_spaced_between_first_incumbent_and_end():
    trace = incumbent_traces(_results([(1, 0.5), (1, 0.4), (1, 0.3)]))
    grid = budget_grid(trace, "device_seconds", points=5)
    assert grid[0] == 0.5 and math.isclose(grid[-1], 1.5)
    assert np.allclose(np.diff(np.log(grid)), np.log(3) / 4)


def test_read_synthetic_runs_end_to_end(study):
    runs = load_runs(study)
    assert runs.tasks == ["toy"] and len(runs.runs) == 9
    assert set(runs.runs["unit_axis"]) == {"full"}
    results = trial_results(runs.rows)
    assert (results.groupby("run").size() == 8).all()
    trace = incumbent_traces(results, runs.rows)
    assert trace.groupby("run")["end"].sum().eq(1).all()
    finals = final_incumbents(trace)
    assert (finals["epoch"] == 9).all(), "every run trained some trial fully"
    curves = run_curves(runs.rows, results, top=3)
    assert curves["rank"].nunique() == 3 and (curves.groupby("rank")["epoch"].max() == 9).all()


def test_budgets_are_stated_in_carps_units_with_the_recorded_or_the_tasks_d(tmp_path):
    import json

    from synthetic import write_synthetic_run

    from suite.report import load_runs
    from suite.report._runs import stated_budgets

    run = write_synthetic_run(tmp_path / "a" / "random" / "seed-0", "random", 0, budget="55x")
    # no d in this meta (written as before it was kept): counted on the toy task's space
    assert stated_budgets(load_runs(tmp_path / "a")) == \
        "55x = 0.5 CARP-S budgets (d = 5: 110x)"
    meta = json.loads((run / "meta.json").read_text())
    (run / "meta.json").write_text(json.dumps({**meta, "space_dims": 7}))
    assert stated_budgets(load_runs(tmp_path / "a")) == \
        "55x = 0.44 CARP-S budgets (d = 7: 126x)"
    write_synthetic_run(tmp_path / "b" / "random" / "seed-0", "random", 0, budget="300e")
    assert stated_budgets(load_runs(tmp_path / "b")) == "300e"  # no full equivalents
