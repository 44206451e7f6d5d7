"""The executors that train for real, built the same way wherever trials are trained."""

from __future__ import annotations

import functools
from collections.abc import Sequence

from suite.executors._inprocess import InProcessExecutor
from suite.executors._local import LocalExecutor
from suite.registry import get_task
from suite.types import Task


def training_executor(kind: str, task: Task, *, scale: str, workers: int,
                      devices: Sequence[str], address: str | None = None,
                      gpus_per_trial: float = 0.0):
    """`inprocess` trains `task` in this process; `local` spawns workers and `ray` starts
    Ray actors that each build their own instance of the same registered task and scale.
    `address` and `gpus_per_trial` are Ray's: the cluster (None: a local instance) and
    each trial's share of a GPU."""
    if kind == "inprocess":
        return InProcessExecutor(task, workers=workers, device=devices[0])
    factory = functools.partial(get_task, task.info.name, scale=scale)
    if kind == "ray":
        from suite.executors._ray import RayExecutor  # Ray is optional: only when chosen

        return RayExecutor(factory, workers=workers, address=address,
                           gpus_per_trial=gpus_per_trial)
    return LocalExecutor(factory, workers=workers, devices=devices)
