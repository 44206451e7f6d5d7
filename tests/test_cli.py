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


def _in_process(capsys, *args) -> tuple[int, str]:
    """`suite ARGS` in this process (the path a real process takes from `main` on; what a
    real process prints is tests/test_bad_inputs.py's): exit code and stderr."""
    capsys.readouterr()
    try:
        code = main(list(args))
    except SystemExit as exc:  # argparse's own refusals
        code = exc.code
    return code, capsys.readouterr().err


def test_resume_refuses_conflicting_flags_and_foreign_runs(tmp_path, capsys):
    study = tmp_path / "s"
    code, err = _in_process(capsys, "run", "--task", "toy", "--optimizer", "random",
                            "--budget", "1x", "--out", str(study), "--executor", "inprocess")
    assert code == 0, err
    code, err = _in_process(capsys, "run", "--resume", str(study), "--task", "toy")
    assert code == 2 and "--resume takes its settings" in err
    # a run folder whose meta says it belongs to another optimizer is never resumed
    log = study / "random" / "seed-0" / "log.jsonl"
    meta = study / "random" / "seed-0" / "meta.json"
    lines = log.read_text().splitlines(keepends=True)
    log.write_text("".join(lines[:-1]))  # as if killed before the finish row
    meta.write_text(meta.read_text().replace('"optimizer": "random"', '"optimizer": "tpe"'))
    before = log.read_bytes()
    code, err = _in_process(capsys, "run", "--resume", str(study))
    assert code == 2 and "belongs to another run" in err
    assert "Traceback" not in err and log.read_bytes() == before
    code, err = _in_process(capsys, "run", "--task", "toy", "--optimizer", "random",
                            "--budget", "1x", "--out", str(study))
    assert code == 2 and "already holds a study" in err
