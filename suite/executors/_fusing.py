"""The local executor with fused training arrays (`suite run --fuse auto`).

Capacity is counted in members: `workers` processes, each training one array of up to
`fuse_max` same-shape trials, so `free_slots() = workers * fuse_max - members in flight`
(queued or training); the runner keeps asking until that many trials are in flight.
Submitted jobs queue on the driver. Whenever a worker is idle, the oldest queued job
leaves with every queued job that shares its shape (`Task.fuse_key`), up to `fuse_max`:
two or more go as one array, a job alone goes solo (the task's ordinary `train`).
Oldest-first keeps the optimizer's ask order and never starves an odd shape.

A running array never takes new members (an array only sheds members: it would have to
be rebuilt): a job that arrives while every worker is busy waits for the next idle one,
and meets there whatever else of its shape has queued meanwhile. Members leave at their
target or when cancelled (the array drops just that member); a worker that dies fails
exactly its own members. The runner sees ordinary trials: `Job` in, `EpochDone` per
member epoch, `TrialEnded` per member, charged through the same device occupancy.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

from suite.executors._base import ArrayJob, EpochDone, Event, Job, TrialEnded
from suite.executors._local import _POLL_SECONDS, LocalExecutor
from suite.executors._occupancy import Busy
from suite.types import Task

__all__ = ["FusingExecutor"]

FuseKey = Callable[[Mapping[str, Any]], Hashable | None]


class FusingExecutor(LocalExecutor):
    """Subprocess workers that train queued same-shape trials as fused arrays."""

    def __init__(self, make_task: Callable[[], Task], *, fuse_key: FuseKey, fuse_max: int,
                 workers: int = 1, devices: Sequence[str] = ("auto",)) -> None:
        if fuse_max < 1:
            raise ValueError(f"fuse_max must be at least 1, got {fuse_max}")
        super().__init__(make_task, workers=workers, devices=devices)
        self.fuse_max, self._fuse_key = fuse_max, fuse_key
        self._queue: deque[tuple[Job, Hashable | None]] = deque()
        self._live: list[dict[int, Job]] = [{} for _ in range(workers)]  # worker → members
        self._ended: deque[TrialEnded] = deque()  # ends decided on the driver
        self.arrays: list[int] = []  # members of every dispatch, in order (for reports)

    def free_slots(self) -> int:
        in_flight = len(self._queue) + sum(len(live) for live in self._live)
        return self.workers * self.fuse_max - in_flight

    def submit(self, job: Job) -> None:
        self._queue.append((job, self._fuse_key(job.trial.config)))

    def next_event(self) -> Event:
        while True:
            if self._ended:
                return self._ended.popleft()
            self._dispatch()
            if not self._queue and not any(self._live):
                raise RuntimeError("next_event() with no job submitted")
            event = self._receive()
            if event is not None:
                return event

    def _dispatch(self) -> None:
        for i, worker in enumerate(self._pool):
            if not self._queue:
                return
            if worker.job is not None:
                continue
            jobs = self._take_group()
            self._live[i] = {job.trial.trial_id: job for job in jobs}
            worker.job = jobs[0] if len(jobs) == 1 else ArrayJob(tuple(jobs))
            worker.cancelled = set()
            worker.inbox.send(worker.job)
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

    def _receive(self) -> Event | None:
        import queue

        try:
            event = self._outbox.get(timeout=_POLL_SECONDS)
        except queue.Empty:
            self._reap_dead()
            return None
        if isinstance(event, Busy):
            self._occupancy.note(event)
            return None
        worker, live = self._pool[event.worker], self._live[event.worker]
        if isinstance(event, EpochDone):
            if event.trial_id in worker.cancelled:
                return None  # the runner has stopped it: nothing to charge
            return self._occupancy.charge(event)
        live.pop(event.trial_id, None)
        if not live:
            worker.job = None
            self._occupancy.forget(event.worker)
        # A cancelled member's end is passed on too: the runner counts jobs until it sees it.
        return event

    def _reap_dead(self) -> None:
        for i, worker in enumerate(self._pool):
            if worker.process.is_alive():
                continue
            code = worker.process.exitcode
            self._occupancy.forget(i)
            self._pool[i] = self._start(i)
            for trial_id in self._live[i]:
                error = None if trial_id in worker.cancelled else (
                    f"worker died (exit code {code})")
                self._ended.append(TrialEnded(trial_id, i, error))
            self._live[i] = {}

    def cancel(self, trial_id: int) -> None:
        for entry in list(self._queue):
            if entry[0].trial.trial_id == trial_id:
                self._queue.remove(entry)
                self._ended.append(TrialEnded(trial_id, -1))
                return
        for i, worker in enumerate(self._pool):
            if trial_id in self._live[i] and trial_id not in worker.cancelled:
                worker.cancelled.add(trial_id)
                worker.inbox.send(("cancel", trial_id))

    def close(self) -> None:
        self._queue.clear()
        super().close()
