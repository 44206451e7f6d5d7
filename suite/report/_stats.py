"""Statistics across seeds: IQM and bootstrap bands, ranks, Friedman, Nemenyi, Wilcoxon–Holm.

The tests come from the field's libraries: autorank (Friedman, Nemenyi critical
difference, in its non-parametric mode) and scikit-posthocs (pairwise Wilcoxon with Holm's
adjustment); paired differences and probability of improvement are in `_pairs` (rliable's
metrics on a vectorized bootstrap). The anytime bands stay a vectorized percentile
bootstrap here: the same estimator as scipy's `stats.bootstrap(method="percentile")` (a
test checks they agree), for 100+ budget points per curve.

What N is. Within one task the blocks of the Friedman test are seed numbers, N = seeds.
Seeds of one task are repeated measurements of one problem, not independent data sets:
the test says whether the optimizers differ *on this task* beyond seed-to-seed noise, and
its critical difference does not generalize to other tasks. Pooling the seeds of several
tasks as if each were a data set (N = tasks × seeds) is the mistake Demšar (2006) warns
against; across tasks, the blocks are tasks (N = tasks), each summarized by its seeds.
Pairing by seed number is nominal: seed k of two optimizers shares nothing but its number
(in a replay, the table and the training seeds a configuration draws).
"""

from __future__ import annotations

import contextlib
import io
import warnings
import zlib
from collections.abc import Callable, Iterator

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["iqm", "aggregate", "bootstrap_band", "anytime_summary", "ranks_over_budget",
           "final_table", "friedman", "wilcoxon_holm", "cliques", "quiet", "AGGREGATES",
           "MIN_FRIEDMAN_SEEDS"]

BOOTSTRAP_SEED = 20240601  # fixed: bands are deterministic


def iqm(values: np.ndarray, axis: int = 0) -> np.ndarray:
    """Interquartile mean: the mean of the middle 50% (25% trimmed from each end)."""
    return stats.trim_mean(values, 0.25, axis=axis)


AGGREGATES: dict[str, Callable[..., np.ndarray]] = {
    "iqm": iqm, "median": lambda v, axis=0: np.median(v, axis=axis),
    "mean": lambda v, axis=0: np.mean(v, axis=axis)}


def aggregate(values: np.ndarray, how: str = "iqm") -> np.ndarray:
    """Aggregate [seeds, points] over seeds."""
    return AGGREGATES[how](values, axis=0)


def bootstrap_band(values: np.ndarray, how: str = "iqm", *, resamples: int = 1000,
                   level: float = 0.95, key: str = "") -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap band of the aggregate of [seeds, points], resampling seeds.

    Deterministic: the generator is seeded by `BOOTSTRAP_SEED` and `key` (e.g. the
    optimizer's name). NaN bands where there are fewer than 2 seeds.
    """
    n = values.shape[0]
    if n < 2:
        nan = np.full(values.shape[1], np.nan)
        return nan, nan
    rng = np.random.default_rng([BOOTSTRAP_SEED, zlib.crc32(key.encode())])
    index = rng.integers(0, n, size=(resamples, n))
    boot = AGGREGATES[how](values[index], axis=1)  # [resamples, points]
    alpha = (1 - level) / 2
    low, high = np.quantile(boot, [alpha, 1 - alpha], axis=0)
    return low, high


def anytime_summary(grid_values: pd.DataFrame, value: str = "loss", how: str = "iqm",
                    resamples: int = 1000) -> pd.DataFrame:
    """Per optimizer and budget point: the aggregate over seeds and its bootstrap band.

    `grid_values` is `suite.report.on_grid` output. A point counts only where every seed
    of the optimizer has a value (no mixing of started and not-yet-started runs).
    Columns: optimizer, budget, center, low, high, seeds.
    """
    out = []
    for name, group in grid_values.groupby("optimizer", sort=True):
        wide = group.pivot_table(index="seed", columns="budget", values=value,
                                 dropna=False, aggfunc="first")
        matrix = wide.to_numpy(dtype=float)
        full = ~np.isnan(matrix).any(axis=0)
        budgets = wide.columns.to_numpy(dtype=float)[full]
        matrix = matrix[:, full]
        if matrix.shape[1] == 0:
            continue
        low, high = bootstrap_band(matrix, how, resamples=resamples, key=name)
        out.append(pd.DataFrame({"optimizer": name, "budget": budgets,
                                 "center": aggregate(matrix, how), "low": low, "high": high,
                                 "seeds": matrix.shape[0]}))
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame(
        columns=["optimizer", "budget", "center", "low", "high", "seeds"])


def ranks_over_budget(grid_values: pd.DataFrame, value: str = "loss") -> pd.DataFrame:
    """Average rank (1 = best, ties averaged) of each optimizer over seeds at each budget.

    Ranks are taken within a seed number across optimizers; an optimizer without an
    incumbent yet ranks last (tied with any other such). Seeds that some optimizer lacks
    altogether are left out. Columns: optimizer, budget, rank, seeds.
    """
    names = sorted(grid_values["optimizer"].unique())
    seeds = grid_values.groupby("seed")["optimizer"].nunique()
    complete = seeds[seeds == len(names)].index
    grid_values = grid_values[grid_values["seed"].isin(complete)]
    out = []
    for budget, group in grid_values.groupby("budget", sort=True):
        wide = group.pivot_table(index="seed", columns="optimizer", values=value,
                                 aggfunc="first", dropna=False).reindex(columns=names)
        wide = wide.fillna(np.inf)
        if wide.empty or wide.shape[1] < 2 or np.isinf(wide.to_numpy()).all():
            continue
        ranks = stats.rankdata(wide.to_numpy(), axis=1).mean(axis=0)
        out.append(pd.DataFrame({"optimizer": wide.columns, "budget": budget, "rank": ranks,
                                 "seeds": len(wide)}))
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame(
        columns=["optimizer", "budget", "rank", "seeds"])


def final_table(finals: pd.DataFrame, value: str = "loss") -> pd.DataFrame:
    """Per optimizer: seeds, mean, std, median, IQM, best (min) of the final `value`."""
    rows = []
    for name, group in finals.groupby("optimizer", sort=True):
        v = group[value].to_numpy(dtype=float)
        rows.append({"optimizer": name, "seeds": len(v), "mean": v.mean(),
                     "std": v.std(ddof=1) if len(v) > 1 else np.nan,
                     "median": np.median(v), "iqm": float(iqm(v)), "best": v.min()})
    return pd.DataFrame(rows)


def _blocks(finals: pd.DataFrame, value: str) -> pd.DataFrame:
    """[seed, optimizer] of `value`, keeping only seeds every optimizer has."""
    return finals.pivot_table(index="seed", columns="optimizer", values=value,
                              aggfunc="first").dropna()


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Keep a statistics library's chatter off the terminal.

    autorank prints which test it forces on every call, and scipy warns (to stderr) on a
    Wilcoxon test of identical samples; a report prints only its own lines.
    """
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()), \
            warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


