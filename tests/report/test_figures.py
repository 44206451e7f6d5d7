"""Every figure is a pure function of a small frame; saved files carry no timestamps."""

import matplotlib
import numpy as np
import pandas as pd
import pytest

from suite.report import (
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
    save_figure,
)
from suite.report._style import new_figure
from suite.report._writer import Report, ReportOptions, figure_title_text


@pytest.fixture
def ax():
    fig, axes = new_figure()
    yield axes[0, 0]
    matplotlib.pyplot.close(fig)


def _summary():
    budget = np.geomspace(0.1, 10, 6)
    return pd.concat([pd.DataFrame({"optimizer": name, "budget": budget,
                                    "center": 1 / (budget + k), "low": 0.9 / (budget + k),
                                    "high": 1.1 / (budget + k), "seeds": 3})
                      for k, name in enumerate(["random", "bohb"], start=1)])


def test_backend_is_agg():
    assert matplotlib.get_backend().lower() == "agg"


def test_anytime_draws_a_line_and_a_band_per_optimizer(ax):
    plot_anytime(_summary(), ax, xlabel="epochs", log_y=True)
    assert len(ax.lines) == 2 and len(ax.collections) == 2
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    # in result order: bohb ends lower
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["bohb (n=3)", "random (n=3)"]


def test_anytime_of_many_colours_the_leaders_and_random_and_greys_the_rest(ax):
    from suite.report._style import _KNOWN

    budget = np.geomspace(0.1, 10, 6)
    summary = pd.concat([pd.DataFrame({"optimizer": name, "budget": budget,
                                       "center": 1 / (budget + k), "low": 0.9 / (budget + k),
                                       "high": 1.1 / (budget + k), "seeds": 3})
                         for k, name in enumerate(_KNOWN, start=1)])  # gp ends lowest
    plot_anytime(summary, ax)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "gp (n=3)", "hyperopt (n=3)", "dehb (n=3)", "random (n=3)", "the other 10"]
    assert len(ax.collections) == 4, "bands for the coloured four only"
    assert sum(line.get_color() == "0.75" for line in ax.lines) == 10


def test_anytime_without_bands_draws_lines_only(ax):
    plot_anytime(_summary().assign(low=np.nan, high=np.nan), ax)
    assert len(ax.lines) == 2 and len(ax.collections) == 0


def test_anytime_panels_give_each_optimizer_a_panel_over_the_others_in_grey():
    from suite.report._figures import plot_anytime_panels

    names = ["grid", "random", "tpe", "hyperband", "bohb"]
    budget = np.geomspace(0.1, 10, 6)
    summary = pd.concat([pd.DataFrame({"optimizer": name, "budget": budget,
                                       "center": 1 / (budget + k), "low": np.nan,
                                       "high": np.nan, "seeds": 3})
                         for k, name in enumerate(names, start=1)])
    fig, axes = new_figure(ncols=4, nrows=2, sharex=True, sharey=True)
    plot_anytime_panels(summary, axes, xlabel="epochs")
    shown = [ax for ax in axes.flat if ax.get_visible()]
    assert [ax.get_title() for ax in shown] == names[::-1], "the best (lowest) first"
    assert not axes[1, 1].get_visible() and len(shown) == 5
    for ax in shown:  # its own curve last, in colour, over the four others in grey
        assert len(ax.lines) == 5 and ax.lines[-1].get_color() != ax.lines[0].get_color()
    assert fig._supxlabel.get_text() == "epochs", "one x label for the figure"
    # the bottom panel of each column shows its x tick labels
    assert axes[0, 1].xaxis.get_tick_params()["labelbottom"]
    matplotlib.pyplot.close(fig)


def test_iqm_at_budgets_sorts_rows_by_the_last_point():
    from suite.report._figures import plot_at_budgets

    frame = pd.DataFrame({"optimizer": ["a", "b", "a", "b"], "point": ["5x", "5x", "10x", "10x"],
                          "center": [0.2, 0.5, 0.4, 0.3], "low": [0.1, 0.4, 0.3, 0.2],
                          "high": [0.3, 0.6, 0.5, 0.4]})
    fig, axes = new_figure(ncols=2)
    plot_at_budgets(frame, axes, xlabel="IQM regret")
    labels = sorted(axes[0, 0].get_yticklabels(), key=lambda t: -t.get_position()[1])
    assert [t.get_text() for t in labels] == ["b", "a"], "b is lower at 10x: on top"
    assert [ax.get_title() for ax in axes.flat] == ["at 5x", "at 10x"]
    matplotlib.pyplot.close(fig)


