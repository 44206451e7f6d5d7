"""Text classifier: a project's title and description → its tag (Made With ML, 4 classes).

Data and features are in `tasks.text_features`: 611 train / 153 validation examples
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

import importlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ConfigSpace import ConfigurationSpace, Float, Integer, OrdinalHyperparameter
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from torch import nn
from torch.nn import functional as F

from suite.config import validate_config
from suite.errors import CheckpointError, SuiteError
from suite.types import Capabilities, EpochResult, Fidelity, Metric, Task, TaskInfo
from tasks.text_features import TAGS, Corpus, Split, load_corpus
from tasks.training import (
    EpochTimer,
    TrainingState,
    autocast,
    check_epochs,
    load_state,
    resolve_device,
    rng_state,
    save_state,
    seed_everything,
    set_rng_state,
)

__all__ = ["TextClassifier", "BagOfNgrams", "config_space", "default_config", "table_grid",
           "tfidf_baseline", "macro_f1", "ClassifierState", "ClassifierProgress", "set_up",
           "new_model", "make_optimizer", "DeviceSplit", "logit_scores", "holdout_metrics",
           "SHAPE_KEYS", "NAME"]

NAME = "text_classifier"
SCALES = ("tiny", "full")
# What members of one fused array share.
SHAPE_KEYS = ("batch_size", "width")


def config_space(seed: int | None = None) -> ConfigurationSpace:
    """A fresh search space (see the module docstring), seeded for sampling."""
    space = ConfigurationSpace(seed=seed)
    space.add([
        Float("lr", (1e-4, 1e-1), log=True, default=5e-3),
        Float("weight_decay", (1e-5, 1.0), log=True, default=0.1),
        Float("dropout_p", (0.3, 0.9), default=0.5),
        Float("lr_factor", (0.1, 0.9), default=0.5),
        Integer("lr_patience", (1, 10), default=2),
        OrdinalHyperparameter("batch_size", [8, 16, 32, 64, 128], default_value=32),
        OrdinalHyperparameter("width", [32, 64, 128, 256], default_value=64),
    ])
    return space


def table_grid() -> tuple[ConfigurationSpace, dict[str, Any]]:
    """The table grid (720 configurations) and the values it holds fixed (none).

    A discretized space with the task's own names: learning rate across its useful range,
    then the regularization and schedule knobs at two or three levels each.
    """
    space = ConfigurationSpace()
    space.add([
        OrdinalHyperparameter("lr", [3e-4, 1e-3, 3e-3, 1e-2, 3e-2]),
        OrdinalHyperparameter("weight_decay", [1e-3, 3e-2, 0.5]),
        OrdinalHyperparameter("dropout_p", [0.4, 0.8]),
        OrdinalHyperparameter("lr_factor", [0.2, 0.6]),
        OrdinalHyperparameter("lr_patience", [2, 6]),
        OrdinalHyperparameter("batch_size", [32, 64, 128]),
        OrdinalHyperparameter("width", [32, 128]),
    ])
    return space, {}


def default_config() -> dict[str, Any]:
    """The baseline configuration, as plain Python values."""
    return validate_config(config_space(), {})


class BagOfNgrams(nn.Module):
    """TF-IDF-weighted sum of n-gram embeddings → dropout → linear head.

    Dropout draws from an explicit generator so that a run's randomness is its own:
    interleaving two runs in one process cannot change either.
    """

    def __init__(self, num_features: int, width: int, num_classes: int, dropout_p: float):
        super().__init__()
        self.embed = nn.EmbeddingBag(num_features + 1, width, mode="sum", padding_idx=0)
        self.head = nn.Linear(width, num_classes)
        self.dropout_p = dropout_p
        # N(0, 1) rows make the pooled vector (unit-norm TF-IDF weights) large enough for
        # the head to be overconfident from the first steps; 0.1 measured better on val.
        nn.init.normal_(self.embed.weight, std=0.1)
        with torch.no_grad():
            self.embed.weight[0].zero_()

    def forward(self, ids: torch.Tensor, weights: torch.Tensor,
                generator: torch.Generator | None = None) -> torch.Tensor:
        hidden = self.embed(ids, per_sample_weights=weights)
        if self.training and self.dropout_p > 0:
            keep = torch.rand(hidden.shape, generator=generator, device=hidden.device)
            hidden = hidden * (keep >= self.dropout_p) / (1 - self.dropout_p)
        return self.head(hidden)


def macro_f1(pred: torch.Tensor, target: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Macro-F1 on the device (no host sync), averaged like scikit-learn's `f1_score`:
    over the classes present in `target` or `pred`."""
    classes = torch.arange(num_classes, device=pred.device)
    true = (target[:, None] == classes).float()
    hit = (pred[:, None] == classes).float()
    tp = (true * hit).sum(0)
    denom = true.sum(0) + hit.sum(0)  # = 2tp + fp + fn
    present = denom > 0
    f1 = torch.where(present, 2 * tp / denom.clamp(min=1), torch.zeros_like(tp))
    return f1.sum() / present.sum().clamp(min=1)


