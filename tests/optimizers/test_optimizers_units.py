"""Unit tests of the pieces behind the adapters: grid resolution, ASHA rules, encodings."""

from __future__ import annotations

import pytest
from ConfigSpace import (
    Categorical,
    ConfigurationSpace,
    EqualsCondition,
    Float,
    GreaterThanCondition,
    Integer,
    OrdinalHyperparameter,
)
from optdriver import TASK, build, drive

from suite.optimizers import ASHA, GridSearch, OrdinalCodec, asha_rungs, grid_steps
from suite.optimizers._grid import _grid
from suite.types import Fidelity, Status, TrialResult

# The toy space has 3 numeric hyperparameters (lr, width, beta only under momentum) and
# 3 batch sizes: k steps give 3k^2 plain + 3k^3 momentum points.
TOY_GRID = {2: 36, 3: 108, 4: 240}


@pytest.mark.parametrize("hint, steps", [(None, 3), (1, 2), (8, 2), (107, 2), (108, 3),
                                         (239, 3), (240, 4)])
def test_grid_steps_is_the_largest_resolution_within_the_budget(hint, steps):
    space = TASK.config_space()
    assert grid_steps(space, hint) == steps
    assert len(_grid(space, steps)) == TOY_GRID[steps]


def test_grid_visits_every_point_once_then_finishes():
    opt = GridSearch(space=TASK.config_space(), fidelity=TASK.info.fidelity, seed=0,
                     max_full_trials=36)
    run = drive(opt, workers=3, n_trials=1000)
    assert len(run.trials) == 36
    assert len({tuple(sorted(t.config.items())) for t in run.trials}) == 36
    assert opt.finished and opt.ask() is None
    assert {t.config["kind"] for t in run.trials} == {"plain", "momentum"}


def test_grid_with_default_drops_its_duplicate():
    space = ConfigurationSpace()
    space.add([Categorical("c", ["a", "b"], default="a")])
    opt = GridSearch(space=space, fidelity=Fidelity(1, 3, 3), seed=0, default_config={})
    configs = [opt.ask().config for _ in range(2)]
    assert configs[0] == {"c": "a"} and configs[1] == {"c": "b"} and opt.finished


def test_grid_steps_saturate_on_small_integer_ranges():
    space = ConfigurationSpace()
    space.add([Integer("i", (1, 3)), Integer("j", (0, 1))])
    steps = grid_steps(space, 10_000)
    assert steps == 3
    assert len(_grid(space, steps)) == 6


def test_grid_order_is_shuffled_by_the_seed():
    def order(seed):
        opt = GridSearch(space=TASK.config_space(), fidelity=TASK.info.fidelity, seed=seed)
        return [opt.ask().config for _ in range(108)]

    first, second = order(0), order(1)
    assert first != second
    assert sorted(map(str, first)) == sorted(map(str, second))


@pytest.mark.parametrize("fidelity, rungs", [
    (Fidelity(1, 27, 3), (1, 3, 9, 27)),
    (Fidelity(1, 50, 3), (1, 3, 9, 27, 50)),
    (Fidelity(2, 18, 3), (2, 6, 18)),
    (Fidelity(1, 16, 2), (1, 2, 4, 8, 16)),
    (Fidelity(5, 5, 3), (5,)),
])
def test_asha_rungs(fidelity, rungs):
    assert asha_rungs(fidelity) == rungs


def _tell(opt, trial, loss, status=Status.OK):
    opt.tell(TrialResult(trial, status, loss, trial.epochs))


def test_asha_promotes_the_top_third_once():
    opt = ASHA(space=TASK.config_space(), fidelity=TASK.info.fidelity, seed=0)
    bottom = [opt.ask() for _ in range(3)]
    assert {t.epochs for t in bottom} == {1}
    for trial, loss in zip(bottom, [3.0, 1.0, 2.0], strict=True):
        _tell(opt, trial, loss)
    promoted = opt.ask()
    assert (promoted.epochs, promoted.resume_from) == (3, bottom[1].trial_id)
    assert promoted.config_id == bottom[1].config_id
    assert opt.ask().epochs == 1  # floor(3/3) = 1 slot, already used: sample anew


def test_asha_never_promotes_failures_and_prefers_higher_rungs():
    opt = ASHA(space=TASK.config_space(), fidelity=TASK.info.fidelity, seed=0)
    first = [opt.ask() for _ in range(3)]
    for trial in first:
        _tell(opt, trial, float("inf"), Status.FAILED)
    assert opt.ask().epochs == 1
    rung0 = [opt.ask() for _ in range(6)]
    for i, trial in enumerate(rung0):
        _tell(opt, trial, 0.1 * (i + 1))  # 9 results at rung 0: top 3 promotable
    up = [opt.ask() for _ in range(3)]
    assert [t.resume_from for t in up] == [t.trial_id for t in rung0[:3]]
    for i, trial in enumerate(up):
        _tell(opt, trial, 0.1 * (i + 1))
    top = opt.ask()  # rung 1 has 3 results: its best goes up before rung 0 is considered
    assert (top.epochs, top.resume_from) == (9, up[0].trial_id)


def test_ordinal_codec_round_trips_and_rewrites_conditions():
    space = ConfigurationSpace(seed=0)
    size = OrdinalHyperparameter("size", ["s", "m", "l"], default_value="m")
    child = Float("child", (0.0, 1.0))
    other = Float("other", (0.0, 1.0))
    space.add([size, child, other])
    space.add([EqualsCondition(child, size, "l"), GreaterThanCondition(other, size, "s")])
    codec = OrdinalCodec.build(space, seed=1)
    assert not any(isinstance(hp, OrdinalHyperparameter) for hp in codec.space.values())
    assert codec.space["size"].default_value == 1
    for _ in range(30):
        encoded = codec.space.sample_configuration()
        plain = codec.decode(encoded)
        assert codec.encode(plain) == dict(encoded)
        assert ("child" in plain) == (plain["size"] == "l")
        assert ("other" in plain) == (plain["size"] != "s")


def test_smac_resume_from_is_the_latest_lower_budget_ok_trial():
    run = drive(build("smac"), workers=1, n_trials=60, fail_every=7)
    ok = {r.trial.trial_id for r in run.results if r.status == Status.OK}
    for trial in run.trials:
        if trial.resume_from is not None:
            assert trial.resume_from in ok
            lower = [t.trial_id for t in run.trials[: trial.trial_id]
                     if t.config_id == trial.config_id and t.epochs < trial.epochs
                     and t.trial_id in ok]
            assert trial.resume_from == max(lower)


@pytest.mark.parametrize("name", ["tpe", "hyperopt"])
def test_samplers_blind_to_forbidden_clauses_only_ask_allowed_configs(name):
    from ConfigSpace import (
        CategoricalHyperparameter,
        ConfigurationSpace,
        ForbiddenEqualsClause,
        UniformFloatHyperparameter,
    )

    from suite.optimizers import make_optimizer
    from suite.types import Fidelity

    space = ConfigurationSpace(seed=0)
    kind = CategoricalHyperparameter("kind", ["x", "y", "z"], default_value="y")
    space.add([kind, UniformFloatHyperparameter("lr", 1e-4, 1e-1, log=True)])
    space.add(ForbiddenEqualsClause(kind, "x"))
    opt = make_optimizer(name, space=space, fidelity=Fidelity(1, 3, 3), seed=0)
    kinds = [opt.ask().config["kind"] for _ in range(30)]
    assert "x" not in kinds and {"y", "z"} <= set(kinds)
