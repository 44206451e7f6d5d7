"""Figures: pure functions from a DataFrame to matplotlib Axes.

Each takes the frame an analysis function returns and an Axes (a new one when None), draws
on it and returns it; none reads files or writes them (`save_figure` does). Nothing random:
fixed colours per optimizer (`optimizer_colors`), and the parallel coordinates' jitter comes
from a fixed seed, so the same frame gives the same figure.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.collections import LineCollection
from matplotlib.ticker import FuncFormatter, MaxNLocator

from suite.report._style import new_figure, optimizer_colors

__all__ = ["plot_anytime", "plot_anytime_panels", "plot_ranks", "plot_profile", "cd_size",
           "plot_at_budgets", "plot_cd_diagram", "plot_final", "plot_test_vs_val",
           "plot_importance", "plot_literature", "plot_trial_importance",
           "plot_fidelity_correlation", "plot_learning_curves", "plot_parallel", "symlog_y"]


def _axes(ax):
    return ax if ax is not None else new_figure()[1][0, 0]


CROWDED = 7  # more optimizers than this on one axis: the leaders in colour, the rest grey
LEADERS = 3  # how many lead, besides the baseline (random)


def _best_first(names, score: pd.Series, lower_is_better: bool = True) -> list[str]:
    """`names` ordered by `score` (indexed by name), the best first; ties by name, names
    without a finite score last."""
    sign = 1 if lower_is_better else -1

    def key(n):
        v = float(score.get(n, np.nan))
        return (not np.isfinite(v), sign * v if np.isfinite(v) else 0.0, n)

    return sorted(names, key=key)


def result_order(frame: pd.DataFrame, value: str = "center", *,
                 lower_is_better: bool = True) -> list[str]:
    """The optimizers of `frame` ordered by their `value` at the largest `budget` each
    reached, the best first (ties and missing values by name, missing last)."""
    last = frame.sort_values("budget").groupby("optimizer")[value].last()
    return _best_first(frame["optimizer"].unique(), last, lower_is_better)


def _legend_in_order(ax, order: Sequence[str]) -> None:
    """The legend outside, right, its entries in `order` (an entry names its optimizer
    first, as `name (n=20)`); others (the grey "the other k") last."""
    rank = {n: i for i, n in enumerate(order)}
    pairs = sorted(zip(*ax.get_legend_handles_labels()[::-1], strict=True),
                   key=lambda p: rank.get(p[0].split(" (n=")[0], len(order)))
    ax.legend([h for _, h in pairs], [label for label, _ in pairs], frameon=False,
              loc="upper left", bbox_to_anchor=(1.0, 1.0))


def _bold_best_and_random(ax, order: Sequence[str]) -> None:
    """Beyond five rows, the best's and random's y tick labels in bold."""
    if len(order) > 5:
        for label in ax.get_yticklabels():
            if label.get_text() in (order[0], "random"):
                label.set_fontweight("bold")


def emphasized(order: Sequence[str]) -> list[str]:
    """Of optimizers in result order, those drawn in colour: all of a handful; of more, the
    leaders and the baseline (random)."""
    if len(order) <= CROWDED:
        return list(order)
    return list(order[:LEADERS]) + [n for n in order[LEADERS:] if n == "random"]


def log_axis(axis) -> None:
    """A log axis labelled in plain numbers (0.5, 1, 10, not 10^0); where it spans little
    more than a decade, its 2s and 5s labelled too (else the minor ticks stay unlabelled)."""
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))

    def minor(v, _):
        lo, hi = sorted(axis.get_view_interval())
        few = lo > 0 and hi / lo <= 15
        return f"{v:g}" if few and f"{v:.0e}"[0] in "25" else ""

    axis.set_minor_formatter(FuncFormatter(minor))


def plot_anytime(summary: pd.DataFrame, ax=None, *, xlabel: str = "budget",
                 ylabel: str = "incumbent loss", log_y: bool = False, legend: bool = True,
                 lower_is_better: bool = True, highlight: Sequence[str] | None = None):
    """Step lines of `center` per optimizer over `budget` (log x), with `low`..`high` bands
    where present (`suite.report.anytime_summary` output); the legend outside, right, in
    result order (the best first). Beyond `CROWDED` optimizers only the leaders and random
    are coloured, with their bands; the rest are thin grey lines under one legend entry.
    `highlight` names those coloured instead (the same in each panel of a figure)."""
    ax = _axes(ax)
    colors = optimizer_colors(summary["optimizer"])
    order = result_order(summary, lower_is_better=lower_is_better)
    shown = emphasized(order) if highlight is None else [n for n in order if n in highlight]
    others = [n for n in order if n not in shown]
    for name in others:
        group = summary[summary["optimizer"] == name].sort_values("budget")
        ax.plot(group["budget"], group["center"], drawstyle="steps-post", color="0.75",
                lw=0.8, zorder=1, label=f"the other {len(others)}" if name == others[0]
                else "_")
    for z, name in enumerate(reversed(shown)):  # the best drawn last, on top
        group = summary[summary["optimizer"] == name].sort_values("budget")
        seeds = int(group["seeds"].iloc[0]) if "seeds" in group else 0
        ax.plot(group["budget"], group["center"], drawstyle="steps-post", color=colors[name],
                label=f"{name} (n={seeds})" if seeds else name, lw=1.5, zorder=3 + z)
        if group["low"].notna().any():
            ax.fill_between(group["budget"], group["low"], group["high"], step="post",
                            color=colors[name], alpha=0.18, lw=0, zorder=2)
    ax.set_xscale("log")
    log_axis(ax.xaxis)
    if log_y:
        ax.set_yscale("log")
        log_axis(ax.yaxis)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if legend:
        _legend_in_order(ax, order)
    return ax


def panel_grid(optimizers: int, columns: int = 4) -> dict:
    """The small multiples' layout for `new_figure`: `columns` panels a row, each small
    enough that the figure shrunk to a paper column keeps its 8-point text readable."""
    rows = -(-optimizers // columns)
    return {"ncols": columns, "nrows": rows, "width": 1.55, "height": 1.3,
            "sharex": True, "sharey": True}


def plot_anytime_panels(summary: pd.DataFrame, axes, *, xlabel: str = "budget",
                        ylabel: str = "incumbent loss", log_y: bool = False,
                        lower_is_better: bool = True):
    """Small multiples of `plot_anytime`: one panel per optimizer in result order (the
    best first, row by row over `axes`, a 2-D array), its curve and band in its colour over
    every other optimizer's curve in light grey. Unused panels are hidden; all share their
    axes' limits, one x and one y label for the figure."""
    colors = optimizer_colors(summary["optimizer"])
    order = result_order(summary, lower_is_better=lower_is_better)
    groups = {name: summary[summary["optimizer"] == name].sort_values("budget")
              for name in order}
    flat = list(axes.flat)
    for ax, (name, group) in zip(flat, groups.items(), strict=False):  # more panels
        for other, rest in groups.items():
            if other != name:
                ax.plot(rest["budget"], rest["center"], drawstyle="steps-post",
                        color="0.8", lw=0.6, zorder=1)
        ax.plot(group["budget"], group["center"], drawstyle="steps-post", color=colors[name],
                lw=1.5, zorder=3)
        if group["low"].notna().any():
            ax.fill_between(group["budget"], group["low"], group["high"], step="post",
                            color=colors[name], alpha=0.25, lw=0, zorder=2)
        ax.set_title(name, fontsize=8, pad=2)  # black: a pale tone reads badly as text
        ax.set_xscale("log")
        log_axis(ax.xaxis)
        if log_y:
            ax.set_yscale("log")
            log_axis(ax.yaxis)
        ax.tick_params(labelsize=8)
    for ax in flat[len(groups):]:
        ax.set_visible(False)
    columns = axes.shape[1]
    for i, ax in enumerate(flat[:len(groups)]):
        if i >= len(groups) - columns:  # the bottom panel of each column
            ax.xaxis.set_tick_params(labelbottom=True)  # shared x hides all but the last row's
    fig = flat[0].figure
    fig.supxlabel(xlabel, fontsize=9)
    fig.supylabel(ylabel, fontsize=9)
    return axes


