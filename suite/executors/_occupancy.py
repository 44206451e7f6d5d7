"""Device occupancy: workers packed on one device share the charge for the time they
shared it, so the charges on a device add up to the time it was in use.

Each worker process reports the moments its timed epochs start and end (`Busy`, wall
clock `time.monotonic`, which is one system-wide clock for every process on the
machine). The driver keeps each device's busy intervals and charges an epoch that ran
over [s, e] its device-seconds times its *share*: the mean over [s, e] of 1/n(t), where
n(t) counts the workers of that device busy at t, itself included. One worker alone is
charged exactly what it measured (share 1.0); two fully overlapping epochs are charged
half each; and summed over a device the charges equal the length of the union of its
busy intervals. A fused array is one worker: its members already split the epoch.

A worker's start notice can reach the driver a moment after another worker's end notice
that it overlaps (two processes, two pipes read in turn); the overlap of that moment is
then charged in full to the first worker. The error is bounded by the pipes' latency per
epoch.
`SUITE_TRACE_DIR` makes every worker also write its phases (start-up, jobs, epochs) as
JSON lines there, for `benchmarks/gpu_busy.py`.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from suite import timing
from suite.executors._base import EpochDone

__all__ = ["Busy", "Occupancy", "WorkerReporter", "device_key", "TRACE_ENV"]

TRACE_ENV = "SUITE_TRACE_DIR"
_KEEP_SECONDS = 60.0  # closed intervals kept behind the oldest open one (late notices)


@dataclass(frozen=True)
class Busy:
    """A worker's timed epoch started at `start` (`end` None) or ran over [start, end]."""

    worker: int
    start: float
    end: float | None = None


def device_key(device: str) -> str:
    """One name per physical device: `cuda` is `cuda:0`."""
    return "cuda:0" if device == "cuda" else device


class Occupancy:
    """Busy intervals per device, and each finished epoch's share of its device."""

    def __init__(self, devices: dict[int, str]) -> None:
        self._device = {w: device_key(d) for w, d in devices.items()}  # worker → device
        self._open: dict[int, float] = {}  # worker → start of its running epoch
        self._closed: list[tuple[int, float, float]] = []  # (worker, start, end)
        self._share: dict[int, float] = {}  # worker → share of its last finished epoch

    def note(self, busy: Busy) -> None:
        if busy.end is None:
            self._open[busy.worker] = busy.start
            self._share.pop(busy.worker, None)
            return
        self._open.pop(busy.worker, None)
        self._share[busy.worker] = self._compute_share(busy.worker, busy.start, busy.end)
        self._closed.append((busy.worker, busy.start, busy.end))
        self._prune()

    def charge(self, event: EpochDone) -> EpochDone:
        """The event with its device-seconds scaled by its worker's last share."""
        share = self._share.get(event.worker, 1.0)
        if share == 1.0:
            return event
        result = replace(event.result, device_seconds=event.result.device_seconds * share)
        return replace(event, result=result)

    def forget(self, worker: int) -> None:
        """A worker went idle or died: any epoch it had open never finished."""
        self._open.pop(worker, None)
        self._share.pop(worker, None)

    def _compute_share(self, worker: int, start: float, end: float) -> float:
        device = self._device[worker]
        others = [(s, e) for w, s, e in self._closed if w != worker and self._device[w] == device
                  and s < end and e > start]
        others += [(s, end) for w, s in self._open.items()
                   if w != worker and self._device[w] == device and s < end]
        if not others or end <= start:
            return 1.0  # alone on the device: exactly what it measured
        cuts = sorted({start, end, *(max(start, min(end, t)) for iv in others for t in iv)})
        weighted = 0.0
        for a, b in zip(cuts, cuts[1:], strict=False):
            n = 1 + sum(s <= a and e >= b for s, e in others)
            weighted += (b - a) / n
        return weighted / (end - start)

    def _prune(self) -> None:
        horizon = min(self._open.values(), default=time.monotonic()) - _KEEP_SECONDS
        self._closed = [iv for iv in self._closed if iv[2] >= horizon]


class WorkerReporter:
    """In a worker process: sends `Busy` notices around timed epochs, and with
    `SUITE_TRACE_DIR` set writes the worker's phases there."""

    def __init__(self, worker: int, device: str, send: Callable[[Busy], None]) -> None:
        self.worker, self.device, self.send = worker, device, send
        self._start: float | None = None
        self._job = time.monotonic()
        self.last_end: float | None = None
        trace = os.environ.get(TRACE_ENV)
        self._trace = None
        if trace:
            Path(trace).mkdir(parents=True, exist_ok=True)
            self._trace = open(Path(trace) / f"worker-{worker}-{os.getpid()}.jsonl", "a")  # noqa: SIM115
        timing.observe_epochs(self._on_epoch)

    def _on_epoch(self, what: str) -> None:
        now = time.monotonic()
        if what == "start":
            self._start = now
            self.send(Busy(self.worker, now))
        elif self._start is not None:
            self.send(Busy(self.worker, self._start, now))
            self.write("epoch", self._start, now)
            self._start, self.last_end = None, now

    @contextlib.contextmanager
    def span(self, phase: str, **fields) -> Iterator[None]:
        start = time.monotonic()
        try:
            yield
        finally:
            self.write(phase, start, time.monotonic(), **fields)

    def job_started(self) -> None:
        self._job = time.monotonic()

    def job_ended(self, **fields) -> None:
        self.write("job", self._job, time.monotonic(), **fields)

    def handoff(self) -> None:
        """A task handed its epoch's results over: from the end of the timed epoch to
        here it wrote checkpoints (and evaluated nothing: evaluation is timed)."""
        if self.last_end is not None:
            self.write("handoff", self.last_end, time.monotonic())
            self.last_end = None

    def write(self, phase: str, start: float, end: float, **fields) -> None:
        if self._trace is not None:
            row = {"worker": self.worker, "device": device_key(self.device), "phase": phase,
                   "start": start, "end": end, **fields}
            self._trace.write(json.dumps(row) + "\n")
            self._trace.flush()
