"""The local executor with fused training arrays (`suite run --fuse auto`).

Capacity is counted in members: `workers` processes, each training one array of up to
`fuse_max` same-shape trials, so `free_slots() = workers * fuse_max - members in flight`
(queued or training); the runner keeps asking until that many trials are in flight.
Submitted jobs queue on the driver. Whenever a worker is idle, the oldest queued job
leaves with every queued job that shares its shape (`Task.fuse_key`), up to `fuse_max`:
two or more go as one array, a job alone goes solo (the task's ordinary `train`), as
does a job marked `Job.alone`.
Oldest-first keeps the optimizer's ask order and never starves an odd shape.

A running array never takes new members (an array only sheds members: it would have to
be rebuilt): a job that arrives while every worker is busy waits for the next idle one,
and meets there whatever else of its shape has queued meanwhile. `started(trial_id)` says
when a job left the queue, so the runner's trial timeout counts training, not waiting.

Every job ends exactly once, as on `LocalExecutor`:
- at its target, or by an exception in the array (every member still in it fails);
- cancelled while queued: it leaves the queue, ended here;
- cancelled: the array drops just that member between epochs and reports its end (the
  cancel is sent only while the worker's pipe has room; see `cancel`);
- cancelled by force (a trial past its timeout; a hung epoch never reaches the check
  between epochs): the one process trains the whole array, so it is stopped, the member
  ends here, and each array-mate ends `lost`, so that the runner retries it from its last
  logged epoch as if its worker had died (spending that trial's one retry);
- its worker died: each member ends `lost` (retried once, then `crashed`); a retried trial
  queues again like any job and can fuse again.
"""

from __future__ import annotations

import select
import time
from collections import deque
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

from suite.executors._base import ArrayJob, Job, TrialEnded
from suite.executors._local import LocalExecutor
from suite.types import Task

__all__ = ["FusingExecutor"]

FuseKey = Callable[[Mapping[str, Any]], Hashable | None]


