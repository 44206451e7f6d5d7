"""The library statistics reproduce the hand-written numbers they replaced.

tests/fixtures/hand_written_stats/ holds what the hand-written Friedman, Nemenyi (scipy's
exact studentized range), Wilcoxon and Holm code wrote for the classifier replay committed
before autorank and scikit-posthocs replaced it (results/figures/text_classifier-replay/
data/ at 6f31fc2: 7 optimizers × 20 seeds at 30x): `final.csv`, `cd.csv`,
`wilcoxon-holm.csv`, and `finals.csv`, each run's final incumbent taken from that
commit's incumbent traces (the last change of each run). The tests are run again on
those finals with the libraries.
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from suite.report import final_table, friedman, wilcoxon_holm

DATA = Path(__file__).resolve().parents[1] / "fixtures" / "hand_written_stats"


@pytest.fixture(scope="module")
def finals() -> pd.DataFrame:
    return pd.read_csv(DATA / "finals.csv")


def test_the_finals_are_the_committed_ones(finals):
    committed = pd.read_csv(DATA / "final.csv").set_index("optimizer")
    table = final_table(finals).set_index("optimizer")
    for column in ("seeds", "mean", "median", "iqm", "best"):
        assert table[column].to_numpy() == pytest.approx(committed[column].to_numpy(),
                                                         rel=1e-9), column


def test_autorank_gives_the_committed_ranks_and_critical_difference(finals):
    committed = pd.read_csv(DATA / "cd.csv").set_index("optimizer")
    result = friedman(finals)
    ranks = pd.Series(result["ranks"]).reindex(committed.index)
    assert ranks.to_numpy() == pytest.approx(committed["rank"].to_numpy(), abs=1e-12)
    # autorank takes q from statsmodels' studentized-range approximation (qsturng); the
    # old code used scipy's exact quantile: 2.014063 against 2.014086, 1.2e-5 relative.
    assert result["cd"] == pytest.approx(committed["cd"].iloc[0], rel=1e-4)
    assert result["p"] == pytest.approx(0.025109888922446807, rel=1e-9)  # in the README


def test_scikit_posthocs_gives_the_committed_wilcoxon_holm_table(finals):
    committed = pd.read_csv(DATA / "wilcoxon-holm.csv")
    table = wilcoxon_holm(finals)
    assert list(zip(table["a"], table["b"], strict=True)) == list(
        zip(committed["a"], committed["b"], strict=True))
    # The traces CSV keeps 10 significant digits of each loss (about 1e-10 here), so a
    # difference of two losses agrees to 1e-9; the p-values depend only on the ranks of the
    # differences, which the rounding leaves alone, and agree to the CSV's own digits.
    assert table["median_diff"].to_numpy() == pytest.approx(
        committed["median_diff"].to_numpy(), abs=1e-9)
    for column in ("p", "p_holm"):
        assert table[column].to_numpy() == pytest.approx(committed[column].to_numpy(),
                                                         rel=1e-8), column
    assert np.array_equal(table["significant"], committed["significant"])
