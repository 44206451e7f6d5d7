"""The recommended configuration's value over budget: a table lookup on replays, the
stated rule for logs without `recommend` rows, a full-fidelity trial on live runs."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from suite.log import LOG_NAME, read_rows
from suite.report import (
    final_recommendations,
    incumbent_traces,
    load_runs,
    recommendation_traces,
    recommended_anytime,
    recommended_values,
    trial_results,
)
from suite.report._runs import RULE_FALLBACK, RULE_LOGGED
from suite.study import StudySpec, run_study
from suite.tables import read_table
from suite.testing import toy_table


@pytest.fixture(scope="module")
def replay(tmp_path_factory):
    work = tmp_path_factory.mktemp("rec")
    path = toy_table(work / "toy.parquet", seeds=2)
    spec = StudySpec(task="toy", optimizers=("hyperband", "random"), seeds=(0, 1),
                     budget="6x", table=str(path), workers=2)
    run_study(spec, work / "study")
    return work / "study", read_table(path)


def _by_hand(table, config) -> float:
    """The configuration's last-epoch loss, averaged over the table's seeds."""
    index = table.configs.index(config)
    values = table.curve(table.meta["metric"])[index, :, -1]
    return float(np.mean(values if table.meta["minimize"] else -values))


def test_each_recommend_row_is_valued_by_its_table_lookup(replay):
    study, table = replay
    runs = load_runs(study)
    trace = recommended_values(
        recommendation_traces(runs.rows, trial_results(runs.rows), runs.runs), runs.runs,
        table)
    steps = trace[~trace["end"]]
    assert (steps["rule"] == RULE_LOGGED).all() and (steps["source"] == "table").all()
    for run in runs.runs["run"]:
        logged = [r for r in read_rows(run) if r["event"] == "recommend"]
        mine = steps[steps["run"] == run]
        assert [r["trial_id"] for r in logged] == mine["trial_id"].tolist()
        assert mine["value"].tolist() == pytest.approx(
            [_by_hand(table, r["config"]) for r in logged], abs=0, rel=1e-12)
        assert mine["ledger.epochs"].tolist() == [r["ledger"]["epochs"] for r in logged]
    means = [_by_hand(table, c) for c in table.configs]
    best, median = min(means), float(np.median(means))
    assert steps["regret"].to_numpy() == pytest.approx(
        (steps["value"].to_numpy() - best) / (median - best))


def test_the_anytime_frame_steps_through_the_recommendations(replay):
    study, table = replay
    runs = load_runs(study)
    frame = recommended_anytime(runs, table, axis="epochs", grid=np.array([1e6]))
    assert frame["value"].isna().all(), "past every run's spend: no value"
    run = runs.runs["run"].iloc[0]
    logged = [r for r in read_rows(run) if r["event"] == "recommend"]
    points = np.array([r["ledger"]["epochs"] for r in logged], dtype=float)
    frame = recommended_anytime(runs, table, axis="epochs", grid=points)
    got = frame[frame["run"] == run]["value"].to_numpy()
    assert got == pytest.approx([_by_hand(table, r["config"]) for r in logged])


def test_a_log_without_recommend_rows_falls_back_to_the_stated_rule(replay, tmp_path):
    study, table = replay
    old = tmp_path / "old"
    for src in study.rglob(LOG_NAME):
        dst = old / src.parent.relative_to(study)
        dst.mkdir(parents=True)
        rows = [json.loads(line) for line in src.read_text().splitlines()]
        kept = [{**r, "v": 2} for r in rows if r["event"] != "recommend"]
        (dst / LOG_NAME).write_text("".join(json.dumps(r) + "\n" for r in kept))
        meta = json.loads((src.parent / "meta.json").read_text())
        (dst / "meta.json").write_text(json.dumps({**meta, "v": 2}))
    runs = load_runs(old)
    results = trial_results(runs.rows)
    trace = recommendation_traces(runs.rows, results, runs.runs)
    assert (trace["rule"] == RULE_FALLBACK).all()
    expected = incumbent_traces(results, runs.rows)
    assert trace["trial_id"].tolist() == expected["trial_id"].tolist()
    valued = recommended_values(trace, runs.runs, table)
    steps = valued[~valued["end"]]
    configs = {(str(run), r["trial_id"]): r["config"] for run in runs.runs["run"]
               for r in read_rows(run) if r["event"] == "start"}
    assert steps["value"].tolist() == pytest.approx([
        _by_hand(table, configs[run, tid])
        for run, tid in zip(steps["run"], steps["trial_id"], strict=True)])


def test_live_runs_have_a_value_only_at_full_fidelity():
    trace = pd.DataFrame({"run": "r", "epoch": [1, 3, 9, 3], "loss": [0.9, 0.5, 0.6, 0.4],
                          "end": False})
    runs = pd.DataFrame({"run": ["r"], "simulated": [False], "max_epochs": [9]})
    valued = recommended_values(trace, runs)
    assert valued["source"].tolist() == ["none", "none", "trial", "none"]
    assert np.isnan(valued["value"].to_numpy()[[0, 1, 3]]).all()
    assert valued["value"].iloc[2] == 0.6 and "regret" not in valued


def test_final_recommendations_keep_the_observed_incumbent_beside(replay):
    study, table = replay
    runs = load_runs(study)
    results = trial_results(runs.rows)
    observed = incumbent_traces(results, runs.rows)
    observed = observed[~observed["end"]].groupby("run").tail(1)
    rec = recommended_values(recommendation_traces(runs.rows, results, runs.runs), runs.runs,
                             table)
    finals = final_recommendations(rec, observed)
    assert len(finals) == len(runs.runs)
    assert finals["observed_loss"].tolist() == observed.set_index("run").loc[
        finals["run"], "loss"].tolist()


def test_a_run_that_never_recommended_counts_as_a_seed_without_a_value(replay, tmp_path):
    study, table = replay
    runs = load_runs(study)
    rows = runs.rows
    silent = runs.runs["run"].iloc[0]
    rows = rows[~((rows["run"] == silent) & (rows["event"] == "recommend"))]
    results = trial_results(rows)
    results = results[results["run"] != silent]  # nothing completed either
    trace = recommendation_traces(rows, results, runs.runs)
    mine = trace[trace["run"] == silent]
    assert len(mine) == 1 and mine["end"].all() and mine["trial_id"].isna().all()
    valued = recommended_values(trace, runs.runs, table)
    assert np.isnan(valued.loc[valued["run"] == silent, "value"]).all()


def test_the_recommendations_regret_axis_shows_zero():
    from suite.report._figures import plot_anytime, symlog_y
    from suite.report._style import new_figure

    _, axes = new_figure()
    summary = pd.DataFrame({"optimizer": "a", "budget": [1.0, 2.0, 3.0],
                            "center": [5.0, 0.5, 0.0], "low": np.nan, "high": np.nan,
                            "seeds": 2})
    ax = symlog_y(plot_anytime(summary, axes[0, 0]), 0.1)
    assert ax.get_yscale() == "symlog" and ax.get_ylim()[0] == 0.0
    assert ax.get_ylim()[1] >= 5.0


def test_a_format_3_run_without_recommend_rows_has_no_recommendation(replay):
    """Only a log begun before format 3 falls back to the stated rule: a format-3 run with
    no `recommend` row (BOHB before any maximum-budget result) recommended nothing, though
    its trials completed; it counts as a seed without a value, never as the stated rule."""
    study, table = replay
    runs = load_runs(study)
    assert (runs.runs["format"] == 3).all()
    silent = runs.runs["run"].iloc[0]
    rows = runs.rows[~((runs.rows["run"] == silent) & (runs.rows["event"] == "recommend"))]
    results = trial_results(rows)
    assert (results["run"] == silent).any(), "its trials completed"
    trace = recommendation_traces(rows, results, runs.runs)
    assert (trace["rule"] != RULE_FALLBACK).all()
    mine = trace[trace["run"] == silent]
    assert len(mine) == 1 and mine["end"].all() and mine["trial_id"].isna().all()
    # on the grid, that run has no value anywhere (it has an end row alone)
    from suite.report._runs import on_grid

    valued = recommended_values(trace, runs.runs, table)
    grid = on_grid(valued, "epochs", np.array([1.0, 1e9]), "value", carry=True)
    assert grid.loc[grid["run"] == silent, "value"].isna().all()
    assert grid.loc[grid["run"] != silent, "value"].notna().any()
