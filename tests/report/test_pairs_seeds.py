"""Paired differences with intervals and the seed-set bootstrap, on data with known answers."""

import numpy as np
import pandas as pd
import pytest

from suite.report import order_flips, pair_differences, performance_profile


def _frame(samples: dict[str, list[float]], budget: float = 60.0) -> pd.DataFrame:
    return pd.DataFrame([{"optimizer": o, "seed": s, "budget": budget, "loss": v}
                         for o, values in samples.items() for s, v in enumerate(values)])


def test_separated_samples_are_resolved_with_the_exact_difference():
    a = list(np.linspace(0.0, 1.0, 12))
    b = [v + 10 for v in a]
    row = pair_differences(_frame({"a": a, "b": b}), resamples=500).iloc[0]
    assert (row["a"], row["b"], row["seeds_a"], row["seeds_b"]) == ("a", "b", 12, 12)
    assert row["diff"] == pytest.approx(-10.0)
    assert row["diff_low"] <= -10.0 + 1e-9 and row["diff_high"] < 0
    assert row["p_a_better"] == 1.0 and (row["p_low"], row["p_high"]) == (1.0, 1.0)
    assert row["resolved"]


def test_probability_of_improvement_counts_ties_half():
    table = pair_differences(_frame({"a": [1.0, 2.0, 3.0, 4.0], "b": [2.5] * 4}),
                             resamples=200)
    # a < b in 2 of 4 pairs of runs, no ties: 0.5; IQM(a) = 2.5 = IQM(b).
    assert table["p_a_better"].iloc[0] == pytest.approx(0.5)
    assert table["diff"].iloc[0] == pytest.approx(0.0)
    assert not table["resolved"].iloc[0], "an interval around 0 is not resolved"
    same = pair_differences(_frame({"a": [1.0] * 5, "b": [1.0] * 5}), resamples=200)
    assert same["p_a_better"].iloc[0] == 0.5 and not same["resolved"].iloc[0]


def test_pair_intervals_agree_with_scipy_and_are_deterministic():
    from scipy import stats

    rng = np.random.default_rng(4)
    a, b = rng.normal(0, 1, 20), rng.normal(0.5, 1, 20)
    frame = _frame({"a": list(a), "b": list(b)})
    row = pair_differences(frame, resamples=2000).iloc[0]
    assert pair_differences(frame, resamples=2000).equals(pair_differences(
        frame, resamples=2000))
    # scipy resamples the two samples apart (paired=False), as the pairs do
    ci = stats.bootstrap((a, b), lambda x, y, axis: stats.trim_mean(x, 0.25, axis=axis)
                         - stats.trim_mean(y, 0.25, axis=axis), paired=False, axis=0,
                         n_resamples=1000, method="percentile",
                         rng=np.random.default_rng(0)).confidence_interval
    # Two estimates of the same 2.5% and 97.5% quantiles (2000 and 1000 resamples; the
    # difference's bootstrap sd is about 0.4): within 0.1.
    assert row["diff_low"] == pytest.approx(ci.low, abs=0.1)
    assert row["diff_high"] == pytest.approx(ci.high, abs=0.1)


def test_pairs_are_per_budget_point_and_one_seed_has_no_interval():
    frame = pd.concat([_frame({"a": [0.1, 0.2], "b": [0.3, 0.4]}, budget=30.0),
                       _frame({"a": [0.1], "b": [0.3]}, budget=60.0)])
    table = pair_differences(frame, resamples=100)
    assert table["budget"].tolist() == [30.0, 60.0]
    assert np.isnan(table["diff_low"].iloc[1]) and not table["resolved"].iloc[1]


