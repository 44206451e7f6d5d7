"""How many seeds settle the order of two optimizers: a bootstrap over seed sets.

A study with n seeds sees one seed set of size n. Drawing n seed numbers with replacement
from the many seeds of a large replay, again and again, shows how often a study of that
size would order a pair of optimizers differently from all the seeds together. The seed
numbers drawn are shared by every optimizer, as in a real study (seed k of every
optimizer runs), though pairing by number is nominal (see `_stats`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["order_flips", "FLIP_COLUMNS"]

FLIP_COLUMNS = ["budget", "a", "b", "aggregate", "n", "full_a", "full_b", "flip_rate",
                "resamples"]

_AGG = {"iqm": lambda v, axis: stats.trim_mean(v, 0.25, axis=axis),
        "median": lambda v, axis: np.median(v, axis=axis)}


def _flips_at(wide: pd.DataFrame, budget, sizes, aggregates, resamples: int,
              rng: np.random.Generator) -> list[dict]:
    """Flip rates of every pair at one budget point; `wide` is [seed, optimizer]."""
    names, matrix = list(wide.columns), wide.to_numpy(dtype=float)
    rows = []
    for how in aggregates:
        full = _AGG[how](matrix, axis=0)
        for n in sizes:
            index = rng.integers(0, len(matrix), size=(resamples, n))
            boot = _AGG[how](matrix[index], axis=1)  # [resamples, optimizers]
            for i, a in enumerate(names):
                for j in range(i + 1, len(names)):
                    order = np.sign(full[i] - full[j])
                    # A tie in a resample counts as a flip: it does not give the order.
                    flips = np.mean(np.sign(boot[:, i] - boot[:, j]) != order)
                    rows.append({"budget": budget, "a": a, "b": names[j], "aggregate": how,
                                 "n": n, "full_a": float(full[i]), "full_b": float(full[j]),
                                 "flip_rate": float(flips), "resamples": resamples})
    return rows


def order_flips(values: pd.DataFrame, value: str = "loss", *,
                sizes: tuple[int, ...] = (10, 20, 50, 100),
                aggregates: tuple[str, ...] = ("iqm", "median"), resamples: int = 2000,
                seed: int = 0) -> pd.DataFrame:
    """How often n seeds order each pair differently from all seeds, per budget point.

    Args:
        values: one row per (optimizer, seed, budget point); columns optimizer, seed,
            budget and `value`. Only seeds that every optimizer has at a point are used.
        value: the column compared (lower is better; the order is by its aggregate).
        sizes: seed-set sizes n; each resample draws n seed numbers with replacement.
        aggregates: "iqm" and/or "median".
        resamples: seed sets drawn per size.
        seed: the generator's seed (the answer is deterministic).

    Returns:
        One row per (budget, a, b, aggregate, n): `FLIP_COLUMNS`, with full_a, full_b
        the aggregates over all seeds and flip_rate the fraction of seed sets whose
        order of a and b differs from theirs (ties count as flips). A pair tied on all
        seeds has no order to keep: every untied resample counts as a flip.
    """
    rng = np.random.default_rng(seed)
    rows = []
    for budget, at in values.groupby("budget", sort=True):
        wide = at.pivot_table(index="seed", columns="optimizer", values=value,
                              aggfunc="first").dropna()
        if len(wide) and wide.shape[1] >= 2:
            rows += _flips_at(wide, budget, sizes, aggregates, resamples, rng)
    return pd.DataFrame(rows, columns=FLIP_COLUMNS)
