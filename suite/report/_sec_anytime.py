"""Report sections on how the optimizers did: the inputs, anytime performance, ranks
and the final budget, and the statistics over seeds."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from suite.report import _figures as F
from suite.report._runs import (
    RunSet,
    axis_label,
    budget_grid,
    final_incumbents,
    final_recommendations,
    incumbent_traces,
    on_grid,
    recommendation_traces,
    recommended_values,
    stated_budgets,
    trial_results,
)
from suite.report._stats import (
    anytime_summary,
    cliques,
    final_table,
    friedman,
    ranks_over_budget,
    wilcoxon_holm,
)
from suite.report._table import full_fidelity_reference, table_reference
from suite.report._writer import Report, TaskInputs, figure_title_text, md_table

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
    recommended: pd.DataFrame | None = None  # `recommended_values` of the recommendation
    # what the ranks, tests and pairs compare (`statistics_trace`), derived once here
    statistics: pd.DataFrame = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "statistics", statistics_trace(self))


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
    """The recommended configuration's full-fidelity loss (and regret) against budget,
    and the observed incumbent's, in the run's unit and device-seconds. With a table (a
    replay) the recommendation's figures are the primary ones (`TASK-anytime`,
    `TASK-regret`) and the observed incumbent's are `TASK-anytime-observed` and
    `TASK-regret-observed`; without one, the observed incumbent's keep those names and the
    recommendation's known values are `TASK-anytime-recommended`."""
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
    recommended = recommended_values(recommendation_traces(runs.rows, results, runs.runs),
                                     runs.runs, table)
    axes = [unit] if unit == "device_seconds" else [unit, "device_seconds"]
    values = ["loss", "regret"] if table is not None else ["loss"]
    objective = report.objective  # the summaries in the task's values (regret: as is)
    frame = _in_task_words(_summaries(trace, axes, values, o), objective)
    rec_frame = _in_task_words(_summaries(recommended, axes, ["value", "regret"] if table
                                          is not None else ["value"], o), objective)
    report.text("### Anytime performance")
    report.data(f"{task}-incumbent-traces", trace.drop(columns=["run"]))
    report.data(f"{task}-anytime", frame)
    report.data(f"{task}-recommended-traces", recommended.drop(columns=["run"]))
    report.data(f"{task}-recommended-anytime", rec_frame)
    _recommended_text(report, recommended, table, objective)
    primary = table is not None and bool(runs.runs["simulated"].any())
    if primary:
        report.text(*[f"- {t}" for t in _anytime_sentences(
            rec_frame, unit, o.aggregate, _labels(objective, recommended=True))])
    _anytime_text(report, runs, table)
    report.text(*[f"- {t}" for t in _anytime_sentences(frame, unit, o.aggregate,
                                                        _labels(objective))])
    _anytime_figures(report, task, frame, rec_frame, axes, primary=primary)
    return Anytime(results, trace, unit, recommended)


def _anytime_figures(report: Report, task: str, frame: pd.DataFrame, rec_frame: pd.DataFrame,
                     axes: list[str], *, primary: bool) -> None:
    """The recommendation's figures first and under the plain names when `primary` (a
    replay valued from its table), the observed incumbent's then `-observed`; otherwise
    the observed incumbent's under the plain names, the recommendation's known values as
    `TASK-anytime-recommended`."""
    names = {"loss": f"{task}-anytime", "value": f"{task}-anytime", "regret": f"{task}-regret"}
    observed = sorted(set(frame["value"]))  # loss, and regret with a table
    if primary:
        for value in ("value", "regret"):
            _anytime_figure(report, rec_frame, task, names[value], value, axes,
                            view="recommended")
    for value in observed:
        _anytime_figure(report, frame, task, names[value] + ("-observed" if primary else ""),
                        value, axes, view="observed" if primary else "")
    if not primary and not rec_frame.empty and rec_frame["value"].eq("value").any():
        _anytime_figure(report, rec_frame, task, f"{task}-anytime-recommended", "value", axes,
                        view="recommended")


def _summaries(trace: pd.DataFrame, axes: list[str], values: list[str], o) -> pd.DataFrame:
    """`anytime_summary` of each value on each axis, in one frame (axis, value columns)."""
    summaries = []
    for axis in axes:
        grid = budget_grid(trace, axis, o.points)
        for value in values:
            summary = anytime_summary(on_grid(trace, axis, grid, value), value, o.aggregate,
                                      o.resamples)
            summaries.append(summary.assign(axis=axis, value=value))
    return pd.concat(summaries, ignore_index=True)


