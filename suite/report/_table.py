"""Analyses of a recorded table: fidelity rank correlation, seed noise, top learning curves.

A table is usable for these only when complete (every configuration × seed × epoch);
`require_complete` says so in one line that a report prints as a note.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from suite.config import to_plain

__all__ = ["require_complete", "fidelity_correlation", "top_overlap", "top_curves",
           "objective_curve", "table_reference", "full_fidelity_reference",
           "full_fidelity_means", "fidelity_sentences"]


def require_complete(table, path: str, revision: int | None = None) -> str | None:
    """None for a complete table of the task's current `revision` (None: not known), else
    the note a report prints instead of its figures."""
    task, recorded = table.meta.get("task"), table.task_revision
    if revision is not None and recorded != revision:
        return (f"table {path} was recorded by revision {recorded} of task {task!r}, which "
                f"now trains as revision {revision}: no figures from it; `suite tabulate "
                f"--task {task}` records a table of today's task")
    if table.complete and table.meta.get("complete", True):
        return None
    curves = np.isfinite(table.curve("device_seconds")).all(axis=2).sum()
    total = len(table.configs) * table.seeds
    return (f"table {path} is incomplete ({int(curves)}/{total} curves recorded); its "
            f"figures wait until `suite tabulate --task {table.meta.get('task')}` finishes it")


def objective_curve(table) -> np.ndarray:
    """[configs, seeds, epochs] of the objective oriented as a loss (lower is better)."""
    values = table.curve(table.meta.get("metric", "val_loss"))
    return values if table.meta.get("minimize", True) else -values


def table_reference(table) -> dict[str, float]:
    """What normalized regret is measured against: `best`, the lowest loss recorded
    anywhere in the table (any configuration, seed, epoch), and `median`, the median over
    configurations of the seed-averaged loss at the last epoch. Regret 0 is the best
    value a run could observe; 1 is as good as a median configuration trained fully."""
    loss = objective_curve(table)
    return {"best": float(np.nanmin(loss)),
            "median": float(np.nanmedian(np.nanmean(loss[:, :, -1], axis=1)))}


def full_fidelity_means(table) -> np.ndarray:
    """[configs]: each configuration's loss at the last epoch, averaged over the table's
    training seeds (what a recommended configuration is worth, trained fully)."""
    return np.nanmean(objective_curve(table)[:, :, -1], axis=1)


def full_fidelity_reference(table) -> dict[str, float]:
    """What a recommendation's regret is measured against: `best`, the lowest
    full-fidelity mean (`full_fidelity_means`) of any configuration, and `median`, their
    median (as `table_reference`'s). Regret 0: the best configuration the table holds."""
    means = full_fidelity_means(table)
    return {"best": float(np.nanmin(means)), "median": float(np.nanmedian(means))}


def fidelity_correlation(loss: np.ndarray, epochs: Sequence[int]) -> pd.DataFrame:
    """Spearman rank correlation of configurations between fidelities, and between seeds.

    Args:
        loss: [configs, seeds, epochs] losses (a table's `objective_curve`).
        epochs: the fidelities to compare (1-based), e.g. 1, 3, 9, 27.

    Returns:
        Rows kind "fidelity" (a, b: epochs; rho of the seed-averaged losses) and kind
        "seeds" (a = b = the epoch; mean rho over pairs of seeds at that epoch: the noise
        ceiling, how well one seed's ranking predicts another's).
    """
    mean = loss.mean(axis=1)
    rows = []
    for a, b in itertools.product(epochs, repeat=2):
        rho = stats.spearmanr(mean[:, a - 1], mean[:, b - 1]).statistic
        rows.append({"kind": "fidelity", "a": a, "b": b, "rho": float(rho)})
    for e in epochs:
        pairs = list(itertools.combinations(range(loss.shape[1]), 2))
        if pairs:
            rho = np.mean([stats.spearmanr(loss[:, i, e - 1], loss[:, j, e - 1]).statistic
                           for i, j in pairs])
            rows.append({"kind": "seeds", "a": e, "b": e, "rho": float(rho)})
    return pd.DataFrame(rows)


def top_overlap(loss: np.ndarray, epochs: Sequence[int], fraction: float = 0.1
                ) -> pd.DataFrame:
    """Share of the top `fraction` of configurations at the last epoch (seed-averaged) that
    are also in the top `fraction` at each of `epochs`. Columns: epoch, overlap, top."""
    mean = loss.mean(axis=1)
    k = max(1, int(round(fraction * mean.shape[0])))
    final = set(np.argsort(mean[:, -1], kind="stable")[:k])
    return pd.DataFrame([{"epoch": e, "top": k, "overlap": len(
        final & set(np.argsort(mean[:, e - 1], kind="stable")[:k])) / k} for e in epochs])


def top_curves(loss: np.ndarray, configs: Sequence[dict], top: int = 10) -> pd.DataFrame:
    """Learning curves of the `top` configurations by seed-averaged loss at the last epoch.

    Columns: rank, config_index, config (JSON-ish label), epoch, loss (seed mean),
    low, high (min and max over seeds).
    """
    mean = loss.mean(axis=1)
    order = np.argsort(mean[:, -1], kind="stable")[:top]
    frames = []
    for rank, index in enumerate(order, start=1):
        config = to_plain(dict(configs[index]))
        label = ", ".join(f"{k}={v}" for k, v in sorted(config.items()))
        frames.append(pd.DataFrame({
            "rank": rank, "config_index": int(index), "config": label,
            "epoch": np.arange(1, loss.shape[2] + 1), "loss": mean[index],
            "low": loss[index].min(axis=0), "high": loss[index].max(axis=0)}))
    return pd.concat(frames, ignore_index=True)


def fidelity_sentences(correlation: pd.DataFrame, overlap: pd.DataFrame) -> list[str]:
    """Whether low fidelities can be trusted, in sentences generated from the numbers."""
    fid = correlation[correlation["kind"] == "fidelity"]
    last = int(fid["b"].max())
    seeds = correlation[correlation["kind"] == "seeds"].set_index("a")["rho"]
    out = []
    for rec in fid[(fid["b"] == last) & (fid["a"] < last)].sort_values("a").itertuples():
        share = overlap.set_index("epoch")["overlap"].get(rec.a, np.nan)
        k = int(overlap["top"].iloc[0])
        text = (f"Epoch {rec.a} vs {last}: Spearman {rec.rho:.2f}; "
                f"{100 * share:.0f}% of the top {k} at {last} epochs are already in the top "
                f"{k} at {rec.a}")
        out.append(text + ".")
    if last in seeds.index:
        out.append(f"Noise ceiling: two seeds of the same configurations agree with "
                   f"Spearman {seeds[last]:.2f} at {last} epochs"
                   + (f" and {seeds[min(seeds.index)]:.2f} at {min(seeds.index)}"
                      if min(seeds.index) != last else "") + ".")
    return out
