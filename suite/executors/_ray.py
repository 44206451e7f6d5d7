"""Trials on a Ray cluster: one Ray actor per worker slot, each epoch streamed to the driver.

An actor per slot, not a task per trial: like a local worker it builds its task (data,
vocabulary) once and keeps it between trials, and it holds its share of a GPU
(`gpus_per_trial`, fractional: 0.25 packs four trials on one GPU) for its lifetime. A
trial is one call of the actor's generator method, a Ray streaming generator, so each
epoch reaches the driver when it is trained; the driver waits on every slot's stream at
once. The ledger, the log and the optimizer stay on the driver. Actors write checkpoints
to `Job.save_to`, a path on the driver: on several nodes it must lie on a file system that
every node mounts at the same path.

Faults: an actor that dies (killed, out of memory, its node gone) ends its trial as `lost`
and a fresh actor takes the slot; Ray's own restarts and retries are off, so the runner
alone decides whether to retry. A cancel sets a flag the generator checks between epochs
(the actor takes two calls at once for that); a forced cancel kills the actor.

`ray` is imported in this module only, and this module only for `--executor ray`.
"""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from suite.errors import SuiteError
from suite.executors._base import EpochDone, Event, Job, TrialEnded, ended_by, run_job
from suite.types import EpochResult, Task

__all__ = ["RayExecutor", "connect"]

# A local instance holds only epoch results (a few hundred bytes each) in its object store:
# keep it small, so it starts on a 2-core, 24 GB machine beside the training itself.
_OBJECT_STORE_BYTES = 128 * 1024**2


def _import_ray():
    try:
        import ray
    except ImportError:
        raise SuiteError("--executor ray needs Ray, an optional extra: "
                         "pip install 'hpo-suite[ray]'") from None
    return ray


def connect(address: str | None, *, workers: int, gpus_per_trial: float = 0.0):
    """Connect to the Ray cluster at `address`, or start a local instance (None); reuses
    a connection this process already has. Returns the `ray` module."""
    ray = _import_ray()
    if not ray.is_initialized():
        # Nodes of a cluster were started elsewhere: hand them the suite's settings
        # (SUITE_DATA_DIR, SUITE_CACHE_DIR) the driver runs with.
        env = {k: v for k, v in os.environ.items() if k.startswith("SUITE_")}
        # Ray's driver-side warnings (e.g. that token authentication is on) are library
        # chatter printed before the study folder exists: only its errors reach the terminal
        options: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.ERROR,
                                   "runtime_env": {"env_vars": env} if env else None}
        if address is None:
            options.update(address="local", num_cpus=max(workers, os.cpu_count() or 1),
                           include_dashboard=False, object_store_memory=_OBJECT_STORE_BYTES)
        else:
            options.update(address=address)
        try:
            ray.init(**options)
        except Exception as exc:  # Ray raises ConnectionError, RuntimeError, ValueError...
            where = f"the Ray cluster at {address}" if address else "a local Ray instance"
            raise SuiteError(f"cannot start or reach {where}: {_first_line(exc)}") from None
    if address is None and gpus_per_trial > 0 and not ray.cluster_resources().get("GPU"):
        # a local instance cannot grow: its trials would wait for a GPU forever
        raise SuiteError(f"--gpus-per-trial {gpus_per_trial:g}, but this machine's Ray "
                         "instance has no GPU; give --address of a cluster with GPUs")
    return ray


class _TrialActor:
    """One worker slot on the cluster (made a Ray actor by `RayExecutor`)."""

    def __init__(self, make_task: Callable[[], Task], device: str) -> None:
        self._task, self._device = make_task(), device
        self._cancelled: set[int] = set()

    def cancel(self, trial_id: int) -> None:
        self._cancelled.add(trial_id)

    def train(self, job: Job) -> Iterator[EpochResult]:
        for result in run_job(self._task, job, self._device):
            yield result
            if job.trial.trial_id in self._cancelled:
                return


@dataclass(eq=False)  # identity: a replaced slot is another slot
class _Slot:
    actor: Any
    job: Job | None = None
    stream: Any = None  # the trial's ObjectRefGenerator while it runs
    cancelled: bool = False  # its remaining epochs are dropped


