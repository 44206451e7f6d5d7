"""The report's test-set section: each run's final incumbent on the held-out split,
read from the table for replayed runs, evaluated from its checkpoint for live ones."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from suite.report import _figures as F
from suite.report._runs import RunSet, recommended_test_values
from suite.report._writer import Report, TaskInputs, md_table


def testset_section(report: Report, runs: RunSet, inputs: TaskInputs, results: pd.DataFrame,
                    finals: pd.DataFrame | None,
                    recommended: pd.DataFrame | None = None) -> None:
    """Test-set value of each run's final incumbent beside its validation value; for a
    replay, of its final recommendation, where the table has test columns.

    Args:
        results: the runs' completed trials (the incumbents' configurations).
        finals: each run's final incumbent, None when no trial completed.
        recommended: the runs' recommendations (`recommended_values`), None without them.
    """
    if finals is None or finals.empty:
        return
    report.text("### Test set")
    meta = runs.runs.set_index("run")
    live = finals[~finals["run"].map(meta["simulated"])]
    replayed = finals[finals["run"].map(meta["simulated"])]
    if len(replayed):
        _test_replayed(report, replayed, inputs, results, recommended)
    if len(live) and not report.options.test:
        report.text("Live runs: test metrics not computed; pass `--test` to evaluate each "
                    "run's incumbent checkpoint (`<run>/checkpoints`; needs the task and "
                    "torch).")
    elif len(live):
        _test_live(report, live, meta, inputs.task)


def _test_replayed(report: Report, replayed: pd.DataFrame, inputs: TaskInputs,
                   results: pd.DataFrame, recommended: pd.DataFrame | None) -> None:
    table = inputs.table
    names = list(table.test_metrics) if table is not None else []
    if not names:
        report.text("Replayed runs: no test metric. A replay serves the table's validation "
                    "curves, and this table records no test metric; the incumbent's test "
                    "value needs it trained live.")
        return
    if recommended is not None:
        steps = recommended[~recommended["end"] & recommended["run"].isin(replayed["run"])]
        if len(steps):
            _test_recommended(report, recommended_test_values(steps, table), inputs.task,
                              table)
            return
    rows = []
    for rec in replayed.to_dict("records"):
        config = _config_of(results, rec)
        index = table.config_index(config)
        row = {"optimizer": rec["optimizer"], "seed": rec["seed"], "val": rec["loss"]}
        for m in names:
            row[m] = float(np.nanmean(table.curve(m)[index, :, rec["epoch"] - 1]))
        rows.append(row)
    frame = pd.DataFrame(rows)
    report.data(f"{inputs.task}-test", frame)
    report.text("Replayed runs: the table's test metrics at the incumbent's configuration "
                "and epochs, averaged over the table's seeds:", md_table(frame))


def _test_recommended(report: Report, frame: pd.DataFrame, task: str, table) -> None:
    frame = frame.drop(columns=["run", "epoch"]).rename(columns={"value": "val"})
    report.data(f"{task}-test", frame)
    report.text(f"Replayed runs: each run's final recommended configuration, its "
                f"validation value (`val`) and the table's test metrics at full fidelity "
                f"(epoch {table.max_epochs}), each averaged over the table's {table.seeds} "
                "training seeds; no optimizer saw the test split:", md_table(frame))


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


def _test_live(report: Report, live: pd.DataFrame, meta: pd.DataFrame, name: str) -> None:
    from suite.registry import load_task  # imports torch: only when asked for

    rows, missing = [], []
    for rec in live.to_dict("records"):
        run = Path(rec["run"])
        ckpt = next((p for p in (run / "checkpoints" / f"{rec['trial_id']}.e{rec['epoch']}.pt",
                                 run / "checkpoints" / f"{rec['trial_id']}.pt") if p.is_file()),
                    None)
        if ckpt is None:
            missing.append(f"{rec['optimizer']} seed {rec['seed']}")
            continue
        task = load_task(name, scale=meta.loc[rec["run"], "scale"] or None)
        if not task.capabilities.test:
            report.note(f"task {name} has no test evaluation: no test values")
            return
        metrics = task.evaluate(ckpt, device=report.options.device)
        rows.append({"optimizer": rec["optimizer"], "seed": rec["seed"], "val": rec["loss"],
                     **{k: float(v) for k, v in sorted(metrics.items())}})
    if missing:
        report.note(f"no incumbent checkpoint for {', '.join(missing)} (only the incumbent's "
                    "is kept, and committed results hold none): no test value for those runs")
    if rows:
        frame = pd.DataFrame(rows)
        report.data(f"{name}-test", frame)
        report.text("Validation loss of each live run's final incumbent and its test metrics "
                    "(the held-out split):", md_table(frame))
        test_col = next((c for c in frame.columns if c.startswith("test") and "loss" in c),
                        None)
        if test_col:
            report.figure(f"{name}-test", lambda ax: F.plot_test_vs_val(
                frame, ax[0, 0], test=test_col), f"{name}: test against validation")