def _in_task_words(frame: pd.DataFrame, objective) -> pd.DataFrame:
    """The summaries of `loss` and `value` as the task reported them (regret is as is)."""
    mine = frame["value"].isin(["loss", "value"])
    if objective.minimize or not mine.any():
        return frame
    return pd.concat([objective.shown_band(frame[mine]), frame[~mine]]).sort_index()


def _recommended_text(report: Report, recommended: pd.DataFrame, table, objective) -> None:
    """What the recommendation's curves show, and where a run's value is not known."""
    steps = recommended[~recommended["end"]]
    fallback = sorted(steps.loc[steps["rule"] != "optimizer", "optimizer"].unique())
    text = ("The recommended configuration is what the optimizer would return if stopped "
            "at that point of the budget: the library's own choice where it has one (SMAC's "
            "incumbent, Optuna's best trial for TPE, hpbandster's incumbent rule for "
            "Hyperband and BOHB: the best loss at the maximum budget), else the stated rule "
            "(grid, random, ASHA: the most epochs, then the lowest loss), as logged by the "
            "runner whenever it changed (docs/reports.md). Its value is its full-fidelity "
            f"{objective.words}: ")
    if table is not None:
        ref = full_fidelity_reference(table)
        text += (f"on a replay, the mean over the table's {table.seeds} training seeds of its "
                 f"last-epoch loss, looked up in the table; regret = (value − {ref['best']:.4g})"
                 f" / ({ref['median']:.4g} − {ref['best']:.4g}), 0 the best configuration's "
                 "full-fidelity mean, 1 the median configuration's. ")
    text += ("On a live run, the recommended trial's own loss where it trained to full "
             "fidelity, else no value (a point counts only where every seed has one). A "
             "curve need not fall monotonically: a recommendation can change to a "
             "configuration whose full-fidelity value is worse.")
    if fallback:
        text += (f" The logs of {', '.join(fallback)} hold no recommendation rows (written "
                 "before they existed): their recommendation is the stated rule, computed "
                 "from the log.")
    report.text(text)
def _anytime_sentences(frame: pd.DataFrame, unit: str, how: str,
                       labels: dict[str, str]) -> list[str]:
    """Each optimizer's aggregate at a tenth of the budget and at its end, from the data."""
    out = []
    for value in ("value", "loss", "regret"):
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
        label = labels[value]
        lead = ("One seed each:" if part["seeds"].max() == 1 else
                how.upper() if how == "iqm" else how.capitalize())
        out.append(f"{lead} {label} at "
                   f"{tenth:.3g} → {end:.3g} {axis_label(unit)} (a tenth of the budget → "
                   f"all of it; – = none yet): {'; '.join(cells)}.")
    return out


def _anytime_text(report: Report, runs: RunSet, table) -> None:
    o, objective = report.options, report.objective
    seeds = runs.runs.groupby("optimizer")["seed"].nunique()
    how = {"iqm": "interquartile mean (IQM)", "median": "median", "mean": "mean"}[o.aggregate]
    text = (f"The observed incumbent (it mixes fidelities) is the runner's: among completed "
            f"trials, the most epochs, then the {objective.best} {objective.name}; a "
            f"curve can rise when the first "
            f"trial at a higher fidelity completes worse. Lines are the {how} over seeds at "
            f"each budget point")
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


def _labels(objective, *, recommended: bool = False) -> dict[str, str]:
    """Each plotted value's label, the objective in the task's words."""
    return {"loss": f"incumbent {objective.words}",
            "value": f"recommended config's full-fidelity {objective.words}",
            "regret": "recommended config's regret" if recommended else "normalized regret"}


_LINTHRESH = 0.1  # regret below which the recommendation's regret axis is linear


