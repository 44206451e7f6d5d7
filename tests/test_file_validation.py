"""Every file the suite reads is validated at the boundary (hypothesis): a damaged or
hand-edited log or table is read to the same result or refused with one line, never a
traceback and never silently changed numbers. The one tolerated damage: a torn last log
line (an interrupted append) reads as the rows before it."""

from __future__ import annotations

import json
import math
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from suite.log import LOG_NAME, LogError, read_log, read_runs
from suite.records import LogInvariants, RowError, check_row
from suite.study import StudySpec, run_study
from suite.tables import TableError, read_table, write_table
from suite.testing import toy_table

PROPERTY = settings(max_examples=120, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


# --- a valid log, written once by a real replayed run ------------------------------------

@pytest.fixture(scope="module")
def valid(tmp_path_factory):
    """(run folder, its log's lines, what `read_log` reads: each row's JSON)."""
    root = tmp_path_factory.mktemp("valid")
    table = toy_table(root / "toy.parquet", seeds=1)
    (outcome,) = run_study(StudySpec(task="toy", optimizers=("hyperband",), seeds=(1,),
                                     budget="3x", workers=2, table=str(table)), root / "s")
    lines = (outcome.directory / LOG_NAME).read_text().splitlines()
    assert 40 < len(lines) < 400 and json.loads(lines[-1])["event"] == "finish"
    return outcome.directory, lines, _read(outcome.directory)


def _read(run: Path) -> list[str]:
    return [json.dumps(r.to_json(), sort_keys=True) for r in read_log(run)]


def _outcome(run: Path, text: str) -> list[str] | str:
    """Write `text` as the log of a copy of `run`; its rows as read, or the one-line error
    both readers give. Any other exception escapes (and fails the test)."""
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "run"
        shutil.copytree(run, copy)
        (copy / LOG_NAME).write_text(text)
        try:
            rows = _read(copy)
        except LogError as exc:
            message = str(exc)
            assert "\n" not in message and message.startswith(f"{copy / LOG_NAME}:"), message
            with pytest.raises(LogError):
                read_runs(copy)
            return message
        assert len(read_runs(copy)) == len(rows), "read_runs reads what read_log reads"
        return rows


def _same_or_prefix(got: list[str], original: list[str]) -> bool:
    """The same rows (possibly another order the invariants allow: independent rows of
    the same instant), or the rows of the log cut after some row (a run killed there)."""
    return sorted(got) == sorted(original) or got == original[:len(got)]


# the fields of a row whose numbers the invariants guard ("loss": unless failed)
GUARDED = ("trial_id", "config_id", "target_epochs", "resumed_from", "start_epoch",
           "asked_after", "seed", "epoch", "device_seconds", "worker", "wall_time",
           "sim_time", "loss", "ledger.epochs", "ledger.device_seconds", "ledger.full")
# the fields a retype changes, and what to: every one is a type the field cannot hold
RETYPED = (*GUARDED, "event", "config", "status", "v", "ledger")
ODD = ("1", None, [1], {}, True, 1.5)


def _fields(row: dict) -> list[str]:
    return [*row, *(f"ledger.{k}" for k in row.get("ledger", {}))]


def _set(row: dict, name: str, value) -> dict:
    row = json.loads(json.dumps(row))
    if name.startswith("ledger."):
        row["ledger"][name.removeprefix("ledger.")] = value
    else:
        row[name] = value
    return row


@st.composite
def mutations(draw, lines: list[str]):
    """(name, the mutated text): drop, duplicate or swap rows, retype a field, set a
    guarded number to NaN, ±inf or -1, or cut a line short at any byte."""
    n = len(lines)
    kind = draw(st.sampled_from(["drop", "duplicate", "swap", "retype", "number", "cut"]))
    i = draw(st.integers(0, n - 1))
    out = list(lines)
    if kind == "drop":
        del out[i]
    elif kind == "duplicate":
        out.insert(i, out[i])
    elif kind == "swap":
        j = draw(st.integers(0, n - 1).filter(lambda j: j != i))
        out[i], out[j] = out[j], out[i]
    elif kind == "cut":
        cut = draw(st.integers(0, len(lines[i]) - 1))
        out[i] = lines[i][:cut]
        if i == n - 1:  # a torn last line: no newline after it
            return kind, i, "\n".join(out)
    else:
        row = json.loads(lines[i])
        names = [f for f in _fields(row) if f in (GUARDED if kind == "number" else RETYPED)]
        assume(names)
        name = draw(st.sampled_from(names))
        if kind == "number":
            values = [math.nan, math.inf, -math.inf]
            if name != "loss":
                values.append(-1)
            assume(not (name == "loss" and row["status"] == "failed"))
            value = draw(st.sampled_from(values))
        else:
            old = row[name] if "." not in name else row["ledger"][name[7:]]
            value = draw(st.sampled_from([v for v in ODD if type(v) is not type(old)
                                          and not (isinstance(old, float) and v == 1.5)]))
            assume(not (name == "resumed_from" and value is None))
        out[i] = json.dumps(_set(row, name, value), sort_keys=True)
    return kind, i, "\n".join(out) + "\n"


@PROPERTY
@given(data=st.data())
def test_a_mutated_log_reads_the_same_or_is_refused_in_one_line(valid, data):
    run, lines, original = valid
    kind, i, text = data.draw(mutations(lines))
    got = _outcome(run, text)
    if isinstance(got, str):
        return  # refused, in one line naming file and line
    assert _same_or_prefix(got, original), (kind, i, "read to another result, silently")
    if kind in ("retype", "number", "duplicate"):
        pytest.fail(f"{kind} of line {i + 1} was accepted")


@settings(PROPERTY, max_examples=40)
@given(data=st.data())
def test_a_torn_last_line_reads_as_the_rows_before_it(valid, data):
    run, lines, original = valid
    last = lines[-1]
    cut = data.draw(st.integers(1, len(last) - 1))
    text = "\n".join(lines[:-1]) + "\n" + last[:cut]
    assert _outcome(run, text) == original[:-1]


def test_each_invariant_is_one_line_naming_file_and_line(valid, tmp_path):
    run, lines, _ = valid
    rows = [json.loads(line) for line in lines]
    first_epoch = next(i for i, r in enumerate(rows) if r["event"] == "epoch")
    start = next(i for i, r in enumerate(rows) if r["event"] == "start")
    cases = [  # (line index, the row there, the telling part of the message)
        (first_epoch, _set(rows[first_epoch], "device_seconds", "0.5"),
         "'device_seconds' is str"),
        (first_epoch, _set(rows[first_epoch], "device_seconds", -0.5), "device_seconds -0.5"),
        (first_epoch, _set(rows[first_epoch], "device_seconds", math.inf),
         "device_seconds inf"),
        (first_epoch, _set(rows[first_epoch], "epoch", "1"), "'epoch' is str"),
        (first_epoch, _set(rows[first_epoch], "epoch", 2), "epoch 2 of trial"),
        (first_epoch, _set(rows[first_epoch], "ledger.epochs", 7), "is not the total"),
        (first_epoch, _set(rows[first_epoch], "loss", math.nan), "loss nan with status"),
        (first_epoch, 3, "a JSON int, not an object"),
        (first_epoch, {}, "unknown event None"),
        (start, _set(rows[start], "asked_after", 3), "asked after 3 results"),
    ]
    for case, (index, row, message) in enumerate(cases):
        edited = [*lines]
        edited[index] = json.dumps(row)
        (run_copy := tmp_path / f"case-{case}").mkdir()
        shutil.copy(run / "meta.json", run_copy)
        (run_copy / LOG_NAME).write_text("\n".join(edited) + "\n")
        for reader in (read_log, read_runs):
            with pytest.raises(LogError) as info:
                reader(run_copy)
            text = str(info.value)
            assert text.startswith(f"{run_copy / LOG_NAME}:{index + 1}: ") and message in text, \
                text
            assert "\n" not in text
    doubled = tmp_path / "doubled"
    doubled.mkdir()
    shutil.copy(run / "meta.json", doubled)
    (doubled / LOG_NAME).write_text("\n".join([*lines[:first_epoch + 1], lines[first_epoch],
                                               *lines[first_epoch + 1:]]) + "\n")
    with pytest.raises(LogError, match=f":{first_epoch + 2}: an epoch row of trial"):
        read_log(doubled)
    finished = tmp_path / "finished"
    finished.mkdir()
    shutil.copy(run / "meta.json", finished)
    (finished / LOG_NAME).write_text("\n".join([*lines, lines[start]]) + "\n")
    with pytest.raises(LogError, match=f":{len(lines) + 1}: a start row after the finish"):
        read_log(finished)


def test_the_invariants_alone_refuse_rows_out_of_order():
    rules = LogInvariants()
    start = {"event": "start", "trial_id": 0, "config_id": 0, "config": {}, "target_epochs": 2,
             "resumed_from": None, "start_epoch": 0, "asked_after": 0, "seed": 0,
             "resumed_checkpoint": None, "wall_time": 1.0}
    rules.add(start, check_row(start))
    earlier = {**start, "trial_id": 1, "wall_time": 0.5}
    with pytest.raises(RowError, match="before the row above's"):
        rules.add(earlier, check_row(earlier))


# --- a valid table -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def valid_table(tmp_path_factory):
    """(its rows, its metadata) of the toy table, one seed, its first 12 curves (fewer rows
    to write and read per example)."""
    path = toy_table(tmp_path_factory.mktemp("table") / "toy.parquet", seeds=1)
    table = read_table(path)
    rows = table.frame[table.frame["config_index"] < 12]
    return rows.to_dict("records"), {**table.meta, "recorded": 12, "complete": False}


@settings(PROPERTY, max_examples=40)
@given(data=st.data())
def test_a_mutated_table_reads_faithfully_or_is_refused_in_one_line(valid_table, data):
    rows, meta = valid_table
    rows = [dict(r) for r in rows]
    kind = data.draw(st.sampled_from(["seconds", "metric", "drop", "duplicate", "key"]))
    i = data.draw(st.integers(0, len(rows) - 1))
    value = data.draw(st.sampled_from([math.nan, math.inf, -math.inf, -1.0]))
    if kind == "seconds":
        rows[i]["device_seconds"] = value
    elif kind == "metric":
        rows[i]["val_loss"] = value
    elif kind == "drop":
        del rows[i]
    elif kind == "duplicate":
        rows.insert(i, dict(rows[i]))
    else:
        name = data.draw(st.sampled_from(["config_index", "seed", "epoch"]))
        rows[i][name] = data.draw(st.sampled_from([-1, 10**6]))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "t.parquet"
        write_table(path, rows, meta)
        try:
            table = read_table(path)
        except TableError as exc:
            assert "\n" not in str(exc) and str(path) in str(exc)
            assert kind != "metric", "a recorded metric may be NaN or infinite"
            return
    assert kind == "metric", f"{kind} of row {i} was accepted"
    row = rows[i]
    metrics, _ = table.epoch(row["config_index"], row["seed"], row["epoch"])
    assert metrics["val_loss"] == value or (np.isnan(value) and np.isnan(metrics["val_loss"]))


def test_a_table_whose_metadata_is_not_an_object_is_one_line(valid_table, tmp_path):
    rows, meta = valid_table
    for bad in ({**meta, "seeds": "1"}, {**meta, "max_epochs": 0}, {**meta, "metrics": [1]},
                {**meta, "recorded": 99}):
        write_table(tmp_path / "t.parquet", rows, bad)
        with pytest.raises(TableError, match="is damaged or was edited: ") as info:
            read_table(tmp_path / "t.parquet")
        assert "\n" not in str(info.value)
    frame = pd.DataFrame(rows).astype({"epoch": float})
    write_table(tmp_path / "t.parquet", frame.to_dict("records"), meta)
    with pytest.raises(TableError, match="column 'epoch' holds float64, not integers"):
        read_table(tmp_path / "t.parquet")


# --- a checkpoint ------------------------------------------------------------------------

@pytest.mark.parametrize("data, message", [
    ({"format": 2}, "lacks 'task': not a complete suite checkpoint"),
    ({"format": 2, "task": "small_lm", "scale": "tiny"}, "lacks 'config'"),
    ({"format": 2, "task": "small_lm", "scale": "tiny", "config": {}, "epoch": "3",
      "model": {}, "optimizer": {}, "scheduler": {}, "rng": {}, "data_rng": None},
     "holds a str as 'epoch', not a int"),
    ({"format": 2, "task": "small_lm", "scale": "tiny", "config": {}, "epoch": -1,
      "model": {}, "optimizer": {}, "scheduler": {}, "rng": {}, "data_rng": None},
     "holds a NoneType as 'data_rng'"),
])
def test_a_checkpoint_with_missing_or_mistyped_fields_is_one_line(tmp_path, data, message):
    torch = pytest.importorskip("torch")
    from suite.errors import CheckpointError
    from tasks.training import load_state

    torch.save(data, tmp_path / "c.pt")
    with pytest.raises(CheckpointError, match=message) as info:
        load_state(tmp_path / "c.pt", task="small_lm", scale="tiny", config={"lr": 0.1})
    assert "\n" not in str(info.value)


# --- a study's plan ----------------------------------------------------------------------

PLAN = {"task": "toy", "optimizers": ["random"], "seeds": [0], "budget": "2x"}


@pytest.mark.parametrize("plan, message", [
    ([], "a JSON list, not an object"),
    ({**PLAN, "workers": "2"}, "'workers' is str, not int"),
    ({**PLAN, "seeds": ["0"]}, "'seeds' is list, not a list of int"),
    ({**PLAN, "seeds": [-1]}, "seed -1 is outside 0..4294967295"),
    ({**PLAN, "seeds": [2**40]}, "seed 1099511627776 is outside 0..4294967295"),
    ({**PLAN, "seeds": list(range(10_001))}, "10001 runs .* exceed the limit of 10000"),
    ({**PLAN, "workers": 10**9}, "--workers must be in 1..1024"),
    ({**PLAN, "trial_timeout": 1e300}, "at most 604800"),
    ({**PLAN, "budget": "1" + "0" * 400 + "x"}, "must be at most 1e9 in its unit"),
    ({**PLAN, "fuse": "auto", "fuse_max": 10**9}, "--fuse-max must be an integer in 1..256"),
    ({**PLAN, "trial_timeout": math.inf}, "'trial_timeout' is inf, not a finite number"),
    ({**PLAN, "colour": 1}, "unknown key 'colour'"),
    ({k: v for k, v in PLAN.items() if k != "budget"}, "no 'budget'"),
])
def test_a_bad_plan_is_one_line_naming_the_file(tmp_path, plan, message):
    from suite.errors import SuiteError
    from suite.study import STUDY_NAME, load_study

    (tmp_path / STUDY_NAME).write_text(json.dumps(plan))
    with pytest.raises(SuiteError, match=message.replace("(", r"\(")) as info:
        load_study(tmp_path)
    assert str(info.value).startswith(str(tmp_path / STUDY_NAME)) and "\n" not in str(info.value)
    (tmp_path / STUDY_NAME).write_text(json.dumps(PLAN))
    assert load_study(tmp_path).seeds == (0,)
