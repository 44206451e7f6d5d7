"""The runner: the only owner of the loop, time, I/O and failures.

ask → submit → wait → charge the ledger → append to the log → tell, until the budget is
spent or the optimizer has nothing left to propose. The log's rows are the records of
`suite.records`: `start` (a trial was submitted), `epoch` (one per trained epoch, with the
ledger totals after its charge), `retry` (its worker died; the trial runs once more from
the checkpoint of its last logged epoch, so no epoch is logged twice), `end` (a trial
ended without an epoch row saying so) and `finish` (the run stopped, and why). An epoch
row's `status` is `running`, `ok` (the target was reached; told to the optimizer),
`failed` (NaN or inf; told as a failure) or `cut` (the epoch that spent the budget; never
told). An end row's is `failed` (training raised), `crashed` (the worker died again on
the retry), `timeout` (an attempt ran past `trial_timeout` wall seconds and was stopped)
or `cut` (the budget ran out while it trained); all but `cut` are told as failures. Every
row carries `wall_time`, and `sim_time` too when the executor keeps a clock of its own (a
replay's simulated executor): the same loop, ledger and log serve live runs and replays.
`on_row`, if given, sees each row's JSON object as it was written.

After every tell the runner asks an optimizer that has `recommend()` (every built-in one)
what it would return if stopped now, and logs a `recommend` row when that changed: the
anytime value of the recommended configuration is read from those rows. A resumed run
asks once more before it starts, so the row of a tell that was logged just before a kill
is written then, and never twice (`RunState.recommended` is the last one logged).

`stop` (a `threading.Event`, set by `suite.interrupt`'s signal handlers or by a caller in
another thread) stops the run cleanly: it is checked at the top of each loop iteration,
before and after each ask (a trial asked once it is set is dropped, never logged) and
after each wait, which then lasts at most `STOP_POLL` seconds. The epochs already received
are logged, the trials in flight are stopped with the executor, and no `finish` row is
written: `--resume` continues the run exactly as after a kill. A flag, never an exception,
so an optimizer library that catches everything cannot swallow it.

Crash retry and timeouts live here, not in an executor, so every executor gets them: an
executor only says that a trial's worker was `lost` and stops a trial when told.

Failed trials are results: logged, told, and the run goes on (`on_failure="continue"`, as
Optuna's `catch` and Ray Tune without `fail_fast`). With `on_failure="stop"` the first
trial that fails (raised, NaN or inf, crashed twice, timed out, stopped short) stops the
run as `stop` does, after its row, raising `TrialFailed`. A failed trial's full traceback
goes to `errors/trial-<id>.txt` in the run folder (Ray Tune's `error.txt`). A task that
breaks the Task API's contract (`suite.errors.TaskContractError`: a bug in the task, not
in one configuration) stops the run at its first occurrence, raising `ContractViolation`,
with that trial left in flight, unlogged: once the task is fixed, `--resume` trains it.

A circuit breaker stops a run that cannot train. Trials that end `failed`, `crashed` or
`timeout` without training an epoch in their last attempt charge nothing, so the budget
would never run out (a device that is not there, data that cannot be read: a new trial
every few milliseconds, forever). They are counted in a row, in the order they end
(whichever worker ran them; a trial ending any other way resets the count), and raise
`FailingTrials` at `FAILING_STREAK` plus the trials the executor holds at once less one
(10 on one worker; 10 + 15 on 2 workers fusing 8 each): one bad moment (a fused array's
out-of-memory) fails every trial in flight together. The run stops as on `stop` (the
trials in flight are stopped, no `finish` row): once its cause is fixed, `--resume`
continues it; if not, it stops again after as many.

Checkpoints a live run no longer needs are deleted as it goes (`keep_checkpoints="needed"`,
the default; `"all"` keeps every one): the rule, and what it keeps for a retry, a resume,
a promotion and the incumbent, is in `suite._retention`.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from suite._retention import KEEP_CHECKPOINTS, needed_names, sweep
from suite.budget import Ledger
from suite.errors import SuiteError
from suite.executors import EpochDone, Executor, Job, TrialEnded
from suite.executors._base import snapshot_path
from suite.log import RunLog
from suite.plan import ON_FAILURE, PROMOTION_POLICIES
from suite.records import EndRow, EpochRow, FinishRow, RecommendRow, RetryRow, Row, StartRow
from suite.types import Metric, Status, Trial, TrialResult

__all__ = ["Runner", "RunState", "ActiveTrial", "Incumbent", "training_seed",
           "PROMOTION_POLICIES", "KEEP_CHECKPOINTS", "ON_FAILURE", "FAILING_STREAK",
           "RunHalted", "FailingTrials", "TrialFailed", "ContractViolation"]

ERRORS = "errors"  # in a run folder: each failed trial's traceback, trial-<id>.txt
STOPPED = "stopped"  # what `Runner.run` returns when `stop` was set: no finish row
STOP_POLL = 0.2  # seconds: the longest wait before the runner looks at `stop` again
# Trials in a row failing before their first epoch that stop a run (beyond what fails at
# once, see the module docstring): enough that a few bad configurations (an out-of-memory
# at the first batch) pass, few enough to stop in seconds.
FAILING_STREAK = 10


class RunHalted(SuiteError):
    """The run stopped without a `finish` row, as on `stop`; it resumes once the cause
    (the message) is fixed."""


class FailingTrials(RunHalted):
    """Trials failed before their first epoch, too many in a row."""


class TrialFailed(RunHalted):
    """A trial failed under `on_failure="stop"`."""


class ContractViolation(RunHalted):
    """The task broke the Task API's contract (`TaskContractError`, raised in training)."""


