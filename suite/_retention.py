"""Checkpoint retention: which files in a run's checkpoint folder a live run still needs.

A trial `T` writes `T.pt` every epoch and the runner pins each epoch `k`'s file as
`T.ek.pt` (renamed, so the task's next save is a new file: `suite.executors._base`).
Optimizers that continue a configuration as separate trials (one-epoch steps of
`tpe-median` and `tpe-hyperband`, promotions of `hyperband`, `bohb`, `asha`, ...) would
leave one file per trial: about 1,600 in one `tpe-median` run at 60x.

Under `keep_checkpoints="needed"` (the default) the runner deletes, after every event it
handles, each file of the form `T.pt` or `T.ek.pt` that no rule below keeps:

1. every file of a trial still in flight (in the runner's state or still held by the
   executor: a cancelled job may write once more before it ends);
2. the checkpoint an in-flight trial would resume from if its worker died (`ActiveTrial.
   source`: its parent's pin until it logs its first epoch, then its own last pin); after a
   kill, `suite run --resume` resumes a trial from the same file (`suite._resume`), so
   the log's records never point at a deleted file;
3. the final pin of every trial that ended ok and that the optimizer may still name as a
   `resume_from`: the trials its `resumable()` returns (see `Resumable`), or, for an
   optimizer without that method, every one of them (nothing else is known to be safe);
4. the final pins of the incumbent (the end of the run keeps it: `suite.study`) and of the
   optimizer's last logged recommendation.

So a configuration's checkpoint at e epochs goes once a later trial of that configuration
has logged an epoch beyond e with its own checkpoint (rule 2 no longer holds it) and the
optimizer will not resume from it again (rule 3); a trial that ended failed, crashed, cut
or timed out goes once its job has ended. Deleting happens only after the row that made a
file unneeded is logged; a kill in between leaves a file that the resumed run deletes.
Files of any other name (a worker's temporary file) are left alone. Nothing deleted can be
asked for again; were it asked for anyway (an optimizer's `resumable` that left a trial
out), the runner stops with one line instead of retraining silently.

`keep_checkpoints="all"` deletes nothing, at the end of the run either.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from pathlib import Path
from typing import Protocol, runtime_checkable

from suite.plan import KEEP_CHECKPOINTS

__all__ = ["KEEP_CHECKPOINTS", "Resumable", "needed_names", "sweep"]


_NAME = re.compile(r"^(\d+)(?:\.e\d+)?\.pt$")  # T.pt or T.ek.pt


@runtime_checkable
class Resumable(Protocol):
    """An optimizer that says which finished trials it may still continue (optional)."""

    def resumable(self) -> Collection[int]:
        """The ids of told trials a later `ask` may still name as `resume_from` (a lower
        rung not yet promoted, an open chain's last step). Trials not told yet need not be
        listed. A trial left out must never be named again."""
        ...


def needed_names(state, optimizer) -> set[str]:
    """The file names rules 2-4 keep (rule 1 is by trial id: `sweep`'s `busy`)."""
    names = {a.source.name for a in state.active.values() if a.source is not None}
    resumable = getattr(optimizer, "resumable", None)
    kept: Iterable[int] = state.finals if resumable is None else resumable()
    ends = [*kept, state.recommended, state.incumbent.trial_id if state.incumbent else None]
    for trial_id in ends:
        final = state.finals.get(trial_id) if trial_id is not None else None
        if final is not None and final[1] is not None:
            names.add(Path(final[1]).name)
    return names


def sweep(folder: Path, *, busy: Collection[int], keep: Collection[str]) -> list[str]:
    """Delete the checkpoints in `folder` of trials not in `busy` whose names are not in
    `keep`; returns the names deleted."""
    deleted = []
    try:
        entries = list(folder.iterdir())
    except FileNotFoundError:  # nothing saved yet
        return deleted
    for path in entries:
        match = _NAME.match(path.name)
        if match is None or int(match[1]) in busy or path.name in keep:
            continue
        path.unlink(missing_ok=True)
        deleted.append(path.name)
    return deleted
