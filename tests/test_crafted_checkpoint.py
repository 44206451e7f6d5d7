"""A crafted pickle that would create a file when unpickled is refused wherever a
checkpoint is loaded (`read_checkpoint`, a task's resume and evaluation, `suite train
--resume-from`: one line, exit code 2, no traceback; a run's worker: the trial fails with
that line; end to end, `suite run --resume` of a stopped live study whose pinned checkpoint
was swapped for it), and the file is never created."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from suite.errors import CheckpointError
from tasks.small_lm import SmallLM
from tasks.text_classifier import TextClassifier
from tasks.training import CHECKPOINT_FORMAT, read_checkpoint


class _CreatesAFile:
    """Unpickling this calls `open(marker, "w")`: any code at all could run instead."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


def _crafted(path: Path, marker: Path, *, how: str = "torch") -> Path:
    state = {"format": CHECKPOINT_FORMAT, "task": "text_classifier", "scale": "tiny",
             "model": _CreatesAFile(marker)}
    if how == "torch":
        torch.save(state, path)
    else:
        path.write_bytes(pickle.dumps(state))
    return path


@pytest.mark.parametrize("how", ["torch", "pickle"])
def test_the_crafted_file_runs_code_when_unpickled_and_read_checkpoint_refuses_it(tmp_path,
                                                                                   how):
    proof = tmp_path / "proof"
    crafted = _crafted(tmp_path / "proof.pt", proof, how=how)
    if how == "torch":
        torch.load(crafted, weights_only=False)
    else:
        pickle.loads(crafted.read_bytes())
    assert proof.exists(), "the crafted file is harmless: the test would prove nothing"

    marker = tmp_path / "marker"
    evil = _crafted(tmp_path / "evil.pt", marker, how=how)
    # torch's restricted unpickler refuses the global; a bare pickle is not even a torch file
    refusal = "holds more than plain data" if how == "torch" else "is unreadable"
    with pytest.raises(CheckpointError, match=refusal) as err:
        read_checkpoint(evil)
    assert len(str(err.value).splitlines()) == 1 and str(evil) in str(err.value)
    assert not marker.exists(), "loading the checkpoint ran its code"


@pytest.mark.parametrize("task", [TextClassifier(scale="tiny"), SmallLM(scale="tiny")],
                         ids=["text_classifier", "small_lm"])
def test_resume_and_evaluation_refuse_a_crafted_checkpoint(task, tmp_path):
    marker = tmp_path / "marker"
    evil = _crafted(tmp_path / "evil.pt", marker)
    with pytest.raises(CheckpointError, match="holds more than plain data"):
        next(iter(task.train(task.default_config(), epochs=2, seed=0, resume_from=evil,
                             device="cpu")))
    with pytest.raises(CheckpointError, match="holds more than plain data"):
        task.evaluate(evil, device="cpu")
    assert not marker.exists()


def test_suite_train_resume_from_a_crafted_checkpoint_is_one_line_and_creates_nothing(
        tmp_path):
    marker = tmp_path / "marker"
    evil = _crafted(tmp_path / "evil.pt", marker)
    proc = subprocess.run([sys.executable, "-m", "suite.cli", "train", "--task",
                           "text_classifier", "--scale", "tiny", "--device", "cpu",
                           "--epochs", "2", "--resume-from", str(evil)],
                          capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert f"checkpoint {evil} holds more than plain data" in proc.stderr
    assert not marker.exists(), "loading the checkpoint ran its code"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["evil.pt"], "nothing written"


def test_a_run_worker_resuming_a_crafted_checkpoint_fails_the_trial_and_creates_nothing(
        tmp_path):
    """The path a study's promotion takes: a spawned worker (the local executor) resumes
    the trial's pinned checkpoint; the trial ends failed with the refusal, nothing runs."""
    from suite.executors import Job, TrialEnded, training_executor
    from suite.types import Trial

    marker = tmp_path / "marker"
    evil = _crafted(tmp_path / "evil.pt", marker)
    task = TextClassifier(scale="tiny")
    executor = training_executor("local", task, ref="text_classifier", scale="tiny", workers=1,
                                 devices=("cpu",))
    try:
        trial = Trial(1, task.default_config(), 3, 0, resume_from=0)
        executor.submit(Job(trial, 0, save_to=None, resume_from=evil))
        event = executor.next_event()
        while not isinstance(event, TrialEnded):
            event = executor.next_event()
    finally:
        executor.close()
    assert event.error is not None and "holds more than plain data" in event.error, event
    assert not event.lost and not marker.exists()


@pytest.mark.parametrize("task, refusal", [
    ("toy", "is missing or unreadable"),  # the toy task's checkpoints are JSON: never unpickled
    pytest.param("text_classifier", "holds more than plain data", marks=pytest.mark.slow)])
def test_suite_run_resume_with_a_crafted_checkpoint_fails_that_trial_and_creates_nothing(
        tmp_path, task, refusal):
    """End to end: a live study (one in-process worker) stopped by a real SIGINT with a
    trial in flight; its pinned checkpoint is swapped for the crafted file; `suite run
    --resume` then ends that trial `failed` with the refusal (as README says) and runs
    on to the budget; the file is never created and nothing logged is rewritten."""
    import os
    import signal

    from suite.log import read_rows
    from suite.study import Stopped, StudySpec, run_study

    spec = StudySpec(task=task, optimizers=("random",), seeds=(0,), budget="6e",
                     scale="tiny", executor="inprocess")

    def on_run(name, seed, runner):
        def on_row(row, runner):
            if row["event"] == "epoch" and row["epoch"] == 2:
                os.kill(os.getpid(), signal.SIGINT)
        runner.on_row = on_row

    out = tmp_path / "study"
    with pytest.raises(Stopped):
        run_study(spec, out, on_run=on_run)
    run = out / "random" / "seed-0"
    stopped = read_rows(run)
    last = [r for r in stopped if r["event"] == "epoch"][-1]
    pinned = run / "checkpoints" / f"{last['trial_id']}.e{last['epoch']}.pt"
    assert pinned.is_file() and stopped[-1]["event"] != "finish"
    marker = tmp_path / "marker"
    _crafted(pinned, marker)

    proc = subprocess.run([sys.executable, "-m", "suite.cli", "run", "--resume", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert not marker.exists(), "resuming the checkpoint ran its code"
    rows = read_rows(run)
    assert rows[:len(stopped)] == stopped, "nothing logged is rewritten"
    (ended,) = [r for r in rows[len(stopped):] if r.get("trial_id") == last["trial_id"]]
    assert ended["event"] == "end" and ended["status"] == "failed"
    assert f"checkpoint {pinned} {refusal}" in ended["error"]
    assert rows[-1]["event"] == "finish" and rows[-1]["reason"] == "budget"
