"""Faults, handled by the runner for every executor: a worker that dies mid-trial is retried
once from the checkpoint of its last logged epoch (then the trial is `crashed`), an attempt
past the trial timeout is stopped (`timeout`), and the log keeps every epoch exactly once."""

import contextlib
import functools
import math
import time
from collections import Counter

import pytest
from logcheck import assert_every_epoch_once, killer

from suite._resume import rebuild
from suite.budget import Ledger, parse_budget
from suite.executors import EpochDone, InProcessExecutor, LocalExecutor, TrialEnded
from suite.log import RunLog, read_log, read_rows
from suite.runner import Runner, training_seed
from suite.testing import At, Die, Faults, Pace, ToyTask
from suite.testing import ScriptedOptimizer as Scripted
from suite.types import Status, Trial


def _config(width):
    return {**ToyTask().default_config(), "width": width}


def _match(width):
    return (("width", width),)


def _run(tmp_path, executor, trials, *, trial_timeout=None, on_row=None, rows=None,
         state=None, resubmit=()):
    optimizer = Scripted(trials)
    directory = tmp_path / "run"
    log = RunLog.reopen(directory) if rows else RunLog.create(directory, {"task": "toy"})
    ledger = Ledger(parse_budget("100x"), max_epochs=27)
    if rows:
        state, resubmit = rebuild(read_log(directory), optimizer, ledger=ledger,
                                  checkpoints=directory / "ckpt")
    runner = Runner(optimizer=optimizer, executor=executor, ledger=ledger, log=log,
                    metric=ToyTask.info.metric, seed=0, checkpoints=directory / "ckpt",
                    trial_timeout=trial_timeout, on_row=on_row, state=state)
    with log:
        reason = runner.run(resubmit)
    return reason, runner, optimizer, read_rows(directory)


class _LosingExecutor(InProcessExecutor):
    """In-process training whose 'worker' dies in a victim trial's epoch `after + 1` of an
    attempt (that epoch is trained and saved, never reported): on every attempt, or on the
    first only."""

    def __init__(self, task, victims, *, every_attempt):
        super().__init__(task)
        self.victims, self.every_attempt = victims, every_attempt
        self.attempts, self._epochs = Counter(), Counter()

    def submit(self, job):
        super().submit(job)
        self.attempts[job.trial.trial_id] += 1
        self._epochs[job.trial.trial_id] = 0

    def next_event(self, timeout=None):
        event = super().next_event(timeout)
        tid = event.trial_id
        if isinstance(event, EpochDone) and tid in self.victims and (
                self.every_attempt or self.attempts[tid] == 1):
            self._epochs[tid] += 1
            if self._epochs[tid] > self.victims[tid]:
                worker, results = self._active.pop(tid)
                results.close()
                return TrialEnded(tid, worker, "worker died (simulated)", lost=True)
        return event


def _trials():
    # trial 2 is a promotion of trial 0 (9 → 27 epochs, resumed from its checkpoint)
    return [Trial(0, _config(3), 9, 0), Trial(1, _config(5), 9, 1),
            Trial(2, _config(3), 27, 0, resume_from=0)]


def test_lost_worker_is_retried_once_from_its_last_logged_epoch(tmp_path):
    task = ToyTask()
    # trial 1 dies after 3 epochs; the promotion dies before logging any epoch
    executor = _LosingExecutor(task, {1: 3, 2: 0}, every_attempt=False)
    reason, runner, opt, rows = _run(tmp_path, executor, _trials())
    assert reason == "optimizer" and executor.attempts == {0: 1, 1: 2, 2: 2}
    retries = {r["trial_id"]: (r["epoch"], r["resumed_checkpoint"])
               for r in rows if r["event"] == "retry"}
    assert retries == {1: (3, "1.e3.pt"), 2: (9, "0.e9.pt")}
    assert assert_every_epoch_once(rows) == {0: "ok", 1: "ok", 2: "ok"}
    # nothing trained twice is charged twice; resuming is exact: the curve's own values
    assert runner.ledger.totals.epochs == 9 + 9 + 18 == len(
        [r for r in rows if r["event"] == "epoch"])
    for trial in _trials():
        result = opt.told[trial.trial_id]
        assert result.status is Status.OK
        assert result.loss == pytest.approx(task.curve(
            trial.config, trial.epochs, training_seed(0, trial.config_id)))


