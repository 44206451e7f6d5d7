"""Trials in worker subprocesses, so a crashing trial cannot take the run down.

Each worker is a `spawn`ed process (safe with CUDA) with its own device from a
round-robin assignment (`cuda:0,cuda:0` packs two workers on one GPU). Each worker has
its own duplex pipe: jobs and cancels go in, epochs and ends come out. A pipe (not a queue
shared by all workers) because a worker can be killed at any instant: it then holds no
lock the others need, everything it sent before dying is read before the end of file
that says it died, and that end of file is seen at once. The worker checks for a cancel
between epochs; a forced cancel (a trial past its timeout) terminates the process. A
worker that dies is replaced by a fresh one and its trial reported as `lost`. Workers
sharing a device are charged their share of the time they shared it (`_occupancy`: each
worker also sends `Busy` notices on its pipe); `_fusing` adds fused arrays.

Signals are the driver's (`suite.interrupt`): a worker ignores SIGINT, which a terminal's
Ctrl-C sends to the whole process group (it is blocked while a worker starts, so even a
worker still importing never sees it), and the driver stops the workers. A worker whose
driver is gone (its pipe closed) exits quietly; SIGTERM ends it without a traceback.
"""

from __future__ import annotations

import gc
import multiprocessing as mp
import signal
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing import resource_tracker
from multiprocessing.connection import wait

from suite.env import worker_threads
from suite.executors._arrays import run_array
from suite.executors._base import (
    ArrayJob,
    EpochDone,
    Event,
    Job,
    TrialEnded,
    ended_by,
    run_job,
)
from suite.executors._occupancy import Busy, Occupancy, WorkerReporter
from suite.interrupt import die_with_parent
from suite.types import Task


def _worker_main(worker: int, make_task: Callable[[], Task], device: str, threads: int,
                 conn) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the driver decides when workers stop
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})  # blocked by `_start`
    die_with_parent()  # never a writer outliving a SIGKILLed driver
    try:
        _serve(worker, make_task, device, threads, conn)
    except (EOFError, BrokenPipeError, ConnectionResetError):
        pass  # the driver is gone (stopped or killed): nothing left to report to




def _serve(worker: int, make_task: Callable[[], Task], device: str, threads: int,
           conn) -> None:
    import torch

    torch.set_num_threads(threads)  # N workers on a CPU must not oversubscribe the cores
    reporter = WorkerReporter(worker, device, conn.send)
    with reporter.span("startup"):
        task = make_task()
    while (job := conn.recv()) is not None:
        if isinstance(job, ArrayJob):
            with reporter.span("job", members=len(job.jobs)):
                failed = run_array(task, job, device, worker, conn, reporter)
            if failed:
                _free_memory(torch)
            continue
        if not isinstance(job, Job):  # a cancel that arrived after its trial ended
            continue
        trial_id = job.trial.trial_id
        reporter.job_started()
        ended = TrialEnded(trial_id, worker)
        try:
            for result in run_job(task, job, device):
                reporter.handoff()
                conn.send(EpochDone(trial_id, result, worker))
                if conn.poll() and conn.recv() == ("cancel", trial_id):
                    break
        except Exception as exc:
            ended = ended_by(trial_id, worker, exc)
        conn.send(ended)
        reporter.job_ended(members=1)
        if ended.error is not None:
            _free_memory(torch)


def _free_memory(torch) -> None:
    # A failed trial (a CUDA out-of-memory above all) leaves its tensors to the garbage
    # collector and its blocks in torch's cache: free both before the next trial here.
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


@dataclass(eq=False)  # identity: a replaced worker is another worker
class _Worker:
    process: mp.process.BaseProcess
    conn: object  # the parent's end of the worker's duplex pipe
    job: Job | ArrayJob | None = None
    cancelled: bool = False  # its job was cancelled: its remaining epochs are dropped


