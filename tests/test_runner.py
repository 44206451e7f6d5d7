"""The runner on the toy task: ledger charges, statuses, failures, cut, promotion policies."""

import math

import pytest

from suite.budget import Ledger, parse_budget
from suite.errors import SuiteError
from suite.executors import InProcessExecutor
from suite.log import RunLog, read_rows
from suite.runner import Runner
from suite.testing import ScriptedOptimizer as Scripted
from suite.testing import ToyTask
from suite.types import Status, Trial


def _configs(task, n):
    space = task.config_space(seed=0)
    return [task.default_config()] + [
        {k: (v.item() if hasattr(v, "item") else v) for k, v in
         dict(space.sample_configuration()).items()} for _ in range(n - 1)]


def _run(tmp_path, task, trials, budget="100x", promotion="resume", workers=1):
    optimizer = Scripted(trials)
    log = RunLog.create(tmp_path / "run", {"task": "toy"})
    runner = Runner(optimizer=optimizer, executor=InProcessExecutor(task, workers=workers),
                    ledger=Ledger(parse_budget(budget), max_epochs=27), log=log,
                    metric=task.info.metric, seed=0, checkpoints=tmp_path / "run" / "ckpt",
                    promotion=promotion)
    reason = runner.run()
    log.close()
    return reason, runner, optimizer, read_rows(tmp_path / "run")


def _hyperband_bracket(configs):
    """3 configs at 1 epoch, the first promoted to 3 then 9 (a successive-halving shape)."""
    trials = [Trial(i, c, 1, i) for i, c in enumerate(configs[:3])]
    trials.append(Trial(3, configs[0], 3, 0, resume_from=0))
    trials.append(Trial(4, configs[0], 9, 0, resume_from=3))
    return trials


@pytest.mark.parametrize("promotion, expected_epochs",
                         [("resume", 3 + 2 + 6), ("retrain", 3 + 3 + 9)])
def test_promotion_policy_decides_what_is_trained_and_charged(tmp_path, promotion,
                                                              expected_epochs):
    task = ToyTask()
    reason, runner, opt, rows = _run(tmp_path, task, _hyperband_bracket(_configs(task, 3)),
                                     promotion=promotion)
    assert reason == "optimizer"
    epochs = [r for r in rows if r["event"] == "epoch"]
    assert len(epochs) == expected_epochs == runner.ledger.totals.epochs
    assert runner.ledger.totals.full == pytest.approx(expected_epochs / 27)
    promoted = [r["epoch"] for r in epochs if r["trial_id"] == 4]
    assert promoted == (list(range(4, 10)) if promotion == "resume" else list(range(1, 10)))
    # resuming equals retraining, except in cost: the same final loss either way
    assert opt.told[4].loss == pytest.approx(task.curve(_configs(task, 1)[0], 9, seed=0))
    assert rows[-1]["event"] == "finish"


def test_budget_cut_is_logged_and_never_told(tmp_path):
    task = ToyTask()
    trials = [Trial(i, c, 27, i) for i, c in enumerate(_configs(task, 3))]
    reason, runner, opt, rows = _run(tmp_path, task, trials, budget="40e", workers=2)
    assert reason == "budget" and runner.ledger.totals.epochs == 40
    statuses = {(r["trial_id"], r["status"]) for r in rows if r["event"] in ("epoch", "end")
                and r["status"] != "running"}
    cut = {tid for tid, status in statuses if status == "cut"}
    assert cut and not cut & set(opt.told), "a cut trial is never told"


def test_failures_are_logged_told_and_survived(tmp_path):
    def fault(config, epoch):
        if config["width"] == 99:
            return None
        return {2: "nan", 3: "raise"}.get(epoch) if config.get("kind") == "momentum" else None

    task = ToyTask(fault=fault)
    configs = _configs(task, 8)
    trials = [Trial(i, c, 4, i) for i, c in enumerate(configs)]
    reason, runner, opt, rows = _run(tmp_path, task, trials)
    assert reason == "optimizer" and len(opt.told) == len(trials)
    for tid, result in opt.told.items():
        failed = configs[tid]["kind"] == "momentum"
        assert (result.status is Status.FAILED) == failed
        assert math.isinf(result.loss) == failed
    failed_rows = [r for r in rows if r.get("status") == "failed"]
    assert failed_rows and all(r["trial_id"] in opt.told for r in failed_rows)


def test_exception_before_first_epoch_gets_an_end_row(tmp_path):
    task = ToyTask(fault=lambda config, epoch: "raise")
    reason, runner, opt, rows = _run(tmp_path, task, [Trial(0, task.default_config(), 3, 0)])
    end = [r for r in rows if r["event"] == "end"]
    assert len(end) == 1 and end[0]["status"] == "failed"
    assert "RuntimeError: injected fault" in end[0]["error"]
    assert opt.told[0].status is Status.FAILED and runner.ledger.totals.epochs == 0


class _Recommending(Scripted):
    """Recommends, after each tell, the trial a script names (None: none yet)."""

    def __init__(self, trials, script) -> None:
        super().__init__(trials)
        self.script, self.answers = list(script), []

    def recommend(self):
        self.answers.append(self.script[min(len(self.told), len(self.script)) - 1]
                            if self.told else None)
        return self.answers[-1]


def test_a_recommendation_is_logged_after_the_tell_and_only_when_it_changes(tmp_path):
    task = ToyTask()
    trials = [Trial(i, c, 1, i) for i, c in enumerate(_configs(task, 5))]
    optimizer = _Recommending(trials, [None, 1, 1, 3, 1])
    log = RunLog.create(tmp_path / "run", {"task": "toy"})
    Runner(optimizer=optimizer, executor=InProcessExecutor(task, workers=1),
           ledger=Ledger(parse_budget("100x"), max_epochs=27), log=log,
           metric=task.info.metric, seed=0, checkpoints=None).run()
    log.close()
    rows = read_rows(tmp_path / "run")
    recommends = [(i, r) for i, r in enumerate(rows) if r["event"] == "recommend"]
    assert [r["trial_id"] for _, r in recommends] == [1, 3, 1]
    # right after the epoch row told when it changed (the 2nd, 4th and 5th tells)
    assert [rows[i - 1]["trial_id"] for i, _ in recommends] == [1, 3, 4]
    for i, row in recommends:
        told = rows[i - 1]
        assert told["event"] == "epoch" and told["status"] == "ok"
        assert row["ledger"] == told["ledger"]
        mine = next(r for r in rows if r["event"] == "epoch" and r["status"] == "ok"
                    and r["trial_id"] == row["trial_id"])
        assert row["loss"] == mine["loss"] and row["config"] == mine["config"]
    assert len(optimizer.answers) == 1 + 5, "asked once at the start, then after each tell"


def test_a_recommendation_of_a_trial_not_ended_ok_is_one_error(tmp_path):
    task = ToyTask()
    trials = [Trial(i, c, 1, i) for i, c in enumerate(_configs(task, 2))]
    log = RunLog.create(tmp_path / "run", {"task": "toy"})
    runner = Runner(optimizer=_Recommending(trials, [7]),
                    executor=InProcessExecutor(task, workers=1),
                    ledger=Ledger(parse_budget("100x"), max_epochs=27), log=log,
                    metric=task.info.metric, seed=0, checkpoints=None)
    with pytest.raises(SuiteError, match="recommends trial 7, which did not end ok"):
        runner.run()
    log.close()
