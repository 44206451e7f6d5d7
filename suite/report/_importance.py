"""Hyperparameter importance: exact functional ANOVA on a table's full grid, and fANOVA /
PED-ANOVA (Optuna) on an optimizer's own trials; the literature's tiers beside ours.

Grid fANOVA. A table is a full factorial grid, so the functional ANOVA decomposition of
the seed-averaged loss y(x) under the uniform measure over the grid's values needs no
model: with f0 the grand mean, the main effect of hyperparameter i is
f_i(a) = mean(y | x_i = a) − f0, the pairwise effect is
f_ij(a, b) = mean(y | x_i = a, x_j = b) − f_i(a) − f_j(b) − f0, and a term's variance
fraction is mean(f²) / Var(y). What remains (1 − mains − pairs) is higher-order
interaction. "Uniform over the grid's values" means the importance is that of the grid's
levels (e.g. log-spaced learning rates), as a search over this grid would see it.

Conditional hyperparameters (a column that is None where inactive) are handled with a
hierarchical measure: uniform over the settings u of the unconditional hyperparameters,
and within each u uniform over its active children. The unconditional part is the exact
decomposition of m(u) = mean(y | u) (itself a full factorial grid); a conditional c adds
the variance it explains *within its active sub-grid*, weighted by the share of settings
where it is active: P(active) · Var_c(mean(y | c, active)). Its interactions with others
are left in the remainder. Total variance = Var_u m(u) + E_u Var(y | u).
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["grid_fanova", "table_grid_frame", "table_importance", "trial_importance",
           "category_of", "literature_comparison", "literature_sentences", "LITERATURE_TIERS",
           "fidelity_rungs", "importance_sentences"]

# The order the tuning literature claims (learning rate first; then the schedule, batch
# size and weight decay; dropout low), e.g. Bengio (2012, "Practical recommendations"),
# Smith (2018), the Deep Learning Tuning Playbook (Godbole et al., 2023).
LITERATURE_TIERS = {"learning rate": 1, "schedule": 2, "batch size": 3, "weight decay": 4,
                    "dropout": 5}
_CATEGORIES = {"learning rate": ("lr", "learning_rate", "base_lr"),
               "schedule": ("lr_factor", "lr_patience", "schedule", "warmup", "clr_ratio",
                            "clr_half", "lr_schedule", "gamma", "decay_steps"),
               "batch size": ("batch_size",), "weight decay": ("weight_decay", "wd"),
               "dropout": ("dropout", "dropout_p", "dropout_rate")}
_PREFIXES = {"schedule": "warmup", "dropout": "dropout"}


def category_of(hp: str) -> str | None:
    """The literature category of a hyperparameter name, or None (e.g. width, depth)."""
    for category, names in _CATEGORIES.items():
        if hp in names or hp.startswith(_PREFIXES.get(category, "\0")):
            return category
    return None


def fidelity_rungs(max_epochs: int, eta: int = 3, min_epochs: int = 1) -> list[int]:
    """Successive-halving rungs min·eta^k up to max (max always included): 1, 3, 9, 27."""
    rungs, e = [], min_epochs
    while e < max_epochs:
        rungs.append(e)
        e *= eta
    return [*rungs, max_epochs]


def grid_fanova(frame: pd.DataFrame, hps: Sequence[str], value: str = "y") -> pd.DataFrame:
    """Exact fANOVA variance fractions of `value` over a full grid (see module docstring).

    Args:
        frame: one row per grid configuration; hyperparameter columns named as in `hps`
            (NaN/None where inactive) and the `value` column (already averaged over seeds).
        hps: the hyperparameter columns.

    Returns:
        Rows with term ("main", "pair", "conditional" or "remainder"), a, b, fraction
        (of the total variance), and scope (for a conditional: where it is active).

    Raises:
        ValueError: the unconditional part is not a full factorial grid.
    """
    frame = frame[[*hps, value]].copy()
    y = frame[value].to_numpy(dtype=float)
    if not np.isfinite(y).all():
        raise ValueError("grid fANOVA needs a finite value for every configuration")
    active = frame[list(hps)].notna()
    uncond = [h for h in hps if active[h].all() and frame[h].nunique() > 1]
    cond = [h for h in hps if not active[h].all()]
    cells = frame.groupby(uncond, sort=True)[value] if uncond else None
    m = cells.mean() if cells is not None else pd.Series([y.mean()])
    levels = [frame[h].nunique() for h in uncond]
    if uncond and len(m) != math.prod(levels):
        raise ValueError(f"not a full factorial grid over {', '.join(uncond)}: "
                         f"{len(m)} settings, expected {math.prod(levels)}")
    within = cells.var(ddof=0).fillna(0.0).mean() if cells is not None else y.var()
    total = float(m.var(ddof=0) + within)
    rows = [] if total > 0 else [{"term": "remainder", "a": None, "b": None,
                                  "fraction": 0.0, "scope": None}]
    if total <= 0:
        return pd.DataFrame(rows)
    rows += _unconditional_terms(m, uncond, total)
    for c in cond:
        rows.append(_conditional_term(frame, c, uncond, value, total))
    explained = sum(r["fraction"] for r in rows)
    rows.append({"term": "remainder", "a": None, "b": None, "fraction": max(0.0, 1 - explained),
                 "scope": "higher-order interactions"})
    return pd.DataFrame(rows)


def _unconditional_terms(m: pd.Series, uncond: list[str], total: float) -> list[dict]:
    if not uncond:
        return []
    cells = m.reset_index(name="m") if len(uncond) > 0 else None
    f0 = cells["m"].mean()
    mains = {h: cells.groupby(h)["m"].mean() - f0 for h in uncond}
    rows = [{"term": "main", "a": h, "b": None, "fraction": float((mains[h] ** 2).mean() / total),
             "scope": None} for h in uncond]
    for a, b in itertools.combinations(uncond, 2):
        joint = cells.groupby([a, b])["m"].mean().reset_index(name="m")
        g = (joint["m"] - f0 - joint[a].map(mains[a]).to_numpy()
             - joint[b].map(mains[b]).to_numpy())
        rows.append({"term": "pair", "a": a, "b": b, "fraction": float((g ** 2).mean() / total),
                     "scope": None})
    return rows


def _conditional_term(frame: pd.DataFrame, c: str, uncond: list[str], value: str,
                      total: float) -> dict:
    sub = frame[frame[c].notna()].copy()
    n_cells = frame.groupby(uncond).ngroups if uncond else 1
    # weight rows so each unconditional setting counts once, uniform within it
    sub["w"] = 1.0 / sub.groupby(uncond)[value].transform("size") if uncond else 1.0 / len(sub)
    active_cells = sub.groupby(uncond).ngroups if uncond else 1
    sub["w"] /= sub["w"].sum()
    mean_a = float((sub["w"] * sub[value]).sum())
    by = sub.groupby(c)
    effect = by.apply(lambda g: (g["w"] * g[value]).sum() / g["w"].sum(),
                      include_groups=False) - mean_a
    share = by["w"].sum()
    variance = float((share * effect ** 2).sum())
    scope = ", ".join(f"{h} ∈ {{{', '.join(map(str, sorted(sub[h].unique())))}}}"
                      for h in uncond if sub[h].nunique() < frame[h].nunique())
    return {"term": "conditional", "a": c, "b": None,
            "fraction": active_cells / n_cells * variance / total,
            "scope": f"active where {scope}" if scope else "active everywhere it is set"}


def table_grid_frame(table, epoch: int, metric: str | None = None) -> pd.DataFrame:
    """One row per table configuration: its hyperparameters and `y`, the seed-averaged
    `metric` (the table's objective by default) at `epoch`."""
    metric = metric or table.meta.get("metric", "val_loss")
    values = np.nanmean(table.curve(metric)[:, :, epoch - 1], axis=1)
    frame = pd.DataFrame(table.configs)
    names = sorted(table.space.keys())
    frame = frame.reindex(columns=names)
    frame["y"] = values
    return frame


def table_importance(table, epochs: Sequence[int], metric: str | None = None) -> pd.DataFrame:
    """`grid_fanova` of the table's objective at each of `epochs`; column `epoch` added."""
    names = [h for h in sorted(table.space.keys())]
    frames = []
    for epoch in epochs:
        result = grid_fanova(table_grid_frame(table, epoch, metric), names)
        result.insert(0, "epoch", epoch)
        frames.append(result)
    return pd.concat(frames, ignore_index=True)


def _distributions(results: pd.DataFrame, hps: Sequence[str]) -> tuple[pd.DataFrame, dict]:
    """The trials' values as the evaluators get them, and Optuna distributions inferred
    from them (bounds = the observed range).

    Positive numbers spanning at least a decade are passed as log10 values: Optuna's
    fANOVA fits and marginalizes on the linear range (`transform_log=False`), which for a
    learning rate in 1e-4..1e-1 would put 90% of its measure in the top decade and make
    the importance an artefact of the scale.
    """
    import optuna

    frame, dists = results.copy(), {}
    for h in hps:
        values = frame[h].dropna()
        if values.empty:
            continue
        numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(
            values)
        if not numeric:
            frame[h] = frame[h].map(lambda v: str(v) if pd.notna(v) else None)
            dists[h] = optuna.distributions.CategoricalDistribution(sorted(map(str,
                                                                                values.unique())))
            continue
        low, high = float(values.min()), float(values.max())
        if low > 0 and high / low >= 10:
            frame[h] = np.log10(frame[h].astype(float))
            low, high = math.log10(low), math.log10(high)
        elif np.allclose(values, np.round(values)):
            dists[h] = optuna.distributions.IntDistribution(int(low), int(high))
            continue
        dists[h] = optuna.distributions.FloatDistribution(low, high)
    return frame, dists


def _study(results: pd.DataFrame, dists: dict):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="minimize")
    trials = []
    for rec in results.to_dict("records"):
        params, used = {}, {}
        for h, dist in dists.items():
            v = rec.get(h)
            if v is None or (isinstance(v, float) and math.isnan(v)):
                continue
            if isinstance(dist, optuna.distributions.IntDistribution):
                v = int(round(v))
            elif isinstance(dist, optuna.distributions.FloatDistribution):
                v = float(v)
            params[h], used[h] = v, dist
        trials.append(optuna.trial.create_trial(params=params, distributions=used,
                                                value=float(rec["loss"])))
    study.add_trials(trials)
    return study


