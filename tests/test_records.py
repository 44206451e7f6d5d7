"""The log's rows and the run's meta as typed records: old logs read as before, new rows
carry the format, and a bad row or meta is one clear error naming file and line."""

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from suite.budget import Totals, parse_budget
from suite.cli import main
from suite.log import (
    LOG_NAME,
    META_NAME,
    LogError,
    RunLog,
    read_log,
    read_meta,
    read_rows,
    read_run_meta,
    read_runs,
)
from suite.records import (
    FORMAT,
    EndRow,
    EpochRow,
    Event,
    FinishRow,
    LogInvariants,
    RecommendRow,
    RetryRow,
    RowError,
    RunMeta,
    StartRow,
    check_row,
    parse_row,
)
from suite.types import Status, Trial

OLD_RUN = Path(__file__).parents[1] / "results" / "runs" / "text_classifier-live" / "random" \
    / "seed-0"

# Rows exactly as the runner wrote them before the records (format 1: no "v"), one of
# each kind and status path: a replay's (sim_time), then a live one's retry and end:
# a log that keeps every invariant (`LogInvariants`).
FORMAT_1_LINES = """\
{"asked_after": 0, "config": {"lr": 0.1, "width": 4}, "config_id": 0, "event": "start", \
"resumed_checkpoint": null, "resumed_from": null, "seed": 7, "sim_time": 0.0, \
"start_epoch": 0, "target_epochs": 2, "trial_id": 0, "wall_time": 0.0001}
{"config": {"lr": 0.1, "width": 4}, "config_id": 0, "device_seconds": 0.5, "epoch": 1, \
"event": "epoch", "ledger": {"device_seconds": 0.5, "epochs": 1, "full": 0.5}, "loss": 0.9, \
"metrics": {"val_accuracy": 0.5, "val_loss": 0.9}, "resumed_from": null, "sim_time": 0.5, \
"status": "running", "target_epochs": 2, "trial_id": 0, "wall_time": 0.0002, "worker": 0}
{"config": {"lr": 0.1, "width": 4}, "config_id": 0, "device_seconds": 0.5, "epoch": 2, \
"event": "epoch", "ledger": {"device_seconds": 1.0, "epochs": 2, "full": 1.0}, "loss": 0.8, \
"metrics": {"val_accuracy": 0.6, "val_loss": 0.8}, "resumed_from": null, "sim_time": 1, \
"status": "ok", "target_epochs": 2, "trial_id": 0, "wall_time": 0.0003, "worker": 0}
{"asked_after": 1, "config": {"lr": 0.1, "width": 4}, "config_id": 0, "event": "start", \
"resumed_checkpoint": "0.e2.pt", "resumed_from": 0, "seed": 7, "start_epoch": 2, \
"target_epochs": 4, "trial_id": 1, "wall_time": 1.5}
{"config": {"lr": 0.1, "width": 4}, "config_id": 0, "device_seconds": 0.5, "epoch": 3, \
"event": "epoch", "ledger": {"device_seconds": 1.5, "epochs": 3, "full": 1.5}, \
"loss": NaN, "metrics": {"val_loss": NaN}, "resumed_from": 0, "status": "failed", \
"target_epochs": 4, "trial_id": 1, "wall_time": 2.0, "worker": 1}
{"asked_after": 2, "config": {"lr": 0.2, "width": 8}, "config_id": 1, "event": "start", \
"resumed_checkpoint": null, "resumed_from": null, "seed": 8, "start_epoch": 0, \
"target_epochs": 2, "trial_id": 2, "wall_time": 2.1}
{"config": {"lr": 0.2, "width": 8}, "config_id": 1, "epoch": 0, "error": "worker died", \
"event": "retry", "resumed_checkpoint": null, "resumed_from": null, "target_epochs": 2, \
"trial_id": 2, "wall_time": 2.5}
{"config": {"lr": 0.2, "width": 8}, "config_id": 1, "epoch": 0, "error": null, \
"event": "end", "ledger": {"device_seconds": 1.5, "epochs": 3, "full": 1.5}, \
"resumed_from": null, "status": "cut", "target_epochs": 2, "trial_id": 2, "wall_time": 3.0}
{"event": "finish", "ledger": {"device_seconds": 1.5, "epochs": 3, "full": 1.5}, \
"reason": "budget", "wall_time": 3.1}
"""


