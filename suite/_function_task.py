"""A Task from a plain training function, for users who will not write a class.

Two forms of function, the two that Optuna, Ray Tune and Made With ML users already
write; each trains one configuration and reports once per epoch:

    def train(config, epochs, seed, device):      # a generator: yield once per epoch
        for epoch in range(epochs):
            ...
            yield {"val_loss": loss}                # a dict of metrics, or the objective

    def train_loop(config):                          # a loop that calls report_epoch
        for epoch in range(config["num_epochs"]):
            ...
            suite.report_epoch(val_loss=loss)

The function takes the configuration (a dict) first, then whichever of `epochs`, `seed`
and `device` it names. The adapter stops it once `epochs` epochs are reported (so it may
loop for longer), times each epoch (from asking for it to its report), seeds Python's,
NumPy's and torch's global generators with the trial's seed, and turns each report into
an `EpochResult`. A function that reports through `report_epoch` runs in a thread of its
own, paused between epochs.

Checkpoints, as Ray Tune's function API has them: a task made with `checkpoints=True`
hands the suite its state with every epoch (`report_epoch(val_loss=..., checkpoint=state)`
or, from a generator, `yield suite.EpochReport({"val_loss": ...}, checkpoint=state)`); the
suite saves it as plain data (torch's weights-only format: dicts, lists, numbers, strings,
tensors) and, when the trial resumes (a promotion, a retry, a resumed study), hands it
back through `suite.get_checkpoint()` (None when training starts afresh). The function
continues from the epoch its state holds. Without `checkpoints`, promotions retrain.
"""

from __future__ import annotations

import copy
import inspect
import queue
import random
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from numbers import Real
from pathlib import Path
from typing import Any

from ConfigSpace import ConfigurationSpace

from suite.config import validate_config
from suite.errors import CheckpointError, SuiteError, TaskContractError
from suite.space import Space, search_space
from suite.types import Capabilities, EpochResult, Fidelity, Metric, Task, TaskInfo

__all__ = ["EpochReport", "FunctionTask", "get_checkpoint", "report_epoch",
           "task_from_function"]


def task_from_function(fn: Callable[..., Any], space: Space, *, name: str,
                       metric: str = "val_loss", minimize: bool = True,
                       fidelity: Fidelity | int = 27,
                       default: Mapping[str, Any] | None = None,
                       epochs_key: str | None = None, description: str = "",
                       checkpoints: bool = False) -> FunctionTask:
    """A Task that trains by calling `fn` (see the module docstring for its two forms).

    Args:
        fn: the training function: a generator yielding once per epoch, or a function
            calling `suite.report_epoch` once per epoch.
        space: a ConfigurationSpace, or a dict of ranges (`suite.search_space`).
        name: the task's name in run metadata and reports.
        metric: the objective, a key of what `fn` reports (a bare number reported is it).
        minimize: the objective's direction.
        fidelity: a `Fidelity`, or the maximum epochs n (then `Fidelity(1, n, 3)`).
        default: the baseline configuration (default: the space's defaults).
        epochs_key: also put the epoch target into the configuration `fn` gets under this
            key (a Made With ML style `config["num_epochs"]`).
        description: one line for `suite tasks`.
        checkpoints: `fn` hands its state with every epoch and continues from
            `suite.get_checkpoint()` (see the module docstring): promotions resume.

    Returns:
        A `suite.Task`; bind it to a module-level name and name it `package.module:name`
        on the command line, so that every worker can import it.
    """
    if not callable(fn):
        raise SuiteError(f"task_from_function needs a function, got {type(fn).__name__}")
    if isinstance(fidelity, int) and not isinstance(fidelity, bool):
        fidelity = Fidelity(1, fidelity, 3)
    if not isinstance(fidelity, Fidelity):
        raise SuiteError(f"fidelity is a suite.Fidelity or the maximum epochs, got {fidelity!r}")
    info = TaskInfo(name=name, description=description or f"{_qualname(fn)} (a function)",
                    metric=Metric(metric, minimize=minimize), fidelity=fidelity)
    return FunctionTask(fn, search_space(space), info, default=default,
                        epochs_key=epochs_key, checkpoints=checkpoints)


@dataclass(frozen=True)
class EpochReport:
    """What a generator training function yields for an epoch when it checkpoints: its
    metrics (a dict, or the objective alone) and its state, kept apart."""

    metrics: Mapping[str, float] | float
    checkpoint: Any = None


