"""`recommend()` of every optimizer: a trial told OK, and each library's own answer.

SMAC's equals `intensifier.get_incumbent()`, TPE's `study.best_trial`, Hyperband's and
BOHB's hpbandster's `Result.get_incumbent_id` on the same iterations; grid, random and ASHA
follow the stated rule (most epochs, then lowest loss, the earlier of equals).
"""

from __future__ import annotations

import pytest
from optdriver import build, drive

from suite.optimizers import OPTIMIZERS
from suite.optimizers.base import Recommending, config_key


def _runner_rule(results) -> int | None:
    best = None
    for r in results:
        if r.status == "ok" and (best is None or (r.epochs, -r.loss) > (best.epochs, -best.loss)):
            best = r
    return None if best is None else best.trial.trial_id


class _Stepping:
    """Wraps an optimizer to record `recommend()` after every tell."""

    def __init__(self, opt, check) -> None:
        self.opt, self.check, self.told, self.seen = opt, check, [], []

    @property
    def finished(self) -> bool:
        return self.opt.finished

    def ask(self):
        return self.opt.ask()

    def tell(self, result) -> None:
        self.opt.tell(result)
        self.told.append(result)
        self.seen.append(self.opt.recommend())
        self.check(self.opt, self.told, self.seen[-1])


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_recommendation_is_a_trial_told_ok(name):
    opt = build(name, seed=1)
    assert isinstance(opt, Recommending) and opt.recommend() is None

    def check(_opt, told, rec):
        ok = {r.trial.trial_id for r in told if r.status == "ok"}
        assert rec is None or rec in ok

    run = _Stepping(opt, check)
    drive(run, workers=2, n_trials=35, fail_every=5)
    # hpbandster recommends nothing until a configuration has a result at the max budget,
    # Optuna with a pruner nothing until a trial completes all its epochs (one-epoch steps)
    assert run.seen[-1] is not None or name in ("hyperband", "bohb", "tpe-median",
                                                "tpe-hyperband")


@pytest.mark.parametrize("name", ["grid", "random", "asha"])
def test_stated_rule(name):
    run = _Stepping(build(name, seed=2, max_full_trials=30),
                    lambda _o, told, rec: _check_equal(rec, _runner_rule(told)))
    drive(run, workers=3, n_trials=50, fail_every=7)


def _check_equal(a, b) -> None:
    assert a == b


def test_tpe_is_optunas_best_trial():
    def check(opt, told, rec):
        completed = [t for t in opt._study.trials if t.state.name == "COMPLETE"]
        if not completed:
            assert rec is None
            return
        best = opt._study.best_trial
        ours = next(r for r in told if r.trial.trial_id == rec)
        assert ours.loss == best.value and opt._trial_ids[best.number] == rec

    drive(_Stepping(build("tpe", seed=3, default=True), check), workers=2, n_trials=30,
          fail_every=6)


def test_smac_is_its_intensifiers_incumbent():
    def check(opt, told, rec):
        incumbent = opt._facade.intensifier.get_incumbent()
        if incumbent is None:
            assert rec is None
            return
        ours = next(r for r in told if r.trial.trial_id == rec)
        assert config_key(ours.trial.config) == config_key(dict(incumbent))
        same = [r.epochs for r in told if r.status == "ok"
                and config_key(r.trial.config) == config_key(ours.trial.config)]
        assert ours.epochs == max(same)

    run = _Stepping(build("smac", seed=4), check)
    drive(run, workers=1, n_trials=40, fail_every=9)
    assert run.seen[-1] is not None


@pytest.mark.parametrize("name", ["hyperband", "bohb"])
def test_hpbandster_is_results_incumbent(name):
    from hpbandster.core.result import Result

    def check(opt, told, rec):
        max_budget = opt._fidelity.max_epochs
        result = Result([it.data for it in opt._iterations],
                        {"max_budget": max_budget, "time_ref": 0})
        hb_id = result.get_incumbent_id()
        if hb_id is None:
            assert rec is None
            return
        ours = next(r for r in told if r.trial.trial_id == rec)
        assert ours.epochs == max_budget
        assert ours.loss == result.data[hb_id].results[max_budget]["loss"]

    run = _Stepping(build(name, seed=5), check)
    drive(run, workers=2, n_trials=70, fail_every=8)
    assert run.seen[-1] is not None