class TextClassifier(Task):
    """The Made With ML tag classifier (see the module docstring for data, model, space)."""

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
        dev = resolve_device(device)
        cfg, model, resumed = set_up(self, config, epochs=epochs, seed=seed,
                                     resume_from=resume_from, device=dev)
        run = _Run(self, cfg, seed, model, dev, test=test)
        if resumed is not None:
            run.restore(resumed)
        return _epochs(run, epochs, save_to)

    def fuse_key(self, config: Mapping[str, Any]) -> tuple:
        """Configurations with one key share every shape and can train as one array."""
        return tuple(config.get(key) for key in SHAPE_KEYS)

    def train_fused(self, members, *, device: str = "auto", exact: bool | None = None,
                    test: bool = False):
        """Train same-shape configurations (`suite.types.Member`s) as one fused array;
        see `tasks.text_classifier_fused.train_fused`."""
        # Imported by name: the fused module builds on this one, never the reverse.
        fused = importlib.import_module("tasks.text_classifier_fused")
        return fused.train_fused(self, members, device=device, exact=exact, test=test)

    def evaluate(self, checkpoint: Path, *, device: str = "auto") -> dict[str, float]:
        """Test (holdout.csv) loss, accuracy and macro-F1 of a checkpoint's model.

        Raises:
            CheckpointError: unreadable, or from another task, scale or vocabulary.
        """
        state = load_state(checkpoint, task=NAME, scale=self.scale, kind=ClassifierState)
        cfg = validate_config(config_space(), state.config)
        dev = resolve_device(device)
        corpus = load_corpus(self.scale)
        _check_vocabulary(state, corpus, checkpoint)
        model = BagOfNgrams(corpus.num_features, cfg["width"], len(TAGS), cfg["dropout_p"])
        model.load_state_dict(state.model)
        return holdout_metrics(_scores(model.to(dev), DeviceSplit(corpus.test, dev), dev))


def holdout_metrics(scores: torch.Tensor) -> dict[str, float]:
    """The test metrics' names for `logit_scores`' [loss, accuracy, macro-F1]."""
    loss, accuracy, f1 = scores.tolist()
    return {"test_loss": loss, "test_accuracy": accuracy, "test_macro_f1": f1}


def _epochs(run: _Run, epochs: int, save_to: Path | None) -> Iterator[EpochResult]:
    timer = EpochTimer(run.device)
    progress = run.progress
    while progress.epoch < epochs:
        lr = run.optimizer.param_groups[0]["lr"]  # the rate this epoch trains with
        with timer.measure() as elapsed:
            train_loss = run.train_epoch()
            val = run.evaluate(run.val)
            # The epoch's one host synchronization: every metric in one transfer.
            train_loss, val_loss, accuracy, f1 = torch.cat([train_loss[None], val]).tolist()
        progress.scheduler.step(val_loss)
        metrics = {"val_loss": val_loss, "val_accuracy": accuracy, "val_macro_f1": f1,
                   "train_loss": train_loss, "lr": lr}
        if run.test is not None:  # after the timed epoch: device_seconds stay train + val
            metrics.update(holdout_metrics(run.evaluate(run.test)))
        ckpt = save_state(save_to, run.snapshot()) if save_to else None
        yield EpochResult(progress.epoch, metrics, elapsed[0], ckpt)


class DeviceSplit:
    """A split's padded features and labels, moved to the device once per run."""

    def __init__(self, split: Split, device: torch.device) -> None:
        self.ids = torch.tensor(split.ids, device=device)
        self.weights = torch.tensor(split.weights, device=device)
        self.labels = torch.tensor(split.labels, device=device)

    def __len__(self) -> int:
        return len(self.labels)


