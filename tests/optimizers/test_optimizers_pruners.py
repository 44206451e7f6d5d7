"""tpe-median and tpe-hyperband: Optuna's own pruning decisions, one ledger charge per epoch.

The equivalence test runs Optuna's `study.optimize` with an objective that reports the toy
task's learning curve epoch by epoch and raises `TrialPruned` when `trial.should_prune()`
says so, and drives the adapter with one worker on the same curves: the same configurations
reach the same epochs and end the same way (pruned or complete).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from optdriver import TASK, build, drive

from suite.log import read_rows
from suite.optimizers._tpe import _suggest_config, encode
from suite.study import StudySpec, run_study
from suite.testing import toy_table
from suite.types import Status, TrialResult

FIDELITY = TASK.info.fidelity
PRUNERS = {
    "tpe-median": lambda: optuna.pruners.MedianPruner(),
    "tpe-hyperband": lambda: optuna.pruners.HyperbandPruner(
        min_resource=FIDELITY.min_epochs, max_resource=FIDELITY.max_epochs,
        reduction_factor=FIDELITY.eta),
}
N_TRIALS = 30
SEED = 4
pytestmark = pytest.mark.filterwarnings(  # TPESampler's `group`
    "ignore::optuna.exceptions.ExperimentalWarning")


def _reference(name: str) -> list[tuple]:
    """Optuna's own loop: `study.optimize` with the pruner, the task default enqueued."""
    sampler = optuna.samplers.TPESampler(seed=SEED, multivariate=True, group=True,
                                         constant_liar=True)
    study = optuna.create_study(direction="minimize", sampler=sampler,
                                pruner=PRUNERS[name](), study_name=name)
    study.enqueue_trial(encode(TASK.config_space(), TASK.default_config()))

    def objective(trial):
        config = _suggest_config(TASK.config_space(), trial)
        for epoch in range(FIDELITY.min_epochs, FIDELITY.max_epochs + 1):
            loss = TASK.curve(config, epoch, 0)
            trial.report(loss, step=epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return loss

    study.optimize(objective, n_trials=N_TRIALS)
    return _outcomes(study.trials)


def _outcomes(trials) -> list[tuple]:
    return [(sorted(t.params.items()), t.last_step, t.state.name, t.intermediate_values)
            for t in trials]


def _adapter(name: str) -> tuple[list[tuple], dict[int, list]]:
    """The adapter with one worker until it starts Optuna trial number N_TRIALS."""
    opt = build(name, seed=SEED, default=True)
    chains: dict[int, list] = {}  # config id -> its suite trials
    while (trial := opt.ask()).config_id < N_TRIALS:
        chains.setdefault(trial.config_id, []).append(trial)
        loss = TASK.curve(trial.config, trial.epochs, 0)
        opt.tell(TrialResult(trial, Status.OK, loss, trial.epochs))
    return _outcomes(opt._study.trials[:N_TRIALS]), chains


@pytest.mark.parametrize("name", sorted(PRUNERS))
def test_makes_the_decisions_of_optunas_study_optimize(name):
    expected = _reference(name)
    ours, chains = _adapter(name)
    assert ours == expected
    states = {state for _, _, state, _ in expected}
    assert states == {"PRUNED", "COMPLETE"}, "the pruner must both stop and let complete"
    # the suite trials are those chains: one epoch more each, resuming the previous step
    for number, (_, last_step, _, _) in enumerate(expected):
        steps = chains[number]
        assert [t.epochs for t in steps] == list(range(FIDELITY.min_epochs, last_step + 1))
        assert [t.resume_from for t in steps] == [None] + [t.trial_id for t in steps[:-1]]


@pytest.mark.parametrize("name", sorted(PRUNERS))
def test_recommends_optunas_best_trial_at_its_last_epoch(name):
    opt = build(name, seed=1)
    run = drive(opt, workers=3, n_trials=300)  # failures end chains: none here
    best = opt._study.best_trial
    recommended = next(r for r in run.results if r.trial.trial_id == opt.recommend())
    assert recommended.trial.epochs == FIDELITY.max_epochs == best.last_step
    assert recommended.loss == best.value and recommended.status == Status.OK
    assert encode(TASK.config_space(), recommended.trial.config) == best.params


@pytest.mark.parametrize("name", sorted(PRUNERS))
def test_recommends_nothing_before_a_trial_completes(name):
    opt = build(name)
    trial = opt.ask()
    opt.tell(TrialResult(trial, Status.OK, 1.0, trial.epochs))
    assert opt.recommend() is None


@pytest.mark.parametrize("name", sorted(PRUNERS))
def test_a_failed_step_fails_its_optuna_trial_and_ends_the_chain(name):
    opt = build(name)
    first = opt.ask()
    opt.tell(TrialResult(first, Status.OK, math.nan, first.epochs))
    assert opt._study.trials[0].state.name == "FAIL"
    assert opt.ask().resume_from is None  # a new Optuna trial, not the failed one's next step


def test_several_workers_keep_several_chains_open_in_tell_order():
    opt = build("tpe-median", seed=2)
    first, second = opt.ask(), opt.ask()
    for trial in (second, first):  # told newest first: continued in that order
        opt.tell(TrialResult(trial, Status.OK, 1.0, trial.epochs))
    assert [opt.ask().resume_from, opt.ask().resume_from] == [second.trial_id, first.trial_id]


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    return toy_table(tmp_path_factory.mktemp("tables") / "toy.parquet", seeds=1)


@pytest.mark.parametrize("name", sorted(PRUNERS))
def test_replay_charges_each_epoch_once(tmp_path, table, name):
    """Every step of a chain trains only its new epoch, from where the previous one ended."""
    spec = StudySpec(task="toy", optimizers=(name,), seeds=(0,), budget="3x",
                     table=str(table), workers=3)
    _assert_each_epoch_charged_once(run_study(spec, tmp_path / "s"))


def test_live_steps_resume_the_checkpoint_of_the_previous_step(tmp_path):
    spec = StudySpec(task="toy", optimizers=("tpe-hyperband",), seeds=(0,), budget="2x",
                     executor="inprocess")
    rows = _assert_each_epoch_charged_once(run_study(spec, tmp_path / "s"))
    resumed = [r for r in rows if r["event"] == "start" and r["resumed_from"] is not None]
    # the previous step's checkpoint, pinned at its last epoch (`run_job`)
    assert resumed and all(r["resumed_checkpoint"] == f"{r['resumed_from']}.e{r['start_epoch']}.pt"
                           for r in resumed)


def _assert_each_epoch_charged_once(outcomes) -> list[dict]:
    (outcome,) = outcomes
    rows = read_rows(outcome.directory)
    epochs = [(r["config_id"], r["epoch"]) for r in rows if r["event"] == "epoch"]
    assert len(epochs) == len(set(epochs)), "an epoch of a chain was trained twice"
    by_chain: dict[int, list[int]] = {}
    for config_id, epoch in epochs:
        by_chain.setdefault(config_id, []).append(epoch)
    assert all(e == list(range(1, len(e) + 1)) for e in by_chain.values())
    assert max(len(e) for e in by_chain.values()) > 1, "no chain was continued"
    assert outcome.ledger.totals.epochs == len(epochs)
    starts = [r for r in rows if r["event"] == "start"]
    assert all(r["start_epoch"] == r["target_epochs"] - 1 for r in starts)
    return rows


# Four fresh interpreters take ~20 s on 2 cores; in one process, the contract's
# test_deterministic_for_a_fixed_seed already compares two separately built studies.
@pytest.mark.slow
def test_deterministic_across_processes_whatever_their_hash_seed(tmp_path):
    """Optuna names a study by a random UUID and `HyperbandPruner` hashes that name into a
    trial's bracket: the adapter names it, so two fresh processes agree step for step."""
    here = Path(__file__).resolve().parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(here.parents[1]), str(here)])}

    def start(name: str, hash_seed: str) -> subprocess.Popen:
        # past the startup trials, so both pruners prune and TPE models
        command = [sys.executable, str(here / "optdriver.py"), name, "3", "3", "400", "11"]
        return subprocess.Popen(command, cwd=tmp_path, env={**env, "PYTHONHASHSEED": hash_seed},
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    runs = {(name, h): start(name, h) for name in PRUNERS for h in ("0", "1")}  # concurrently
    outputs = {}
    for key, process in runs.items():
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, err[-2000:]
        outputs[key] = json.loads(out)
    for name in PRUNERS:
        assert len(outputs[name, "0"]) == 400
        assert outputs[name, "0"] == outputs[name, "1"]
