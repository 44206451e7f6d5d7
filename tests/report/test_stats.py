"""IQM, bootstrap bands, ranks, Friedman, Nemenyi and Wilcoxon–Holm on small frames."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from suite.report import (
    anytime_summary,
    bootstrap_band,
    cliques,
    final_table,
    friedman,
    iqm,
    nemenyi_cd,
    ranks_over_budget,
    wilcoxon_holm,
)
from suite.report._stats import _holm


def _finals(table: dict[str, list[float]]) -> pd.DataFrame:
    return pd.DataFrame([{"optimizer": o, "seed": s, "loss": v} for o, values in table.items()
                         for s, v in enumerate(values)])


def test_iqm_is_the_mean_of_the_middle_half():
    assert iqm(np.array([0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 100.0])) == pytest.approx(3.5)


def test_bootstrap_is_deterministic_and_brackets_the_aggregate():
    values = np.random.default_rng(0).normal(size=(10, 4))
    low, high = bootstrap_band(values, "iqm", resamples=200, key="tpe")
    again = bootstrap_band(values, "iqm", resamples=200, key="tpe")
    assert np.array_equal(low, again[0]) and np.array_equal(high, again[1])
    center = iqm(values)
    assert (low <= center).all() and (center <= high).all()
    nan_low, _ = bootstrap_band(values[:1], "iqm")
    assert np.isnan(nan_low).all(), "one seed: no band"


def test_anytime_summary_counts_a_point_only_where_every_seed_has_a_value():
    grid = pd.DataFrame({"optimizer": "a", "seed": [0, 0, 1, 1], "budget": [1.0, 2.0] * 2,
                         "loss": [0.5, 0.4, np.nan, 0.2]})
    summary = anytime_summary(grid, resamples=100)
    assert summary["budget"].tolist() == [2.0] and summary["seeds"].tolist() == [2]
    assert summary["center"].iloc[0] == pytest.approx(0.3)


def test_ranks_over_budget_average_ties_and_seeds():
    grid = pd.DataFrame({"optimizer": ["a", "b", "c"] * 2, "seed": [0, 0, 0, 1, 1, 1],
                         "budget": 1.0, "loss": [0.1, 0.2, 0.2, 0.3, 0.2, 0.1]})
    ranks = ranks_over_budget(grid).set_index("optimizer")["rank"]
    assert ranks.to_dict() == {"a": 2.0, "b": 2.25, "c": 1.75}
    early = pd.DataFrame({"optimizer": ["a", "b", "c"], "seed": 0, "budget": 0.5,
                          "loss": [0.4, np.nan, np.nan]})
    ranks = ranks_over_budget(early).set_index("optimizer")["rank"]
    assert ranks.to_dict() == {"a": 1.0, "b": 2.5, "c": 2.5}, "no incumbent yet: last"


def test_final_table_numbers():
    table = final_table(_finals({"a": [1.0, 2.0, 3.0]})).iloc[0]
    assert (table["seeds"], table["mean"], table["std"], table["median"], table["best"]) == (
        3, 2.0, 1.0, 2.0, 1.0)


def test_friedman_matches_scipy_and_skips_without_enough_data():
    data = {"a": [0.1, 0.2, 0.15, 0.12], "b": [0.3, 0.25, 0.2, 0.22], "c": [0.5, 0.1, 0.4, 0.3]}
    result = friedman(_finals(data))
    expected = stats.friedmanchisquare(*data.values())
    assert result["n"] == 4 and result["k"] == 3
    assert result["statistic"] == pytest.approx(expected.statistic)
    assert result["p"] == pytest.approx(expected.pvalue)
    assert result["ranks"]["a"] == pytest.approx(1.25)
    assert "skipped" in friedman(_finals({"a": [0.1], "b": [0.2], "c": [0.3]}))
    assert "skipped" in friedman(_finals({"a": [0.1, 0.2], "b": [0.2, 0.3]}))


@pytest.mark.parametrize(("k", "q"), [(2, 1.960), (3, 2.343), (5, 2.728), (7, 2.949),
                                      (10, 3.164)])
def test_nemenyi_critical_difference_matches_demsar_table(k, q):
    n = 20
    assert nemenyi_cd(k, n) == pytest.approx(q * math.sqrt(k * (k + 1) / (6 * n)), abs=1e-3)


def test_holm_adjustment_is_step_down_and_monotone():
    assert np.allclose(_holm(np.array([0.01, 0.04, 0.03])), [0.03, 0.06, 0.06])
    assert np.allclose(_holm(np.array([0.5, 0.9])), [1.0, 1.0])


def test_wilcoxon_holm_flags_a_consistent_difference():
    seeds = 12
    data = {"a": list(np.linspace(0.1, 0.2, seeds)), "b": list(np.linspace(0.3, 0.4, seeds)),
            "c": list(np.linspace(0.3, 0.4, seeds))}
    table = wilcoxon_holm(_finals(data)).set_index(["a", "b"])
    assert table.loc[("a", "b"), "significant"] and not table.loc[("b", "c"), "significant"]
    assert table.loc[("b", "c"), "p"] == 1.0, "identical results: no difference at all"


def test_cliques_join_optimizers_closer_than_the_critical_difference():
    ranks = {"a": 1.0, "b": 1.5, "c": 2.6, "d": 3.9}
    assert cliques(ranks, 1.2) == [("a", "b"), ("b", "c")]
    assert cliques(ranks, 0.1) == []
