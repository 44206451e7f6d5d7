"""Test metrics in every table (issue 21): tasks report them per epoch when asked, and
asking changes nothing else; `suite tabulate` records them as columns and refuses to mix
formats; replays log them and the report gives the recommendation's test value.
"""

import shutil

import numpy as np
import pandas as pd
import pytest
import torch

import suite
from suite.cli import main
from suite.errors import SuiteError
from suite.log import read_rows
from suite.registry import check_task
from suite.report import ReportOptions, build_report
from suite.study import StudySpec, run_study
from suite.tables import read_table, write_table
from suite.tabulate import TabulateSpec, progress_path, tabulate
from suite.testing import ToyTask, toy_table
from suite.types import Member
from tasks.small_lm import SmallLM
from tasks.text_classifier import TextClassifier

CLASSIFIER = [{"lr": 0.01, "weight_decay": 0.1, "dropout_p": 0.5, "lr_factor": 0.5,
               "lr_patience": 1, "batch_size": 64, "width": 32},
              {"lr": 0.003, "weight_decay": 0.01, "dropout_p": 0.8, "lr_factor": 0.2,
               "lr_patience": 2, "batch_size": 64, "width": 32}]


def _lm_configs(task):
    base = {**task.default_config(), "width": 128, "depth": 2, "batch_size": 128}
    return [{**base, "lr": 3e-3, "dropout": 0.1},
            {**base, "lr": 1e-3, "dropout": 0.0, "schedule": "cyclic"}]


def _tasks():
    classifier, lm = TextClassifier(scale="tiny"), SmallLM(scale="tiny")
    return [(classifier, CLASSIFIER, {"test_loss", "test_accuracy", "test_macro_f1"}),
            (lm, _lm_configs(lm), {"test_loss", "test_bpc"})]


@pytest.fixture(scope="module", params=["text_classifier", "small_lm"])
def task_case(request):
    return dict(zip(["text_classifier", "small_lm"], _tasks(), strict=True))[request.param]


# --- tasks -----------------------------------------------------------------------------

def test_each_epochs_test_metrics_are_evaluate_of_its_checkpoint(task_case, tmp_path):
    task, configs, names = task_case
    path, kept = tmp_path / "c.pt", []
    results = []
    for result in task.train(configs[0], epochs=3, seed=1, save_to=path, device="cpu",
                             test=True):
        kept.append(shutil.copy(path, tmp_path / f"e{result.epoch}.pt"))
        results.append(result)
    for result, checkpoint in zip(results, kept, strict=True):
        test = {k: v for k, v in result.metrics.items() if k.startswith("test_")}
        assert set(test) == names
        assert test == task.evaluate(checkpoint, device="cpu"), result.epoch


def test_asking_for_test_metrics_changes_no_training(task_case, tmp_path):
    task, configs, _ = task_case
    plain = list(task.train(configs[0], epochs=3, seed=2, save_to=tmp_path / "a.pt",
                            device="cpu"))
    tested = list(task.train(configs[0], epochs=3, seed=2, save_to=tmp_path / "b.pt",
                             device="cpu", test=True))
    for a, b in zip(plain, tested, strict=True):
        assert a.metrics == {k: v for k, v in b.metrics.items() if not k.startswith("test_")}
    a, b = (torch.load(tmp_path / n, weights_only=True) for n in ("a.pt", "b.pt"))
    for name in a["model"]:
        assert torch.equal(a["model"][name], b["model"][name]), name
    assert torch.equal(a["rng"]["torch"], b["rng"]["torch"])  # the same random streams
    assert torch.equal(a["data_rng"], b["data_rng"])


