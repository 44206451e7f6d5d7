"""Frozen value types shared by tasks, optimizers, the runner and reports."""

from __future__ import annotations

import abc
import functools
import math
from collections.abc import Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar

from ConfigSpace import ConfigurationSpace

from suite.config import validate_config
from suite.space import search_space


@dataclass(frozen=True)
class Fidelity:
    """Epochs as the fidelity: trials train between `min_epochs` and `max_epochs`.

    `eta` is the reduction factor used by successive-halving optimizers.
    """

    min_epochs: int = 1
    max_epochs: int = 27
    eta: int = 3

    def __post_init__(self) -> None:
        if not 1 <= self.min_epochs <= self.max_epochs:
            raise ValueError(f"need 1 <= min_epochs <= max_epochs, got {self}")
        if self.eta < 2:
            raise ValueError(f"eta must be >= 2, got {self.eta}")


@dataclass(frozen=True)
class Metric:
    """The objective a task reports: its name in `EpochResult.metrics` and its direction."""

    name: str = "val_loss"
    minimize: bool = True

    def loss(self, value: float) -> float:
        """The value oriented so that lower is better, as optimizers see it."""
        return value if self.minimize else -value


@dataclass(frozen=True)
class EpochResult:
    """What a task reports after each newly trained epoch.

    Attributes:
        epoch: 1-based epoch index counted from the start of training (not of this call).
        metrics: the task's validation metrics, including the objective `Metric.name`;
            when `train` was asked for them (`test=True`, capability `test_epochs`), also
            the task's test metrics, each named `test_...`.
        device_seconds: wall time the device spent on this epoch (training and validation).
        checkpoint: where the state after this epoch was saved, if `save_to` was given.
    """

    epoch: int
    metrics: Mapping[str, float]
    device_seconds: float
    checkpoint: Path | None = None

    def value(self, metric: Metric) -> float:
        return float(self.metrics[metric.name])

    @property
    def is_finite(self) -> bool:
        return all(math.isfinite(v) for v in self.metrics.values())


@dataclass(frozen=True)
class Member:
    """One configuration of a fused training array (`train_fused`), with the arguments
    `Task.train` would take for it alone."""

    config: dict[str, Any]
    epochs: int
    seed: int
    resume_from: Path | None = None
    save_to: Path | None = None


@dataclass(frozen=True)
class TaskInfo:
    """A task's static description: its name, objective and fidelity.

    Attributes:
        name: short identifier, used in run metadata and reports.
        description: one line for `suite tasks`.
        metric: the objective (its key in `EpochResult.metrics`) and its direction.
        fidelity: the epochs a trial may train, and successive halving's `eta`.
        extra_metrics: other metrics `train` reports (for listings only).
        revision: what training means, from 1: raise it when the same configuration,
            seed and epochs train differently (another epoch, another model); a table or
            a run recorded under another revision is refused, never mixed in.
    """

    name: str
    description: str = ""
    metric: Metric = Metric()
    fidelity: Fidelity = Fidelity()
    extra_metrics: tuple[str, ...] = field(default=())
    revision: int = 1


@dataclass(frozen=True)
class Capabilities:
    """What a task offers beyond `Task.train`: each declared by the task and checked once
    when it is loaded (`suite.load_task`), so that no code path probes for methods.

    Attributes:
        checkpoints: `train` saves its complete state to `save_to` after every epoch
            (and says so in `EpochResult.checkpoint`) and continues exactly from
            `resume_from`. Without it a promotion retrains from scratch and is charged
            every epoch it trains (the `retrain` promotion policy), and a trial whose
            worker died retrains from scratch, its epochs already logged not logged again.
        fused: `fuse_key` and `train_fused` train same-shape configurations as one array
            (`--fuse auto`).
        table: `table_grid` gives the grid `suite tabulate` records.
        test: `evaluate` gives held-out test metrics of a checkpoint (needs checkpoints).
        timer: `train` reports when its device is busy through `suite.timing`
            (`epoch_started`/`epoch_ended`), so that workers packed on one device are
            charged their share of it. Without it the suite times each epoch itself, from
            one result to the next.
        test_epochs: `train` (and `train_fused`, with `fused`) take a keyword `test`; with
            `test=True` every epoch's metrics also hold the task's test metrics of the
            model after that epoch (each named `test_...`, the values `evaluate` gives for
            that epoch's checkpoint). `suite tabulate` asks for them; studies never do, so
            an optimizer never sees them. Asking must not change the training (same random
            streams, same validation metrics) nor the epoch's `device_seconds` (the test
            evaluation runs outside it). Without it the suite never passes `test`, and the
            tables recorded for the task have no test columns.
    """

    checkpoints: bool = False
    fused: bool = False
    table: bool = False
    test: bool = False
    timer: bool = False
    test_epochs: bool = False


# The method each optional capability needs, overridden from `Task`.
CAPABILITY_METHODS: dict[str, tuple[str, ...]] = {
    "fused": ("fuse_key", "train_fused"), "table": ("table_grid",), "test": ("evaluate",)}


