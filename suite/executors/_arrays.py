"""In a worker process: train an `ArrayJob` as one fused array, reporting per member.

The runner still sees ordinary trials: every member streams its own `EpochDone` (its
checkpoint pinned per epoch, as `run_job` pins a solo trial's) and gets its own
`TrialEnded` when it reaches its target, is cancelled (the array drops just that
member), or fails. An exception in the array fails every member still in it.
"""

from __future__ import annotations

from suite.executors._base import (
    ArrayJob,
    EpochDone,
    TrialEnded,
    ended_by,
    pin_checkpoint,
    test_keyword,
)
from suite.types import Member, Task

__all__ = ["run_array"]


def run_array(task: Task, array: ArrayJob, device: str, worker: int, conn,
              reporter=None) -> bool:
    """Train the array, talking to the driver on the worker's duplex pipe `conn`; True if
    it failed (an exception ended every member still in it)."""
    jobs = array.jobs
    ids = [job.trial.trial_id for job in jobs]
    live = set(range(len(jobs)))
    try:
        training = task.train_fused([
            Member(dict(j.trial.config), j.trial.epochs, j.seed, j.resume_from, j.save_to)
            for j in jobs], device=device, **test_keyword(task, jobs[0].test))
        for step in training:
            if reporter is not None:
                reporter.handoff()
            ended = []
            for index, result in step:
                if jobs[index].resume_from is None and result.epoch <= jobs[index].start_epoch:
                    continue  # retrained without a checkpoint: logged already (`run_job`)
                conn.send(EpochDone(ids[index], pin_checkpoint(jobs[index], result), worker))
                if result.epoch >= jobs[index].trial.epochs:  # the array lets it go itself
                    ended.append(index)
            ended += _drop_cancelled(training, conn, ids, live)
            # Ends go out only after the pipe was read: once the driver has the last one it
            # sends this worker its next job, which a later read here would swallow.
            for index in dict.fromkeys(ended):  # reached its target and cancelled: once
                live.discard(index)
                conn.send(TrialEnded(ids[index], worker))
            if not live:
                break
    except Exception as exc:  # one array, one fate: every member still in it failed
        for index in sorted(live):
            conn.send(ended_by(ids[index], worker, exc))
        return True
    for index in sorted(live):  # stopped short of a target: never silently
        conn.send(TrialEnded(ids[index], worker, "the array stopped before its target"))
    return False


def _drop_cancelled(training, conn, ids, live) -> list[int]:
    """Drop the members the driver cancelled; their indices."""
    dropped = []
    while conn.poll():
        message = conn.recv()
        if not (isinstance(message, tuple) and message[0] == "cancel"):
            continue  # nothing else is sent to a worker with members in training
        index = ids.index(message[1]) if message[1] in ids else None
        if index in live and index not in dropped:
            training.drop(index)
            dropped.append(index)
    return dropped
