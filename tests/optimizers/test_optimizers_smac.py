"""SMAC determinism across processes, whatever their hash seed.

SMAC orders its local search's start points by iterating a set of Configurations (hashed
as strings), so its proposals followed PYTHONHASHSEED: with the same seed, two processes
started with hash seeds 0 and 1 parted at trial 66 of 90. The adapter sorts those points
(`suite.optimizers._smac._acquisition_maximizer`). Two subprocesses with different hash
seeds run the shared driver past SMAC's 50-configuration initial design, so the forest
proposes configurations too, and must agree trial for trial.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
N_TRIALS = 90  # the initial design holds 50 configurations; the rest come from the model


def _start(tmp_path: Path, seed: int, hash_seed: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONHASHSEED": hash_seed, "TMPDIR": str(tmp_path),
           "PYTHONPATH": os.pathsep.join([str(ROOT), str(HERE)])}
    command = [sys.executable, str(HERE / "optdriver.py"), "smac", str(seed), "3",
               str(N_TRIALS), "5"]
    return subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _finish(process: subprocess.Popen) -> list:
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, err[-2000:]
    return json.loads(out)


@pytest.mark.slow  # CI runs it: .ci/run, "slow tests CI runs"
def test_smac_is_deterministic_across_processes_whatever_their_hash_seed(tmp_path):
    first, second = _start(tmp_path, 0, "0"), _start(tmp_path, 0, "1")  # concurrently
    one, two = _finish(first), _finish(second)
    assert len(one) == N_TRIALS
    assert len({row[2] for row in one}) > 55, "the random forest never proposed"
    assert one == two
    assert list(tmp_path.iterdir()) == [], "SMAC left files behind"


def test_smac_on_an_exhausted_finite_space_finishes_instead_of_crashing():
    """A table grid is finite: once SMAC has tried every configuration it says so."""
    from ConfigSpace import ConfigurationSpace, OrdinalHyperparameter

    from suite.optimizers import make_optimizer
    from suite.types import Fidelity, Status, TrialResult

    space = ConfigurationSpace()
    space.add([OrdinalHyperparameter("a", [1, 2]), OrdinalHyperparameter("b", [1, 2])])
    opt = make_optimizer("smac", space=space, fidelity=Fidelity(1, 9, 3), seed=0)
    for _ in range(200):
        trial = opt.ask()
        if trial is None:
            break
        opt.tell(TrialResult(trial, Status.OK, trial.config["a"] + trial.config["b"] / 10,
                             trial.epochs))
    assert trial is None and opt.finished
