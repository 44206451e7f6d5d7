"""Paired comparisons of optimizers at budget points: IQM differences and probability of
improvement, each with a 95% bootstrap interval, and whether the data resolve the pair.

The input is generic: one value per (optimizer, seed, budget point), lower is better (a
loss or a regret). Today that is each run's incumbent at the point; the recommended
configuration's full-fidelity value slots in as another column.

The effect is the difference of IQMs, IQM(A) − IQM(B), not the median of paired
differences: seed k of two optimizers shares nothing but its number (see `_stats`), so
the two samples are resampled independently, stratified by optimizer, as rliable's
`StratifiedIndependentBootstrap` does. The point estimates are rliable's metrics,
`aggregate_iqm` and `probability_of_improvement` (the Mann–Whitney U statistic over m·n,
ties counting half), here P(A < B): the chance a run of A ends lower than one of B. The
intervals are percentile intervals over resamples drawn here in one vectorized step, not
by `rliable.library.get_interval_estimates`: rliable 1.2 needs arch < 8, and arch 7 does
not import under pandas 3 (our stack), so rliable's `library` module is never imported;
arch's own bootstrap also looped in Python per resample (50 s for 6 pairs on the 2-core
machine). A test checks these intervals against scipy's percentile bootstrap.
"""

from __future__ import annotations

import zlib

import numpy as np
import pandas as pd
from scipy import stats

from suite.report._stats import BOOTSTRAP_SEED, bootstrap_band

__all__ = ["pair_differences", "performance_profile", "PAIR_COLUMNS"]

PAIR_COLUMNS = ["budget", "a", "b", "seeds_a", "seeds_b", "iqm_a", "iqm_b", "diff",
                "diff_low", "diff_high", "p_a_better", "p_low", "p_high", "resolved"]


