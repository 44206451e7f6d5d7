"""A task's revision (`TaskInfo.revision`): what its training means. A table or a run
recorded under another revision is refused in one line, never mixed in."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from suite.cli import main
from suite.errors import SuiteError
from suite.registry import check_task
from suite.tables import read_table, write_table
from suite.testing import ToyTask, toy_table

ROOT = Path(__file__).resolve().parents[1]
R1_TABLE = ROOT / "results/tables/small_lm-r1.parquet"


def _as_revision(path: Path, revision: int | None) -> Path:
    """The table at `path` rewritten as if recorded by `revision` (None: before revisions)."""
    table = read_table(path)
    meta = {k: v for k, v in table.meta.items() if k != "task_revision"}
    write_table(path, table.frame.to_dict("records"),
                meta if revision is None else {**meta, "task_revision": revision})
    return path


def _error(capsys, *args) -> str:
    assert main([str(a) for a in args]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    return line


def test_a_replay_of_another_revisions_table_is_refused_in_one_line(tmp_path, capsys):
    table = _as_revision(toy_table(tmp_path / "toy.parquet", seeds=1), 3)
    line = _error(capsys, "run", "--task", "toy", "--table", table, "--optimizer", "random",
                  "--budget", "1x", "--out", tmp_path / "out")
    assert line == (f"suite run: error: table {table} was recorded by revision 3 of task "
                    "'toy', which now trains as revision 1: its curves are not this task's; "
                    "record a new table with suite tabulate")
    assert not (tmp_path / "out").exists()
    # a table written before revisions were kept is revision 1's
    _as_revision(table, None)
    assert main(["run", "--task", "toy", "--table", str(table), "--optimizer", "random",
                 "--budget", "1x", "--out", str(tmp_path / "out")]) == 0


def test_the_small_lms_revision_1_table_is_refused(capsys, tmp_path):
    line = _error(capsys, "run", "--task", "small_lm", "--table", R1_TABLE, "--optimizer",
                  "random", "--budget", "1x", "--out", tmp_path / "out")
    assert "was recorded by revision 1 of task 'small_lm', which now trains as revision 2" \
        in line


def test_tabulate_never_adds_to_another_revisions_table(tmp_path, capsys):
    out = toy_table(tmp_path / "toy.parquet", seeds=1)
    before = _as_revision(out, 2).read_bytes()
    line = _error(capsys, "tabulate", "--task", "toy", "--executor", "inprocess", "--seeds", "2",
                  "--out", out)
    assert line == (f"suite tabulate: error: {out} was recorded by revision 2 of task 'toy', "
                    "which now trains as revision 1; choose another --out")
    assert out.read_bytes() == before


def test_a_live_run_of_another_revision_is_not_resumed(tmp_path, capsys):
    out = tmp_path / "live"
    assert main(["run", "--task", "toy", "--optimizer", "random", "--budget", "1x",
                 "--executor", "inprocess", "--out", str(out)]) == 0
    meta_path = out / "random" / "seed-0" / "meta.json"
    meta = json.loads(meta_path.read_text())
    assert meta["task_revision"] == 1
    meta_path.write_text(json.dumps({**meta, "task_revision": 2}))
    log = (out / "random" / "seed-0" / "log.jsonl").read_bytes()
    rows = log.splitlines(keepends=True)
    (out / "random" / "seed-0" / "log.jsonl").write_bytes(b"".join(rows[:-1]))  # unfinished
    capsys.readouterr()
    line = _error(capsys, "run", "--resume", out)
    assert line == (f"suite run: error: {out / 'random' / 'seed-0'} was trained by revision 2 "
                    "of task 'toy', which now trains as revision 1; refusing to resume it "
                    "(start a new study)")


def test_a_revision_is_an_integer_from_1():
    class Bad(ToyTask):
        info = replace(ToyTask.info, revision=0)

    with pytest.raises(SuiteError, match="TaskInfo.revision must be an integer from 1, got 0"):
        check_task(Bad())


@pytest.mark.parametrize("revision", ["2", 0, 1.5])
def test_a_tables_malformed_revision_is_one_line(tmp_path, capsys, revision):
    table = _as_revision(toy_table(tmp_path / "toy.parquet", seeds=1), revision)
    before = table.read_bytes()
    line = _error(capsys, "run", "--task", "toy", "--table", table, "--optimizer", "random",
                  "--budget", "1x", "--out", tmp_path / "out")
    assert line.startswith("suite run: error: ") and str(table) in line
    assert f"task_revision is {revision!r}, not an integer from 1" in line
    assert table.read_bytes() == before and not (tmp_path / "out").exists()