def test_fused_members_test_metrics_equal_solo_runs_bit_for_bit(task_case, two_threads):
    task, configs, names = task_case
    members = [Member(c, e, s) for c, e, s in zip(configs, (3, 2), (5, 6), strict=True)]
    curves = [[] for _ in members]
    for step in task.train_fused(members, device="cpu", test=True):
        for index, result in step:
            curves[index].append(result.metrics)
    for member, curve in zip(members, curves, strict=True):
        solo = [r.metrics for r in task.train(member.config, epochs=member.epochs,
                                              seed=member.seed, device="cpu", test=True)]
        assert curve == solo and names <= set(curve[-1])
    plain = next(iter(task.train_fused(members, device="cpu")))
    assert not any(k.startswith("test_") for _, r in plain for k in r.metrics)


def test_a_task_declaring_test_epochs_must_take_the_keyword():
    class NoKeyword(ToyTask):
        def train(self, config, *, epochs, seed, resume_from=None, save_to=None,
                  device="auto"):
            return super().train(config, epochs=epochs, seed=seed, resume_from=resume_from,
                                 save_to=save_to, device=device)

    with pytest.raises(SuiteError, match="test_epochs=True.* its train takes no `test`"):
        check_task(NoKeyword())


# --- tables ----------------------------------------------------------------------------

def _spec(out, **kwargs):
    return TabulateSpec(task="toy", out=out, executor="inprocess", **kwargs)


def test_tabulate_records_test_columns_and_names_them(tmp_path):
    out = tmp_path / "toy.parquet"
    meta = tabulate(_spec(out, seeds=1))
    table = read_table(out)
    assert meta["test_metrics"] == ["test_loss"] == list(table.test_metrics)
    assert "test_loss" in table.frame and "outside device_seconds" in \
        meta["collection"]["test_metrics"]
    task = ToyTask()
    config = table.configs[7]
    assert table.epoch(7, 0, 5)[0]["test_loss"] == task.test_loss(config, 5)
    assert table.epoch(7, 0, 5)[1] == task.epoch_seconds(config)  # unchanged seconds
    plain = tabulate(_spec(tmp_path / "plain.parquet", seeds=1, test=False))
    assert plain["test_metrics"] == [] and plain["collection"]["test_metrics"] == "none"
    assert read_table(tmp_path / "plain.parquet").test_metrics == ()


def test_a_table_from_before_test_columns_loads_without_them(tmp_path):
    table = read_table(toy_table(tmp_path / "old.parquet", seeds=1))
    assert table.test_metrics == () and "test_metrics" not in table.meta


@pytest.mark.parametrize("first, then, held", [(False, True, "without"),
                                               (True, False, "with")])
def test_a_chunk_that_would_mix_formats_is_refused_in_one_line(tmp_path, capsys, first, then,
                                                               held):
    out = tmp_path / "toy.parquet"
    tabulate(_spec(out, seeds=1, test=first))
    before = out.read_bytes(), progress_path(out).read_bytes()
    with pytest.raises(SuiteError, match=f"recorded {held} test metrics.*--out"):
        tabulate(_spec(out, seeds=2, test=then))
    args = ["tabulate", "--task", "toy", "--out", str(out), "--seeds", "2",
            "--executor", "inprocess", *([] if then else ["--no-test"])]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "record a new table with --out" in err
    assert (out.read_bytes(), progress_path(out).read_bytes()) == before, "nothing rewritten"
    assert tabulate(_spec(out, seeds=1, test=then))["complete"]  # nothing to add: as it was


def test_a_chunk_with_another_device_seconds_meaning_is_refused(tmp_path):
    out = tmp_path / "toy.parquet"
    tabulate(_spec(out, seeds=1))
    table = read_table(out)
    meta = {**table.meta, "collection": {**table.meta["collection"],
                                         "device_seconds": "each worker's share"}}
    write_table(out, table.frame.to_dict("records"), meta)
    with pytest.raises(SuiteError, match="never mixes two meanings"):
        tabulate(_spec(out, seeds=2))


# --- replays and reports ---------------------------------------------------------------