def _p_lower(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """P(A < B) along the last axis pair: x [..., m], y [..., n] -> [...], ties half.

    From the Mann–Whitney U of the pooled ranks (ties: their mean rank), in memory of the
    samples' size; comparing every x with every y took [..., m, n] (4 GB at 1000 seeds
    a side and 1000 resamples). U_x counts the pairs with x > y, ties half, so
    P(A < B) = 1 − U_x / (m·n)."""
    m, n = x.shape[-1], y.shape[-1]
    ranks = stats.rankdata(np.concatenate([x, y], axis=-1), axis=-1)
    u_x = ranks[..., :m].sum(axis=-1) - m * (m + 1) / 2
    return 1.0 - u_x / (m * n)


def _bootstrap(x: np.ndarray, y: np.ndarray, resamples: int, key: str
               ) -> tuple[np.ndarray, np.ndarray]:
    """IQM(A) − IQM(B) and P(A < B) on `resamples` stratified resamples (x, y apart)."""
    rng = np.random.default_rng([BOOTSTRAP_SEED, zlib.crc32(key.encode())])
    xs = x[rng.integers(0, len(x), size=(resamples, len(x)))]
    ys = y[rng.integers(0, len(y), size=(resamples, len(y)))]
    diff = stats.trim_mean(xs, 0.25, axis=1) - stats.trim_mean(ys, 0.25, axis=1)
    return diff, _p_lower(xs, ys)


def _one_pair(x: np.ndarray, y: np.ndarray, resamples: int, key: str,
              level: float) -> dict:
    from rliable import metrics

    diff = float(metrics.aggregate_iqm(x) - metrics.aggregate_iqm(y))
    # rliable's P(X > Y) for scores (higher is better) is P(A < B) on negated losses.
    p = float(metrics.probability_of_improvement(-x[:, None], -y[:, None]))
    if len(x) < 2 or len(y) < 2:  # no interval from one seed
        d_low = d_high = p_low = p_high = np.nan
    else:
        alpha = (1 - level) / 2
        boot_diff, boot_p = _bootstrap(x, y, resamples, key)
        d_low, d_high = np.quantile(boot_diff, [alpha, 1 - alpha])
        p_low, p_high = np.quantile(boot_p, [alpha, 1 - alpha])
    resolved = bool(not np.isnan(d_low) and not (d_low <= 0 <= d_high)
                    and not (p_low <= 0.5 <= p_high))
    return {"seeds_a": len(x), "seeds_b": len(y), "diff": diff, "diff_low": float(d_low),
            "diff_high": float(d_high), "p_a_better": p, "p_low": float(p_low),
            "p_high": float(p_high), "resolved": resolved}


def pair_differences(values: pd.DataFrame, value: str = "loss", *, resamples: int = 2000,
                     level: float = 0.95) -> pd.DataFrame:
    """Every pair of optimizers at every budget point: IQM(A) − IQM(B) and P(A < B).

    Args:
        values: one row per (optimizer, seed, budget point); columns optimizer, seed,
            budget and `value` (lower is better). A NaN `value` (a seed without a value
            there, e.g. no recommendation yet) is left out of the statistics, and the
            pair-point is then not resolved: the seeds left would be the lucky ones.
        value: the column compared.
        resamples: bootstrap resamples per interval (deterministic: a fixed generator
            seeded by the pair and the point).
        level: the intervals' coverage.

    Returns:
        One row per (budget, a, b) with a < b by name: `PAIR_COLUMNS`; `seeds_a` and
        `seeds_b` count the seeds with a value there. `resolved` is False where the
        difference's interval covers 0 or P(A < B)'s covers 0.5, where a side has a
        single seed, or where a seed of either side (one with a row for any point) has
        no value there: the data do not say which is better.
    """
    from rliable import metrics

    rows = []
    seeds = values.groupby("optimizer")["seed"].nunique().to_dict()  # with or without value
    values = values.dropna(subset=[value])
    for budget, at in values.groupby("budget", sort=True):
        samples = {name: g[value].to_numpy(dtype=float)
                   for name, g in at.groupby("optimizer", sort=True)}
        names = list(samples)
        for i, a in enumerate(names):
            for b in names[i + 1:]:
                key = f":{budget!r}:{a}:{b}"
                row = _one_pair(samples[a], samples[b], resamples, key, level)
                # survivorship: the seeds without a value would change the comparison
                complete = len(samples[a]) == seeds[a] and len(samples[b]) == seeds[b]
                row["resolved"] = row["resolved"] and complete
                row.update(budget=budget, a=a, b=b,
                           iqm_a=float(metrics.aggregate_iqm(samples[a])),
                           iqm_b=float(metrics.aggregate_iqm(samples[b])))
                rows.append(row)
    return pd.DataFrame(rows, columns=PAIR_COLUMNS)


def performance_profile(values: pd.DataFrame, value: str = "regret", *, points: int = 100,
                        resamples: int = 2000) -> pd.DataFrame:
    """Per optimizer, the fraction of runs whose `value` is at most τ, for τ over the range
    of the values: rliable's performance profile (the fraction of runs scoring above τ, as
    its `run_score_deviation` computes it, on negated values), lower being better here;
    computed here, as rliable's `library` module imports arch, which does not import under
    pandas 3.

    Args:
        values: one row per (optimizer, seed); columns optimizer, seed and `value`.
        value: the column profiled (lower is better). Rows with NaN are left out.
        points: τ values, evenly spaced from the lowest value to the highest.
        resamples: seed resamples for the 95% percentile band (deterministic).

    Returns:
        Columns optimizer, tau, fraction, low, high, seeds.
    """
    values = values.dropna(subset=[value])
    v = values[value].to_numpy(dtype=float)
    if v.size == 0:
        return pd.DataFrame(columns=["optimizer", "tau", "fraction", "low", "high", "seeds"])
    taus = np.linspace(v.min(), v.max(), points)
    out = []
    for name, group in values.groupby("optimizer", sort=True):
        below = (group[value].to_numpy(dtype=float)[:, None] <= taus[None, :]).astype(float)
        low, high = bootstrap_band(below, "mean", resamples=resamples, key="profile" + name)
        out.append(pd.DataFrame({"optimizer": name, "tau": taus, "fraction": below.mean(axis=0),
                                 "low": low, "high": high, "seeds": len(below)}))
    return pd.concat(out, ignore_index=True)
