"""Synthetic run logs and tables for the report tests: small, deterministic, no torch."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from ConfigSpace import (
    CategoricalHyperparameter,
    ConfigurationSpace,
    EqualsCondition,
    OrdinalHyperparameter,
)

from suite.budget import Ledger, Totals, parse_budget
from suite.log import RunLog
from suite.tables import grid_configs, space_to_dict, write_table

MAX_EPOCHS = 9
GRID = {"lr": (0.001, 0.01, 0.1), "batch_size": (32, 128), "dropout": (0.1, 0.5)}


def curve_loss(config: dict, epoch: int, seed: int = 0) -> float:
    """An analytic learning curve: lr matters most, batch size a little, dropout barely."""
    best = 0.3 + 0.2 * abs(math.log10(config["lr"]) + 2) + 0.05 * (config["batch_size"] == 128)
    best += 0.01 * config["dropout"] + 0.002 * seed
    return best + (1.5 - best) * math.exp(-epoch * config["lr"] * 60)


def conditional_space() -> ConfigurationSpace:
    """lr × kind, and beta only where kind is momentum: 2 + 2·3 = 8 settings per lr."""
    space = ConfigurationSpace()
    kind = CategoricalHyperparameter("kind", ["plain", "momentum"])
    beta = OrdinalHyperparameter("beta", [0.5, 0.9, 0.99])
    space.add([OrdinalHyperparameter("lr", [0.001, 0.01, 0.1]), kind, beta])
    space.add(EqualsCondition(beta, kind, "momentum"))
    return space


def conditional_loss(config: dict, epoch: int, seed: int = 0) -> float:
    best = 0.3 + 0.2 * abs(math.log10(config["lr"]) + 2)
    if config["kind"] == "momentum":
        best += 0.5 * (config["beta"] - 0.9) ** 2 - 0.02
    return best + 0.002 * seed + 1.0 / epoch


def write_synthetic_table(path: Path, *, seeds: int = 2, complete: bool = True,
                          conditional: bool = False) -> Path:
    if conditional:
        space = conditional_space()
    else:
        space = ConfigurationSpace()
        for name, values in GRID.items():
            space.add(OrdinalHyperparameter(name, list(values)))
    loss = conditional_loss if conditional else curve_loss
    configs = grid_configs(space)
    names = sorted(space.keys())
    rows = []
    for index, config in enumerate(configs):
        if not complete and index % 2:
            continue
        for seed in range(seeds):
            for epoch in range(1, MAX_EPOCHS + 1):
                rows.append({"config_index": index,
                             **{f"config.{k}": config.get(k) for k in names},
                             "seed": seed, "epoch": epoch,
                             "val_loss": loss(config, epoch, seed),
                             "device_seconds": 0.1 + 0.001 * config.get("batch_size", 32)})
    meta = {"task": "toy", "scale": "full", "metric": "val_loss", "minimize": True,
            "metrics": ["val_loss"], "seeds": seeds, "max_epochs": MAX_EPOCHS, "fixed": {},
            "space": space_to_dict(space), "configs": len(configs), "complete": complete,
            "recorded": len(rows) // MAX_EPOCHS, "failed": 0,
            "environment": {"gpu": "a test"}}
    write_table(path, rows, meta)
    return path


def write_synthetic_run(directory: Path, optimizer: str, seed: int, *, trials: int = 8,
                        table: str | None = None, budget: str = "3x") -> Path:
    """A run log as the runner writes it: start, epoch rows (ok at the target), a
    `recommend` row whenever the runner's stated rule (most epochs, then the lowest loss)
    picks another trial, finish. Each optimizer/seed draws its configurations from the
    grid with its own generator; half the trials stop at 3 epochs (a low fidelity), the
    rest train to MAX_EPOCHS."""
    rng = np.random.default_rng([seed, sum(map(ord, optimizer))])
    names = sorted(GRID)
    meta = {"task": "toy", "optimizer": optimizer, "seed": seed, "budget": budget,
            "metric": "val_loss", "minimize": True, "max_epochs": MAX_EPOCHS,
            "simulated": table is not None, "scale": "full", **({"table": table} if table
                                                                else {})}
    totals = {"epochs": 0, "device_seconds": 0.0, "full": 0.0}
    bias = {"good": -0.05, "bad": 0.05}.get(optimizer, 0.0)
    best = None  # (epochs, loss) of the recommended trial
    with RunLog.create(directory, meta) as log:
        for trial in range(trials):
            config = {n: GRID[n][int(rng.integers(len(GRID[n])))] for n in names}
            target = 3 if trial % 2 == 0 else MAX_EPOCHS
            log.append({"event": "start", "trial_id": trial, "config_id": trial,
                        "config": config, "target_epochs": target, "resumed_from": None,
                        "start_epoch": 0, "asked_after": trial, "seed": seed,
                        "resumed_checkpoint": None, "wall_time": 0.0})
            for epoch in range(1, target + 1):
                loss = curve_loss(config, epoch) + bias + 0.01 * rng.random()
                totals = {"epochs": totals["epochs"] + 1,
                          "device_seconds": totals["device_seconds"] + 0.1,
                          "full": (totals["epochs"] + 1) / MAX_EPOCHS}
                log.append({"event": "epoch", "trial_id": trial, "config_id": trial,
                            "config": config, "target_epochs": target, "resumed_from": None,
                            "epoch": epoch,
                            "metrics": {"val_loss": loss}, "loss": loss,
                            "device_seconds": 0.1, "ledger": dict(totals),
                            "status": "ok" if epoch == target else "running",
                            "worker": 0, "wall_time": 0.0})
            if best is None or (-target, loss) < (-best[0], best[1]):
                best = (target, loss)
                log.append({"event": "recommend", "trial_id": trial, "config_id": trial,
                            "config": config, "target_epochs": target,
                            "resumed_from": None, "loss": loss, "ledger": dict(totals),
                            "wall_time": 0.0})
        spent = Ledger(parse_budget(budget), max_epochs=MAX_EPOCHS,
                       totals=Totals(**totals)).exhausted  # else the optimizer ran dry
        log.append({"event": "finish", "reason": "budget" if spent else "optimizer",
                    "ledger": dict(totals), "wall_time": 0.0})
    return directory


def write_synthetic_study(root: Path, optimizers=("good", "middle", "bad"), seeds=range(3),
                          table: str | None = None) -> Path:
    for name in optimizers:
        for seed in seeds:
            write_synthetic_run(root / name / f"seed-{seed}", name, seed, table=table)
    return root


