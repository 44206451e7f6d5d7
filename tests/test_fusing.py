"""Fused arrays in the local executor, and device-occupancy charging of packed workers.

Workers are real spawned processes running the toy task (paced epochs sleep, so timing
is real but cheap); the classifier test checks a real fused array end to end.
"""

import functools
import json
import os
import signal
import subprocess
import sys

import pytest

from suite.executors import EpochDone, FusingExecutor, Job, LocalExecutor, TrialEnded
from suite.executors._base import EpochDone as _EpochDone
from suite.executors._occupancy import Busy, Occupancy
from suite.testing import ToyTask
from suite.types import EpochResult, Trial

TOY = ToyTask().default_config()  # batch_size 32


def _job(trial_id, epochs=3, batch=32, lr=0.05, tmp=None):
    config = {**TOY, "batch_size": batch, "lr": lr}
    save = tmp / f"{trial_id}.pt" if tmp is not None else None
    return Job(Trial(trial_id, config, epochs, config_id=trial_id), seed=trial_id, save_to=save)


def _drain(executor, jobs, until=None):
    """Every event until all jobs ended (or `until(events)` says stop)."""
    events, ended = [], set()
    while len(ended) < len(jobs):
        event = executor.next_event()
        events.append(event)
        if isinstance(event, TrialEnded):
            ended.add(event.trial_id)
        if until is not None and until(events):
            break
    return events


def _epochs(events, trial_id):
    return [e.result for e in events if isinstance(e, EpochDone) and e.trial_id == trial_id]


# --- occupancy accounting (driver side, synthetic intervals) ---------------------------

def _charged(occupancy, worker, start, end, seconds=None):
    occupancy.note(Busy(worker, start, end))
    result = EpochResult(1, {}, end - start if seconds is None else seconds)
    return occupancy.charge(_EpochDone(0, result, worker)).result.device_seconds


def test_a_worker_alone_is_charged_exactly_what_it_measured():
    occupancy = Occupancy({0: "cuda:0", 1: "cuda:1"})
    occupancy.note(Busy(1, 0.0))  # busy on another device: no effect
    assert _charged(occupancy, 0, 10.0, 10.7, seconds=0.7123) == 0.7123


def test_packed_workers_share_the_time_they_shared_and_charges_add_up_to_busy_time():
    occupancy = Occupancy({0: "cuda", 1: "cuda:0", 2: "cuda:0"})
    for worker, start in enumerate((0.0, 1.0, 2.0)):
        occupancy.note(Busy(worker, start))
    # worker 0 ran [0, 4]: alone, then with 1 (still running), then with 1 and 2
    a = _charged(occupancy, 0, 0.0, 4.0)
    assert a == pytest.approx(1 + 1 / 2 + 2 / 3)
    b = _charged(occupancy, 1, 1.0, 5.0)  # [1,2] with 0, [2,4] with 0 and 2, [4,5] with 2
    assert b == pytest.approx(1 / 2 + 2 / 3 + 1 / 2)
    c = _charged(occupancy, 2, 2.0, 6.0)  # [2,4] three ways, [4,5] two, [5,6] alone
    assert c == pytest.approx(2 / 3 + 1 / 2 + 1)
    assert a + b + c == pytest.approx(6.0)  # the union [0, 6]


# --- the fusing executor (worker processes) ---------------------------------------------

def _fusing(workers=1, fuse_max=3, pace=0.0):
    task = functools.partial(ToyTask, pace=pace)
    return FusingExecutor(task, workers=workers, fuse_max=fuse_max,
                          fuse_key=ToyTask().fuse_key)