def ranks_size(optimizers: int) -> dict[str, float]:
    """The rank figure's size: an axis tall enough for a tick and a legend entry per rank."""
    return {"width": 4.2 if optimizers <= 7 else 5.4, "height": max(2.6, 0.9 + 0.2 * optimizers)}


def plot_ranks(ranks: pd.DataFrame, ax=None, *, xlabel: str = "budget"):
    """Average rank (1 = best) per optimizer over `budget` (log x); the legend lists the
    optimizers in their final rank order, the best first. Beyond `CROWDED` optimizers the
    leaders and random are drawn bold, the rest thin and lighter, each in its colour."""
    ax = _axes(ax)
    colors = optimizer_colors(ranks["optimizer"])
    last = ranks.sort_values("budget").groupby("optimizer")["rank"].last()
    order = sorted(colors, key=lambda n: (last.get(n, np.inf), n))
    strong = emphasized(order)
    for z, name in enumerate(reversed(order)):  # the best drawn last, on top
        group = ranks[ranks["optimizer"] == name].sort_values("budget")
        ax.plot(group["budget"], group["rank"], drawstyle="steps-post", color=colors[name],
                label=f"{name} ({last[name]:.1f})", zorder=2 + z,
                **({"lw": 1.8} if name in strong else {"lw": 0.9, "alpha": 0.55}))
    k = ranks["optimizer"].nunique()
    ax.set_xscale("log")
    log_axis(ax.xaxis)
    ax.set_ylim(k + 0.3, 0.7)  # best rank on top
    ax.set_yticks(range(1, k + 1, 1 if k <= 8 else 2))
    ax.set_xlabel(xlabel)
    ax.set_ylabel("average rank (1 = best)")
    handles, labels = ax.get_legend_handles_labels()  # drawn worst first: listed best first
    ax.legend(handles[::-1], labels[::-1], frameon=False, loc="upper left",
              bbox_to_anchor=(1.0, 1.0), fontsize="small", title="final rank",
              title_fontsize="small")
    return ax