def test_worker_lost_again_on_the_retry_is_crashed_and_told_as_failure(tmp_path):
    executor = _LosingExecutor(ToyTask(), {1: 2}, every_attempt=True)
    reason, runner, opt, rows = _run(tmp_path, executor, _trials())
    assert reason == "optimizer"
    assert [(r["trial_id"], r["epoch"]) for r in rows if r["event"] == "retry"] == [(1, 2)]
    assert assert_every_epoch_once(rows) == {0: "ok", 1: "crashed", 2: "ok"}
    (end,) = [r for r in rows if r["event"] == "end"]
    assert end["epoch"] == 4 and "worker died" in end["error"]
    assert opt.told[1].status is Status.FAILED and math.isinf(opt.told[1].loss)


class _DriverKilled(Exception):
    pass


def test_resume_after_a_retry_gives_no_second_retry(tmp_path):
    """The driver dies just after a trial's retry: the resumed run knows it was retried."""
    def kill_driver(row, runner):
        if row["event"] == "epoch" and runner.state.retried:
            raise _DriverKilled

    executor = _LosingExecutor(ToyTask(), {1: 2}, every_attempt=True)
    with pytest.raises(_DriverKilled):
        _run(tmp_path, executor, _trials(), on_row=kill_driver)
    rows = read_rows(tmp_path / "run")
    assert rows[-1]["trial_id"] == 1 and rows[-1]["epoch"] == 3
    resumed = _LosingExecutor(ToyTask(), {1: 0}, every_attempt=True)  # dies at once
    reason, runner, opt, rows = _run(tmp_path, resumed, _trials(), rows=rows)
    assert reason == "optimizer" and runner.state.retried == {1}
    assert [r["event"] for r in rows].count("retry") == 1
    assert assert_every_epoch_once(rows) == {0: "ok", 1: "crashed", 2: "ok"}


def test_trial_past_the_timeout_is_stopped_logged_and_told(tmp_path):
    task = ToyTask(fault=Pace(0.05, match=_match(5)))  # trial 1: 0.05 s per epoch
    start = time.monotonic()
    reason, runner, opt, rows = _run(tmp_path, InProcessExecutor(task), _trials(),
                                     trial_timeout=0.3)
    assert reason == "optimizer" and time.monotonic() - start < 5
    assert assert_every_epoch_once(rows) == {0: "ok", 1: "timeout", 2: "ok"}
    (end,) = [r for r in rows if r["event"] == "end"]
    assert 1 <= end["epoch"] < 9 and "trial timeout of 0.3 s" in end["error"]
    assert opt.told[1].status is Status.FAILED


@pytest.mark.slow  # CI runs it: .ci/run, "slow tests CI runs"
def test_local_executor_survives_killed_hung_and_failing_workers(tmp_path):
    """Real subprocess workers: one dies once (retried, ok), one dies every time (crashed),
    one hangs (killed at the timeout), one returns NaN (failed), and the run completes."""
    hooks = (Pace(120, match=_match(13)),  # hangs in its first epoch
             Die(4, _match(5), marker_dir=str(tmp_path / "died")),  # once
             Die(3, _match(7)),  # every attempt
             At(2, "nan", _match(9)))
    make_task = functools.partial(ToyTask, fault=Faults(hooks))
    trials = [Trial(i, _config(w), 6, i) for i, w in enumerate((13, 3, 5, 7, 9, 11))]
    start = time.monotonic()
    reason, runner, opt, rows = _run(tmp_path, LocalExecutor(make_task, workers=2), trials,
                                     trial_timeout=20)
    assert reason == "optimizer" and time.monotonic() - start < 100
    assert assert_every_epoch_once(rows) == {0: "timeout", 1: "ok", 2: "ok", 3: "crashed",
                                             4: "failed", 5: "ok"}
    retries = {r["trial_id"]: r["resumed_checkpoint"] for r in rows if r["event"] == "retry"}
    assert retries == {2: "2.e3.pt", 3: "3.e2.pt"}  # epochs sent before a death are logged
    assert {tid: r.status for tid, r in opt.told.items()} == {
        0: Status.FAILED, 1: Status.OK, 2: Status.OK, 3: Status.FAILED, 4: Status.FAILED,
        5: Status.OK}
    assert opt.told[2].loss == pytest.approx(ToyTask().curve(_config(5), 6, training_seed(0, 2)))


