"""`build_report`: compose the analyses and figures into a report folder.

Layout: `OUT/report.md` (and `report.html`), `OUT/figures/<name>.png|pdf`, and
`OUT/data/<name>.csv`: the frame behind every figure and table, written deterministically
(fixed float format, no run paths, no times), so two builds from the same inputs give
byte-identical data files; `suite figures` records their SHA-256 in the manifest.
"""

from __future__ import annotations

import gzip
import hashlib
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from suite.errors import SuiteError
from suite.report import _figures as F
from suite.report._importance import (
    fidelity_rungs,
    importance_sentences,
    literature_comparison,
    literature_sentences,
    table_importance,
    trial_importance,
)
from suite.report._runs import (
    RunSet,
    axis_label,
    budget_grid,
    final_incumbents,
    incumbent_traces,
    load_runs,
    on_grid,
    run_curves,
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
from suite.report._style import new_figure, save_figure
from suite.report._table import (
    fidelity_correlation,
    fidelity_sentences,
    objective_curve,
    require_complete,
    table_reference,
    top_curves,
    top_overlap,
)
from suite.tables import TableError, read_table

__all__ = ["ReportOptions", "ReportResult", "build_report"]

_GZIP_ABOVE = 256 * 1024  # data files larger than this are stored gzipped (mtime 0)
_N_WARNING = ("N counts seeds of one task. Seeds are repeated measurements of one problem, "
              "not independent data sets: the test and its critical difference describe "
              "this task's seed-to-seed variation and do not generalize to other tasks. "
              "Pooling seeds of several tasks as if each were a data set (N = tasks × seeds) "
              "is the mistake Demšar (2006) warns against; across tasks the blocks are tasks. "
              "Pairing by seed number is nominal.")


@dataclass(frozen=True)
class ReportOptions:
    """What `suite report` was asked for (see `suite report --help`)."""

    table: Path | None = None
    aggregate: str = "iqm"
    resamples: int = 1000
    test: bool = False
    device: str = "auto"
    top: int = 10
    points: int = 120
    fidelities: tuple[int, ...] | None = None
    table_figures: bool = True
    render: bool = True  # False: data files and report.md only (for checks)
    min_trials: int = 10


@dataclass
class ReportResult:
    """What a build wrote and read."""

    out: Path
    figures: list[Path] = field(default_factory=list)
    data: list[Path] = field(default_factory=list)
    inputs: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


Step = tuple[str, Callable[[], None]]


class _Report:
    """Accumulates markdown and writes figures and data under `out`."""

    def __init__(self, out: Path, options: ReportOptions) -> None:
        self.out, self.options = out, options
        self.lines: list[str] = []
        self.result = ReportResult(out)
        self.tables: dict[str, object] = {}  # path → Table (or None: unreadable), read once

    def text(self, *blocks: str) -> None:
        """Paragraphs, tables or list items; list items stay one list."""
        for block in blocks:
            if block.startswith("- ") and self.lines and self.lines[-1] == "" and \
                    len(self.lines) > 1 and self.lines[-2].startswith("- "):
                self.lines.pop()
            self.lines += [block, ""]

    def note(self, text: str) -> None:
        self.result.notes.append(text)
        self.text(f"> Note: {text}")

    def data(self, name: str, frame: pd.DataFrame) -> Path:
        path = self.out / "data" / f"{name}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        body = frame.to_csv(index=False, float_format="%.10g", lineterminator="\n").encode()
        if len(body) > _GZIP_ABOVE:
            path = path.with_suffix(".csv.gz")
            body = gzip.compress(body, mtime=0)
        path.write_bytes(body)
        self.result.data.append(path)
        return path

    def figure(self, name: str, draw: Callable, caption: str, dpi: int = 150,
               **size) -> None:
        """Draw with `draw(axes)` on a new figure, save PNG and PDF, link the PNG."""
        if self.options.render:
            fig, axes = new_figure(**size)
            draw(axes)
            fig.tight_layout()
            self.result.figures += save_figure(fig, self.out / "figures" / name, dpi=dpi)
        self.text(f"![{caption}](figures/{name}.png)", f"*{caption}*")


def _md_table(frame: pd.DataFrame, digits: int = 4) -> str:
    def cell(v) -> str:
        if isinstance(v, float | np.floating):
            return "" if math.isnan(v) else f"{v:.{digits}g}"
        return str(v)

    head = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "| " + " | ".join("---" for _ in frame.columns) + " |"
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(
        index=False)]
    return "\n".join([head, rule, *body])


