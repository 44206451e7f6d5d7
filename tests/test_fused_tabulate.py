"""`suite tabulate --fuse auto` (issue 21): same-shape grid points train as fused arrays in
worker processes, with the metrics of solo tabulation bit for bit, every epoch charged its
shape's solo timing (`suite.tabulate.SOLO_TIMING`), resumable as a solo collection is.

The toy grid of `tests/fixtures/small_toy.py` (8 configurations, two shapes, 9 epochs)
keeps a fused collection to one worker process; its analytic epoch seconds make the
solo timing, and so a whole fused table, deterministic.
"""

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pandas as pd
import pytest

from suite.cli import main
from suite.errors import SuiteError
from suite.interrupt import Stopped
from suite.log import numbered_rows
from suite.tables import read_table, write_table
from suite.tabulate import DEVICE_SECONDS, SOLO_TIMING, TabulateSpec, progress_path, tabulate

FIXTURES = Path(__file__).parent / "fixtures"
TOY = "small_toy:SmallToy"


@pytest.fixture(autouse=True)
def _fixtures_importable(monkeypatch):
    """Workers are spawned: they find the fixture module on the path they inherit."""
    monkeypatch.syspath_prepend(str(FIXTURES))


def _fused(out, **kwargs):
    return TabulateSpec(task=TOY, out=out, seeds=2, fuse="auto", fuse_max=4, **kwargs)


def _solo(out, **kwargs):
    return TabulateSpec(task=TOY, out=out, executor="inprocess", **{"seeds": 2, **kwargs})


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    sys.path.insert(0, str(FIXTURES))  # the module fixture runs before `monkeypatch`
    try:
        root = tmp_path_factory.mktemp("fused")
        fused, solo = root / "fused.parquet", root / "solo.parquet"
        meta = tabulate(_fused(fused))
        tabulate(_solo(solo))
        return fused, solo, meta
    finally:
        sys.path.remove(str(FIXTURES))


@pytest.mark.slow  # the module's fused collection: a worker process (~15 s)
def test_fused_tabulation_records_the_metrics_of_solo_tabulation_bit_for_bit(tables):
    fused, solo, meta = tables
    a, b = read_table(fused), read_table(solo)
    assert meta["complete"] and a.complete and a.test_metrics == b.test_metrics == ("test_loss",)
    pd.testing.assert_frame_equal(a.frame.drop(columns="device_seconds"),
                                  b.frame.drop(columns="device_seconds"), check_exact=True)
    history = meta["history"][-1]
    assert history["fuse"] == "auto" and history["curves"] == 16
    assert sorted(history["arrays"]) == [4, 4, 4, 4], "two shapes × 8 curves, K=4: 4 arrays"


@pytest.mark.slow  # the module's fused collection: a worker process (~15 s)
def test_every_fused_epoch_is_charged_its_shapes_solo_timing(tables):
    """One meaning of device_seconds: a fused curve pays per epoch what its shape's solo
    runs measured (the median of their epochs), stored with how it was measured."""
    fused, _, meta = tables
    collection, table = meta["collection"], read_table(fused)
    assert collection["device_seconds"] == DEVICE_SECONDS and collection["fuse"] == "auto"
    timing = collection["solo_timing"]
    assert timing["method"] == SOLO_TIMING
    assert timing["curves"] == [[i, s] for i in range(8) for s in range(2)]
    shapes = {entry["shape"]: entry for entry in timing["shapes"]}
    assert set(shapes) == {"[16]", "[32]"}
    from small_toy import SmallToy
    task = SmallToy()
    for entry in shapes.values():  # one solo run (one worker) of the shape's first config
        first = entry["configs"][0]
        assert entry["workers"] == 1 and entry["epochs"] == 3 and len(entry["configs"]) == 1
        assert entry["measured"] == [[task.epoch_seconds(table.configs[first])] * 3]
        assert entry["seconds_per_epoch"] == task.epoch_seconds(table.configs[first])
        assert table.frame.loc[table.frame["config_index"] == first, "device_seconds"].eq(
            entry["seconds_per_epoch"]).all()
    for index, config in enumerate(table.configs):
        expected = shapes[json.dumps([config["batch_size"]])]["seconds_per_epoch"]
        rows = table.frame[table.frame["config_index"] == index]
        assert (rows["device_seconds"] == expected).all(), index
    assert read_table(fused).meta == meta