def test_local_worker_killed_from_outside_mid_trial_is_retried(tmp_path):
    make_task = functools.partial(ToyTask, fault=Pace(0.2, str(tmp_path / "pids")))
    trials = [Trial(i, _config(w), 5, i) for i, w in enumerate((3, 5, 7))]
    kill = killer(tmp_path / "pids")
    reason, runner, opt, rows = _run(tmp_path, LocalExecutor(make_task, workers=2), trials,
                                     on_row=kill)
    assert reason == "optimizer" and len(kill.killed) == 1
    (victim, _), = kill.killed.items()
    (retry,) = [r for r in rows if r["event"] == "retry"]
    assert retry["trial_id"] == victim and retry["epoch"] >= 2
    assert retry["resumed_checkpoint"] == f"{victim}.e{retry['epoch']}.pt"
    assert assert_every_epoch_once(rows) == {0: "ok", 1: "ok", 2: "ok"}


def test_exception_oom_inf_and_a_truncated_checkpoint_in_live_workers(tmp_path):
    """Real subprocess workers: an exception, a CUDA out-of-memory, an inf loss, and a
    checkpoint truncated on disk that a promotion then resumes from: each ends its trial
    `failed` with a clear error, is told as a failure, and the workers go on training."""
    hooks = (At(2, "raise", _match(3)), At(1, "oom", _match(5)), At(1, "inf", _match(7)),
             At(2, "truncate", _match(9)))
    make_task = functools.partial(ToyTask, fault=Faults(hooks))
    trials = [Trial(i, _config(w), 3 if w != 9 else 2, i) for i, w in enumerate((3, 5, 7, 9))]
    trials += [Trial(4, _config(9), 6, 3, resume_from=3),  # from the truncated checkpoint
               Trial(5, _config(11), 3, 5)]  # healthy, after all of that, on a used worker
    reason, runner, opt, rows = _run(tmp_path, LocalExecutor(make_task, workers=2), trials)
    assert reason == "optimizer"
    assert assert_every_epoch_once(rows) == {0: "failed", 1: "failed", 2: "failed", 3: "ok",
                                             4: "failed", 5: "ok"}
    errors = {r["trial_id"]: r["error"] for r in rows if r["event"] == "end"}
    assert "RuntimeError: injected fault at epoch 2" in errors[0]
    assert "SimulatedOutOfMemoryError: CUDA out of memory" in errors[1]
    assert 2 not in errors  # inf is the epoch's own status: no `end` row needed
    assert "CheckpointError" in errors[4] and "3.e2.pt" in errors[4]
    assert not [r for r in rows if r["event"] == "retry"], "an exception is not a crash"
    assert {tid: r.status for tid, r in opt.told.items()} == {
        0: Status.FAILED, 1: Status.FAILED, 2: Status.FAILED, 3: Status.OK, 4: Status.FAILED,
        5: Status.OK}
    assert all(math.isinf(opt.told[t].loss) for t in (0, 1, 2, 4))


# --- the circuit breaker: trials that keep failing before their first epoch -------------

def test_trials_failing_before_their_first_epoch_trip_the_breaker_and_others_reset_it(
        tmp_path):
    """Counted in the order trials end: an epoch trained (by a trial that then fails on
    NaN, too) resets the count; FAILING_STREAK in a row stop the run without a finish row."""
    from suite.runner import FAILING_STREAK, FailingTrials

    hooks = (At(1, "raise", _match(3)), At(2, "nan", _match(5)))
    widths = [3] * (FAILING_STREAK - 1) + [5] + [3] * (FAILING_STREAK - 1) + [7] \
        + [3] * (FAILING_STREAK + 5)
    trials = [Trial(i, _config(w), 3, i) for i, w in enumerate(widths)]
    with pytest.raises(FailingTrials, match=rf"^{FAILING_STREAK} trials in a row failed "
                       r"before their first epoch; the first: RuntimeError: injected fault"):
        _run(tmp_path, InProcessExecutor(ToyTask(fault=Faults(hooks))), trials)
    rows = read_rows(tmp_path / "run")
    ends = [r["trial_id"] for r in rows if r["event"] == "end"]
    assert len(ends) == 3 * FAILING_STREAK - 2 and ends[-1] == len(widths) - 6
    assert rows[-1]["event"] == "end" and not [r for r in rows if r["event"] == "finish"]
    read_log(tmp_path / "run")  # a valid log, of a run that resumes


