"""A live run on a table's grid (`suite run --space table`) decides as its replay does.

The toy task trains for real here (in this process, checkpoints written and resumed on
promotion); its table holds what that training yields, so on one worker every decision
of the live run (configurations, epochs, losses, promotions, recommendations, finish)
must equal its replay's, and only the measured fields (`suite.decisions.MEASURED`) differ.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest

from suite.decisions import decision_differences
from suite.errors import SuiteError
from suite.log import read_run_meta
from suite.study import StudySpec, run_study
from suite.testing import Killed, kill_after, toy_table

OPTIMIZERS = ("hyperband", "tpe")


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    return toy_table(tmp_path_factory.mktemp("tables") / "toy.parquet", seeds=2)


def test_a_live_run_on_the_grid_decides_as_its_replay(tmp_path, table):
    plan = {"task": "toy", "optimizers": OPTIMIZERS, "seeds": (0, 1), "budget": "4x",
            "include_default": True}
    run_study(StudySpec(**plan, space=str(table), executor="inprocess"), tmp_path / "live")
    run_study(StudySpec(**plan, table=str(table)), tmp_path / "replay")
    for name in OPTIMIZERS:
        for seed in (0, 1):
            live, replay = (tmp_path / d / name / f"seed-{seed}" for d in ("live", "replay"))
            assert decision_differences(live, replay) == [], (name, seed)
            meta = read_run_meta(live)
            assert not meta.simulated and meta.space == str(table)
            assert meta.table_sha256 == read_run_meta(replay).table_sha256
            # the toy reports its analytic seconds; a real task's measured seconds differ
            # from its table's: benchmarks/live_vs_replay.py
            assert list((live / "checkpoints").glob("*.pt")), "live trials save checkpoints"
    promoted = [json.loads(line) for line in (tmp_path / "live" / "hyperband" / "seed-0" /
                                              "log.jsonl").read_text().splitlines()]
    assert any(r["event"] == "start" and r.get("resumed_checkpoint") for r in promoted)


def test_the_comparison_sees_a_different_decision(tmp_path, table):
    plan = {"task": "toy", "optimizers": ("random",), "budget": "2x"}
    run_study(StudySpec(**plan, seeds=(0,), space=str(table), executor="inprocess"),
              tmp_path / "live")
    run_study(StudySpec(**plan, seeds=(1,), table=str(table)), tmp_path / "replay")
    differences = decision_differences(tmp_path / "live" / "random" / "seed-0",
                                       tmp_path / "replay" / "random" / "seed-1")
    assert any("config" in line for line in differences), differences


def test_a_table_recorded_elsewhere_or_for_a_replay_is_refused(tmp_path, table):
    meta = pd.read_parquet(table)
    import pyarrow.parquet as pq

    stored = json.loads(pq.read_schema(table).metadata[b"suite"])
    stored["collection"]["provenance"]["threads_per_worker"] = 999
    other = tmp_path / "other.parquet"
    schema = pq.read_schema(table)
    pq.write_table(pq.read_table(table).replace_schema_metadata(
        {**schema.metadata, b"suite": json.dumps(stored).encode()}), other)
    assert len(pd.read_parquet(other)) == len(meta)
    with pytest.raises(SuiteError, match="threads_per_worker 999; this study trains with"):
        run_study(StudySpec(task="toy", optimizers=("random",), budget="2x",
                            space=str(other), executor="inprocess"), tmp_path / "s")
    assert not (tmp_path / "s" / "study.json").exists()
    with pytest.raises(SuiteError, match="--space table trains live"):
        StudySpec(task="toy", optimizers=("random",), budget="2x", space=str(table),
                  table=str(table))


def test_the_cli_takes_space_table_path(tmp_path, table, capsys):
    from suite.cli import main

    out = tmp_path / "s"
    assert main(["run", "--task", "toy", "--optimizer", "random", "--budget", "1x",
                 "--space", "table", str(table), "--executor", "inprocess",
                 "--out", str(out)]) == 0
    assert json.loads((out / "study.json").read_text())["space"] == str(table)
    assert main(["run", "--task", "toy", "--optimizer", "random", "--budget", "1x",
                 "--space", "grid", "--out", str(tmp_path / "t")]) == 2
    assert "--space takes table [PATH]" in capsys.readouterr().err


def test_a_killed_live_run_on_the_grid_resumes_to_its_replays_decisions(tmp_path, table):
    spec = StudySpec(task="toy", optimizers=("hyperband",), budget="4x", space=str(table),
                     executor="inprocess")

    with pytest.raises(Killed):  # mid-run, promotions pending on checkpoints
        run_study(spec, tmp_path / "live", on_run=kill_after(60))
    run_study(spec, tmp_path / "live", resume=True)
    run_study(StudySpec(task="toy", optimizers=("hyperband",), budget="4x", table=str(table)),
              tmp_path / "replay")
    assert decision_differences(tmp_path / "live" / "hyperband" / "seed-0",
                                tmp_path / "replay" / "hyperband" / "seed-0") == []
