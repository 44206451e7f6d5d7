"""`suite tabulate` on the toy task: the table format, chunked collection, bad input,
signals."""

import json
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from suite.errors import SuiteError
from suite.log import LogError, numbered_rows
from suite.tables import TableError, read_table
from suite.tabulate import TabulateSpec, progress_path, tabulate
from suite.testing import ToyTask


@pytest.fixture(scope="module")
def toy_table(tmp_path_factory):
    out = tmp_path_factory.mktemp("table") / "toy.parquet"
    meta = tabulate(TabulateSpec(task="toy", out=out, seeds=2, executor="inprocess"))
    return out, meta


def test_table_holds_every_configuration_seed_and_epoch(toy_table):
    out, meta = toy_table
    table = read_table(out)
    assert meta["complete"] and table.complete and meta["configs"] == len(table.configs) == 288
    assert len(table.frame) == 288 * 2 * 27
    task = ToyTask()
    for index in (0, 101, 287):
        config = table.configs[index]
        metrics, seconds = table.epoch(index, 1, 9)
        assert metrics["val_loss"] == pytest.approx(task.curve(config, 9, seed=1))
        assert seconds == pytest.approx(task.epoch_seconds(config))
        assert table.config_index(config) == index
    inactive = table.frame[table.frame["config.kind"] == "plain"]["config.beta"]
    assert inactive.isna().all(), "an inactive hyperparameter is recorded as missing"
    assert meta["environment"]["versions"] and meta["history"][-1]["recorded"] == 576


def test_unknown_configuration_is_a_table_error(toy_table):
    with pytest.raises(TableError, match="not in the table's grid"):
        read_table(toy_table[0]).config_index({"lr": 0.5})


def test_interrupted_collection_resumes_and_equals_an_uninterrupted_one(toy_table, tmp_path):
    """A torn last line (an interrupted append) is repaired as a run's log is: a marker
    line appended after it, nothing rewritten; its curve is recorded again."""
    reference, _ = toy_table
    out = tmp_path / "toy.parquet"
    lines = progress_path(reference).read_text().splitlines(keepends=True)
    torn = "".join(lines[:100]) + lines[100][:40]
    progress_path(out).write_text(torn)
    meta = tabulate(TabulateSpec(task="toy", out=out, seeds=2, executor="inprocess"))
    assert meta["complete"]
    pd.testing.assert_frame_equal(read_table(out).frame, read_table(reference).frame)
    text = progress_path(out).read_text()
    assert text.startswith(torn + '\n{"event": "repaired_torn_line_above"}\n')
    assert len(numbered_rows(progress_path(out))) == 576, "each curve once, the torn one too"


def test_complete_table_without_progress_file_is_not_recorded_again(toy_table, tmp_path):
    out = tmp_path / "toy.parquet"
    out.write_bytes(toy_table[0].read_bytes())
    tabulate(TabulateSpec(task="toy", out=out, seeds=2, executor="inprocess"))
    assert out.read_bytes() == toy_table[0].read_bytes()
    assert not progress_path(out).exists()


def test_a_chunk_added_to_a_table_without_progress_file_never_records_its_curves_again(
        toy_table, tmp_path):
    """A committed table (no progress file) gets a second seed; that chunk stops after one
    curve, so a progress file exists again: going on trains only what neither holds."""
    reference, _ = toy_table
    out = tmp_path / "toy.parquet"
    tabulate(TabulateSpec(task="toy", out=out, seeds=1, executor="inprocess"))
    progress_path(out).unlink()  # as committed
    first_seed_one = next(row for _, row in numbered_rows(progress_path(reference))
                          if row["seed"] == 1)
    progress_path(out).write_text(json.dumps(first_seed_one) + "\n")  # the stopped chunk
    trained = []
    meta = tabulate(TabulateSpec(task="toy", out=out, seeds=2, executor="inprocess"),
                    on_curve=lambda *progress: trained.append(progress))
    assert meta["complete"] and len(trained) == 288 - 1, "seed 1's other curves, no more"
    pd.testing.assert_frame_equal(read_table(out).frame, read_table(reference).frame,
                                  check_like=True)  # the columns' order may differ


def test_corrupt_progress_line_is_an_error(tmp_path):
    out = tmp_path / "toy.parquet"
    progress_path(out).write_text("garbage\n{}\n")
    with pytest.raises(LogError, match="corrupt line"):
        tabulate(TabulateSpec(task="toy", out=out, executor="inprocess"))


def test_corrupt_table_is_one_clear_error(tmp_path):
    bad = tmp_path / "t.parquet"
    bad.write_bytes(b"PAR1 not really")
    with pytest.raises(TableError, match="corrupt or not a suite table"):
        read_table(bad)
    with pytest.raises(TableError, match="does not exist"):
        read_table(tmp_path / "missing.parquet")


def test_unwritable_output_is_one_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(SuiteError, match="cannot write"):
        tabulate(TabulateSpec(task="toy", out=blocker / "t.parquet", executor="inprocess"))


@pytest.mark.parametrize("signum, resume", [
    (signal.SIGINT, True), pytest.param(signal.SIGTERM, False, marks=pytest.mark.slow)],
    ids=["sigint-resumed", "sigterm"])
def test_a_signal_stops_tabulate_in_one_line_and_the_same_command_goes_on(tmp_path, signum,
                                                                        resume):
    """A real signal to `suite tabulate` once curves have landed: exit 130 or 143, one line,
    no traceback, the curves recorded kept, no table written; the same command again (here
    its function, in this process) records the rest."""
    out = tmp_path / "toy.parquet"
    command = [sys.executable, "-m", "suite.cli", "tabulate", "--task", "toy", "--executor",
               "inprocess", "--seeds", "1", "--out", str(out)]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    rows, deadline = progress_path(out), time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        if rows.exists() and rows.read_bytes().count(b"\n") >= 20:
            proc.send_signal(signum)
            break
        time.sleep(0.005)
    _, err = proc.communicate(timeout=120)
    name = signal.Signals(signum).name
    assert proc.returncode == 128 + signum, err
    assert err.splitlines() == [f"suite tabulate: interrupted ({name}): rerun the same "
                                f"command to go on from {rows}"]
    recorded = rows.read_bytes()
    assert 20 <= len(numbered_rows(rows)) < 288 and recorded.endswith(b"\n")
    assert not out.exists(), "the table is written when the curves are, not when stopped"
    if not resume:
        return
    meta = tabulate(TabulateSpec(task="toy", out=out, seeds=1, executor="inprocess"))
    assert meta["complete"] and rows.read_bytes().startswith(recorded)
    curves = [(row["config_index"], row["seed"]) for _, row in numbered_rows(rows)]
    assert sorted(curves) == [(i, 0) for i in range(288)] and read_table(out).complete
