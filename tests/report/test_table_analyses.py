"""Fidelity correlation, top overlap, top curves, regret reference, incomplete tables."""

import numpy as np
import pytest
from synthetic import write_synthetic_table

from suite.report import (
    fidelity_correlation,
    objective_curve,
    table_reference,
    top_curves,
    top_overlap,
)
from suite.report._table import fidelity_sentences, require_complete
from suite.tables import read_table


def _loss(order_at: dict[int, list[int]], configs: int = 5, seeds: int = 2, epochs: int = 9):
    """[configs, seeds, epochs]: at each listed epoch, config c has loss = its position."""
    loss = np.zeros((configs, seeds, epochs))
    for epoch, order in order_at.items():
        for position, config in enumerate(order):
            loss[config, :, epoch - 1] = position
    return loss


def test_spearman_between_fidelities_and_between_seeds():
    loss = _loss({1: [4, 3, 2, 1, 0], 3: [0, 1, 2, 3, 4], 9: [0, 1, 2, 3, 4]})
    corr = fidelity_correlation(loss, [1, 3, 9])
    fid = corr[corr["kind"] == "fidelity"].set_index(["a", "b"])["rho"]
    assert fid[(3, 9)] == pytest.approx(1.0) and fid[(1, 9)] == pytest.approx(-1.0)
    seeds = corr[corr["kind"] == "seeds"].set_index("a")["rho"]
    assert seeds[9] == pytest.approx(1.0), "identical seeds agree perfectly"


def test_top_overlap_and_sentences():
    loss = _loss({1: [4, 3, 2, 1, 0], 3: [0, 1, 4, 3, 2], 9: [0, 1, 2, 3, 4]}, configs=5)
    overlap = top_overlap(loss, [1, 3, 9], fraction=0.4)
    assert overlap.set_index("epoch")["overlap"].to_dict() == {1: 0.0, 3: 1.0, 9: 1.0}
    text = fidelity_sentences(fidelity_correlation(loss, [1, 3, 9]), overlap)
    assert text[0].startswith("Epoch 1 vs 9: Spearman -1.00; 0% of the top 2")
    assert "Noise ceiling" in text[-1]


def test_top_curves_are_ranked_by_the_last_epoch(table_path):
    table = read_table(table_path)
    curves = top_curves(objective_curve(table), table.configs, top=3)
    assert curves["rank"].unique().tolist() == [1, 2, 3]
    last = curves[curves["epoch"] == table.max_epochs].sort_values("rank")["loss"]
    assert last.is_monotonic_increasing
    assert (curves["low"] <= curves["loss"]).all() and (curves["loss"] <= curves["high"]).all()
    assert "lr=0.01" in curves["config"].iloc[0]


def test_regret_reference_is_the_table_best_and_median(table_path):
    table = read_table(table_path)
    ref = table_reference(table)
    loss = objective_curve(table)
    assert ref["best"] == loss.min() and ref["best"] < ref["median"] < loss[:, :, -1].max()


def test_incomplete_table_gives_one_note(tmp_path):
    table = read_table(write_synthetic_table(tmp_path / "t.parquet", complete=False))
    note = require_complete(table, "t.parquet")
    assert note.startswith("table t.parquet is incomplete (12/24 curves recorded)")
    assert require_complete(read_table(write_synthetic_table(tmp_path / "c.parquet")),
                            "c") is None