def trial_importance(results: pd.DataFrame, hps: Sequence[str], *, max_epochs: int,
                     min_trials: int = 10, seed: int = 0) -> tuple[pd.DataFrame, list[str]]:
    """fANOVA and PED-ANOVA (Optuna) on each optimizer's completed trials, seeds pooled.

    Uses the trials at `max_epochs`, or where fewer than `min_trials` reached it, at the
    highest fidelity that has `min_trials`. Optuna's fANOVA assesses only parameters
    present in every trial unless they are named; we name them: the unconditional ones
    on all trials, then each conditional one together with them on the trials where it
    is active. PED-ANOVA assesses conditional parameters by itself. Numbers spanning a
    decade or more are given as log10 values (see `_distributions`).

    Returns:
        (rows optimizer, method, hp, importance (fANOVA: variance fraction of the main
        effect; PED-ANOVA: its score), share (normalized to sum 1 per optimizer and
        method), epochs, trials; notes on what was skipped).
    """
    import optuna

    rows, notes = [], []
    results, dists = _distributions(results, hps)
    for name, group in results.groupby("optimizer", sort=True):
        counts = group["epoch"].value_counts()
        enough = sorted(e for e, n in counts.items() if n >= min_trials)
        if not enough:
            notes.append(f"{name}: fewer than {min_trials} completed trials at any fidelity; "
                         "no importance from its trials")
            continue
        epochs = max_epochs if max_epochs in enough else enough[-1]
        if epochs != max_epochs:
            notes.append(f"{name}: only {counts.get(max_epochs, 0)} trials reached "
                         f"{max_epochs} epochs; its importance uses the {counts[epochs]} "
                         f"trials at {epochs} epochs")
        trials = group[group["epoch"] == epochs]
        study = _study(trials, dists)
        present = {h: trials[h].notna() for h in dists}
        uncond = [h for h in dists if present[h].all() and trials[h].nunique() > 1]
        cond = [h for h in dists if not present[h].all() and present[h].sum() >= min_trials]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fanova = optuna.importance.FanovaImportanceEvaluator(seed=seed)
            scores = dict(fanova.evaluate(study, params=uncond)) if uncond else {}
            for c in cond:  # named explicitly, else Optuna drops it without a word
                scores[c] = float(fanova.evaluate(study, params=[*uncond, c])[c])
            ped = optuna.importance.PedAnovaImportanceEvaluator()
            ped_scores = dict(ped.evaluate(study))
        for method, found in (("fanova", scores), ("ped_anova", ped_scores)):
            total = sum(found.values()) or 1.0
            rows += [{"optimizer": name, "method": method, "hp": h, "importance": float(v),
                      "share": float(v) / total, "epochs": int(epochs), "trials": len(trials)}
                     for h, v in sorted(found.items())]
    return pd.DataFrame(rows, columns=["optimizer", "method", "hp", "importance", "share",
                                       "epochs", "trials"]), notes