class LocalExecutor:
    """N subprocess workers on this machine; devices assigned round-robin."""

    def __init__(self, make_task: Callable[[], Task], *, workers: int = 1,
                 devices: Sequence[str] = ("auto",), share_devices: bool = True) -> None:
        """`share_devices=False` reports each epoch's seconds as measured, without charging
        packed workers their share (what a table records, as all its chunks did)."""
        self.workers = workers
        self._share_devices = share_devices
        self._make_task = make_task
        self._devices = list(devices) or ["auto"]
        self._ctx = mp.get_context("spawn")
        self._threads = worker_threads("local", workers)
        self._ended: deque[TrialEnded] = deque()  # ends decided here (forced cancels)
        self._occupancy = Occupancy({i: self._devices[i % len(self._devices)]
                                     for i in range(workers)})
        self._pool = [self._start(i) for i in range(workers)]

    def _start(self, i: int) -> _Worker:
        parent, child = self._ctx.Pipe()
        device = self._devices[i % len(self._devices)]
        process = self._ctx.Process(target=_worker_main, daemon=True, args=(
            i, self._make_task, device, self._threads, child))
        # SIGINT blocked from before the spawn until the worker ignores it: a Ctrl-C
        # while it imports stays pending, then is dropped (the mask survives the exec).
        # multiprocessing's resource tracker, started by the first spawn, unblocks SIGINT
        # after starting: start it first.
        resource_tracker.ensure_running()
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            process.start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        child.close()  # else the parent holds the child's end open and never sees EOF
        return _Worker(process, parent)

    def free_slots(self) -> int:
        return sum(w.job is None for w in self._pool)

    def submit(self, job: Job) -> None:
        i = next(i for i, w in enumerate(self._pool) if w.job is None)
        try:
            self._pool[i].conn.send(job)
        except OSError:  # it died while idle: a fresh worker takes the job
            self._restart(i)
            self._pool[i].conn.send(job)
        self._pool[i].job, self._pool[i].cancelled = job, False

    def next_event(self, timeout: float | None = None) -> Event | None:
        """The next epoch or end from any worker; None if `timeout` seconds pass first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._ended:
            self._dispatch()
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            handles = {w.conn: w for w in self._pool}
            handles.update({w.process.sentinel: w for w in self._pool})
            ready = wait(list(handles), timeout=left)
            if not ready:
                return None
            for handle in ready:
                worker = handles[handle]
                if worker not in self._pool:  # replaced while handling an earlier handle
                    continue
                if (event := self._receive(self._pool.index(worker))) is not None:
                    return event
        return self._ended.popleft()

    def _receive(self, i: int) -> Event | None:
        worker = self._pool[i]
        try:
            if not worker.conn.poll():  # the process ended; it may still have sent events
                raise EOFError
            event = worker.conn.recv()
        except (EOFError, OSError):
            return self._replace_dead(i)
        if isinstance(event, Busy):  # a timed epoch began or ended on this worker
            self._occupancy.note(event)
            return None
        if isinstance(event, TrialEnded):
            self._job_ended(i, event.trial_id)
            return event
        if self._dropped(i, event.trial_id):
            return None
        return self._occupancy.charge(event) if self._share_devices else event

    # Hooks for `FusingExecutor`, whose workers hold several trials at once.
    def _dispatch(self) -> None:
        """Send queued jobs to idle workers (this executor sends each at `submit`)."""

    def _job_ended(self, i: int, trial_id: int) -> None:
        self._pool[i].job = None
        self._occupancy.forget(i)

    def _dropped(self, i: int, trial_id: int) -> bool:
        """Its epochs are no longer wanted: the runner cancelled it."""
        return self._pool[i].cancelled

    def _replace_dead(self, i: int) -> TrialEnded | None:
        worker = self._pool[i]
        self._restart(i)
        if worker.job is None:
            return None
        return TrialEnded(worker.job.trial.trial_id, i,
                          f"worker died (exit code {worker.process.exitcode})",
                          lost=not worker.cancelled)

    def cancel(self, trial_id: int, *, force: bool = False) -> None:
        for i, worker in enumerate(self._pool):
            if worker.job is None or worker.job.trial.trial_id != trial_id:
                continue
            if force:  # a hung epoch never reaches the inbox check: stop the process
                self._restart(i)
                self._ended.append(TrialEnded(trial_id, i))
            elif not worker.cancelled:
                worker.cancelled = True
                worker.conn.send(("cancel", trial_id))

    def _restart(self, i: int) -> None:
        """Stop worker `i` (whatever it trains is lost) and start a fresh one."""
        self._stop(self._pool[i])
        self._occupancy.forget(i)  # an epoch it had open never finishes
        self._pool[i] = self._start(i)

    @staticmethod
    def _stop(worker: _Worker) -> None:
        if worker.process.is_alive():
            worker.process.terminate()
        worker.process.join(timeout=10)
        if worker.process.is_alive():
            worker.process.kill()
            worker.process.join()
        worker.conn.close()

    def close(self) -> None:
        for worker in self._pool:
            if worker.process.is_alive() and worker.job is None:
                try:
                    worker.conn.send(None)
                except OSError:
                    pass
            elif worker.process.is_alive():
                worker.process.terminate()
        for worker in self._pool:
            worker.process.join(timeout=10)
            if worker.process.is_alive():
                worker.process.kill()
            worker.conn.close()