def training_seed(run_seed: int, config_id: int) -> int:
    """One training seed per configuration, so a promotion retrained from scratch repeats
    the lower rung's epochs exactly (and resuming equals retraining, except in cost)."""
    return (run_seed * 1_000_003 + config_id) % 2**31


@dataclass(frozen=True)
class Incumbent:
    trial_id: int
    config: Mapping[str, Any]
    epochs: int
    loss: float
    metrics: Mapping[str, float]

    def better_than(self, other: Incumbent | None) -> bool:
        """More epochs first (a higher fidelity is more trustworthy), then lower loss."""
        return other is None or (self.epochs, -self.loss) > (other.epochs, -other.loss)


@dataclass
class ActiveTrial:
    """A trial submitted and not yet ended: where its current attempt started and how far
    it got. The runner keeps one per trial in flight; `suite._resume` rebuilds them."""

    trial: Trial
    start_epoch: int  # of this attempt
    last_epoch: int  # the last logged
    source: Path | None = None  # the checkpoint of `last_epoch`: where a retry resumes
    deadline: float | None = None  # monotonic time this attempt times out


@dataclass
class RunState:
    """What the runner knows; rebuilt from the log by `suite._resume` after a crash."""

    tells: int = 0
    wall_offset: float = 0.0
    active: dict[int, ActiveTrial] = field(default_factory=dict)
    finals: dict[int, tuple[int, Path]] = field(default_factory=dict)  # trial → (epochs, ckpt)
    incumbent: Incumbent | None = None
    trials: int = 0
    retried: set[int] = field(default_factory=set)  # trials already given their one retry
    ok: dict[int, tuple[Trial, float]] = field(default_factory=dict)  # ended ok: its loss
    recommended: int | None = None  # the trial of the last `recommend` row


