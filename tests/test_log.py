import json

import pytest

from suite.log import LogError, RunLog, read_meta, read_rows, read_runs


def _write(tmp_path, rows, meta=None):
    with RunLog.create(tmp_path / "run", meta or {"task": "toy", "optimizer": "random",
                                                  "seed": 0}) as log:
        for row in rows:
            log.append(row)
    return tmp_path / "run"


def test_round_trip_and_dataframe(tmp_path):
    trial = [{"trial_id": i, "config_id": i, "config": {"lr": 0.1 * i}, "target_epochs": 1,
              "resumed_from": None} for i in range(3)]
    rows = [row for i in range(3) for row in (
        {"event": "start", **trial[i], "start_epoch": 0, "asked_after": i, "seed": i,
         "resumed_checkpoint": None, "wall_time": float(i)},
        {"event": "epoch", **trial[i], "epoch": 1, "metrics": {"val_loss": 1.0 / (i + 1)},
         "loss": 1.0 / (i + 1), "device_seconds": 0.5, "status": "ok", "worker": 0,
         "wall_time": float(i),
         "ledger": {"epochs": i + 1, "device_seconds": 0.5 * (i + 1), "full": i + 1.0}})]
    run = _write(tmp_path, rows)
    assert read_rows(run) == rows and read_meta(run)["optimizer"] == "random"
    frame = read_runs(tmp_path)
    assert list(frame["config.lr"]) == [0.0, 0.0, 0.1, 0.1, 0.2, 0.2]
    assert set(frame["optimizer"]) == {"random"}
    assert "metrics.val_loss" in frame


def test_create_refuses_an_existing_run(tmp_path):
    run = _write(tmp_path, [{"event": "start"}])
    before = (run / "log.jsonl").read_bytes()
    with pytest.raises(LogError, match="already holds a run"):
        RunLog.create(run, {})
    assert (run / "log.jsonl").read_bytes() == before


def test_torn_last_line_is_tolerated_and_repaired_by_appending(tmp_path):
    run = _write(tmp_path, [{"event": "start", "trial_id": 0}])
    with open(run / "log.jsonl", "a") as f:
        f.write('{"event": "epoch", "tri')
    before = (run / "log.jsonl").read_bytes()
    assert read_rows(run) == [{"event": "start", "trial_id": 0}]
    with RunLog.reopen(run) as log:
        log.append({"event": "epoch", "trial_id": 0})
    after = (run / "log.jsonl").read_bytes()
    assert after.startswith(before), "nothing already written is rewritten"
    assert read_rows(run) == [{"event": "start", "trial_id": 0},
                              {"event": "epoch", "trial_id": 0}]


def test_corrupt_line_in_the_middle_is_an_error(tmp_path):
    run = _write(tmp_path, [{"a": 1}])
    with open(run / "log.jsonl", "a") as f:
        f.write("garbage\n" + json.dumps({"b": 2}) + "\n")
    with pytest.raises(LogError, match=r"log.jsonl:2: corrupt line"):
        read_rows(run)


def test_unwritable_folder_is_one_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(LogError, match="cannot write the run folder"):
        RunLog.create(blocker / "run", {})


def test_read_runs_of_missing_root(tmp_path):
    with pytest.raises(LogError, match="does not exist"):
        read_runs(tmp_path / "nope")
