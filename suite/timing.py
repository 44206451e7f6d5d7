"""Epoch observers: who wants to know, in this process, when a device-timed epoch runs.

Tasks time each epoch's device work (`tasks.training.EpochTimer`); a worker process of
the local executor subscribes here to learn the exact moments its device was busy, for
the per-device occupancy accounting (`suite.executors._occupancy`). Torch-free, so the
toy task can report its paced epochs the same way.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["observe_epochs", "epoch_started", "epoch_ended"]

_observers: list[Callable[[str], None]] = []


def observe_epochs(callback: Callable[[str], None] | None) -> None:
    """Call `callback("start")` / `callback("end")` around every timed epoch in this
    process (None: stop observing)."""
    _observers.clear()
    if callback is not None:
        _observers.append(callback)


def epoch_started() -> None:
    for callback in _observers:
        callback("start")


def epoch_ended() -> None:
    for callback in _observers:
        callback("end")