# The CD diagram's vertical layout, in inches (its y axis is scaled 1 unit = 1 inch)
_CD_TOP, _CD_LEVEL, _CD_BAR = 0.5, 0.2, 0.09


def _cd_bottom(optimizers: int, groups: int) -> float:
    levels = (optimizers + 1) // 2
    return 0.12 + _CD_BAR * groups + _CD_LEVEL * (levels - 1) + 0.12


def cd_size(optimizers: int, groups: int = 0) -> dict[str, float]:
    """The CD diagram's size: a label level per optimizer on each side, a bar per group."""
    return {"width": 6.0, "height": _CD_TOP + _cd_bottom(optimizers, groups) + 0.6}  # + title


def plot_cd_diagram(ranks: pd.DataFrame, cd: float, groups: Sequence[Sequence[str]] = (),
                    ax=None):
    """Critical-difference diagram (Demšar 2006): average ranks on a scale, best left,
    the Nemenyi critical difference as a bar, and thick bars joining optimizers whose
    ranks differ by less than it (`suite.report.cliques`), each bar on its own level
    above the names. `ranks` has columns optimizer and rank; sized by `cd_size`."""
    ax = _axes(ax)
    ranks = ranks.sort_values(["rank", "optimizer"]).reset_index(drop=True)
    k = len(ranks)
    low, high = 1, max(k, int(np.ceil(ranks["rank"].max())))
    first = 0.12 + _CD_BAR * len(groups)  # the first label level, below the group bars
    half = (k + 1) // 2
    ax.set_xlim(low - 0.3, high + 0.3)
    ax.set_ylim(-_cd_bottom(k, len(groups)), _CD_TOP)
    ax.axis("off")
    ax.hlines(0, low, high, color="black", lw=1)
    for r in range(low, high + 1):
        ax.vlines(r, 0, 0.05, color="black", lw=1)
        ax.text(r, 0.07, str(r), ha="center", va="bottom")
    ax.hlines(0.36, low, low + cd, color="black", lw=1.5)
    ax.text(low + cd / 2, 0.38, f"CD = {cd:.2f}", ha="center", va="bottom")
    for i, rec in enumerate(ranks.itertuples()):
        left = i < half
        level = -(first + _CD_LEVEL * (i if left else k - 1 - i))
        x_text = low - 0.25 if left else high + 0.25
        ax.plot([rec.rank, rec.rank, x_text], [0, level, level], color="black", lw=0.8)
        ax.text(x_text, level, f"{rec.optimizer} ({rec.rank:.2f})",
                ha="right" if left else "left", va="center")
    position = dict(zip(ranks["optimizer"], ranks["rank"], strict=True))
    for j, group in enumerate(groups):
        xs = [position[n] for n in group]
        ax.hlines(-0.07 - _CD_BAR * j, min(xs) - 0.03, max(xs) + 0.03, color="black", lw=3)
    return ax


