"""`ray-asha` makes Ray Tune's own decisions, one by one.

The reference: a bare `AsyncHyperBandScheduler` (max_t 27, grace period 1, reduction factor
3) driven as Tune's controller drives it, result by result: `on_trial_add` when a trial
starts, `on_trial_result` after every epoch, `on_trial_complete` after a STOP, a freed
worker starting the next configuration. The adapter: the same fixed stream of 50 synthetic
learning curves (curve k for the k-th configuration started), trained in chains to Ray's
milestones by simulated workers on the same integer event clock (epoch durations per
configuration; ties break by configuration index in both). The (configuration, epoch,
decision) sequences at the milestones must be equal, and every reference decision between
milestones must be CONTINUE (why the adapter may skip those epochs). No Ray instance starts.
"""

from __future__ import annotations

import heapq
import sys
from dataclasses import dataclass

import numpy as np
import pytest
from optdriver import TASK, build, drive

from suite.errors import SuiteError
from suite.optimizers import make_optimizer
from suite.types import Fidelity, Status, TrialResult

N_CONFIGS = 50
MAX_T, GRACE, ETA = 27, 1, 3
MILESTONES = {1, 3, 9, 27}


@dataclass(frozen=True)
class _Trial:
    trial_id: str


def _stream(seed: int) -> tuple[list, list[int]]:
    """50 crossing power-law curves with noise, and integer seconds per epoch."""
    rng = np.random.default_rng(seed)
    floor, scale = rng.uniform(0.1, 1.0, N_CONFIGS), rng.uniform(0.2, 2.0, N_CONFIGS)
    rate, noise = rng.uniform(0.2, 1.5, N_CONFIGS), rng.normal(0, 0.02, (N_CONFIGS, MAX_T + 1))
    curves = [lambda e, k=k: float(floor[k] + scale[k] * e ** -rate[k] + noise[k, e])
              for k in range(N_CONFIGS)]
    return curves, [int(d) for d in rng.integers(1, 8, N_CONFIGS)]


def _tune_reference(curves, durations, workers: int) -> tuple[list, list]:
    """Ray's scheduler driven epoch by epoch: (milestone decisions, other decisions)."""
    from ray.tune.schedulers import AsyncHyperBandScheduler

    scheduler = AsyncHyperBandScheduler(
        time_attr="training_iteration", metric="loss", mode="min", max_t=MAX_T,
        grace_period=GRACE, reduction_factor=ETA)
    events: list[tuple[int, int, int]] = []  # (time, configuration, epoch)
    started = 0
    at_milestones, between = [], []

    def start(now: int) -> None:
        nonlocal started
        if started < N_CONFIGS:
            scheduler.on_trial_add(None, _Trial(str(started)))
            heapq.heappush(events, (now + durations[started], started, 1))
            started += 1

    for _ in range(workers):
        start(0)
    while events:
        now, k, epoch = heapq.heappop(events)
        result = {"training_iteration": epoch, "loss": curves[k](epoch)}
        decision = scheduler.on_trial_result(None, _Trial(str(k)), result)
        (at_milestones if epoch in MILESTONES else between).append((k, epoch, decision))
        if decision == "STOP":
            scheduler.on_trial_complete(None, _Trial(str(k)), result)
            start(now)
        else:
            heapq.heappush(events, (now + durations[k], k, epoch + 1))
    return at_milestones, between


def _adapter_decisions(curves, durations, workers: int) -> list:
    """The adapter's trials on the same clock: a chain's trial that another trial resumes
    was continued, one that none resumes was stopped."""
    opt = make_optimizer("ray-asha", space=TASK.config_space(),
                         fidelity=Fidelity(GRACE, MAX_T, ETA), seed=0)
    events: list[tuple[int, int, object]] = []  # (time, configuration, trial)
    done: dict[int, int] = {}  # trial_id -> epochs
    told, resumed = [], set()

    def ask(now: int) -> None:
        trial = opt.ask()
        if trial.config_id >= N_CONFIGS:
            return  # the stream is over: this worker stays idle
        if trial.resume_from is not None:
            resumed.add(trial.resume_from)
        start = done.get(trial.resume_from, 0)
        finish = now + (trial.epochs - start) * durations[trial.config_id]
        heapq.heappush(events, (finish, trial.config_id, trial))

    for _ in range(workers):
        ask(0)
    while events:
        now, k, trial = heapq.heappop(events)
        done[trial.trial_id] = trial.epochs
        opt.tell(TrialResult(trial, Status.OK, curves[k](trial.epochs), trial.epochs))
        told.append((k, trial.epochs, trial.trial_id))
        ask(now)
    return [(k, epochs, "CONTINUE" if tid in resumed else "STOP") for k, epochs, tid in told]


@pytest.mark.parametrize("workers", [1, 4])
@pytest.mark.parametrize("seed", [0, 1])
def test_the_adapter_makes_ray_tunes_own_decisions_one_by_one(seed, workers):
    curves, durations = _stream(seed)
    reference, between = _tune_reference(curves, durations, workers)
    assert {decision for _, _, decision in between} == {"CONTINUE"}
    assert _adapter_decisions(curves, durations, workers) == reference
    decided = {(epoch, decision) for _, epoch, decision in reference}
    assert {(1, "STOP"), (1, "CONTINUE"), (3, "STOP"), (9, "CONTINUE"), (27, "STOP")} <= decided


def test_chains_resume_their_previous_trial_at_ray_milestones():
    run = drive(build("ray-asha"), workers=2, n_trials=80)
    by_id = {t.trial_id: t for t in run.trials}
    for trial in run.trials:
        if trial.resume_from is None:
            assert trial.epochs == 1
        else:
            assert (by_id[trial.resume_from].epochs, trial.epochs) in {(1, 3), (3, 9), (9, 27)}


def test_a_failure_ends_the_chain():
    opt = build("ray-asha")
    first = opt.ask()
    opt.tell(TrialResult(first, Status.FAILED, float("inf"), first.epochs))
    second = opt.ask()
    assert second.config_id != first.config_id and second.resume_from is None


def test_a_fidelity_off_the_powers_of_eta_ends_at_max_epochs():
    """2..50 by 3: Ray's milestones are 2, 6, 18; max_t = 50 is the chain's last trial."""
    opt = make_optimizer("ray-asha", space=TASK.config_space(), fidelity=Fidelity(2, 50, 3),
                         seed=0)
    epochs = []
    for _ in range(4):  # the first configuration always continues: one chain to the top
        trial = opt.ask()
        epochs.append(trial.epochs)
        opt.tell(TrialResult(trial, Status.OK, 1.0, trial.epochs))
    assert epochs == [2, 6, 18, 50]
    assert opt.ask().resume_from is None


def test_never_starts_ray(monkeypatch):
    import ray

    def refuse(*args, **kwargs):
        raise AssertionError("ray.init was called")

    monkeypatch.setattr(ray, "init", refuse)
    drive(build("ray-asha"), workers=3, n_trials=40, fail_every=7)
    assert not ray.is_initialized()


def test_a_missing_ray_is_one_line_naming_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray.tune.schedulers", None)  # import raises ImportError
    with pytest.raises(SuiteError) as info:
        build("ray-asha")
    assert "\n" not in str(info.value)
    assert "pip install 'hpo-suite[ray]'" in str(info.value)
