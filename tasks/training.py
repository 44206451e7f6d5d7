"""Training pieces both tasks share: device choice, precision, RNG state, checkpoints."""

from __future__ import annotations

import contextlib
import os
import pickle
import random
import time
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Self, TypeVar

import numpy as np
import torch

from suite import timing
from suite.errors import CheckpointError, SuiteError

__all__ = [
    "resolve_device", "autocast", "rng_state", "set_rng_state", "TrainingState", "save_state",
    "load_state", "read_checkpoint", "EpochTimer", "seed_everything", "check_epochs",
]

# 2: plain data only (loads with `weights_only=True`); 1 pickled numpy's RNG state.
CHECKPOINT_FORMAT = 2


def resolve_device(device: str) -> torch.device:
    """`auto` picks CUDA when available; asking for CUDA without one is a user error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise SuiteError(f"--device {device}: no CUDA device is available (use cpu or auto)")
    try:
        return torch.device(device)
    except RuntimeError:
        raise SuiteError(f"--device {device!r}: expected auto, cpu, cuda or cuda:N") from None


def autocast(device: torch.device) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA; full fp32 on the CPU so CPU runs are exact and portable."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    """The global RNGs (python, numpy, torch, CUDA) as plain data.

    Plain data (tuples, numbers, tensors) so that a checkpoint loads with
    `torch.load(weights_only=True)`: numpy's MT19937 key becomes an int64 tensor.
    """
    kind, key, pos, has_gauss, cached = np.random.get_state(legacy=True)
    state = {
        "python": random.getstate(),  # (version, tuple of ints, float or None)
        "numpy": {"kind": kind, "key": torch.from_numpy(key.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Mapping[str, Any]) -> None:
    """Restore the global RNGs from `rng_state()`'s plain data."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    np_state = state["numpy"]
    np.random.set_state((np_state["kind"], np_state["key"].numpy().astype(np.uint32),
                         np_state["pos"], np_state["has_gauss"], np_state["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def check_epochs(epochs: int, max_epochs: int, done: int = 0) -> None:
    if not isinstance(epochs, int) or isinstance(epochs, bool):
        raise SuiteError(f"epochs must be an integer, got {epochs!r}")
    if not 1 <= epochs <= max_epochs:
        raise SuiteError(f"epochs={epochs} is outside 1..{max_epochs} (the task's fidelity)")
    if epochs <= done:
        raise SuiteError(f"epochs={epochs}: the checkpoint already holds {done} epochs")


@dataclass(frozen=True)
class TrainingState:
    """One run's complete training state, as plain data: what a checkpoint holds.

    The solo run and every member of a fused array produce and restore the same record,
    so their checkpoints are interchangeable. A task with more state subclasses it
    (`tasks.text_classifier.training.ClassifierState`).

    Attributes:
        task, scale, config: whose state this is; a resume checks all three.
        epoch: epochs trained.
        model: the model's `state_dict()`.
        optimizer: the optimizer's `state_dict()` (torch's own format).
        scheduler: the learning-rate schedule's state, a plain dict.
        rng: the global RNGs, `rng_state()`.
        data_rng: the state of the generator that draws the data order.
    """

    task: str
    scale: str
    config: dict[str, Any]
    epoch: int
    model: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    scheduler: dict[str, Any]
    rng: dict[str, Any]
    data_rng: torch.Tensor

    def to_dict(self) -> dict[str, Any]:
        """The record as a dict of plain data (what `save_state` writes)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """The record from `to_dict()`'s output; KeyError names a missing field."""
        return cls(**{f.name: data[f.name] for f in fields(cls)})


S = TypeVar("S", bound=TrainingState)


def save_state(path: Path, state: TrainingState) -> Path:
    """Write a checkpoint atomically (temp file + rename): a crash never leaves half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save({"format": CHECKPOINT_FORMAT, **state.to_dict()}, tmp)
    os.replace(tmp, path)
    return path


def read_checkpoint(path: Path) -> dict[str, Any]:
    """Load a suite checkpoint's plain data, with one clear error for anything unreadable.

    Only plain data is loaded (`weights_only=True`): a checkpoint is never code.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        with warnings.catch_warnings():  # a foreign pickle's protocol warning: one line only
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "Unsupported global" not in str(exc):
            raise CheckpointError(f"checkpoint {path} is unreadable (UnpicklingError); "
                                  "delete it and train from scratch") from None
        # weights_only refused an object: format 1 pickled numpy's RNG state, say so
        raise CheckpointError(f"checkpoint {path} holds more than plain data: an older suite "
                              f"checkpoint format (before {CHECKPOINT_FORMAT}) or not a suite "
                              "checkpoint; train from scratch") from None
    except Exception as exc:  # torch raises many types for a truncated or foreign file
        raise CheckpointError(f"checkpoint {path} is unreadable ({type(exc).__name__}); "
                              "delete it and train from scratch") from None
    if not isinstance(state, dict) or not isinstance(state.get("format"), int):
        raise CheckpointError(f"checkpoint {path} is not a suite checkpoint")
    if state["format"] != CHECKPOINT_FORMAT:
        age = "an older" if state["format"] < CHECKPOINT_FORMAT else "a newer"
        raise CheckpointError(f"checkpoint {path} is from {age} suite checkpoint format "
                              f"({state['format']}, this suite reads {CHECKPOINT_FORMAT}); "
                              "train from scratch")
    return state


def load_state(path: Path, *, task: str, scale: str, config: Mapping[str, Any] | None = None,
               kind: type[S] = TrainingState) -> S:
    """Read a checkpoint as a `kind` record and check it belongs to this task and scale
    (and to `config`, when given)."""
    data = read_checkpoint(path)
    _check_fields(path, data, kind)
    if data.get("task") != task or data.get("scale") != scale:
        raise CheckpointError(f"checkpoint {path} is from {data.get('task')} "
                              f"({data.get('scale')}), not {task} ({scale})")
    if config is not None and dict(data["config"]) != dict(config):
        raise CheckpointError(f"checkpoint {path} was trained with another configuration")
    try:
        return kind.from_dict(data)
    except KeyError as exc:
        raise CheckpointError(f"checkpoint {path} lacks {exc}; train from scratch") from None


_STATE_TYPES = {"task": str, "scale": str, "config": dict, "epoch": int, "model": dict,
                "optimizer": dict, "scheduler": dict, "rng": dict, "data_rng": torch.Tensor}


def _check_fields(path: Path, data: dict[str, Any], kind: type[TrainingState]) -> None:
    """Every field of `kind` present, the shared ones of their type: a checkpoint that is
    a format number and little else is one clear error, not a KeyError deep in a resume."""
    for f in fields(kind):
        if f.name not in data:
            raise CheckpointError(f"checkpoint {path} lacks {f.name!r}: not a complete suite "
                                  "checkpoint; train from scratch")
        expected = _STATE_TYPES.get(f.name)
        if expected is not None and (not isinstance(data[f.name], expected)
                                     or isinstance(data[f.name], bool)):
            raise CheckpointError(f"checkpoint {path} holds a {type(data[f.name]).__name__} "
                                  f"as {f.name!r}, not a {expected.__name__}; it was damaged")
    if data["epoch"] < 0:
        raise CheckpointError(f"checkpoint {path} holds epoch {data['epoch']}; it was damaged")


class EpochTimer:
    """Device-seconds of one epoch: one host synchronization at the end, none per step."""

    def __init__(self, device: torch.device) -> None:
        self.device = device

    @contextlib.contextmanager
    def measure(self) -> Iterator[list[float]]:
        out: list[float] = []
        self._sync()
        timing.epoch_started()  # the local executor's device-occupancy accounting listens
        start = time.perf_counter()
        yield out
        self._sync()
        out.append(time.perf_counter() - start)
        timing.epoch_ended()

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
