"""Report sections on how the optimizers did: the inputs, anytime performance, ranks
and the final budget, and the statistics over seeds."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from suite.report import _figures as F
from suite.report._runs import (
    RunSet,
    axis_label,
    budget_grid,
    final_incumbents,
    incumbent_traces,
    on_grid,
    stated_budgets,
    trial_results,
)
from suite.report._stats import (
    anytime_summary,
    cliques,
    final_table,
    friedman,
    nemenyi_cd,
    ranks_over_budget,
    wilcoxon_holm,
)
from suite.report._table import table_reference
from suite.report._writer import Report, TaskInputs, md_table

_N_WARNING = ("N counts seeds of one task. Seeds are repeated measurements of one problem, "
              "not independent data sets: the test and its critical difference describe "
              "this task's seed-to-seed variation and do not generalize to other tasks. "
              "Pooling seeds of several tasks as if each were a data set (N = tasks × seeds) "
              "is the mistake Demšar (2006) warns against; across tasks the blocks are tasks. "
              "Pairing by seed number is nominal.")


@dataclass(frozen=True)
class Anytime:
    """What the anytime section derives from the runs, for the sections after it."""

    results: pd.DataFrame  # every completed trial (`trial_results`)
    trace: pd.DataFrame  # incumbent over budget per run, with `regret` given a table
    unit: str  # the runs' budget axis


def describe_inputs(report: Report, inputs: TaskInputs, runs: RunSet | None) -> None:
    """What the task's sections read: the table, and the runs (how many, what kind)."""
    table = inputs.table
    if table is not None:
        env = table.meta.get("environment", {})
        report.text(f"Table `{inputs.table_path}`: {len(table.configs)} configurations × "
                    f"{table.seeds} seeds × {table.max_epochs} epochs of "
                    f"`{table.meta.get('metric')}`, recorded on {env.get('gpu', 'a CPU')}.")
    if runs is None:
        return
    meta = runs.runs
    kind = ("replayed from a table" if meta["simulated"].all() else
            "live" if not meta["simulated"].any() else "live and replayed")
    seeds = meta.groupby("optimizer")["seed"].nunique()
    report.text(f"{len(meta)} runs ({kind}), budget {stated_budgets(runs)}"
                f": " + ", ".join(f"{o} ({n} seed{'s' if n != 1 else ''})"
                                  for o, n in seeds.items()) + ".")


def anytime_section(report: Report, runs: RunSet, inputs: TaskInputs) -> Anytime:
    """Incumbent loss (and regret) against budget, in the run's unit and device-seconds."""
    o, task, table = report.options, inputs.task, inputs.table
    results = trial_results(runs.rows)
    trace = incumbent_traces(results, runs.rows)
    unit = runs.runs["unit_axis"].iloc[0]
    if trace.empty:
        report.note("no trial completed in these runs: nothing to plot")
        return Anytime(results, trace, unit)
    if table is not None:
        ref = table_reference(table)
        trace["regret"] = (trace["loss"] - ref["best"]) / (ref["median"] - ref["best"])
    axes = [unit] if unit == "device_seconds" else [unit, "device_seconds"]
    values = ["loss", "regret"] if table is not None else ["loss"]
    summaries = []
    for axis in axes:
        grid = budget_grid(trace, axis, o.points)
        for value in values:
            summary = anytime_summary(on_grid(trace, axis, grid, value), value, o.aggregate,
                                      o.resamples)
            summaries.append(summary.assign(axis=axis, value=value))
    frame = pd.concat(summaries, ignore_index=True)
    report.text("### Anytime performance")
    report.data(f"{task}-incumbent-traces", trace.drop(columns=["run"]))
    report.data(f"{task}-anytime", frame)
    _anytime_text(report, runs, table)
    report.text(*[f"- {t}" for t in _anytime_sentences(frame, unit, o.aggregate)])
    for value in values:
        _anytime_figure(report, frame, task, value, axes)
    return Anytime(results, trace, unit)