def test_queued_same_shape_jobs_train_as_one_array_and_equal_solo_runs(tmp_path):
    jobs = [_job(0, 3, 32, 0.05, tmp_path), _job(1, 2, 64, 0.1, tmp_path),
            _job(2, 2, 32, 0.3, tmp_path), _job(3, 4, 32, 0.01, tmp_path)]
    executor = _fusing()
    assert executor.free_slots() == 3
    try:
        for job in jobs[:3]:
            executor.submit(job)
        assert executor.free_slots() == 0
        executor.submit(jobs[3])  # the runner never overfills; the queue copes anyway
        events = _drain(executor, jobs)
    finally:
        executor.close()
    # the oldest job leaves with its shape-mates (0, 2, 3 as one array); 1 goes alone
    assert executor.arrays == [3, 1]
    ends = [e for e in events if isinstance(e, TrialEnded)]
    assert sorted(e.trial_id for e in ends) == [0, 1, 2, 3] and not any(e.error for e in ends)
    for job in jobs:
        got = _epochs(events, job.trial.trial_id)
        solo = list(ToyTask().train(job.trial.config, epochs=job.trial.epochs, seed=job.seed))
        assert [r.epoch for r in got] == list(range(1, job.trial.epochs + 1))  # each once
        assert [r.metrics for r in got] == [r.metrics for r in solo]
        pinned = [r.checkpoint.name for r in got]
        assert pinned == [f"{job.trial.trial_id}.e{e}.pt" for e in range(1, len(got) + 1)]
    # an array epoch costs its slowest member's, shared equally: 3 members, 3, then 2, 1
    shares = [r.device_seconds for r in _epochs(events, 3)]
    assert shares[0] == shares[1] == pytest.approx(shares[2] * 2 / 3)
    assert shares[3] == pytest.approx(2 * shares[2])


@pytest.mark.slow
def test_a_cancelled_member_leaves_the_others_untouched():
    jobs = [_job(i, 4, 32, lr) for i, lr in enumerate((0.05, 0.1, 0.3))]
    executor = _fusing(pace=0.05)  # ~0.1 s per array epoch
    try:
        for job in jobs:
            executor.submit(job)
        first = _drain(executor, jobs, until=lambda ev: isinstance(ev[-1], EpochDone))
        executor.cancel(1)
        rest = _drain(executor, jobs[:1] + jobs[2:] + [jobs[1]])
    finally:
        executor.close()
    events = first + rest
    assert [e.error for e in events if isinstance(e, TrialEnded) and e.trial_id == 1] == [None]
    assert len(_epochs(events, 1)) <= 2  # at most the epoch already under way
    for i in (0, 2):
        solo = ToyTask().train(jobs[i].trial.config, epochs=4, seed=jobs[i].seed)
        assert [r.metrics for r in _epochs(events, i)] == [r.metrics for r in solo]


@pytest.mark.slow
def test_a_killed_worker_fails_only_its_own_members():
    jobs = [_job(0, 6, 32), _job(1, 6, 32, 0.2), _job(2, 6, 64), _job(3, 6, 64, 0.2)]
    executor = _fusing(workers=2, fuse_max=2, pace=0.05)
    try:
        for job in jobs:
            executor.submit(job)
        first = _drain(executor, jobs, until=lambda ev: isinstance(ev[-1], EpochDone))
        victim = first[-1].worker
        members = sorted(executor._live[victim])
        os.kill(executor._pool[victim].process.pid, signal.SIGKILL)
        rest = _drain(executor, jobs)
    finally:
        executor.close()
    events = first + rest
    ends = {e.trial_id: e for e in events if isinstance(e, TrialEnded)}
    assert sorted(ends) == [0, 1, 2, 3]
    died = sorted(t for t, e in ends.items() if e.error)
    assert died == members and members in ([0, 1], [2, 3])  # one array: one shape
    assert all("worker died" in ends[t].error for t in died)
    for t in set(ends) - set(died):
        assert [r.epoch for r in _epochs(events, t)] == list(range(1, 7))


@pytest.mark.slow
@pytest.mark.parametrize("share_devices", [True, False])
def test_packed_workers_are_charged_the_device_time_they_used(tmp_path, monkeypatch,
                                                              share_devices):
    """Three workers on the one CPU "device" with overlapping epochs: the charges add up
    to the union of their timed epochs (from the workers' trace) within 3%; unshared
    (`share_devices=False`, what `suite tabulate` records) to the sum of the epochs."""
    monkeypatch.setenv("SUITE_TRACE_DIR", str(tmp_path / "trace"))
    jobs = [_job(i, 4, 32 if i % 2 else 64, 0.05) for i in range(6)]
    executor = LocalExecutor(functools.partial(ToyTask, pace=0.25), workers=3,
                             devices=["cpu"], share_devices=share_devices)
    try:
        for job in jobs[:3]:
            executor.submit(job)
        events = []
        for job in jobs[3:] + [None] * 3:
            events += _drain(executor, [0], until=lambda ev: isinstance(ev[-1], TrialEnded))
            if job is not None:
                executor.submit(job)
    finally:
        executor.close()
    charged = sum(e.result.device_seconds for e in events if isinstance(e, EpochDone))
    spans = sorted((r["start"], r["end"]) for f in (tmp_path / "trace").iterdir()
                   for r in map(json.loads, f.read_text().splitlines())
                   if r["phase"] == "epoch")
    assert len(spans) == 24 == sum(isinstance(e, EpochDone) for e in events)
    union, reach = 0.0, -1.0
    for start, end in spans:
        union += max(0.0, end - max(start, reach))
        reach = max(reach, end)
    unshared = sum(end - start for start, end in spans)
    assert unshared > 1.5 * union, "the workers really overlapped"
    print(f"charged {charged:.4f} s, busy (union) {union:.4f} s, unshared {unshared:.4f} s")
    assert charged == pytest.approx(union if share_devices else unshared, rel=0.03)


