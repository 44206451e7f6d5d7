"""A task that breaks the Task API's contract stops its study at the first occurrence, in
one line (exit 2), with nothing lost: the trial it broke on stays in flight, and once the
task is fixed `--resume` ends with the logs of a study never interrupted. `--resume`
refuses a task whose name, metric, direction or fidelity changed, except in a study that
has not logged an epoch (it takes the corrected task: a misspelled metric). A failed trial
keeps its traceback in the run folder, and `--on-failure stop` stops at the first."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from suite.cli import main
from suite.errors import TaskContractError
from suite.executors._base import Job, run_job
from suite.log import read_log, read_run_meta
from suite.types import EpochResult, Trial

FIXTURES = Path(__file__).parent / "fixtures"
RUN = ["--optimizer", "hyperband", "--budget", "3x", "--executor", "inprocess"]


@pytest.fixture(autouse=True)
def _my_tasks(monkeypatch):
    monkeypatch.syspath_prepend(str(FIXTURES))


def _suite(capsys, *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().err


def _epochs(out: Path) -> list[tuple]:
    """Every epoch row of a study: (run, trial, epoch, loss), in log order."""
    return [(log.parent.name, r["trial_id"], r["epoch"], r["loss"])
            for log in sorted(out.glob("*/seed-*/log.jsonl"))
            for r in map(json.loads, log.read_text().splitlines()) if r["event"] == "epoch"]


@pytest.fixture(scope="module")
def whole(tmp_path_factory):
    """The fixed task's study, never interrupted: its epoch rows."""
    out = tmp_path_factory.mktemp("whole") / "s"
    sys.path.insert(0, str(FIXTURES))
    try:
        assert main(["run", "--task", "my_tasks:Broken", *RUN, "--out", str(out)]) == 0
    finally:
        sys.path.remove(str(FIXTURES))
    return _epochs(out)


@pytest.mark.parametrize("mode, says", [
    ("metric", "epoch 1 reports val_los, not its objective 'val_loss'"),
    ("tuple", "train yielded a tuple, not a suite.EpochResult"),
    ("text", "epoch 1 reports note as a str, not a number"),
    ("checkpoint", "declares checkpoints but its epoch 1 reports none"),
    ("resume", "yielded epoch 1 where epoch 2 was next (resumed from epoch 1's checkpoint)"),
])
def test_a_contract_violation_stops_at_once_in_one_line_and_the_fixed_task_resumes(
        tmp_path, capsys, monkeypatch, whole, mode, says):
    out = tmp_path / "s"
    monkeypatch.setenv("MY_TASKS_BROKEN", mode)
    code, err = _suite(capsys, "run", "--task", "my_tasks:Broken", *RUN, "--out", str(out))
    assert code == 2 and err.count("\n") == 1, err
    assert err.startswith("suite run: error: task broken") and says in err, err
    assert f"suite run --resume {out}" in err
    rows = read_log(out / "hyperband" / "seed-0")
    starts = [r for r in rows if r.event == "start"]
    assert not [r for r in rows if r.event in ("end", "finish")], "the trial stays in flight"
    # at its first occurrence: the first trial, or (a resume) the first promotion
    assert len(starts) == (1 if mode != "resume" else
                           next(i for i, r in enumerate(starts) if r.resumed_checkpoint) + 1)

    monkeypatch.delenv("MY_TASKS_BROKEN")
    code, err = _suite(capsys, "run", "--resume", str(out))
    assert code == 0, err
    assert _epochs(out) == whole  # nothing lost, nothing twice


def test_run_job_refuses_what_the_runner_cannot_repair(tmp_path):
    from my_tasks import Broken

    class Past(Broken):
        def train(self, config, *, epochs, **kwargs):
            yield from super().train(config, epochs=epochs + 1, **kwargs)

    job = Job(Trial(0, {"lr": 0.01, "width": 4}, 2, 0), seed=0, save_to=tmp_path / "0.pt")
    with pytest.raises(TaskContractError, match="yielded epoch 3 past its target of 2"):
        list(run_job(Past(), job, "cpu"))
    assert [r.epoch for r in run_job(Broken(), job, "cpu")] == [1, 2]
    assert isinstance(next(run_job(Broken(), job, "cpu")), EpochResult)


def test_a_misspelled_metric_is_corrected_on_resume_before_any_epoch(tmp_path, capsys,
                                                                    monkeypatch):
    out = tmp_path / "s"
    monkeypatch.setenv("MY_TASKS_METRIC", "val_los")
    code, err = _suite(capsys, "run", "--task", "my_tasks:make_spelled", *RUN, "--out", str(out))
    assert code == 2 and "reports val_loss, not its objective 'val_los'" in err, err
    assert read_run_meta(out / "hyperband" / "seed-0").metric == "val_los"

    monkeypatch.setenv("MY_TASKS_METRIC", "val_loss")
    code, err = _suite(capsys, "run", "--resume", str(out))
    assert code == 0, err
    assert read_run_meta(out / "hyperband" / "seed-0").metric == "val_loss"

    monkeypatch.setenv("MY_TASKS_METRIC", "val_acc")  # changed once epochs are logged
    log = out / "hyperband" / "seed-0" / "log.jsonl"
    before = log.read_bytes()
    code, err = _suite(capsys, "run", "--resume", str(out))
    assert code == 2 and err.count("\n") == 1, err
    assert "changed since" in err and "metric 'val_loss' -> 'val_acc'" in err, err
    assert log.read_bytes() == before


def test_failed_trials_keep_their_traceback_and_on_failure_stop_stops_at_the_first(
        tmp_path, capsys):
    out = tmp_path / "s"
    code, err = _suite(capsys, "run", "--task", "my_tasks:Flaky", "--optimizer", "random",
                       "--budget", "20x", "--executor", "inprocess", "--on-failure", "stop",
                       "--out", str(out))
    assert code == 2 and err.count("\n") == 1, err
    assert "failed: ValueError: the loss diverged (--on-failure stop)" in err, err
    rows = read_log(out / "random" / "seed-0")
    failed = [r for r in rows if r.event == "end"]
    assert len(failed) == 1 and failed[0] is rows[-1], "stopped at the first failure"
    trial = failed[0].trial.trial_id
    text = (out / "random" / "seed-0" / "errors" / f"trial-{trial}.txt").read_text()
    assert text.startswith("Traceback") and "my_tasks.py" in text
    assert text.rstrip().endswith("ValueError: the loss diverged")
    assert json.loads((out / "study.json").read_text())["on_failure"] == "stop"
