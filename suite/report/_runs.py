"""Run logs → the frames the reports use: trial results, incumbent traces, budget grids.

The incumbent is the runner's (`suite.runner.Incumbent.better_than`): among the trials that
completed (`ok` epoch rows: a trial reached its target epochs), the one with the most
epochs, ties broken by the lower loss. At any point of the budget it is the incumbent as
of the last `ok` row charged so far, so a report shows exactly what the run would have
returned had it stopped there. Its loss can rise when the first trial at a higher
fidelity completes worse than the best one at a lower fidelity: a longer-trained value is
the one a user can trust, and the runner returns it.

That observed incumbent mixes fidelities. The recommendation (`recommendation_traces`) is
what the optimizer would return if stopped now, as its `recommend` rows log it (the rule
of each optimizer: docs/reports.md); a run begun before format 3 (which has no such rows)
falls back to the runner's rule above, computed from the log, and says so in its `rule`
column. A format-3 run without `recommend` rows never recommended anything (BOHB before
any maximum-budget result): it has no recommendation (NaN), not the runner's. Its
value (`recommended_values`) is the configuration's full-fidelity loss: on a replay the
mean over the table's training seeds of its last-epoch loss, looked up in the table; on a
live run the recommended trial's own loss where that trial trained to full fidelity, else
none (NaN). It need not be monotone: a recommendation can change to a configuration whose
full-fidelity value is worse.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from suite.budget import UNIT_NAMES, budget_in_carps, parse_budget, space_dims
from suite.errors import SuiteError
from suite.log import read_run_meta, read_runs
from suite.records import Event
from suite.report._table import full_fidelity_means, full_fidelity_reference
from suite.types import Status

__all__ = ["RunSet", "load_runs", "trial_results", "incumbent_traces", "budget_grid",
           "on_grid", "final_incumbents", "run_curves", "recommendation_traces",
           "recommended_values", "recommended_anytime", "final_recommendations",
           "recommended_test_values",
           "RULE_LOGGED", "RULE_FALLBACK", "stated_budgets",
           "AXES", "axis_label"]

# Budget axes: the ledger column each reads, and its label.
AXES = {"full": "ledger.full", "epochs": "ledger.epochs",
        "device_seconds": "ledger.device_seconds"}
_UNIT_AXIS = {"x": "full", "e": "epochs", "s": "device_seconds"}


def axis_label(axis: str) -> str:
    names = {u.value: name for u, name in UNIT_NAMES.items()}
    return {"full": names["x"], "epochs": names["e"], "device_seconds": names["s"]}[axis]


@dataclass(frozen=True)
class RunSet:
    """Rows of every run (`suite.log.read_runs`) and one row of metadata per run.

    `runs` columns: run, task (its reference), task_name (its `TaskInfo` name, the
    reference in a meta written before it was kept), optimizer, seed, budget, space_dims
    (d of the task's space, None in a meta written before it was kept), unit_axis (the
    budget axis of the run's own unit), metric, minimize, max_epochs, simulated, table,
    table_sha256, scale, format (the log format of the suite that began the run:
    `suite.records.FORMAT`).
    """

    rows: pd.DataFrame
    runs: pd.DataFrame

    @property
    def tasks(self) -> list[str]:
        return sorted(self.runs["task"].unique())

    def of_task(self, task: str) -> RunSet:
        runs = self.runs[self.runs["task"] == task]
        return RunSet(self.rows[self.rows["run"].isin(runs["run"])], runs)


def local_path(path: str | Path | None) -> str | None:
    """`path` relative to the working folder where it lies below it, else as given. A
    replay's plan names its table absolutely (so `--resume` finds it from anywhere); a
    report, and the figure manifest, name it as the repository does, the same on every
    machine."""
    if path is None:
        return None
    try:
        return Path(path).relative_to(Path.cwd()).as_posix()
    except ValueError:
        return str(path)


def load_runs(roots: Path | Iterable[Path]) -> RunSet:
    """Read every run at or below `roots`; a folder without runs is one clear error."""
    rows = read_runs(roots)
    if rows.empty:
        raise SuiteError(f"no run logs at or below {', '.join(map(str, _as_list(roots)))}")
    metas = []
    for run in rows["run"].unique():
        meta = read_run_meta(Path(run))
        metas.append({"run": run, "task": meta.task, "task_name": meta.task_name or meta.task,
                      "optimizer": meta.optimizer,
                      "seed": meta.seed, "budget": meta.budget,
                      "space_dims": meta.space_dims,
                      "unit_axis": _UNIT_AXIS[parse_budget(meta.budget).unit.value],
                      "metric": meta.metric, "minimize": meta.minimize,
                      "max_epochs": meta.max_epochs, "simulated": meta.simulated,
                      "table": local_path(meta.table), "table_sha256": meta.table_sha256,
                      "scale": meta.scale, "format": meta.format})
    runs = pd.DataFrame(metas).sort_values(["task", "optimizer", "seed", "run"])
    return RunSet(rows, runs.reset_index(drop=True))


def stated_budgets(runs: RunSet) -> str:
    """The runs' budgets in our unit and CARP-S's: `60x = 0.48 CARP-S budgets (d = 7:
    126x)`. d is what the runs recorded of their task's space, or for runs written before
    they recorded it, counted on the task's space now (the task must load)."""
    dims = {int(d) for d in runs.runs["space_dims"].dropna()}
    if not dims:
        dims = {d for d in map(_task_dims, runs.runs["task"].dropna().unique()) if d}
    d = dims.pop() if len(dims) == 1 else None  # several tasks' spaces: no single d
    return ", ".join(budget_in_carps(b, d) for b in sorted(runs.runs["budget"].unique()))


@functools.lru_cache(maxsize=8)
def _task_dims(task: str) -> int | None:
    from suite.registry import load_task  # tasks import torch: only when a meta lacks d

    try:
        return space_dims(load_task(task).config_space())
    except (SuiteError, ImportError):
        return None


def _as_list(roots) -> list:
    return [roots] if isinstance(roots, str | Path) else list(roots)


def trial_results(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per completed trial (its `ok` epoch row), in log order, with `order`.

    Columns kept: run, optimizer, seed, trial_id, config_id, epoch, loss, the config and
    metric columns, and the ledger totals after the trial's last epoch was charged.
    """
    ok = rows[(rows["event"] == Event.EPOCH) & (rows["status"] == Status.OK)].copy()
    ok["order"] = ok.index
    keep = ["run", "optimizer", "seed", "order", "trial_id", "config_id", "epoch", "loss",
            *AXES.values(), *[c for c in rows.columns if c.startswith(("config.", "metrics."))]]
    ok = ok[[c for c in keep if c in ok.columns]]
    for col in ("trial_id", "config_id", "epoch"):
        ok[col] = ok[col].astype(int)
    return ok.reset_index(drop=True)


def incumbent_traces(results: pd.DataFrame, rows: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per run, the rows of `results` at which the incumbent changed (runner's rule).

    Columns: run, optimizer, seed, the ledger axes (budget spent when it changed),
    trial_id, config_id, epoch (the incumbent's), loss (the incumbent's). With `rows`,
    each run also gets a last row at its total spend (from its `finish` row, else its
    last charged row), so a step function knows where the run ended (`end` True).
    """
    trace = pd.DataFrame(_runner_rule(results), columns=results.columns)
    trace["end"] = False
    if rows is not None and not trace.empty:
        trace = pd.concat([trace, _ends(trace, rows)], ignore_index=True)
    cols = ["run", "optimizer", "seed", *AXES.values(), "trial_id", "config_id", "epoch",
            "loss", "end"]
    return trace[cols].sort_values(["run", "end", "ledger.epochs"], kind="stable").reset_index(
        drop=True)


def _runner_rule(results: pd.DataFrame) -> list[dict]:
    """The records of `results` at which the runner's incumbent changed, run by run."""
    out = []
    for _, group in results.sort_values("order").groupby("run", sort=True):
        best: tuple[int, float] | None = None
        for rec in group.to_dict("records"):
            key = (rec["epoch"], -rec["loss"])
            if best is None or key > best:
                best = key
                out.append(rec)
    return out


def _ends(trace: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame:
    """One row per run at its total spend, carrying its final incumbent forward."""
    charged = rows[rows["ledger.epochs"].notna()]
    last = charged.groupby("run", sort=True).tail(1).set_index("run")
    final = trace.groupby("run", sort=True).tail(1).set_index("run").copy()
    for col in AXES.values():
        final[col] = last.loc[final.index, col].to_numpy()
    final["end"] = True
    return final.reset_index()


def budget_grid(trace: pd.DataFrame, axis: str, points: int = 120) -> np.ndarray:
    """Log-spaced budget points from the earliest incumbent to the largest spend."""
    x = trace[AXES[axis]].to_numpy(dtype=float)
    x = x[x > 0]
    if x.size == 0:
        return np.array([])
    low, high = x.min(), x.max()
    if high <= low:
        return np.array([low])
    return np.geomspace(low, high, points)


def on_grid(trace: pd.DataFrame, axis: str, grid: np.ndarray,
            value: str = "loss", *, carry: bool = False) -> pd.DataFrame:
    """Each run's incumbent `value` at each budget point of `grid` (a step function).

    NaN before a run's first incumbent, and after its total spend (where the trace has an
    `end` row) unless `carry`, so an aggregate over seeds never mixes finished and running
    runs. Columns: run, optimizer, seed, budget, and `value`.
    """
    col = AXES[axis]
    frames = []
    for run, group in trace.groupby("run", sort=True):
        steps = group[~group["end"]]
        x = steps[col].to_numpy(dtype=float)
        at = np.searchsorted(x, grid, side="right") - 1
        known = steps[value].to_numpy(dtype=float)
        # a run with an end row alone (it never recommended anything) has no value anywhere
        values = (np.where(at >= 0, known[np.maximum(at, 0)], np.nan) if len(known)
                  else np.full(len(grid), np.nan))
        ends = group.loc[group["end"], col]
        if len(ends) and not carry:
            values = np.where(grid <= float(ends.iloc[0]) * (1 + 1e-9), values, np.nan)
        frames.append(pd.DataFrame({"run": run, "optimizer": group["optimizer"].iloc[0],
                                    "seed": group["seed"].iloc[0], "budget": grid,
                                    value: values}))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=["run", "optimizer", "seed", "budget", value])


def final_incumbents(trace: pd.DataFrame) -> pd.DataFrame:
    """The incumbent each run returned: its last change. Columns as `incumbent_traces`."""
    steps = trace[~trace["end"]] if "end" in trace else trace
    return steps.groupby("run", sort=True).tail(1).reset_index(drop=True)


def run_curves(rows: pd.DataFrame, results: pd.DataFrame, top: int = 10) -> pd.DataFrame:
    """Learning curves (every epoch row) of the `top` configurations of the runs: ranked by
    the runner's rule (most epochs, then lowest loss) on their completed trials.

    Columns: curve (label), optimizer, run, config_id, epoch, loss, rank (1 = best).
    """
    best = (results.sort_values(["epoch", "loss"], ascending=[False, True])
            .drop_duplicates(["run", "config_id"]).head(top))
    epochs = rows[(rows["event"] == Event.EPOCH) & rows["loss"].notna()]
    frames = []
    for rank, rec in enumerate(best.itertuples(index=False), start=1):
        curve = epochs[(epochs["run"] == rec.run) & (epochs["config_id"] == rec.config_id)]
        curve = curve.sort_values("epoch").drop_duplicates("epoch", keep="last")
        frames.append(pd.DataFrame({
            "curve": f"{rec.optimizer} s{rec.seed} c{rec.config_id}",
            "optimizer": rec.optimizer, "run": rec.run, "config_id": rec.config_id,
            "epoch": curve["epoch"].astype(int).to_numpy(),
            "loss": curve["loss"].to_numpy(dtype=float), "rank": rank}))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=["curve", "optimizer", "run", "config_id", "epoch", "loss", "rank"])


RULE_LOGGED = "optimizer"  # the optimizer's own recommendation, from `recommend` rows
RULE_FALLBACK = "stated rule"  # no `recommend` rows: the runner's rule, from the log
RECOMMEND_FORMAT = 3  # the log format that added `recommend` rows (`suite.records`)


def recommendation_traces(rows: pd.DataFrame, results: pd.DataFrame,
                          runs: pd.DataFrame) -> pd.DataFrame:
    """Per run, the points at which the recommendation changed (see the module docstring).
    `runs` (`RunSet.runs`) says each run's format: only runs begun before format 3 fall
    back to the runner's rule.

    Columns: run, optimizer, seed, the ledger axes (spend when it changed), trial_id,
    config_id, epoch (the recommended trial's), loss (its observed loss), the `config.`
    columns, rule (`RULE_LOGGED` or `RULE_FALLBACK`), and `end` (True on one last row per
    run at its total spend, as `incumbent_traces`).
    """
    logged = rows[rows["event"] == Event.RECOMMEND] if "event" in rows else rows.iloc[:0]
    logged = logged.drop(columns=["epoch"], errors="ignore").rename(
        columns={"target_epochs": "epoch"}).assign(rule=RULE_LOGGED)
    old = runs.loc[runs["format"] < RECOMMEND_FORMAT, "run"]
    fallback = results[results["run"].isin(old) & ~results["run"].isin(logged["run"])]
    fallback = pd.DataFrame(_runner_rule(fallback), columns=results.columns).assign(
        rule=RULE_FALLBACK)
    cols = ["run", "optimizer", "seed", *AXES.values(), "trial_id", "config_id", "epoch",
            "loss", *[c for c in results.columns if c.startswith("config.")], "rule"]
    parts = [p.reindex(columns=cols) for p in (logged, fallback) if not p.empty]
    trace = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=cols)
    for col in ("trial_id", "config_id", "epoch"):
        trace[col] = trace[col].astype(int)
    trace = trace.sort_values(["run", "ledger.epochs"], kind="stable").assign(end=False)
    trace = pd.concat([trace, _ends(trace, rows), _never(trace, rows)], ignore_index=True)
    return trace.sort_values(["run", "end", "ledger.epochs"], kind="stable").reset_index(
        drop=True)


