"""Trials replayed from a recorded table on an event clock: N simulated workers, no training.

Each worker runs one job at a time. A job submitted at simulated time `t` finishes epoch
`k` at `t` plus the recorded device-seconds of epochs `start_epoch+1..k`, so a promotion
resumed from its lower rung pays only the new epochs. `next_event` always returns the
earliest pending completion across workers (ties by worker index), so trials complete in
the asynchronous order they would on real workers, not in submission order. A job's
`TrialEnded` comes right after its last epoch, at the same time. Everything is a pure
function of the table and the submitted jobs: the same run replays byte for byte.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from suite.executors._base import EpochDone, Event, Job, TrialEnded
from suite.records import EndRow, EpochRow, Row, StartRow
from suite.types import EpochResult, Status

if TYPE_CHECKING:
    from suite.tables import Table

__all__ = ["SimulatedExecutor"]


class _SimJob:
    """A job on a worker: the epoch it is training next and when that epoch completes."""

    __slots__ = ("trial_id", "worker", "config_index", "seed", "target", "epoch", "result")

    def __init__(self, trial_id: int, worker: int, config_index: int, seed: int,
                 target: int, epoch: int) -> None:
        self.trial_id, self.worker = trial_id, worker
        self.config_index, self.seed, self.target, self.epoch = config_index, seed, target, epoch
        self.result: EpochResult | None = None  # the epoch in flight, looked up once


class SimulatedExecutor:
    """Replays jobs from a `Table` on `workers` simulated workers (see the module docstring).

    Attributes:
        workers: the number of simulated workers.
        now: the simulated time in seconds: when the last returned event happened.
    """

    def __init__(self, table: Table, *, workers: int = 1) -> None:
        self.table, self.workers = table, workers
        self.now = 0.0
        self._free = list(range(workers))  # a heap: the lowest free worker takes a job
        self._jobs: dict[int, _SimJob] = {}  # trial_id → job still training
        self._busy: list[_SimJob | None] = [None] * workers
        self._heap: list[tuple[float, int, int, _SimJob]] = []  # (time, worker, seq, job)
        self._seq = 0
        self._ended: deque[tuple[TrialEnded, int | None]] = deque()  # (event, worker to free)
        self._restored: dict[int, tuple[int, float]] = {}
        self._index: dict[tuple, int] = {}  # configuration → table row, cheaper than its JSON

    def free_slots(self) -> int:
        return len(self._free)

    def submit(self, job: Job) -> None:
        """Start `job` on the lowest free worker now (or where `restore` says it was)."""
        trial = job.trial
        restored = self._restored.pop(trial.trial_id, None)
        worker, start = restored if restored else (heapq.heappop(self._free), self.now)
        try:
            index = self._config_index(trial.config)
        except Exception as exc:  # a trial the table cannot serve fails; the run goes on
            self._end_now(trial.trial_id, worker, f"{type(exc).__name__}: {exc}")
            return
        if job.start_epoch >= trial.epochs:  # nothing left to train: it ends at once
            self._end_now(trial.trial_id, worker, None)
            return
        sim = _SimJob(trial.trial_id, worker, index, job.seed % self.table.seeds,
                      trial.epochs, job.start_epoch + 1)
        self._jobs[trial.trial_id] = sim
        self._busy[worker] = sim
        self._schedule(sim, start)

    def _config_index(self, config: Mapping[str, Any]) -> int:
        key = tuple(sorted(config.items()))
        index = self._index.get(key)
        if index is None:
            index = self._index[key] = self.table.config_index(config)
        return index

    def _end_now(self, trial_id: int, worker: int, error: str | None) -> None:
        # The worker stays taken until the runner has seen the end, as a real worker would.
        self._ended.append((TrialEnded(trial_id, worker, error), worker))

    def _schedule(self, job: _SimJob, after: float) -> None:
        metrics, seconds = self.table.epoch(job.config_index, job.seed, job.epoch)
        job.result = EpochResult(job.epoch, metrics, seconds, None)
        self._seq += 1
        heapq.heappush(self._heap, (after + seconds, job.worker, self._seq, job))

    def next_event(self, timeout: float | None = None) -> Event:
        """The earliest pending completion across workers, advancing the clock to it."""
        if self._ended:
            event, worker = self._ended.popleft()
            if worker is not None:
                heapq.heappush(self._free, worker)
            return event
        heap, busy = self._heap, self._busy
        while heap:
            time, worker, _, job = heapq.heappop(heap)
            if busy[worker] is not job:  # cancelled: its pending epoch is dropped
                continue
            self.now = time
            result = job.result
            if job.epoch >= job.target:
                self._release(job)
                self._ended.append((TrialEnded(job.trial_id, worker), None))
            else:
                job.epoch += 1
                self._schedule(job, time)
            return EpochDone(job.trial_id, result, worker)
        raise RuntimeError("next_event() with no job submitted")

    def _release(self, job: _SimJob) -> None:
        del self._jobs[job.trial_id]
        self._busy[job.worker] = None
        heapq.heappush(self._free, job.worker)

    def cancel(self, trial_id: int, *, force: bool = False) -> None:
        """Drop a job's future epochs and free its worker at the current time."""
        job = self._jobs.get(trial_id)
        if job is not None:
            self._release(job)
            self._ended.append((TrialEnded(trial_id, job.worker), None))

    def close(self) -> None:
        self._jobs.clear()
        self._heap.clear()
        self._ended.clear()
        self._busy = [None] * self.workers
        self._free = list(range(self.workers))

    def restore(self, rows: Iterable[Row]) -> None:
        """Put the clock and the in-flight jobs back where a run's log left them.

        Walks the log (`suite.log.read_log`) with the same worker policy as `submit`
        (lowest free worker; freed at a trial's terminal epoch row or its end row), so the
        trials the runner resubmits after `--resume` land on their original workers and
        continue from the simulated time of their last logged epoch: the resumed log equals
        an uninterrupted one.
        """
        free, placed = list(range(self.workers)), {}
        for row in rows:
            if row.sim_time is not None:
                self.now = row.sim_time
            kind = type(row)
            if kind is StartRow:
                placed[row.trial.trial_id] = (heapq.heappop(free), row.sim_time)
            elif kind is EpochRow and row.trial.trial_id in placed:
                tid = row.trial.trial_id
                placed[tid] = (placed[tid][0], row.sim_time)
                if row.status is not Status.RUNNING:
                    heapq.heappush(free, placed.pop(tid)[0])
            elif kind is EndRow and row.trial.trial_id in placed:
                heapq.heappush(free, placed.pop(row.trial.trial_id)[0])
        self._free, self._restored = free, placed
