"""Frozen value types shared by tasks, optimizers, the runner and reports."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from ConfigSpace import ConfigurationSpace


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
        metrics: the task's validation metrics, including the objective `Metric.name`.
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
    """A task's static description, for listings and run metadata."""

    name: str
    description: str
    metric: Metric
    fidelity: Fidelity
    extra_metrics: tuple[str, ...] = field(default=())


@runtime_checkable
class Task(Protocol):
    """A training job the suite can tune. Knows nothing of optimizers or budgets."""

    info: TaskInfo

    def config_space(self, seed: int | None = None) -> ConfigurationSpace:
        """The search space (ConfigSpace), seeded for sampling."""
        ...

    def default_config(self) -> dict[str, Any]:
        """The baseline configuration every comparison should include."""
        ...

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
        """Train up to `epochs` (absolute), yielding one result per newly trained epoch."""
        ...

    def evaluate(self, checkpoint: Path, *, device: str = "auto") -> dict[str, float]:
        """Held-out test metrics of the model saved in `checkpoint`."""
        ...


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