def plot_profile(profile: pd.DataFrame, ax=None, *, xlabel: str = "τ",
                 ylabel: str = "fraction of runs ≤ τ"):
    """Performance profiles (rliable's `create_performance_profile` output: optimizer,
    tau, fraction, low, high): the share of runs at most τ, with its band; the legend
    outside, right, the optimizer with the largest area (mostly the best) first. Beyond
    `CROWDED` optimizers the leaders and random in colour, the rest thin grey lines."""
    ax = _axes(ax)
    colors = optimizer_colors(profile["optimizer"])
    area = profile.groupby("optimizer")["fraction"].mean()
    order = sorted(colors, key=lambda n: (-area.get(n, 0.0), n))
    shown = emphasized(order)
    others = [n for n in order if n not in shown]
    for name in others:
        group = profile[profile["optimizer"] == name]
        ax.plot(group["tau"], group["fraction"], color="0.75", lw=0.8, zorder=1,
                label=f"the other {len(others)}" if name == others[0] else "_")
    for z, name in enumerate(reversed(shown)):
        group = profile[profile["optimizer"] == name]
        ax.plot(group["tau"], group["fraction"], color=colors[name], lw=1.5, zorder=3 + z,
                label=name)
        ax.fill_between(group["tau"], group["low"], group["high"], color=colors[name],
                        alpha=0.18, lw=0, zorder=2)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    _legend_in_order(ax, order)
    return ax


def at_budgets_size(optimizers: int, points: int) -> dict:
    """The interval figure's layout for `new_figure`: a panel per budget point, a row per
    optimizer."""
    return {"ncols": points, "nrows": 1, "width": 1.6 if points > 1 else 3.0,
            "height": max(2.0, 0.9 + 0.22 * optimizers), "sharey": True}


def plot_at_budgets(frame: pd.DataFrame, axes, *, xlabel: str = "IQM",
                    lower_is_better: bool = True):
    """rliable's interval estimates: a panel per budget point (`point`, in the order
    given), a row per optimizer sorted by its `center` at the last point (the best on
    top), the point estimate and its `low`..`high` interval in the optimizer's colour;
    the best and random's labels in bold beyond five."""
    colors = optimizer_colors(frame["optimizer"])
    points = list(dict.fromkeys(frame["point"]))
    last = frame[frame["point"] == points[-1]].set_index("optimizer")["center"]
    order = _best_first(colors, last, lower_is_better)
    rows = {n: len(order) - 1 - i for i, n in enumerate(order)}  # the best on top
    flat = list(axes.flat)
    for ax, point in zip(flat, points, strict=True):
        part = frame[frame["point"] == point]
        for rec in part.itertuples():
            y, c = rows[rec.optimizer], colors[rec.optimizer]
            ax.hlines(y, rec.low, rec.high, color=c, lw=3.0, alpha=0.55)
            ax.plot([rec.center], [y], marker="|", color="black", markersize=9, mew=1.5)
        ax.set_title(f"at {point}", fontsize=9)
        ax.grid(axis="x", color="0.9", lw=0.6)
        ax.xaxis.set_major_locator(MaxNLocator(3))
    first = flat[0]
    if len(flat) > 1:
        first.figure.supxlabel(xlabel, fontsize=9)
    else:
        first.set_xlabel(xlabel)
    first.set_yticks([rows[n] for n in order], order)
    first.set_ylim(-0.7, len(order) - 0.3)
    _bold_best_and_random(first, order)
    return axes


def final_size(optimizers: int) -> dict[str, float]:
    """The final figure's size: a row per optimizer, tall enough that every label reads."""
    return {"width": 4.2, "height": max(2.2, 0.95 + 0.24 * optimizers)}


def plot_final(finals: pd.DataFrame, ax=None, *, value: str = "loss",
               xlabel: str = "final incumbent loss", lower_is_better: bool = True):
    """Horizontal boxes of the final `value`, one labelled row per optimizer, sorted by
    their median (the best on top), every seed a point; the best and random's rows in
    bold where more than a handful are drawn."""
    ax = _axes(ax)
    colors = optimizer_colors(finals["optimizer"])
    order = _best_first(colors, finals.groupby("optimizer")[value].median(), lower_is_better)
    rows = list(range(len(order)))[::-1]  # the best on top
    data = [finals.loc[finals["optimizer"] == n, value].to_numpy(dtype=float) for n in order]
    boxes = ax.boxplot([d[np.isfinite(d)] for d in data], positions=rows, widths=0.6,
                       orientation="horizontal", showfliers=False, patch_artist=True,
                       medianprops={"color": "black"})
    for patch, name in zip(boxes["boxes"], order, strict=True):
        patch.set(facecolor=colors[name], alpha=0.35)
    for row, name, values in zip(rows, order, data, strict=True):
        ax.scatter(values, np.full(len(values), row), color=colors[name], s=7, zorder=3)
    ax.set_yticks(rows, order)
    _bold_best_and_random(ax, order)
    ax.set_ylim(-0.7, len(order) - 0.3)
    ax.set_xlabel(xlabel)
    return ax


