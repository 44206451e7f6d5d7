"""A disk that fills while `suite run` or `suite tabulate` writes: one line on stderr, exit
code 2, no traceback, nothing already written changed; once space is freed, `suite run
--resume` ends with the rows of an uninterrupted run and `suite tabulate` goes on.

The disk fills two ways: a file-size limit (RLIMIT_FSIZE, with SIGXFSZ ignored, so a
write past it fails with EFBIG, as on a full disk), set in the child process; and a real
ENOSPC from a small tmpfs, remounted larger to free space (needs root and `mount`, else
skipped).
"""

import os
import re
import resource
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import crash_harness
import pytest

from suite.cli import main
from suite.log import numbered_rows, read_rows
from suite.tables import read_table
from suite.tabulate import progress_path
from suite.testing import toy_table

RUN = ["--optimizer", "random,hyperband", "--seeds", "0", "--workers", "2"]
CLASSIFIER = Path(__file__).resolve().parents[1] / "results/tables/text_classifier.parquet"


def _file_size_limit(limit: int):
    def preexec() -> None:  # in the child: a write past `limit` bytes fails with EFBIG
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
    return preexec


def _suite(*args, preexec=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "suite.cli", *map(str, args)],
                          env=dict(os.environ, PYTHONHASHSEED="0"), capture_output=True,
                          text=True, preexec_fn=preexec, timeout=600)


def _files(folder: Path) -> dict[Path, bytes]:
    # the lock file holds its current holder: rewritten by every writer, on purpose
    return {p: p.read_bytes() for p in folder.rglob("*") if p.is_file() and p.name != ".lock"}


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """A replayed study's arguments and its uninterrupted run."""
    work = tmp_path_factory.mktemp("full-disk")
    args = ["--task", "toy", "--table", toy_table(work / "toy.parquet", seeds=1), *RUN,
            "--budget", "3x"]
    proc = _suite("run", *args, "--out", work / "reference")
    assert proc.returncode == 0, proc.stderr
    return args, work / "reference"


def _fill_then_resume(args, reference: Path, out: Path, preexec=None, free=None) -> None:
    """Run until the disk is full, check the one line, free space, resume, compare."""
    proc = _suite("run", *args, "--out", out, preexec=preexec)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    (line,) = proc.stderr.splitlines()
    q = re.escape(str(out))
    assert re.fullmatch(rf"suite run: error: cannot write {q}/\S+/log\.jsonl: .+ \(disk full\?\); "
                        rf"resume with suite run --resume {q} after freeing space", line), line
    written = _files(out)
    # an empty log (a parallel run begun as the study stopped) has no line to be torn
    torn = [p for p, data in written.items()
            if p.name == "log.jsonl" and data and data[-1:] != b"\n"]
    if free is not None:
        free()
    proc = _suite("run", "--resume", out)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    for path, data in written.items():
        assert path.read_bytes()[:len(data)] == data, f"{path} was rewritten"
    for path in torn:  # the cut row stays, and a marker after it says so
        assert b'{"event": "repaired_torn_line_above"}\n' in path.read_bytes()[len(written[path]):]
    assert crash_harness.problems_of(reference, out) == []


def test_a_file_size_limit_mid_run_is_one_line_and_the_resume_equals_a_whole_run(toy,
                                                                                  tmp_path):
    args, reference = toy
    first = reference / "random" / "seed-0" / "log.jsonl"
    _fill_then_resume(args, reference, tmp_path / "s",
                      preexec=_file_size_limit(first.stat().st_size // 2))
    assert len(read_rows(tmp_path / "s" / "random" / "seed-0")) > 3, "it filled mid-run"


@pytest.mark.slow
def test_the_classifier_replay_under_a_file_size_limit_resumes_to_a_whole_run(tmp_path):
    args = ["--task", "text_classifier", "--table", CLASSIFIER, "--optimizer", "random,bohb",
            "--seeds", "0-1", "--workers", "2", "--budget", "10x"]
    proc = _suite("run", *args, "--out", tmp_path / "reference")
    assert proc.returncode == 0, proc.stderr
    _fill_then_resume(args, tmp_path / "reference", tmp_path / "s",
                      preexec=_file_size_limit(30_000))


@pytest.mark.slow  # the same path as the file-size limit, with ENOSPC instead of EFBIG
def test_enospc_from_a_full_tmpfs_is_one_line_and_the_resume_equals_a_whole_run(toy,
                                                                                tmp_path):
    args, reference = toy
    mount = tmp_path / "small"
    mount.mkdir()
    first = (reference / "random" / "seed-0" / "log.jsonl").stat().st_size
    size = 4096 * (4 + first // 2 // 4096)  # study.json, .lock, meta.json, half a log
    if shutil.which("mount") is None or subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)],
            capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        _fill_then_resume(args, reference, mount / "s", free=lambda: subprocess.run(
            ["mount", "-o", "remount,size=64m", str(mount)], check=True))
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def _tabulate(out: Path, capsys) -> tuple[int, list[str]]:
    code = main(["tabulate", "--task", "toy", "--executor", "inprocess", "--seeds", "1",
                 "--out", str(out)])
    return code, capsys.readouterr().err.splitlines()


def _under_limit(limit: int, call):
    """`call()` in this process with writes past `limit` bytes failing with EFBIG."""
    previous = resource.getrlimit(resource.RLIMIT_FSIZE)
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, previous[1]))
    try:
        return call()
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, previous)
        signal.signal(signal.SIGXFSZ, handler)


def test_tabulate_on_a_full_disk_is_one_line_and_the_same_command_goes_on(tmp_path, capsys):
    out = tmp_path / "toy.parquet"
    rows = progress_path(out)
    again = f"rerun the same command to go on from {rows} after freeing space"
    code, err = _under_limit(200_000, lambda: _tabulate(out, capsys))
    assert code == 2 and err == [
        f"suite tabulate: error: cannot write {rows}: File too large (disk full?); {again}"]
    recorded = rows.read_bytes()
    assert not out.exists() and recorded[-1:] != b"\n", "it filled mid-line, before the table"
    assert _tabulate(out, capsys) == (0, [])
    assert rows.read_bytes().startswith(recorded), "nothing recorded is rewritten"
    table = read_table(out)
    assert table.complete and len(numbered_rows(rows)) == 288 == len(table.configs)

    # the table itself does not fit: the curves are all recorded, the table is left as it was
    out.unlink()
    recorded = rows.read_bytes()
    code, err = _under_limit(100_000, lambda: _tabulate(out, capsys))
    assert code == 2 and len(err) == 1 and err[0].startswith(
        f"suite tabulate: error: cannot write {out}: ") and err[0].endswith(
        f"(disk full?); {again}"), err
    assert sorted(p.name for p in tmp_path.iterdir()) == [".toy.parquet.lock", rows.name]
    assert rows.read_bytes() == recorded
    assert _tabulate(out, capsys) == (0, [])
    assert read_table(out).frame.equals(table.frame)