@dataclass(frozen=True)
class ClassifierState(TrainingState):
    """The classifier's `TrainingState`, with what a resume must also match or continue.

    Attributes:
        features: the vocabulary's fingerprint (a checkpoint fits this vocabulary only).
        device_type: where it trained; its dropout stream belongs to that device type.
        dropout_rng: the state of the generator that draws the dropout masks.
    """

    features: str
    device_type: str
    dropout_rng: torch.Tensor


def new_model(corpus: Corpus, cfg: Mapping[str, Any], seed: int) -> BagOfNgrams:
    """A freshly initialized model (on the CPU), drawn from the global RNG seeded by `seed`."""
    seed_everything(seed)
    return BagOfNgrams(corpus.num_features, cfg["width"], len(TAGS), cfg["dropout_p"])


def set_up(task: TextClassifier, config: Mapping[str, Any], *, epochs: int, seed: int,
           resume_from: Path | None, device: torch.device
           ) -> tuple[dict[str, Any], BagOfNgrams, ClassifierState | None]:
    """Check a run's arguments and set up what a solo run and a fused member share: the
    validated configuration, the freshly initialized model and, on resume, the checked
    state to restore from."""
    cfg = validate_config(config_space(), config)
    max_epochs = task.info.fidelity.max_epochs
    check_epochs(epochs, max_epochs)
    corpus = load_corpus(task.scale)
    model, resumed = new_model(corpus, cfg, seed), None
    if resume_from is not None:
        resumed = load_state(resume_from, task=NAME, scale=task.scale, config=cfg,
                             kind=ClassifierState)
        _check_vocabulary(resumed, corpus, resume_from)
        if resumed.device_type != device.type:
            raise CheckpointError(f"checkpoint {resume_from} was trained on "
                                  f"{resumed.device_type}; resume it there (its dropout RNG "
                                  "belongs to that device)")
    check_epochs(epochs, max_epochs, done=resumed.epoch if resumed else 0)
    return cfg, model, resumed


class ClassifierProgress:
    """Where one run stands, apart from its weights and the global RNGs: epoch, plateau
    schedule, data order and dropout stream.

    A solo run and every member of a fused array keep one (the schedule over the run's
    optimizer, or over a member's shell), so they draw the same batches and masks and
    save and restore the same fields of a `ClassifierState`.
    """

    def __init__(self, task: TextClassifier, cfg: dict[str, Any], seed: int,
                 optimizer: torch.optim.Optimizer, device: torch.device) -> None:
        self.scale, self.features = task.scale, load_corpus(task.scale).fingerprint
        self.cfg, self.device_type, self.epoch = cfg, device.type, 0
        self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="min", factor=cfg["lr_factor"], patience=cfg["lr_patience"])
        order_seed, dropout_seed = np.random.SeedSequence(seed % 2**63).generate_state(2)
        # Data order on the CPU (portable state, one small transfer per epoch); dropout
        # masks on the device, where they are used.
        self.order = torch.Generator().manual_seed(int(order_seed))
        self.dropout = torch.Generator(device=device).manual_seed(int(dropout_seed))

    def example_order(self, n: int) -> torch.Tensor:
        """One epoch's order of the `n` training examples (CPU)."""
        return torch.randperm(n, generator=self.order)

    def state(self, *, model: dict[str, torch.Tensor], optimizer: dict[str, Any],
              rng: dict[str, Any]) -> ClassifierState:
        """The run's checkpoint record, given its weights, optimizer state and RNGs."""
        return ClassifierState(
            task=NAME, scale=self.scale, config=self.cfg, epoch=self.epoch, model=model,
            optimizer=optimizer, scheduler=self.scheduler.state_dict(), rng=rng,
            data_rng=self.order.get_state(), features=self.features,
            device_type=self.device_type, dropout_rng=self.dropout.get_state())

    def restore(self, state: ClassifierState) -> None:
        """Continue from a checkpoint's epoch, schedule, data order and dropout stream."""
        self.scheduler.load_state_dict(state.scheduler)
        self.order.set_state(state.data_rng)
        self.dropout.set_state(state.dropout_rng)
        self.epoch = state.epoch