def plot_test_vs_val(frame: pd.DataFrame, ax=None, *, val: str = "val", test: str = "test"):
    """Each run's final incumbent: validation value (x) against test value (y)."""
    ax = _axes(ax)
    colors = optimizer_colors(frame["optimizer"])
    for name in colors:
        group = frame[frame["optimizer"] == name]
        ax.scatter(group[val], group[test], color=colors[name], label=name, s=18)
    both = pd.concat([frame[val], frame[test]]).dropna()
    if len(both):
        lo, hi = both.min(), both.max()
        ax.plot([lo, hi], [lo, hi], color="grey", lw=0.8, ls="--")
    ax.set_xlabel(f"validation {val}")
    ax.set_ylabel(f"test {test}")
    ax.legend(frameon=False)
    return ax


def _term_label(rec) -> str:
    if rec["term"] == "pair":
        return f"{rec['a']} × {rec['b']}"
    if rec["term"] == "remainder":
        return "higher-order"
    return str(rec["a"]) + (" (cond.)" if rec["term"] == "conditional" else "")


def plot_importance(importance: pd.DataFrame, ax=None, *, pairs: int = 4):
    """Heatmap of variance fractions (%) of main effects, the largest `pairs` pairwise
    interactions and the remainder (rows) at each fidelity (columns: `epoch`)."""
    import seaborn as sns

    ax = _axes(ax)
    last = importance["epoch"].max()
    final = importance[importance["epoch"] == last]
    mains = final[final["term"].isin(["main", "conditional"])].sort_values(
        ["fraction", "a"], ascending=[False, True])
    top_pairs = final[final["term"] == "pair"].sort_values(
        ["fraction", "a", "b"], ascending=[False, True, True]).head(pairs)
    rest = final[final["term"] == "remainder"]
    keys = [(r["term"], r["a"], r["b"]) for r in pd.concat([mains, top_pairs, rest]).to_dict(
        "records")]
    labels = [_term_label({"term": t, "a": a, "b": b}) for t, a, b in keys]
    matrix = np.full((len(keys), importance["epoch"].nunique()), np.nan)
    epochs = sorted(importance["epoch"].unique())
    for j, epoch in enumerate(epochs):
        rows = importance[importance["epoch"] == epoch]
        lookup = {(r["term"], r["a"], r["b"]): r["fraction"] for r in rows.to_dict("records")}
        for i, key in enumerate(keys):
            matrix[i, j] = 100 * lookup.get(_nan_key(key, lookup), np.nan)
    sns.heatmap(pd.DataFrame(matrix, index=labels, columns=epochs), annot=True, fmt=".1f",
                cmap="Blues", vmin=0, vmax=100, cbar=False, ax=ax, linewidths=0.5)
    ax.set_xlabel("epochs (fidelity)")
    ax.set_ylabel("")
    ax.set_title("% of variance of the loss (grid fANOVA)")
    return ax


def _nan_key(key, lookup):
    """Dict keys with NaN never compare equal; find the stored key that matches."""
    for k in lookup:
        if k[0] == key[0] and _same(k[1], key[1]) and _same(k[2], key[2]):
            return k
    return key


def _same(a, b) -> bool:
    return (a == b) or (pd.isna(a) and pd.isna(b))


def plot_literature(comparison: pd.DataFrame, ax=None):
    """Slopegraph: the literature's claimed tiers (left) against the measured order
    (right, with % of variance); a line per category, green where they agree."""
    ax = _axes(ax)
    claimed = comparison[comparison["category"].notna()]
    n = len(claimed)
    colors = {"agrees": "#2ca02c", "close": "#ff7f0e", "disagrees": "#d62728"}
    for rec in claimed.itertuples():
        ax.plot([0, 1], [rec.claimed_rank, rec.measured_rank], color=colors[rec.verdict],
                lw=2, marker="o")
        claim = "low" if rec.category == "dropout" else f"{int(rec.claimed_rank)}"
        ax.text(-0.05, rec.claimed_rank, f"{rec.category} ({claim})", ha="right",
                va="center")
        ax.text(1.05, rec.measured_rank, f"{rec.category} {100 * rec.fraction:.1f}%",
                ha="left", va="center")
    ax.set_xlim(-0.9, 1.9)
    ax.set_ylim(n + 0.6, 0.4)
    ax.set_xticks([0, 1], ["literature", "measured"])
    ax.set_yticks([])
    for side in ("left", "bottom"):
        ax.spines[side].set_visible(False)
    return ax