def test_ranks_and_cd_diagram(ax):
    ranks = _summary().rename(columns={"center": "rank"})
    plot_ranks(ranks, ax)
    assert len(ax.lines) == 2 and ax.get_ylim()[0] > ax.get_ylim()[1], "best rank on top"
    fig, axes = new_figure()
    frame = pd.DataFrame({"optimizer": ["a", "b", "c", "d"], "rank": [1.2, 2.0, 3.1, 3.7]})
    plot_cd_diagram(frame, 1.5, [("a", "b"), ("b", "c", "d")], axes[0, 0])
    texts = [t.get_text() for t in axes[0, 0].texts]
    assert "CD = 1.50" in texts and "a (1.20)" in texts and "d (3.70)" in texts
    matplotlib.pyplot.close(fig)


def test_final_and_test_vs_val(ax):
    finals = pd.DataFrame({"optimizer": ["a", "a", "b", "b"], "loss": [0.3, 0.4, 0.5, 0.6],
                           "seed": [0, 1, 0, 1]})
    plot_final(finals, ax)  # a row per optimizer, the best (lowest median) on top
    labels = sorted(ax.get_yticklabels(), key=lambda t: -t.get_position()[1])
    assert [t.get_text() for t in labels] == ["a", "b"]
    plot_final(finals, ax, lower_is_better=False)  # a maximized objective: the highest
    labels = sorted(ax.get_yticklabels(), key=lambda t: -t.get_position()[1])
    assert [t.get_text() for t in labels] == ["b", "a"]
    fig, axes = new_figure()
    plot_test_vs_val(finals.assign(val=finals["loss"], test=finals["loss"] + 0.1), axes[0, 0])
    assert len(axes[0, 0].collections) == 2
    matplotlib.pyplot.close(fig)


def test_importance_heatmap_and_literature(ax):
    rows = []
    for epoch in (1, 3):
        rows += [{"epoch": epoch, "term": "main", "a": "lr", "b": None, "fraction": 0.6},
                 {"epoch": epoch, "term": "main", "a": "wd", "b": None, "fraction": 0.1},
                 {"epoch": epoch, "term": "pair", "a": "lr", "b": "wd", "fraction": 0.2},
                 {"epoch": epoch, "term": "remainder", "a": None, "b": None, "fraction": 0.1}]
    plot_importance(pd.DataFrame(rows), ax)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["lr", "wd", "lr × wd",
                                                            "higher-order"]
    assert "60.0" in [t.get_text() for t in ax.texts]
    fig, axes = new_figure()
    comparison = pd.DataFrame({"category": ["learning rate", "dropout", None],
                               "hps": ["lr", "dropout", "width"], "fraction": [0.6, 0.2, 0.1],
                               "claimed_rank": [1.0, 2.0, np.nan],
                               "measured_rank": [1.0, 2.0, np.nan],
                               "verdict": ["agrees", "disagrees", "n/a"]})
    plot_literature(comparison, axes[0, 0])
    assert len(axes[0, 0].lines) == 2
    matplotlib.pyplot.close(fig)


def test_trial_importance_and_fidelity_heatmaps(ax):
    frame = pd.DataFrame({"optimizer": ["a", "a", "b", "b"], "method": "fanova",
                          "hp": ["lr", "wd"] * 2, "share": [0.7, 0.3, 0.4, 0.6],
                          "epochs": 9, "trials": 20})
    plot_trial_importance(frame, ax)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a (n=20, 9 ep)", "b (n=20, 9 ep)"]
    fig, axes = new_figure()
    corr = pd.DataFrame({"kind": ["fidelity"] * 4 + ["seeds"], "a": [1, 1, 9, 9, 9],
                         "b": [1, 9, 1, 9, 9], "rho": [1.0, 0.3, 0.3, 1.0, 0.95]})
    plot_fidelity_correlation(corr, axes[0, 0])
    assert "0.95" in axes[0, 0].get_title()
    matplotlib.pyplot.close(fig)


