"""A torch-free toy task: analytic learning curves for optimizer and runner tests.

The space mixes a log-scale float, an integer, a categorical with a conditional child,
and an ordinal, like the real tasks. Curves are `floor(config) + gap(config) / epoch**rate`
where a large learning rate converges fast to a worse floor, so curves cross between low
and high fidelities (what makes multi-fidelity optimization non-trivial). Observation noise
shrinks as 1/sqrt(epoch) and is a pure function of (seed, configuration, epoch), so
resuming from a checkpoint is exact. Each epoch "costs" a configuration-dependent number
of device-seconds without sleeping.
"""

from __future__ import annotations

import json
import math
import os
import signal
import time
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from ConfigSpace import (
    Categorical,
    ConfigurationSpace,
    EqualsCondition,
    Float,
    Integer,
    OrdinalHyperparameter,
)

from suite import timing
from suite.config import validate_config
from suite.errors import CheckpointError, SuiteError
from suite.types import Capabilities, EpochResult, Fidelity, Metric, Task, TaskInfo

__all__ = ["ToyTask", "Fault", "FAULTS", "SimulatedOutOfMemoryError", "At", "Pace", "Die",
           "Faults", "ScriptedOptimizer", "toy_table", "Killed", "kill_after"]

# A fault hook: given (config, epoch) return None or one of FAULTS ("oom" raises what torch
# raises when CUDA runs out of memory; "truncate" cuts the checkpoint just saved). It runs in
# the process that trains, so it can also sleep or kill that process (`Pace`, `Die`).
Fault = Callable[[Mapping[str, Any], int], str | None]
FAULTS = ("nan", "inf", "raise", "oom", "truncate")


class SimulatedOutOfMemoryError(RuntimeError):
    """Stands in for torch.cuda.OutOfMemoryError (a RuntimeError) without torch or a GPU."""


def _matches(config: Mapping[str, Any], match: tuple[tuple[str, Any], ...]) -> bool:
    return all(config.get(k) == v for k, v in match)


@dataclass(frozen=True)
class At:
    """A fault hook returning `fault` (one of FAULTS) at `epoch` of matching
    configurations; unlike a lambda it pickles into worker processes."""

    epoch: int
    fault: str
    match: tuple[tuple[str, Any], ...] = ()

    def __call__(self, config: Mapping[str, Any], epoch: int) -> str | None:
        return self.fault if epoch == self.epoch and _matches(config, self.match) else None


@dataclass(frozen=True)
class Faults:
    """Several fault hooks as one: each is called in turn; the first fault returned wins."""

    hooks: tuple[Fault, ...]

    def __call__(self, config: Mapping[str, Any], epoch: int) -> str | None:
        for hook in self.hooks:
            if (fault := hook(config, epoch)) is not None:
                return fault
        return None


@dataclass(frozen=True)
class Pace:
    """A fault hook that makes each epoch of the configurations matching `match` (all of
    them by default) take `seconds` of wall time, and writes the configuration a process
    is training to `pid_dir/<pid>`, so that a test can kill a worker mid-trial.

    Frozen and module-level: it pickles into spawned and Ray workers."""

    seconds: float
    pid_dir: str | None = None
    match: tuple[tuple[str, Any], ...] = ()

    def __call__(self, config: Mapping[str, Any], epoch: int) -> None:
        if not _matches(config, self.match):
            return None
        if self.pid_dir is not None:
            pid_dir = Path(self.pid_dir)
            pid_dir.mkdir(parents=True, exist_ok=True)
            tmp = pid_dir / f".{os.getpid()}.tmp"  # a reader never sees half a file
            tmp.write_text(json.dumps(dict(config), sort_keys=True))
            os.replace(tmp, pid_dir / str(os.getpid()))
        time.sleep(self.seconds)
        return None