def _anytime_sentences(frame: pd.DataFrame, unit: str, how: str) -> list[str]:
    """Each optimizer's aggregate at a tenth of the budget and at its end, from the data."""
    out = []
    for value in ("loss", "regret"):
        part = frame[(frame["axis"] == unit) & (frame["value"] == value)]
        if part.empty:
            continue
        end = part["budget"].max()
        tenth = part.loc[part["budget"] <= end / 10, "budget"].max()
        cells = []
        for name, group in part.groupby("optimizer", sort=True):
            at = group.set_index("budget")["center"]
            early = at.get(tenth, np.nan)
            cells.append(f"{name} {'–' if pd.isna(early) else f'{early:.4g}'} → "
                         f"{at.iloc[-1]:.4g}")
        label = {"loss": "incumbent validation loss", "regret": "normalized regret"}[value]
        lead = ("One seed each:" if part["seeds"].max() == 1 else
                how.upper() if how == "iqm" else how.capitalize())
        out.append(f"{lead} {label} at "
                   f"{tenth:.3g} → {end:.3g} {axis_label(unit)} (a tenth of the budget → "
                   f"all of it; – = no incumbent yet): {'; '.join(cells)}.")
    return out


def _anytime_text(report: Report, runs: RunSet, table) -> None:
    o = report.options
    seeds = runs.runs.groupby("optimizer")["seed"].nunique()
    how = {"iqm": "interquartile mean (IQM)", "median": "median", "mean": "mean"}[o.aggregate]
    text = (f"The incumbent is the runner's: among completed trials, the most epochs, then "
            f"the lowest loss; a curve can rise when the first trial at a higher fidelity "
            f"completes worse. Lines are the {how} over seeds at each budget point")
    if seeds.min() >= 2:
        text += (f", bands the 95% percentile bootstrap over seeds ({o.resamples} resamples, "
                 f"fixed generator seed).")
    else:
        text += ("; no bands: a band needs at least 2 seeds per optimizer, and "
                 f"{', '.join(seeds[seeds < 2].index)} ha{'s' if (seeds < 2).sum() == 1 else 've'}"
                 " one. One seed is an anecdote, not a ranking.")
    if table is not None:
        ref = table_reference(table)
        text += (f" Normalized regret = (loss − {ref['best']:.4g}) / ({ref['median']:.4g} − "
                 f"{ref['best']:.4g}): 0 is the lowest loss recorded anywhere in the table, "
                 "1 a median grid configuration trained fully; live runs search a larger "
                 "space than the grid and can go below 0 (not drawn on the log axis).")
    report.text(text)


def _anytime_figure(report: Report, frame: pd.DataFrame, task: str, value: str,
                    axes: list[str]) -> None:
    label = {"loss": "incumbent validation loss", "regret": "normalized regret"}[value]

    def draw(ax) -> None:
        for i, axis in enumerate(axes):
            part = frame[(frame["axis"] == axis) & (frame["value"] == value)]
            if value == "regret":
                part = part[part["center"] > 0]
            F.plot_anytime(part, ax[0, i], xlabel=f"budget spent ({axis_label(axis)})",
                           ylabel=label, log_y=value == "regret", legend=i == len(axes) - 1)
    name = f"{task}-{'anytime' if value == 'loss' else 'regret'}"
    report.figure(name, draw, f"{task}: {label} against budget spent", ncols=len(axes))


