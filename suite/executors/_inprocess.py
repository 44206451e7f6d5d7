"""Trials in the runner's own process: deterministic, for tests and simple CPU runs.

With `workers` > 1 the active jobs advance round-robin, one epoch per event, which
exercises the runner's asynchronous paths without processes.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Iterator

from suite.executors._base import EpochDone, Event, Job, TrialEnded, ended_by, run_job
from suite.types import EpochResult, Task


class InProcessExecutor:
    def __init__(self, task: Task, *, workers: int = 1, device: str = "cpu") -> None:
        self.task, self.workers, self.device = task, workers, device
        self._active: OrderedDict[int, tuple[int, Iterator[EpochResult]]] = OrderedDict()
        self._ended: deque[TrialEnded] = deque()  # cancelled jobs, reported like real ends

    def free_slots(self) -> int:
        return self.workers - len(self._active)

    def submit(self, job: Job) -> None:
        used = {w for w, _ in self._active.values()}
        worker = min(set(range(self.workers)) - used)
        self._active[job.trial.trial_id] = (worker, run_job(self.task, job, self.device))

    def next_event(self, timeout: float | None = None) -> Event:
        """The next epoch or end, round-robin; `timeout` cannot apply: training runs here."""
        if self._ended:
            return self._ended.popleft()
        if not self._active:
            raise RuntimeError("next_event() with no job submitted")
        trial_id, (worker, results) = next(iter(self._active.items()))
        self._active.move_to_end(trial_id)  # round-robin across workers
        try:
            return EpochDone(trial_id, next(results), worker)
        except StopIteration:
            del self._active[trial_id]
            return TrialEnded(trial_id, worker)
        except Exception as exc:  # a failing trial must never take the run down
            del self._active[trial_id]
            return ended_by(trial_id, worker, exc)

    def cancel(self, trial_id: int, *, force: bool = False) -> None:
        # between epochs is the only place this process can stop a trial, forced or not
        entry = self._active.pop(trial_id, None)
        if entry is not None:
            entry[1].close()
            self._ended.append(TrialEnded(trial_id, entry[0]))

    def close(self) -> None:
        for trial_id in list(self._active):
            self.cancel(trial_id)
        self._ended.clear()
