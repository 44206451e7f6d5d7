"""The hyperopt adapter: the space translation, hyperopt's own decisions (`fmin`), its
documents' states, its recommendation, and the missing-extra error."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from ConfigSpace import (
    Categorical,
    ConfigurationSpace,
    EqualsCondition,
    Float,
    GreaterThanCondition,
    InCondition,
    Integer,
)
from optdriver import TASK, build, drive, signature

from suite.errors import SuiteError
from suite.optimizers._hyperopt import flatten, hyperopt_space
from suite.types import Status, TrialResult

hyperopt = pytest.importorskip("hyperopt")
HERE = Path(__file__).parent
EPOCHS = TASK.info.fidelity.max_epochs


def _labels(space: ConfigurationSpace) -> set[str]:
    return set(hyperopt.Domain(flatten, hyperopt_space(space).expr).params)


def test_the_toy_space_keeps_its_condition_as_choice_nesting():
    translated = hyperopt_space(TASK.config_space())
    assert _labels(TASK.config_space()) == {"lr", "width", "batch_size", "kind", "beta"}
    plain = translated.vals(TASK.default_config(), _labels(TASK.config_space()))
    assert plain["kind"] == [0] and plain["beta"] == []  # inactive: no value
    assert plain["batch_size"] == [1.0]  # the ordinal's index (32 in 16, 32, 64)
    momentum = {**TASK.default_config(), "kind": "momentum", "beta": 0.9}
    vals = translated.vals(momentum, _labels(TASK.config_space()))
    assert translated.decode(vals) == momentum


def test_a_child_of_several_values_gets_a_label_per_branch():
    space = ConfigurationSpace()
    opt = Categorical("opt", ["sgd", "adam", "adamw"])
    lr = Float("lr", (1e-4, 1.0), log=True)
    steps = Integer("steps", (1, 100), log=True)
    space.add([opt, lr, steps, InCondition(lr, opt, ["adam", "adamw"]),
               EqualsCondition(steps, opt, "sgd")])
    assert _labels(space) == {"opt", "lr@opt=adam", "lr@opt=adamw", "steps"}
    translated = hyperopt_space(space)
    vals = translated.vals({"opt": "adamw", "lr": 0.01}, _labels(space))
    assert vals["lr@opt=adamw"] == [0.01] and vals["lr@opt=adam"] == []
    assert translated.decode(vals) == {"opt": "adamw", "lr": 0.01}


def test_sampled_values_stay_in_bounds_and_types():
    opt = build("hyperopt", seed=0)
    space = TASK.config_space()
    for trial in drive(opt, n_trials=60).trials:
        for name, value in trial.config.items():
            hp = space[name]
            if hasattr(hp, "lower"):
                assert hp.lower <= value <= hp.upper
                assert isinstance(value, int) == (name == "width")


def test_a_condition_without_a_choice_form_is_a_one_line_error():
    space = ConfigurationSpace()
    lr, wd = Float("lr", (1e-4, 1.0)), Float("wd", (0.0, 1.0))
    space.add([lr, wd, GreaterThanCondition(wd, lr, 0.5)])
    with pytest.raises(SuiteError, match="no hp.choice form") as info:
        hyperopt_space(space)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("fail_every", [0, 5])
def test_one_worker_proposes_what_fmin_proposes(fail_every):
    """hyperopt's own loop, `fmin`, on the same objective and seed: the same configurations,
    past the 20 random start-up trials, failures told as STATUS_FAIL as fmin records them."""
    proposed = []

    def objective(evaluated):
        config = flatten(evaluated)
        proposed.append(config)
        if fail_every and len(proposed) % fail_every == 0:
            return {"status": hyperopt.STATUS_FAIL}
        return {"status": hyperopt.STATUS_OK, "loss": TASK.curve(config, EPOCHS, 0)}

    hyperopt.fmin(objective, hyperopt_space(TASK.config_space()).expr, hyperopt.tpe.suggest,
                  max_evals=35, trials=hyperopt.Trials(), rstate=np.random.default_rng(4),
                  show_progressbar=False)
    run = drive(build("hyperopt", seed=4), workers=1, n_trials=35, fail_every=fail_every)
    assert [t.config for t in run.trials] == proposed
    assert len({json.dumps(c, sort_keys=True) for c in proposed}) == 35


def test_documents_are_running_until_told_and_failures_are_status_fail():
    opt = build("hyperopt", seed=1)
    first, second = opt.ask(), opt.ask()
    docs = opt._trials.trials
    assert [d["state"] for d in docs] == [hyperopt.JOB_STATE_RUNNING] * 2
    opt.tell(TrialResult(second, Status.OK, math.nan, EPOCHS))
    opt.tell(TrialResult(first, Status.OK, 0.5, EPOCHS))
    assert [d["state"] for d in docs] == [hyperopt.JOB_STATE_DONE] * 2
    assert docs[1]["result"] == {"status": hyperopt.STATUS_FAIL}
    assert docs[0]["result"] == {"status": hyperopt.STATUS_OK, "loss": 0.5}


def test_recommends_hyperopts_best_trial():
    opt = build("hyperopt", seed=2)
    assert opt.recommend() is None
    run = drive(opt, workers=3, n_trials=30, fail_every=4)
    told = {r.trial.trial_id: r for r in run.results if r.status == Status.OK}
    best = min(told.values(), key=lambda r: r.loss)
    assert opt.recommend() == best.trial.trial_id


def test_the_default_is_a_complete_first_document():
    opt = build("hyperopt", default=True)
    trial = opt.ask()
    assert trial.config == TASK.default_config()
    doc = opt._trials.trials[0]
    assert set(doc["misc"]["vals"]) == _labels(TASK.config_space())
    opt.tell(TrialResult(trial, Status.OK, 1.0, EPOCHS))
    assert opt.recommend() == trial.trial_id


def test_a_missing_hyperopt_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "hyperopt", None)  # `import hyperopt` raises
    with pytest.raises(SuiteError, match=r"hpo-suite\[more-optimizers\]") as info:
        build("hyperopt")
    assert "\n" not in str(info.value)


@pytest.mark.slow  # two fresh interpreters: ~10 s on 2 cores
def test_deterministic_across_processes_whatever_their_hash_seed(tmp_path):
    def run(hash_seed: str) -> list:
        env = {**os.environ, "PYTHONHASHSEED": hash_seed,
               "PYTHONPATH": os.pathsep.join([str(HERE), *sys.path])}
        out = subprocess.run([sys.executable, str(HERE / "optdriver.py"), "hyperopt", "5", "3",
                              "30", "4"], cwd=tmp_path, env=env, capture_output=True,
                             text=True, check=True)
        return json.loads(out.stdout)

    first, second = run("1"), run("2")
    assert first == second
    assert first == json.loads(json.dumps(signature(
        drive(build("hyperopt", seed=5), workers=3, n_trials=30, fail_every=4))))