def test_the_breaker_allows_for_the_trials_that_can_fail_at_once(tmp_path):
    """Three trials in flight at once can fail at one bad moment: two more are allowed."""
    from suite.runner import FAILING_STREAK, FailingTrials

    trials = [Trial(i, _config(3), 3, i) for i in range(3 * FAILING_STREAK)]
    executor = InProcessExecutor(ToyTask(fault=At(1, "raise")), workers=3)
    with pytest.raises(FailingTrials, match=rf"^{FAILING_STREAK + 2} trials in a row"):
        _run(tmp_path, executor, trials)
    rows = read_rows(tmp_path / "run")
    assert sum(r["event"] == "end" for r in rows) == FAILING_STREAK + 2


@contextlib.contextmanager
def _failing(executor):
    """Within it a study's runs train on `executor(fault)`, the fault being
    `At(1, "raise")`: every trial raises before its first epoch."""
    import suite.study

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(suite.study, "_executor",
                      lambda spec, setting, rows: executor(At(1, "raise")))
        yield


def _one_line(capsys, out, count) -> str:
    err = capsys.readouterr().err
    assert err.splitlines() == [
        f"suite run: error: {count} trials in a row failed before their first "
        f"epoch; the first: RuntimeError: injected fault at epoch 1 (random seed 0 stopped; "
        f"fix the cause, then suite run --resume {out})"], err


def test_a_live_study_whose_every_trial_fails_stops_at_once_in_one_line(tmp_path, capsys):
    """Two real subprocess workers, every trial raising before its first epoch: without
    the breaker a new failed trial every few milliseconds, forever."""
    from suite.cli import main
    from suite.runner import FAILING_STREAK

    out = tmp_path / "s"
    with _failing(lambda fault: LocalExecutor(functools.partial(ToyTask, fault=fault),
                                              workers=2)):
        start = time.monotonic()
        assert main(["run", "--task", "toy", "--optimizer", "random", "--budget", "2x",
                     "--workers", "2", "--out", str(out)]) == 2
    limit = FAILING_STREAK + 1  # two workers: two trials can fail at one bad moment
    _one_line(capsys, out, limit)
    assert time.monotonic() - start < 120  # mostly the workers' start-up
    rows = read_rows(out / "random" / "seed-0")
    starts = sum(r["event"] == "start" for r in rows)
    # the one in flight when it tripped stays in flight, and resumes
    assert limit <= starts <= limit + 1
    assert sum(r["event"] == "end" for r in rows) == limit
    assert not [r for r in rows if r["event"] in ("epoch", "finish")]


def test_a_study_stopped_by_the_breaker_resumes_once_its_cause_is_gone(tmp_path, capsys):
    """`--resume` stops again after as many failures while the cause stays (never a loop),
    and once it is gone continues the same run to its budget; the log stays valid."""
    from suite.cli import main
    from suite.runner import FAILING_STREAK

    out, run = tmp_path / "s", tmp_path / "s" / "random" / "seed-0"
    with _failing(lambda fault: InProcessExecutor(ToyTask(fault=fault))):
        assert main(["run", "--task", "toy", "--optimizer", "random", "--budget", "2x",
                     "--executor", "inprocess", "--out", str(out)]) == 2
        _one_line(capsys, out, FAILING_STREAK)
        first = read_rows(run)
        assert main(["run", "--resume", str(out)]) == 2
        _one_line(capsys, out, FAILING_STREAK)
    again = read_rows(run)
    assert again[:len(first)] == first and len(again) == 2 * len(first)
    assert main(["run", "--resume", str(out)]) == 0  # the study's own, healthy toy task
    rows = read_rows(run)
    assert rows[:len(again)] == again and rows[-1]["event"] == "finish"
    assert rows[-1]["reason"] == "budget" and rows[-1]["ledger"]["epochs"] == 54
    assert_every_epoch_once(rows)