def test_flip_rate_has_the_known_answer():
    # b is above a on 7 of 10 seeds and below on 3: a one-seed study orders them the other
    # way with probability 0.3; a 200-seed one almost never does.
    frame = _frame({"a": [0.0] * 10, "b": [1.0] * 7 + [-1.0] * 3})
    flips = order_flips(frame, sizes=(1, 200), resamples=20000).set_index(["aggregate", "n"])
    assert flips.loc[("median", 1), "flip_rate"] == pytest.approx(0.3, abs=0.015)
    assert flips.loc[("iqm", 1), "flip_rate"] == pytest.approx(0.3, abs=0.015)
    assert flips.loc[("median", 200), "flip_rate"] < 0.001
    assert flips["full_a"].eq(0.0).all()
    # IQM of b trims 2 of 10 from each end: mean of (−1, 1, 1, 1, 1, 1) = 2/3.
    assert flips["full_b"].to_dict() == pytest.approx({
        ("iqm", 1): 2 / 3, ("iqm", 200): 2 / 3, ("median", 1): 1.0, ("median", 200): 1.0})


def test_flips_use_only_seeds_every_optimizer_has_and_are_deterministic():
    frame = _frame({"a": [0.0, 0.1, 0.2], "b": [0.5, 0.6]})
    one = order_flips(frame, sizes=(2,), resamples=50, seed=3)
    assert one.equals(order_flips(frame, sizes=(2,), resamples=50, seed=3))
    assert one["flip_rate"].eq(0).all(), "b is above a on both common seeds"


def test_performance_profile_is_the_share_at_most_tau():
    values = pd.DataFrame({"optimizer": ["a"] * 4 + ["b"] * 4, "seed": list(range(4)) * 2,
                           "regret": [0.0, 0.1, 0.2, 0.3, 0.2, 0.3, 0.4, 0.5]})
    profile = performance_profile(values, points=6, resamples=200)
    a = profile[profile["optimizer"] == "a"]
    assert a["tau"].tolist() == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4, 0.5])
    assert a["fraction"].tolist() == pytest.approx([0.25, 0.5, 0.75, 1.0, 1.0, 1.0])
    b = profile[profile["optimizer"] == "b"]
    assert b["fraction"].tolist() == pytest.approx([0.0, 0.0, 0.25, 0.5, 0.75, 1.0])
    assert (profile["low"] <= profile["fraction"]).all()
    assert (profile["fraction"] <= profile["high"]).all()


def test_a_seed_without_a_value_leaves_the_pair_point_unresolved():
    """Dropping the seeds with no value at a point (no recommendation yet) keeps only the
    lucky ones: the pair is not resolved there, and the seeds counted say so."""
    a = list(np.linspace(0.0, 1.0, 12))
    b = [v + 10 for v in a]
    frame = pd.concat([_frame({"a": a, "b": b}, budget=30.0),
                       _frame({"a": a, "b": b[:-1] + [np.nan]}, budget=60.0)])
    table = pair_differences(frame, resamples=200).set_index("budget")
    assert table.loc[30.0, "resolved"], "all seeds have a value"
    assert not table.loc[60.0, "resolved"]
    assert (table.loc[60.0, "seeds_a"], table.loc[60.0, "seeds_b"]) == (12, 11)


def test_p_lower_from_ranks_equals_every_pair_compared():
    from suite.report._pairs import _p_lower

    def by_pairs(x, y):  # the direct count: [..., m, n] comparisons
        less = (x[..., :, None] < y[..., None, :]).mean(axis=(-2, -1))
        ties = (x[..., :, None] == y[..., None, :]).mean(axis=(-2, -1))
        return less + 0.5 * ties

    rng = np.random.default_rng(7)
    for m, n in [(1, 1), (2, 5), (7, 3), (20, 20)]:
        for x, y in [(rng.normal(size=(50, m)), rng.normal(size=(50, n))),
                     (rng.integers(0, 3, (50, m)).astype(float),  # many ties
                      rng.integers(0, 3, (50, n)).astype(float))]:
            np.testing.assert_allclose(_p_lower(x, y), by_pairs(x, y), rtol=0, atol=1e-12)