class FunctionTask(Task):
    """The Task `task_from_function` builds (capability `checkpoints` if asked for)."""

    def __init__(self, fn: Callable[..., Any], space: ConfigurationSpace, info: TaskInfo, *,
                 default: Mapping[str, Any] | None = None,
                 epochs_key: str | None = None, checkpoints: bool = False) -> None:
        self.fn, self.info, self._space, self.epochs_key = fn, info, space, epochs_key
        self.capabilities = Capabilities(checkpoints=bool(checkpoints))
        self._default = validate_config(space, default or {})
        self._generator = inspect.isgeneratorfunction(fn)  # partials and methods too
        self._options = _named_options(fn)

    def config_space(self, seed: int | None = None) -> ConfigurationSpace:
        space = copy.deepcopy(self._space)
        space.seed(seed)
        return space

    def default_config(self) -> dict[str, Any]:
        return dict(self._default)

    def train(self, config: Mapping[str, Any], *, epochs: int, seed: int,
              resume_from: Path | None = None, save_to: Path | None = None,
              device: str = "auto") -> Iterator[EpochResult]:
        cfg = validate_config(self._space, config)
        max_epochs = self.info.fidelity.max_epochs
        if not 1 <= epochs <= max_epochs:
            raise SuiteError(f"epochs={epochs} is outside 1..{max_epochs}")
        keeps = self.capabilities.checkpoints
        if resume_from is not None and not keeps:
            raise SuiteError(f"task {self.info.name} keeps no checkpoints to resume from")
        done, state = _load_state(resume_from) if resume_from is not None else (0, None)
        _seed_everything(seed)
        if self.epochs_key is not None:
            cfg[self.epochs_key] = epochs
        offered = {"epochs": epochs, "seed": seed, "device": _device(device)}
        kwargs = {k: v for k, v in offered.items() if self._options is None or k in self._options}
        stream = (self.fn(cfg, **kwargs) if self._generator
                  else _threaded(self.fn, cfg, kwargs, state))
        try:
            for epoch in range(done + 1, epochs + 1):
                start = time.perf_counter()
                _local.checkpoint = state  # a generator runs in whichever thread asks
                try:
                    reported = next(stream)
                except StopIteration:
                    return  # stopped short of the target: the runner says so
                seconds = time.perf_counter() - start
                metrics, handed = ((reported.metrics, reported.checkpoint)
                                   if isinstance(reported, EpochReport) else (reported, None))
                yield EpochResult(epoch, self._metrics(metrics, epoch), seconds,
                                  self._save(handed, epoch, save_to))
        finally:
            stream.close()

    def _save(self, state: Any, epoch: int, save_to: Path | None) -> Path | None:
        """The epoch's state saved to `save_to`, where the task keeps checkpoints."""
        task = self.info.name
        if not self.capabilities.checkpoints:
            if state is not None:
                raise TaskContractError(f"task {task}'s epoch {epoch} hands a checkpoint, but "
                                        "the task was made without checkpoints=True")
            return None
        if save_to is None:  # `suite train` without --save
            return None
        if state is None:
            raise TaskContractError(
                f"task {task} keeps checkpoints but its epoch {epoch} handed none: "
                "report_epoch(..., checkpoint=state) or yield "
                "suite.EpochReport(metrics, checkpoint=state)")
        try:
            _save_state(Path(save_to), epoch, state)
        except Exception as exc:  # its type only: never a user's values
            raise TaskContractError(
                f"task {task}'s epoch {epoch} checkpoint (a {type(state).__name__}) cannot be "
                f"saved as plain data ({type(exc).__name__}): hand dicts, lists, numbers, "
                "strings and tensors") from None
        return Path(save_to)

    def _metrics(self, reported: Any, epoch: int) -> dict[str, float]:
        name, task = self.info.metric.name, self.info.name
        if isinstance(reported, Real) and not isinstance(reported, bool):
            return {name: float(reported)}
        if not isinstance(reported, Mapping):
            raise TaskContractError(f"task {task}'s epoch {epoch} reported a "
                                    f"{type(reported).__name__}; report a dict of metrics "
                                    f"or the number {name}")
        metrics = {}
        for key, value in reported.items():
            try:
                metrics[str(key)] = float(value)
            except (TypeError, ValueError):  # its type only: a value can be huge
                raise TaskContractError(f"task {task}'s epoch {epoch} reported {key} as a "
                                        f"{type(value).__name__}, not a number") from None
        if name not in metrics:
            raise TaskContractError(f"task {task}'s epoch {epoch} reported "
                                    f"{', '.join(metrics) or 'nothing'}, not its objective "
                                    f"{name!r}")
        return metrics


