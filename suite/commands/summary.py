"""The closing summary of `suite run`: which optimizer did best, how reliably, what failed.

One row per optimizer (runs, the median and interquartile range over its runs of the
incumbent's objective in the task's own metric and direction, trials, failed trials, the
budget used), the best configuration once, one row per run where there are few runs (or
when asked), and the failures: how many per optimizer and the most frequent error. Built
from the runs' outcomes and their logs' failure rows, so a resumed study counts every
failure it ever had. It fits 80 columns: numbers are never wrapped.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from suite.log import read_meta, read_rows
from suite.records import failure_of

__all__ = ["Failures", "OptimizerLine", "failures_of", "optimizer_lines",
           "metric_words"]

@dataclass
class Failures:
    """A run's failed trials: how many, and each trial's error (its first line)."""

    trials: int = 0
    errors: Counter = field(default_factory=Counter)


def failures_of(directory: Path) -> Failures:
    """Failed trials in a run's log (`suite.records.failure_of`); a retried trial counts
    once."""
    found: dict[int, str] = {}
    for row in read_rows(directory):
        error = failure_of(row)
        if error is not None:
            found.setdefault(row["trial_id"], error)
    return Failures(len(found), Counter(found.values()))


def metric_words(directory: Path) -> tuple[str, bool]:
    """(the task's objective name, minimized?) as the run's meta.json records them."""
    meta = read_meta(directory)
    return str(meta.get("metric", "val_loss")), bool(meta.get("minimize", True))


@dataclass(frozen=True)
class OptimizerLine:
    optimizer: str
    runs: int
    median: float | None  # of the incumbent's objective in the task's words; None: no run has one
    q1: float | None
    q3: float | None
    trials: int
    failed: int
    used: float  # the budget the runs used, summed


def optimizer_lines(outcomes, failures: dict, minimize: bool, used_of) -> list[OptimizerLine]:
    """One line per optimizer, best median first (runs without an incumbent last)."""
    lines = []
    for name in dict.fromkeys(o.optimizer for o in outcomes):
        mine = [o for o in outcomes if o.optimizer == name]
        values = np.array([_objective(o.state.incumbent, minimize) for o in mine
                           if o.state.incumbent is not None])
        q1, median, q3 = (np.percentile(values, [25, 50, 75]) if len(values)
                          else (None, None, None))
        lines.append(OptimizerLine(
            name, len(mine), None if median is None else float(median),
            None if q1 is None else float(q1), None if q3 is None else float(q3),
            sum(o.state.trials for o in mine),
            sum(failures[(o.optimizer, o.seed)].trials for o in mine),
            sum(used_of(o) for o in mine)))
    sign = 1 if minimize else -1
    return sorted(lines, key=lambda line: (line.median is None,
                                           sign * (line.median or 0.0)))


def _objective(incumbent, minimize: bool) -> float:
    """The incumbent's objective as the task reported it (the runner's loss is negated for
    a metric to maximize)."""
    return incumbent.loss if minimize else -incumbent.loss