@dataclass(frozen=True)
class Die:
    """A fault hook under which the process training a matching configuration kills itself
    with SIGKILL (as the out-of-memory killer would) on reaching `epoch`: every time, or
    only the first `times` times when `marker_dir` counts them across processes."""

    epoch: int
    match: tuple[tuple[str, Any], ...] = ()
    marker_dir: str | None = None
    times: int = 1

    def __call__(self, config: Mapping[str, Any], epoch: int) -> None:
        if epoch != self.epoch or not _matches(config, self.match):
            return None
        if self.marker_dir is not None:
            markers = Path(self.marker_dir)
            markers.mkdir(parents=True, exist_ok=True)
            if len(list(markers.iterdir())) >= self.times:
                return None
            (markers / str(os.getpid())).touch()
        os.kill(os.getpid(), signal.SIGKILL)
        return None


class ToyTask(Task):
    """Analytic learning curves behind the Task protocol (see the module docstring)."""

    info = TaskInfo(
        name="toy",
        description="analytic crossing learning curves with shrinking noise (no torch)",
        metric=Metric("val_loss", minimize=True),
        fidelity=Fidelity(1, 27, 3),
        extra_metrics=("val_accuracy",),
    )
    capabilities = Capabilities(checkpoints=True, fused=True, table=True, test=True,
                                timer=True, test_epochs=True)

    def __init__(self, scale: str = "full", *, noise: float = 0.02,
                 fault: Fault | None = None, pace: float = 0.0) -> None:
        # pace > 0: each epoch really takes pace × its device-seconds of wall time, timed
        # and reported like a real task's epoch (for executor timing tests)
        self.scale, self.noise, self.fault, self.pace = scale, noise, fault, pace

    def config_space(self, seed: int | None = None) -> ConfigurationSpace:
        cs = ConfigurationSpace(seed=seed)
        kind = Categorical("kind", ["plain", "momentum"], default="plain")
        beta = Float("beta", (0.5, 0.99), default=0.9)
        cs.add([Float("lr", (1e-3, 1.0), log=True, default=0.05),
                Integer("width", (1, 16), default=4),
                OrdinalHyperparameter("batch_size", [16, 32, 64], default_value=32),
                kind, beta])
        cs.add(EqualsCondition(beta, kind, "momentum"))
        return cs

    def default_config(self) -> dict[str, Any]:
        return validate_config(self.config_space(), {})

    def table_grid(self) -> tuple[ConfigurationSpace, dict[str, Any]]:
        """A 288-configuration grid with the conditional child kept conditional."""
        cs = ConfigurationSpace()
        kind = Categorical("kind", ["plain", "momentum"])
        beta = OrdinalHyperparameter("beta", [0.8, 0.9, 0.95])
        cs.add([OrdinalHyperparameter("lr", [0.003, 0.01, 0.03, 0.1, 0.3, 1.0]),
                OrdinalHyperparameter("width", [2, 6, 10, 14]),
                OrdinalHyperparameter("batch_size", [16, 32, 64]), kind, beta])
        cs.add(EqualsCondition(beta, kind, "momentum"))
        return cs, {}

    def curve(self, config: Mapping[str, Any], epoch: int, seed: int) -> float:
        """Noisy validation loss after `epoch` epochs."""
        lr, width = config["lr"], config["width"]
        floor = 0.1 + 0.15 * (math.log10(lr) + 1.7) ** 2 + 0.01 * (width - 10) ** 2 / 4
        floor += 0.02 * math.log2(config["batch_size"] / 16)
        if config["kind"] == "momentum":
            floor += 0.4 * (config["beta"] - 0.9) ** 2 - 0.03
        rate = 0.3 + 2.0 * lr ** 0.5  # large steps converge fast, to a worse floor
        value = floor + 2.0 / epoch ** rate
        rng = np.random.default_rng([seed, _config_hash(config), epoch])
        return float(value + self.noise * rng.standard_normal() / math.sqrt(epoch))

    def epoch_seconds(self, config: Mapping[str, Any]) -> float:
        return 0.5 + 0.1 * config["width"] * 32 / config["batch_size"]

    def train(self, config: Mapping[str, Any], *, epochs: int, seed: int,
              resume_from: Path | None = None, save_to: Path | None = None,
              device: str = "auto", test: bool = False) -> Iterator[EpochResult]:
        cfg = validate_config(self.config_space(), config)
        if not 1 <= epochs <= self.info.fidelity.max_epochs:
            raise SuiteError(f"epochs={epochs} is outside 1..{self.info.fidelity.max_epochs}")
        done = _load(resume_from, cfg) if resume_from is not None else 0
        for epoch in range(done + 1, epochs + 1):
            seconds = self._spend(self.epoch_seconds(cfg))
            yield self._result(cfg, epoch, seed, save_to, seconds, test)

    def _spend(self, seconds: float) -> float:
        """An epoch's device-seconds: analytic, or with `pace` slept and measured."""
        if self.pace <= 0:
            return seconds
        timing.epoch_started()
        start = time.perf_counter()
        time.sleep(seconds * self.pace)
        elapsed = time.perf_counter() - start
        timing.epoch_ended()
        return elapsed

    def _result(self, cfg: dict[str, Any], epoch: int, seed: int, save_to: Path | None,
                seconds: float, test: bool = False) -> EpochResult:
        loss = self.curve(cfg, epoch, seed)
        fault = self.fault(cfg, epoch) if self.fault else None
        if fault == "raise":
            raise RuntimeError(f"injected fault at epoch {epoch}")
        if fault == "oom":
            raise SimulatedOutOfMemoryError(f"CUDA out of memory. Tried to allocate "
                                            f"20.00 GiB (injected at epoch {epoch})")
        if fault in ("nan", "inf"):
            loss = float(fault)
        if save_to is not None:
            _save(save_to, cfg, epoch)
            if fault == "truncate":  # as if the disk filled up behind our back
                Path(save_to).write_bytes(Path(save_to).read_bytes()[:7])
        accuracy = 1.0 / (1.0 + math.exp(loss - 0.5)) if math.isfinite(loss) else 0.0
        metrics = {"val_loss": loss, "val_accuracy": accuracy}
        if test:  # what `evaluate` gives for this epoch's checkpoint
            metrics["test_loss"] = self.test_loss(cfg, epoch)
        return EpochResult(epoch, metrics, seconds, Path(save_to) if save_to else None)

    def test_loss(self, config: Mapping[str, Any], epoch: int) -> float:
        """The held-out loss after `epoch` epochs (the curve of a seed no run trains)."""
        return self.curve(config, epoch, seed=10**6)

    def fuse_key(self, config: Mapping[str, Any]) -> tuple:
        """Configurations with one key can train as one fused array (the toy's "shape"
        is its batch size alone, so that small studies fuse often)."""
        return (config["batch_size"],)

    def train_fused(self, members, *, device: str = "auto", exact: bool | None = None,
                    test: bool = False):
        """Members (`suite.types.Member`s) as one array: epochs in lockstep, each
        member's curve exactly its solo one; an array epoch costs its slowest member's
        epoch, shared equally among the members trained (see `tasks.fused.FusedTraining`).
        """
        return _ToyArray(self, members, test)

    def evaluate(self, checkpoint: Path, *, device: str = "auto") -> dict[str, float]:
        state = json.loads(Path(checkpoint).read_text())
        return {"test_loss": self.test_loss(state["config"], state["epoch"])}