def _frame_as_before(directory: Path) -> pd.DataFrame:
    """`read_runs` of one run as it was written before the records: the rows' JSON
    flattened, and five columns from meta.json read with `.get`."""
    rows = [json.loads(line) for line in (directory / LOG_NAME).read_text().splitlines()]
    meta = json.loads((directory / META_NAME).read_text())
    frame = pd.json_normalize(rows, sep=".")
    for key in ("task", "optimizer", "seed", "budget", "simulated"):
        frame[key] = meta.get(key)
    frame["run"] = str(directory)
    return frame


def _format_1_run(tmp_path: Path) -> Path:
    run = tmp_path / "old" / "random" / "seed-0"
    run.mkdir(parents=True)
    (run / META_NAME).write_text(json.dumps({"task": "toy", "optimizer": "random", "seed": 0,
                                             "budget": "2x", "simulated": True}))
    (run / LOG_NAME).write_text(FORMAT_1_LINES)
    return run


def _without_v(data: dict) -> dict:
    return {k: v for k, v in data.items() if k != "v"}


def _same_json(a, b) -> bool:  # NaN == NaN, as the bytes say
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def test_a_committed_old_log_reads_as_before():
    assert OLD_RUN.is_dir(), "the committed live runs are the old logs this reads"
    raw = [json.loads(line) for line in (OLD_RUN / LOG_NAME).read_text().splitlines()]
    assert not any("v" in row for row in raw), "a log written before the records"
    records = read_log(OLD_RUN)
    assert [r.event for r in records] == [row["event"] for row in raw]
    assert all(_same_json(_without_v(r.to_json()), row)
               for r, row in zip(records, raw, strict=True))
    assert read_rows(OLD_RUN) == raw
    pd.testing.assert_frame_equal(read_runs(OLD_RUN), _frame_as_before(OLD_RUN))


def test_a_committed_old_meta_reads_with_the_defaults_of_its_time():
    raw = json.loads((OLD_RUN / META_NAME).read_text())
    meta = read_run_meta(OLD_RUN)
    assert (meta.task, meta.optimizer, meta.seed, meta.budget) == (
        raw["task"], raw["optimizer"], raw["seed"], raw["budget"])
    assert "v" not in raw and "fuse" not in raw and meta.fuse == "off" and meta.fuse_max == 8
    assert meta.trial_timeout is None and meta.devices == tuple(raw["devices"])
    assert {k: v for k, v in read_meta(OLD_RUN).items() if k in raw} == raw


def test_format_1_rows_read_as_records_and_frame_as_before(tmp_path):
    run = _format_1_run(tmp_path)
    records = read_log(run)
    trial = Trial(0, {"lr": 0.1, "width": 4}, 2, 0)
    assert records[0] == StartRow(trial, 0, 0, 7, None, 0.0001, 0.0)
    assert records[2] == EpochRow(trial, 2, {"val_accuracy": 0.6, "val_loss": 0.8}, 0.8, 0.5,
                                  Totals(2, 1.0, 1.0), Status.OK, 0, 0.0003, 1)
    assert records[1].status is Status.RUNNING and records[4].status is Status.FAILED
    assert records[3].trial == Trial(1, {"lr": 0.1, "width": 4}, 4, 0, resume_from=0)
    assert records[3].sim_time is None and records[3].resumed_checkpoint == "0.e2.pt"
    assert records[5] == StartRow(Trial(2, {"lr": 0.2, "width": 8}, 2, 1), 0, 2, 8, None, 2.1)
    assert isinstance(records[6], RetryRow) and records[6].error == "worker died"
    assert records[7] == EndRow(Trial(2, {"lr": 0.2, "width": 8}, 2, 1), Status.CUT, 0, None,
                                Totals(3, 1.5, 1.5), 3.0)
    assert records[8] == FinishRow("budget", Totals(3, 1.5, 1.5), 3.1)
    lines = [json.loads(line) for line in FORMAT_1_LINES.splitlines()]
    assert all(_same_json(_without_v(r.to_json()), row)
               for r, row in zip(records, lines, strict=True))
    pd.testing.assert_frame_equal(read_runs(run), _frame_as_before(run))