@pytest.mark.slow  # the module's fused collection: a worker process (~15 s)
def test_a_solo_chunk_after_a_fused_one_keeps_the_timing_and_one_meaning(tables, tmp_path):
    """Fused and solo chunks share one meaning: a later solo chunk (a third seed) records
    measured seconds beside the derived ones and keeps the provenance of both."""
    fused, _, meta = tables
    out = tmp_path / "t.parquet"
    out.write_bytes(fused.read_bytes())
    progress_path(out).write_bytes(progress_path(fused).read_bytes())
    more = tabulate(_solo(out, seeds=3))
    assert more["complete"] and more["collection"]["fuse"] == "off"
    assert more["collection"]["solo_timing"]["shapes"] == meta["collection"]["solo_timing"][
        "shapes"]
    assert more["collection"]["solo_timing"]["curves"] == meta["collection"]["solo_timing"][
        "curves"], "only the fused chunk's curves are charged from the timing"
    from small_toy import SmallToy
    table, task = read_table(out), SmallToy()
    third = table.frame[table.frame["seed"] == 2]
    for index, rows in third.groupby("config_index"):
        assert (rows["device_seconds"] == task.epoch_seconds(table.configs[index])).all()
    assert [h["fuse"] for h in more["history"]] == ["auto", "off"]


def test_a_fused_chunk_onto_a_table_of_another_meaning_is_refused(tmp_path):
    out = tmp_path / "t.parquet"
    tabulate(_solo(out, seeds=1))
    table = read_table(out)
    meta = {**table.meta, "collection": {**table.meta["collection"],
                                         "device_seconds": "each worker's share"}}
    write_table(out, table.frame.to_dict("records"), meta)
    before = out.read_bytes()
    with pytest.raises(SuiteError, match="never mixes two meanings"):
        tabulate(_fused(out))
    assert out.read_bytes() == before


@pytest.mark.parametrize("spec, message", [
    ({"executor": "inprocess"}, "--fuse auto needs the local executor"),
    ({"fuse_max": 0}, r"--fuse-max must be an integer in 1\.\.256"),
    ({"task": "small_toy:NoFuseToy"}, "cannot train fused arrays; use --fuse off"),
    ({"fuse": "sometimes"}, "unknown --fuse 'sometimes'")],
    ids=["inprocess", "fuse-max-0", "no-fused-capability", "unknown-mode"])
def test_bad_fuse_settings_are_refused_before_anything_is_written(tmp_path, spec, message):
    out = tmp_path / "t.parquet"
    base = {"task": TOY, "out": out, "fuse": "auto", "fuse_max": 4, **spec}
    with pytest.raises(SuiteError, match=message):
        tabulate(TabulateSpec(**base))
    assert not out.exists() and not progress_path(out).exists()


@pytest.mark.parametrize("args, message", [
    (["--fuse", "auto", "--fuse-max", "0"], "--fuse-max must be an integer in 1..256"),
    (["--fuse", "auto", "--executor", "inprocess"], "--fuse auto needs the local executor"),
    (["--fuse-max", "4"], "--fuse-max sizes fused arrays: give it with --fuse auto"),
    (["--fuse", "auto", "--task", "small_toy:NoFuseToy"], "cannot train fused arrays")],
    ids=["fuse-max-0", "inprocess", "fuse-max-alone", "no-fused-capability"])
