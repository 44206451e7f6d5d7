"""The examples a user copies (examples/), run as a user runs them, their output checked."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


def _run(*args, cwd=ROOT, timeout=300):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONHASHSEED"}  # as a user's
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(EXAMPLES)])
    proc = subprocess.run([sys.executable, *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def _incumbents(out: Path) -> dict[str, float]:
    import suite

    best = suite.open_study(out).incumbents()
    return dict(zip(best["optimizer"], best["loss"], strict=True))


@pytest.mark.slow  # CI runs it: .ci/run, "slow tests CI runs"
def test_made_with_ml_train_loop(tmp_path):
    """train_loop(config) reporting per epoch, through task_from_function (~25 s)."""
    stdout = _run(str(EXAMPLES / "benchmark_train_loop.py"), str(tmp_path / "s"))
    lines = dict(line.split(": ", 1) for line in stdout.splitlines() if ": val_loss" in line)
    assert sorted(lines) == ["bohb", "random"], stdout
    best = _incumbents(tmp_path / "s")
    for name, line in lines.items():
        loss = float(line.split()[1])
        assert loss == pytest.approx(best[name], abs=1e-4)
        assert loss < 1.0, "it learned: ten classes untrained are ln 10 = 2.3"
        assert "27 epochs charged" in line  # 3x of 9 epochs: the ledger, spent
    rows = [json.loads(line) for line in (tmp_path / "s" / "bohb" / "seed-0" /
                                          "log.jsonl").read_text().splitlines()]
    assert all("val_accuracy" in r["metrics"] for r in rows if r["event"] == "epoch")


@pytest.mark.slow
def test_digits_python_api_five_optimizers(tmp_path):
    """The dozen lines of examples/benchmark_digits.py: five optimizers, a report (~50 s)."""
    stdout = _run(str(EXAMPLES / "benchmark_digits.py"), str(tmp_path / "s"))
    table = [line.split() for line in stdout.splitlines()[1:6]]
    assert sorted(r[0] for r in table) == ["bohb", "grid", "hyperband", "random", "tpe"]
    best = _incumbents(tmp_path / "s")
    for name, loss, epoch, *_ in table:
        assert float(loss) == pytest.approx(best[name], rel=1e-5) and int(epoch) == 9
        assert float(loss) < 1.0, "it learned"
    assert (tmp_path / "s" / "report" / "report.md").exists()
    assert f"report: {tmp_path / 's' / 'report'}" in stdout


@pytest.mark.slow
def test_digits_from_the_cli(tmp_path):
    """`suite run --task digits:Digits` with examples/ on PYTHONPATH, then `suite report`."""
    out = tmp_path / "s"
    stdout = _run("-m", "suite.cli", "run", "--task", "digits:Digits", "--optimizer",
                  "random,hyperband", "--budget", "2x", "--out", str(out))
    rows = [line.split() for line in stdout.splitlines()
            if line.split()[:1] in (["random"], ["hyperband"]) and line.split()[1].isdigit()
            and len(line.split()) == 8]  # the per-run rows, not the per-optimizer ones
    best = _incumbents(out)
    assert [r[0] for r in rows] == ["random", "hyperband"], stdout
    for r in rows:
        assert float(r[2]) == pytest.approx(best[r[0]], rel=1e-3) and r[4] == "2.00x"
    assert f"next: suite report {out}" in stdout.replace("\n", "")
    _run("-m", "suite.cli", "report", str(out), "--bootstrap", "100")
    assert (out / "report" / "report.md").exists()
