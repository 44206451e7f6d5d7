"""The executors that train for real, built the same way wherever trials are trained."""

from __future__ import annotations

import functools
from collections.abc import Sequence

from suite.executors._inprocess import InProcessExecutor
from suite.executors._local import LocalExecutor
from suite.registry import get_task
from suite.types import Task


def training_executor(kind: str, task: Task, *, scale: str, workers: int,
                      devices: Sequence[str]) -> InProcessExecutor | LocalExecutor:
    """`inprocess` trains `task` in this process; `local` spawns workers that each build
    their own instance of the same registered task and scale."""
    if kind == "inprocess":
        return InProcessExecutor(task, workers=workers, device=devices[0])
    factory = functools.partial(get_task, task.info.name, scale=scale)
    return LocalExecutor(factory, workers=workers, devices=devices)
