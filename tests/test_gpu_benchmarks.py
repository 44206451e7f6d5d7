"""The GPU must-show scripts run end to end on the CPU (tiny scale) and say what they
should: fused curves exact in fp32, and a busy-time breakdown that accounts for the
whole wall time."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.mark.slow
def test_fused_check_is_exact_on_the_cpu(tmp_path):
    out = tmp_path / "check.json"
    proc = subprocess.run([sys.executable, str(BENCHMARKS / "gpu_fused_check.py"), "--quick",
                           "--control", "--out", str(out)], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    record = json.loads(out.read_text())
    lm = record["tasks"]["small_lm"]  # the control: solo again under the math kernel
    assert len(lm["control"]) == 2 and lm["within_control"] is True
    assert "control_diffs" not in record["tasks"]["text_classifier"]
    for task in ("small_lm", "text_classifier"):
        rec = record["tasks"][task]
        assert rec["pass"] and rec["tolerance"] == "exact"
        assert rec["diffs"][rec["objective"]] == {"max_abs": 0.0, "max_rel": 0.0}
        assert len(rec["fused"]) == 2 and rec["fused"][0] != rec["fused"][1]


@pytest.mark.slow
def test_busy_breakdown_accounts_for_the_whole_wall_time(tmp_path):
    out = tmp_path / "busy.json"
    proc = subprocess.run([sys.executable, str(BENCHMARKS / "gpu_busy.py"), "--quick",
                           "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    record = json.loads(out.read_text())
    assert sum(record["seconds"].values()) == pytest.approx(record["wall_seconds"], rel=1e-6)
    assert 0 < record["gpu_had_work"] < 1 and record["epochs"] >= 27
    # the charges of two packed workers add up to at most the time their device was busy
    assert record["charged_device_seconds"] <= record["seconds"]["gpu work"] * 1.05