class _ToyArray:
    def __init__(self, task: ToyTask, members, test: bool = False) -> None:
        self.task, self.members, self.test = task, list(members), test
        self.configs = [validate_config(task.config_space(), m.config) for m in self.members]
        if len({task.fuse_key(c) for c in self.configs}) > 1:
            raise SuiteError("a fused array needs one batch_size for all members")
        self.epochs = [_load(m.resume_from, c) if m.resume_from is not None else 0
                       for m, c in zip(self.members, self.configs, strict=True)]
        self.active = [i for i, m in enumerate(self.members) if m.epochs > self.epochs[i]]

    def __iter__(self):
        return self

    def __next__(self) -> list[tuple[int, EpochResult]]:
        if not self.active:
            raise StopIteration
        slowest = max(self.task.epoch_seconds(self.configs[i]) for i in self.active)
        share = self.task._spend(slowest) / len(self.active)
        out = []
        for i in self.active:
            self.epochs[i] += 1
            m = self.members[i]
            out.append((i, self.task._result(self.configs[i], self.epochs[i], m.seed,
                                             m.save_to, share, self.test)))
        self.active = [i for i in self.active if self.epochs[i] < self.members[i].epochs]
        return out

    def drop(self, index: int) -> None:
        self.active = [i for i in self.active if i != index]


