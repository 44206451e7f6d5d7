"""The small LM's model and training loop (torch): a solo run, and what a fused member
shares with it (`set_up`, `LMProgress`, `TrainingState`). The package's docstring
describes data, space and schedule; `SmallLM` loads this module when it trains."""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from suite.config import validate_config
from suite.errors import DataError
from suite.types import EpochResult, Task
from tasks import data
from tasks.small_lm.space import SCALES
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

__all__ = ["train", "evaluate", "GPT", "Block", "lr_at", "LMProgress", "set_up", "new_model",
           "make_optimizer", "load_corpus", "holdout_metrics", "Corpus"]

DATA_FILE = "tinyshakespeare/input.txt"


def train(task: Task, config: Mapping[str, Any], *, epochs: int, seed: int,
          resume_from: Path | None, save_to: Path | None, device: str, test: bool
          ) -> Iterator[EpochResult]:
    """`SmallLM.train`: one `EpochResult` per new epoch (arguments checked at the first)."""
    dev = resolve_device(device)
    cfg, model, resumed = set_up(task, config, epochs=epochs, seed=seed,
                                 resume_from=resume_from)
    progress = LMProgress(task, cfg, seed)
    run = _Run(progress, model, dev)
    if resumed is not None:
        run.restore(resumed)
    timer = EpochTimer(dev)
    while progress.epoch < epochs:
        with timer.measure() as elapsed:
            train_loss = run.train_epoch()
            val_loss = run.evaluate(run.corpus.val)
        metrics = {
            "val_loss": val_loss.item(),
            "val_bpc": val_loss.item() / math.log(2),
            "train_loss": train_loss.item(),
            "lr": run.current_lr(),
        }
        if test:  # after the timed epoch: device_seconds stay training + validation
            metrics.update(holdout_metrics(run.evaluate(run.corpus.test).item()))
        ckpt = save_state(save_to, run.snapshot()) if save_to else None
        yield EpochResult(progress.epoch, metrics, elapsed[0], ckpt)


def evaluate(task: Task, checkpoint: Path, *, device: str) -> dict[str, float]:
    """`SmallLM.evaluate`: test loss (nats/char) and bits per character of a checkpoint."""
    state = load_state(checkpoint, task=task.info.name, scale=task.scale)
    cfg = validate_config(task.config_space(), state.config)
    progress = LMProgress(task, cfg, 0)
    run = _Run(progress, new_model(task, cfg, 0), resolve_device(device))
    run.restore(state)
    return holdout_metrics(run.evaluate(run.corpus.test).item())


@dataclass(frozen=True)
class Corpus:
    vocab: str
    train: torch.Tensor
    val: torch.Tensor
    test: torch.Tensor


@functools.lru_cache(maxsize=2)
def load_corpus(scale: str) -> Corpus:
    """Read, check and encode the text once per process (as CPU int64 tensors)."""
    path = data.fetch(DATA_FILE)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise DataError(f"{path}: not UTF-8 text; replace it with a fresh download") from None
    if len(text) < 100_000:
        raise DataError(f"{path}: only {len(text)} characters, expected about 1.1 million")
    ids, vocab = _encode(text)
    n_train, n_val = int(0.9 * len(ids)), int(0.05 * len(ids))
    train, val, test = ids[:n_train], ids[n_train:n_train + n_val], ids[n_train + n_val:]
    spec = SCALES[scale]
    if spec.train_chars:
        train = train[:spec.train_chars]
    if spec.eval_chars:
        val, test = val[:spec.eval_chars], test[:spec.eval_chars]
    return Corpus(vocab, train, val, test)


def _encode(text: str) -> tuple[torch.Tensor, str]:
    """Characters → ids in sorted-vocabulary order (a byte lookup table: ASCII is common)."""
    vocab = "".join(sorted(set(text)))
    if text.isascii():
        table = np.zeros(128, dtype=np.int64)
        table[[ord(ch) for ch in vocab]] = np.arange(len(vocab))
        return torch.from_numpy(table[np.frombuffer(text.encode(), dtype=np.uint8)]), vocab
    index = {ch: i for i, ch in enumerate(vocab)}
    return torch.tensor([index[ch] for ch in text], dtype=torch.long), vocab


