"""Run logs → the frames the reports use: trial results, incumbent traces, budget grids.

The incumbent is the runner's (`suite.runner.Incumbent.better_than`): among the trials that
completed (`ok` epoch rows: a trial reached its target epochs), the one with the most
epochs, ties broken by the lower loss. At any point of the budget it is the incumbent as
of the last `ok` row charged so far, so a report shows exactly what the run would have
returned had it stopped there. Its loss can rise when the first trial at a higher
fidelity completes worse than the best one at a lower fidelity: a longer-trained value is
the one a user can trust, and the runner returns it.
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
from suite.types import Status

__all__ = ["RunSet", "load_runs", "trial_results", "incumbent_traces", "budget_grid",
           "on_grid", "final_incumbents", "run_curves", "AXES", "axis_label",
           "stated_budgets"]

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

    `runs` columns: run, task, optimizer, seed, budget, space_dims (d of the task's space,
    None in a meta written before it was kept), unit_axis (the budget axis of the
    run's own unit), metric, minimize, max_epochs, simulated, table, table_sha256, scale.
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
        metas.append({"run": run, "task": meta.task, "optimizer": meta.optimizer,
                      "seed": meta.seed, "budget": meta.budget,
                      "space_dims": meta.space_dims,
                      "unit_axis": _UNIT_AXIS[parse_budget(meta.budget).unit.value],
                      "metric": meta.metric, "minimize": meta.minimize,
                      "max_epochs": meta.max_epochs, "simulated": meta.simulated,
                      "table": local_path(meta.table), "table_sha256": meta.table_sha256,
                      "scale": meta.scale})
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
    out = []
    for _, group in results.sort_values("order").groupby("run", sort=True):
        best: tuple[int, float] | None = None
        for rec in group.to_dict("records"):
            key = (rec["epoch"], -rec["loss"])
            if best is None or key > best:
                best = key
                out.append(rec)
    trace = pd.DataFrame(out, columns=results.columns)
    trace["end"] = False
    if rows is not None and not trace.empty:
        trace = pd.concat([trace, _ends(trace, rows)], ignore_index=True)
    cols = ["run", "optimizer", "seed", *AXES.values(), "trial_id", "config_id", "epoch",
            "loss", "end"]
    return trace[cols].sort_values(["run", "end", "ledger.epochs"], kind="stable").reset_index(
        drop=True)


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
        values = np.where(at >= 0, steps[value].to_numpy(dtype=float)[np.maximum(at, 0)],
                          np.nan)
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