def plot_trial_importance(frame: pd.DataFrame, ax=None, *, method: str = "fanova"):
    """Heatmap of importance shares (%) by optimizer (rows) and hyperparameter (columns)
    for one `method` of `suite.report.trial_importance` output."""
    import seaborn as sns

    ax = _axes(ax)
    rows = frame[frame["method"] == method]
    wide = rows.pivot_table(index="optimizer", columns="hp", values="share") * 100
    labels = [f"{o} (n={int(rows.loc[rows['optimizer'] == o, 'trials'].iloc[0])}, "
              f"{int(rows.loc[rows['optimizer'] == o, 'epochs'].iloc[0])} ep)"
              for o in wide.index]
    wide.index = labels
    sns.heatmap(wide, annot=True, fmt=".0f", cmap="Greens", vmin=0, vmax=100, cbar=False,
                ax=ax, linewidths=0.5)
    ax.set_xlabel("")
    ax.set_ylabel("")
    ax.set_title({"fanova": "fANOVA on the trials (% of summed main effects)",
                  "ped_anova": "PED-ANOVA on the trials (% of summed scores)"}.get(method,
                                                                                    method))
    return ax


def plot_fidelity_correlation(correlation: pd.DataFrame, ax=None):
    """Heatmap of Spearman correlations between fidelities (kind "fidelity" rows), with
    the seed-to-seed correlation at the last epoch (kind "seeds") in the title."""
    import seaborn as sns

    ax = _axes(ax)
    fid = correlation[correlation["kind"] == "fidelity"]
    wide = fid.pivot_table(index="a", columns="b", values="rho")
    sns.heatmap(wide, annot=True, fmt=".2f", cmap="RdBu_r", vmin=-1, vmax=1, cbar=False,
                ax=ax, square=True, linewidths=0.5)
    ax.set_xlabel("epochs")
    ax.set_ylabel("epochs")
    seeds = correlation[correlation["kind"] == "seeds"]
    title = "Spearman ρ of configurations"
    if len(seeds):
        last = seeds.sort_values("a").iloc[-1]
        title += f"\n(seed vs seed at {int(last['a'])} epochs: {last['rho']:.2f})"
    ax.set_title(title)
    return ax


