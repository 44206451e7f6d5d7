"""Figures a reader can read: rendered for 3 and for 14 optimizers, no two texts overlap,
none is cut off or too small at a paper column's width, no legend hides data
(`suite.report._legibility`, from matplotlib's rendered bounding boxes): the final and
rank figures alone, then every figure of a toy report."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from synthetic import write_synthetic_study, write_synthetic_table

from suite.report import _figures as F
from suite.report._compose import build_report
from suite.report._legibility import legibility_problems
from suite.report._style import _KNOWN, figure_title, new_figure, plt
from suite.report._writer import ReportOptions, figure_title_text


def _finals(k: int) -> pd.DataFrame:
    rng = np.random.default_rng(k)
    return pd.DataFrame([{"optimizer": name, "seed": s, "loss": 0.33 + 0.01 * i
                          + 0.005 * rng.standard_normal()}
                         for i, name in enumerate(_KNOWN[:k]) for s in range(20)])


def _ranks(k: int) -> pd.DataFrame:
    budgets = np.geomspace(0.5, 60, 30)
    rng = np.random.default_rng(k)
    return pd.DataFrame([{"optimizer": name, "budget": b,
                          "rank": float(np.clip(1 + (i + rng.normal()) % k, 1, k))}
                         for i, name in enumerate(_KNOWN[:k]) for b in budgets])


def _render(draw, size: dict, title: str) -> list[str]:
    fig, axes = new_figure(**size)
    try:
        draw(axes[0, 0])
        figure_title(fig, figure_title_text(title, "replay, 20 seeds"))
        fig.tight_layout()
        return legibility_problems(fig, title)
    finally:
        plt.close(fig)


@pytest.mark.parametrize("k", [3, 14])
def test_the_final_and_rank_figures_read_for_3_and_14_optimizers(k):
    finals, ranks = _finals(k), _ranks(k)
    assert _render(lambda ax: F.plot_final(finals, ax, xlabel="final val_loss"),
                   F.final_size(k), "text_classifier: final val_loss") == []
    assert _render(lambda ax: F.plot_ranks(ranks, ax, xlabel="budget spent (x)"),
                   F.ranks_size(k), "text_classifier: average rank") == []


def test_the_check_sees_what_the_old_figures_showed():
    """Fourteen names under vertical boxes at 4.2 in (the committed final figure), and a
    rank axis of 3 in with a tick per rank and a legend over the lines: what a reader
    could not read, the check reports."""
    finals = _finals(14)

    def old_final(ax):
        names = list(dict.fromkeys(finals["optimizer"]))
        ax.boxplot([finals.loc[finals["optimizer"] == n, "loss"] for n in names],
                   positions=range(14))
        ax.set_xticks(range(14), names)

    problems = _render(old_final, {"width": 4.2, "height": 3.0}, "t: final")
    assert any("'grid' overlaps 'random'" in p for p in problems), problems

    def old_ranks(ax):
        F.plot_ranks(_ranks(14), ax)
        ax.set_yticks(range(1, 15))
        ax.legend(loc="center")  # over the lines

    problems = _render(old_ranks, {"width": 4.2, "height": 3.0}, "t: ranks")
    assert any("overlaps" in p for p in problems), problems
    assert any("hides" in p for p in problems), problems


_EVERY = {"anytime", "regret", "anytime-observed", "regret-observed", "ranks", "final", "cd", "iqm",
          "profile", "fanova", "ped-anova", "grid-importance", "literature", "fidelity",
          "top-curves", "run-curves", "parallel"}


@pytest.mark.parametrize("k", [3, 14])
def test_every_figure_of_a_report_reads_for_3_and_14_optimizers(tmp_path, k):
    """A replay report of k optimizers on a toy table, every figure drawn and read as a
    reader would (not saved: the check reads the figure as `save_figure` would write it)."""
    table = write_synthetic_table(tmp_path / "toy.parquet")
    study = write_synthetic_study(tmp_path / "study", optimizers=_KNOWN[:k], seeds=range(5),
                                  table=str(table))
    result = build_report([study], tmp_path / "report", ReportOptions(
        resamples=50, points=40, render=False, check_figures=True))
    names = {n.removeprefix("toy-") for n in result.checked}
    assert _EVERY <= names, sorted(_EVERY - names)
    assert ("regret-panels" in names) == (k > 7), "small multiples beside a crowded overlay"
    text = (tmp_path / "report" / "report.md").read_text()
    assert ("one panel per optimizer" in text) == (k > 7)
    assert result.legibility == []
    assert not (tmp_path / "report" / "figures").exists(), "checked, not written"
