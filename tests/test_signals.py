"""SIGINT and SIGTERM are the runner's: a flag the loop checks, whatever a library catches.

A signal stops a study cleanly (exit 130 or 143, one line naming `--resume`, no traceback
from the driver or a worker) and `suite run --resume` then ends with the rows of an
uninterrupted run, for every optimizer, replayed and live. In the default run: BOHB
replayed (its library swallowed Ctrl-C), TPE live, SIGTERM to a live run with subprocess
workers; the other optimizers and the resumed live runs are `slow`.
"""

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace

import crash_harness
import pytest
from logcheck import assert_every_epoch_once

from suite.budget import Ledger, parse_budget
from suite.executors import InProcessExecutor
from suite.interrupt import on_signals
from suite.log import LOG_NAME, RunLog, read_rows
from suite.optimizers import OPTIMIZERS as REGISTERED
from suite.runner import STOPPED, Runner
from suite.study import Stopped, StudySpec, load_study, run_study
from suite.testing import ScriptedOptimizer, ToyTask, toy_table
from suite.types import Trial

# every registered optimizer (tpe in the default run, the rest with -m slow)
OPTIMIZERS = tuple(sorted(REGISTERED))


class _Swallowing(ScriptedOptimizer):
    """An optimizer whose library catches everything (hpbandster's sampler has a bare
    `except:` around its model fit) and that is sent SIGINT during its `at`-th ask."""

    def __init__(self, trials, at: int) -> None:
        super().__init__(trials)
        self.at, self.asks, self.swallowed = at, 0, 0

    def ask(self):
        self.asks += 1
        if self.asks == self.at:
            try:
                os.kill(os.getpid(), signal.SIGINT)
                for _ in range(100):  # the handler runs in here, between bytecodes
                    time.sleep(0.001)
            except:  # noqa: E722 (what hpbandster does)
                self.swallowed += 1
        return super().ask()


def _swallowing_run(tmp_path, stop=None):
    task = ToyTask()
    trials = [Trial(i, task.default_config() | {"width": 2 + i}, 3, i) for i in range(6)]
    optimizer = _Swallowing(trials, at=3)
    log = RunLog.create(tmp_path / "run", {"task": "toy"})
    runner = Runner(optimizer=optimizer, executor=InProcessExecutor(task, workers=2),
                    ledger=Ledger(parse_budget("100x"), max_epochs=27), log=log,
                    metric=task.info.metric, seed=0, checkpoints=tmp_path / "ckpt", stop=stop)
    with log:
        reason = runner.run()
    return reason, optimizer, read_rows(tmp_path / "run")


def test_a_signal_inside_an_optimizer_that_catches_everything_stops_the_run(tmp_path):
    stop = threading.Event()
    previous = signal.getsignal(signal.SIGINT)
    with on_signals(stop) as caught:
        reason, optimizer, rows = _swallowing_run(tmp_path, stop)
    assert signal.getsignal(signal.SIGINT) is previous, "the handlers are restored"
    assert caught.signum == signal.SIGINT and stop.is_set()
    assert reason == STOPPED and optimizer.swallowed == 0, "a flag, not an exception"
    assert [r["trial_id"] for r in rows if r["event"] == "start"] == [0, 1], \
        "the trial asked while stopping is dropped, never logged"
    assert rows[-1]["event"] != "finish", "a stopped run resumes: it has no finish row"
    assert_every_epoch_once(rows)


def test_without_the_runners_handlers_the_library_swallows_the_interrupt(tmp_path):
    # why the flag: Python's own KeyboardInterrupt disappears into the bare except
    reason, optimizer, rows = _swallowing_run(tmp_path)
    assert optimizer.swallowed == 1 and reason == "optimizer" and rows[-1]["event"] == "finish"


def test_a_second_signal_stops_at_once_and_the_handlers_are_restored():
    stop = threading.Event()
    with pytest.raises(KeyboardInterrupt), on_signals(stop) as caught:
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(100):
            time.sleep(0.001)
        assert stop.is_set() and caught.signum == signal.SIGTERM
        os.kill(os.getpid(), signal.SIGINT)
        for _ in range(100):
            time.sleep(0.001)
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_study_in_another_thread_is_stopped_through_the_api_and_resumes(tmp_path):
    spec = StudySpec(task="toy", optimizers=("hyperband",), seeds=(0, 1), budget="5x",
                     executor="inprocess")
    (reference,) = run_study(replace(spec, seeds=(0,)), tmp_path / "ref")
    stop, handlers, raised = threading.Event(), signal.getsignal(signal.SIGINT), []

    def on_run(name, seed, runner):
        def on_row(row, runner):
            if runner.state.trials == 20:
                stop.set()  # as a caller in another thread would
        runner.on_row = on_row

    def study():
        try:
            run_study(spec, tmp_path / "s", on_run=on_run, stop=stop)
        except Stopped as exc:
            raised.append(exc)

    thread = threading.Thread(target=study)
    thread.start()
    thread.join(timeout=120)
    assert signal.getsignal(signal.SIGINT) is handlers, "no handlers outside the main thread"
    (exc,) = raised
    assert exc.signum is None and exc.exit_code == 130 and exc.out == tmp_path / "s"
    run = tmp_path / "s" / "hyperband" / "seed-0"
    assert read_rows(run)[-1]["event"] != "finish" and not (run.parent / "seed-1").exists()
    run_study(load_study(tmp_path / "s"), tmp_path / "s", resume=True)
    assert crash_harness.comparable_rows(run) == crash_harness.comparable_rows(
        reference.directory)


@pytest.mark.parametrize("optimizer", [o if o == "tpe" else pytest.param(
    o, marks=pytest.mark.slow) for o in OPTIMIZERS])
