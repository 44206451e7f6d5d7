"""The text classifier's model and training loop (torch): a solo run, and what a fused
member shares with it (`set_up`, `ClassifierProgress`, `ClassifierState`). The package's
docstring describes data, model and space; `TextClassifier` loads this module when it
trains."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from torch import nn
from torch.nn import functional as F

from suite.config import validate_config
from suite.errors import CheckpointError
from suite.types import EpochResult, Task
from tasks.text_classifier.features import TAGS, Corpus, Split, load_corpus
from tasks.text_classifier.space import NAME, config_space
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

__all__ = ["train", "evaluate", "BagOfNgrams", "tfidf_baseline", "macro_f1",
           "ClassifierState", "ClassifierProgress", "set_up", "new_model", "make_optimizer",
           "DeviceSplit", "logit_scores", "holdout_metrics"]


def train(task: Task, config: Mapping[str, Any], *, epochs: int, seed: int,
          resume_from: Path | None, save_to: Path | None, device: str, test: bool
          ) -> Iterator[EpochResult]:
    """`TextClassifier.train` (its docstring says what it checks and yields)."""
    dev = resolve_device(device)
    cfg, model, resumed = set_up(task, config, epochs=epochs, seed=seed,
                                 resume_from=resume_from, device=dev)
    run = _Run(task, cfg, seed, model, dev, test=test)
    if resumed is not None:
        run.restore(resumed)
    return _epochs(run, epochs, save_to)


def evaluate(task: Task, checkpoint: Path, *, device: str) -> dict[str, float]:
    """`TextClassifier.evaluate`: the test metrics of a checkpoint's model."""
    state = load_state(checkpoint, task=NAME, scale=task.scale, kind=ClassifierState)
    cfg = validate_config(config_space(), state.config)
    dev = resolve_device(device)
    corpus = load_corpus(task.scale)
    _check_vocabulary(state, corpus, checkpoint)
    model = BagOfNgrams(corpus.num_features, cfg["width"], len(TAGS), cfg["dropout_p"])
    model.load_state_dict(state.model)
    return holdout_metrics(_scores(model.to(dev), DeviceSplit(corpus.test, dev), dev))


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


def set_up(task: Task, config: Mapping[str, Any], *, epochs: int, seed: int,
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

    def __init__(self, task: Task, cfg: dict[str, Any], seed: int,
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

    def __init__(self, task: Task, cfg: dict, seed: int, model: BagOfNgrams,
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