@pytest.fixture(scope="module")
def replayed(tmp_path_factory):
    root = tmp_path_factory.mktemp("replay")
    path = toy_table(root / "toy.parquet", test=True)
    spec = StudySpec(task="toy", optimizers=("random",), seeds=(0, 1), budget="5x",
                     table=str(path))
    outcomes = run_study(spec, root / "study")
    return path, [o.directory for o in outcomes], root


def test_a_replays_log_carries_the_tables_test_metrics(replayed):
    path, runs, _ = replayed
    table = read_table(path)
    epochs = [r for run in runs for r in read_rows(run) if r["event"] == "epoch"]
    assert epochs and all("test_loss" in r["metrics"] for r in epochs)
    for row in epochs[:30]:  # the optimizer's loss is the objective, never the test value
        assert row["loss"] == row["metrics"]["val_loss"]
        seed = [s for s in range(table.seeds) if table.epoch(
            table.config_index(row["config"]), s, row["epoch"])[0] == row["metrics"]]
        assert seed, "every epoch is the table's, test metric included"


def test_the_report_gives_the_recommendations_test_value(replayed):
    path, _, root = replayed
    out = root / "report"
    build_report([root / "study"], out, ReportOptions(table=path, resamples=100,
                                                      table_figures=False, render=False))
    text = (out / "report.md").read_text()
    assert "no test metric" not in text and "final recommended configuration" in text
    frame = next(p for p in (out / "data").iterdir() if p.name.startswith("toy-test"))
    data = pd.read_csv(frame)
    table = read_table(path)
    assert len(data) == 2 and {"val", "test_loss"} <= set(data.columns)
    means = np.nanmean(table.curve("test_loss")[:, :, -1], axis=1)
    vals = np.nanmean(table.curve("val_loss")[:, :, -1], axis=1)
    for val, test in zip(data["val"], data["test_loss"], strict=True):  # one configuration's
        at = int(np.argmin(np.abs(vals - val)))
        assert val == pytest.approx(vals[at], rel=1e-7)
        assert test == pytest.approx(means[at], rel=1e-7)


def test_public_api_names_the_capability():
    assert suite.Capabilities(test_epochs=True).test_epochs


# --- the command line, end to end ------------------------------------------------------

@pytest.mark.slow  # three CLI processes that import torch, and a tiny table trained
def test_tabulate_then_replay_then_report_on_the_command_line(tmp_path):
    """`suite tabulate --scale tiny` of the text classifier (on a two-configuration grid,
    3 epochs: the full grid takes hours on a CPU), a replay of it, and its report."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    fixtures = Path(__file__).parent / "fixtures"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(fixtures), str(Path(__file__).parent.parent), os.environ.get("PYTHONPATH", "")])}
    ref, table = "small_grid:TwoConfigClassifier", tmp_path / "t.parquet"

    def cli(*args):
        done = subprocess.run([sys.executable, "-m", "suite.cli", *map(str, args)], env=env,
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr
        return done

    cli("tabulate", "--task", ref, "--scale", "tiny", "--seeds", "2", "--out", table,
        "--executor", "inprocess")
    recorded = read_table(table)
    assert recorded.complete and recorded.test_metrics == (
        "test_accuracy", "test_loss", "test_macro_f1")
    assert recorded.frame["test_loss"].notna().all()
    cli("run", "--task", ref, "--scale", "tiny", "--table", table, "--optimizer", "random",
        "--seeds", "0", "--budget", "3x", "--out", tmp_path / "study")
    logs = list((tmp_path / "study").rglob("*.jsonl"))
    rows = [json.loads(line) for log in logs for line in log.read_text().splitlines()]
    epochs = [r for r in rows if r.get("event") == "epoch"]
    assert epochs and all("test_macro_f1" in r["metrics"] for r in epochs)
    cli("report", tmp_path / "study", "--table", table, "--out", tmp_path / "report",
        "--no-table-figures", "--bootstrap", "100")
    text = (tmp_path / "report" / "report.md").read_text()
    assert "final recommended configuration" in text and "test_macro_f1" in text
