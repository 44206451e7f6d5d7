"""Parallel replays (`--jobs N`, `--executor ray --table`): the serial study's logs, faster.

A replay's runs (optimizer × seed) run in worker processes or as Ray tasks; each run's
log must be the serial run's row for row apart from `wall_time`, the outcomes come back in
the plan's order, a signal stops the pool cleanly (exit 130, one line) and `--resume`
ends with the rows of an uninterrupted study.
"""

import os
import signal
import subprocess
import sys
import time

import crash_harness
import pytest

from suite.cli import main
from suite.errors import SuiteError
from suite.log import find_runs, read_rows
from suite.study import StudySpec, run_study
from suite.testing import toy_table


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    return toy_table(tmp_path_factory.mktemp("table") / "toy.parquet", seeds=1)


def _spec(table, **kw) -> StudySpec:
    return StudySpec(task="toy", optimizers=("random", "hyperband"), seeds=(0, 1),
                     budget="2x",
                     table=str(table), workers=2, **kw)


def _assert_same_logs(reference, other):
    runs = find_runs([reference])
    assert len(runs) == 4
    assert [r.relative_to(other) for r in find_runs([other])] == \
        [r.relative_to(reference) for r in runs]
    for run in runs:
        rows = crash_harness.comparable_rows(other / run.relative_to(reference))
        assert rows == crash_harness.comparable_rows(run), run
        assert rows[-1]["event"] == "finish"


def test_jobs_2_writes_the_logs_of_jobs_1_apart_from_wall_times(tmp_path, table):
    serial = run_study(_spec(table), tmp_path / "serial", jobs=1)
    seen = []
    parallel = run_study(_spec(table), tmp_path / "parallel", jobs=2,
                         on_run=lambda name, seed, run: seen.append((name, seed)))
    _assert_same_logs(tmp_path / "serial", tmp_path / "parallel")
    plan_order = [("random", 0), ("random", 1), ("hyperband", 0), ("hyperband", 1)]
    assert [(o.optimizer, o.seed) for o in parallel] == plan_order, "the plan's order"
    assert sorted(seen) == sorted(plan_order), "on_run told of every run as it ended"
    for a, b in zip(serial, parallel, strict=True):
        assert (a.reason, a.state.trials, a.ledger.totals) == \
            (b.reason, b.state.trials, b.ledger.totals)
        assert a.state.incumbent.loss == b.state.incumbent.loss
    # resuming a complete study with another --jobs: an execution choice, not the plan's
    again = run_study(_spec(table), tmp_path / "parallel", resume=True, jobs=1)
    assert [o.ledger.totals for o in again] == [o.ledger.totals for o in parallel]