class Block(nn.Module):
    def __init__(self, width: int, dropout: float) -> None:
        super().__init__()
        self.heads = max(1, width // 64)
        self.dropout = dropout
        self.ln1, self.ln2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(),
                                 nn.Linear(4 * width, width))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(c, dim=2)
        q, k, v = (z.view(b, t, self.heads, c // self.heads).transpose(1, 2) for z in (q, k, v))
        p = self.dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=True)
        x = x + self.drop(self.proj(y.transpose(1, 2).reshape(b, t, c)))
        return x + self.drop(self.mlp(self.ln2(x)))


class GPT(nn.Module):
    """A pre-LayerNorm decoder-only transformer with tied input/output embeddings."""

    def __init__(self, vocab: int, context: int, width: int, depth: int, dropout: float):
        super().__init__()
        self.tok = nn.Embedding(vocab, width)
        self.pos = nn.Embedding(context, width)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.Sequential(*(Block(width, dropout) for _ in range(depth)))
        self.ln = nn.LayerNorm(width)
        self.head = nn.Linear(width, vocab, bias=False)
        self.head.weight = self.tok.weight
        self.apply(_init_weights)
        for name, p in self.named_parameters():  # GPT-2's scaled init of residual outputs
            if name.endswith(("proj.weight", "mlp.2.weight")):
                nn.init.normal_(p, std=0.02 / math.sqrt(2 * depth))

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        pos = torch.arange(idx.shape[1], device=idx.device)
        return self.head(self.ln(self.blocks(self.drop(self.tok(idx) + self.pos(pos)))))


def _init_weights(module: nn.Module) -> None:
    if isinstance(module, nn.Linear | nn.Embedding):
        nn.init.normal_(module.weight, std=0.02)
    if isinstance(module, nn.Linear) and module.bias is not None:
        nn.init.zeros_(module.bias)


def lr_at(step: int, cfg: Mapping[str, Any], *, steps_per_epoch: int, max_epochs: int) -> float:
    """Learning rate at a global step; the horizon is always `max_epochs`."""
    total = steps_per_epoch * max_epochs
    warmup = int(cfg["warmup_frac"] * total)
    peak = cfg["lr"]
    if step < warmup:
        return peak * (step + 1) / warmup
    if cfg["schedule"] == "cosine":
        progress = (step - warmup) / max(1, total - warmup)
        floor = peak / 10
        return floor + 0.5 * (peak - floor) * (1 + math.cos(math.pi * min(progress, 1.0)))
    if cfg["schedule"] == "cyclic":
        half = cfg["clr_half_cycle"] * steps_per_epoch
        t = step - warmup
        x = abs(t / half - 2 * math.floor(1 + t / (2 * half)) + 1)
        base = peak / cfg["clr_ratio"]
        return base + (peak - base) * max(0.0, 1 - x)
    return peak


def holdout_metrics(loss: float) -> dict[str, float]:
    """The test metrics of a mean test loss (nats per character)."""
    return {"test_loss": loss, "test_bpc": loss / math.log(2)}


def new_model(task: Task, cfg: Mapping[str, Any], seed: int) -> GPT:
    """A freshly initialized GPT (on the CPU), drawn from the global RNG seeded by `seed`."""
    seed_everything(seed)
    return GPT(len(load_corpus(task.scale).vocab), task.context, cfg["width"], cfg["depth"],
               cfg["dropout"])


def set_up(task: Task, config: Mapping[str, Any], *, epochs: int, seed: int,
           resume_from: Path | None) -> tuple[dict[str, Any], GPT, TrainingState | None]:
    """Check a run's arguments and set up what a solo run and a fused member share: the
    validated configuration, the freshly initialized model and, on resume, the checked
    state to restore from."""
    cfg = validate_config(task.config_space(), config)
    max_epochs = task.info.fidelity.max_epochs
    check_epochs(epochs, max_epochs)
    model, resumed = new_model(task, cfg, seed), None
    if resume_from is not None:
        resumed = load_state(resume_from, task=task.info.name, scale=task.scale, config=cfg)
    check_epochs(epochs, max_epochs, done=resumed.epoch if resumed else 0)
    return cfg, model, resumed


class LMProgress:
    """Where one run stands, apart from its weights and the global RNGs: the validated
    configuration, epoch, global step and data order.

    A solo run and every member of a fused array keep one, so they draw the same windows,
    follow the same schedule and save and restore the same fields of a `TrainingState`.
    """

    def __init__(self, task: Task, cfg: dict[str, Any], seed: int) -> None:
        self.task, self.cfg = task, cfg
        self.order = torch.Generator().manual_seed(seed)  # data order, CPU for portability
        self.steps_per_epoch = task.steps_per_epoch(cfg["batch_size"])
        self.epoch, self.step = 0, 0

    def window_starts(self, n_chars: int) -> torch.Tensor:
        """One epoch's window starts (CPU): `steps_per_epoch` batches of uniform random
        offsets into the `n_chars` training characters, each window `context + 1` long."""
        n = self.steps_per_epoch * self.cfg["batch_size"]
        return torch.randint(n_chars - self.task.context, (n,), generator=self.order)

    def lr(self) -> float:
        """The learning rate of the next step."""
        return lr_at(self.step, self.cfg, steps_per_epoch=self.steps_per_epoch,
                     max_epochs=self.task.info.fidelity.max_epochs)

    def state(self, *, model: dict[str, torch.Tensor], optimizer: dict[str, Any],
              rng: dict[str, Any]) -> TrainingState:
        """The run's checkpoint record, given its weights, optimizer state and RNGs."""
        return TrainingState(
            task=self.task.info.name, scale=self.task.scale, config=self.cfg, epoch=self.epoch,
            model=model, optimizer=optimizer, scheduler={"step": self.step}, rng=rng,
            data_rng=self.order.get_state())

    def restore(self, state: TrainingState) -> None:
        """Continue from a checkpoint's epoch, step and data order."""
        self.epoch, self.step = state.epoch, state.scheduler["step"]
        self.order.set_state(state.data_rng)


class _Run:
    """A solo run: the model and optimizer on the device, and the loop over the corpus."""

    def __init__(self, progress: LMProgress, model: GPT, device: torch.device) -> None:
        self.progress, self.task, self.cfg = progress, progress.task, progress.cfg
        self.device = device
        corpus = load_corpus(self.task.scale)
        self.corpus = Corpus(corpus.vocab, corpus.train.to(device), corpus.val.to(device),
                             corpus.test.to(device))
        self.model = model.to(device)
        self.optimizer = make_optimizer(self.model, self.cfg, device)

    def current_lr(self) -> float:
        return self.optimizer.param_groups[0]["lr"]

    def train_epoch(self) -> torch.Tensor:
        ctx, bs, progress = self.task.context, self.cfg["batch_size"], self.progress
        starts = progress.window_starts(len(self.corpus.train)).to(self.device)
        span = torch.arange(ctx + 1, device=self.device)
        self.model.train()
        total = torch.zeros((), device=self.device)
        for i in range(progress.steps_per_epoch):
            lr = progress.lr()
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            chunk = self.corpus.train[starts[i * bs:(i + 1) * bs, None] + span]
            with autocast(self.device):
                logits = self.model(chunk[:, :-1])
                loss = F.cross_entropy(logits.flatten(0, 1).float(), chunk[:, 1:].flatten())
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
            self.optimizer.step()
            total += loss.detach()
            progress.step += 1
        progress.epoch += 1
        return total / progress.steps_per_epoch

    @torch.no_grad()
    def evaluate(self, ids: torch.Tensor, batch: int = 256) -> torch.Tensor:
        """Mean next-character loss over non-overlapping windows (nats per character)."""
        ctx = self.task.context
        starts = torch.arange(0, len(ids) - ctx - 1, ctx, device=self.device)
        span = torch.arange(ctx + 1, device=self.device)
        self.model.eval()
        total = torch.zeros((), device=self.device)
        for i in range(0, len(starts), batch):
            chunk = ids[starts[i:i + batch, None] + span]
            with autocast(self.device):
                logits = self.model(chunk[:, :-1])
            total += F.cross_entropy(logits.flatten(0, 1).float(), chunk[:, 1:].flatten(),
                                     reduction="sum")
        return total / (len(starts) * ctx)

    def snapshot(self) -> TrainingState:
        return self.progress.state(model=self.model.state_dict(),
                                   optimizer=self.optimizer.state_dict(), rng=rng_state())

    def restore(self, state: TrainingState) -> None:
        self.model.load_state_dict(state.model)
        self.optimizer.load_state_dict(state.optimizer)
        self.progress.restore(state)
        set_rng_state(state.rng)


def make_optimizer(model: nn.Module, cfg: Mapping[str, Any], device: torch.device):
    """The run's optimizer: AdamW (fused kernel on CUDA) or SGD with momentum.

    Decays matrices only; biases, LayerNorm gains and positions are left undecayed. A
    fused array calls it on placeholders to learn the groups and hyperparameters.
    """
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2 and not n.startswith("pos")]
    rest = [p for n, p in model.named_parameters() if p.dim() < 2 or n.startswith("pos")]
    groups = [{"params": decay, "weight_decay": cfg["weight_decay"]},
              {"params": rest, "weight_decay": 0.0}]
    if cfg["optimizer"] == "sgd":
        return torch.optim.SGD(groups, lr=cfg["lr"], momentum=cfg["momentum"])
    return torch.optim.AdamW(groups, lr=cfg["lr"], betas=(0.9, 0.99),
                             fused=device.type == "cuda")