def literature_comparison(importance: pd.DataFrame) -> pd.DataFrame:
    """Measured importance per literature category beside its claimed tier.

    `importance` is `grid_fanova` output (one fidelity). A category's importance is the
    variance its hyperparameters explain alone: their main effects (and conditional
    terms) plus their pairwise interactions among themselves. Categories absent from the
    grid are left out; hyperparameters outside every category are listed with category
    None. Columns: category, hps, fraction, with_interactions (adding every pairwise
    interaction its hyperparameters take part in), claimed_rank, measured_rank (both
    among the categories present, by `fraction`), verdict (agrees, close, disagrees, n/a).
    """
    terms = importance[importance["term"] != "remainder"]
    single = terms[terms["term"].isin(["main", "conditional"])]
    hp_cat = {h: category_of(h) for h in single["a"]}
    rows = []
    for category in [*LITERATURE_TIERS, None]:
        members = sorted(h for h, c in hp_cat.items() if c == category)
        if not members:
            continue
        groups = [[h] for h in members] if category is None else [members]
        for hps in groups:
            inside = terms[terms["a"].isin(hps) & (terms["b"].isna() | terms["b"].isin(hps))]
            touching = terms[terms["a"].isin(hps) | terms["b"].isin(hps)]
            rows.append({"category": category, "hps": ", ".join(hps),
                         "fraction": float(inside["fraction"].sum()),
                         "with_interactions": float(touching["fraction"].sum())})
    table = pd.DataFrame(rows, columns=["category", "hps", "fraction", "with_interactions"])
    claimed = table[table["category"].notna()].copy()
    claimed["claimed_rank"] = claimed["category"].map(LITERATURE_TIERS).rank(method="min")
    claimed["measured_rank"] = claimed["fraction"].rank(ascending=False, method="min")
    table = table.merge(claimed[["category", "claimed_rank", "measured_rank"]], on="category",
                        how="left")
    table["verdict"] = [_verdict(r, len(claimed)) for r in table.itertuples()]
    return table.sort_values("fraction", ascending=False, kind="stable").reset_index(drop=True)


