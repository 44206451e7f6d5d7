"""Trials in worker subprocesses, so a crashing trial cannot take the run down.

Each worker is a `spawn`ed process (safe with CUDA) with its own device from a
round-robin assignment (`cuda:0,cuda:0` packs two workers on one GPU). Workers report
each epoch on a shared queue; the runner cancels a trial by message, and the worker
checks its inbox between epochs. A worker that dies is detected, its trial reported
as failed, and a fresh worker takes its place. Workers sharing a device are charged their
share of the time they shared it (`_occupancy`); `_fusing` adds fused arrays.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from suite.executors._arrays import run_array
from suite.executors._base import (
    ArrayJob,
    EpochDone,
    Event,
    Job,
    TrialEnded,
    describe_error,
    run_job,
)
from suite.executors._occupancy import Busy, Occupancy, WorkerReporter
from suite.types import Task

_POLL_SECONDS = 0.5


def _worker_main(worker: int, make_task: Callable[[], Task], device: str, threads: int,
                 inbox, outbox) -> None:
    import torch

    torch.set_num_threads(threads)  # N workers on a CPU must not oversubscribe the cores
    reporter = WorkerReporter(worker, device, outbox)
    with reporter.span("startup"):
        task = make_task()
    while (job := inbox.recv()) is not None:
        if isinstance(job, ArrayJob):
            with reporter.span("job", members=len(job.jobs)):
                run_array(task, job, device, worker, inbox, outbox, reporter)
            continue
        if not isinstance(job, Job):  # a cancel that arrived after its trial ended
            continue
        trial_id = job.trial.trial_id
        reporter.job_started()
        try:
            for result in run_job(task, job, device):
                reporter.handoff()
                outbox.put(EpochDone(trial_id, result, worker))
                if inbox.poll() and inbox.recv() == ("cancel", trial_id):
                    break
        except Exception as exc:
            outbox.put(TrialEnded(trial_id, worker, describe_error(exc)))
        else:
            outbox.put(TrialEnded(trial_id, worker))
        reporter.job_ended(members=1)


@dataclass
class _Worker:
    process: mp.process.BaseProcess
    inbox: object
    job: Job | None = None
    cancelled: set[int] = field(default_factory=set)


class LocalExecutor:
    """N subprocess workers on this machine; devices assigned round-robin."""

    def __init__(self, make_task: Callable[[], Task], *, workers: int = 1,
                 devices: Sequence[str] = ("auto",)) -> None:
        self.workers = workers
        self._make_task = make_task
        self._devices = list(devices) or ["auto"]
        self._ctx = mp.get_context("spawn")
        self._outbox = self._ctx.Queue()
        self._threads = max(1, (os.cpu_count() or 1) // workers)
        self._occupancy = Occupancy({i: self._devices[i % len(self._devices)]
                                     for i in range(workers)})
        self._pool = [self._start(i) for i in range(workers)]

    def _start(self, i: int) -> _Worker:
        parent, child = self._ctx.Pipe()
        device = self._devices[i % len(self._devices)]
        process = self._ctx.Process(target=_worker_main, daemon=True, args=(
            i, self._make_task, device, self._threads, child, self._outbox))
        process.start()
        return _Worker(process, parent)

    def free_slots(self) -> int:
        return sum(w.job is None for w in self._pool)

    def submit(self, job: Job) -> None:
        worker = next(w for w in self._pool if w.job is None)
        worker.job = job
        worker.inbox.send(job)

    def next_event(self) -> Event:
        while True:
            try:
                event = self._outbox.get(timeout=_POLL_SECONDS)
            except queue.Empty:
                if (dead := self._reap_dead()) is not None:
                    return dead
                continue
            if isinstance(event, Busy):  # a timed epoch began or ended on a worker
                self._occupancy.note(event)
                continue
            worker = self._pool[event.worker]
            if isinstance(event, TrialEnded):
                worker.job = None
                self._occupancy.forget(event.worker)
            else:
                event = self._occupancy.charge(event)
            if event.trial_id not in worker.cancelled:
                return event

    def _reap_dead(self) -> TrialEnded | None:
        for i, worker in enumerate(self._pool):
            if worker.process.is_alive():
                continue
            job, code = worker.job, worker.process.exitcode
            self._occupancy.forget(i)
            self._pool[i] = self._start(i)
            if job is not None and job.trial.trial_id not in worker.cancelled:
                return TrialEnded(job.trial.trial_id, i, f"worker died (exit code {code})")
        return None

    def cancel(self, trial_id: int) -> None:
        for worker in self._pool:
            if worker.job is not None and worker.job.trial.trial_id == trial_id:
                worker.cancelled.add(trial_id)
                worker.inbox.send(("cancel", trial_id))

    def close(self) -> None:
        for worker in self._pool:
            if worker.process.is_alive():
                if worker.job is None:
                    worker.inbox.send(None)
                else:
                    worker.process.terminate()
        for worker in self._pool:
            worker.process.join(timeout=10)
            if worker.process.is_alive():
                worker.process.kill()