def _never(trace: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame:
    """An end row (no recommendation: NaN) for each run that never recommended anything
    (BOHB before any max-budget result), so that an aggregate over seeds sees the run
    and has no value there, rather than leaving the run out."""
    charged = rows[rows["ledger.epochs"].notna() & ~rows["run"].isin(trace["run"])]
    last = charged.groupby("run", sort=True).tail(1)
    return last.reindex(columns=["run", "optimizer", "seed", *AXES.values()]).assign(
        end=True)


def recommended_values(trace: pd.DataFrame, runs: pd.DataFrame, table=None) -> pd.DataFrame:
    """`trace` (`recommendation_traces`) with the recommendation's full-fidelity `value`,
    its `regret` (with a table: (value − best) / (median − best) of the table's
    full-fidelity means, `full_fidelity_reference`) and `source`: `table` (a replay's
    lookup), `trial` (a live run's full-fidelity trial) or `none` (no value known).

    `runs` is `RunSet.runs` (which runs are replays, and each run's max_epochs).
    """
    trace = trace.copy()
    meta = runs.set_index("run")
    simulated = trace["run"].map(meta["simulated"]).fillna(False).astype(bool).to_numpy()
    max_epochs = trace["run"].map(meta["max_epochs"]).to_numpy()
    value = np.where(trace["epoch"].to_numpy() >= max_epochs,
                     trace["loss"].to_numpy(dtype=float), np.nan)
    source = np.where(np.isnan(value), "none", "trial").astype(object)
    if table is not None:
        looked = _table_values(trace, table)
        use = simulated & ~np.isnan(looked)
        value, source = np.where(use, looked, value), np.where(use, "table", source)
    trace["value"], trace["source"] = value, source
    if table is not None:
        ref = full_fidelity_reference(table)
        trace["regret"] = (trace["value"] - ref["best"]) / (ref["median"] - ref["best"])
    return trace


def _table_values(trace: pd.DataFrame, table, means: np.ndarray | None = None) -> np.ndarray:
    """Each row's configuration's full-fidelity mean in `table` (`means`, per grid
    configuration; default: the objective's); NaN outside its grid."""
    means = full_fidelity_means(table) if means is None else means
    index = {_plain_key(c): i for i, c in enumerate(table.configs)}
    config_cols = [c for c in trace.columns if c.startswith("config.")]
    out = np.full(len(trace), np.nan)
    for row, rec in enumerate(trace[config_cols].to_dict("records")):
        config = {k[len("config."):]: v for k, v in rec.items() if not _missing(v)}
        at = index.get(_plain_key(config))
        if at is not None:
            out[row] = means[at]
    return out


def _missing(value) -> bool:
    return isinstance(value, float) and np.isnan(value)


def _plain_key(config) -> tuple:
    """A configuration's key that a DataFrame's round trip keeps (an integer column with
    a gap reads back as floats): numbers as floats."""
    return tuple(sorted((k, float(v) if isinstance(v, int | float | np.number)
                         and not isinstance(v, bool) else v) for k, v in config.items()))


def recommended_anytime(runs: RunSet, table=None, *, axis: str | None = None,
                        grid: np.ndarray | None = None, points: int = 120,
                        carry: bool = False) -> pd.DataFrame:
    """Per run and budget point: the recommended configuration's full-fidelity `value`
    and (with a table) `regret`; the input of anytime statistics and figures.

    Args:
        runs: the runs (`load_runs`), of one task.
        table: the task's table (`suite.tables.read_table`), for replays' values.
        axis: a key of `AXES`; default: the runs' own budget unit.
        grid: budget points; default `budget_grid(trace, axis, points)`.
        carry: keep a run's last value after its total spend (`on_grid`), for points a
            finished run stopped just short of.

    Returns:
        Columns run, optimizer, seed, budget, value, and regret with a table: NaN before a
        run's first recommendation, after its total spend, and where no value is known.
    """
    trace = recommended_values(
        recommendation_traces(runs.rows, trial_results(runs.rows), runs.runs), runs.runs, table)
    axis = axis or runs.runs["unit_axis"].iloc[0]
    grid = budget_grid(trace, axis, points) if grid is None else grid
    frame = on_grid(trace, axis, grid, "value", carry=carry)
    if "regret" in trace:
        frame["regret"] = on_grid(trace, axis, grid, "regret",
                                  carry=carry)["regret"].to_numpy()
    return frame


def recommended_test_values(recommended: pd.DataFrame, table) -> pd.DataFrame:
    """Each run's last recommendation (`recommended_values` rows) with the table's test
    metrics of its configuration at full fidelity, averaged over the table's training
    seeds, as its `value` is the validation objective's (`full_fidelity_means`).

    Returns:
        Columns run, optimizer, seed, epoch (the recommendation's), value, and one column
        per `table.test_metrics` (NaN outside the grid, or where every seed's is NaN).
    """
    last = final_incumbents(recommended)
    out = last[["run", "optimizer", "seed", "epoch", "value"]].copy()
    for name in table.test_metrics:
        curve = table.curve(name)[:, :, -1]
        seen = np.isfinite(curve).any(axis=1)
        means = np.full(len(curve), np.nan)  # nanmean of all-NaN rows warns: skip them
        means[seen] = np.nanmean(curve[seen], axis=1)
        out[name] = _table_values(last, table, means)
    return out.reset_index(drop=True)


def final_recommendations(recommended: pd.DataFrame, observed: pd.DataFrame) -> pd.DataFrame:
    """Each run's last recommendation (`recommended_values` rows) beside its observed final
    incumbent (`final_incumbents`): the recommendation's columns, plus `observed_loss` (and
    `observed_regret` where `observed` has a regret)."""
    last = final_incumbents(recommended)
    keep = {"loss": "observed_loss", "regret": "observed_regret"}
    seen = observed.set_index("run")
    for col, name in keep.items():
        if col in seen:
            last[name] = last["run"].map(seen[col]).to_numpy(dtype=float)
    return last