def _anytime_figure(report: Report, frame: pd.DataFrame, task: str, name: str, value: str,
                    axes: list[str], *, view: str = "") -> None:
    """One anytime figure, a panel per budget axis stacked (the run's unit, then
    device-seconds); `view` "recommended" (the recommendation's value and regret),
    "observed" (the observed incumbent, beside a recommended one) or "" (it alone)."""
    label = _labels(report.objective, recommended=view == "recommended")[value]
    axis_words = {"loss": f"incumbent {report.objective.name}",  # the title says whose
                  "regret": "normalized regret",
                  "value": f"{report.objective.name} at full fidelity"}[value]
    log_y = value == "regret" and view != "recommended"  # a recommendation's can be 0
    lower = value == "regret" or report.objective.minimize  # as `_in_task_words` shows it

    def draw(ax) -> None:
        leaders = None  # those of the first axis (the run's unit) in every panel
        for i, axis in enumerate(axes):
            part = frame[(frame["axis"] == axis) & (frame["value"] == value)]
            if log_y:
                part = part[part["center"] > 0]
            if leaders is None:
                leaders = F.emphasized(F.result_order(part, lower_is_better=lower))
            F.plot_anytime(part, ax[i, 0], xlabel=f"budget spent ({axis_label(axis)})",
                           ylabel=axis_words, log_y=log_y, legend=i == 0,
                           lower_is_better=lower, highlight=leaders)
            if value == "regret" and not log_y:
                # 0 (the table's best configuration) is a value a recommendation reaches:
                # linear near it, logarithmic above, so the early large regrets do not
                # flatten the differences at the end
                F.symlog_y(ax[i, 0], _LINTHRESH)
    what = label if view != "observed" else (
        f"observed {label}" if label.startswith("incumbent") else
        f"observed incumbent's {label}")
    title = figure_title_text(f"{task}: {what}", report.context)
    caption = f"{task}: {label} against budget spent"
    optimizers = frame.loc[frame["value"] == value, "optimizer"].nunique()
    if optimizers > F.CROWDED and view != "observed":  # one panel per optimizer beside
        # the overlay (the first budget axis; not for the observed incumbent beside it)
        _anytime_panels(report, frame, f"{name}-panels", value, axes[0], label, log_y,
                        f"{caption}, one panel per optimizer (the best first; the others in "
                        "grey)", title=figure_title_text(f"{task}: {what}, each optimizer",
                                                         report.context))
    if view == "recommended":
        caption += (" (the configuration the optimizer would return if stopped there; not "
                    "monotone where a recommendation changes to a worse configuration)")
    elif view == "observed":
        caption = f"{task}: observed incumbent (mixes fidelities): {label} against budget spent"
    if optimizers > F.CROWDED:
        caption += (f"; the {F.LEADERS} leaders at the end of the budget and random in "
                    "colour with their bands, the others grey")
    report.figure(name, draw, caption, title=title, nrows=len(axes), width=4.4, height=2.3)


def _anytime_panels(report: Report, frame: pd.DataFrame, name: str, value: str, axis: str,
                    label: str, log_y: bool, caption: str, title: str) -> None:
    part = frame[(frame["axis"] == axis) & (frame["value"] == value)]
    if log_y:
        part = part[part["center"] > 0]
    lower = value == "regret" or report.objective.minimize

    def draw(ax) -> None:
        F.plot_anytime_panels(part, ax, xlabel=f"budget spent ({axis_label(axis)})",
                              ylabel=label, log_y=log_y, lower_is_better=lower)
        if value == "regret" and not log_y:
            for panel in ax.flat:
                F.symlog_y(panel, _LINTHRESH)

    report.figure(name, draw, caption, title=title,
                  **F.panel_grid(part["optimizer"].nunique()))


def final_section(report: Report, runs: RunSet, task: str,
                  anytime: Anytime) -> pd.DataFrame | None:
    """Ranks over budget, the final-budget table, Friedman, post-hoc tests, CD diagram.

    Returns:
        Each run's final observed incumbent (`final_incumbents`), or None when no trial
        completed; the ranks and tests compare `anytime.statistics`.
    """
    trace, unit, o = anytime.trace, anytime.unit, report.options
    if trace.empty:
        return None
    finals = final_incumbents(trace)
    report.text("### Ranks and the final budget")
    objective = report.objective
    table, what = _final_budget_table(finals, anytime.recommended, objective)
    observed = finals
    recommended = anytime.statistics is not trace
    if recommended:  # ranks and tests read what the table shows first
        trace = anytime.statistics
        finals = final_incumbents(trace).dropna(subset=["loss"])
    report.data(f"{task}-final", table)
    report.text(f"Final {what} per optimizer (budget {stated_budgets(runs)}):",
                md_table(_final_md(table)))
    grid = budget_grid(trace, unit, o.points)
    ranks = ranks_over_budget(on_grid(trace, unit, grid, "loss", carry=True))
    if not ranks.empty:
        report.data(f"{task}-ranks", ranks)
        report.figure(f"{task}-ranks", lambda ax: F.plot_ranks(
            ranks, ax[0, 0], xlabel=f"budget spent ({axis_label(unit)})"),
            f"{task}: average rank over budget (ranked within each seed; no incumbent yet "
            "ranks last)", title=figure_title_text(f"{task}: average rank", report.context),
            **F.ranks_size(
                ranks["optimizer"].nunique()))
    what_final = ("recommended configuration's full-fidelity" if recommended else
                  "incumbent")
    report.figure(f"{task}-final", lambda ax: F.plot_final(
        finals.assign(loss=objective.shown(finals["loss"])), ax[0, 0],
        xlabel=f"final {objective.name}", lower_is_better=objective.minimize),
        f"{task}: final {what_final} {objective.words}, every seed (sorted by median, the "
        "best on top)", title=figure_title_text(f"{task}: final {objective.name}",
                                                 report.context),
        **F.final_size(finals["optimizer"].nunique()))
    _statistics(report, finals, task)
    return observed


