"""Jobs, events and the executor protocol the runner drives."""

from __future__ import annotations

import os
import shutil
import traceback as tb
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from numbers import Real
from pathlib import Path
from typing import Protocol

from suite import timing
from suite.errors import TaskContractError
from suite.types import EpochResult, Task, Trial


@dataclass(frozen=True)
class Job:
    """A trial as the executor sees it: what to train, from where, and where to save."""

    trial: Trial
    seed: int
    save_to: Path | None
    resume_from: Path | None = None
    # epochs already trained (and logged): in `resume_from`, or, without a checkpoint (a
    # replay, a task without checkpoints), by epoch count alone
    start_epoch: int = 0
    # ask the task for its test metrics each epoch (`Capabilities.test_epochs`; tabulation)
    test: bool = False
    # trained alone even by a fusing executor (a table's solo timing of a shape)
    alone: bool = False


@dataclass(frozen=True)
class ArrayJob:
    """Same-shape jobs a worker trains as one fused array (`Task.train_fused`)."""

    jobs: tuple[Job, ...]


@dataclass(frozen=True)
class EpochDone:
    trial_id: int
    result: EpochResult
    worker: int


@dataclass(frozen=True)
class TrialEnded:
    """A job stopped producing epochs: normally (`error` None), by an exception raised in
    training (`error` set), or because its worker died (`lost`: killed, out of memory, a
    node gone; the runner retries such a trial once from its last logged epoch).
    `traceback` is the exception's full text, kept in the run folder; `contract` says the
    task broke the Task API's contract (`TaskContractError`): the runner stops the study."""

    trial_id: int
    worker: int
    error: str | None = None
    lost: bool = False
    traceback: str | None = None
    contract: bool = False


Event = EpochDone | TrialEnded


class Executor(Protocol):
    """Runs jobs on `workers` slots and reports their epochs and ends as events.

    Every submitted job ends with exactly one `TrialEnded`, cancelled or not (the runner
    counts on it to know when a slot is free). `next_event(timeout)` may return None when
    nothing happened within `timeout` seconds (executors that run training in the
    runner's own thread always return an event). `cancel` stops a trial between epochs;
    with `force` it stops it now, mid-epoch, where the executor can (a hung trial). An
    executor that queues jobs before training them may also offer `started(trial_id)`:
    when the job began to train (`time.monotonic()`), None while queued; the runner's
    trial timeout then counts from it rather than from `submit`.
    """

    workers: int

    def free_slots(self) -> int: ...
    def submit(self, job: Job) -> None: ...
    def next_event(self, timeout: float | None = None) -> Event | None: ...
    def cancel(self, trial_id: int, *, force: bool = False) -> None: ...
    def close(self) -> None: ...


def snapshot_path(save_to: Path, epoch: int) -> Path:
    return Path(save_to).with_name(f"{Path(save_to).stem}.e{epoch}{Path(save_to).suffix}")


def run_job(task: Task, job: Job, device: str) -> Iterator[EpochResult]:
    """Train a job, pinning each epoch's checkpoint under an epoch-numbered name.

    The task writes `save_to` every epoch, however it writes it (in place with
    `torch.save(state, save_to)`, or atomically); the runner needs the checkpoint that
    matches the last *logged* epoch to resume after a crash, so each epoch's file is
    moved to its epoch-numbered name as soon as the task yields (`pin_checkpoint`): the
    task's next save creates a new file, and nothing the task writes later can change a
    pinned one. `save_to`'s folder is created here: the runner asks, so it provides.

    A job that continues from `start_epoch` without a checkpoint (a task without
    checkpoints, retried or resumed mid-trial) retrains from the first epoch; the epochs
    already logged are trained again but not reported again. A task without a timer of
    its own (`Capabilities.timer`) has each epoch timed here, from one result to the next,
    for the charging of workers packed on one device.
    """
    trial = job.trial
    skip = job.start_epoch if job.resume_from is None else 0
    if job.save_to is not None:
        Path(job.save_to).parent.mkdir(parents=True, exist_ok=True)
    results = task.train(trial.config, epochs=trial.epochs, seed=job.seed,
                         resume_from=job.resume_from, save_to=job.save_to, device=device,
                         **test_keyword(task, job.test))
    if not task.capabilities.timer:
        results = _timed(results)
    expected = job.start_epoch + 1 if job.resume_from is not None else 1
    for result in results:
        check_result(task, job, result, expected)
        expected += 1
        if result.epoch > skip:
            yield pin_checkpoint(job, result)