def test_learning_curves_and_parallel_coordinates(ax):
    curves = pd.DataFrame({"rank": [1, 1, 2, 2], "epoch": [1, 9, 1, 9],
                           "loss": [1.0, 0.3, 1.1, 0.4], "low": [0.9, 0.25, 1.0, 0.35],
                           "high": [1.1, 0.35, 1.2, 0.45]})
    plot_learning_curves(curves, ax)
    assert len(ax.lines) == 2 and len(ax.collections) == 2
    fig, axes = new_figure()
    trials = pd.DataFrame({"lr": [0.001, 0.1, 0.01], "kind": ["a", "b", "a"],
                           "epoch": [1, 9, 9], "loss": [1.0, 0.3, 0.5]})
    plot_parallel(trials, ["lr", "kind"], axes[0, 0])
    rest, best = axes[0, 0].collections
    assert len(rest.get_segments()) + len(best.get_segments()) == 3
    assert rest.get_rasterized() and best.get_rasterized()
    matplotlib.pyplot.close(fig)


def _run_curve(name, optimizer, losses):
    return pd.DataFrame({"curve": name, "optimizer": optimizer, "epoch": [1, 3, 9],
                         "loss": losses})


def test_run_curves_draw_each_distinct_curve_once_and_say_who_shares_it(ax):
    shared, other = [1.0, 0.6, 0.4], [0.9, 0.7, 0.5]
    curves = pd.concat([_run_curve("random s0 c0", "random", shared),
                        _run_curve("random s2 c0", "random", shared),
                        _run_curve("bohb s1 c4", "bohb", other),
                        _run_curve("bohb s3 c0", "bohb", shared)], ignore_index=True)
    plot_learning_curves(curves, ax, label="curve")
    assert len(ax.lines) == 2
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["random s0 c0 ×3 (bohb 1, random 2)", "bohb s1 c4"]
    assert ax.lines[0].get_linewidth() > ax.lines[1].get_linewidth()  # shared: thicker


def test_curves_differing_in_one_point_are_both_drawn(ax):
    curves = pd.concat([_run_curve("random s0 c0", "random", [1.0, 0.6, 0.4]),
                        _run_curve("random s1 c0", "random", [1.0, 0.6, 0.41]),
                        _run_curve("random s2 c0", "random", [1.0, 0.6, 0.41])],
                       ignore_index=True)
    plot_learning_curves(curves, ax, label="curve")
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["random s0 c0", "random s1 c0 ×2"]


def test_each_run_curve_is_told_apart_by_colour_or_line_style(ax):
    curves = pd.concat([_run_curve("bohb s12 c130", "bohb", [1.0, 0.6, 0.4]),
                        _run_curve("tpe s3 c9", "tpe", [1.0, 0.6, 0.4]),
                        _run_curve("bohb s13 c119", "bohb", [1.0, 0.6, 0.41]),
                        _run_curve("bohb s1 c4", "bohb", [0.9, 0.7, 0.5]),
                        _run_curve("tpe s2 c1", "tpe", [0.9, 0.8, 0.6])], ignore_index=True)
    plot_learning_curves(curves, ax, label="curve")
    drawn = [(str(line.get_color()), line.get_linestyle()) for line in ax.lines]
    assert len(drawn) == 4 and len(set(drawn)) == 4  # no two lines look alike
    shared, bohb_a, bohb_b, tpe = ax.lines
    assert shared.get_color() not in {bohb_a.get_color(), tpe.get_color()}  # two optimizers'
    assert bohb_a.get_color() == bohb_b.get_color()  # colour names the optimizer ...
    assert bohb_a.get_linestyle() != bohb_b.get_linestyle()  # ... style tells its curves apart


def test_many_curves_of_one_optimizer_still_look_different(ax):
    curves = pd.concat([_run_curve(f"bohb s0 c{i}", "bohb", [1.0, 0.6, 0.3 + i / 100])
                        for i in range(12)], ignore_index=True)
    plot_learning_curves(curves, ax, label="curve")
    looks = {(line.get_linestyle(), line.get_marker()) for line in ax.lines}
    assert len(ax.lines) == 12 and len(looks) == 12


def test_table_curves_that_coincide_name_every_rank(ax):
    curves = pd.DataFrame({"rank": [1, 1, 2, 2, 3, 3], "epoch": [1, 9] * 3,
                           "loss": [1.0, 0.3, 1.1, 0.4, 1.0, 0.3]})
    plot_learning_curves(curves, ax)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["ranks 1, 3 (identical curves)", "rank 2"]
    assert ax.lines[0].get_zorder() > ax.lines[1].get_zorder()  # the best drawn on top


