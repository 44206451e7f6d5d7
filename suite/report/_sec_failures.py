"""Report section: the failed trials, per optimizer (written only where a trial failed).

A failed trial is one whose `end` row says failed, crashed or timed out (an exception in
training, a dead worker after its retry, a trial that stopped short of its target without
an error) or whose last epoch's objective was not finite. Its epochs were charged to the
run's budget like any other: the table says how many, since an optimizer that proposes
configurations that fail spends its budget on them.
"""

from __future__ import annotations

import pandas as pd

from suite.records import Event, failure_of
from suite.report._runs import RunSet
from suite.report._writer import Report, md_table

__all__ = ["failures_section", "failed_trials"]

def failed_trials(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per failed trial (`suite.records.failure_of`): optimizer, seed, run,
    trial_id, error (its first line)."""
    columns = [c for c in ("event", "status", "error") if c in rows]
    errors = pd.Series([failure_of(row) for row in rows[columns].to_dict("records")],
                       index=rows.index, dtype=object)
    failed = rows.loc[errors.notna(), ["optimizer", "seed", "run", "trial_id"]].copy()
    failed["error"] = errors[errors.notna()]
    return failed.drop_duplicates(["run", "trial_id"]).reset_index(drop=True)


def failures_section(report: Report, runs: RunSet, task: str) -> pd.DataFrame | None:
    """Per optimizer: trials, failed trials, epochs charged to them, the most frequent error.
    Nothing is written when no trial failed."""
    rows = runs.rows
    failed = failed_trials(rows)
    if failed.empty:
        return None
    epochs = rows[rows["event"] == Event.EPOCH.value]
    charged = epochs.merge(failed[["run", "trial_id"]], on=["run", "trial_id"])
    trials = rows[rows["event"] == Event.START.value].groupby("optimizer")["trial_id"].size()
    lines = []
    for name, mine in failed.groupby("optimizer", sort=True):
        counts = mine["error"].value_counts()
        lines.append({"optimizer": name, "trials": int(trials.get(name, 0)),
                      "failed": len(mine),
                      "epochs charged": int((charged["optimizer"] == name).sum()),
                      "most frequent error": f"{counts.index[0]} ({counts.iloc[0]}×)"})
    table = pd.DataFrame(lines)
    report.text("### Failed trials",
                f"{len(failed)} trials failed: they raised, their worker died twice, they "
                "timed out, stopped short of their target without an error, or reported an "
                "objective that was not a finite number. Their epochs were charged to their "
                "runs' budgets like any other. Each failure's error is in its run's "
                "`log.jsonl` (`end` rows).")
    report.data(f"{task}-failures", failed)
    report.text(md_table(table))
    return table