class Runner:
    """Drives one optimizer on one task through an executor, charging one ledger."""

    def __init__(self, *, optimizer, executor: Executor, ledger: Ledger, log: RunLog,
                 metric: Metric, seed: int, checkpoints: Path | None,
                 promotion: str = "resume", trial_timeout: float | None = None,
                 state: RunState | None = None,
                 on_row: Callable[[Mapping[str, Any], Runner], None] | None = None,
                 stop: threading.Event | None = None, keep_checkpoints: str = "needed",
                 on_failure: str = "continue", grid=None) -> None:
        self.optimizer, self.executor, self.ledger, self.log = optimizer, executor, ledger, log
        self.trial_timeout = trial_timeout  # wall seconds per attempt; None: no limit
        self.metric, self.seed, self.promotion, self.on_row = metric, seed, promotion, on_row
        # None: a run without checkpoints (a replay: its executor keeps no model state; a
        # task without checkpoints: its promotions retrain, see `suite.setting`)
        self.checkpoints = Path(checkpoints) if checkpoints is not None else None
        if keep_checkpoints not in KEEP_CHECKPOINTS:
            raise SuiteError(f"unknown keep_checkpoints {keep_checkpoints!r}; choose "
                             f"{' or '.join(KEEP_CHECKPOINTS)}")
        self.keep_checkpoints = keep_checkpoints
        if on_failure not in ON_FAILURE:
            raise SuiteError(f"unknown on_failure {on_failure!r}; choose "
                             f"{' or '.join(ON_FAILURE)}")
        self.on_failure = on_failure
        self.grid = grid  # a live run on a table's grid: `suite.setting.GridTraining`
        self._deleted: set[str] = set()  # checkpoint names this runner deleted
        self.state = state or RunState()
        self.stop = stop
        self._jobs: set[int] = set()  # submitted, TrialEnded not yet received
        self._t0 = time.monotonic()
        self._failing: list[str] = []  # the errors of the trials failing in a row so far
        self._failing_limit = FAILING_STREAK  # set by `run` from the executor's capacity
        # An executor with a clock of its own (a replay) stamps every row with it too.
        self._clocked = hasattr(executor, "now")

    def run(self, resubmit: list[tuple[Trial, int, Path | None]] = ()) -> str:
        """Run until the budget is spent; returns why it stopped: `budget`, `optimizer`,
        or `stopped` (`stop` was set: no finish row, the run resumes)."""
        # its capacity, before anything is in flight: see the circuit breaker above
        self._failing_limit = FAILING_STREAK + max(0, self.executor.free_slots() - 1)
        try:
            self._note_recommendation()  # a resumed run's, if the kill came before its row
            for trial, done, ckpt in resubmit:
                self._submit(trial, resume_ckpt=ckpt, start_epoch=done, log_start=False)
            self._retain()  # what a killed run left behind
            reason = self._loop()
        finally:
            self.executor.close()  # stops the trials still in flight, whatever happened
        if reason != STOPPED:
            self._append(FinishRow(reason, self.ledger.totals, **self._stamp()))
        return reason

    def _stopping(self) -> bool:
        return self.stop is not None and self.stop.is_set()

    def _loop(self) -> str:
        while not self.ledger.exhausted:
            if self._stopping():
                return STOPPED
            self._fill()
            if self._stopping():
                return STOPPED
            if not self._jobs:
                return "optimizer"
            event = self.executor.next_event(timeout=self._wait())
            if event is not None:
                self._handle(event)
                self._retain()  # only an event frees a checkpoint: not on idle polls
            self._expire()
        self._cut_active()
        return "budget"

    def _wait(self) -> float | None:
        """How long to wait for an event: until the next trial timeout, and with a stop
        flag at most STOP_POLL seconds (a signal does not cut a wait short: PEP 475)."""
        until = self._until_deadline()
        if self.stop is None:
            return until
        return STOP_POLL if until is None else min(until, STOP_POLL)

    def _fill(self) -> None:
        while self.executor.free_slots() > 0 and not self._stopping():
            trial = self.optimizer.ask()
            if trial is None or self._stopping():  # asked after the stop: dropped, unlogged
                return
            start, ckpt = self._promotion_source(trial)
            self._submit(trial, resume_ckpt=ckpt, start_epoch=start, log_start=True)

    def _promotion_source(self, trial: Trial) -> tuple[int, Path | None]:
        if trial.resume_from is None or self.promotion == "retrain":
            return 0, None
        parent = self.state.finals.get(trial.resume_from)
        if parent is not None and parent[1] is not None and parent[1].name in self._deleted:
            # never retrain silently: an optimizer's `resumable()` left this trial out
            raise SuiteError(f"trial {trial.trial_id} resumes from trial {trial.resume_from}, "
                             f"whose checkpoint was deleted as unneeded: a bug in optimizer "
                             f"{getattr(self.optimizer, 'name', '?')}'s resumable(); rerun "
                             "with --keep-checkpoints all")
        return parent if parent is not None else (0, None)

    def _submit(self, trial: Trial, *, resume_ckpt: Path | None, start_epoch: int,
                log_start: bool) -> None:
        save_to = self.checkpoints / f"{trial.trial_id}.pt" if self.checkpoints else None
        trained, seed = trial, training_seed(self.seed, trial.config_id)
        if self.grid is not None:  # what the table recorded: its fixed values, its seed
            trained, seed = replace(trial, config=self.grid.config(trial.config)), \
                self.grid.seed(seed)
        job = Job(trained, seed, save_to, resume_ckpt, start_epoch)
        deadline = (time.monotonic() + self.trial_timeout if self.trial_timeout is not None
                    else None)
        self.state.active[trial.trial_id] = ActiveTrial(trial, start_epoch, start_epoch,
                                                        resume_ckpt, deadline)
        self._jobs.add(trial.trial_id)
        if log_start:
            self.state.trials += 1
            # the checkpoint relative to the run's checkpoint folder: runs can be moved
            self._append(StartRow(trial, start_epoch, self.state.tells, job.seed,
                                  resume_ckpt.name if resume_ckpt else None, **self._stamp()))
        self.executor.submit(job)

    def _handle(self, event: EpochDone | TrialEnded) -> None:
        if isinstance(event, TrialEnded):
            self._jobs.discard(event.trial_id)
            if event.contract and event.trial_id in self.state.active:
                # left in flight, its end unlogged: the fixed task trains it on --resume
                raise ContractViolation(event.error)
            active = self.state.active.pop(event.trial_id, None)
            if active is None:  # its end is logged already (a terminal epoch, timeout, cut)
                return
            if event.lost and self._stopping():
                # its worker died with the run (a signal to the whole process group): it
                # stays in flight, to resume from its last logged epoch; no retry is spent
                self.state.active[event.trial_id] = active
                return
            if event.lost and self._retry(active, event.error):
                return
            self._end(active, Status.CRASHED if event.lost else Status.FAILED, event.error or (
                f"stopped at epoch {active.last_epoch} of {active.trial.epochs} without an "
                "error"), event.traceback)
            return
        active = self.state.active.get(event.trial_id)
        if active is not None:  # else: an epoch of a trial already stopped; not charged
            self._epoch(active, event)

    def _epoch(self, active: ActiveTrial, event: EpochDone) -> None:
        result, trial = event.result, active.trial
        totals = self.ledger.charge(epochs=1, device_seconds=result.device_seconds)
        value = result.metrics.get(self.metric.name, math.nan)
        loss = self.metric.loss(value)
        if not math.isfinite(loss):
            status = Status.FAILED
        elif result.epoch >= trial.epochs:
            status = Status.OK
        elif self.ledger.exhausted:
            status = Status.CUT
        else:
            status = Status.RUNNING
        self._append(EpochRow(trial, result.epoch, result.metrics, loss,
                              result.device_seconds, totals, status, event.worker,
                              **self._stamp()))
        if result.checkpoint is not None and active.last_epoch > active.start_epoch:
            # the previous pin is no longer needed
            snapshot_path(self.checkpoints / f"{trial.trial_id}.pt",
                          active.last_epoch).unlink(missing_ok=True)
        active.last_epoch = result.epoch
        if result.checkpoint is not None:
            active.source = result.checkpoint
        if status is not Status.RUNNING:
            self._failing.clear()  # it trained an epoch
            self._finish(active, status, loss, result)

    def _finish(self, active: ActiveTrial, status: Status, loss: float, result) -> None:
        trial = active.trial
        del self.state.active[trial.trial_id]
        if status is Status.CUT:
            return
        if status is Status.FAILED:
            self.executor.cancel(trial.trial_id)
        else:
            self.state.finals[trial.trial_id] = (result.epoch, result.checkpoint)
            self.state.ok[trial.trial_id] = (trial, loss)
            candidate = Incumbent(trial.trial_id, trial.config, result.epoch, loss,
                                  dict(result.metrics))
            if candidate.better_than(self.state.incumbent):
                self.state.incumbent = candidate
        self._tell(trial, status, loss if status is Status.OK else math.inf, result.epoch)
        if status is Status.FAILED:
            self._stop_on_failure(trial, f"its objective {self.metric.name} is {loss:g} at "
                                         f"epoch {result.epoch}")

    def _tell(self, trial: Trial, status: Status, loss: float, epochs: int) -> None:
        self.optimizer.tell(TrialResult(trial, status, loss, epochs))
        self.state.tells += 1
        self._note_recommendation()

    def _note_recommendation(self) -> None:
        """Log the optimizer's recommendation if it changed since the last one logged."""
        recommend = getattr(self.optimizer, "recommend", None)
        trial_id = recommend() if recommend is not None else None
        if trial_id is None or trial_id == self.state.recommended:
            return
        known = self.state.ok.get(trial_id)
        if known is None:
            raise SuiteError(f"optimizer {getattr(self.optimizer, 'name', '?')} recommends "
                             f"trial {trial_id}, which did not end ok")
        self.state.recommended = trial_id
        self._append(RecommendRow(known[0], known[1], self.ledger.totals, **self._stamp()))

    def _end(self, active: ActiveTrial, status: Status, error: str | None,
             traceback: str | None = None) -> None:
        trial = active.trial
        if traceback is not None:
            self._keep_traceback(trial.trial_id, traceback)
        self._append(EndRow(trial, status, active.last_epoch, error, self.ledger.totals,
                            **self._stamp()))
        if status is not Status.CUT:  # crashed and timeout are failures to the optimizer
            self._tell(trial, Status.FAILED, math.inf, active.last_epoch)
            self._stop_on_failure(trial, error or status.value)
        self._count_failing(active, status, error)

    def _keep_traceback(self, trial_id: int, text: str) -> None:
        """The full traceback of a failed trial, beside its log (the log keeps a line)."""
        directory = getattr(self.log, "directory", None)
        if directory is None:
            return
        try:
            (directory / ERRORS).mkdir(exist_ok=True)
            (directory / ERRORS / f"trial-{trial_id}.txt").write_text(text, encoding="utf-8")
        except OSError:
            pass  # a traceback lost is not worth a run: its first line is in the log

    def _stop_on_failure(self, trial: Trial, error: str) -> None:
        if self.on_failure == "stop":
            raise TrialFailed(f"trial {trial.trial_id} failed: {error} (--on-failure stop)")

    def _count_failing(self, active: ActiveTrial, status: Status, error: str | None) -> None:
        """The circuit breaker (see the module docstring); raises `FailingTrials`."""
        if status is Status.CUT or active.last_epoch > active.start_epoch:
            self._failing.clear()
            return
        self._failing.append(error or status.value)
        if len(self._failing) >= self._failing_limit:
            raise FailingTrials(f"{len(self._failing)} trials in a row failed before their "
                                f"first epoch; the first: {self._failing[0]}")

    def _retry(self, active: ActiveTrial, error: str | None) -> bool:
        """Its worker died: run the trial once more, from the checkpoint of its last logged
        epoch, so that no epoch is logged (or charged) twice. False if it had its retry, or
        its checkpoint is missing. A run that keeps no checkpoints (a replay, a task without
        them) continues by epoch count: its executor does not report the epochs logged."""
        trial = active.trial
        if trial.trial_id in self.state.retried or (
                self.checkpoints is not None and active.last_epoch > 0
                and active.source is None):
            return False
        self.state.retried.add(trial.trial_id)
        self._append(RetryRow(trial, active.last_epoch, error,
                              active.source.name if active.source else None, **self._stamp()))
        self._submit(trial, resume_ckpt=active.source, start_epoch=active.last_epoch,
                     log_start=False)
        return True

    def _retain(self) -> None:
        """Delete the checkpoints nothing can need any more (`suite._retention`)."""
        if self.checkpoints is None or self.keep_checkpoints == "all":
            return
        busy = self._jobs | set(self.state.active)
        deleted = sweep(self.checkpoints, busy=busy,
                        keep=needed_names(self.state, self.optimizer))
        self._deleted.update(deleted)

    def _until_deadline(self) -> float | None:
        """Seconds until the next attempt times out; None without a trial timeout."""
        deadlines = [a.deadline for a in self.state.active.values() if a.deadline is not None]
        return max(0.0, min(deadlines) - time.monotonic()) if deadlines else None

    def _expire(self) -> None:
        now = time.monotonic()
        started = getattr(self.executor, "started", None)  # None: it trains once submitted
        for trial_id, active in list(self.state.active.items()):
            if active.deadline is None or now < active.deadline:
                continue
            began = started(trial_id) if started is not None else -math.inf
            if began is None or began + self.trial_timeout > now:
                # it waited in the executor's queue (fused arrays): the attempt's clock
                # starts when it trains (still queued: look again a timeout from now)
                active.deadline = (now if began is None else began) + self.trial_timeout
                continue
            del self.state.active[trial_id]
            self.executor.cancel(trial_id, force=True)
            self._end(active, Status.TIMEOUT,
                      f"ran past the trial timeout of {self.trial_timeout:g} s")

    def _cut_active(self) -> None:
        """The budget is spent: stop what is still training; never tell it as complete."""
        for trial_id in list(self.state.active):
            self.executor.cancel(trial_id)
            self._end(self.state.active.pop(trial_id), Status.CUT, None)

    def _stamp(self) -> dict[str, float | None]:
        """The times every row carries: the run's wall time and, when the executor keeps
        a clock of its own (a replay), that clock's."""
        return {"wall_time": round(self.state.wall_offset + time.monotonic() - self._t0, 6),
                "sim_time": self.executor.now if self._clocked else None}

    def _append(self, row: Row) -> None:
        data = self.log.append(row)
        if self.on_row is not None:
            self.on_row(data, self)
