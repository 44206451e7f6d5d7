"""IQM, bootstrap bands, ranks, Friedman, Nemenyi and Wilcoxon–Holm on small frames: the
tests come from autorank and scikit-posthocs, checked here against scipy and Demšar."""

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
    ranks_over_budget,
    wilcoxon_holm,
)


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


def test_bootstrap_band_agrees_with_scipy():
    """The vectorized band is scipy's percentile bootstrap interval, up to resampling."""
    from scipy import stats

    values = np.random.default_rng(3).normal(size=(20, 3))
    low, high = bootstrap_band(values, "iqm", resamples=4000, key="x")
    expected = stats.bootstrap((values,), lambda v, axis: iqm(v, axis=axis), axis=0,
                               n_resamples=1000, method="percentile",
                               rng=np.random.default_rng(3)).confidence_interval
    # Two independent estimates (4000 and 1000 resamples) of the same quantiles; the IQM's
    # bootstrap sd is about 0.25 here: within 0.08.
    assert low == pytest.approx(expected.low, abs=0.08)
    assert high == pytest.approx(expected.high, abs=0.08)


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
    data = {"a": [0.1, 0.2, 0.15, 0.12, 0.11, 0.3], "b": [0.3, 0.25, 0.2, 0.22, 0.4, 0.2],
            "c": [0.5, 0.1, 0.4, 0.3, 0.35, 0.45]}
    result = friedman(_finals(data))
    expected = stats.friedmanchisquare(*data.values())
    assert result["n"] == 6 and result["k"] == 3
    assert result["statistic"] == pytest.approx(expected.statistic)
    assert result["p"] == pytest.approx(expected.pvalue)
    ranks = stats.rankdata(np.array(list(data.values())).T, axis=1).mean(axis=0)
    assert [result["ranks"][o] for o in "abc"] == pytest.approx(ranks)
    four = {o: v[:4] for o, v in data.items()}
    assert "5 seeds" in friedman(_finals(four))["skipped"], "autorank needs 5 seeds"
    assert "skipped" in friedman(_finals({"a": [0.1] * 6, "b": [0.2] * 6}))


def test_friedman_is_nonparametric_even_on_normal_data():
    """autorank alone would pick ANOVA/Tukey here; the report forces Friedman/Nemenyi."""
    rng = np.random.default_rng(0)
    data = {o: list(rng.normal(shift, 0.01, 30)) for o, shift in zip("abc", (0, 0.001, 0.02),
                                                                        strict=True)}
    result = friedman(_finals(data))
    assert result["autorank"].omnibus == "friedman"
    assert result["p"] == pytest.approx(stats.friedmanchisquare(*data.values()).pvalue)


@pytest.mark.parametrize(("k", "q"), [(3, 2.343), (5, 2.728), (7, 2.949), (10, 3.164)])
def test_nemenyi_critical_difference_matches_demsar_table(k, q):
    n = 20
    rng = np.random.default_rng(k)
    data = {f"o{i}": list(rng.normal(size=n)) for i in range(k)}
    # autorank's q comes from statsmodels' studentized-range approximation: within 1e-3
    # of Demšar's three-digit table.
    assert friedman(_finals(data))["cd"] == pytest.approx(
        q * math.sqrt(k * (k + 1) / (6 * n)), abs=1e-3)


def test_wilcoxon_holm_flags_a_consistent_difference():
    seeds = 12
    # Distinct differences: tied ones send scipy to a slow permutation test.
    b = np.linspace(0.3, 0.4, seeds) + np.random.default_rng(0).normal(0, 0.01, seeds)
    data = {"a": list(np.linspace(0.1, 0.2, seeds)), "b": list(b), "c": list(b)}
    table = wilcoxon_holm(_finals(data)).set_index(["a", "b"])
    assert table.loc[("a", "b"), "significant"] and not table.loc[("b", "c"), "significant"]
    assert table.loc[("b", "c"), "p"] == 1.0, "identical results: no difference at all"


def test_wilcoxon_holm_adjusts_step_down():
    rng = np.random.default_rng(1)
    data = {o: list(rng.normal(shift, 1.0, 15)) for o, shift in zip("abcd", (0, 0.5, 1, 2),
                                                                     strict=True)}
    table = wilcoxon_holm(_finals(data))
    raw = [stats.wilcoxon(np.array(data[a]) - np.array(data[b])).pvalue
           for a, b in zip(table["a"], table["b"], strict=True)]
    assert table["p"].to_numpy() == pytest.approx(raw)
    order = np.argsort(raw)
    running, holm = 0.0, np.empty(len(raw))
    for step, i in enumerate(order):  # Holm (1979): (m − step)·p, monotone, capped at 1
        running = max(running, (len(raw) - step) * raw[i])
        holm[i] = min(1.0, running)
    assert table["p_holm"].to_numpy() == pytest.approx(holm)


def test_cliques_join_optimizers_closer_than_the_critical_difference():
    ranks = {"a": 1.0, "b": 1.5, "c": 2.6, "d": 3.9}
    assert cliques(ranks, 1.2) == [("a", "b"), ("b", "c")]
    assert cliques(ranks, 0.1) == []


def test_the_statistics_say_nothing_to_the_terminal(capfd):
    """autorank prints the test it forces and scipy warns on tied Wilcoxon samples: the
    report's own lines are all a user sees."""
    data = {o: [0.1 * i + j for j in range(6)] for i, o in enumerate("abc")}
    data["d"] = list(data["c"])  # identical to c: scipy warns, p = 1
    friedman(_finals(data))
    assert wilcoxon_holm(_finals(data)).set_index(["a", "b"]).loc[("c", "d"), "p"] == 1.0
    out, err = capfd.readouterr()
    assert out == "" and err == ""


@pytest.mark.slow
def test_the_statistics_libraries_import_silently():
    """A fresh interpreter (numpy 2, pandas 3): no warning, no print, on import."""
    import subprocess
    import sys

    imported = subprocess.run(
        [sys.executable, "-W", "default", "-c",
         "import rliable.metrics, rliable.plot_utils, autorank, scikit_posthocs"],
        capture_output=True, text=True, check=True)
    assert imported.stdout == "" and imported.stderr == ""