class Task(abc.ABC):
    """A training job the suite can tune. Knows nothing of optimizers or budgets.

    Required: `info` (a `TaskInfo`: name, metric and its direction, fidelity),
    `config_space` and `train`; `default_config` defaults to the space's defaults.
    Optional, each declared in `capabilities` (see `Capabilities`): checkpoints, fused
    arrays (`fuse_key`, `train_fused`), a table grid (`table_grid`), a test evaluation
    (`evaluate`) and a timer. A task is named on the command line as `NAME` (a built-in
    or an entry point of the `suite.tasks` group) or `package.module:Object`; every
    worker builds its own instance from that reference. See docs/tasks.md.
    """

    info: ClassVar[TaskInfo]
    capabilities: ClassVar[Capabilities] = Capabilities()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """A subclass's `config_space` may return a dict of ranges (`suite.space`): every
        caller gets the ConfigurationSpace it describes, seeded as asked."""
        super().__init_subclass__(**kwargs)
        method = cls.__dict__.get("config_space")
        if method is None or getattr(method, "_any_space", False):
            return

        @functools.wraps(method)
        def config_space(self, *args: Any, **kw: Any) -> ConfigurationSpace:
            space = method(self, *args, **kw)
            if isinstance(space, ConfigurationSpace):
                return space
            seed = kw.get("seed", args[0] if args else None)
            return search_space(space, seed)

        config_space._any_space = True
        cls.config_space = config_space

    @abc.abstractmethod
    def config_space(self, seed: int | None = None) -> ConfigurationSpace:
        """The search space, seeded for sampling: a ConfigurationSpace or a dict of ranges
        (`suite.search_space`: `{"lr": (1e-4, 1e-1, "log"), "layers": [1, 2, 3]}`)."""

    def default_config(self) -> dict[str, Any]:
        """The baseline configuration every comparison should include (by default the
        space's own defaults)."""
        return validate_config(self.config_space(), {})

    @abc.abstractmethod
    def train(
        self,
        config: Mapping[str, Any],
        *,
        epochs: int,
        seed: int,
        resume_from: Path | None = None,
        save_to: Path | None = None,
        device: str = "auto",
    ) -> Iterator[EpochResult]:
        """Train up to `epochs` (absolute), yielding one result per newly trained epoch.

        A task that declares `Capabilities(test_epochs=True)` also takes `test: bool =
        False` (see `Capabilities`); the suite passes it to no other task.

        Args:
            config: the configuration (active hyperparameters only, plain Python values).
            epochs: the absolute epoch target (`info.fidelity.min_epochs..max_epochs`).
            seed: the training seed; the same seed and configuration train the same model.
            resume_from: a checkpoint to continue from (only with `checkpoints`).
            save_to: where to save the state after each epoch (only with `checkpoints`;
                a task without checkpoints ignores it).
            device: `auto`, `cpu`, `cuda` or `cuda:N`.
        """

    def fuse_key(self, config: Mapping[str, Any]) -> Hashable | None:
        """Capability `fused`: configurations with equal keys (not None) can train as one
        array."""
        raise NotImplementedError

    def train_fused(self, members: Sequence[Member], *, device: str = "auto"):
        """Capability `fused`: train `members` as one array; an iterator of steps, each a
        list of `(member index, EpochResult)`, with `drop(index)` to let a member go.
        With `test_epochs` it also takes `test: bool = False`, as `train` does."""
        raise NotImplementedError

    def table_grid(self) -> tuple[ConfigurationSpace, dict[str, Any]]:
        """Capability `table`: the grid a table records, and the values it fixes."""
        raise NotImplementedError

    def evaluate(self, checkpoint: Path, *, device: str = "auto") -> dict[str, float]:
        """Capability `test`: held-out test metrics of the model saved in `checkpoint`."""
        raise NotImplementedError


class Status(StrEnum):
    """How a trial ended: `ok` (reached its target), `failed` (error, NaN or inf), `cut`
    (stopped by the end of the budget; never told to the optimizer as complete),
    `crashed` (its worker died twice: once, and again on the retry) or `timeout` (an
    attempt ran past the trial timeout). Optimizers are told every status but `ok` and
    `cut` as `FAILED`; the log keeps the precise one. `running` is the log's only: an
    epoch row of a trial that trains on (never told)."""

    OK = "ok"
    FAILED = "failed"
    CUT = "cut"
    CRASHED = "crashed"
    TIMEOUT = "timeout"
    RUNNING = "running"


@dataclass(frozen=True)
class Trial:
    """One unit of work an optimizer asks for.

    Attributes:
        trial_id: unique within a run, assigned by the optimizer in ask order (0, 1, ...).
        config: hyperparameter values (plain Python, only active hyperparameters).
        epochs: absolute epoch target.
        config_id: the same for every trial of one configuration (promotions share it).
        resume_from: for a promotion, the `trial_id` whose checkpoint this trial continues.
    """

    trial_id: int
    config: Mapping[str, Any]
    epochs: int
    config_id: int
    resume_from: int | None = None


@dataclass(frozen=True)
class TrialResult:
    """What the runner tells the optimizer when a trial ends.

    Attributes:
        trial: the trial as asked.
        status: OK or FAILED (CUT trials are logged, never told).
        loss: the objective at the last trained epoch, oriented so lower is better
            (`Metric.loss`); `math.inf` for a failed trial.
        epochs: absolute epochs the trial reached.
    """

    trial: Trial
    status: Status
    loss: float
    epochs: int