# report_epoch: the training function's thread finds its channel here.
_local = threading.local()


class _Stop(BaseException):
    """Raised inside a training function at `report_epoch` once no more epochs are wanted:
    a BaseException, so that the function's own `except Exception` does not catch it."""


class _Channel:
    def __init__(self) -> None:
        self.results: queue.Queue = queue.Queue()
        self.wanted = threading.Semaphore(0)
        self.stop = False


def report_epoch(metrics: Mapping[str, float] | float | None = None, /, *,
                 checkpoint: Any = None, **more: float) -> None:
    """Report one trained epoch from a training function run by `task_from_function`
    (`report_epoch({"val_loss": 0.3})`, `report_epoch(val_loss=0.3)` or the objective
    alone, `report_epoch(0.3)`), with the state to resume from as `checkpoint` in a task
    made with `checkpoints=True`; returns when the next epoch is wanted."""
    channel: _Channel | None = getattr(_local, "channel", None)
    if channel is None:
        raise SuiteError("report_epoch() is for a training function run by a task from "
                         "suite.task_from_function")
    if metrics is None or more:
        metrics = {**(dict(metrics) if isinstance(metrics, Mapping) else {}), **more}
    channel.results.put(("epoch", EpochReport(metrics, checkpoint)))
    channel.wanted.acquire()
    if channel.stop:
        raise _Stop


def get_checkpoint() -> Any:
    """In a training function of a task made with `checkpoints=True`: the state it handed
    with the epoch this trial resumes from, or None when it trains from the first epoch."""
    return getattr(_local, "checkpoint", None)


def _threaded(fn: Callable[..., Any], config: dict[str, Any],
              kwargs: dict[str, Any], state: Any = None) -> Iterator[Any]:
    """What `fn` reports through `report_epoch`, one epoch per `next`: `fn` runs in its
    own thread, waiting in `report_epoch` until the next epoch is asked for."""
    channel = _Channel()

    def run() -> None:
        _local.channel, _local.checkpoint = channel, state
        try:
            fn(config, **kwargs)
            channel.results.put(("done", None))
        except _Stop:
            channel.results.put(("done", None))
        except BaseException as exc:  # handed to the consumer, which raises it
            channel.results.put(("error", exc))

    thread = threading.Thread(target=run, name=f"suite-train-{_qualname(fn)}", daemon=True)
    thread.start()
    try:
        while True:
            kind, value = channel.results.get()
            if kind == "done":
                return
            if kind == "error":
                raise value
            yield value
            channel.wanted.release()
    finally:
        if thread.is_alive():  # closed early: stop the function at its next report
            channel.stop = True
            channel.wanted.release()
            thread.join(timeout=60)


def _named_options(fn: Callable[..., Any]) -> set[str] | None:
    """The options (`epochs`, `seed`, `device`) `fn` names; None if it takes `**kwargs`."""
    try:
        parameters = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return set()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return None
    return {p.name for p in parameters}


def _save_state(path: Path, epoch: int, state: Any) -> None:
    """`state` in torch's format, read back weights-only (plain data and tensors)."""
    import torch  # the suite's own dependency; loaded by the task's module already

    torch.save({"epoch": epoch, "state": state}, path)


def _load_state(path: Path) -> tuple[int, Any]:
    import torch

    try:
        saved = torch.load(path, weights_only=True)
        return int(saved["epoch"]), saved["state"]
    except Exception as exc:
        raise CheckpointError(f"cannot resume from {path}: not a function task's "
                              f"checkpoint ({type(exc).__name__})") from None


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    try:
        import numpy as np

        np.random.seed(seed % 2**32)
    except ImportError:
        pass
    torch = sys.modules.get("torch")  # seeded if the function's module imported it
    if torch is not None:
        torch.manual_seed(seed)


def _device(device: str) -> str:
    """`auto` as a torch device string: `cuda` where torch sees a GPU, else `cpu`."""
    if device != "auto":
        return device
    torch = sys.modules.get("torch")
    return "cuda" if torch is not None and torch.cuda.is_available() else "cpu"


def _qualname(fn: Callable[..., Any]) -> str:
    return getattr(fn, "__qualname__", type(fn).__name__)