def _verdict(row, present: int) -> str:
    if row.category is None or pd.isna(row.claimed_rank):
        return "n/a"
    if row.category == "dropout":  # the claim is "low", not a position
        return "agrees" if row.measured_rank > present / 2 else "disagrees"
    gap = abs(row.measured_rank - row.claimed_rank)
    return "agrees" if gap == 0 else ("close" if gap == 1 else "disagrees")


def _ordinal(n: float) -> str:
    n = int(n)
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def literature_sentences(comparison: pd.DataFrame, where: str) -> list[str]:
    """Sentences, generated from the numbers, on where the measured order agrees with the
    literature's and where it does not. `where` names the data (task, fidelity)."""
    claimed = comparison[comparison["category"].notna()].sort_values("measured_rank")
    if claimed.empty:
        return [f"{where}: no hyperparameter of the literature's categories is in the grid."]
    order = " > ".join(f"{r.category} ({100 * r.fraction:.1f}%)" for r in claimed.itertuples())
    out = [f"{where}, measured order: {order}."]
    for verdict in ("agrees", "close", "disagrees"):
        picked = claimed[claimed["verdict"] == verdict]
        if picked.empty:
            continue
        parts = [f"{r.category} (claimed {_claim(r)}, measured {_ordinal(r.measured_rank)})"
                 for r in picked.itertuples()]
        lead = {"agrees": "Agrees with the literature", "close": "One place off",
                "disagrees": "Disagrees"}[verdict]
        out.append(f"{lead}: {'; '.join(parts)}.")
    wide = claimed.sort_values(["with_interactions", "category"], ascending=[False, True])
    order = " > ".join(f"{r.category} ({100 * r.with_interactions:.1f}%)"
                       for r in wide.itertuples())
    same = list(wide["category"]) == list(claimed["category"])
    out.append(f"Counting also every pairwise interaction a category takes part in, the order "
               f"{'stays' if same else 'becomes'} {order}.")
    if len(claimed) >= 3:
        tau = stats.kendalltau(claimed["claimed_rank"], claimed["measured_rank"]).statistic
        out.append(f"Kendall's tau between the claimed and measured orders: {tau:.2f} "
                   f"({len(claimed)} categories).")
    others = comparison[comparison["category"].isna()]
    if not others.empty:
        listed = ", ".join(f"{r.hps} {100 * r.fraction:.1f}%" for r in others.itertuples())
        out.append(f"Outside the claim's categories: {listed}.")
    return out


def _claim(row) -> str:
    return "low" if row.category == "dropout" else _ordinal(row.claimed_rank)


def importance_sentences(importance: pd.DataFrame, top: int = 3) -> list[str]:
    """Per fidelity, the leading terms and the interaction share, from the numbers."""
    out = []
    for epoch, group in importance.groupby("epoch", sort=True):
        singles = group[group["term"].isin(["main", "conditional"])].nlargest(top, "fraction")
        pairs = group[group["term"] == "pair"]
        best_pair = pairs.nlargest(1, "fraction")
        lead = ", ".join(f"{r.a} {100 * r.fraction:.1f}%" for r in singles.itertuples())
        paired = 100 * pairs["fraction"].sum()
        text = (f"At {epoch} epoch{'s' if epoch != 1 else ''} the main effects lead with "
                f"{lead}; all pairwise interactions together explain {paired:.1f}%")
        if not best_pair.empty:
            r = best_pair.iloc[0]
            text += f" (largest {r.a} × {r.b}, {100 * r.fraction:.1f}%)"
        rest = group.loc[group["term"] == "remainder", "fraction"].sum()
        out.append(text + f", higher-order terms {100 * rest:.1f}%.")
    return out