def statistics_trace(anytime: Anytime) -> pd.DataFrame:
    """What the ranks, tests and pairs compare, as an incumbent trace (`loss`, `regret`):
    for a replay whose every recommendation was valued from its table, the recommended
    configuration's full-fidelity value; otherwise (live runs, where most recommendations
    have no full-fidelity value) the observed incumbent's, `anytime.trace` itself."""
    rec = anytime.recommended
    if rec is None or rec.empty:
        return anytime.trace
    steps = rec[~rec["end"] & rec["value"].notna()]
    if steps.empty or not (steps["source"] == "table").all():
        return anytime.trace
    return rec.assign(loss=rec["value"])


def _final_budget_table(finals: pd.DataFrame, recommended: pd.DataFrame | None,
                        objective) -> tuple[pd.DataFrame, str]:
    """The final-budget table and what it shows. For replays (every run's recommendation
    valued from the table): the recommended configuration's full-fidelity value, with
    the observed incumbent's IQM (and median regret) as columns; otherwise the observed
    incumbent's loss, as before. The tests after it read the observed incumbent's."""
    rec = None
    if recommended is not None and not recommended.empty:
        rec = final_recommendations(recommended, finals)
    # no run recommended anything (format-3 runs that never did): the observed incumbent
    if rec is not None and not rec.empty and (rec["source"] == "table").all():
        table = final_table(rec, "value")
        extra = {"observed_iqm": final_table(rec, "observed_loss")[["optimizer", "iqm"]]}
        if "regret" in rec:
            extra["median_regret"] = final_table(rec, "regret")[["optimizer", "median"]]
        if "observed_regret" in rec:
            extra["observed_median_regret"] = final_table(rec, "observed_regret")[
                ["optimizer", "median"]]
        for name, part in extra.items():
            table = table.merge(part.set_axis(["optimizer", name], axis=1), on="optimizer")
        return _final_in_task_words(table, objective), (
            f"recommended configuration's full-fidelity {objective.words} (table mean over "
            "its training seeds; the observed incumbent's IQM beside it, its regret against "
            "the lowest loss anywhere in the table, as above; the ranks and tests below read "
            "the recommended value too)")
    table = final_table(finals, "loss")
    if "regret" in finals:
        table = table.merge(final_table(finals, "regret")[["optimizer", "median"]].rename(
            columns={"median": "median_regret"}), on="optimizer")
    return _final_in_task_words(table, objective), f"observed incumbent {objective.words}"


def _final_in_task_words(table: pd.DataFrame, objective) -> pd.DataFrame:
    """The final table's values as the task reported them: for a maximized objective
    each location (mean, median, IQM) negated and `best` its maximum."""
    if objective.minimize:
        return table
    columns = [c for c in ("mean", "median", "iqm", "best", "observed_iqm") if c in table]
    return table.assign(**{c: -table[c] for c in columns})


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
    if "observed_iqm" in table:
        shown["observed IQM"] = table["observed_iqm"]
    if "observed_median_regret" in table:
        shown["observed median regret"] = table["observed_median_regret"]
    return shown


def _statistics(report: Report, finals: pd.DataFrame, task: str) -> None:
    test = friedman(finals, "loss")
    if "skipped" in test:
        report.text(f"Friedman test skipped: it {test['skipped']}. {_N_WARNING}")
        return
    ranks = pd.DataFrame({"optimizer": list(test["ranks"]), "rank": list(test["ranks"].values())})
    cd = test["cd"]
    verdict = "rejects" if test["p"] < 0.05 else "does not reject"
    report.text(f"Friedman test over N = {test['n']} seeds (blocks) and k = {test['k']} "
                f"optimizers: chi² = {test['statistic']:.2f}, p = {test['p']:.3g}; it "
                f"{verdict} equal performance at α = 0.05. {_N_WARNING}")
    pairs = wilcoxon_holm(finals, "loss")
    report.data(f"{task}-wilcoxon-holm", pairs)
    report.data(f"{task}-cd", ranks.assign(cd=cd))
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
    groups = cliques(test["ranks"], cd)
    report.figure(f"{task}-cd", lambda ax: F.plot_cd_diagram(ranks, cd, groups, ax[0, 0]),
                  f"{task}: critical-difference diagram (Nemenyi, N = {test['n']} seeds; "
                  "average ranks, the best left; bars join optimizers closer than CD)",
                  title=figure_title_text(f"{task}: critical difference", report.context),
                  **F.cd_size(len(ranks), len(groups)))
