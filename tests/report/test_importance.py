"""Grid fANOVA (exact, with conditionals), trial importance, the literature comparison."""

import itertools

import numpy as np
import pandas as pd
import pytest

from suite.report import (
    category_of,
    fidelity_rungs,
    grid_fanova,
    literature_comparison,
    literature_sentences,
    table_importance,
    trial_importance,
)
from suite.tables import read_table


def _grid(levels: dict[str, list], f) -> pd.DataFrame:
    rows = [dict(zip(levels, values, strict=True)) for values in itertools.product(
        *levels.values())]
    frame = pd.DataFrame(rows)
    frame["y"] = [f(r) for r in rows]
    return frame


def _fractions(result: pd.DataFrame) -> dict:
    return {(r.term, None if pd.isna(r.a) else r.a, None if pd.isna(r.b) else r.b): r.fraction
            for r in result.itertuples()}


def test_additive_function_has_only_main_effects_in_proportion_to_their_variance():
    # y = 2·a + b over a ∈ {-1, 1}, b ∈ {-1, 0, 1}: Var parts 4 and 2/3
    result = _fractions(grid_fanova(_grid({"a": [-1, 1], "b": [-1, 0, 1], "c": [0, 1]},
                                          lambda r: 2 * r["a"] + r["b"]), ["a", "b", "c"]))
    assert result[("main", "a", None)] == pytest.approx(4 / (4 + 2 / 3))
    assert result[("main", "b", None)] == pytest.approx((2 / 3) / (4 + 2 / 3))
    assert result[("main", "c", None)] == pytest.approx(0)
    assert result[("pair", "a", "b")] == pytest.approx(0, abs=1e-12)
    assert result[("remainder", None, None)] == pytest.approx(0, abs=1e-12)


def test_pure_interaction_is_a_pair_and_a_three_way_one_is_the_remainder():
    pair = _fractions(grid_fanova(_grid({"a": [-1, 1], "b": [-1, 1]},
                                        lambda r: r["a"] * r["b"]), ["a", "b"]))
    assert pair[("pair", "a", "b")] == pytest.approx(1.0)
    assert pair[("main", "a", None)] == pytest.approx(0)
    three = _fractions(grid_fanova(_grid({"a": [-1, 1], "b": [-1, 1], "c": [-1, 1]},
                                         lambda r: r["a"] * r["b"] * r["c"]), ["a", "b", "c"]))
    assert three[("remainder", None, None)] == pytest.approx(1.0)


def test_fractions_of_a_random_grid_sum_to_one():
    rng = np.random.default_rng(0)
    frame = _grid({"a": [0, 1, 2], "b": [0, 1], "c": [0, 1, 2, 3]}, lambda r: rng.normal())
    assert grid_fanova(frame, ["a", "b", "c"])["fraction"].sum() == pytest.approx(1.0)


def test_conditional_hyperparameter_counts_within_its_active_sub_grid():
    # kind ∈ {plain, momentum}; beta exists only for momentum (2 levels); lr everywhere.
    rows = []
    for lr in (0, 1):
        rows.append({"kind": "plain", "lr": lr, "beta": None, "y": lr})
        for beta in (0.0, 1.0):
            rows.append({"kind": "momentum", "lr": lr, "beta": beta, "y": lr + 2 * beta})
    result = grid_fanova(pd.DataFrame(rows), ["beta", "kind", "lr"])
    # hierarchical measure: m(u) per (kind, lr) = lr (plain) or lr + 1 (momentum);
    # Var m = 0.25 + 0.25; within-cell variance: 1 for momentum cells, 0 for plain: mean 0.5
    total = 0.5 + 0.5
    got = _fractions(result)
    assert got[("main", "lr", None)] == pytest.approx(0.25 / total)
    assert got[("main", "kind", None)] == pytest.approx(0.25 / total)
    assert got[("conditional", "beta", None)] == pytest.approx(0.5 * 1.0 / total)
    scope = result.loc[result["a"] == "beta", "scope"].iloc[0]
    assert scope == "active where kind ∈ {momentum}"
    assert result["fraction"].sum() == pytest.approx(1.0)


def test_a_grid_that_is_not_full_factorial_is_refused():
    frame = _grid({"a": [0, 1], "b": [0, 1]}, lambda r: r["a"]).iloc[:3]
    with pytest.raises(ValueError, match="not a full factorial"):
        grid_fanova(frame, ["a", "b"])


def test_table_importance_per_fidelity(table_path):
    imp = table_importance(read_table(table_path), [1, 3, 9])
    assert sorted(imp["epoch"].unique()) == [1, 3, 9]
    for _, group in imp.groupby("epoch"):
        assert group["fraction"].sum() == pytest.approx(1.0)
    final = imp[(imp["epoch"] == 9) & (imp["term"] == "main")].set_index("a")["fraction"]
    assert final.idxmax() == "lr" and final["dropout"] < final["batch_size"]


