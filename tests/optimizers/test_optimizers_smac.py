"""SMAC determinism: only across fresh processes that share a fixed PYTHONHASHSEED.

SMAC's random-forest facades depend on hash randomization (set iteration order), so the
same seed in one process can differ from another process unless PYTHONHASHSEED is fixed
before Python starts. Two subprocesses run the shared driver with PYTHONHASHSEED=0, past
SMAC's 50-configuration initial design so the forest proposes configurations too.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
N_TRIALS = 90  # the initial design holds 50 configurations; the rest come from the model


def _start(tmp_path: Path, seed: int) -> subprocess.Popen:
    env = {**os.environ, "PYTHONHASHSEED": "0", "TMPDIR": str(tmp_path),
           "PYTHONPATH": os.pathsep.join([str(ROOT), str(HERE)])}
    command = [sys.executable, str(HERE / "optdriver.py"), "smac", str(seed), "3",
               str(N_TRIALS), "5"]
    return subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _finish(process: subprocess.Popen) -> list:
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, err[-2000:]
    return json.loads(out)


def test_smac_is_deterministic_across_processes_with_a_fixed_hash_seed(tmp_path):
    first, second = _start(tmp_path, 0), _start(tmp_path, 0)  # concurrently: 2 cores
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
