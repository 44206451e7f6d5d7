"""The CLI: help, listings, a tiny training run, and bad input as one line with exit 2."""

import json
import subprocess
import sys

import pytest

from suite.cli import main


def run_cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "suite.cli", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=300)


def test_help_lists_subcommands(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "tasks" in out and "train" in out


def test_tasks_lists_spaces_defaults_and_fidelity(capsys):
    assert main(["tasks"]) == 0
    out = capsys.readouterr().out
    for expected in ("small_lm", "text_classifier", "clr_ratio", "schedule == 'cyclic'",
                     "lr_patience", "epochs 1..27, eta 3"):
        assert expected in out


def test_train_tiny_prints_every_epoch_and_test_metrics(capsys, tmp_path):
    cfg = json.dumps({"width": 128, "depth": 2, "batch_size": 32})
    code = main(["train", "--task", "small_lm", "--scale", "tiny", "--epochs", "2",
                 "--device", "cpu", "--config", cfg, "--save", str(tmp_path / "m.pt"), "--test"])
    out = capsys.readouterr().out
    assert code == 0
    assert "epoch   1/2" in out and "epoch   2/2" in out and "test: test_loss" in out


BAD_INPUT = [
    (["train", "--task", "nope"], "unknown task 'nope'"),
    (["train", "--task", "small_lm", "--config", '{"colour": 1}'], "unknown hyperparameter"),
    (["train", "--task", "small_lm", "--config", '{"lr": 5}'], "out of range"),
    (["train", "--task", "small_lm", "--config", '{"momentum": 0.9}'], "inactive"),
    (["train", "--task", "small_lm", "--epochs", "0"], "outside 1..27"),
    (["train", "--task", "text_classifier", "--epochs", "28"], "outside 1..27"),
    (["train", "--task", "small_lm", "--config", "{oops"], "invalid JSON"),
    (["train", "--task", "small_lm", "--epochs", "three"], "invalid int value"),
    (["train", "--task", "small_lm", "--resume-from", "missing.pt", "--epochs", "2"],
     "does not exist"),
    (["frobnicate"], "invalid choice"),
]


@pytest.mark.parametrize("args, message", BAD_INPUT)
def test_bad_input_is_one_line_exit_2(args, message, tmp_path):
    proc = run_cli(*args, "--scale", "tiny", "--device", "cpu", cwd=tmp_path) if args[0] == \
        "train" else run_cli(*args, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert message in proc.stderr


RUN_BAD_INPUT = [
    (["--task", "toy", "--optimizer", "random", "--budget", "20"], "malformed budget"),
    (["--task", "toy", "--optimizer", "random", "--budget=-3x"], "malformed budget"),
    (["--task", "toy", "--optimizer", "simplex", "--budget", "2x"], "unknown optimizer"),
    (["--task", "nope", "--optimizer", "random", "--budget", "2x"], "unknown task"),
    (["--task", "toy", "--budget", "2x"], "--optimizer is required"),
    (["--task", "toy", "--optimizer", "random", "--budget", "2x", "--seeds", "4-1"],
     "malformed seed range"),
    (["--task", "toy", "--optimizer", "random", "--budget", "2x", "--seeds", "a"],
     "malformed seeds"),
    (["--task", "toy", "--optimizer", "random", "--budget", "2x", "--seed", "1", "--seeds",
      "0-2"], "not both"),
    (["--task", "toy", "--optimizer", "random", "--budget", "2x", "--workers", "0"],
     "at least 1"),
    (["--resume", "nowhere"], "not a study folder"),
    (["--task", "toy", "--optimizer", "random", "--budget", "2x", "--address", "h:6379"],
     "--address is for --executor ray"),
    (["--task", "toy", "--optimizer", "random", "--budget", "2x", "--gpus-per-trial", "0.5"],
     "--gpus-per-trial is for --executor ray"),
    (["--task", "toy", "--optimizer", "random", "--budget", "2x", "--executor", "ray",
      "--gpus-per-trial", "1.5"], "a fraction in 0..1 or a whole number"),
    (["--task", "toy", "--optimizer", "random", "--budget", "2x", "--executor", "ray",
      "--devices", "cuda:0"], "no meaning with --executor ray"),
    (["--task", "toy", "--optimizer", "random", "--budget", "2x", "--trial-timeout", "0"],
     "--trial-timeout must be positive"),
    (["--task", "toy", "--optimizer", "random", "--budget", "2x", "--table",
      "--trial-timeout", "60"], "a replay (--table) has no wall clock per trial"),
    (["--task", "toy", "--optimizer", "random", "--budget", "2x", "--trial-timeout", "soon"],
     "invalid float value"),
]


@pytest.mark.parametrize("args, message", RUN_BAD_INPUT)
def test_run_bad_input_is_one_line_exit_2(args, message, tmp_path):
    proc = run_cli("run", *args, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert message in proc.stderr
    assert not list(tmp_path.iterdir()), "nothing written for a rejected command"


def test_resume_refuses_conflicting_flags_and_foreign_runs(tmp_path):
    study = tmp_path / "s"
    ok = run_cli("run", "--task", "toy", "--optimizer", "random", "--budget", "1x",
                 "--out", str(study), "--executor", "inprocess")
    assert ok.returncode == 0, ok.stderr
    proc = run_cli("run", "--resume", str(study), "--task", "toy")
    assert proc.returncode == 2 and "--resume takes its settings" in proc.stderr
    proc = run_cli("run", "--resume", str(study), "--trial-timeout", "5")
    assert proc.returncode == 2 and "drop --trial-timeout" in proc.stderr
    proc = run_cli("run", "--resume", str(study), "--address", "head:6379")
    assert proc.returncode == 2 and "--address is for --executor ray" in proc.stderr
    # a run folder whose meta says it belongs to another optimizer is never resumed
    log = study / "random" / "seed-0" / "log.jsonl"
    meta = study / "random" / "seed-0" / "meta.json"
    lines = log.read_text().splitlines(keepends=True)
    log.write_text("".join(lines[:-1]))  # as if killed before the finish row
    meta.write_text(meta.read_text().replace('"optimizer": "random"', '"optimizer": "tpe"'))
    before = log.read_bytes()
    proc = run_cli("run", "--resume", str(study))
    assert proc.returncode == 2 and "belongs to another run" in proc.stderr
    assert "Traceback" not in proc.stderr and log.read_bytes() == before
    existing = run_cli("run", "--task", "toy", "--optimizer", "random", "--budget", "1x",
                       "--out", str(study))
    assert existing.returncode == 2 and "already holds a study" in existing.stderr