def test_table_importance_keeps_a_conditional_hyperparameter_of_a_real_grid(tmp_path):
    from synthetic import write_synthetic_table

    table = read_table(write_synthetic_table(tmp_path / "c.parquet", conditional=True))
    assert len(table.configs) == 12
    imp = table_importance(table, [9])
    beta = imp[imp["a"] == "beta"].iloc[0]
    assert beta["term"] == "conditional" and beta["fraction"] > 0
    assert beta["scope"] == "active where kind ∈ {momentum}"
    assert imp["fraction"].sum() == pytest.approx(1.0)


def test_fidelity_rungs():
    assert fidelity_rungs(27) == [1, 3, 9, 27]
    assert fidelity_rungs(10) == [1, 3, 9, 10]


def test_categories_of_hyperparameter_names():
    assert [category_of(h) for h in ("lr", "lr_factor", "schedule", "batch_size",
                                     "weight_decay", "dropout_p", "width")] == [
        "learning rate", "schedule", "schedule", "batch size", "weight decay", "dropout", None]


def _importance(mains: dict[str, float], pairs: dict[tuple[str, str], float] = None):
    rows = [{"term": "main", "a": h, "b": None, "fraction": f} for h, f in mains.items()]
    rows += [{"term": "pair", "a": a, "b": b, "fraction": f}
             for (a, b), f in (pairs or {}).items()]
    return pd.DataFrame(rows)


def test_literature_comparison_generates_its_sentences_from_the_numbers():
    imp = _importance({"lr": 0.5, "dropout": 0.2, "batch_size": 0.1, "weight_decay": 0.05,
                       "lr_factor": 0.01, "lr_patience": 0.01, "width": 0.03},
                      {("lr_factor", "lr_patience"): 0.02, ("lr", "width"): 0.3})
    table = literature_comparison(imp).set_index("category", drop=False)
    assert table.loc["schedule", "fraction"] == pytest.approx(0.04), "mains + own pairs"
    assert table.loc["learning rate", "verdict"] == "agrees"
    assert table.loc["dropout", "verdict"] == "disagrees", "claimed low, measured 2nd"
    text = " ".join(literature_sentences(table.reset_index(drop=True), "toy at 9 epochs"))
    assert "learning rate (50.0%) > dropout (20.0%)" in text
    assert "Disagrees: dropout (claimed low, measured 2nd)" in text
    assert "width 3.0%" in text and "Kendall's tau" in text


def test_trial_importance_names_conditional_parameters_for_fanova():
    rng = np.random.default_rng(1)
    n = 60
    kind = rng.choice(["plain", "momentum"], size=n)
    lr = 10 ** rng.uniform(-4, -1, size=n)
    beta = np.where(kind == "momentum", rng.uniform(0.5, 0.99, size=n), np.nan)
    loss = np.abs(np.log10(lr) + 2.5) + np.nan_to_num(5 * (beta - 0.5)) + 0.01 * rng.random(n)
    results = pd.DataFrame({"optimizer": "random", "epoch": 9, "loss": loss, "lr": lr,
                            "kind": kind, "beta": beta, "width": rng.choice([32, 64], n)})
    imp, notes = trial_importance(results, ["beta", "kind", "lr", "width"], max_epochs=9)
    assert notes == []
    fanova = imp[imp["method"] == "fanova"].set_index("hp")
    ped = imp[imp["method"] == "ped_anova"].set_index("hp")
    assert "beta" in fanova.index, "a conditional parameter is kept when named"
    assert "beta" in ped.index
    assert fanova["share"].sum() == pytest.approx(1.0)
    assert fanova.loc["lr", "importance"] > fanova.loc["width", "importance"]


def test_log_scaled_numbers_reach_the_evaluators_as_log10():
    from suite.report._importance import _distributions

    results = pd.DataFrame({"lr": [1e-4, 1e-3, 1e-1], "batch": [32, 64, 128],
                            "p": [0.1, 0.2, 0.5], "kind": ["a", "b", None]})
    frame, dists = _distributions(results, ["lr", "batch", "p", "kind"])
    assert frame["lr"].tolist() == pytest.approx([-4, -3, -1])
    assert (dists["lr"].low, dists["lr"].high, dists["lr"].log) == (-4, -1, False)
    assert frame["batch"].tolist() == [32, 64, 128] and dists["batch"].high == 128
    assert dists["p"].low == 0.1 and dists["kind"].choices == ("a", "b")


def test_trial_importance_falls_back_to_a_lower_fidelity_and_says_so():
    rng = np.random.default_rng(2)
    results = pd.DataFrame({"optimizer": "hyperband", "epoch": [3] * 30 + [9] * 3,
                            "loss": rng.random(33), "lr": 10 ** rng.uniform(-4, -1, 33)})
    imp, notes = trial_importance(results, ["lr"], max_epochs=9)
    assert set(imp["epochs"]) == {3} and "only 3 trials reached 9 epochs" in notes[0]
    none, notes = trial_importance(results.head(5), ["lr"], max_epochs=9)
    assert none.empty and "fewer than 10" in notes[0]