def test_bad_fuse_arguments_are_one_line_exit_2(tmp_path, capsys, args, message):
    out = tmp_path / "t.parquet"
    task = [] if "--task" in args else ["--task", TOY]
    assert main(["tabulate", *task, "--out", str(out), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err
    assert not out.exists() and not progress_path(out).exists()


@pytest.mark.slow  # two collections in worker processes
def test_a_stopped_fused_collection_goes_on_to_the_uninterrupted_table(tables, tmp_path):
    """Stopped once three curves have landed: the shapes' timings and the curves recorded
    stay in the progress file; the same call again times nothing again and ends with the
    uninterrupted collection's table."""
    reference, _, meta = tables
    out, stop = tmp_path / "t.parquet", threading.Event()

    def on_curve(done, total):
        if done >= 3:
            stop.set()

    with pytest.raises(Stopped):
        tabulate(_fused(out), on_curve=on_curve, stop=stop)
    kept = progress_path(out).read_bytes()
    rows = [row for _, row in numbered_rows(progress_path(out))]
    assert not out.exists() and sum("shape_timing" in row for row in rows) == 2
    assert 3 <= sum("config_index" in row for row in rows) < 16
    again = tabulate(_fused(out))
    assert again["complete"] and progress_path(out).read_bytes().startswith(kept)
    rows = [row for _, row in numbered_rows(progress_path(out))]
    assert sum("shape_timing" in row for row in rows) == 2, "each shape timed once"
    pd.testing.assert_frame_equal(read_table(out).frame, read_table(reference).frame,
                                  check_exact=True)
    assert again["collection"]["solo_timing"] == meta["collection"]["solo_timing"]


@pytest.mark.slow  # a collection in a worker process
def test_a_progress_file_torn_after_one_shapes_timing_times_only_the_other(tables, tmp_path):
    """A crash after the first shape's timing and a few curves (its last line torn): the
    next collection keeps that timing, times the other shape and records the rest."""
    reference, _, _ = tables
    out = tmp_path / "t.parquet"
    lines = progress_path(reference).read_text().splitlines(keepends=True)
    assert "shape_timing" in lines[0] and "shape_timing" in lines[1]
    first_curves = [line for line in lines[2:] if '"config_index": 0,' in line
                    or '"config_index": 1,' in line]
    torn = lines[0] + "".join(first_curves[:3]) + first_curves[3][:30]
    progress_path(out).write_text(torn)
    assert tabulate(_fused(out))["complete"]
    rows = [row for _, row in numbered_rows(progress_path(out))]
    assert [row["shape_timing"]["shape"] for row in rows if "shape_timing" in row] == [
        json.loads(lines[0])["shape_timing"]["shape"],
        json.loads(lines[1])["shape_timing"]["shape"]]
    pd.testing.assert_frame_equal(read_table(out).frame, read_table(reference).frame,
                                  check_exact=True)


@pytest.mark.slow  # two CLI processes that import torch, each with a worker; a real task
def test_fused_tabulation_of_the_classifier_on_the_command_line_equals_solo(tmp_path):
    """`suite tabulate --fuse auto` of the text classifier (tiny scale, a two-configuration
    grid of one shape, 3 epochs, 2 seeds: one array of 4 members) records the validation
    and test metrics of a solo `suite tabulate` bit for bit, and the shape's solo timing."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(FIXTURES), str(Path(__file__).parent.parent), os.environ.get("PYTHONPATH", "")])}
    ref = "small_grid:TwoConfigClassifier"

    def tabulate_cli(out, *args):
        done = subprocess.run([sys.executable, "-m", "suite.cli", "tabulate", "--task", ref,
                               "--scale", "tiny", "--seeds", "2", "--out", str(out), *args],
                              env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr
        return read_table(out)

    fused = tabulate_cli(tmp_path / "fused.parquet", "--fuse", "auto", "--fuse-max", "4")
    solo = tabulate_cli(tmp_path / "solo.parquet", "--executor", "inprocess")
    assert fused.complete and fused.test_metrics == solo.test_metrics != ()
    pd.testing.assert_frame_equal(fused.frame.drop(columns="device_seconds"),
                                  solo.frame.drop(columns="device_seconds"), check_exact=True)
    timing = fused.meta["collection"]["solo_timing"]
    (shape,) = timing["shapes"]
    assert shape["epochs"] == 3 and len(shape["measured"][0]) == 3
    assert (fused.frame["device_seconds"] == shape["seconds_per_epoch"]).all()
    assert shape["seconds_per_epoch"] > 0 and fused.meta["history"][-1]["arrays"] == [4]
