"""The prepared command for the small LM's table on a lent GPU (benchmarks/lm_table_lease.sh),
run on the CPU at tiny scale: chunks bounded by the call's seconds, the table and its
progress file under OUT after every chunk, every configuration's first seed first, and a
second call going on from what the first recorded. Slow (a tiny curve trains ~10 s on 2
cores; the whole tiny table would take ~50 min): CI lists it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from suite.tables import read_table

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "lm_table_lease.sh"


def _lease(tmp_path: Path, out: Path, seconds: int) -> subprocess.CompletedProcess:
    env = dict(os.environ, TABLE=str(tmp_path / "small_lm.parquet"), CHUNK_SECONDS="3",
               MIN_CHUNK_SECONDS="3",  # the script's python3: this interpreter's
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    return subprocess.run(["bash", str(SCRIPT), str(out), str(seconds), "--scale", "tiny",
                           "--executor", "inprocess"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)


def _curves(rows: Path) -> list[tuple[int, int]]:
    return [(r["config_index"], r["seed"]) for r in map(json.loads, rows.read_text().splitlines())
            if "config_index" in r]


@pytest.mark.slow
def test_a_cut_lease_brings_back_its_curves_and_the_next_call_goes_on(tmp_path):
    # seconds = MIN_CHUNK_SECONDS: one chunk a call, however long its curve takes
    first = _lease(tmp_path, tmp_path / "out1", 3)
    assert first.returncode == 0 and first.stdout.count("== chunk:") == 1, first.stderr
    recorded = _curves(tmp_path / "out1" / "small_lm.rows.jsonl")
    table = read_table(tmp_path / "out1" / "small_lm.parquet")
    assert recorded and table.meta["recorded"] == len(recorded) and not table.complete
    assert table.meta["task_revision"] == 2

    second = _lease(tmp_path, tmp_path / "out2", 3)  # the same table: it goes on
    assert second.returncode == 0 and second.stdout.count("== chunk:") == 1, second.stderr
    again = _curves(tmp_path / "out2" / "small_lm.rows.jsonl")
    assert again[:len(recorded)] == recorded and len(again) > len(recorded)
    assert again == [(i, 0) for i in range(len(again))], "grid order, every first seed first"
    assert f"{len(again)}/120 curves" in second.stdout
