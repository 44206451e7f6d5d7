"""Report section: every pair of optimizers at a few budget points, with intervals."""

from __future__ import annotations

import numpy as np
import pandas as pd

from suite.budget import Budget, parse_budget
from suite.errors import SuiteError
from suite.report import _figures as F
from suite.report._objective import Objective
from suite.report._pairs import pair_differences, performance_profile
from suite.report._runs import _UNIT_AXIS, RunSet, on_grid
from suite.report._stats import anytime_summary
from suite.report._writer import Report, figure_title_text, md_table

__all__ = ["pairs_section", "pair_points"]


def pair_points(runs: RunSet, asked: tuple[str, ...] | None) -> list[Budget]:
    """The budget points of the comparison: those asked for, else the study's budget and
    its half (30x and 60x for a 60x study), in the runs' unit."""
    unit = runs.runs["unit_axis"].iloc[0]
    if asked:
        points = [parse_budget(text) for text in asked]
        wrong = [str(p) for p in points if _UNIT_AXIS[p.unit.value] != unit]
        if wrong:
            raise SuiteError(f"--pairs-at {','.join(wrong)}: the runs' budget is in "
                             f"{unit.replace('_', '-')}, give the points in that unit")
        return sorted(set(points), key=lambda b: b.amount)
    full = max((parse_budget(b) for b in runs.runs["budget"].unique()),
               key=lambda b: b.amount)
    return [Budget(full.amount / 2, full.unit), full]


def pairs_section(report: Report, runs: RunSet, task: str, trace: pd.DataFrame,
                  unit: str, value: str = "loss") -> pd.DataFrame | None:
    """IQM differences and P(A < B) with 95% intervals at each point; `value` per run is
    its incumbent at the point (the incumbent's `value` column of `trace`)."""
    if trace.empty:
        return None
    points = pair_points(runs, report.options.pairs_at)
    grid = np.array([p.amount for p in points])
    values = on_grid(trace, unit, grid, value, carry=True)
    table = pair_differences(values, value, resamples=max(report.options.resamples, 2000))
    if table.empty:
        return None
    names = {p.amount: str(p) for p in points}
    table.insert(0, "point", table["budget"].map(names))
    objective = report.objective if value == "loss" else Objective()  # regret: as is
    if not objective.minimize:  # the difference in the task's values; P(A better) stays
        table = table.assign(diff=-table["diff"], diff_low=-table["diff_high"],
                             diff_high=-table["diff_low"])
    shown, higher = (objective.name, not objective.minimize) if value == "loss" else (
        value, False)
    better = "higher" if higher else "lower"
    report.text(f"### Pairs at {', '.join(names.values())}",
                f"Each pair's difference of interquartile means of the final "
                f"{shown} (A − B; {'positive' if higher else 'negative'}: A {better}; for a "
                f"replay the recommended configuration's full-fidelity value, as in the "
                f"table above), and the probability of improvement "
                f"P(A {'>' if higher else '<'} B), the chance that a run of A ends {better} "
                f"than a run of B "
                f"(rliable's metric; ties count half), each with a 95% percentile "
                f"bootstrap interval, seeds of A and B resampled apart (stratified, "
                f"{max(report.options.resamples, 2000)} resamples). A pair is *not "
                f"resolved* where the difference's interval covers 0 or "
                f"P(A {'>' if higher else '<'} B)'s "
                f"covers 0.5: these seeds do not say which is better; and where a seed of "
                f"either optimizer has no value at the point (seeds A and B count those "
                f"with one): the comparison would leave out exactly those seeds.")
    report.data(f"{task}-pairs", table)
    report.text(md_table(_shown(table, higher)))
    open_pairs = (~table["resolved"]).sum()
    report.text(f"{open_pairs} of {len(table)} pair-points are not resolved.")
    _at_budgets(report, runs, task, trace, unit)
    _profile(report, task, trace, unit, points[-1])
    return table