def check_result(task: Task, job: Job, result: object, expected: int) -> None:
    """What the runner cannot repair in a task's epoch, refused as `TaskContractError`: not
    an `EpochResult`, another epoch than the next one (a resume from epoch k's checkpoint
    yields k+1 first), the objective missing or not a number, a checkpoint declared and
    not reported. Messages name types and keys, never a user's values beyond a number."""
    name = task.info.name
    if not isinstance(result, EpochResult):
        raise TaskContractError(f"task {name}'s train yielded a {type(result).__name__}, not "
                                "a suite.EpochResult")
    if result.epoch != expected:
        resumed = (f" (resumed from epoch {job.start_epoch}'s checkpoint)"
                   if job.resume_from is not None else "")
        raise TaskContractError(f"task {name}'s train yielded epoch {result.epoch} where "
                                f"epoch {expected} was next{resumed}")
    if result.epoch > job.trial.epochs:
        raise TaskContractError(f"task {name}'s train yielded epoch {result.epoch} past "
                                f"its target of {job.trial.epochs} epochs")
    metric = task.info.metric.name
    if not isinstance(result.metrics, Mapping):
        raise TaskContractError(f"task {name}'s epoch {result.epoch} metrics are a "
                                f"{type(result.metrics).__name__}, not a dict")
    if metric not in result.metrics:
        reported = ", ".join(map(str, result.metrics)) or "nothing"
        raise TaskContractError(f"task {name}'s epoch {result.epoch} reports {reported}, "
                                f"not its objective {metric!r}")
    for key, value in result.metrics.items():
        if not isinstance(value, Real) or isinstance(value, bool):
            raise TaskContractError(f"task {name}'s epoch {result.epoch} reports {key} as a "
                                    f"{type(value).__name__}, not a number")
    if (task.capabilities.checkpoints and job.save_to is not None
            and result.checkpoint is None):
        raise TaskContractError(
            f"task {name} declares checkpoints but its epoch {result.epoch} reports none "
            "(EpochResult.checkpoint): save to save_to each epoch, or declare "
            "Capabilities(checkpoints=False) so that its promotions retrain and are charged")


def test_keyword(task: Task, test: bool) -> dict[str, bool]:
    """`{"test": True}` when asked for (only a task with `test_epochs` is ever asked: one
    written without the keyword keeps working), else nothing."""
    if not test:
        return {}
    if not task.capabilities.test_epochs:
        raise ValueError(f"task {task.info.name} cannot report test metrics per epoch")
    return {"test": True}


def _timed(results: Iterator[EpochResult]) -> Iterator[EpochResult]:
    """Each epoch reported busy (`suite.timing`) from the request for it to its result."""
    try:
        while True:
            timing.epoch_started()
            try:
                result = next(results)
            except StopIteration:
                return  # an open start is forgotten when the job's end is read
            timing.epoch_ended()
            yield result
    finally:
        close = getattr(results, "close", None)
        if close is not None:
            close()


def pin_checkpoint(job: Job, result: EpochResult) -> EpochResult:
    """The result with its checkpoint under the epoch-numbered name.

    `save_to` itself is renamed (atomic, no copy): a hard link, as before, shared the file
    with the task, and a task saving in place rewrote every earlier epoch's pin. A
    checkpoint the task wrote elsewhere is copied (the task's file stays the task's)."""
    if result.checkpoint is None or job.save_to is None:
        return result
    pinned = snapshot_path(job.save_to, result.epoch)
    source = Path(result.checkpoint)
    try:
        if os.path.abspath(source) == os.path.abspath(job.save_to):
            os.replace(source, pinned)
        else:
            tmp = pinned.with_name(f".{pinned.name}.tmp")
            shutil.copyfile(source, tmp)
            os.replace(tmp, pinned)
    except FileNotFoundError:
        raise TaskContractError(f"the task reported a checkpoint at {source} for epoch "
                                f"{result.epoch} but did not write it") from None
    return replace(result, checkpoint=pinned)


def ended_by(trial_id: int, worker: int, exc: BaseException,
             text: str | None = None) -> TrialEnded:
    """The end of a trial whose training raised `exc`: its first line, its whole traceback
    (`text`, where the exception came from elsewhere, as Ray's remote one), and whether the
    task broke its contract."""
    contract = isinstance(exc, TaskContractError)  # its message says it all, in one line
    return TrialEnded(trial_id, worker, str(exc) if contract else describe_error(exc),
                      traceback=text or "".join(tb.format_exception(exc)), contract=contract)


def describe_error(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
