"""Ray Tune's ASHA (`ray-asha`) against ours (`asha`) on pools of synthetic learning curves.

    python benchmarks/ray_asha_vs_asha.py [--pools 20] [--configs 50]

Each pool: `--configs` crossing power-law curves with noise (1..27 epochs, eta 3, grace 1),
fed to both optimizers in the same order, one worker, until the optimizer asks for a
configuration beyond the pool with nothing pending (ours then has no promotion left; Ray
has stopped every trial). Printed per pool: epochs each trained (a resumed trial pays only
its new epochs) and the share of rung decisions they agree on (configuration and rung
reached by both: ours promoted it, Ray continued it, or neither).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from suite.optimizers import make_optimizer  # noqa: E402
from suite.testing import ToyTask  # noqa: E402
from suite.types import Fidelity, Status, TrialResult  # noqa: E402

FIDELITY = Fidelity(1, 27, 3)
RUNGS = (1, 3, 9, 27)


def pool(seed: int, n: int) -> np.ndarray:
    """Losses [configuration, epoch] (epoch 0 unused) of `n` crossing noisy curves."""
    rng = np.random.default_rng(seed)
    floor, scale = rng.uniform(0.1, 1.0, (n, 1)), rng.uniform(0.2, 2.0, (n, 1))
    rate = rng.uniform(0.2, 1.5, (n, 1))
    epochs = np.arange(FIDELITY.max_epochs + 1).clip(min=1)
    return floor + scale * epochs ** -rate + rng.normal(0, 0.02, (n, epochs.size))


def replay(name: str, losses: np.ndarray) -> tuple[int, set[tuple[int, int]]]:
    """Epochs trained, and the (configuration, rung) pairs reached."""
    opt = make_optimizer(name, space=ToyTask().config_space(), fidelity=FIDELITY, seed=0)
    trained, reached, epochs_of = 0, set(), {}
    while (trial := opt.ask()).config_id < len(losses):
        trained += trial.epochs - epochs_of.get(trial.resume_from, 0)
        epochs_of[trial.trial_id] = trial.epochs
        reached.add((trial.config_id, trial.epochs))
        loss = float(losses[trial.config_id, trial.epochs])
        opt.tell(TrialResult(trial, Status.OK, loss, trial.epochs))
    return trained, reached


def agreement(ours: set, ray: set) -> float:
    """Share of (configuration, rung below the top) reached by both where both decided alike."""
    both = [(c, r) for c, r in ours & ray if r < RUNGS[-1]]
    alike = [((c, RUNGS[RUNGS.index(r) + 1]) in ours) == ((c, RUNGS[RUNGS.index(r) + 1]) in ray)
             for c, r in both]
    return sum(alike) / len(alike)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pools", type=int, default=20)
    parser.add_argument("--configs", type=int, default=50)
    args = parser.parse_args(argv)
    print("| pool | asha epochs | ray-asha epochs | ray / asha | decisions alike |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    ratios, shares = [], []
    for seed in range(args.pools):
        losses = pool(seed, args.configs)
        ours, reached_ours = replay("asha", losses)
        ray, reached_ray = replay("ray-asha", losses)
        ratios.append(ray / ours)
        shares.append(agreement(reached_ours, reached_ray))
        print(f"| {seed} | {ours} | {ray} | {ratios[-1]:.2f} | {shares[-1]:.0%} |")
    print(f"ray-asha / asha epochs: {min(ratios):.2f}-{max(ratios):.2f} "
          f"(median {np.median(ratios):.2f}); decisions alike: {min(shares):.0%}-"
          f"{max(shares):.0%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