def build_report(roots: Iterable[Path], out: Path, options: ReportOptions = ReportOptions(),
                 on_step: Callable[[int, int, str], None] | None = None) -> ReportResult:
    """Analyse the runs at or below `roots` (and/or `options.table`) into `out`.

    Args:
        roots: run folders or folders holding runs (may be empty with `options.table`).
        out: the report folder (created; files in it are overwritten).
        on_step: called as (done, total, description) before each step, for progress.

    Raises:
        SuiteError: nothing to report on, or runs that cannot be told apart.
    """
    roots = [Path(r) for r in roots]
    if not roots and options.table is None:
        raise SuiteError("nothing to report on: give run folders and/or --table PATH")
    report = _Report(Path(out), options)
    if on_step is not None:
        on_step(0, 0, "reading run logs" if roots else "reading the table")
    steps = _plan(report, roots)
    for i, (description, step) in enumerate(steps):
        if on_step is not None:
            on_step(i, len(steps), description)
        step()
    if on_step is not None:
        on_step(len(steps), len(steps), "done")
    return report.result


def _plan(report: _Report, roots: list[Path]) -> list[Step]:
    """The steps of a report: read the runs, then per task its sections, then write."""
    steps: list[Step] = []
    title = ", ".join(map(str, roots)) or str(report.options.table)
    report.text(f"# Report: {title}")
    if roots:
        runs = load_runs(roots)
        _check_unique(runs)
        report.result.inputs += roots
        tasks = runs.tasks
    else:
        runs, tasks = None, []
    table_task = _table_task(report)
    try:  # only once every input has been read: a rejected report writes nothing
        report.out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SuiteError(f"cannot write the report folder {report.out}: {exc.strerror}") \
            from None
    for task in sorted(set(tasks) | ({table_task} if table_task else set())):
        steps += _task_steps(report, runs.of_task(task) if runs is not None and task in tasks
                             else None, task)
    steps.append(("writing report.md", lambda: _write(report)))
    return steps


def _table_task(report: _Report) -> str | None:
    """The task of `--table`, read once (cached on the report)."""
    path = report.options.table
    if path is None:
        return None
    table = read_table(Path(path))  # asked for by name: unreadable is an error, not a note
    report.tables[str(path)] = table
    report.result.inputs.append(Path(path))
    return table.meta.get("task")


def _read_table(report: _Report, path: Path):
    key = str(path)
    if key not in report.tables:
        try:
            report.tables[key] = read_table(Path(path))
            report.result.inputs.append(Path(path))
        except TableError as exc:
            report.note(str(exc))
            report.tables[key] = None
    return report.tables[key]


def _check_unique(runs: RunSet) -> None:
    dup = runs.runs[runs.runs.duplicated(["task", "optimizer", "seed"], keep=False)]
    if not dup.empty:
        first = dup.iloc[0]
        raise SuiteError(f"two runs of {first['optimizer']} seed {first['seed']} on "
                         f"{first['task']} ({', '.join(dup['run'].head(2))}); report them "
                         "separately")


def _task_table(report: _Report, runs: RunSet | None, task: str):
    """The table for `task`: `--table` when it is this task's, else the runs' meta."""
    if report.options.table is not None:
        table = _read_table(report, report.options.table)
        if table is not None and table.meta.get("task") == task:
            return table, str(report.options.table)
    if runs is not None:
        paths = sorted({p for p in runs.runs["table"].dropna()})
        if len(paths) > 1:
            report.note(f"the runs of {task} replayed different tables ({', '.join(paths)}); "
                        f"regret and the table's figures use {paths[0]}")
        if paths:
            table = _read_table(report, Path(paths[0]))
            _check_digest(report, runs, paths[0])
            return table, paths[0]
    return None, None


