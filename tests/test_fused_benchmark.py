"""benchmarks/fused_throughput.py runs end to end (tiny, CPU) and writes its record."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "fused_throughput.py"


@pytest.mark.slow
def test_quick_benchmark_writes_a_complete_record(tmp_path):
    out = tmp_path / "fused.json"
    subprocess.run([sys.executable, str(SCRIPT), "--quick", "--task", "text_classifier",
                    "--out", str(out)], check=True, capture_output=True, timeout=600)
    record = json.loads(out.read_text())["tasks"]["text_classifier"]
    assert set(record["packing"]) == {"1", "2"} and record["best_packing"] > 0
    assert [row["k"] for row in record["fused"]] == [1, 2]
    for row in record["fused"]:
        assert row["fused"] > 0
        assert row["vs_one_at_a_time"] == pytest.approx(row["fused"] / record["one_at_a_time"])
