"""Invariants every run log must keep, whatever failed while it was written."""

import json
import os
import signal
from collections import Counter
from pathlib import Path


def assert_every_epoch_once(rows):
    """Each (trial, epoch) is logged once, and each trial's epochs run without a gap or
    a repeat from its start epoch on: a retry or a resume continues, never re-logs. Every
    trial also has exactly one terminal row (an epoch not `running`, or an end row), except
    those still training when a run was cut short; returns the terminal status by trial."""
    seen = Counter((r["trial_id"], r["epoch"]) for r in rows if r["event"] == "epoch")
    assert max(seen.values(), default=1) == 1, [k for k, n in seen.items() if n > 1]
    terminal = {}
    for start in (r for r in rows if r["event"] == "start"):
        tid = start["trial_id"]
        epochs = [r["epoch"] for r in rows if r["event"] == "epoch" and r["trial_id"] == tid]
        first = start["start_epoch"] + 1
        assert epochs == list(range(first, first + len(epochs))), (tid, epochs)
        ends = [r["status"] for r in rows if r.get("trial_id") == tid and (
            r["event"] == "end" or (r["event"] == "epoch" and r["status"] != "running"))]
        assert len(ends) <= 1, (tid, ends)
        terminal[tid] = ends[0] if ends else None
    return terminal


def killer(pid_dir: Path, *, at_epoch: int = 2):
    """An `on_row` callback that SIGKILLs, once, the worker process training the trial whose
    epoch `at_epoch` was just logged (found through `suite.testing.Pace`'s pid files):
    mid-trial, as it has more epochs to go. Records {trial_id: epoch} in `.killed`."""

    def on_row(row, runner) -> None:
        if on_row.killed or row["event"] != "epoch" or row["epoch"] != at_epoch \
                or row["status"] != "running":
            return
        config = json.dumps(row["config"], sort_keys=True)
        for path in Path(pid_dir).iterdir():
            if not path.name.startswith(".") and path.read_text() == config:
                os.kill(int(path.name), signal.SIGKILL)
                on_row.killed[row["trial_id"]] = row["epoch"]
                return

    on_row.killed = {}
    return on_row
