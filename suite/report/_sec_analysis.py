"""Report sections on the search space: hyperparameter importance (from the trials and
on the full grid), fidelity correlation, and the learning curves the runs trained."""

from __future__ import annotations

import pandas as pd

from suite.report import _figures as F
from suite.report._importance import (
    fidelity_rungs,
    importance_sentences,
    literature_comparison,
    literature_sentences,
    table_importance,
    trial_importance,
)
from suite.report._runs import RunSet, run_curves
from suite.report._table import (
    fidelity_correlation,
    fidelity_sentences,
    objective_curve,
    top_curves,
    top_overlap,
)
from suite.report._writer import Report, TaskInputs, figure_title_text, md_table


def _hp_frame(results: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    hps = sorted(c.removeprefix("config.") for c in results.columns if c.startswith("config."))
    frame = results.rename(columns=lambda c: c.removeprefix("config."))
    return frame, hps


def trial_importance_section(report: Report, runs: RunSet, task: str,
                             results: pd.DataFrame) -> None:
    """fANOVA and PED-ANOVA on each optimizer's completed trials (`results`)."""
    if results.empty:
        return
    frame, hps = _hp_frame(results)
    max_epochs = int(runs.runs["max_epochs"].max())
    imp, notes = trial_importance(frame, hps, max_epochs=max_epochs,
                                  min_trials=report.options.min_trials)
    report.text("### Hyperparameter importance from the optimizers' own trials",
                "Optuna's fANOVA (random forest; conditional hyperparameters named "
                "explicitly, each on the trials where it is active: Optuna drops them "
                "silently otherwise) and PED-ANOVA (which keeps them), on each optimizer's "
                "completed trials with seeds pooled. Numbers spanning a decade or more "
                "enter as log10 values: Optuna's fANOVA otherwise marginalizes over their "
                "linear range, where a learning rate's lowest decades get almost no weight. "
                "Both see only where the optimizer sampled, so they describe its search, "
                "not the space; PED-ANOVA is local: it asks which hyperparameters set the "
                "best 10% of those trials apart, so a learning rate a sampler has already "
                "narrowed down no longer separates them.")
    for text in notes:
        report.note(text)
    if imp.empty:
        return
    report.data(f"{task}-trial-importance", imp)
    report.text(*[f"- {t}" for t in _importance_leaders(imp)])
    for method in ("fanova", "ped_anova"):
        report.figure(f"{task}-{method.replace('_', '-')}", lambda ax, m=method:
                      F.plot_trial_importance(imp, ax[0, 0], method=m),
                      f"{task}: {method} importance on the trials", width=6.0,
                      height=0.5 * imp["optimizer"].nunique() + 1.6)


def _importance_leaders(imp: pd.DataFrame, top: int = 3) -> list[str]:
    out = []
    for method, rows in imp.groupby("method", sort=True):
        cells = []
        for name, group in rows.groupby("optimizer", sort=True):
            lead = group.sort_values(["share", "hp"], ascending=[False, True]).head(top)
            cells.append(f"{name}: " + ", ".join(f"{r.hp} {100 * r.share:.0f}%"
                                                for r in lead.itertuples()))
        label = {"fanova": "fANOVA", "ped_anova": "PED-ANOVA"}.get(method, method)
        out.append(f"{label}, leading hyperparameters (share): {'; '.join(cells)}.")
    return out


def grid_importance_section(report: Report, inputs: TaskInputs) -> None:
    """Exact fANOVA on the table's full grid, per fidelity, against the literature."""
    table, task = inputs.table, inputs.task
    if table is None:
        return
    epochs = list(report.options.fidelities or fidelity_rungs(table.max_epochs))
    imp = table_importance(table, epochs)
    comparison = literature_comparison(imp[imp["epoch"] == epochs[-1]])
    report.text("### Hyperparameter importance on the full grid (exact fANOVA)",
                "The table is a full factorial grid: main effects and pairwise interactions "
                "come from the grid means of the seed-averaged loss, with no model; "
                "fractions of the variance over the grid's values, per fidelity.",
                *[f"- {t}" for t in importance_sentences(imp)])
    report.data(f"{task}-grid-importance", imp)
    report.data(f"{task}-literature", comparison)
    report.figure(f"{task}-grid-importance", lambda ax: F.plot_importance(imp, ax[0, 0]),
                  f"{task}: variance fractions of the loss at each fidelity", width=5.0,
                  height=0.32 * (imp["epoch"].eq(epochs[-1]).sum() // 3 + 8))
    report.text("Measured against the tiers the tuning literature claims (learning rate "
                "first; then schedule, batch size, weight decay; dropout low). A category "
                "counts the main effects of its hyperparameters and their interactions "
                "among themselves:",
                *[f"- {t}" for t in literature_sentences(
                    comparison, f"{task} at {epochs[-1]} epochs")])
    report.figure(f"{task}-literature", lambda ax: F.plot_literature(comparison, ax[0, 0]),
                  f"{task}: literature tiers against the measured order", width=5.0)


def fidelity_section(report: Report, inputs: TaskInputs) -> None:
    """Rank correlation of the table's configurations between fidelities; top curves."""
    table, task = inputs.table, inputs.task
    if table is None:
        return
    epochs = list(report.options.fidelities or fidelity_rungs(table.max_epochs))
    loss = objective_curve(table)
    corr = fidelity_correlation(loss, epochs)
    overlap = top_overlap(loss, epochs)
    curves = top_curves(loss, table.configs, report.options.top)
    report.text("### Fidelity correlation: can low fidelities be trusted?",
                *[f"- {t}" for t in fidelity_sentences(corr, overlap)])
    report.data(f"{task}-fidelity", corr)
    report.data(f"{task}-top-overlap", overlap)
    report.data(f"{task}-top-curves", curves)
    report.figure(f"{task}-fidelity", lambda ax: F.plot_fidelity_correlation(corr, ax[0, 0]),
                  f"{task}: Spearman correlation of configurations between epochs",
                  width=3.6, height=3.4)
    report.text(md_table(curves.drop_duplicates("rank")[["rank", "config_index", "config"]]))
    report.figure(f"{task}-top-curves", lambda ax: F.plot_learning_curves(curves, ax[0, 0]),
                  f"{task}: learning curves of the table's top {report.options.top} "
                  "configurations (seed mean, band = seed range)",
                  title=figure_title_text(f"{task}: the table's top {report.options.top} "
                                          "learning curves", report.context), width=5.0)


def curves_section(report: Report, runs: RunSet, task: str, results: pd.DataFrame) -> None:
    """The learning curves of the best configurations the runs trained; every trial."""
    if results.empty:
        return
    curves = run_curves(runs.rows, results, report.options.top)
    frame, hps = _hp_frame(results)
    report.text("### Learning curves and trials")
    report.data(f"{task}-run-curves", curves.drop(columns=["run"]))
    objective = report.objective
    report.figure(f"{task}-run-curves", lambda ax: F.plot_learning_curves(
        curves.assign(loss=objective.shown(curves["loss"])), ax[0, 0], label="curve",
        ylabel=objective.name), f"{task}: learning curves of the top "
        f"{report.options.top} configurations the runs trained (a curve several runs "
        "trained alike drawn once, thicker: ×n runs)",
        title=figure_title_text(f"{task}: the runs' best learning curves", report.context),
        width=3.6)
    trials = frame[["optimizer", "seed", "trial_id", "epoch", "loss", *hps]]
    report.data(f"{task}-trials", trials)
    # the loss axis (lower is better: the best trials are the lowest), named as the task's
    axis = objective.name if objective.minimize else f"−{objective.name}"
    report.figure(f"{task}-parallel", lambda ax: F.plot_parallel(
        trials.rename(columns={"loss": axis}), hps, ax[0, 0], value=axis),
        f"{task}: every completed trial ({len(trials)}); the best 5% coloured by {axis}, "
        "the rest grey", title=figure_title_text(f"{task}: every trial", report.context),
        dpi=100, width=6.2, height=3.6)
