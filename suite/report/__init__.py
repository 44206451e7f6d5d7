"""Reports: pure functions from run logs and tables (DataFrames) to analyses and figures.

Analyses return DataFrames (`suite.report._runs`, `_stats`, `_importance`, `_table`);
figures draw one of those frames on a matplotlib Axes (`_figures`); `build_report`
composes them into a folder, and `suite.report._manifest` rebuilds the committed figures
from `results/figures/manifest.json`. Matplotlib runs on the Agg backend.
"""

# first: `_style` gives matplotlib a writable folder before anything imports matplotlib
import suite.report._style  # noqa: F401

# isort: split
from suite.report._compose import ReportOptions, ReportResult, build_report
from suite.report._figures import (
    plot_anytime,
    plot_cd_diagram,
    plot_fidelity_correlation,
    plot_final,
    plot_importance,
    plot_learning_curves,
    plot_literature,
    plot_parallel,
    plot_ranks,
    plot_test_vs_val,
    plot_trial_importance,
)
from suite.report._importance import (
    LITERATURE_TIERS,
    category_of,
    fidelity_rungs,
    grid_fanova,
    literature_comparison,
    literature_sentences,
    table_importance,
    trial_importance,
)
from suite.report._pairs import pair_differences, performance_profile
from suite.report._runs import (
    RunSet,
    budget_grid,
    final_incumbents,
    final_recommendations,
    incumbent_traces,
    load_runs,
    on_grid,
    recommendation_traces,
    recommended_anytime,
    recommended_test_values,
    recommended_values,
    run_curves,
    trial_results,
)
from suite.report._seeds import order_flips
from suite.report._stats import (
    anytime_summary,
    bootstrap_band,
    cliques,
    final_table,
    friedman,
    iqm,
    ranks_over_budget,
    wilcoxon_holm,
)
from suite.report._style import optimizer_colors, save_figure
from suite.report._table import (
    fidelity_correlation,
    full_fidelity_means,
    full_fidelity_reference,
    objective_curve,
    table_reference,
    top_curves,
    top_overlap,
)

__all__ = [
    "ReportOptions", "ReportResult", "build_report",
    "plot_anytime", "plot_cd_diagram", "plot_fidelity_correlation", "plot_final",
    "plot_importance", "plot_learning_curves", "plot_literature", "plot_parallel",
    "plot_ranks", "plot_test_vs_val", "plot_trial_importance",
    "LITERATURE_TIERS", "category_of", "fidelity_rungs", "grid_fanova",
    "literature_comparison", "literature_sentences", "table_importance", "trial_importance",
    "RunSet", "budget_grid", "final_incumbents", "incumbent_traces", "load_runs", "on_grid",
    "run_curves", "trial_results", "final_recommendations", "recommendation_traces",
    "recommended_anytime", "recommended_values", "recommended_test_values",
    "anytime_summary", "bootstrap_band", "cliques", "final_table", "friedman", "iqm",
    "ranks_over_budget", "wilcoxon_holm", "pair_differences", "order_flips",
    "performance_profile",
    "optimizer_colors", "save_figure",
    "fidelity_correlation", "objective_curve", "table_reference", "top_curves", "top_overlap",
    "full_fidelity_means", "full_fidelity_reference",
]
