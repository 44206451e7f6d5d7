"""Training pieces both tasks share: device choice, precision, RNG state, checkpoints."""

from __future__ import annotations

import contextlib
import os
import random
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from suite import timing
from suite.errors import CheckpointError, SuiteError

__all__ = [
    "resolve_device", "autocast", "rng_state", "set_rng_state", "save_checkpoint",
    "load_checkpoint", "read_checkpoint", "EpochTimer", "seed_everything", "check_epochs",
]

CHECKPOINT_FORMAT = 1


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
    state = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Mapping[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
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


def save_checkpoint(path: Path, payload: dict[str, Any]) -> Path:
    """Write atomically (temp file + rename) so a crash never leaves half a checkpoint."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save({"format": CHECKPOINT_FORMAT, **payload}, tmp)
    os.replace(tmp, path)
    return path


def read_checkpoint(path: Path) -> dict[str, Any]:
    """Load a suite checkpoint from disk, with one clear error for anything unreadable."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # torch raises many types for a truncated or foreign file
        raise CheckpointError(f"checkpoint {path} is unreadable ({type(exc).__name__}); "
                              "delete it and train from scratch") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"checkpoint {path} is not a suite checkpoint")
    return state


def load_checkpoint(path: Path, *, task: str, config: Mapping[str, Any], scale: str) -> dict:
    """Load a checkpoint and check it belongs to this task, scale and configuration."""
    state = read_checkpoint(path)
    if state["task"] != task or state["scale"] != scale:
        raise CheckpointError(f"checkpoint {path} is from {state['task']} ({state['scale']}), "
                              f"not {task} ({scale})")
    if dict(state["config"]) != dict(config):
        raise CheckpointError(f"checkpoint {path} was trained with another configuration")
    return state


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
