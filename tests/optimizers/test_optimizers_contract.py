"""Contract tests every registered optimizer must pass, on the toy task's conditional space."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from ConfigSpace import Configuration
from optdriver import TASK, build, drive, signature

from suite.errors import SuiteError
from suite.optimizers import OPTIMIZERS, Optimizer, make_optimizer
from suite.types import Status, Trial, TrialResult

NAMES = sorted(OPTIMIZERS)
MULTI_FIDELITY = {"hyperband", "bohb", "smac", "asha", "ray-asha", "smac-hyperband",
                  "tpe-median", "tpe-hyperband", "dehb"}
FIDELITY = TASK.info.fidelity


def check_trials(trials: list[Trial]) -> None:
    """Valid active-only configs, epochs in range, consecutive ids, consistent lineage."""
    space = TASK.config_space()
    by_config_id: dict[int, dict] = {}
    for i, trial in enumerate(trials):
        assert trial.trial_id == i
        active = dict(Configuration(space, values=trial.config))  # raises if invalid
        assert set(active) == set(trial.config), "only active hyperparameters"
        assert all(type(v) in (int, float, str, bool) for v in trial.config.values())
        assert FIDELITY.min_epochs <= trial.epochs <= FIDELITY.max_epochs
        assert isinstance(trial.epochs, int)
        assert by_config_id.setdefault(trial.config_id, trial.config) == trial.config
        if trial.resume_from is not None:
            parent = trials[trial.resume_from]
            assert parent.trial_id < trial.trial_id
            assert parent.config_id == trial.config_id
            assert parent.epochs < trial.epochs


@pytest.mark.parametrize("workers", [1, 2, 3, 4])
@pytest.mark.parametrize("name", NAMES)
def test_trials_satisfy_the_contract(name, workers):
    opt = build(name, seed=workers)
    run = drive(opt, workers=workers, n_trials=40)
    assert len(run.trials) == 40
    check_trials(run.trials)


@pytest.mark.parametrize("name", NAMES)
def test_is_an_optimizer_with_its_registry_name(name):
    opt = build(name)
    assert isinstance(opt, Optimizer)
    assert opt.name == name
    assert opt.finished is False


@pytest.mark.parametrize("name", NAMES)
def test_survives_failed_trials_and_keeps_proposing(name):
    run = drive(build(name), workers=3, n_trials=60, fail_every=5)
    assert len(run.trials) == 60
    assert sum(r.status == Status.FAILED for r in run.results) >= 10
    check_trials(run.trials)


@pytest.mark.parametrize("name", NAMES)
def test_survives_every_trial_failing(name):
    run = drive(build(name), workers=2, n_trials=30, fail_every=1)
    assert len(run.trials) == 30
    check_trials(run.trials)


@pytest.mark.parametrize("name", NAMES)
def test_treats_nan_loss_as_failure(name):
    opt = build(name)
    trial = opt.ask()
    opt.tell(TrialResult(trial, Status.OK, math.nan, trial.epochs))
    assert opt.ask() is not None


@pytest.mark.parametrize("name", sorted(set(NAMES) - {"smac"}))  # smac: see test_smac_*
def test_deterministic_for_a_fixed_seed(name):
    first = drive(build(name, seed=7), workers=3, n_trials=50, fail_every=5)
    second = drive(build(name, seed=7), workers=3, n_trials=50, fail_every=5)
    assert signature(first) == signature(second)


@pytest.mark.parametrize("name", NAMES)
def test_different_seeds_differ(name):
    first = drive(build(name, seed=0), n_trials=20)
    second = drive(build(name, seed=1), n_trials=20)
    assert signature(first) != signature(second)


@pytest.mark.parametrize("name", NAMES)
def test_include_default_puts_the_default_first(name):
    run = drive(build(name, default=True), workers=2, n_trials=10)
    first = run.trials[0]
    assert first.config == TASK.default_config()
    if name in MULTI_FIDELITY:  # in the first bracket: the bottom rung
        assert first.epochs == FIDELITY.min_epochs
    else:  # and not proposed again (grid drops its duplicate grid point)
        assert first.epochs == FIDELITY.max_epochs
        assert [t.config for t in run.trials].count(first.config) == 1


@pytest.mark.parametrize("name", sorted(MULTI_FIDELITY))
def test_multi_fidelity_methods_promote_with_lineage(name):
    run = drive(build(name), workers=1, n_trials=60)
    promotions = [t for t in run.trials if t.resume_from is not None]
    assert promotions, "no configuration was promoted"
    assert {t.epochs for t in run.trials} >= {1, 3, 9}


@pytest.mark.parametrize("name", sorted(set(NAMES) - MULTI_FIDELITY))
def test_full_fidelity_methods_train_to_max_epochs(name):
    run = drive(build(name), workers=2, n_trials=20)
    assert {t.epochs for t in run.trials} == {FIDELITY.max_epochs}
    assert all(t.resume_from is None for t in run.trials)


@pytest.mark.parametrize("name", NAMES)
def test_leaves_numpy_global_rng_and_task_space_alone(name):
    np.random.seed(1234)
    before = np.random.get_state()[1].copy()
    space = TASK.config_space(seed=5)
    expected = TASK.config_space(seed=5).sample_configuration()
    opt = make_optimizer(name, space=space, fidelity=FIDELITY, seed=0)
    drive(opt, workers=2, n_trials=40)
    assert np.array_equal(np.random.get_state()[1], before)
    assert space.sample_configuration() == expected


def test_telling_an_unknown_trial_is_an_error():
    opt = build("random")
    trial = opt.ask()
    opt.tell(TrialResult(trial, Status.OK, 1.0, trial.epochs))
    with pytest.raises(ValueError, match="already told"):
        opt.tell(TrialResult(trial, Status.OK, 1.0, trial.epochs))


def test_unknown_name_is_a_one_line_suite_error_listing_the_choices():
    with pytest.raises(SuiteError) as info:
        make_optimizer("nope", space=TASK.config_space(), fidelity=FIDELITY, seed=0)
    message = str(info.value)
    assert "\n" not in message
    assert all(name in message for name in OPTIMIZERS)


def test_an_invalid_default_is_a_suite_error():
    with pytest.raises(SuiteError):
        make_optimizer("random", space=TASK.config_space(), fidelity=FIDELITY, seed=0,
                       default_config={"lr": 5.0})


@pytest.mark.parametrize("name", NAMES)
def test_configs_are_json_plain(name):
    run = drive(build(name, seed=3), workers=2, n_trials=15)
    for trial in run.trials:
        assert json.loads(json.dumps(trial.config)) == trial.config


@pytest.mark.parametrize("name", NAMES)
def test_many_pending_trials_told_in_reverse_order(name):
    """A burst of asks with nothing told (None is allowed), then results newest first."""
    opt = build(name, max_full_trials=20)
    asked = [t for t in (opt.ask() for _ in range(30)) if t is not None]
    assert asked and [t.trial_id for t in asked] == list(range(len(asked)))
    for trial in reversed(asked):
        opt.tell(TrialResult(trial, Status.OK, TASK.curve(trial.config, trial.epochs, 0),
                             trial.epochs))
    run = drive(opt, workers=2, n_trials=20, history=asked)
    assert run.trials or opt.finished
    check_trials(asked + run.trials)


def test_none_while_pending_is_survivable():
    """Grid answers None once exhausted; the pending results can still be told."""
    opt = build("grid", max_full_trials=8)  # 36 points: the smallest toy grid
    asked = [opt.ask() for _ in range(36)]
    assert opt.finished and opt.ask() is None
    for trial in asked[::-1]:
        opt.tell(TrialResult(trial, Status.OK, 1.0, trial.epochs))
    assert opt.ask() is None
