"""The dehb adapter makes the decisions of DEHB's own loop (`DEHB.run`), resumes promotions,
leaves no files or log handlers behind, and names its extra when DEHB is missing."""

from __future__ import annotations

import sys

import pytest
from optdriver import TASK, build, drive

from suite.errors import SuiteError
from suite.optimizers._dehb import build_dehb
from suite.optimizers._spaces import plain_config, seeded_copy
from suite.optimizers.base import FAILED_LOSS_PENALTY
from suite.types import Status, TrialResult

dehb = pytest.importorskip("dehb")
FIDELITY = TASK.info.fidelity


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # DEHB's ConfigSpace 0.x calls
@pytest.mark.parametrize("fail_every", [0, 4])
def test_one_worker_makes_the_decisions_of_dehbs_own_run(fail_every, tmp_path):
    """DEHB's `run(fevals=N)` (synchronous with one worker) on the toy curve, failures as
    the adapter tells them: the same (configuration, epochs, lineage) sequence, over
    several brackets."""
    evaluated = []

    def objective(config, fidelity, **kwargs):
        evaluated.append((plain_config(config), int(round(fidelity))))
        if fail_every and len(evaluated) % fail_every == 0:
            return {"fitness": FAILED_LOSS_PENALTY, "cost": fidelity}
        return {"fitness": TASK.curve(plain_config(config), int(round(fidelity)), 0),
                "cost": fidelity}

    reference = build_dehb(seeded_copy(TASK.config_space(), 5), FIDELITY, 5, objective)
    reference.output_path = tmp_path  # run() saves its state at the end
    reference.run(fevals=80)
    run = drive(build("dehb", seed=5), workers=1, n_trials=80, fail_every=fail_every)
    assert [(t.config, t.epochs) for t in run.trials] == evaluated
    assert {t.epochs for t in run.trials} == {1, 3, 9, 27}
    # one lineage per DEHB config_id, and the other way round
    pairs = {(h[0], t.config_id) for h, t in zip(reference.history, run.trials, strict=True)}
    assert len(pairs) == len({p[0] for p in pairs}) == len({p[1] for p in pairs})


def test_a_rung_of_failures_does_not_crash_dehb():
    run = drive(build("dehb"), workers=2, n_trials=40, fail_every=1)
    assert {t.epochs for t in run.trials} >= {1, 3}
    assert all(t.resume_from is None for t in run.trials)  # nothing to resume


def test_promotions_resume_the_lower_rung_trial():
    run = drive(build("dehb", seed=2), workers=1, n_trials=60)
    promoted = [t for t in run.trials if t.resume_from is not None]
    assert promoted
    for trial in promoted:
        parent = run.trials[trial.resume_from]
        assert (parent.config, parent.config_id) == (trial.config, trial.config_id)
        assert parent.epochs < trial.epochs


def test_recommends_dehbs_incumbent():
    opt = build("dehb", seed=3)
    assert opt.recommend() is None
    run = drive(opt, workers=2, n_trials=50, fail_every=5)
    best = min((r for r in run.results if r.status == Status.OK), key=lambda r: r.loss)
    assert opt.recommend() == best.trial.trial_id
    assert opt._dehb.inc_score == best.loss


def test_leaves_no_log_handler_and_no_files(tmp_path):
    from loguru import logger

    before = set(logger._core.handlers)
    opt = build("dehb")
    trial = opt.ask()
    opt.tell(TrialResult(trial, Status.OK, 1.0, trial.epochs))
    assert set(logger._core.handlers) == before
    assert list(tmp_path.iterdir()) == []  # tests/optimizers/conftest.py: tempdir is tmp_path


def test_a_missing_dehb_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "dehb", None)
    with pytest.raises(SuiteError, match=r"hpo-suite\[more-optimizers\]") as info:
        build("dehb")
    assert "\n" not in str(info.value)