def _at_budgets(report: Report, runs: RunSet, task: str, trace: pd.DataFrame, unit: str
                ) -> None:
    """Each optimizer's IQM at a tenth, half and all of the budget (or at `--pairs-at`)
    with its 95% bootstrap interval over seeds: which method wins, by how much, how sure."""
    value = "regret" if "regret" in trace else "loss"
    points = pair_points(runs, report.options.pairs_at)
    if not report.options.pairs_at:
        points = [Budget(points[-1].amount / 10, points[-1].unit), *points]
    resamples = max(report.options.resamples, 2000)
    at = on_grid(trace, unit, np.array([p.amount for p in points]), value, carry=True)
    summary = anytime_summary(at, value, "iqm", resamples)
    if summary.empty or summary["seeds"].min() < 2:
        return
    objective = report.objective if value == "loss" else Objective()  # regret: as is
    summary = objective.shown_band(summary)
    names = {p.amount: str(p) for p in points}
    summary.insert(0, "point", summary["budget"].map(names))
    summary = summary.sort_values("budget", kind="stable")
    report.data(f"{task}-iqm", summary)
    what = ("normalized regret" if value == "regret" else objective.name)
    report.figure(f"{task}-iqm", lambda ax: F.plot_at_budgets(
        summary, ax, xlabel=f"IQM {what}", lower_is_better=objective.minimize),
        f"{task}: each optimizer's interquartile mean {what} at {', '.join(names.values())}"
        f" (for a replay, of the recommended configuration's full-fidelity value, as in the "
        f"final table) with its 95% percentile bootstrap interval over seeds ({resamples} "
        f"resamples), sorted by the last point, the best on top; no row where a seed has no "
        f"value yet",
        title=figure_title_text(f"{task}: IQM {what} by budget", report.context),
        **F.at_budgets_size(summary["optimizer"].nunique(), summary["point"].nunique()))


def _profile(report: Report, task: str, trace: pd.DataFrame, unit: str, point: Budget
             ) -> None:
    """rliable's performance profile of every run's incumbent at the last point."""
    value = "regret" if "regret" in trace else "loss"
    at = on_grid(trace, unit, np.array([point.amount]), value, carry=True)
    profile = performance_profile(at, value, resamples=max(report.options.resamples, 2000))
    if profile.empty or profile["seeds"].min() < 2:
        return
    report.data(f"{task}-profile", profile)
    objective = report.objective  # the profile counts runs at most τ: of the loss
    label = {"regret": "normalized regret", "loss": f"incumbent {objective.name}" if
             objective.minimize else f"incumbent −{objective.name}"}[value]

    report.figure(f"{task}-profile", lambda ax: F.plot_profile(
        profile, ax[0, 0], xlabel=f"{label} τ",
        ylabel="share of runs ≤ τ"),
        f"{task}: performance profile at {point} (rliable): the share of runs "
        f"whose {label} is at most τ, with a 95% bootstrap band over seeds",
        title=figure_title_text(f"{task}: performance profile at {point}", report.context),
        width=3.4, height=2.6)


def _shown(table: pd.DataFrame, higher: bool = False) -> pd.DataFrame:
    """The pairs as the report shows them: intervals in brackets, a verdict per row
    (`higher`: the objective is maximized, and its differences are the task's)."""
    def verdict(row) -> str:
        if not row.resolved:
            return "not resolved"
        if higher:
            return f"{row.a} higher" if row.diff > 0 else f"{row.b} higher"
        return f"{row.a} lower" if row.diff < 0 else f"{row.b} lower"

    return pd.DataFrame({
        "budget": table["point"], "A": table["a"], "B": table["b"],
        "IQM A − IQM B [95%]": [f"{r.diff:+.4f} [{r.diff_low:+.4f}, {r.diff_high:+.4f}]"
                                for r in table.itertuples()],
        f"P(A {'>' if higher else '<'} B) [95%]": [
            f"{r.p_a_better:.2f} [{r.p_low:.2f}, {r.p_high:.2f}]"
                           for r in table.itertuples()],
        "verdict": [verdict(r) for r in table.itertuples()]})
