"""The quality check: its test, its table handling, and that it bites.

The sabotage test (slow: `pytest benchmarks/test_quality.py -m slow`) makes every BOHB
configuration a random sample (hpbandster's own `random_fraction` set to 1.0, so the KDE
model never picks) and requires the check against the committed baseline to flag BOHB.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import quality as Q

from suite.errors import SuiteError
from suite.optimizers import BOHBOptimizer
from suite.testing import toy_table

ROOT = Path(__file__).resolve().parents[1]


def test_paired_p_unchanged_regrets_never_fail():
    regret = np.linspace(0.1, 0.9, 20)
    assert Q.paired_p(regret, regret.copy()) == (0, 1.0)


def test_paired_p_is_one_sided():
    base = np.linspace(0.1, 0.9, 20)
    changed, worse = Q.paired_p(base, base + 0.05)
    assert changed == 20 and worse < Q.ALPHA
    assert Q.paired_p(base, base - 0.05)[1] > 0.5  # better is never a regression


def test_paired_p_counts_a_lost_incumbent_as_worst():
    base = np.linspace(0.1, 0.9, 10)
    now = base.copy()
    now[:8] = np.inf
    assert Q.paired_p(base, now)[1] < Q.ALPHA


def frame(values: dict[str, list[float]], budget: float = 30.0) -> pd.DataFrame:
    return pd.DataFrame([{"optimizer": name, "seed": seed, "budget": budget, "regret": v}
                         for name, vs in values.items() for seed, v in enumerate(vs)])


def test_compare_flags_only_the_worse_optimizer():
    base = np.linspace(0.1, 0.5, 12)
    verdicts = Q.compare("t", frame({"a": list(base), "b": list(base)}),
                         frame({"a": list(base), "b": list(base * 1.5)}))
    assert [(v.optimizer, v.worse, v.changed) for v in verdicts] == [
        ("a", False, 0), ("b", True, 12)]


def test_compare_refuses_missing_results():
    base = frame({"a": [0.1] * 8})
    with pytest.raises(SuiteError, match="no current result"):
        Q.compare("t", base, base.iloc[:0])


def test_incomplete_tables_are_skipped_with_a_reason(tmp_path):
    toy_table(tmp_path / "toy.parquet")
    shutil.copy(ROOT / "results/tables/small_lm-r1.parquet", tmp_path)  # 109/1440 curves
    tables, skipped = Q.complete_tables(tmp_path)
    assert tables == [tmp_path / "toy.parquet"]
    assert len(skipped) == 1 and "small_lm-r1.parquet: skipped, incomplete (109/1440" in skipped[0]


def test_spec_needs_enough_seeds_for_alpha():
    with pytest.raises(SuiteError, match="seeds cannot reach alpha"):
        Q.QualitySpec(seeds=tuple(range(6)))  # all 6 worse: p = 1/64 > 0.01
    assert Q.paired_p(np.zeros(7), np.ones(7))[1] < Q.ALPHA < Q.paired_p(np.zeros(6),
                                                                          np.ones(6))[1]


def test_unknown_optimizer_is_one_line_and_exit_2(tmp_path, capsys):
    assert Q.main(["--update-baseline", "--optimizers", "random,nope",
                   "--baseline", str(tmp_path / "b.json")]) == 2
    assert "unknown optimizers ['nope']" in capsys.readouterr().err


@pytest.fixture
def toy_setup(tmp_path):
    tables = tmp_path / "tables"
    toy_table(tables / "toy.parquet")
    baseline = tmp_path / "baseline.json"
    assert Q.main(["--tables", str(tables), "--baseline", str(baseline), "--update-baseline",
                   "--seeds", "0-6", "--budgets", "3,6", "--optimizers", "random,hyperband",
                   "--jobs", "1"]) == 0
    return tables, baseline


def test_an_unchanged_suite_reproduces_its_baseline(toy_setup, capsys):
    tables, baseline = toy_setup
    assert Q.main(["--tables", str(tables), "--baseline", str(baseline), "--jobs", "2"]) == 0
    out = capsys.readouterr().out
    assert out.count("| toy |") == 4 and "WORSE" not in out
    assert all(line.split("|")[7].strip() == "0" for line in out.splitlines()
               if line.startswith("| toy |"))  # no seed changed: replays are deterministic


def test_a_changed_table_fails_the_check(toy_setup, capsys):
    tables, baseline = toy_setup
    toy_table(tables / "toy.parquet", seeds=3)  # re-recorded: another checksum
    assert Q.main(["--tables", str(tables), "--baseline", str(baseline)]) == 1
    assert "changed since the baseline" in capsys.readouterr().out


def test_a_missing_baseline_is_one_line_and_exit_2(tmp_path, capsys):
    assert Q.main(["--baseline", str(tmp_path / "none.json")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no quality baseline" in err


@pytest.mark.slow
def test_sabotaged_bohb_fails_the_committed_baseline(monkeypatch, tmp_path, capsys):
    original = BOHBOptimizer._generator_for

    def random_picks(self, space):
        generator = original(self, space)
        generator.random_fraction = 1.0  # hpbandster: every config sampled at random
        return generator
    monkeypatch.setattr(BOHBOptimizer, "_generator_for", random_picks)
    baseline = Q.read_baseline()
    entry = baseline["tables"]["text_classifier"]
    spec = replace(Q.spec_of(baseline), optimizers=("bohb",))
    now = Q.replay_regrets(ROOT / entry["path"], spec, tmp_path, jobs=1)
    base = Q.baseline_frame(entry)
    verdicts = Q.compare("text_classifier", base[base["optimizer"] == "bohb"], now)
    with capsys.disabled():
        print("\n" + "\n".join(Q.quality_table(verdicts)))
    assert any(v.worse for v in verdicts)