@pytest.mark.slow
def test_a_fused_classifier_array_in_a_worker_equals_solo_runs(tmp_path):
    from suite.registry import get_task

    task = get_task("text_classifier", scale="tiny")
    base = {**task.default_config(), "batch_size": 16, "width": 64}
    configs = [{**base, "lr": lr, "dropout_p": p} for lr, p in ((0.01, 0.5), (0.003, 0.8))]
    jobs = [Job(Trial(i, c, 3 - i, config_id=i), seed=5 + i, save_to=tmp_path / f"{i}.pt")
            for i, c in enumerate(configs)]
    executor = FusingExecutor(functools.partial(get_task, "text_classifier", scale="tiny"),
                              fuse_max=2, fuse_key=task.fuse_key, devices=["cpu"])
    try:
        for job in jobs:
            executor.submit(job)
        events = _drain(executor, jobs)
    finally:
        executor.close()
    assert executor.arrays == [2]
    for job in jobs:
        solo = task.train(job.trial.config, epochs=job.trial.epochs, seed=job.seed,
                          device="cpu")
        assert [r.metrics for r in _epochs(events, job.trial.trial_id)] == [
            r.metrics for r in solo]


def test_every_epoch_is_logged_once_and_the_plan_keeps_fuse(tmp_path):
    from dataclasses import replace

    from suite.log import read_rows
    from suite.study import StudySpec, load_study, run_study

    spec = StudySpec(task="toy", optimizers=("hyperband",), seeds=(0,), budget="2x",
                     workers=2, fuse="auto", fuse_max=3)
    (outcome,) = run_study(spec, tmp_path / "s")
    # as given, with the built-in task's default scale resolved
    assert load_study(tmp_path / "s") == replace(spec, scale="full")
    rows = read_rows(outcome.directory)
    epochs = [(r["trial_id"], r["epoch"]) for r in rows if r["event"] == "epoch"]
    assert len(epochs) == len(set(epochs)) == outcome.ledger.totals.epochs == 54
    starts = {r["trial_id"]: r for r in rows if r["event"] == "start"}
    for trial_id, epoch in epochs:  # no epoch skipped or repeated within a trial
        assert epoch > starts[trial_id]["start_epoch"]
    told = [r for r in rows if r.get("status") in ("ok", "failed")]
    assert told, "trials completed and were told"
    assert json.loads((outcome.directory / "meta.json").read_text())["fuse"] == "auto"


FUSE_BAD_INPUT = [
    (["--fuse", "auto", "--executor", "inprocess"], "--fuse auto needs the local executor"),
    (["--fuse", "auto", "--fuse-max", "0"], "--fuse-max must be an integer in 1..256"),
    (["--fuse-max", "4"], "give it with --fuse auto"),
]


@pytest.mark.parametrize("args, message", FUSE_BAD_INPUT)
def test_bad_fuse_settings_are_one_line_exit_2(args, message, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "suite.cli", "run", "--task", "toy",
                           "--optimizer", "random", "--budget", "1x", *args],
                          capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not list(tmp_path.iterdir())


def test_a_replay_cannot_fuse(tmp_path):
    from suite.errors import SuiteError
    from suite.study import StudySpec

    with pytest.raises(SuiteError, match="not simulated"):
        StudySpec(task="toy", optimizers=("random",), seeds=(0,), budget="1x",
                  table="t.parquet", fuse="auto")


# --- faults: dead workers, forced cancels, a killed study (on main's fault handling) -----