def _config_hash(config: Mapping[str, Any]) -> int:
    # crc32 of canonical JSON: stable across processes, unlike hash() of a str.
    return zlib.crc32(json.dumps(config, sort_keys=True).encode())


def _save(path: Path, config: Mapping[str, Any], epoch: int) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"task": "toy", "config": dict(config), "epoch": epoch}))
    os.replace(tmp, path)


def _load(path: Path, config: Mapping[str, Any]) -> int:
    try:
        state = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        raise CheckpointError(f"checkpoint {path} is missing or unreadable") from None
    if state.get("task") != "toy" or state.get("config") != dict(config):
        raise CheckpointError(f"checkpoint {path} is from another task or configuration")
    return int(state["epoch"])


def toy_table(path: Path, seeds: int = 2, *, test: bool = False) -> Path:
    """Write the toy task's recorded table (`ToyTask.table_grid()`, every configuration ×
    `seeds` training seeds × 27 epochs, from the analytic curves) in `suite.tables` format;
    with `test`, with its `test_loss` column, as `suite tabulate` records it today.

    What `suite tabulate --task toy` would record, without running the training loop: for
    tests and for benchmarking replays.
    """
    from suite.env import training_provenance
    from suite.tables import grid_configs, write_table

    task = ToyTask()
    space, fixed = task.table_grid()
    configs = grid_configs(space)
    names = sorted(space.keys())
    max_epochs = task.info.fidelity.max_epochs
    rows = []
    for index, config in enumerate(configs):
        base = {"config_index": index, **{f"config.{n}": config.get(n) for n in names}}
        seconds = task.epoch_seconds(config)
        for seed in range(seeds):
            for epoch in range(1, max_epochs + 1):
                loss = task.curve(config, epoch, seed)
                rows.append({**base, "seed": seed, "epoch": epoch, "val_loss": loss,
                             "val_accuracy": 1.0 / (1.0 + math.exp(loss - 0.5)),
                             **({"test_loss": task.test_loss(config, epoch)} if test else {}),
                             "device_seconds": seconds})
    info = task.info
    meta = {"task": info.name, "task_revision": info.revision, "scale": "full",
            "metric": info.metric.name, "minimize": info.metric.minimize,
            "metrics": ["val_accuracy", "val_loss", *(["test_loss"] if test else [])],
            **({"test_metrics": ["test_loss"]} if test else {}),
            "seeds": seeds, "max_epochs": max_epochs, "fixed": fixed,
            "space": space.to_serialized_dict(), "configs": len(configs),
            "recorded": len(configs) * seeds, "complete": True, "failed": 0,
            "collection": {"source": "suite.testing.toy_table: the analytic curves",
                           # as `suite tabulate --task toy --executor inprocess` here
                           "provenance": training_provenance("inprocess", 1)}}
    write_table(path, rows, meta)
    return Path(path)


class ScriptedOptimizer:
    """Asks the given trials in order; a promotion waits (None) until its parent is told.

    For runner and executor tests that need an exact, hand-written trial sequence."""

    name = "scripted"

    def __init__(self, trials) -> None:
        self.trials, self.next, self.told = list(trials), 0, {}

    @property
    def finished(self) -> bool:
        return self.next >= len(self.trials)

    def ask(self):
        if self.finished:
            return None
        trial = self.trials[self.next]
        if trial.resume_from is not None and trial.resume_from not in self.told:
            return None
        self.next += 1
        return trial

    def tell(self, result) -> None:
        self.told[result.trial.trial_id] = result


class Killed(Exception):
    """What `kill_after` raises: a run killed mid-way, as a test stages it."""


def kill_after(rows: int):
    """An `on_run` hook (`run_study`) that raises `Killed` once the run has appended
    `rows` log rows: the log holds them, nothing after, as after a kill."""
    def on_run(name, seed, runner):
        def on_row(row, runner):
            nonlocal rows
            rows -= 1
            if rows == 0:
                raise Killed
        runner.on_row = on_row
    return on_run