def test_sigint_to_a_live_study_stops_it_and_it_resumes_exactly(tmp_path, optimizer):
    """Live training (the toy task in this process, with checkpoints), a real SIGINT when
    the first trial completes; the resumed run equals an uninterrupted one."""
    spec = StudySpec(task="toy", optimizers=(optimizer,), seeds=(0,), budget="4x",
                     executor="inprocess")  # one worker: its order is exact on resume
    (reference,) = run_study(spec, tmp_path / "ref")

    def on_run(name, seed, runner):
        def on_row(row, runner):
            if row.get("status") == "ok" and runner.state.tells == 0:  # the first
                os.kill(os.getpid(), signal.SIGINT)
        runner.on_row = on_row

    with pytest.raises(Stopped) as stopped:
        run_study(spec, tmp_path / "s", on_run=on_run)
    assert stopped.value.signum == signal.SIGINT and stopped.value.exit_code == 130
    run = tmp_path / "s" / optimizer / "seed-0"
    rows = read_rows(run)
    assert rows[-1]["event"] != "finish" and (run / "checkpoints").is_dir()
    run_study(spec, tmp_path / "s", resume=True)
    assert read_rows(run)[:len(rows)] == rows
    assert crash_harness.comparable_rows(run) == crash_harness.comparable_rows(
        reference.directory)


def _env():
    return dict(os.environ, PYTHONHASHSEED="0")  # fixed, as before SMAC stopped needing it


def _suite_run(*args, **kwargs):
    return subprocess.Popen([sys.executable, "-m", "suite.cli", "run", *args], env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            **kwargs)


def _interrupt(proc, out, send, rows=3):
    """Send a signal once `rows` rows have landed; the exit code and the stderr lines."""
    deadline = time.monotonic() + 180
    while proc.poll() is None and time.monotonic() < deadline:
        if out.exists() and crash_harness.count_rows(out) >= rows:
            send(proc)
            break
        time.sleep(0.005)
    _, err = proc.communicate(timeout=120)  # also waits for any worker holding stderr
    assert "Traceback" not in err, err
    # the libraries' own messages (SMAC's) go to the study's library.log, not here
    return proc.returncode, [line for line in err.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    return toy_table(tmp_path_factory.mktemp("table") / "toy.parquet", seeds=1)


@pytest.mark.parametrize("optimizer", [o if o == "bohb" else pytest.param(
    o, marks=pytest.mark.slow) for o in OPTIMIZERS])
def test_sigint_stops_a_replayed_study_that_resumes_to_the_uninterrupted_rows(
        tmp_path, table, optimizer):
    args = ["--task", "toy", "--table", str(table), "--optimizer", optimizer,
            "--budget", "3x", "--workers", "2", "--seeds", "0-1", "--jobs", "1"]
    out = tmp_path / "stopped"
    code, lines = _interrupt(_suite_run(*args, "--out", str(out)), out,
                             lambda proc: proc.send_signal(signal.SIGINT))
    assert code == 130
    assert lines == [f"suite run: interrupted (SIGINT): resume with suite run --resume {out}"]
    stopped = read_rows(out / optimizer / "seed-0")
    assert stopped[-1]["event"] != "finish" and not (out / optimizer / "seed-1").exists(), \
        "stopped mid-run, the next run not begun"
    resumed = _suite_run("--resume", str(out))
    reference = _suite_run(*args, "--out", str(tmp_path / "ref"))  # side by side
    assert resumed.wait(timeout=300) == 0, resumed.stderr.read()
    assert reference.wait(timeout=300) == 0, reference.stderr.read()
    assert read_rows(out / optimizer / "seed-0")[:len(stopped)] == stopped, "nothing rewritten"
    assert crash_harness.problems_of(tmp_path / "ref", out) == []


@pytest.mark.parametrize("signum, group, resume", [
    (signal.SIGTERM, False, False),
    pytest.param(signal.SIGTERM, False, True, marks=pytest.mark.slow),
    pytest.param(signal.SIGINT, True, True, marks=pytest.mark.slow)],
    ids=["sigterm-driver", "sigterm-driver-resumed", "sigint-group-resumed"])
def test_a_live_study_stops_on_a_signal_without_a_worker_traceback(tmp_path, signum, group,
                                                                   resume):
    """Real subprocess workers on the toy task. SIGTERM to the driver (a scheduler stopping
    the job); SIGINT to the whole process group (Ctrl-C in a terminal): the workers ignore
    it and the driver stops them. Resuming (slow: the workers start again) continues the
    run to its budget with every epoch once."""
    out = tmp_path / "live"
    proc = _suite_run("--task", "toy", "--optimizer", "random", "--budget", "30x",
                      "--workers", "2", "--executor", "local", "--out", str(out),
                      start_new_session=True)
    send = (lambda p: os.killpg(p.pid, signum)) if group else (lambda p: p.send_signal(signum))
    code, lines = _interrupt(proc, out, send, rows=6)
    name = signal.Signals(signum).name
    assert code == 128 + signum
    assert lines == [f"suite run: interrupted ({name}): resume with suite run --resume {out}"]
    run = out / "random" / "seed-0"
    stopped = read_rows(run)
    assert stopped[-1]["event"] != "finish"
    if not resume:
        return
    (outcome,) = run_study(load_study(out), out, resume=True)
    rows = read_rows(run)
    assert rows[:len(stopped)] == stopped and outcome.reason == "budget"
    assert [r["event"] for r in rows].count("finish") == 1 and rows[-1]["event"] == "finish"
    assert_every_epoch_once(rows)
    assert outcome.ledger.totals.epochs == sum(r["event"] == "epoch" for r in rows)
    assert (run / LOG_NAME).exists()