def test_rows_written_now_carry_the_format_and_frame_as_format_1(tmp_path):
    old = _format_1_run(tmp_path)
    new = tmp_path / "new" / "random" / "seed-0"
    with RunLog.create(new, read_run_meta(old)) as log:
        for record in read_log(old):
            assert log.append(record)["v"] == FORMAT
    assert all(row["v"] == FORMAT for row in read_rows(new))
    assert json.loads((new / META_NAME).read_text())["v"] == FORMAT
    assert all(_same_json(a.to_json(), b.to_json())
               for a, b in zip(read_log(new), read_log(old), strict=True))
    before, after = read_runs(old), read_runs(new)
    assert list(after.columns) == list(before.columns)
    pd.testing.assert_frame_equal(after.drop(columns="run"), before.drop(columns="run"))


def test_a_toy_run_logs_records_that_read_back_equal(tmp_path):
    assert main(["run", "--task", "toy", "--optimizer", "hyperband", "--budget", "2x",
                 "--executor", "inprocess", "--out", str(tmp_path / "s")]) == 0
    run = tmp_path / "s" / "hyperband" / "seed-0"
    rows, records = read_rows(run), read_log(run)
    assert {row["event"] for row in rows} >= {"start", "epoch", "finish"}
    assert all(row["v"] == FORMAT for row in rows)
    assert all(_same_json(r.to_json(), row) for r, row in zip(records, rows, strict=True))
    assert all(parse_row(json.loads(json.dumps(r.to_json()))) == r for r in records
               if not (isinstance(r, EpochRow) and r.loss != r.loss))  # NaN != NaN
    assert "v" not in read_runs(run).columns


GOOD_EPOCH = json.loads(FORMAT_1_LINES.splitlines()[2])
BAD_ROWS = [  # (id, row, the telling part of the message)
    ("not-an-object", [1, 2], "a JSON list, not an object"),
    ("unknown-event", {**GOOD_EPOCH, "event": "epoch_done"}, "unknown event 'epoch_done'"),
    ("no-event", {k: v for k, v in GOOD_EPOCH.items() if k != "event"}, "unknown event None"),
    ("missing-field", {k: v for k, v in GOOD_EPOCH.items() if k != "loss"},
     "bad epoch row (no 'loss')"),
    ("wrong-type", {**GOOD_EPOCH, "epoch": "2"}, "'epoch' is str, not int"),
    ("bool-is-not-int", {**GOOD_EPOCH, "trial_id": True}, "'trial_id' is bool, not int"),
    ("float-epoch", {**GOOD_EPOCH, "epoch": 2.0}, "'epoch' is float, not int"),
    ("ledger-field", {**GOOD_EPOCH, "ledger": {"epochs": 2, "full": 1.0}},
     "no 'ledger.device_seconds'"),
    ("unknown-status", {**GOOD_EPOCH, "status": "crashed"}, "status 'crashed' is not one of"),
    ("sim-time", {**GOOD_EPOCH, "sim_time": "1"}, "'sim_time' is str"),
    ("bad-version", {**GOOD_EPOCH, "v": "2"}, "format '2' is not a version"),
    ("newer-format", {**GOOD_EPOCH, "v": FORMAT + 1}, f"v{FORMAT + 1}, written by a newer"),
]


