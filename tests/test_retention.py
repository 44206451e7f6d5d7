"""Checkpoint retention (`suite._retention`): a live run of a chain optimizer keeps a few
checkpoints instead of one per trial, and logs exactly what a run keeping all of them logs;
a retry, a resumed run and the incumbent still find theirs."""

from collections import Counter

import pytest

from suite.budget import Ledger, parse_budget
from suite.executors import EpochDone, InProcessExecutor, TrialEnded
from suite.log import RunLog, read_rows
from suite.optimizers import make_optimizer
from suite.runner import Runner
from suite.testing import ToyTask

pytestmark = pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")


def _comparable(rows):
    return [{k: v for k, v in r.items() if k not in ("wall_time", "worker")} for r in rows]


def _optimizer(name, task, seed=0):
    return make_optimizer(name, space=task.config_space(seed=seed), fidelity=task.info.fidelity,
                          seed=seed)


def _run(tmp_path, name, keep, *, executor=None, budget="6x", workers=2):
    task = ToyTask()
    directory = tmp_path / keep
    ckpt = directory / "ckpt"
    peak = Counter()

    def on_row(row, runner):  # the folder as the run goes, after each row
        if ckpt.exists():
            peak["files"] = max(peak["files"], len(list(ckpt.iterdir())))

    log = RunLog.create(directory, {"task": "toy"})
    runner = Runner(optimizer=_optimizer(name, task), ledger=Ledger(
        parse_budget(budget), max_epochs=task.info.fidelity.max_epochs),
        executor=executor or InProcessExecutor(task, workers=workers), log=log,
        metric=task.info.metric, seed=0, checkpoints=ckpt, on_row=on_row,
        keep_checkpoints=keep)
    with log:
        reason = runner.run()
    return reason, runner, read_rows(directory), peak["files"], ckpt


# tpe chains: each worker's trial and the step it resumes from, the incumbent and the
# recommendation; hyperband also keeps a stage's results until hpbandster promotes some
# of them: the toy's first bracket has 27 configurations at 1 epoch
@pytest.mark.parametrize("name,bound", [("tpe-median", 8), ("tpe-hyperband", 8),
                                        ("hyperband", 27 + 6)])
def test_a_chain_run_keeps_few_checkpoints_and_logs_what_keeping_all_logs(tmp_path, name,
                                                                           bound):
    reason, kept_all, all_rows, all_peak, _ = _run(tmp_path, name, "all")
    reason2, runner, rows, peak, ckpt = _run(tmp_path, name, "needed")
    assert reason == reason2 == "budget"
    assert _comparable(rows) == _comparable(all_rows), "retention changes nothing logged"
    trials = sum(r["event"] == "start" for r in rows)
    assert all_peak >= trials > bound, "keeping all: one checkpoint (or two) per trial"
    assert peak <= bound, f"{peak} files at most with retention, {all_peak} without"
    # the incumbent's checkpoint (what the end of the run keeps: suite.study) survives
    epochs, final = runner.state.finals[runner.state.incumbent.trial_id]
    assert final.exists() and final.parent == ckpt
    recommended = runner.state.finals[runner.state.recommended][1]
    assert recommended.exists()


class _DyingExecutor(InProcessExecutor):
    """The worker of each victim dies in its first attempt's first epoch (saved, never
    reported), so its retry resumes from the checkpoint it started from."""

    def __init__(self, task, victims, **kwargs):
        super().__init__(task, **kwargs)
        self.victims, self.attempts = set(victims), Counter()

    def submit(self, job):
        super().submit(job)
        self.attempts[job.trial.trial_id] += 1

    def next_event(self, timeout=None):
        event = super().next_event(timeout)
        tid = event.trial_id if event is not None else None
        if isinstance(event, EpochDone) and tid in self.victims and self.attempts[tid] == 1:
            self.victims.discard(tid)
            worker, results = self._active.pop(tid)
            results.close()
            return TrialEnded(tid, worker, "worker died (simulated)", lost=True)
        return event


def test_a_retried_chain_step_resumes_from_its_parents_checkpoint(tmp_path):
    task = ToyTask()
    reason, _, reference, _, _ = _run(tmp_path, "tpe-median", "all", workers=1)
    steps = [r["trial_id"] for r in reference if r["event"] == "start"
             and r["resumed_from"] is not None][:4]
    executor = _DyingExecutor(task, steps)
    reason, runner, rows, _, _ = _run(tmp_path, "tpe-median", "needed", executor=executor)
    retries = [r for r in rows if r["event"] == "retry"]
    parents = {r["trial_id"]: r["resumed_from"] for r in rows if r["event"] == "start"}
    assert [r["trial_id"] for r in retries] == steps
    for retry in retries:  # resumed from the parent's pinned last epoch, not retrained
        assert retry["resumed_checkpoint"] == f"{parents[retry['trial_id']]}.e{retry['epoch']}.pt"
    without = [r for r in rows if r["event"] != "retry"]
    assert _comparable(without) == _comparable(reference), "as if no worker had died"


def test_a_killed_run_resumes_to_the_uninterrupted_runs_rows(tmp_path):
    """A study killed right after a row is logged (before the runner deletes anything that
    row made unneeded), at several moments, resumes each time to the same rows."""
    import suite
    from suite import api

    class Killed(Exception):
        pass

    def study(out, kill_after=None):
        def on_run(name, seed, runner):
            def on_row(row, runner):
                count["rows"] += 1
                if kill_after is not None and count["rows"] == kill_after:
                    raise Killed
            runner.on_row = on_row
        count = Counter()
        plan = suite.Plan(task="toy", optimizers=("tpe-median",), budget="3x")
        where = suite.Placement(executor="inprocess", workers=2)
        try:
            api.start(plan, where, out, on_run=on_run)
        except Killed:
            return False
        return True

    assert study(tmp_path / "ref")
    reference = read_rows(tmp_path / "ref" / "tpe-median" / "seed-0")
    out = tmp_path / "killed"
    assert not study(out, kill_after=40)
    for kill in (25, 50, 10**9):
        count = Counter()

        def on_run(name, seed, runner, kill=kill, count=count):
            def on_row(row, runner):
                count["rows"] += 1
                if count["rows"] == kill:
                    raise Killed
            runner.on_row = on_row
        try:
            suite.resume(out, on_run=on_run)
        except Killed:
            pass
    rows = read_rows(out / "tpe-median" / "seed-0")
    assert _comparable(rows) == _comparable(reference)
    # at the end, as before: the incumbent's checkpoint alone
    assert len(list((out / "tpe-median" / "seed-0" / "checkpoints").iterdir())) == 1


def test_keep_checkpoints_is_a_checked_plan_setting(tmp_path):
    from suite.errors import SuiteError
    from suite.spec import StudySpec

    spec = StudySpec(task="toy", optimizers=("tpe-median",), seeds=(0,), budget="1x")
    assert spec.keep_checkpoints == "needed"
    with pytest.raises(SuiteError, match="keep_checkpoints"):
        StudySpec(task="toy", optimizers=("tpe",), seeds=(0,), budget="1x",
                  keep_checkpoints="some")
    from suite.cli import main

    out = tmp_path / "s"
    assert main(["run", "--task", "toy", "--optimizer", "tpe-median", "--budget", "2x",
                 "--executor", "inprocess", "--keep-checkpoints", "all", "--out",
                 str(out)]) == 0
    starts = sum(r["event"] == "start" for r in read_rows(out / "tpe-median" / "seed-0"))
    pins = list((out / "tpe-median" / "seed-0" / "checkpoints").glob("*.e*.pt"))
    assert len(pins) == starts, "all: every trial's last pin, after the run too"
