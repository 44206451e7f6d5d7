"""Small LM: a character-level GPT on tiny shakespeare.

Data: `input.txt` split by position into train (first 90%), validation (next 5%) and
test (last 5%); the issue's 90/10 split with its held-out tenth halved, so that test
metrics stay untouched by tuning. An epoch is a fixed number of training characters
(`Scale.epoch_chars` in whole batches: 573,440 at full scale and batch 64, 57% of the
training split) in windows of
`context` characters drawn at seeded uniform random offsets, consumed in
`steps_per_epoch` batches (a fixed count per batch size, so every schedule has a fixed
horizon). This is the task's revision 2 (`TaskInfo.revision`): revision 1's epoch was one
pass over the whole split (1.0 M characters), 1.75x the compute, which put its 720-point
table at about 2 H100-hours (`python benchmarks/lm_cost_model.py --design old`); its
tables and runs are refused, never mixed with this one's.

Search space (defaults in brackets):

- `lr` 1e-4..1e-1 log [2e-3]: peak learning rate; SGD needs the upper part of the range.
- `warmup_frac` 0..0.2 [0.05]: linear warm-up, as a fraction of all `max_epochs` steps.
- `weight_decay` 1e-4..0.5 log [0.1]: decoupled for AdamW, L2 for SGD; matrices only.
- `dropout` 0..0.3 [0.1]: attention, residual and embedding dropout.
- `batch_size` (32, 64, 128) [64] windows per step; `width` (128, 256, 384) [256];
  `depth` (2, 4, 6) [4] transformer blocks with 64-wide heads.
- `schedule` {constant, cosine, cyclic} [cosine]. Cosine decays to lr/10 at `max_epochs`.
  Cyclic is Smith's triangular CLR between lr/`clr_ratio` and lr, with knobs active only
  when `schedule == cyclic`: `clr_ratio` 2..20 log [4], `clr_half_cycle` 1..9 epochs [3].
- `optimizer` {adamw, sgd} [adamw]; `momentum` 0.5..0.99 [0.9] only when `sgd`.

Every schedule is a pure function of the global step and of `max_epochs`, never of the
`epochs` argument, so training 3 epochs and resuming to 9 is the same computation as
training 9 (bit for bit on the CPU).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from ConfigSpace import ConfigurationSpace

from suite.errors import SuiteError
from suite.types import Capabilities, EpochResult, Fidelity, Metric, Task, TaskInfo
from tasks.small_lm.space import (
    NAME,
    SCALES,
    SHAPE_KEYS,
    Scale,
    config_space,
    default_config,
    table_grid,
)

__all__ = ["SmallLM", "Scale", "SCALES", "SHAPE_KEYS", "NAME", "config_space",
           "default_config", "table_grid"]


class SmallLM(Task):
    """The character-level GPT task (see the module docstring for data, space, schedule)."""

    info = TaskInfo(
        name=NAME,
        description="character-level GPT on tiny shakespeare (next-character prediction)",
        metric=Metric("val_loss", minimize=True),
        fidelity=Fidelity(1, 27, 3),
        extra_metrics=("val_bpc",),
        revision=2,  # an epoch of `epoch_chars` at random offsets (1: one pass over the split)
    )
    capabilities = Capabilities(checkpoints=True, fused=True, table=True, test=True,
                                timer=True, test_epochs=True)

    def __init__(self, scale: str = "full") -> None:
        if scale not in SCALES:
            raise SuiteError(f"unknown scale {scale!r}; choose from {', '.join(SCALES)}")
        self.scale = scale
        self.context = SCALES[scale].context

    def config_space(self, seed: int | None = None) -> ConfigurationSpace:
        return config_space(seed)

    def default_config(self) -> dict[str, Any]:
        return default_config()

    def table_grid(self) -> tuple[ConfigurationSpace, dict[str, Any]]:
        """The table grid (60 configurations) and the values it holds fixed: see
        `tasks.small_lm.space.table_grid`."""
        return table_grid()

    def steps_per_epoch(self, batch_size: int) -> int:
        """Batches per epoch: the scale's training characters in whole batches."""
        return max(1, SCALES[self.scale].epoch_chars // (batch_size * self.context))

    def train(
        self,
        config: Mapping[str, Any],
        *,
        epochs: int,
        seed: int,
        resume_from: Path | None = None,
        save_to: Path | None = None,
        device: str = "auto",
        test: bool = False,
    ) -> Iterator[EpochResult]:
        """Train to `epochs` (absolute), yielding one `EpochResult` per new epoch; with
        `test`, its metrics also hold `evaluate`'s test metrics of the model after it."""
        from tasks.small_lm import training
        return training.train(self, config, epochs=epochs, seed=seed,
                              resume_from=resume_from, save_to=save_to, device=device,
                              test=test)

    def fuse_key(self, config: Mapping[str, Any]) -> tuple:
        """Configurations with one key share every shape and can train as one array."""
        return tuple(config.get(key) for key in SHAPE_KEYS)

    def train_fused(self, members, *, device: str = "auto", exact: bool | None = None,
                    test: bool = False):
        """Train same-shape configurations (`suite.types.Member`s) as one fused array;
        see `tasks.small_lm.fused.train_fused`."""
        from tasks.small_lm import fused
        return fused.train_fused(self, members, device=device, exact=exact, test=test)

    def evaluate(self, checkpoint: Path, *, device: str = "auto") -> dict[str, float]:
        """Test loss (nats/char) and bits per character of a checkpoint's model."""
        from tasks.small_lm import training
        return training.evaluate(self, checkpoint, device=device)
