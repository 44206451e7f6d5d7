"""benchmarks/seed_stability.py on a small synthetic study: its files, its table, its errors."""

import importlib.util
import json
from pathlib import Path

import pytest
from synthetic import write_synthetic_study, write_synthetic_table

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "seed_stability.py"


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("seed_stability", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_writes_flip_rates_and_a_recommendation(tmp_path, script, capsys):
    table = write_synthetic_table(tmp_path / "toy.parquet")
    study = write_synthetic_study(tmp_path / "study", table=str(table), seeds=range(6))
    out = tmp_path / "out"
    assert script.main([str(study), "--sizes", "2,6", "--resamples", "200",
                        "--out", str(out)]) == 0
    summary = json.loads((out / "seed-stability.json").read_text())
    assert summary["seeds"] == 6 and summary["points"] == ["1.5x", "3x"]
    assert summary["optimizers"] == ["bad", "good", "middle"]
    text = capsys.readouterr().out
    assert "| budget | pair |" in text and "Recommended seeds:" in text
    flips = (out / "seed-stability.csv").read_text().splitlines()
    # 2 points × 3 pairs × 2 aggregates × 2 sizes, and a header.
    assert len(flips) == 1 + 2 * 3 * 2 * 2


def test_bad_input_is_one_line(tmp_path, script, capsys):
    study = write_synthetic_study(tmp_path / "study", seeds=range(2))
    assert script.main([str(study), "--sizes", "two", "--out", str(tmp_path / "o")]) == 2
    assert script.main([str(study), "--budgets", "3q", "--out", str(tmp_path / "o")]) == 2
    assert script.main([str(study), "--budgets", "30e", "--out", str(tmp_path / "o")]) == 2
    # runs without a table: no full-fidelity value to compare
    assert script.main([str(study), "--out", str(tmp_path / "o")]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 4 and all(e.startswith("seed_stability: error: ") for e in errors)
