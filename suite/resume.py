"""Rebuild a run's state from its log, so `--resume` neither repeats nor loses an epoch.

Optimizers are deterministic for a fixed seed, so the state is rebuilt by replaying the
log into a fresh optimizer: each `start` row is re-asked after exactly as many tells as
it was originally asked after (`asked_after`), and every told result is told again in log
order. Trials that were training when the run died continue from the checkpoint pinned
at their last logged epoch; a trial that already had its crash retry (a `retry` row) gets
no second one.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from suite.budget import Ledger
from suite.executors._base import snapshot_path
from suite.log import LogError
from suite.runner import Incumbent, RunState, _Active
from suite.types import Status, Trial, TrialResult

__all__ = ["rebuild", "summarize"]


def _told(row: dict[str, Any]) -> bool:
    """Rows at which the runner told the optimizer a result."""
    if row["event"] == "epoch":
        return row["status"] in (Status.OK, Status.FAILED)
    return row["event"] == "end" and row["status"] != Status.CUT


def rebuild(rows: list[dict[str, Any]], optimizer, *, ledger: Ledger,
            checkpoints: Path | None) -> tuple[RunState, list[tuple[Trial, int, Path | None]]]:
    """Replay `rows` into `optimizer` and `ledger`; return the state and trials to resubmit.

    `checkpoints` is None for a run that keeps none (a replay): trials then resume by
    epoch count alone, as the simulated executor does.
    """
    state = _charged_state(rows, ledger, checkpoints)
    trials = _replay_asks_and_tells(rows, optimizer, state)
    ended: set[int] = set()
    last_epoch: dict[int, int] = {}
    for row in rows:
        tid = row.get("trial_id")
        if row["event"] == "epoch":
            last_epoch[tid] = row["epoch"]
            if row["status"] != "running":
                ended.add(tid)
        elif row["event"] == "end":
            ended.add(tid)
        elif row["event"] == "retry":
            state.retried.add(tid)
    resubmit = []
    for tid, trial in trials.items():
        if tid in ended:
            continue
        start = next(r for r in rows if r["event"] == "start" and r["trial_id"] == tid)
        done = last_epoch.get(tid, start["start_epoch"])
        if checkpoints is None:
            ckpt = None
        elif tid in last_epoch:
            ckpt = snapshot_path(checkpoints / f"{tid}.pt", done)
        else:
            name = start["resumed_checkpoint"]
            ckpt = checkpoints / name if name else None
        state.active[tid] = _Active(trial, done, done, ckpt)
        resubmit.append((trial, done, ckpt))
    state.trials = len(trials)
    return state, resubmit


def _replay_asks_and_tells(rows, optimizer, state: RunState) -> dict[int, Trial]:
    starts = [r for r in rows if r["event"] == "start"]
    told = [r for r in rows if _told(r)]
    trials: dict[int, Trial] = {}
    for start in starts:
        while state.tells < start["asked_after"]:
            _tell(optimizer, trials, told[state.tells], state)
        trial = optimizer.ask()
        if trial is None or not _same(trial, start):
            raise LogError(f"the log does not match what the optimizer proposes for trial "
                           f"{start['trial_id']}: was it written by another version or seed?")
        trials[trial.trial_id] = trial
    while state.tells < len(told):
        _tell(optimizer, trials, told[state.tells], state)
    return trials


def _tell(optimizer, trials: dict[int, Trial], row: dict[str, Any], state: RunState) -> None:
    ok = row["event"] == "epoch" and row["status"] == Status.OK
    loss = row["loss"] if ok else math.inf
    epochs = row["epoch"] if row.get("epoch") is not None else 0
    optimizer.tell(TrialResult(trials[row["trial_id"]], Status.OK if ok else Status.FAILED,
                               loss, epochs))
    state.tells += 1


def _same(trial: Trial, start: dict[str, Any]) -> bool:
    return (trial.trial_id == start["trial_id"] and dict(trial.config) == start["config"]
            and trial.epochs == start["target_epochs"]
            and trial.config_id == start["config_id"]
            and trial.resume_from == start["resumed_from"])


def summarize(rows: list[dict[str, Any]], *, ledger: Ledger) -> RunState:
    """The state of a finished run, for its summary: the ledger and the incumbent, without
    replaying the optimizer (which for BOHB or SMAC costs as much as the run did)."""
    state = _charged_state(rows, ledger, None)
    state.trials = sum(r["event"] == "start" for r in rows)
    state.tells = sum(_told(r) for r in rows)
    return state


def _charged_state(rows: list[dict[str, Any]], ledger: Ledger,
                   checkpoints: Path | None) -> RunState:
    """What `rebuild` and `summarize` share: every logged epoch charged to `ledger` again,
    and the finished trials and incumbent recorded, as the runner did when it logged them."""
    state = RunState(wall_offset=max((r.get("wall_time", 0.0) for r in rows), default=0.0))
    for row in rows:
        if row["event"] == "epoch":
            ledger.charge(epochs=1, device_seconds=row["device_seconds"])
            if row["status"] == Status.OK:
                _record_ok(state, row, checkpoints)
    return state


def _record_ok(state: RunState, row: dict[str, Any], checkpoints: Path | None) -> None:
    tid = row["trial_id"]
    ckpt = snapshot_path(checkpoints / f"{tid}.pt", row["epoch"]) if checkpoints else None
    state.finals[tid] = (row["epoch"], ckpt)
    candidate = Incumbent(tid, row["config"], row["epoch"], row["loss"], row["metrics"])
    if candidate.better_than(state.incumbent):
        state.incumbent = candidate