class _Run:
    """A solo run: the model and optimizer on the device, its progress, the splits (the
    test split only with `test`: `TextClassifier.train(test=True)`)."""

    def __init__(self, task: TextClassifier, cfg: dict, seed: int, model: BagOfNgrams,
                 device: torch.device, *, test: bool = False) -> None:
        self.cfg, self.device = cfg, device
        corpus = load_corpus(task.scale)
        self.train, self.val = DeviceSplit(corpus.train, device), DeviceSplit(corpus.val, device)
        self.test = DeviceSplit(corpus.test, device) if test else None
        self.model = model.to(device)
        self.optimizer = make_optimizer(self.model, cfg, device)
        self.progress = ClassifierProgress(task, cfg, seed, self.optimizer, device)

    def train_epoch(self) -> torch.Tensor:
        """One pass over the shuffled training split; the mean loss, left on the device."""
        self.model.train()
        perm = self.progress.example_order(len(self.train)).to(self.device)
        total = torch.zeros((), device=self.device)
        for batch in perm.split(self.cfg["batch_size"]):
            with autocast(self.device):
                logits = self.model(self.train.ids[batch], self.train.weights[batch],
                                    generator=self.progress.dropout)
            loss = F.cross_entropy(logits.float(), self.train.labels[batch])
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            total += loss.detach() * len(batch)
        self.progress.epoch += 1
        return total / len(self.train)

    def evaluate(self, split: DeviceSplit) -> torch.Tensor:
        return _scores(self.model, split, self.device)

    def snapshot(self) -> ClassifierState:
        return self.progress.state(model=self.model.state_dict(),
                                   optimizer=self.optimizer.state_dict(), rng=rng_state())

    def restore(self, state: ClassifierState) -> None:
        self.model.load_state_dict(state.model)
        self.optimizer.load_state_dict(state.optimizer)
        self.progress.restore(state)
        set_rng_state(state.rng)


@torch.no_grad()
def _scores(model: BagOfNgrams, split: DeviceSplit, device: torch.device) -> torch.Tensor:
    """[loss, accuracy, macro-F1] on a whole split, left on the device."""
    model.eval()
    with autocast(device):
        logits = model(split.ids, split.weights)
    return logit_scores(logits.float(), split.labels)


def logit_scores(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """[loss, accuracy, macro-F1] of one model's logits [N, classes], left on the device."""
    pred = logits.argmax(1)
    return torch.stack([F.cross_entropy(logits, labels), (pred == labels).float().mean(),
                        macro_f1(pred, labels, len(TAGS))])


def _check_vocabulary(state: ClassifierState, corpus: Corpus, path: Path) -> None:
    if state.features != corpus.fingerprint:
        raise CheckpointError(f"checkpoint {path} was trained on another vocabulary (other "
                              "data or scikit-learn version); train from scratch")


def make_optimizer(model: nn.Module, cfg: Mapping[str, Any], device: torch.device):
    """The run's AdamW (fused kernel on CUDA); decays the embedding table and head weights,
    not the head's bias. A fused array calls it on placeholders to learn the groups."""
    decay = [p for p in model.parameters() if p.dim() >= 2]
    rest = [p for p in model.parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": cfg["weight_decay"]},
              {"params": rest, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg["lr"], fused=device.type == "cuda")


def tfidf_baseline(scale: str = "full") -> dict[str, float]:
    """The scikit-learn reference: logistic regression on the same TF-IDF features.

    Same split and vocabulary as the neural model; `C=10` with balanced class weights
    (sklearn's default `C=1` underfits unit-norm TF-IDF rows).

    Returns:
        val_macro_f1, val_accuracy (validation split) and test_macro_f1, test_accuracy
        (holdout.csv).
    """
    corpus = load_corpus(scale)
    model = LogisticRegression(C=10.0, class_weight="balanced", max_iter=5000)
    model.fit(corpus.train.matrix, corpus.train.labels)
    out = {}
    for prefix, split in (("val", corpus.val), ("test", corpus.test)):
        pred = model.predict(split.matrix)
        out[f"{prefix}_macro_f1"] = float(f1_score(split.labels, pred, average="macro"))
        out[f"{prefix}_accuracy"] = float(accuracy_score(split.labels, pred))
    return out