def _check_digest(report: _Report, runs: RunSet, path: str) -> None:
    """A replay records its table's SHA-256; say so when the file has changed since."""
    recorded = set(runs.runs.loc[runs.runs["table"] == path, "table_sha256"].dropna())
    if recorded and Path(path).is_file():
        digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
        if digest not in recorded:
            report.note(f"{path} has changed since these runs replayed it (SHA-256 differs "
                        "from their meta.json): regret is measured against today's file")


def _task_steps(report: _Report, runs: RunSet | None, task: str) -> list[Step]:
    s: dict = {"task": task}

    def header() -> None:
        table, path = _task_table(report, runs, task)
        s["table"], s["table_path"] = table, path
        report.text(f"## {task}")
        incomplete = require_complete(table, path) if table is not None else None
        if incomplete:
            report.note(incomplete)
            s["table"] = None
        _describe(report, runs, s)

    steps: list[Step] = [(f"{task}: reading", header)]
    if runs is not None:
        steps += [(f"{task}: anytime performance", lambda: _anytime(report, runs, s)),
                  (f"{task}: ranks and statistics", lambda: _final(report, runs, s)),
                  (f"{task}: test set", lambda: _test(report, runs, s)),
                  (f"{task}: importance from the trials",
                   lambda: _trial_importance(report, runs, s)),
                  (f"{task}: learning curves and trials", lambda: _curves(report, runs, s))]
    if report.options.table_figures:
        steps += [(f"{task}: grid fANOVA", lambda: _grid_importance(report, s)),
                  (f"{task}: fidelity correlation", lambda: _fidelity(report, s))]
    return steps


def _describe(report: _Report, runs: RunSet | None, s: dict) -> None:
    table = s["table"]
    if table is not None:
        env = table.meta.get("environment", {})
        report.text(f"Table `{s['table_path']}`: {len(table.configs)} configurations × "
                    f"{table.seeds} seeds × {table.max_epochs} epochs of "
                    f"`{table.meta.get('metric')}`, recorded on {env.get('gpu', 'a CPU')}.")
    if runs is None:
        return
    meta = runs.runs
    kind = ("replayed from a table" if meta["simulated"].all() else
            "live" if not meta["simulated"].any() else "live and replayed")
    seeds = meta.groupby("optimizer")["seed"].nunique()
    report.text(f"{len(meta)} runs ({kind}), budget {', '.join(sorted(meta['budget'].unique()))}"
                f": " + ", ".join(f"{o} ({n} seed{'s' if n != 1 else ''})"
                                  for o, n in seeds.items()) + ".")


def _anytime(report: _Report, runs: RunSet, s: dict) -> None:
    """Incumbent loss (and regret) against budget, in the run's unit and device-seconds."""
    o, task = report.options, s["task"]
    results = trial_results(runs.rows)
    trace = incumbent_traces(results, runs.rows)
    s["results"], s["trace"] = results, trace
    if trace.empty:
        report.note("no trial completed in these runs: nothing to plot")
        return
    table = s["table"]
    if table is not None:
        ref = table_reference(table)
        trace["regret"] = (trace["loss"] - ref["best"]) / (ref["median"] - ref["best"])
    unit = runs.runs["unit_axis"].iloc[0]
    axes = [unit] if unit == "device_seconds" else [unit, "device_seconds"]
    values = ["loss", "regret"] if table is not None else ["loss"]
    summaries = []
    for axis in axes:
        grid = budget_grid(trace, axis, o.points)
        for value in values:
            summary = anytime_summary(on_grid(trace, axis, grid, value), value, o.aggregate,
                                      o.resamples)
            summaries.append(summary.assign(axis=axis, value=value))
    s["unit"] = unit
    frame = pd.concat(summaries, ignore_index=True)
    report.text("### Anytime performance")
    report.data(f"{task}-incumbent-traces", trace.drop(columns=["run"]))
    report.data(f"{task}-anytime", frame)
    _anytime_text(report, runs, s, table)
    report.text(*[f"- {t}" for t in _anytime_sentences(frame, unit, o.aggregate)])
    for value in values:
        _anytime_figure(report, frame, task, value, axes)


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


def _anytime_text(report: _Report, runs: RunSet, s: dict, table) -> None:
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


