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
from collections.abc import Sequence
from pathlib import Path

from suite.budget import Ledger
from suite.executors._base import snapshot_path
from suite.log import LogError
from suite.records import EndRow, EpochRow, RecommendRow, RetryRow, Row, StartRow
from suite.runner import ActiveTrial, Incumbent, RunState
from suite.types import Status, Trial, TrialResult

__all__ = ["rebuild", "summarize"]


def _told(row: Row) -> bool:
    """Rows at which the runner told the optimizer a result."""
    if type(row) is EpochRow:
        return row.status in (Status.OK, Status.FAILED)
    return type(row) is EndRow and row.status is not Status.CUT


def rebuild(rows: Sequence[Row], optimizer, *, ledger: Ledger,
            checkpoints: Path | None) -> tuple[RunState, list[tuple[Trial, int, Path | None]]]:
    """Replay `rows` (`suite.log.read_log`) into `optimizer` and `ledger`; return the state
    and the trials to resubmit.

    `checkpoints` is None for a run that keeps none (a replay): trials then resume by
    epoch count alone, as the simulated executor does.
    """
    state = _charged_state(rows, ledger, checkpoints)
    trials = _replay_asks_and_tells(rows, optimizer, state)
    ended: set[int] = set()
    last_epoch: dict[int, int] = {}
    starts: dict[int, StartRow] = {}
    for row in rows:
        kind = type(row)
        if kind is EpochRow:
            last_epoch[row.trial.trial_id] = row.epoch
            if row.status is not Status.RUNNING:
                ended.add(row.trial.trial_id)
        elif kind is EndRow:
            ended.add(row.trial.trial_id)
        elif kind is RetryRow:
            state.retried.add(row.trial.trial_id)
        elif kind is StartRow:
            starts.setdefault(row.trial.trial_id, row)
    resubmit = []
    for tid, trial in trials.items():
        if tid in ended:
            continue
        start = starts[tid]
        done = last_epoch.get(tid, start.start_epoch)
        if checkpoints is None:
            ckpt = None
        elif tid in last_epoch:
            ckpt = snapshot_path(checkpoints / f"{tid}.pt", done)
        else:
            name = start.resumed_checkpoint
            ckpt = checkpoints / name if name else None
        state.active[tid] = ActiveTrial(trial, done, done, ckpt)
        resubmit.append((trial, done, ckpt))
    state.trials = len(trials)
    return state, resubmit


def _replay_asks_and_tells(rows: Sequence[Row], optimizer, state: RunState) -> dict[int, Trial]:
    starts = [r for r in rows if type(r) is StartRow]
    told = [r for r in rows if _told(r)]
    trials: dict[int, Trial] = {}
    for start in starts:
        while state.tells < start.asked_after:
            _tell(optimizer, trials, told[state.tells], state)
        trial = optimizer.ask()
        if trial is None or not _same(trial, start.trial):
            raise LogError(f"the log does not match what the optimizer proposes for trial "
                           f"{start.trial.trial_id}: was it written by another version or "
                           "seed?")
        trials[trial.trial_id] = trial
    while state.tells < len(told):
        _tell(optimizer, trials, told[state.tells], state)
    return trials


def _tell(optimizer, trials: dict[int, Trial], row: EpochRow | EndRow,
          state: RunState) -> None:
    ok = type(row) is EpochRow and row.status is Status.OK
    loss = row.loss if ok else math.inf
    optimizer.tell(TrialResult(trials[row.trial.trial_id], Status.OK if ok else Status.FAILED,
                               loss, row.epoch))
    state.tells += 1


def _same(trial: Trial, logged: Trial) -> bool:
    return (trial.trial_id == logged.trial_id and dict(trial.config) == logged.config
            and trial.epochs == logged.epochs and trial.config_id == logged.config_id
            and trial.resume_from == logged.resume_from)


def summarize(rows: Sequence[Row], *, ledger: Ledger) -> RunState:
    """The state of a finished run, for its summary: the ledger and the incumbent, without
    replaying the optimizer (which for BOHB or SMAC costs as much as the run did)."""
    state = _charged_state(rows, ledger, None)
    state.trials = sum(type(r) is StartRow for r in rows)
    state.tells = sum(_told(r) for r in rows)
    return state


def _charged_state(rows: Sequence[Row], ledger: Ledger, checkpoints: Path | None) -> RunState:
    """What `rebuild` and `summarize` share: every logged epoch charged to `ledger` again,
    and the finished trials and incumbent recorded, as the runner did when it logged them."""
    state = RunState(wall_offset=max((r.wall_time for r in rows), default=0.0))
    for row in rows:
        if type(row) is EpochRow:
            ledger.charge(epochs=1, device_seconds=row.device_seconds)
            if row.status is Status.OK:
                _record_ok(state, row, checkpoints)
        elif type(row) is RecommendRow:  # the runner compares with it: never logged twice
            state.recommended = row.trial.trial_id
    return state


def _record_ok(state: RunState, row: EpochRow, checkpoints: Path | None) -> None:
    tid = row.trial.trial_id
    ckpt = snapshot_path(checkpoints / f"{tid}.pt", row.epoch) if checkpoints else None
    state.finals[tid] = (row.epoch, ckpt)
    state.ok[tid] = (row.trial, row.loss)
    candidate = Incumbent(tid, row.trial.config, row.epoch, row.loss, row.metrics)
    if candidate.better_than(state.incumbent):
        state.incumbent = candidate