class FusingExecutor(LocalExecutor):
    """Subprocess workers that train queued same-shape trials as fused arrays."""

    def __init__(self, make_task: Callable[[], Task], *, fuse_key: FuseKey, fuse_max: int,
                 workers: int = 1, devices: Sequence[str] = ("auto",),
                 share_devices: bool = True) -> None:
        if fuse_max < 1:
            raise ValueError(f"fuse_max must be at least 1, got {fuse_max}")
        self.fuse_max, self._fuse_key = fuse_max, fuse_key
        self._queue: deque[tuple[Job, Hashable | None]] = deque()
        self._live: list[dict[int, Job]] = [{} for _ in range(workers)]  # worker → members
        self._cancelled: list[set[int]] = [set() for _ in range(workers)]  # members dropped
        self._unsent: list[list[int]] = [[] for _ in range(workers)]  # cancels not yet sent
        self._started: dict[int, float] = {}  # trial → when it left the queue
        self.arrays: list[int] = []  # members of every dispatch, in order (for reports)
        super().__init__(make_task, workers=workers, devices=devices,
                         share_devices=share_devices)

    def free_slots(self) -> int:
        in_flight = len(self._queue) + sum(len(live) for live in self._live)
        return self.workers * self.fuse_max - in_flight

    def submit(self, job: Job) -> None:
        self._started.pop(job.trial.trial_id, None)  # a retry waits afresh
        key = None if job.alone else self._fuse_key(job.trial.config)
        # one array asks for test metrics for all its members or for none
        self._queue.append((job, None if key is None else (key, job.test)))

    def started(self, trial_id: int) -> float | None:
        """`time.monotonic()` when the trial left the queue to train; None while queued."""
        return self._started.get(trial_id)

    def _dispatch(self) -> None:
        self._send_cancels()
        for i in range(len(self._pool)):
            if not self._queue:
                return
            if self._pool[i].job is not None:
                continue
            jobs = self._take_group()
            work = jobs[0] if len(jobs) == 1 else ArrayJob(tuple(jobs))
            try:
                self._pool[i].conn.send(work)
            except OSError:  # it died while idle: a fresh worker takes the work
                self._restart(i)
                self._pool[i].conn.send(work)
            self._pool[i].job = work
            self._live[i] = {job.trial.trial_id: job for job in jobs}
            self._cancelled[i], self._unsent[i] = set(), []
            now = time.monotonic()
            self._started.update((trial_id, now) for trial_id in self._live[i])
            self.arrays.append(len(jobs))

    def _take_group(self) -> list[Job]:
        first, key = self._queue.popleft()
        group = [first]
        if key is not None:
            for entry in list(self._queue):
                if len(group) == self.fuse_max:
                    break
                if entry[1] == key:
                    self._queue.remove(entry)
                    group.append(entry[0])
        return group

    def _job_ended(self, i: int, trial_id: int) -> None:
        self._live[i].pop(trial_id, None)
        self._cancelled[i].discard(trial_id)
        if trial_id in self._unsent[i]:  # it ended first: nothing left to cancel
            self._unsent[i].remove(trial_id)
        self._started.pop(trial_id, None)
        if not self._live[i]:  # only now may the worker read its pipe for a next job
            super()._job_ended(i, trial_id)

    def _dropped(self, i: int, trial_id: int) -> bool:
        return trial_id in self._cancelled[i]

    def _replace_dead(self, i: int) -> None:
        dead = self._pool[i]
        self._restart(i)
        self._end_members(i, f"worker died (exit code {dead.process.exitcode})")

    def _end_members(self, i: int, error: str) -> None:
        """Worker `i` is gone: one end for each member it had, `lost` unless cancelled."""
        for trial_id in self._live[i]:
            self._ended.append(TrialEnded(trial_id, i, error,
                                          lost=trial_id not in self._cancelled[i]))
            self._started.pop(trial_id, None)
        self._live[i], self._cancelled[i], self._unsent[i] = {}, set(), []

    def cancel(self, trial_id: int, *, force: bool = False) -> None:
        for entry in self._queue:
            if entry[0].trial.trial_id == trial_id:  # never started: nothing to stop
                self._queue.remove(entry)
                self._ended.append(TrialEnded(trial_id, -1))
                return
        for i, live in enumerate(self._live):
            if trial_id not in live:
                continue
            if force:  # one process trains the array: stopping it stops every member
                del live[trial_id]
                self._restart(i)
                self._ended.append(TrialEnded(trial_id, i))
                self._end_members(i, f"worker stopped: array-mate trial {trial_id} was "
                                     f"cancelled by force (past its timeout)")
            elif trial_id not in self._cancelled[i]:
                # Never sent here: the worker reads its pipe only between array epochs, and
                # while it sends a large array's epochs it reads nothing; hundreds of
                # cancels (a budget ending) would fill the pipe, and a driver blocked
                # sending while the worker is blocked sending is a deadlock.
                self._cancelled[i].add(trial_id)
                self._unsent[i].append(trial_id)
            return

    def _send_cancels(self) -> None:
        """Send the cancels the workers' pipes have room for now; the rest wait for the
        next call (each time the driver waits for events, so while it reads the workers'
        epochs: a worker that reads its pipe makes room)."""
        for i, unsent in enumerate(self._unsent):
            conn = self._pool[i].conn
            while unsent and _writable(conn):
                try:
                    conn.send(("cancel", unsent[0]))
                except OSError:  # it died: its end comes when its death is read
                    unsent.clear()
                    break
                unsent.pop(0)

    def close(self) -> None:
        self._queue.clear()
        super().close()


def _writable(conn) -> bool:
    """Whether a small message can be sent without blocking (a local socket reports
    writable only while at most a quarter of its buffer is in use)."""
    poller = select.poll()
    poller.register(conn.fileno(), select.POLLOUT)
    return bool(poller.poll(0))
