"""SMAC's Hyperband against hpbandster's: the same brackets, up to a documented difference.

Both adapters run one full Hyperband round with one simulated worker, so each bracket's
rungs come in order: a rung of new configurations, then rungs of promotions (trials that
resume a checkpoint). Configurations differ (each library samples its own); the budgets
per rung are equal, bracket by bracket. The numbers of configurations differ where the two
libraries' formulas do (note at the top of test_optimizers_hpbandster.py): SMAC follows
the paper, n = ceil((s_max + 1) / (s + 1) * eta**s), hpbandster takes
floor((s_max + 1) / (s + 1)) * eta**s; later rungs keep floor(n * eta**-i) in both.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from itertools import groupby
from pathlib import Path

import pytest
from optdriver import TASK, drive

from suite.optimizers import make_optimizer
from suite.types import Fidelity

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def _brackets(name: str, fidelity: Fidelity, n_trials: int) -> list[list[tuple[int, int]]]:
    """[(configurations, epochs) per rung] per bracket, in the order they ran."""
    opt = make_optimizer(name, space=TASK.config_space(), fidelity=fidelity, seed=0)
    run = drive(opt, workers=1, n_trials=n_trials)
    brackets: list[list[tuple[int, int]]] = []
    for (epochs, new), rung in groupby(run.trials, lambda t: (t.epochs, t.resume_from is None)):
        if new:
            brackets.append([])
        brackets[-1].append((len(list(rung)), epochs))
    return brackets


def _sizes(fidelity: Fidelity, *, paper: bool) -> list[list[int]]:
    """Configurations per rung per bracket, largest bracket first, by either formula."""
    eta = fidelity.eta
    s_max = math.floor(math.log(fidelity.max_epochs / fidelity.min_epochs, eta) + 1e-9)
    sizes = []
    for s in range(s_max, -1, -1):
        n = (math.ceil((s_max + 1) / (s + 1) * eta**s) if paper
             else (s_max + 1) // (s + 1) * eta**s)
        sizes.append([n // eta**i for i in range(s + 1)])
    return sizes


@pytest.mark.parametrize(("fidelity", "smac_only"), [
    (Fidelity(1, 27, 3), {1: [12, 4, 1]}),  # hpbandster: 9, 3, 1
    (Fidelity(2, 50, 3), {1: [5, 1]}),  # hpbandster: 3, 1
])
def test_smac_and_hpbandster_hyperband_run_the_same_brackets_but_one(fidelity, smac_only):
    hpbandster_sizes, paper_sizes = _sizes(fidelity, paper=False), _sizes(fidelity, paper=True)
    one_round = sum(map(sum, paper_sizes))  # SMAC's round is the longer one
    smac = _brackets("smac-hyperband", fidelity, one_round)
    hpb = _brackets("hyperband", fidelity, one_round)[: len(hpbandster_sizes)]
    assert [[n for n, _ in b] for b in smac] == paper_sizes
    assert [[n for n, _ in b] for b in hpb] == hpbandster_sizes
    assert [[e for _, e in b] for b in smac] == [[e for _, e in b] for b in hpb]
    differ = {i: s for i, (s, h) in enumerate(zip(paper_sizes, hpbandster_sizes, strict=True))
              if s != h}
    assert differ == smac_only


def test_budgets_per_rung_are_hpbandsters_rounded_epochs():
    brackets = _brackets("smac-hyperband", Fidelity(2, 50, 3), 20)
    assert [[e for _, e in b] for b in brackets] == [[6, 17, 50], [17, 50], [50]]


@pytest.mark.slow  # two SMAC processes: about 13 s on the 2-core development machine
def test_smac_hyperband_is_deterministic_across_processes_whatever_their_hash_seed(tmp_path):
    env = {**os.environ, "TMPDIR": str(tmp_path),
           "PYTHONPATH": os.pathsep.join([str(ROOT), str(HERE)])}
    command = [sys.executable, str(HERE / "optdriver.py"), "smac-hyperband", "0", "3", "80", "5"]
    runs = [subprocess.Popen(command, cwd=tmp_path, env={**env, "PYTHONHASHSEED": h},
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for h in ("0", "1")]  # concurrently
    outputs = [run.communicate(timeout=300) for run in runs]
    assert all(run.returncode == 0 for run in runs), outputs[0][1][-2000:]
    one, two = (json.loads(out) for out, _ in outputs)
    assert len(one) == 80 and one == two
    assert list(tmp_path.iterdir()) == [], "SMAC left files behind"
