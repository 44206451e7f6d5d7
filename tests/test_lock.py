"""One writer per study: a second `suite run` into a live study is one line, exit 2, and
writes nothing; a SIGKILLed writer leaves no stale lock; a reader of a study being
written sees a consistent prefix. Writers here are real processes."""

from __future__ import annotations

import fcntl
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from suite.errors import SuiteError
from suite.lock import LOCK_NAME, LockedError, _write_holder, hold_lock
from suite.log import LOG_NAME, read_log, read_rows, read_runs
from suite.records import FinishRow
from suite.tabulate import TabulateSpec, tabulate
from suite.testing import toy_table


@pytest.fixture(scope="module")
def table(tmp_path_factory) -> Path:
    return toy_table(tmp_path_factory.mktemp("lock") / "toy.parquet", seeds=1)


def _cli(*args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "suite.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kwargs)


def _start_replay(table: Path, out: Path, budget: str) -> subprocess.Popen:
    """A replayed study whose driver is the process started (it holds the lock)."""
    return _cli("run", "--task", "toy", "--table", str(table), "--optimizer", "random",
                "--budget", budget, "--out", str(out), start_new_session=True)


def _wait_for_rows(proc: subprocess.Popen, log: Path, rows: int = 5) -> None:
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if log.exists() and log.read_bytes().count(b"\n") >= rows:
            return
        time.sleep(0.005)
    pytest.fail(f"the writer ended or wrote no rows: {proc.poll()}")


def _wait_until_stopped(pid: int) -> None:
    """SIGSTOP lands asynchronously: wait until the kernel reports the process stopped."""
    deadline = time.time() + 30
    while Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "T":
        assert time.time() < deadline, "the writer did not stop"
        time.sleep(0.005)


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def _one_line_refusal(proc: subprocess.Popen, holder: int) -> str:
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 2 and "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1, err
    assert f"is being written by process {holder} on {socket.gethostname()}" in err, err
    return err


def test_the_lock_names_its_holder_and_is_released_with_the_block(tmp_path):
    with hold_lock(tmp_path / "s", "study"):
        assert (tmp_path / "s" / LOCK_NAME).read_text().split()[:2] == [
            str(os.getpid()), socket.gethostname()]
        with pytest.raises(LockedError, match=rf"process {os.getpid()} on .* \(since "):
            with hold_lock(tmp_path / "s", "study"):
                pass
    with hold_lock(tmp_path / "s", "study"):  # released: taken again
        pass
    assert (tmp_path / "s" / LOCK_NAME).exists(), "the lock file is never deleted"


def test_a_rival_names_the_new_holder_not_the_dead_one_it_replaced(tmp_path):
    """The race behind a flaky refusal: a writer takes a lock whose file still names the
    dead previous holder, and names itself a moment later; a rival refused in between
    waits for that line instead of naming the dead process or 'another process'."""
    dead = subprocess.Popen([sys.executable, "-c", ""])
    dead.wait()
    (tmp_path / LOCK_NAME).write_text(f"{dead.pid} {socket.gethostname()} 2026-01-01 0 UTC\n"
                                      "a longer line than the new holder's, to be cut\n")
    fd = os.open(tmp_path / LOCK_NAME, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # held, its line not written yet
        threading.Timer(0.2, _write_holder, (fd,)).start()
        with pytest.raises(LockedError, match=rf"by process {os.getpid()} on "):
            with hold_lock(tmp_path, "study"):
                pass
    finally:
        os.close(fd)
    assert (tmp_path / LOCK_NAME).read_text().count("\n") == 1, "the old line was cut"


def test_a_folder_that_cannot_be_created_is_one_error(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(SuiteError, match="cannot write the study folder"):
        with hold_lock(tmp_path / "file" / "s", "study"):
            pass


def test_a_second_writer_is_refused_and_a_sigkilled_one_leaves_no_stale_lock(table, tmp_path):
    out = tmp_path / "study"
    log = out / "random" / "seed-0" / LOG_NAME
    first = _start_replay(table, out, "300x")
    _wait_for_rows(first, log)
    os.killpg(first.pid, signal.SIGSTOP)  # alive, holding the lock, writing nothing now
    try:
        _wait_until_stopped(first.pid)
        before = _snapshot(out)
        _one_line_refusal(_cli("run", "--resume", str(out)), first.pid)
        assert _snapshot(out) == before, "the refused writer wrote or changed a byte"
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    killed = read_rows(out / "random" / "seed-0")
    assert killed and killed[-1]["event"] != "finish", "killed before the end"

    # the kernel dropped the dead writer's lock; two resumes at once: one writes, and the
    # other is refused while it does (or, started later, finds the study complete)
    rivals = [_cli("run", "--resume", str(out)) for _ in range(2)]
    ends = [(p.wait(timeout=300), p.stderr.read()) for p in rivals]
    assert sorted(code for code, _ in ends) in ([0, 0], [0, 2]), ends
    for code, err in ends:
        if code == 2:
            assert "is being written by process" in err and len(err.strip().splitlines()) == 1
    rows = read_log(out / "random" / "seed-0")  # resumable: every row valid, in order, once
    assert read_rows(out / "random" / "seed-0")[:len(killed)] == killed, "nothing lost"
    assert len(rows) > len(killed) and sum(type(r) is FinishRow for r in rows) == 1
    assert type(rows[-1]) is FinishRow


def test_reading_a_study_being_written_sees_a_growing_consistent_prefix(table, tmp_path):
    out = tmp_path / "study"
    writer = _start_replay(table, out, "600x")  # long enough for several reads
    seen: list[int] = []
    try:
        _wait_for_rows(writer, out / "random" / "seed-0" / LOG_NAME, rows=1)
        while writer.poll() is None:
            frame = read_runs(out)  # never raises on a line being written
            seen.append(len(frame))
            from suite.cli import main

            if len(seen) == 3:  # one whole report of a study in mid-write
                assert main(["report", str(out), "--out", str(tmp_path / "report"),
                             "--bootstrap", "100", "--no-table-figures", "--no-pdf"]) == 0
    finally:
        if writer.poll() is None:
            os.killpg(writer.pid, signal.SIGKILL)
        writer.wait()
    assert writer.returncode == 0, writer.stderr.read()
    final = read_runs(out)
    assert len(seen) >= 3 and seen == sorted(seen) and seen[-1] <= len(final)
    assert (tmp_path / "report" / "report.md").exists()


def test_a_table_being_recorded_is_refused_to_a_second_tabulate(tmp_path):
    """This process holds the table's lock, as a running `suite tabulate` would."""
    out = tmp_path / "toy.parquet"
    with hold_lock(out, "table", lock_file=tmp_path / ".toy.parquet.lock"):
        before = _snapshot(tmp_path)
        with pytest.raises(LockedError, match=f"toy.parquet is being written by process "
                                              f"{os.getpid()} on "):
            tabulate(TabulateSpec(task="toy", out=out, seeds=1, executor="inprocess"))
        proc = _cli("tabulate", "--task", "toy", "--seeds", "1", "--executor", "inprocess",
                    "--out", str(out))
        _one_line_refusal(proc, os.getpid())
        assert _snapshot(tmp_path) == before, "the refused tabulate wrote a byte"
    meta = tabulate(TabulateSpec(task="toy", out=out, seeds=1, executor="inprocess"))
    assert meta["complete"] and out.exists()


def test_a_report_into_a_study_being_written_is_refused_and_elsewhere_goes_on(tmp_path, capsys):
    from suite.cli import main
    from suite.report import ReportOptions, build_report
    from suite.study import StudySpec, run_study

    table = toy_table(tmp_path / "toy.parquet", seeds=1)
    study = tmp_path / "study"
    run_study(StudySpec(task="toy", optimizers=("random",), seeds=(0,), budget="2x",
                        table=str(table)), study, jobs=1)
    quick = ReportOptions(resamples=100, table_figures=False, render=False)
    with hold_lock(study, "study"):  # as `suite run --resume` holds it while it writes
        assert main(["report", str(study)]) == 2
        err = capsys.readouterr().err
        assert "is being written by process" in err and "--out" in err
        assert err.count("\n") == 1 and not (study / "report").exists()
        build_report([study], tmp_path / "elsewhere", quick)  # a snapshot, written elsewhere
    with hold_lock(tmp_path / "elsewhere", "report",
                   lock_file=tmp_path / ".elsewhere.lock"), \
            pytest.raises(LockedError, match="elsewhere is being written"):
        build_report([study], tmp_path / "elsewhere", quick)  # two reports into one folder
    build_report([study], study / "report", quick)
    assert (study / "report" / "report.md").is_file()