class RayExecutor:
    """`workers` Ray actors, each training one trial at a time (see the module docstring).

    Args:
        make_task: builds the task inside each actor; must pickle (a registry lookup).
        workers: concurrent trials.
        address: a running cluster (`ray start --head` prints it), or None for a local
            Ray instance started here.
        gpus_per_trial: GPUs each actor holds; fractions share a GPU. 0 trains on CPU.
    """

    def __init__(self, make_task: Callable[[], Task], *, workers: int = 1,
                 address: str | None = None, gpus_per_trial: float = 0.0) -> None:
        self.workers = workers
        self._ray = connect(address, workers=workers, gpus_per_trial=gpus_per_trial)
        self._make_task = make_task
        self._device = "cuda" if gpus_per_trial > 0 else "cpu"
        # max_concurrency=2: `cancel` runs while `train` streams
        self._actor_class = self._ray.remote(
            num_cpus=1, num_gpus=gpus_per_trial, max_restarts=0, max_task_retries=0,
            max_concurrency=2)(_TrialActor)
        self._ended: deque[TrialEnded] = deque()  # ends of force-cancelled trials
        self._slots = [self._new_slot() for _ in range(workers)]
        self._turn = 0

    def _new_slot(self) -> _Slot:
        return _Slot(self._actor_class.remote(self._make_task, self._device))

    def free_slots(self) -> int:
        return sum(slot.job is None for slot in self._slots)

    def submit(self, job: Job) -> None:
        slot = next(slot for slot in self._slots if slot.job is None)
        slot.job, slot.cancelled = job, False
        slot.stream = slot.actor.train.remote(job)

    def next_event(self, timeout: float | None = None) -> Event | None:
        """The next epoch or end from any actor; None if `timeout` seconds pass first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._ended:
            busy = [slot for slot in self._slots if slot.stream is not None]
            if not busy:
                raise RuntimeError("next_event() with no job submitted")
            self._turn = (self._turn + 1) % len(busy)  # no slot waits behind a faster one
            busy = busy[self._turn:] + busy[:self._turn]
            streams = [slot.stream for slot in busy]
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready, _ = self._ray.wait(streams, num_returns=1, timeout=left)
            if not ready:
                return None
            if (event := self._advance(busy[streams.index(ready[0])])) is not None:
                return event
        return self._ended.popleft()

    def _advance(self, slot: _Slot) -> Event | None:
        """Read one item of a slot's stream: an epoch, the trial's end, or its worker's
        death; None for an epoch of a cancelled trial."""
        exceptions = self._ray.exceptions
        i, trial_id = self._slots.index(slot), slot.job.trial.trial_id
        try:
            result = self._ray.get(next(slot.stream))
        except StopIteration:
            return self._free(slot, TrialEnded(trial_id, i))
        except exceptions.RayActorError as exc:
            if getattr(exc, "actor_init_failed", False):  # e.g. the suite missing on a node
                raise SuiteError(f"a Ray worker could not start: {_last_line(exc)}") from None
            self._slots[i] = self._new_slot()
            return TrialEnded(trial_id, i, f"worker died ({_first_line(exc)})",
                              lost=not slot.cancelled)
        except exceptions.RayTaskError as exc:  # training raised: the trial failed
            cause = getattr(exc, "cause", None)  # the exception raised in the actor
            ended = (ended_by(trial_id, i, cause, text=str(exc)) if cause is not None
                     else TrialEnded(trial_id, i, _last_line(exc), traceback=str(exc)))
            return self._free(slot, ended)
        return None if slot.cancelled else EpochDone(trial_id, result, i)

    @staticmethod
    def _free(slot: _Slot, event: TrialEnded) -> TrialEnded:
        slot.job = slot.stream = None
        return event

    def cancel(self, trial_id: int, *, force: bool = False) -> None:
        for i, slot in enumerate(self._slots):
            if slot.job is None or slot.job.trial.trial_id != trial_id:
                continue
            if force:  # a hung epoch never reaches the flag check: kill the actor
                self._ray.kill(slot.actor, no_restart=True)
                self._slots[i] = self._new_slot()
                self._ended.append(TrialEnded(trial_id, i))
            elif not slot.cancelled:
                slot.cancelled = True
                slot.actor.cancel.remote(trial_id)

    def close(self) -> None:
        """Kill the actors. Ray itself stays up for the next run of this process (a local
        instance stops when the process exits)."""
        for slot in self._slots:
            self._ray.kill(slot.actor, no_restart=True)
        self._slots, self._ended = [], deque()


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def _last_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[-1] if lines else type(exc).__name__