def _anytime_figure(report: _Report, frame: pd.DataFrame, task: str, value: str,
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


def _final(report: _Report, runs: RunSet, s: dict) -> None:
    """Ranks over budget, the final-budget table, Friedman, post-hoc tests, CD diagram."""
    trace, task, o = s.get("trace"), s["task"], report.options
    if trace is None or trace.empty:
        return
    finals = final_incumbents(trace)
    s["finals"] = finals
    report.text("### Ranks and the final budget")
    table = final_table(finals, "loss")
    if "regret" in finals:
        table = table.merge(final_table(finals, "regret")[["optimizer", "median"]].rename(
            columns={"median": "median_regret"}), on="optimizer")
    report.data(f"{task}-final", table)
    report.text(f"Final incumbent validation loss per optimizer (budget "
                f"{', '.join(runs.runs['budget'].unique())}):", _md_table(_final_md(table)))
    grid = budget_grid(trace, s["unit"], o.points)
    ranks = ranks_over_budget(on_grid(trace, s["unit"], grid, "loss", carry=True))
    if not ranks.empty:
        report.data(f"{task}-ranks", ranks)
        report.figure(f"{task}-ranks", lambda ax: F.plot_ranks(
            ranks, ax[0, 0], xlabel=f"budget spent ({axis_label(s['unit'])})"),
            f"{task}: average rank over budget (ranked within each seed; no incumbent yet "
            "ranks last)")
    report.figure(f"{task}-final", lambda ax: F.plot_final(finals, ax[0, 0]),
                  f"{task}: final incumbent loss, every seed")
    _statistics(report, finals, task)


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


def _statistics(report: _Report, finals: pd.DataFrame, task: str) -> None:
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
                _md_table(pairs))
    report.figure(f"{task}-cd", lambda ax: F.plot_cd_diagram(ranks, cd, groups, ax[0, 0]),
                  f"{task}: critical-difference diagram (Nemenyi, N = {test['n']} seeds)",
                  width=6.0, height=2.4)


def _test(report: _Report, runs: RunSet, s: dict) -> None:
    """Test-set value of each run's final incumbent beside its validation value."""
    finals = s.get("finals")
    if finals is None or finals.empty:
        return
    report.text("### Test set")
    meta = runs.runs.set_index("run")
    live = finals[~finals["run"].map(meta["simulated"])]
    replayed = finals[finals["run"].map(meta["simulated"])]
    if len(replayed):
        _test_replayed(report, replayed, s)
    if len(live) and not report.options.test:
        report.text("Live runs: test metrics not computed; pass `--test` to evaluate each "
                    "run's incumbent checkpoint (`<run>/checkpoints`; needs the task and "
                    "torch).")
    elif len(live):
        _test_live(report, live, meta, s)


def _test_replayed(report: _Report, replayed: pd.DataFrame, s: dict) -> None:
    table = s["table"]
    names = [m for m in (table.metrics if table is not None else ()) if m.startswith("test")]
    if not names:
        report.text("Replayed runs: no test metric. A replay serves the table's validation "
                    "curves, and this table records no test metric; the incumbent's test "
                    "value needs it trained live.")
        return
    rows = []
    for rec in replayed.to_dict("records"):
        config = _config_of(s["results"], rec)
        index = table.config_index(config)
        row = {"optimizer": rec["optimizer"], "seed": rec["seed"], "val": rec["loss"]}
        for m in names:
            row[m] = float(np.nanmean(table.curve(m)[index, :, rec["epoch"] - 1]))
        rows.append(row)
    frame = pd.DataFrame(rows)
    report.data(f"{s['task']}-test", frame)
    report.text("Replayed runs: the table's test metrics at the incumbent's configuration "
                "and epochs, averaged over the table's seeds:", _md_table(frame))


def _config_of(results: pd.DataFrame, rec: dict) -> dict:
    row = results[(results["run"] == rec["run"]) & (results["trial_id"] == rec["trial_id"])]
    cols = [c for c in row.columns if c.startswith("config.")]
    return {c.removeprefix("config."): _plain(row.iloc[0][c]) for c in cols
            if pd.notna(row.iloc[0][c])}


def _plain(v):
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return int(v) if float(v).is_integer() and abs(v) >= 1 else float(v)
    return v


