"""The catalogue of bad inputs: each is one line on stderr, exit code 2, no traceback, and
nothing already on disk is modified (and nothing new is written).

Every case runs the real CLI entry point (`suite.cli.main`) in a shared workspace holding
a finished study, tables, run folders and data copies; the workspace is fingerprinted
before and after each case. An exception escaping `main` (a traceback) fails the case.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import subprocess
import sys
import urllib.error
from pathlib import Path

import pytest

from suite.cli import main
from suite.log import LOG_NAME, META_NAME
from suite.study import STUDY_NAME
from suite.tables import read_table, write_table
from suite.testing import toy_table
from tasks import data

TOY_RUN = ["run", "--task", "toy", "--optimizer", "random", "--budget", "2x"]
TINY = ["--scale", "tiny", "--device", "cpu"]


def _rewrite_meta(run: Path, **changes) -> None:
    meta = json.loads((run / META_NAME).read_text())
    (run / META_NAME).write_text(json.dumps({**meta, **changes}))


def _drop_finish_row(run: Path) -> None:
    lines = (run / LOG_NAME).read_text().splitlines(keepends=True)
    (run / LOG_NAME).write_text("".join(lines[:-1]))


def _cuda(count: int):
    """A setup: this process sees `count` CUDA devices (none: no CUDA at all)."""
    def setup(ws, monkeypatch) -> None:
        import torch

        monkeypatch.setattr(torch.cuda, "is_available", lambda: count > 0)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: count)
    return setup


def _with(row: dict, **changes) -> dict:
    return {**row, **changes}


LOG_EDITS = {  # (folder: how its run's log was damaged), as rows → rows
    "log_epoch_twice": lambda rows: rows[:2] + rows[1:],
    "log_epoch_missing": lambda rows: rows[:2] + rows[3:],
    "log_row_a_number": lambda rows: rows[:1] + [3] + rows[2:],
    "log_row_empty": lambda rows: rows[:1] + [{}] + rows[2:],
    "log_seconds_a_string": lambda rows: rows[:1] + [_with(rows[1], device_seconds="0.5")]
    + rows[2:],
    "log_seconds_negative": lambda rows: rows[:1] + [_with(rows[1], device_seconds=-0.5)]
    + rows[2:],
    "log_seconds_infinite": lambda rows: rows[:1] + [_with(rows[1], device_seconds=math.inf)]
    + rows[2:],
    "log_epoch_a_string": lambda rows: rows[:1] + [_with(rows[1], epoch="1")] + rows[2:],
}


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Path:
    """A workspace: a finished toy study, doctored copies of it, tables, data, files."""
    ws = tmp_path_factory.mktemp("ws")
    assert main([*TOY_RUN[:-1], "1x", "--executor", "inprocess", "--out", str(ws / "study")]) == 0
    run = Path("random", "seed-0")
    for name, changes in (("foreign_task", {"task": "text_classifier"}),
                          ("foreign_optimizer", {"optimizer": "tpe"}),
                          ("foreign_budget", {"budget": "9x"})):
        shutil.copytree(ws / "study", ws / name)
        _rewrite_meta(ws / name / run, **changes)
        _drop_finish_row(ws / name / run)  # unfinished, so --resume would reopen it
    shutil.copytree(ws / "study", ws / "corrupt_plan")
    (ws / "corrupt_plan" / STUDY_NAME).write_text("{not json")
    shutil.copytree(ws / "study" / run, ws / "corrupt_log")
    lines = (ws / "corrupt_log" / LOG_NAME).read_text().splitlines(keepends=True)
    lines[1] = '{"event": "epo\n'  # damaged in the middle: not a torn last line
    (ws / "corrupt_log" / LOG_NAME).write_text("".join(lines))
    shutil.copytree(ws / "study" / run, ws / "invalid_row")
    lines = (ws / "invalid_row" / LOG_NAME).read_text().splitlines(keepends=True)
    lines[1] = json.dumps({**json.loads(lines[1]), "event": "epoch_done"}) + "\n"
    (ws / "invalid_row" / LOG_NAME).write_text("".join(lines))

    for name, edit in LOG_EDITS.items():  # a study whose run's log breaks an invariant
        shutil.copytree(ws / "study", ws / name)
        log = ws / name / run / LOG_NAME
        rows = [json.loads(line) for line in log.read_text().splitlines()]
        log.write_text("".join(json.dumps(row) + "\n" for row in edit(rows)))
    shutil.copytree(ws / "study", ws / "planned_on_gpus")  # unfinished: it would train
    plan = json.loads((ws / "planned_on_gpus" / STUDY_NAME).read_text())
    (ws / "planned_on_gpus" / STUDY_NAME).write_text(json.dumps(
        {**plan, "devices": ["cuda:0", "cuda:1"]}))
    _drop_finish_row(ws / "planned_on_gpus" / run)
    shutil.copytree(ws / "study", ws / "plan_a_list")
    (ws / "plan_a_list" / STUDY_NAME).write_text("[]")
    for name, budget in (("plan_carps_other_space", "5x"), ("plan_carps_not_x", "500e")):
        shutil.copytree(ws / "study", ws / name)  # resolved for a space of another size
        plan = json.loads((ws / name / STUDY_NAME).read_text())
        (ws / name / STUDY_NAME).write_text(json.dumps(
            {**plan, "budget": budget, "budget_spelling": "1carps"}))
    shutil.copytree(ws / "study", ws / "meta_a_list")
    (ws / "meta_a_list" / run / META_NAME).write_text('["toy"]')

    toy = toy_table(ws / "toy.parquet", seeds=1)
    table = read_table(toy)
    write_table(ws / "incomplete.parquet", table.frame.iloc[:-1].to_dict("records"), table.meta)
    write_table(ws / "other_task.parquet", table.frame.to_dict("records"),
                {**table.meta, "task": "text_classifier"})
    for name, seconds in (("negative_time", -1.0), ("infinite_time", math.inf)):
        frame = table.frame.copy()
        frame.loc[5, "device_seconds"] = seconds
        write_table(ws / f"{name}.parquet", frame.to_dict("records"), table.meta)
    (ws / "garbage.parquet").write_bytes(b"PAR1 not really")
    import torch

    torch.save({"format": 2}, ws / "format_only.pt")
    (ws / "blocker").write_text("a regular file: nothing can be created below it\n")
    (ws / "garbage.pt").write_bytes(b"\x80\x04 not a checkpoint")
    (ws / "manifest.json").write_text("[1, 2")

    rel = "madewithml/dataset.csv"
    (ws / "data_edited" / "madewithml").mkdir(parents=True)
    shutil.copy(data.fetch(rel), ws / "data_edited" / rel)
    with open(ws / "data_edited" / rel, "a") as f:
        f.write("999,an edited row,,other\n")
    (ws / "data_empty").mkdir()
    _nested_and_not_utf8(ws, run)
    return ws


DEEP = "[" * 1000 + "]" * 1000  # nested deeper than the JSON decoder's stack


def _nested_and_not_utf8(ws: Path, run: Path) -> None:
    """Plans, logs, metas, configurations and a manifest, nested too deeply or not UTF-8."""
    plan = json.loads((ws / "study" / STUDY_NAME).read_text())
    for name, text in (("plan_seed_2_40", json.dumps({**plan, "seeds": [2**40]})),
                       ("plan_nested_deeply", '{"task": ' + DEEP + "}")):
        shutil.copytree(ws / "study", ws / name)
        (ws / name / STUDY_NAME).write_text(text)
    shutil.copytree(ws / "study", ws / "plan_not_utf8")
    (ws / "plan_not_utf8" / STUDY_NAME).write_bytes(b'{"task": "t\xe9"}')
    shutil.copytree(ws / "study", ws / "log_nested_deeply")
    log = ws / "log_nested_deeply" / run / LOG_NAME
    lines = log.read_text().splitlines(keepends=True)
    log.write_text("".join([lines[0], '{"event": ' + DEEP + "}\n", *lines[1:]]))
    shutil.copytree(ws / "study", ws / "meta_nested_deeply")
    (ws / "meta_nested_deeply" / run / META_NAME).write_text('{"task": ' + DEEP + "}")
    (ws / "deep.json").write_text('{"lr": ' + DEEP + "}")
    (ws / "latin1.json").write_bytes(b'{"schedule": "\xe9"}')
    (ws / "deep_manifest.json").write_text('{"figures": ' + DEEP + "}")


def _offline(monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise urllib.error.URLError("Temporary failure in name resolution")
    monkeypatch.setattr(data.urllib.request, "urlopen", refuse)


# (id, argv with {ws} for the workspace, the message's telling part, setup or None)
CASES = [
    # suite run: task, optimizer, budget, seeds, flags
    ("run-unknown-task", ["run", "--task", "nope", "--optimizer", "random", "--budget", "2x"],
     "unknown task 'nope'", None),
    ("run-unknown-optimizer", ["run", "--task", "toy", "--optimizer", "random,simplex",
                               "--budget", "2x"], "unknown optimizer(s) simplex", None),
    ("run-missing-optimizer", ["run", "--task", "toy", "--budget", "2x"],
     "--optimizer is required", None),
    ("budget-no-unit", [*TOY_RUN[:-1], "20"], "malformed budget", None),
    ("budget-negative", [*TOY_RUN[:-2], "--budget=-3x"], "malformed budget", None),
    ("budget-zero", [*TOY_RUN[:-1], "0x"], "must be positive", None),
    ("budget-unknown-unit", [*TOY_RUN[:-1], "20y"], "malformed budget", None),
    ("budget-nan", [*TOY_RUN[:-1], "nanx"], "malformed budget", None),
    ("budget-carps-zero", [*TOY_RUN[:-1], "0carps"], "must be positive", None),
    ("budget-carps-negative", [*TOY_RUN[:-2], "--budget=-1carps"], "malformed budget", None),
    ("budget-carps-no-number", [*TOY_RUN[:-1], "carps"], "malformed budget", None),
    ("budget-carps-two-points", [*TOY_RUN[:-1], "1.2.3carps"], "malformed budget", None),
    ("budget-carps-misspelt", [*TOY_RUN[:-1], "1carp"], "malformed budget", None),
    ("budget-carps-huge", [*TOY_RUN[:-1], "10000000carps"], "must be at most 1e+06 CARP-S",
     None),
    ("resume-plan-carps-another-space", ["run", "--resume", "{ws}/plan_carps_other_space"],
     "was resolved from 1carps for another search space", None),
    ("resume-plan-carps-not-x", ["run", "--resume", "{ws}/plan_carps_not_x"],
     "expected CARP-S budgets resolved to x", None),
    ("seeds-reversed", [*TOY_RUN, "--seeds", "4-1"], "malformed seed range", None),
    ("seeds-letters", [*TOY_RUN, "--seeds", "a"], "malformed seeds", None),
    ("seeds-open-range", [*TOY_RUN, "--seeds", "1-"], "malformed seeds", None),
    ("seed-and-seeds", [*TOY_RUN, "--seed", "1", "--seeds", "0-2"], "not both", None),
    ("workers-zero", [*TOY_RUN, "--workers", "0"], "must be in 1..1024", None),
    ("workers-huge", [*TOY_RUN, "--workers", "1000000000"], "must be in 1..1024, got", None),
    ("fuse-max-huge", [*TOY_RUN, "--fuse", "auto", "--fuse-max", "1000000000"],
     "--fuse-max must be an integer in 1..256", None),
    ("seed-negative", [*TOY_RUN, "--seed=-1"], "seed -1 is outside 0..4294967295", None),
    ("seed-above-2-32", [*TOY_RUN, "--seed", "99999999999"],
     "seed 99999999999 is outside 0..4294967295", None),
    ("seeds-above-2-32", [*TOY_RUN, "--seeds", "0-100000000000"],
     "seed 100000000000 is outside", None),
    ("seeds-too-many", [*TOY_RUN, "--seeds", "0-4000000000"],  # refused before materialized
     "4000000001 runs (optimizers × seeds) exceed the limit of 10000", None),
    ("runs-too-many", [*TOY_RUN[:4], "random,tpe", *TOY_RUN[5:], "--seeds", "0-5000"],
     "10002 runs (optimizers × seeds) exceed the limit of 10000", None),
    ("budget-overflows", [*TOY_RUN[:-1], "1" + "0" * 400 + "x"], "must be at most 1e9", None),
    ("budget-above-limit", [*TOY_RUN[:-1], "2000000000e"], "must be at most 1e9", None),
    ("unknown-promotion", [*TOY_RUN, "--promotion", "lazy"], "invalid choice", None),
    ("unknown-executor", [*TOY_RUN, "--executor", "cloud"], "invalid choice", None),
    ("out-below-a-file", [*TOY_RUN, "--out", "{ws}/blocker/study"], "cannot write", None),
    ("out-holds-a-study", [*TOY_RUN, "--out", "{ws}/study"], "already holds a study", None),
    ("out-not-empty", [*TOY_RUN, "--out", "{ws}/data_edited"], "exists and is not empty",
     None),
    ("out-a-file", [*TOY_RUN, "--out", "{ws}/blocker"], "blocker is a file", None),
    ("out-empty-string", [*TOY_RUN, "--out="], "--out is empty", None),
    # suite run --devices: a device that is not there would fail every trial, forever
    ("devices-not-a-device", [*TOY_RUN, "--devices", "gpu7"], "--devices 'gpu7' is not a device",
     None),
    ("devices-a-fruit", [*TOY_RUN, "--devices", "cpu,banana"], "'banana' is not a device", None),
    ("devices-negative-index", [*TOY_RUN, "--devices", "cuda:-1"], "'cuda:-1' is not a device",
     None),
    ("devices-cuda-without-cuda", [*TOY_RUN, "--devices", "cuda:0"],
     "--devices cuda:0: no CUDA device is available on this machine", _cuda(0)),
    ("devices-bare-cuda-without-cuda", [*TOY_RUN, "--devices", "cuda", "--workers", "2"],
     "--devices cuda: no CUDA device", _cuda(0)),
    ("devices-index-past-the-count", [*TOY_RUN, "--devices", "cuda:0,cuda:2"],
     "--devices cuda:2: this machine has 2 CUDA devices (cuda:0..cuda:1)", _cuda(2)),
    ("devices-in-process-past-the-count", [*TOY_RUN, "--executor", "inprocess", "--devices",
                                           "cuda:1"], "this machine has 1 CUDA device ",
     _cuda(1)),
    ("resume-planned-on-gpus-without-cuda", ["run", "--resume", "{ws}/planned_on_gpus"],
     "planned_on_gpus was planned with --devices cuda:0,cuda:1: --devices cuda:0: no CUDA",
     _cuda(0)),
    ("resume-planned-on-two-gpus-with-one", ["run", "--resume", "{ws}/planned_on_gpus"],
     "--devices cuda:1: this machine has 1 CUDA device", _cuda(1)),
    # suite run: the Ray executor and fault flags
    ("ray-not-installed", [*TOY_RUN, "--executor", "ray", "--out", "{ws}/r"],
     "--executor ray needs Ray, an optional extra: pip install 'hpo-suite[ray]'",
     lambda ws, mp: mp.setitem(sys.modules, "ray", None)),  # `import ray` then fails
    ("address-without-ray", [*TOY_RUN, "--address", "head:6379"],
     "--address is for --executor ray", None),
    ("gpus-without-ray", [*TOY_RUN, "--gpus-per-trial", "0.5"],
     "--gpus-per-trial is for --executor ray", None),
    ("gpus-fraction-above-one", [*TOY_RUN, "--executor", "ray", "--gpus-per-trial", "1.5"],
     "a fraction in 0..1 or a whole number", None),
    ("gpus-negative", [*TOY_RUN, "--executor", "ray", "--gpus-per-trial=-1"],
     "a fraction in 0..1 or a whole number", None),
    ("ray-with-devices", [*TOY_RUN, "--executor", "ray", "--devices", "cuda:0"],
     "no meaning with --executor ray", None),
    ("trial-timeout-zero", [*TOY_RUN, "--trial-timeout", "0"], "must be positive", None),
    ("trial-timeout-inf", [*TOY_RUN, "--trial-timeout", "inf"], "at most 604800", None),
    ("trial-timeout-nan", [*TOY_RUN, "--trial-timeout", "nan"], "at most 604800", None),
    ("trial-timeout-1e300", [*TOY_RUN, "--trial-timeout", "1e300"], "at most 604800", None),
    ("trial-timeout-not-a-number", [*TOY_RUN, "--trial-timeout", "soon"],
     "invalid float value", None),
    ("trial-timeout-in-a-replay", [*TOY_RUN, "--table", "{ws}/toy.parquet", "--trial-timeout",
                                   "60"], "a replay (--table) has no wall clock per trial",
     None),
    # suite run --resume
    ("resume-with-plan-flags", ["run", "--resume", "{ws}/study", "--task", "toy"],
     "--resume takes its settings from the study; drop --task", None),
    ("resume-with-out", ["run", "--resume", "{ws}/study", "--out", "{ws}/x"], "drop --out", None),
    ("resume-with-include-default", ["run", "--resume", "{ws}/study", "--include-default"],
     "drop --include-default", None),
    ("resume-with-workers-zero", ["run", "--resume", "{ws}/study", "--workers", "0"],
     "drop --workers", None),
    ("resume-plan-seed-2-40", ["run", "--resume", "{ws}/plan_seed_2_40"],
     "seed 1099511627776 is outside 0..4294967295", None),
    ("resume-plan-nested-deeply", ["run", "--resume", "{ws}/plan_nested_deeply"],
     "nested too deeply", None),
    ("resume-plan-not-utf8", ["run", "--resume", "{ws}/plan_not_utf8"], "utf-8", None),
    ("resume-log-nested-deeply", ["run", "--resume", "{ws}/log_nested_deeply"],
     "log.jsonl:2: corrupt line", None),
    ("resume-with-trial-timeout", ["run", "--resume", "{ws}/study", "--trial-timeout", "5"],
     "drop --trial-timeout", None),
    ("resume-address-not-ray", ["run", "--resume", "{ws}/study", "--address", "head:6379"],
     "--address is for --executor ray; ", None),
    ("resume-not-a-study", ["run", "--resume", "{ws}/nowhere"], "not a study folder", None),
    ("resume-corrupt-plan", ["run", "--resume", "{ws}/corrupt_plan"], "unreadable", None),
    ("resume-another-task", ["run", "--resume", "{ws}/foreign_task"], "belongs to another run",
     None),
    ("resume-another-optimizer", ["run", "--resume", "{ws}/foreign_optimizer"],
     "belongs to another run", None),
    ("resume-another-budget", ["run", "--resume", "{ws}/foreign_budget"],
     "belongs to another run", None),
    # a damaged or hand-edited log, plan or meta: on --resume and in suite report
    ("resume-log-epoch-twice", ["run", "--resume", "{ws}/log_epoch_twice"],
     "log.jsonl:3: epoch 1 of trial 0 after its epoch 1", None),
    ("resume-log-epoch-missing", ["run", "--resume", "{ws}/log_epoch_missing"],
     "log.jsonl:3: epoch 3 of trial 0 after its epoch 1", None),
    ("resume-log-row-a-number", ["run", "--resume", "{ws}/log_row_a_number"],
     "log.jsonl:2: bad row (a JSON int, not an object)", None),
    ("resume-log-seconds-infinite", ["run", "--resume", "{ws}/log_seconds_infinite"],
     "log.jsonl:2: bad epoch row (device_seconds inf", None),
    ("resume-plan-a-list", ["run", "--resume", "{ws}/plan_a_list"], "a JSON list, not an object",
     None),
    ("resume-meta-a-list", ["run", "--resume", "{ws}/meta_a_list"],
     "meta.json: bad meta (a JSON list, not an object)", None),
    ("report-log-epoch-twice", ["report", "{ws}/log_epoch_twice", "--out", "{ws}/r"],
     "log.jsonl:3: epoch 1 of trial 0", None),
    ("report-log-row-empty", ["report", "{ws}/log_row_empty", "--out", "{ws}/r"],
     "log.jsonl:2: bad row (unknown event None)", None),
    ("report-log-seconds-a-string", ["report", "{ws}/log_seconds_a_string", "--out", "{ws}/r"],
     "log.jsonl:2: bad epoch row ('device_seconds' is str, not int or float)", None),
    ("report-log-seconds-negative", ["report", "{ws}/log_seconds_negative", "--out", "{ws}/r"],
     "log.jsonl:2: bad epoch row (device_seconds -0.5", None),
    ("report-log-seconds-infinite", ["report", "{ws}/log_seconds_infinite", "--out", "{ws}/r"],
     "log.jsonl:2: bad epoch row (device_seconds inf", None),
    ("report-log-epoch-a-string", ["report", "{ws}/log_epoch_a_string", "--out", "{ws}/r"],
     "log.jsonl:2: bad epoch row ('epoch' is str, not int)", None),
    ("report-log-nested-deeply", ["report", "{ws}/log_nested_deeply", "--out", "{ws}/r"],
     "log.jsonl:2: corrupt line", None),
    ("report-meta-nested-deeply", ["report", "{ws}/meta_nested_deeply", "--out", "{ws}/r"],
     "meta.json is unreadable", None),
    ("report-fidelity-beyond-the-table", ["report", "--table", "{ws}/toy.parquet", "--out",
                                          "{ws}/r", "--fidelities", "1,3,99"],
     "--fidelities 99 is beyond the 27 epochs", None),
    ("report-fidelity-beyond-the-runs", ["report", "{ws}/study", "--out", "{ws}/r",
                                         "--fidelities", "1,999"],
     "--fidelities 999 is beyond the 27 epochs", None),
    ("report-meta-a-list", ["report", "{ws}/meta_a_list", "--out", "{ws}/r"],
     "meta.json: bad meta (a JSON list", None),
    # suite run --table (replay)
    ("table-missing", [*TOY_RUN, "--table", "{ws}/missing.parquet"], "does not exist", None),
    ("table-corrupt", [*TOY_RUN, "--table", "{ws}/garbage.parquet"],
     "corrupt or not a suite table", None),
    ("table-negative-time", [*TOY_RUN, "--table", "{ws}/negative_time.parquet"],
     "row 5 has device_seconds -1.0, not a finite, non-negative time", None),
    ("table-infinite-time", [*TOY_RUN, "--table", "{ws}/infinite_time.parquet"],
     "row 5 has device_seconds inf", None),
    ("report-table-infinite-time", ["report", "--table", "{ws}/infinite_time.parquet", "--out",
                                    "{ws}/r"], "row 5 has device_seconds inf", None),
    ("table-of-another-task", [*TOY_RUN, "--table", "{ws}/other_task.parquet"],
     "recorded for task 'text_classifier', not 'toy'", None),
    ("table-incomplete", [*TOY_RUN, "--table", "{ws}/incomplete.parquet"], "incomplete", None),
    ("table-default-missing", [*TOY_RUN, "--table"], "results/tables/toy.parquet does not exist",
     None),
    ("table-with-devices", [*TOY_RUN, "--table", "{ws}/toy.parquet", "--devices", "cuda:0"],
     "--devices has no meaning", None),
    ("table-with-live-executor", [*TOY_RUN, "--table", "{ws}/toy.parquet", "--executor",
                                  "local"], "drop --executor local", None),
    ("table-other-scale", [*TOY_RUN, "--table", "{ws}/toy.parquet", "--scale", "tiny"],
     "recorded at scale 'full'", None),
    # suite train: configurations, epochs, checkpoints, data
    ("train-unknown-task", ["train", "--task", "nope"], "unknown task 'nope'", None),
    ("config-unknown-key", ["train", "--task", "small_lm", *TINY, "--config", '{"colour": 1}'],
     "unknown hyperparameter", None),
    ("config-out-of-range", ["train", "--task", "small_lm", *TINY, "--config", '{"lr": 5}'],
     "out of range", None),
    ("config-inactive-value", ["train", "--task", "small_lm", *TINY, "--config",
                               '{"momentum": 0.9}'], "inactive", None),
    ("config-unknown-category", ["train", "--task", "small_lm", *TINY, "--config",
                                 '{"schedule": "step"}'], "schedule", None),
    ("config-malformed-json", ["train", "--task", "small_lm", *TINY, "--config", "{oops"],
     "invalid JSON", None),
    ("config-missing-file", ["train", "--task", "small_lm", *TINY, "--config",
                             "{ws}/missing.json"], "missing.json", None),
    ("config-nested-deeply-file", ["train", "--task", "small_lm", *TINY, "--config",
                                   "{ws}/deep.json"], "deep.json: invalid JSON (JSON nested",
     None),
    ("config-nested-deeply-inline", ["train", "--task", "small_lm", *TINY, "--config",
                                     '{"lr": ' + DEEP + "}"], "--config: invalid JSON", None),
    ("config-not-utf8", ["train", "--task", "small_lm", *TINY, "--config", "{ws}/latin1.json"],
     "latin1.json: not UTF-8 text (byte 0xe9 at offset 14)", None),
    ("train-save-below-a-file", ["train", "--task", "toy", "--epochs", "1", "--save",
                                 "{ws}/blocker/c.pt"], "blocker, a file", None),
    ("train-save-a-folder", ["train", "--task", "toy", "--epochs", "1", "--save", "{ws}/study"],
     "must name a file, not a folder", None),
    ("train-test-without-save", ["train", "--task", "toy", "--epochs", "1", "--test"],
     "--test needs --save PATH", None),
    ("train-seed-negative", ["train", "--task", "toy", "--seed=-1"], "seed -1 is outside", None),
    ("epochs-zero", ["train", "--task", "small_lm", *TINY, "--epochs", "0"], "outside 1..27",
     None),
    ("epochs-above-max", ["train", "--task", "text_classifier", *TINY, "--epochs", "28"],
     "outside 1..27", None),
    ("epochs-not-a-number", ["train", "--task", "small_lm", *TINY, "--epochs", "three"],
     "invalid int value", None),
    ("checkpoint-missing", ["train", "--task", "small_lm", *TINY, "--epochs", "2",
                            "--resume-from", "{ws}/missing.pt"], "does not exist", None),
    ("checkpoint-format-only", ["train", "--task", "small_lm", *TINY, "--epochs", "2",
                                "--resume-from", "{ws}/format_only.pt"],
     "format_only.pt lacks 'task': not a complete suite checkpoint", None),
    ("checkpoint-corrupt", ["train", "--task", "small_lm", *TINY, "--epochs", "2",
                            "--resume-from", "{ws}/garbage.pt"], "garbage.pt", None),
    ("data-missing-offline", ["train", "--task", "text_classifier", *TINY, "--epochs", "1"],
     "cannot download madewithml/dataset.csv",
     lambda ws, mp: (mp.setenv("SUITE_DATA_DIR", str(ws / "data_empty")), _offline(mp))),
    ("data-checksum-mismatch", ["train", "--task", "text_classifier", *TINY, "--epochs", "1"],
     "does not match", lambda ws, mp: mp.setenv("SUITE_DATA_DIR", str(ws / "data_edited"))),
    # suite tabulate
    ("tabulate-unknown-task", ["tabulate", "--task", "nope", "--out", "{ws}/t.parquet"],
     "unknown task 'nope'", None),
    ("tabulate-corrupt-table", ["tabulate", "--task", "toy", "--out", "{ws}/garbage.parquet"],
     "corrupt", None),
    ("tabulate-table-of-another-task", ["tabulate", "--task", "toy", "--out",
                                        "{ws}/other_task.parquet"], "text_classifier", None),
    ("tabulate-workers-huge", ["tabulate", "--task", "toy", "--workers", "1000000000", "--out",
                               "{ws}/t.parquet"], "--workers in 1..1024", None),
    ("tabulate-time-limit-nan", ["tabulate", "--task", "toy", "--time-limit", "nan", "--out",
                                 "{ws}/t.parquet"], "--time-limit must be positive, finite", None),
    ("tabulate-devices-not-a-device", ["tabulate", "--task", "toy", "--devices", "gpu7",
                                       "--out", "{ws}/t.parquet"], "'gpu7' is not a device",
     None),
    ("tabulate-cuda-without-cuda", ["tabulate", "--task", "toy", "--devices", "cuda:0",
                                    "--out", "{ws}/t.parquet"], "no CUDA device", _cuda(0)),
    ("tabulate-out-below-a-file", ["tabulate", "--task", "toy", "--executor", "inprocess",
                                   "--out", "{ws}/blocker/t.parquet"], "blocker", None),
    # suite report and suite figures
    ("report-missing-folder", ["report", "{ws}/nowhere"], "does not exist", None),
    ("report-corrupt-log", ["report", "{ws}/corrupt_log", "--out", "{ws}/r"], "corrupt line",
     None),
    ("report-invalid-row", ["report", "{ws}/invalid_row", "--out", "{ws}/r"],
     "log.jsonl:2: bad row (unknown event 'epoch_done')", None),
    ("report-corrupt-table", ["report", "--table", "{ws}/garbage.parquet", "--out", "{ws}/r"],
     "corrupt or not a suite table", None),
    ("report-out-below-a-file", ["report", "{ws}/study", "--out", "{ws}/blocker/r"], "blocker",
     None),
    ("figures-corrupt-manifest", ["figures", "--manifest", "{ws}/manifest.json"],
     "manifest.json", None),
    ("figures-manifest-nested-deeply", ["figures", "--manifest", "{ws}/deep_manifest.json"],
     "deep_manifest.json is not a figure manifest", None),
    ("unknown-subcommand", ["frobnicate"], "invalid choice", None),
]


def _fingerprint(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            + str(p.stat().st_mtime_ns) for p in sorted(root.rglob("*")) if p.is_file()}


def test_the_catalogue_is_large_and_its_ids_unique():
    assert len(CASES) >= 25 and len({c[0] for c in CASES}) == len(CASES)


@pytest.mark.parametrize("argv, message, setup", [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_exit_2_and_touches_nothing(ws, argv, message, setup, capsys,
                                                           monkeypatch):
    monkeypatch.chdir(ws)
    if setup is not None:
        setup(ws, monkeypatch)
    before = _fingerprint(ws)
    capsys.readouterr()
    try:
        code = main([a.replace("{ws}", str(ws)) for a in argv])
    except SystemExit as exc:  # argparse's usage errors
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1, err
    assert message in err, err
    assert _fingerprint(ws) == before, "an existing file was modified or a new one written"


IN_A_REAL_PROCESS = ["run-unknown-task", "table-corrupt", "config-out-of-range",
                     "resume-another-task", "seed-above-2-32", "config-nested-deeply-file"]


@pytest.mark.parametrize("case", IN_A_REAL_PROCESS)
def test_a_real_process_prints_one_line_and_no_traceback(ws, case):
    """What `main` returns is what the shell sees, warnings at import time included."""
    argv = next(c[1] for c in CASES if c[0] == case)
    before = _fingerprint(ws)
    proc = subprocess.run([sys.executable, "-m", "suite.cli",
                           *[a.replace("{ws}", str(ws)) for a in argv]],
                          capture_output=True, text=True, cwd=ws, timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert _fingerprint(ws) == before