@pytest.mark.parametrize("row, message", [c[1:] for c in BAD_ROWS], ids=[c[0] for c in BAD_ROWS])
def test_a_bad_row_is_one_error_naming_file_and_line(tmp_path, row, message):
    run = _format_1_run(tmp_path)
    lines = FORMAT_1_LINES.splitlines()
    lines[4] = json.dumps(row)
    (run / LOG_NAME).write_text("\n".join(lines) + "\n")
    with pytest.raises(RowError, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_row(row)
    for reader in (read_log, read_runs):
        with pytest.raises(LogError) as info:
            reader(run)
        text = str(info.value)
        assert text.startswith(f"{run / LOG_NAME}:5: ") and message in text, text
        assert "\n" not in text
    assert len(read_rows(run)) == 9, "the unchecked reader still gives the JSON as written"


def test_the_repair_marker_is_no_row_and_a_torn_line_is_skipped(tmp_path):
    run = _format_1_run(tmp_path)
    with open(run / LOG_NAME, "a") as f:
        f.write('{"event": "epoch", "tri')
    with RunLog.reopen(run):
        pass
    assert json.loads((run / LOG_NAME).read_text().splitlines()[-1])["event"] == Event.REPAIRED
    assert len(read_log(run)) == 9 and len(read_runs(run)) == 9


@pytest.mark.parametrize("changes, message", [
    ({"seed": "0"}, "'seed' is str, not int"),
    ({"simulated": 1}, "'simulated' is int, not bool"),
    ({"v": FORMAT + 1}, "written by a newer suite"),
])
def test_a_bad_meta_is_one_error_naming_the_file(tmp_path, changes, message):
    run = _format_1_run(tmp_path)
    meta = json.loads((run / META_NAME).read_text())
    (run / META_NAME).write_text(json.dumps({**meta, **changes}))
    for reader in (read_run_meta, read_runs):
        with pytest.raises(LogError, match=message) as info:
            reader(run)
        assert str(info.value).startswith(f"{run / META_NAME}: ")


def test_meta_round_trips_and_keeps_what_it_does_not_know(tmp_path):
    meta = {"task": "toy", "optimizer": "tpe", "seed": 3, "budget": "2x", "simulated": False,
            "devices": ["cpu"], "a_future_key": {"x": 1}}
    with RunLog.create(tmp_path / "run", meta):
        pass
    written = json.loads((tmp_path / "run" / META_NAME).read_text())
    assert written["v"] == FORMAT and written["a_future_key"] == {"x": 1}
    assert "table" not in written, "a live run's meta names no table"
    again = RunMeta.from_json(written)
    assert again.to_json() == written and again.devices == ("cpu",)
    assert again.extra == {"a_future_key": {"x": 1}}


def test_suite_report_refuses_a_bad_row_in_one_line(tmp_path, capsys):
    run = _format_1_run(tmp_path)
    shutil.copy(run / LOG_NAME, tmp_path / "good.jsonl")
    lines = FORMAT_1_LINES.splitlines()
    lines[1] = lines[1].replace('"status": "running"', '"status": "runing"')
    (run / LOG_NAME).write_text("\n".join(lines) + "\n")
    assert main(["report", str(tmp_path / "old"), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"{LOG_NAME}:2: bad epoch row" in err, err


def test_a_format_1_run_resumes_and_goes_on_in_format_2(tmp_path):
    """A run written before the records, cut short, continues where its log stops."""
    out = tmp_path / "s"
    argv = ["run", "--task", "toy", "--optimizer", "random", "--budget", "2x",
            "--executor", "inprocess", "--out", str(out)]
    assert main(argv) == 0
    run = out / "random" / "seed-0"
    uninterrupted = read_rows(run)
    # cut after a trial's last epoch, with none in flight: a finished run kept no checkpoints
    cut = max(i for i, row in enumerate(uninterrupted[:len(uninterrupted) // 2])
              if row["event"] == "epoch" and row["status"] != "running")
    kept = uninterrupted[:cut + 1]
    (run / LOG_NAME).write_text("".join(json.dumps(_without_v(row), sort_keys=True) + "\n"
                                        for row in kept))
    meta = _without_v(json.loads((run / META_NAME).read_text()))
    (run / META_NAME).write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")
    assert main(["run", "--resume", str(out)]) == 0
    rows = read_rows(run)
    assert ["v" in row for row in rows] == [False] * len(kept) + [True] * (len(rows) - len(kept))

    def timeless(rows):
        return [{k: v for k, v in row.items() if k not in ("v", "wall_time")} for row in rows]
    assert timeless(rows) == timeless(uninterrupted)


def _recommend(**changes) -> dict:
    """A recommend row of trial 0 of FORMAT_1_LINES, after its ok epoch (line 3)."""
    ok = json.loads(FORMAT_1_LINES.splitlines()[2])
    row = {"event": "recommend", **{k: ok[k] for k in ("trial_id", "config_id", "config",
                                                        "target_epochs", "resumed_from")},
           "loss": ok["loss"], "ledger": ok["ledger"], "wall_time": 0.0004, "v": FORMAT}
    return {**row, **changes}


def _check(rows) -> None:
    rules = LogInvariants()
    for row in rows:
        rules.add(row, check_row(row))


def test_a_recommend_row_reads_back_and_keeps_the_invariants():
    head = [json.loads(line) for line in FORMAT_1_LINES.splitlines()[:3]]
    row = _recommend()
    record = parse_row(row)
    assert isinstance(record, RecommendRow) and record.trial.trial_id == 0
    assert _same_json(record.to_json(), row)
    _check([*head, row])


@pytest.mark.parametrize("changes, message", [
    ({"trial_id": 1}, "which has not ended ok"),
    ({"loss": 0.7}, "differs from its ok epoch row"),
    ({"ledger": {"device_seconds": 1.0, "epochs": 1, "full": 1.0}}, "is not the total"),
    ({"v": FORMAT + 1}, "written by a newer suite"),
])
def test_a_bad_recommend_row_is_refused(changes, message):
    head = [json.loads(line) for line in FORMAT_1_LINES.splitlines()[:3]]
    with pytest.raises(RowError, match=message):
        _check([*head, _recommend(**changes)])


def test_a_recommend_row_is_written_on_a_change_only():
    head = [json.loads(line) for line in FORMAT_1_LINES.splitlines()[:3]]
    with pytest.raises(RowError, match="written on a change only"):
        _check([*head, _recommend(), _recommend(wall_time=0.0005)])


def _format_1_rows(**finish) -> list[dict]:
    rows = [json.loads(line) for line in FORMAT_1_LINES.splitlines()]
    rows[-1].update(finish)
    return rows


def _check_with(rows, **meta) -> None:
    rules = LogInvariants(**meta)
    for row in rows:
        rules.add(row, check_row(row))


def test_the_ledger_and_the_finish_reason_agree_with_meta_json():
    _check_with(_format_1_rows(), max_epochs=2, budget=parse_budget("1.5x"))  # spent: budget
    _check_with(_format_1_rows(reason="optimizer"), max_epochs=2, budget=parse_budget("2x"))
    with pytest.raises(RowError, match=r"ledger.full 0.5 is not its 1 epochs over max_epochs 3"):
        _check_with(_format_1_rows(), max_epochs=3)
    with pytest.raises(RowError, match="reason 'budget', but its ledger has not spent the "
                                       "budget 2x"):
        _check_with(_format_1_rows(), max_epochs=2, budget=parse_budget("2x"))
    with pytest.raises(RowError, match="reason 'optimizer', but its ledger has spent"):
        _check_with(_format_1_rows(reason="optimizer"), max_epochs=2,
                    budget=parse_budget("3e"))
    with pytest.raises(RowError, match="reason 'tired'"):
        _check(_format_1_rows(reason="tired"))


def test_read_log_checks_the_ledger_against_the_runs_meta_json(tmp_path):
    run = _format_1_run(tmp_path)
    read_log(run)  # an old meta.json without max_epochs: the ledger is not compared
    meta = json.loads((run / META_NAME).read_text())
    (run / META_NAME).write_text(json.dumps({**meta, "max_epochs": 2, "budget": "2x"}))
    with pytest.raises(LogError, match=r"log.jsonl:9: bad finish row \(reason 'budget', but"):
        read_log(run)
    (run / META_NAME).write_text(json.dumps({**meta, "max_epochs": 2, "budget": "1.5x"}))
    assert read_log(run)[-1].reason == "budget"