def _test_live(report: _Report, live: pd.DataFrame, meta: pd.DataFrame, s: dict) -> None:
    from suite.registry import get_task  # imports torch: only when asked for

    rows, missing = [], []
    for rec in live.to_dict("records"):
        run = Path(rec["run"])
        ckpt = next((p for p in (run / "checkpoints" / f"{rec['trial_id']}.e{rec['epoch']}.pt",
                                 run / "checkpoints" / f"{rec['trial_id']}.pt") if p.is_file()),
                    None)
        if ckpt is None:
            missing.append(f"{rec['optimizer']} seed {rec['seed']}")
            continue
        task = get_task(s["task"], scale=meta.loc[rec["run"], "scale"] or "full")
        metrics = task.evaluate(ckpt, device=report.options.device)
        rows.append({"optimizer": rec["optimizer"], "seed": rec["seed"], "val": rec["loss"],
                     **{k: float(v) for k, v in sorted(metrics.items())}})
    if missing:
        report.note(f"no incumbent checkpoint for {', '.join(missing)} (only the incumbent's "
                    "is kept, and committed results hold none): no test value for those runs")
    if rows:
        frame = pd.DataFrame(rows)
        report.data(f"{s['task']}-test", frame)
        report.text("Validation loss of each live run's final incumbent and its test metrics "
                    "(the held-out split):", _md_table(frame))
        test_col = next((c for c in frame.columns if c.startswith("test") and "loss" in c),
                        None)
        if test_col:
            report.figure(f"{s['task']}-test", lambda ax: F.plot_test_vs_val(
                frame, ax[0, 0], test=test_col), f"{s['task']}: test against validation")


def _hp_frame(results: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    hps = sorted(c.removeprefix("config.") for c in results.columns if c.startswith("config."))
    frame = results.rename(columns=lambda c: c.removeprefix("config."))
    return frame, hps


def _trial_importance(report: _Report, runs: RunSet, s: dict) -> None:
    results, task = s.get("results"), s["task"]
    if results is None or results.empty:
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


def _grid_importance(report: _Report, s: dict) -> None:
    table, task = s["table"], s["task"]
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


def _fidelity(report: _Report, s: dict) -> None:
    table, task = s["table"], s["task"]
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
    report.text(_md_table(curves.drop_duplicates("rank")[["rank", "config_index", "config"]]))
    report.figure(f"{task}-top-curves", lambda ax: F.plot_learning_curves(curves, ax[0, 0]),
                  f"{task}: learning curves of the table's top {report.options.top} "
                  "configurations (seed mean, band = seed range)", width=5.0)


def _curves(report: _Report, runs: RunSet, s: dict) -> None:
    results, task = s.get("results"), s["task"]
    if results is None or results.empty:
        return
    curves = run_curves(runs.rows, results, report.options.top)
    frame, hps = _hp_frame(results)
    report.text("### Learning curves and trials")
    report.data(f"{task}-run-curves", curves.drop(columns=["run"]))
    report.figure(f"{task}-run-curves", lambda ax: F.plot_learning_curves(
        curves, ax[0, 0], label="curve"), f"{task}: learning curves of the top "
        f"{report.options.top} configurations the runs trained", width=5.0)
    trials = frame[["optimizer", "seed", "trial_id", "epoch", "loss", *hps]]
    report.data(f"{task}-trials", trials)
    report.figure(f"{task}-parallel", lambda ax: F.plot_parallel(trials, hps, ax[0, 0]),
                  f"{task}: every completed trial ({len(trials)}), coloured by loss",
                  dpi=100, width=8.0, height=3.6)


def _write(report: _Report) -> None:
    if report.result.notes:
        report.text("## Notes", *[f"- {n}" for n in report.result.notes])
    text = "\n".join(report.lines).rstrip() + "\n"
    path = report.out / "report.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    report.result.data.append(path)
    try:
        from markdown_it import MarkdownIt  # comes with rich
    except ImportError:
        return
    body = MarkdownIt("commonmark").enable("table").render(text)
    html = ("<!doctype html><html><head><meta charset='utf-8'><title>suite report</title>"
            "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}"
            "img{max-width:100%}table{border-collapse:collapse}"
            "td,th{border:1px solid #ccc;padding:2px 6px}</style></head><body>\n"
            f"{body}</body></html>\n")
    (report.out / "report.html").write_text(html, encoding="utf-8")