def _grid_trials(n=60):
    rng = np.random.default_rng(1)
    return pd.DataFrame({"batch_size": rng.choice([32, 64, 128], n),
                         "act": rng.choice(["relu", "tanh", "gelu"], n),
                         "lr": rng.choice([1e-4, 1e-3, 1e-2], n),
                         "epoch": rng.choice([1, 3, 9], n),
                         "loss": rng.uniform(0.3, 1.3, n)})


def test_parallel_labels_every_level_and_draws_the_best_in_colour_on_top():
    fig, axes = new_figure(width=8.0)
    trials = _grid_trials()
    ax = plot_parallel(trials, ["batch_size", "act", "lr"], axes[0, 0], best=0.1)
    rest, best = ax.collections
    assert len(best.get_segments()) == 6 and len(rest.get_segments()) == 54
    assert best.get_zorder() > rest.get_zorder()
    assert np.allclose(sorted(best.get_array()), np.sort(trials["loss"])[:6])
    texts = {t.get_text() for t in ax.texts}
    assert {"32", "64", "128", "gelu", "relu", "tanh", "0.0001", "0.001", "0.01", "1", "3",
            "9"} <= texts
    assert all(t.get_fontsize() >= 8 for t in ax.texts)
    colorbar = [a for a in fig.axes if a is not ax]
    assert len(colorbar) == 1 and "loss" in colorbar[0].get_ylabel()
    matplotlib.pyplot.close(fig)


def test_parallel_jitter_separates_grid_lines_by_a_little_and_is_fixed():
    trials = _grid_trials()
    ys = []
    for _ in range(2):
        fig, axes = new_figure()
        rest, best = plot_parallel(trials, ["lr"], axes[0, 0]).collections
        ys.append(np.array([s[0, 1] for s in [*rest.get_segments(), *best.get_segments()]]))
        matplotlib.pyplot.close(fig)
    assert np.array_equal(ys[0], ys[1])  # the same frame, the same figure
    levels = np.array([0.0, 0.5, 1.0])  # lr: 1e-4, 1e-3, 1e-2 on a log axis
    offset = ys[0][:, None] - levels[None, :]
    nearest = np.abs(offset).min(axis=1)
    assert (nearest <= 0.06 + 1e-12).all() and len(np.unique(ys[0])) > 3


def test_saved_files_are_byte_identical_and_carry_no_timestamp(tmp_path):
    paths = []
    for name in ("one", "two"):
        fig, axes = new_figure()
        plot_anytime(_summary(), axes[0, 0])
        paths.append(save_figure(fig, tmp_path / name))
    for first, second in zip(*paths, strict=True):
        assert first.read_bytes() == second.read_bytes()
    pdf = paths[0][1].read_bytes()
    assert b"CreationDate" not in pdf and b"matplotlib" not in pdf.lower()
    assert b"Software" not in paths[0][0].read_bytes()


def test_figure_title_names_the_task_what_and_where_from():
    assert figure_title_text("toy: ranks", "replay, 20 seeds") == "toy · ranks (replay, 20 seeds)"
    assert figure_title_text("toy: curves (seed mean)", "recorded table") == \
        "toy · curves (seed mean; recorded table)"
    assert figure_title_text("no task here") == "no task here"


def test_report_figure_titles_the_whole_figure(tmp_path):
    report, seen = Report(tmp_path, ReportOptions()), []
    report.context = "replay, 5 seeds"
    report.figure("toy-x", lambda axes: seen.append(axes[0, 0].figure), "toy: something")
    assert seen[0]._suptitle.get_text() == "toy · something (replay, 5 seeds)"
    report.figure("toy-y", lambda axes: seen.append(axes[0, 0].figure), "toy: b", title="T")
    assert seen[1]._suptitle.get_text() == "T"
    assert (tmp_path / "figures" / "toy-x.png").is_file()


@pytest.mark.parametrize(("simulated", "seeds", "expected"), [
    ([True] * 4, [0, 1, 0, 1], "replay, 2 seeds"),
    ([False] * 3, [0, 0, 1], "live, 1-2 seeds"),
    ([True, False], [0, 0], "live and replay, 1 seed"),
])
def test_runs_context_says_replay_or_live_and_how_many_seeds(simulated, seeds, expected):
    from suite.report._compose import runs_context
    from suite.report._runs import RunSet

    optimizers = ["a", "a", "b", "b"][:len(seeds)] if len(seeds) != 3 else ["a", "b", "b"]
    runs = pd.DataFrame({"optimizer": optimizers, "seed": seeds, "simulated": simulated})
    assert runs_context(RunSet(pd.DataFrame(), runs)) == expected