def _fused_run(tmp_path, executor, trials, **kwargs):
    from suite.budget import Ledger, parse_budget
    from suite.log import RunLog, read_rows
    from suite.runner import Runner
    from suite.testing import ScriptedOptimizer

    optimizer = ScriptedOptimizer(trials)
    directory = tmp_path / "run"
    log = RunLog.create(directory, {"task": "toy"})
    runner = Runner(optimizer=optimizer, executor=executor, metric=ToyTask.info.metric,
                    ledger=Ledger(parse_budget("100x"), max_epochs=27), log=log, seed=0,
                    checkpoints=directory / "ckpt", **kwargs)
    with log:
        reason = runner.run()
    return reason, optimizer, read_rows(directory)


@pytest.mark.parametrize("deaths", [1, 2])
def test_members_of_a_dead_array_are_retried_together_then_crashed(tmp_path, deaths):
    """One member kills the worker at its epoch 3: every member of the array is `lost`,
    retried from its own epoch-2 checkpoint, and fuses again; if the retry dies too, every
    member is `crashed`. No epoch is logged twice."""
    from logcheck import assert_every_epoch_once

    from suite.runner import training_seed
    from suite.testing import Die
    from suite.types import Status

    die = Die(3, (("width", 5),), marker_dir=str(tmp_path / "died"), times=deaths)
    configs = [{**TOY, "width": w} for w in (3, 5, 7)]  # one batch size: one shape
    trials = [Trial(i, c, 6, i) for i, c in enumerate(configs)]
    executor = FusingExecutor(functools.partial(ToyTask, fault=die), fuse_max=3,
                              fuse_key=ToyTask().fuse_key)
    reason, opt, rows = _fused_run(tmp_path, executor, trials)
    assert reason == "optimizer" and executor.arrays == [3, 3]  # fused again on the retry
    retries = {r["trial_id"]: r["resumed_checkpoint"] for r in rows if r["event"] == "retry"}
    assert retries == {i: f"{i}.e2.pt" for i in range(3)}
    status = "ok" if deaths == 1 else "crashed"
    assert assert_every_epoch_once(rows) == {i: status for i in range(3)}
    for trial in trials:
        told = opt.told[trial.trial_id]
        if deaths == 1:  # resumed exactly: the curve's own value
            assert told.status is Status.OK and told.loss == pytest.approx(
                ToyTask().curve(trial.config, 6, training_seed(0, trial.config_id)))
        else:
            assert told.status is Status.FAILED
    if deaths == 2:
        ends = [r for r in rows if r["event"] == "end"]
        assert [(r["epoch"], "worker died" in r["error"]) for r in ends] == [(2, True)] * 3


@pytest.mark.slow
def test_a_forced_cancel_stops_the_array_and_its_mates_end_lost(tmp_path):
    jobs = [_job(i, 8, 32, lr, tmp_path) for i, lr in enumerate((0.05, 0.1, 0.3))]
    jobs.append(_job(3, 2, 64, 0.05, tmp_path))  # queued behind the array
    executor = _fusing(fuse_max=4, pace=0.05)
    try:
        for job in jobs:
            executor.submit(job)
        first = _drain(executor, jobs, until=lambda ev: isinstance(ev[-1], EpochDone))
        executor.cancel(1, force=True)
        assert executor.started(3) is None, "still queued"
        rest = _drain(executor, jobs)
    finally:
        executor.close()
    ends = {e.trial_id: e for e in first + rest if isinstance(e, TrialEnded)}
    assert len([e for e in rest if isinstance(e, TrialEnded)]) == 4  # one end per job
    assert ends[1].error is None and not ends[1].lost
    for mate in (0, 2):
        assert ends[mate].lost and "array-mate trial 1" in ends[mate].error
    assert ends[3].error is None and len(_epochs(rest, 3)) == 2  # a fresh worker trained it
    assert executor.arrays == [3, 1]


