"""Text classifier: a project's title and description → its tag (Made With ML, 4 classes).

Data and features are in `tasks.text_classifier.features`: 611 train / 153 validation examples
(stratified split of `dataset.csv`, fixed seed), 191 test examples (`holdout.csv`),
fastText-style TF-IDF-weighted bags of word 1–2-grams and character 2–5-grams with a
vocabulary fitted on the training split only.

Model (`BagOfNgrams`): an `EmbeddingBag` sums the embeddings of a document's n-grams
weighted by their TF-IDF values, dropout, then a linear head onto the 4 tags; trained
from scratch with AdamW on cross-entropy, with `ReduceLROnPlateau` on validation loss
stepped once per epoch. On 611 documents a bag of n-grams generalizes far better than
a sequence model trained from scratch (a 2-layer word-level transformer overfitted, well
below the linear baseline); `tfidf_baseline` is the scikit-learn reference on the same
split and features.

Search space (defaults in brackets):

- `lr` 1e-4..1e-1 log [5e-3]: AdamW learning rate. From about 2e-2 up the logits grow
  large: validation loss rises sharply while accuracy suffers far less, unless weight
  decay is strong; below about 3e-4, 27 epochs underfit.
- `weight_decay` 1e-5..1 log [0.1]: decoupled, on the embedding table and head weights;
  on the n-gram table, decay of 0.1..1 did best in a grid at the default's other values.
- `dropout_p` 0.3..0.9 [0.5]: dropout on the pooled document vector, before the head.
- `lr_factor` 0.1..0.9 [0.5], `lr_patience` 1..10 [2] epochs: `ReduceLROnPlateau`.
- `batch_size` (8, 16, 32, 64, 128) [32]; `width` (32, 64, 128, 256) [64]: embedding width.

`ReduceLROnPlateau` has no horizon, and every random stream (initialization, data order,
dropout) is seeded from the trial seed and saved in each checkpoint, so training 3
epochs and resuming to 9 is the same computation as training 9 (bit for bit on the CPU).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from ConfigSpace import ConfigurationSpace

from suite.errors import SuiteError
from suite.types import Capabilities, EpochResult, Fidelity, Metric, Task, TaskInfo
from tasks.text_classifier.space import (
    NAME,
    SCALES,
    SHAPE_KEYS,
    config_space,
    default_config,
    table_grid,
)

__all__ = ["TextClassifier", "config_space", "default_config", "table_grid", "SHAPE_KEYS",
           "NAME"]


class TextClassifier(Task):
    """The Made With ML tag classifier (see the module docstring for data, model, space).

    Declaring the task needs neither torch nor scikit-learn: a replay, a plan or the CLI
    reads its space and fidelity without them (a process that imports torch spends about
    2 s on it). Training loads `tasks.text_classifier.training` when it starts.
    """

    info = TaskInfo(
        name=NAME,
        description="bag-of-n-grams classifier of ML projects' titles and descriptions "
                    "(Made With ML, 4 tags)",
        metric=Metric("val_loss", minimize=True),
        fidelity=Fidelity(1, 27, 3),
        extra_metrics=("val_accuracy", "val_macro_f1"),
    )
    capabilities = Capabilities(checkpoints=True, fused=True, table=True, test=True,
                                timer=True, test_epochs=True)

    def __init__(self, scale: str = "full") -> None:
        if scale not in SCALES:
            raise SuiteError(f"unknown scale {scale!r}; choose from {', '.join(SCALES)}")
        self.scale = scale

    def config_space(self, seed: int | None = None) -> ConfigurationSpace:
        return config_space(seed)

    def default_config(self) -> dict[str, Any]:
        return default_config()

    def table_grid(self) -> tuple[ConfigurationSpace, dict[str, Any]]:
        return table_grid()

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
        """Train to `epochs` (absolute), yielding one `EpochResult` per newly trained epoch.

        Arguments are checked before the first epoch, when `train` is called. On resume,
        `seed` is not used: the checkpoint's random streams continue. With `test`, each
        epoch's metrics also hold `evaluate`'s test metrics of the model after it.

        Raises:
            ConfigError: `config` does not fit the space.
            CheckpointError: `resume_from` is unreadable or from another task, scale,
                configuration, vocabulary or device type.
            SuiteError: `epochs` outside the fidelity or not beyond the checkpoint.
        """
        from tasks.text_classifier import training
        return training.train(self, config, epochs=epochs, seed=seed,
                              resume_from=resume_from, save_to=save_to, device=device,
                              test=test)

    def fuse_key(self, config: Mapping[str, Any]) -> tuple:
        """Configurations with one key share every shape and can train as one array."""
        return tuple(config.get(key) for key in SHAPE_KEYS)

    def train_fused(self, members, *, device: str = "auto", exact: bool | None = None,
                    test: bool = False):
        """Train same-shape configurations (`suite.types.Member`s) as one fused array;
        see `tasks.text_classifier.fused.train_fused`."""
        from tasks.text_classifier import fused
        return fused.train_fused(self, members, device=device, exact=exact, test=test)

    def evaluate(self, checkpoint: Path, *, device: str = "auto") -> dict[str, float]:
        """Test (holdout.csv) loss, accuracy and macro-F1 of a checkpoint's model.

        Raises:
            CheckpointError: unreadable, or from another task, scale or vocabulary.
        """
        from tasks.text_classifier import training
        return training.evaluate(self, checkpoint, device=device)