MIN_FRIEDMAN_SEEDS = 5  # autorank's minimum: the chi² approximation is poor below it


def friedman(finals: pd.DataFrame, value: str = "loss", alpha: float = 0.05) -> dict:
    """Friedman test and Nemenyi critical difference over blocks = seeds (autorank).

    autorank runs in its non-parametric mode, forced: left to itself it switches to
    ANOVA/Tukey when the data look normal, and the report's test would then depend on a
    normality test of 20 numbers. See the module docstring for what N means.

    Returns {k, n, statistic, p, cd, ranks: {optimizer: average rank, 1 = lowest value},
    autorank: the library's result, which its CD diagram (`autorank.plot_stats`) draws}
    or, where it cannot run (fewer than 3 optimizers or `MIN_FRIEDMAN_SEEDS` complete
    seeds), {k, n, skipped: reason}.
    """
    from autorank import autorank

    wide = _blocks(finals, value)
    k, n = wide.shape[1], wide.shape[0]
    if k < 3 or n < MIN_FRIEDMAN_SEEDS:
        return {"k": k, "n": n, "skipped": f"needs at least 3 optimizers and "
                                           f"{MIN_FRIEDMAN_SEEDS} seeds each (have {k} "
                                           f"optimizers, {n} complete seeds)"}
    matrix = wide.to_numpy()
    if np.ptp(matrix, axis=1).max() == 0:  # every optimizer equal on every seed
        statistic = 0.0
    else:  # autorank reports p, not the statistic; both come from this scipy call
        statistic = float(stats.friedmanchisquare(*matrix.T).statistic)
    with quiet():
        result = autorank(wide, alpha=alpha, order="ascending", force_mode="nonparametric")
    p = 1.0 if statistic == 0.0 else float(result.pvalue)
    ranks = result.rankdf["meanrank"].reindex(wide.columns)
    return {"k": k, "n": n, "statistic": statistic, "p": p, "cd": float(result.cd),
            "ranks": {str(o): float(r) for o, r in ranks.items()}, "autorank": result}


def wilcoxon_holm(finals: pd.DataFrame, value: str = "loss", alpha: float = 0.05
                  ) -> pd.DataFrame:
    """Pairwise Wilcoxon signed-rank tests (paired by seed; scikit-posthocs), Holm-adjusted.

    A pair with identical values on every seed gets p = 1 (scipy returns NaN there).
    Columns: a, b, median_diff (a − b), p, p_holm, significant.
    """
    import scikit_posthocs as sp
    from statsmodels.stats.multitest import multipletests

    wide = _blocks(finals, value)
    names = list(wide.columns)
    long = wide.reset_index().melt(id_vars="seed", var_name="optimizer", value_name=value)
    long = long.sort_values(["optimizer", "seed"], kind="stable")  # pairs: same seed order
    with quiet():
        raw = sp.posthoc_wilcoxon(long, val_col=value, group_col="optimizer").fillna(1.0)
    rows = [{"a": a, "b": b, "median_diff": float(np.median(wide[a] - wide[b])),
             "p": float(raw.loc[a, b])} for i, a in enumerate(names) for b in names[i + 1:]]
    table = pd.DataFrame(rows, columns=["a", "b", "median_diff", "p"])
    # Holm over the pairs, as scikit-posthocs' p_adjust="holm" does (the same statsmodels
    # call), once the identical pairs have p = 1 rather than NaN.
    table["p_holm"] = multipletests(table["p"], method="holm")[1] if len(table) else []
    table["significant"] = table["p_holm"] < alpha
    return table


def cliques(ranks: dict[str, float], cd: float) -> list[tuple[str, ...]]:
    """Maximal groups of optimizers, consecutive by average rank, whose ranks differ by less
    than `cd` (not significantly different under Nemenyi): the bars of a CD diagram."""
    names = sorted(ranks, key=lambda n: (ranks[n], n))
    groups: list[tuple[str, ...]] = []
    for i in range(len(names)):
        j = i
        while j + 1 < len(names) and ranks[names[j + 1]] - ranks[names[i]] < cd:
            j += 1
        group = tuple(names[i:j + 1])
        if len(group) > 1 and not any(set(group) <= set(g) for g in groups):
            groups.append(group)
    return groups
