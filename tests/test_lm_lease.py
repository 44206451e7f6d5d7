"""The prepared command for the small LM's table on a lent GPU (benchmarks/lm_table_lease.sh),
run on the CPU at tiny scale: chunks bounded by the call's seconds, the table and its
progress file under OUT after every chunk, every configuration's first seed first, and a
second call going on from what the first recorded. The chunks are what is tested, so the
script records the text classifier's table (`TASK`): a small LM curve trains ~10 s on 2
cores, the classifier's start-up and first curve ~4 s. Slow (two calls, each three
interpreters): CI lists it."""

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
    env = dict(os.environ, TASK="text_classifier", TABLE=str(tmp_path / "tc.parquet"),
               CHUNK_SECONDS="3",
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
    recorded = _curves(tmp_path / "out1" / "tc.rows.jsonl")
    table = read_table(tmp_path / "out1" / "tc.parquet")
    assert recorded and table.meta["recorded"] == len(recorded) and not table.complete
    assert table.meta["task"] == "text_classifier"

    second = _lease(tmp_path, tmp_path / "out2", 3)  # the same table: it goes on
    assert second.returncode == 0 and second.stdout.count("== chunk:") == 1, second.stderr
    again = _curves(tmp_path / "out2" / "tc.rows.jsonl")
    assert again[:len(recorded)] == recorded and len(again) > len(recorded)
    assert again == [(i, 0) for i in range(len(again))], "grid order, every first seed first"
    assert f"{len(again)}/1440 curves" in second.stdout