def plot_learning_curves(curves: pd.DataFrame, ax=None, *, label: str = "rank",
                         ylabel: str = "validation loss"):
    """One line per distinct curve (`label` column) of `loss` over `epoch` (log x), with a
    `low`..`high` band where the frame has one; colour by optimizer where it has one.

    Curves with the same points (several runs that trained the same configuration on a
    table read the same curve) are drawn once, thicker, under the first one's label, and
    its legend entry says how many runs share it (×n); one shared by several optimizers is drawn
    in a neutral colour. Curves of one colour differ in line style, so each legend entry
    names one line."""
    ax = _axes(ax)
    has_opt = "optimizer" in curves
    colors = optimizer_colors(curves["optimizer"]) if has_opt else None
    distinct = _distinct_curves(curves, label)
    cmap = _sequential(len(distinct))
    styles: dict = {}  # colour -> how many curves already drawn in it
    for i, (key, curve, sharing) in enumerate(distinct):
        color = _curve_color(sharing, colors) if has_opt else cmap[i]
        nth = styles.setdefault(str(color), 0)
        styles[str(color)] += 1
        z = 2 + (len(distinct) - i) / len(distinct)  # the best on top, the legend in order
        ax.plot(curve["epoch"], curve["loss"], color=color, lw=1.2 if len(sharing) == 1 else 2.2,
                ls=_LINE_STYLES[nth % len(_LINE_STYLES)],
                marker=_MARKERS[nth // len(_LINE_STYLES) % len(_MARKERS)], markersize=3,
                label=_curve_label(key, label, sharing), zorder=z)
        if "low" in curve and curve["low"].notna().any():
            ax.fill_between(curve["epoch"], curve["low"], curve["high"], color=color,
                            alpha=0.12, lw=0, zorder=z - 1)
    ax.set_xscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.legend(frameon=False, fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return ax


_LINE_STYLES = ("-", "--", ":", "-.")
_MARKERS = (None, "o", "s", "^", "v", "D")  # after the styles run out: 24 lines per colour
_SHARED_COLOR = "0.3"  # a curve several optimizers' runs share belongs to none of them


def _curve_color(sharing: list, colors: dict):
    """The sharing runs' optimizer colour, or the neutral one when they are several."""
    optimizers = {o for _, o in sharing}
    return colors[optimizers.pop()] if len(optimizers) == 1 else _SHARED_COLOR


def _distinct_curves(curves: pd.DataFrame, label: str = "rank") -> list[tuple]:
    """The curves of `curves` (one per `label` value, first-seen order) with identical
    points merged: (label value, its rows sorted by epoch, the rows of each curve sharing
    it: a list of (label value, optimizer or None))."""
    groups: dict[bytes, list] = {}
    for key in dict.fromkeys(curves[label]):
        curve = curves[curves[label] == key].sort_values("epoch")
        points = [curve["epoch"].to_numpy(dtype=float), curve["loss"].to_numpy(dtype=float)]
        points += [curve[c].to_numpy(dtype=float) for c in ("low", "high") if c in curve]
        signature = b"|".join(p.tobytes() for p in points)  # NaN equals NaN, byte for byte
        optimizer = curve["optimizer"].iloc[0] if "optimizer" in curve else None
        groups.setdefault(signature, []).append((key, curve, optimizer))
    return [(members[0][0], members[0][1], [(k, o) for k, _, o in members])
            for members in groups.values()]


def _curve_label(key, label: str, sharing: list) -> str:
    text = f"{label} {key}" if label == "rank" else str(key)
    if len(sharing) == 1:
        return text
    if sharing[0][1] is None:  # the table's configurations: name each that gives it
        return f"{label}s {', '.join(str(k) for k, _ in sharing)} (identical curves)"
    counts = pd.Series([o for _, o in sharing if o is not None]).value_counts(sort=False)
    by = ", ".join(f"{o} {n}" for o, n in sorted(counts.items()))
    if counts.size > 2:  # a legend entry stays one short line
        by = f"{counts.size} optimizers"
    return f"{text} ×{len(sharing)}" + (f" ({by})" if counts.size > 1 else "")


def _sequential(n: int) -> list:
    import matplotlib

    cmap = matplotlib.colormaps["viridis"]
    return [cmap(x) for x in np.linspace(0.0, 0.85, max(n, 1))]


# Parallel coordinates: the best trials in a dark-to-warm colour map (no pale yellow end,
# which vanishes on white), drawn over the rest in light grey.
_PARALLEL_CMAP = "plasma"
_PARALLEL_CMAP_RANGE = (0.0, 0.78)
_FEW_LEVELS = 12  # an axis with at most this many values shows each as a tick


def plot_parallel(trials: pd.DataFrame, hps: Sequence[str], ax=None, *,
                  value: str = "loss", extra: Sequence[str] = ("epoch",), best: float = 0.05):
    """Parallel coordinates: one polyline per trial through `hps`, `extra` and `value`.

    Each axis is scaled to 0..1 (log for positive numbers spanning a decade; categories in
    sorted order); an axis with few values labels each of them, and its lines get a small
    fixed jitter so that trials on a grid do not hide each other. The best fraction `best`
    of the trials (lowest `value`) is drawn on top, coloured by `value` (colour bar); the
    rest in light grey. Rasterized in PDFs."""
    import matplotlib

    ax = _axes(ax)
    columns = [*hps, *extra, value]
    v = trials[value].to_numpy(dtype=float)
    hi = float(np.nanquantile(v, 0.9)) if np.isfinite(v).any() else 1.0
    rng = np.random.default_rng(0)  # fixed: the same trials give the same figure
    scaled, ticks = [], []
    for col in columns:
        # the value axis is clipped at the 90th percentile: a few diverged trials flatten it
        s, t = _scale(trials[col].clip(upper=hi) if col == value else trials[col])
        if col != value and len(t[0]) > 1 and len(t[0]) <= _FEW_LEVELS:
            gap = float(np.min(np.diff(sorted(t[0]))))
            s = s + rng.uniform(-0.12, 0.12, len(s)) * min(gap, 0.5)
        scaled.append(s)
        ticks.append(t)
    matrix = np.column_stack(scaled) if scaled else np.zeros((0, 0))
    top = _best_mask(v, best)
    order = np.argsort(-v, kind="stable")  # best drawn last, on top
    xs = np.arange(len(columns))
    rest = [np.column_stack([xs, matrix[i]]) for i in order if not top[i]]
    ax.add_collection(LineCollection(rest, colors="#b8b8b8", lw=0.5, alpha=0.25,
                                     rasterized=True, zorder=1))
    shown = [i for i in order if top[i]]
    low_v, high_v = (float(v[shown].min()), float(v[shown].max())) if shown else (0.0, 1.0)
    cmap = matplotlib.colors.LinearSegmentedColormap.from_list(
        "suite-parallel", matplotlib.colormaps[_PARALLEL_CMAP](
            np.linspace(*_PARALLEL_CMAP_RANGE, 256)))
    lines = LineCollection([np.column_stack([xs, matrix[i]]) for i in shown], cmap=cmap,
                           norm=matplotlib.colors.Normalize(
                               low_v, high_v if high_v > low_v else low_v + 1e-9),
                           lw=1.4, alpha=0.85, rasterized=True, zorder=2)
    lines.set_array(v[shown])
    ax.add_collection(lines)
    _parallel_axes(ax, columns, ticks)
    ax.figure.colorbar(lines, ax=ax, fraction=0.03, pad=0.02,
                       label=f"{value} of the best {len(shown)} of {len(v)} trials")
    return ax


def _best_mask(values: np.ndarray, fraction: float) -> np.ndarray:
    """The lowest `fraction` of finite values (at least one, ties at the cut included)."""
    finite = np.isfinite(values)
    if not finite.any():
        return np.zeros(len(values), dtype=bool)
    k = max(1, int(np.ceil(fraction * finite.sum())))
    cut = np.sort(values[finite])[k - 1]
    return finite & (values <= cut)


def _parallel_axes(ax, columns: Sequence[str], ticks) -> None:
    """Vertical axes with readable tick labels (on a white box, above the lines)."""
    for i, (positions, names) in enumerate(ticks):
        ax.axvline(i, color="black", lw=0.8, zorder=3)
        for p, name in zip(positions, names, strict=True):
            ax.text(i + 0.04, p, name, fontsize=8, va="center", zorder=4,
                    bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none",
                          "alpha": 0.85})
    ax.set_xlim(-0.2, len(columns) - 0.5)
    ax.set_ylim(-0.06, 1.06)
    ax.set_xticks(range(len(columns)), [c.removeprefix("config.") for c in columns],
                  rotation=90, fontsize=9)
    ax.set_yticks([])
    ax.spines["left"].set_visible(False)


def _scale(series: pd.Series) -> tuple[np.ndarray, tuple[list[float], list[str]]]:
    """Values → 0..1 positions, and (positions, labels) of the ticks: every value of an
    axis with few values, else its two ends."""
    values = series.dropna()
    numeric = pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)
    if not numeric:
        cats = sorted(map(str, values.unique()))
        pos = {c: i / max(len(cats) - 1, 1) for i, c in enumerate(cats)}
        out = series.map(lambda x: pos.get(str(x), np.nan) if pd.notna(x) else np.nan)
        return out.to_numpy(dtype=float), ([pos[c] for c in cats], cats)
    x = series.to_numpy(dtype=float)
    lo, hi = (float(values.min()), float(values.max())) if len(values) else (0.0, 1.0)
    log = lo > 0 and hi / lo >= 10
    f = np.log10 if log else (lambda a: a)
    span = (f(hi) - f(lo)) or 1.0
    pos = (f(x) - f(lo)) / span
    levels = np.unique(values.to_numpy(dtype=float))
    tick_values = (list(levels) if len(levels) <= _FEW_LEVELS else [lo, hi]) if hi > lo \
        else [lo]
    return pos, _thin([float((f(t) - f(lo)) / span) for t in tick_values],
                      [f"{t:.3g}" for t in tick_values])


_TICK_GAP = 0.07  # of an axis's height: closer labels would print over each other


def _thin(positions: list[float], labels: list[str]) -> tuple[list[float], list[str]]:
    """Every label at least `_TICK_GAP` from the next (on a log scale 7, 8, 9 and 10 crowd
    together): the lowest and the highest kept, those between where they fit."""
    if len(positions) < 3:
        return positions, labels
    keep = [0]
    for i in range(1, len(positions) - 1):
        if positions[i] - positions[keep[-1]] >= _TICK_GAP and \
                positions[-1] - positions[i] >= _TICK_GAP:
            keep.append(i)
    keep.append(len(positions) - 1)
    return [positions[i] for i in keep], [labels[i] for i in keep]


def symlog_y(ax, linthresh: float, bottom: float | None = 0.0):
    """A y axis linear below `linthresh` and logarithmic above, for values that reach 0
    (a log axis would drop them) but span decades above it; it starts at `bottom`."""
    ax.set_yscale("symlog", linthresh=linthresh, linscale=0.5)
    if bottom is not None:
        ax.set_ylim(bottom=bottom)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    return ax