def final_section(report: Report, runs: RunSet, task: str,
                  anytime: Anytime) -> pd.DataFrame | None:
    """Ranks over budget, the final-budget table, Friedman, post-hoc tests, CD diagram.

    Returns:
        Each run's final incumbent (`final_incumbents`), or None when no trial completed.
    """
    trace, unit, o = anytime.trace, anytime.unit, report.options
    if trace.empty:
        return None
    finals = final_incumbents(trace)
    report.text("### Ranks and the final budget")
    table = final_table(finals, "loss")
    if "regret" in finals:
        table = table.merge(final_table(finals, "regret")[["optimizer", "median"]].rename(
            columns={"median": "median_regret"}), on="optimizer")
    report.data(f"{task}-final", table)
    report.text(f"Final incumbent validation loss per optimizer (budget "
                f"{stated_budgets(runs)}):", md_table(_final_md(table)))
    grid = budget_grid(trace, unit, o.points)
    ranks = ranks_over_budget(on_grid(trace, unit, grid, "loss", carry=True))
    if not ranks.empty:
        report.data(f"{task}-ranks", ranks)
        report.figure(f"{task}-ranks", lambda ax: F.plot_ranks(
            ranks, ax[0, 0], xlabel=f"budget spent ({axis_label(unit)})"),
            f"{task}: average rank over budget (ranked within each seed; no incumbent yet "
            "ranks last)")
    report.figure(f"{task}-final", lambda ax: F.plot_final(finals, ax[0, 0]),
                  f"{task}: final incumbent loss, every seed")
    _statistics(report, finals, task)
    return finals


def _final_md(table: pd.DataFrame) -> pd.DataFrame:
    """The final table as the report shows it: mean ± std in one column."""
    shown = pd.DataFrame({"optimizer": table["optimizer"], "seeds": table["seeds"],
                          "mean ± std": [f"{m:.4f} ± {s:.4f}" if not math.isnan(s) else
                                         f"{m:.4f}" for m, s in zip(table["mean"], table["std"],
                                                                    strict=True)],
                          "median": table["median"], "IQM": table["iqm"],
                          "best": table["best"]})
    if "median_regret" in table:
        shown["median regret"] = table["median_regret"]
    return shown


def _statistics(report: Report, finals: pd.DataFrame, task: str) -> None:
    test = friedman(finals, "loss")
    if "skipped" in test:
        report.text(f"Friedman test skipped: it {test['skipped']}. {_N_WARNING}")
        return
    ranks = pd.DataFrame({"optimizer": list(test["ranks"]), "rank": list(test["ranks"].values())})
    cd = nemenyi_cd(test["k"], test["n"])
    verdict = "rejects" if test["p"] < 0.05 else "does not reject"
    report.text(f"Friedman test over N = {test['n']} seeds (blocks) and k = {test['k']} "
                f"optimizers: chi² = {test['statistic']:.2f}, p = {test['p']:.3g}; it "
                f"{verdict} equal performance at α = 0.05. {_N_WARNING}")
    pairs = wilcoxon_holm(finals, "loss")
    report.data(f"{task}-wilcoxon-holm", pairs)
    report.data(f"{task}-cd", ranks.assign(cd=cd))
    groups = cliques(test["ranks"], cd)
    extra = "" if test["p"] < 0.05 else (" The Friedman test does not reject, so the "
                                          "post-hoc tests are shown for completeness only.")
    r = test["ranks"]
    apart = [f"{a} ({r[a]:.2f}) and {b} ({r[b]:.2f})" for a in sorted(r, key=r.get)
             for b in sorted(r, key=r.get) if r[b] - r[a] >= cd]
    wilcoxon = pairs[pairs["significant"]]
    report.text(f"Post-hoc: Nemenyi critical difference CD = {cd:.2f} average ranks "
                f"(α = 0.05); bars join optimizers closer than CD. Farther apart than CD: "
                f"{'; '.join(apart) if apart else 'none'}. Pairwise Wilcoxon signed-rank "
                f"tests paired by seed, Holm-adjusted, significant at 0.05: "
                + ("; ".join(f"{p.a} vs {p.b} (p = {p.p_holm:.3g})"
                             for p in wilcoxon.itertuples()) or "none") + f".{extra}",
                md_table(pairs))
    report.figure(f"{task}-cd", lambda ax: F.plot_cd_diagram(ranks, cd, groups, ax[0, 0]),
                  f"{task}: critical-difference diagram (Nemenyi, N = {test['n']} seeds)",
                  width=6.0, height=2.4)