def test_jobs_on_a_live_study_is_refused_in_one_line(tmp_path, capsys):
    code = main(["run", "--task", "toy", "--optimizer", "random", "--budget", "2x",
                 "--jobs", "2", "--executor", "inprocess", "--out", str(tmp_path / "s")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert "--jobs runs a replay's runs in parallel" in err
    assert not (tmp_path / "s").exists(), "refused before anything was written"


@pytest.mark.parametrize("jobs", [0, -1])
def test_jobs_out_of_range_is_refused(tmp_path, table, jobs):
    from suite.errors import SuiteError

    with pytest.raises(SuiteError, match="--jobs must be in 1.."):
        run_study(_spec(table), tmp_path / "s", jobs=jobs)


def _suite_run(*args):
    env = dict(os.environ, PYTHONHASHSEED="0")
    return subprocess.Popen([sys.executable, "-m", "suite.cli", "run", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow  # a study started three times in subprocesses: tens of seconds
def test_sigint_stops_the_pool_cleanly_and_the_study_resumes_to_the_serial_rows(
        tmp_path, table):
    """Ctrl-C reaches the driver and its workers (one process group): exit 130, one line,
    no traceback from any process; `--resume --jobs 2` ends with the serial rows."""
    args = ["--task", "toy", "--table", str(table), "--optimizer", "random,hyperband",
            "--budget", "2x", "--workers", "2", "--seeds", "0-1"]
    out = tmp_path / "stopped"
    proc = _suite_run(*args, "--jobs", "2", "--out", str(out))
    deadline = time.monotonic() + 180
    while proc.poll() is None and time.monotonic() < deadline:
        if out.exists() and crash_harness.count_rows(out) >= 3:
            proc.send_signal(signal.SIGINT)
            break
        time.sleep(0.005)
    _, err = proc.communicate(timeout=120)
    lines = [line for line in err.splitlines() if line.strip()]
    assert proc.returncode == 130, err
    assert lines == [f"suite run: interrupted (SIGINT): resume with suite run --resume {out}"]
    stopped = {run: read_rows(run) for run in find_runs([out])}
    assert stopped and any(not rows or rows[-1]["event"] != "finish"
                           for rows in stopped.values()), \
        "stopped mid-way"
    resumed = _suite_run("--resume", str(out), "--jobs", "2")
    assert resumed.wait(timeout=300) == 0, resumed.stderr.read()
    for run, rows in stopped.items():
        assert read_rows(run)[:len(rows)] == rows, "nothing rewritten"
    run_study(_spec(table), tmp_path / "ref", jobs=1)
    assert crash_harness.problems_of(tmp_path / "ref", out) == []


@pytest.mark.ray
def test_ray_tasks_on_a_local_instance_write_the_serial_logs(tmp_path, table):
    from suite.executors._ray import connect

    ray = connect(None, workers=2)
    try:
        assert ray.cluster_resources().get("CPU") == 2
        run_study(_spec(table), tmp_path / "serial", jobs=1)
        outcomes = run_study(_spec(table, executor="ray"), tmp_path / "ray")
        _assert_same_logs(tmp_path / "serial", tmp_path / "ray")
        assert [(o.optimizer, o.seed) for o in outcomes] == \
            [("random", 0), ("random", 1), ("hyperband", 0), ("hyperband", 1)]
    finally:
        ray.shutdown()


def test_a_worker_hands_back_only_its_run_and_reason(tmp_path, table):
    """A run's state (every trial) never goes through the result pipe: a large result
    blocks its worker forever once the pool no longer reads it; the driver reads the
    state from the run's log instead."""
    import pickle
    import threading

    from suite._parallel import _run_here
    from suite.study import _run_one_locked

    result = _run_here(_spec(table), tmp_path, "random", 0, threading.Event(), _run_one_locked)
    assert result == ("random", 0, "budget")
    assert len(pickle.dumps(result)) < 200


def test_an_orphaned_worker_exits_after_a_grace(monkeypatch):
    """A worker whose driver died stops its run, then exits: a SIGTERM only sets its
    stop flag, so nothing else would end it."""
    import threading

    from suite import _parallel

    class Exited(Exception):
        pass

    def fake_exit(code):
        raise Exited(code)

    monkeypatch.setattr(_parallel, "ORPHAN_GRACE", 0.0)
    monkeypatch.setattr(_parallel.os, "_exit", fake_exit)
    stop = threading.Event()
    stop.set()  # a SIGTERM already set it: the watcher still watches the parent
    with pytest.raises(Exited):
        _parallel._watch(lambda: False, os.getppid() + 1, stop, True)


def test_a_broken_pool_after_a_stop_is_a_stop_not_an_error(tmp_path):
    """Ctrl-C reaching a worker still starting up breaks the pool: the study stopped."""
    import threading
    from concurrent.futures import Future
    from concurrent.futures.process import BrokenProcessPool

    from suite import _parallel

    future = Future()
    future.set_exception(BrokenProcessPool("a worker died"))
    stop = threading.Event()
    stop.set()
    flag = threading.Event()
    assert _parallel._collect({future: ("random", 0)}, flag, stop, None, tmp_path,
                              lambda *r: r) == {}
    assert flag.is_set()
    stop.clear()
    with pytest.raises(SuiteError, match="a replay worker process died"):
        _parallel._collect({future: ("random", 0)}, flag, stop, None, tmp_path,
                           lambda *r: r)


@pytest.mark.slow  # a pool started in a subprocess: several seconds
def test_ctrl_c_while_the_pool_starts_stops_cleanly(tmp_path, table):
    """Ctrl-C reaches the whole process group while the spawned workers still import:
    exit 130 and one line, no traceback from any worker, no 'worker process died'."""
    out = tmp_path / "s"
    env = dict(os.environ, PYTHONHASHSEED="0")
    proc = subprocess.Popen(
        [sys.executable, "-m", "suite.cli", "run", "--task", "toy", "--table", str(table),
         "--optimizer", "random,hyperband", "--budget", "2x", "--workers", "2",
         "--seeds", "0-1", "--jobs", "2", "--out", str(out)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        start_new_session=True)
    deadline = time.monotonic() + 60
    while not (out / "study.json").exists() and time.monotonic() < deadline:
        time.sleep(0.005)
    time.sleep(0.3)  # the workers are being spawned and import the suite
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    lines = [line for line in err.splitlines() if line.strip()]
    assert proc.returncode == 130, err
    assert lines == [f"suite run: interrupted (SIGINT): resume with suite run --resume {out}"]


def test_a_ray_replay_without_jobs_runs_as_many_as_the_cluster_schedules(table):
    from suite.study import _check_jobs

    assert _check_jobs(_spec(table, executor="ray"), None) is None
    assert _check_jobs(_spec(table, executor="ray"), 3) == 3
    assert _check_jobs(_spec(table), None) >= 1


def test_a_serial_resume_waits_for_the_run_lock_of_an_orphan(tmp_path, table, monkeypatch):
    """`--jobs 1` after a killed parallel study: an orphan worker may still hold a run's
    lock (inside a slow tell()); the serial run waits for it, never writes beside it."""
    from suite import study
    from suite.lock import LockedError, hold_lock

    spec = StudySpec(task="toy", optimizers=("random",), seeds=(0,), budget="2x",
                     table=str(table), workers=2)
    run_study(spec, tmp_path / "s", jobs=1)
    monkeypatch.setattr(study, "ORPHAN_WAIT", 0.3)
    with hold_lock(tmp_path / "s" / "random" / "seed-0", "run"):  # the orphan's lock
        with pytest.raises(LockedError):
            run_study(spec, tmp_path / "s", resume=True, jobs=1)
    assert run_study(spec, tmp_path / "s", resume=True, jobs=1)[0].reason == "budget"