@pytest.mark.slow
def test_a_killed_fused_study_resumes_with_every_epoch_logged_once(tmp_path):
    import time

    from logcheck import assert_every_epoch_once

    from suite.log import read_rows

    out = tmp_path / "s"
    args = ["run", "--task", "toy", "--optimizer", "hyperband", "--budget", "20x",
            "--workers", "2", "--fuse", "auto", "--fuse-max", "3"]
    victim = subprocess.Popen([sys.executable, "-m", "suite.cli", *args, "--out", str(out)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              start_new_session=True)
    log = out / "hyperband" / "seed-0" / "log.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and (not log.exists() or log.stat().st_size < 30_000):
        time.sleep(0.005)
    os.killpg(victim.pid, signal.SIGKILL)  # the driver and its workers at once
    victim.wait()
    killed = read_rows(out / "hyperband" / "seed-0")
    assert killed and killed[-1]["event"] != "finish", "killed before the end"
    assert any(r["event"] == "epoch" and r["status"] == "running" for r in killed)

    resumed = subprocess.run([sys.executable, "-m", "suite.cli", "run", "--resume", str(out)],
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    rows = read_rows(out / "hyperband" / "seed-0")
    assert rows[:len(killed)] == killed, "nothing logged is lost or rewritten"
    assert rows[-1]["event"] == "finish"
    terminal = assert_every_epoch_once(rows)
    assert set(terminal.values()) <= {"ok", "cut", "failed"}
    epochs = [r for r in rows if r["event"] == "epoch"]
    assert rows[-1]["ledger"]["epochs"] == len(epochs) >= 20 * 27


@pytest.mark.slow
def test_the_trial_timeout_counts_training_not_waiting_in_the_queue(tmp_path):
    """An array of two trains for ~1.8 s while a third trial (another shape) waits for the
    one worker, then trains ~1.65 s: under a 2.7 s timeout none times out, though the third
    ends ~3.5 s after it was submitted."""
    from logcheck import assert_every_epoch_once

    executor = _fusing(fuse_max=3, pace=0.375)
    executor.submit(_job(99, 1, 16, tmp=tmp_path))  # the worker starts up outside the clock
    _drain(executor, [99])
    one = {**TOY, "width": 1}
    trials = [Trial(0, {**one, "lr": 0.1}, 8, 0), Trial(1, {**one, "lr": 0.2}, 8, 1),
              Trial(2, {**one, "batch_size": 64}, 8, 2)]
    reason, opt, rows = _fused_run(tmp_path, executor, trials, trial_timeout=2.7)
    assert executor.arrays == [1, 2, 1]
    assert assert_every_epoch_once(rows) == {0: "ok", 1: "ok", 2: "ok"}
    starts = {r["trial_id"]: r["wall_time"] for r in rows if r["event"] == "start"}
    last = max(r["wall_time"] for r in rows if r.get("trial_id") == 2)
    assert last - starts[2] > 2.7, "it did wait longer than the timeout in all"


# A budget that ends while one worker trains a large array: the runner cancels every member
# at once. Sent straight away, those hundreds of cancels filled the worker's pipe while
# the worker, between epochs, was itself blocked sending the array's epochs: a deadlock.
_LARGE_ARRAY_AT_THE_END = """
import sys
from suite.budget import Ledger, parse_budget
from suite.executors import FusingExecutor
from suite.log import RunLog, read_rows
from suite.runner import Runner
from suite.testing import ScriptedOptimizer, ToyTask
from suite.types import Trial

if __name__ == "__main__":
    out, members = sys.argv[1], int(sys.argv[2])
    config = ToyTask().default_config()
    trials = [Trial(i, {**config, "lr": 0.001 + i / members}, 27, i) for i in range(members)]
    executor = FusingExecutor(ToyTask, fuse_key=ToyTask().fuse_key, fuse_max=members)
    log = RunLog.create(out, {"task": "toy"})
    runner = Runner(optimizer=ScriptedOptimizer(trials), executor=executor, log=log,
                    ledger=Ledger(parse_budget("1x"), max_epochs=27), seed=0,
                    metric=ToyTask.info.metric, checkpoints=None)
    with log:
        print(runner.run(), executor.arrays)
"""


def test_a_budget_ending_in_a_large_array_finishes(tmp_path):
    """`--fuse-max` far above the work left: 400 trials train as one array, the budget
    ends in its first epoch, and the run ends (it hung before: a timeout, not CI stuck)."""
    from logcheck import assert_every_epoch_once

    from suite.log import read_rows

    proc = subprocess.run([sys.executable, "-c", _LARGE_ARRAY_AT_THE_END,
                           str(tmp_path / "run"), "400"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["budget", "[400]"]
    rows = read_rows(tmp_path / "run")
    assert rows[-1]["event"] == "finish" and rows[-1]["ledger"]["epochs"] == 27
    assert set(assert_every_epoch_once(rows).values()) == {"cut"}
