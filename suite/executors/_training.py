"""The executors that train for real, built the same way wherever trials are trained."""

from __future__ import annotations

import functools
from collections.abc import Sequence

from suite.errors import SuiteError
from suite.executors._fusing import FusingExecutor
from suite.executors._inprocess import InProcessExecutor
from suite.executors._local import LocalExecutor
from suite.plan import FUSE_MODES, check_fuse_max
from suite.registry import load_task
from suite.types import Task


def training_executor(kind: str, task: Task, *, ref: str, scale: str | None, workers: int,
                      devices: Sequence[str], address: str | None = None,
                      gpus_per_trial: float = 0.0, fuse: str = "off", fuse_max: int = 8,
                      share_devices: bool = True):
    """`inprocess` trains `task` in this process; `local` spawns workers and `ray` starts
    Ray actors that each build their own instance from the task's reference `ref` (a name
    or `module:Object`, `suite.registry`) and `scale` (None: the task's default), so a task
    defined anywhere importable trains there as it does here.
    `address` and `gpus_per_trial` are Ray's: the cluster (None: a local instance) and
    each trial's share of a GPU. With `fuse="auto"` the local workers train queued
    same-shape trials as fused arrays of up to `fuse_max` members. `share_devices=False`:
    local workers packed on one device report what each measured, not their share."""
    check_fuse(kind, task, fuse, fuse_max)
    if kind == "inprocess":
        return InProcessExecutor(task, workers=workers, device=devices[0])
    factory = functools.partial(load_task, ref, scale=scale)
    if kind == "ray":
        from suite.executors._ray import RayExecutor  # Ray is optional: only when chosen

        return RayExecutor(factory, workers=workers, address=address,
                           gpus_per_trial=gpus_per_trial)
    if fuse == "auto":
        return FusingExecutor(factory, workers=workers, devices=devices, fuse_max=fuse_max,
                              fuse_key=task.fuse_key, share_devices=share_devices)
    return LocalExecutor(factory, workers=workers, devices=devices,
                         share_devices=share_devices)


def check_fuse(kind: str | None, task: Task | None, fuse: str, fuse_max: int) -> None:
    """Refuse, in one line, a fuse setting this executor or task cannot honour."""
    if fuse not in FUSE_MODES:
        raise SuiteError(f"unknown --fuse {fuse!r}; choose auto or off")
    check_fuse_max(fuse_max)
    if fuse == "off":
        return
    if kind not in (None, "local"):
        raise SuiteError(f"--fuse auto needs the local executor (subprocess workers), not "
                         f"{kind}" + (" (a replay)" if kind == "simulated" else ""))
    if task is not None and not task.capabilities.fused:
        raise SuiteError(f"task {task.info.name} cannot train fused arrays; use --fuse off")
