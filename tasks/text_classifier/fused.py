"""The text classifier as a fused training array (see `tasks.fused`).

Members share `batch_size` and `width` and may differ in everything else: learning rate,
weight decay, dropout, the plateau schedule's factor and patience, the training seed and
the epoch already reached. Each member draws its data order and dropout masks from its
own generators, seeded exactly as `TextClassifier.train` seeds them, so member k is the
same computation as training its configuration alone (bit for bit on the CPU in fp32 at
the same thread count; tests/test_fused.py). A member is set up, scheduled, checkpointed
and restored by `tasks.text_classifier.training`'s own `set_up`, `ClassifierProgress` and
`ClassifierState`, so a member resumes alone and a solo checkpoint can join an array.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.nn import functional as F

from suite.types import Member
from tasks import fused
from tasks.text_classifier.features import load_corpus
from tasks.text_classifier.space import SHAPE_KEYS
from tasks.text_classifier.training import (
    ClassifierProgress,
    ClassifierState,
    DeviceSplit,
    holdout_metrics,
    logit_scores,
    make_optimizer,
    set_up,
)
from tasks.training import autocast, resolve_device

__all__ = ["train_fused"]


def train_fused(task, members: Sequence[Member], *, device: str = "auto",
                exact: bool | None = None, test: bool = False) -> fused.FusedTraining:
    """Train `members` as one array; see `tasks.fused.FusedTraining` for what it yields.

    `exact` (default: on the CPU) runs the three ops whose batched form reorders a
    reduction once per member (see `tasks.fused`). `test`: each epoch's metrics also hold
    the member's test metrics, as `TextClassifier.train(test=True)` reports them.

    Raises:
        ConfigError, CheckpointError, SuiteError: as `TextClassifier.train` would for any
            member, and SuiteError when members differ in a shape hyperparameter.
    """
    dev = resolve_device(device)
    run = _FusedRun(task, members, dev, dev.type == "cpu" if exact is None else exact,
                    test)
    return fused.FusedTraining(run, members, test=test)


class _Member:
    """One member's host-side state: its progress (generators, schedule) and tensors."""

    def __init__(self, task, member: Member, device: torch.device) -> None:
        self.cfg, model, resumed = set_up(task, member.config, epochs=member.epochs,
                                          seed=member.seed, resume_from=member.resume_from,
                                          device=device)
        self.shell, self.groups = fused.shell_optimizer(model, make_optimizer, self.cfg, device)
        self.progress = ClassifierProgress(task, self.cfg, member.seed, self.shell, device)
        self.tensors = fused.MemberTensors(model, self.shell, resumed)
        if resumed is not None:
            self.progress.restore(resumed)

    @property
    def lr(self) -> float:
        return self.shell.param_groups[0]["lr"]


class _FusedRun(fused.ArrayRun):
    """The array: stacked parameters, one optimizer, per-member host state."""

    def __init__(self, task, members: Sequence[Member], device: torch.device,
                 exact: bool, test: bool = False) -> None:
        self.task, self.exact = task, exact
        corpus = load_corpus(task.scale)
        self.train, self.val = DeviceSplit(corpus.train, device), DeviceSplit(corpus.val, device)
        self.test = DeviceSplit(corpus.test, device) if test else None
        array = [_Member(task, m, device) for m in members]
        fused.check_same_shape([m.cfg for m in array], SHAPE_KEYS)
        super().__init__(array, list(array[0].tensors.model), device)

    def make_optimizer(self, groups, weight_decay):
        return fused.FusedAdamW(groups, weight_decay, betas=(0.9, 0.999),
                                steps=[0] * len(self.members))

    def forward(self, ids: torch.Tensor, weights: torch.Tensor, train: bool) -> torch.Tensor:
        """Logits [K, N, classes] for member-major ids and weights [K, N, L]."""
        table = self.params["embed.weight"]  # [K, features + 1, width]
        if self.exact:
            hidden = torch.stack([
                F.embedding_bag(i, t, mode="sum", per_sample_weights=w, padding_idx=0)
                for i, w, t in zip(ids, weights, table.unbind(0), strict=True)])
        else:  # member k's rows at k * rows; padding everywhere points at row 0
            k, rows = table.shape[:2]
            shift = torch.arange(k, device=ids.device).view(-1, 1, 1) * rows
            flat = torch.where(ids > 0, ids + shift, 0).flatten(0, 1)
            hidden = F.embedding_bag(flat, table.flatten(0, 1), mode="sum",
                                     per_sample_weights=weights.flatten(0, 1),
                                     padding_idx=0).view(k, -1, table.shape[2])
        if train:
            hidden = self._dropout(hidden)
        head_w, head_b = self.params["head.weight"], self.params["head.bias"]
        return fused.linear(hidden, head_w, head_b, exact=self.exact)

    def _dropout(self, hidden: torch.Tensor) -> torch.Tensor:
        ps = [m.cfg["dropout_p"] for m in self.members]
        keep = torch.stack([
            torch.rand(h.shape, generator=m.progress.dropout, device=h.device) if p > 0
            else torch.ones_like(h) for h, m, p in zip(hidden, self.members, ps, strict=True)])
        kept = keep >= fused.column(ps, hidden, 2)
        return hidden * kept / fused.column([1 - p for p in ps], hidden, 2)

    def train_and_evaluate(self) -> list[dict[str, float]]:
        lrs = [m.lr for m in self.members]  # the rates this epoch trains with
        train_loss = self._train_epoch(lrs)
        scores = self._scores(self.val)
        # The epoch's one host synchronization: every member's metrics in one transfer.
        rows = torch.cat([train_loss[:, None], scores], 1).tolist()
        out = []
        for m, lr, (train, val_loss, accuracy, f1) in zip(self.members, lrs, rows, strict=True):
            m.progress.scheduler.step(val_loss)
            out.append({"val_loss": val_loss, "val_accuracy": accuracy, "val_macro_f1": f1,
                        "train_loss": train, "lr": lr})
        return out

    def test_metrics(self) -> list[dict[str, float]]:
        return [holdout_metrics(row) for row in self._scores(self.test).cpu()]

    def _scores(self, split: DeviceSplit) -> torch.Tensor:
        """[members, (loss, accuracy, macro-F1)] on a whole split, left on the device."""
        k = len(self.members)
        with torch.no_grad(), autocast(self.device):
            logits = self.forward(split.ids.expand(k, -1, -1), split.weights.expand(k, -1, -1),
                                  False)
        return torch.stack([logit_scores(lk.float(), split.labels) for lk in logits])

    def _train_epoch(self, lrs: list[float]) -> torch.Tensor:
        n, bs = len(self.train), self.members[0].cfg["batch_size"]
        perms = torch.stack([m.progress.example_order(n) for m in self.members])
        perms = perms.to(self.device)
        total = torch.zeros(len(self.members), device=self.device)
        for start in range(0, n, bs):
            batch = perms[:, start:start + bs]
            with autocast(self.device):
                logits = self.forward(self.train.ids[batch], self.train.weights[batch], True)
            losses = fused.cross_entropy(logits.float(), self.train.labels[batch],
                                         exact=self.exact)
            self.optimizer.zero_grad()
            losses.sum().backward()
            self.optimizer.step(lrs)
            total += losses.detach() * batch.shape[1]
        for m in self.members:
            m.progress.epoch += 1
        return total / n

    def state(self, slot: int) -> ClassifierState:
        """Member `slot`'s checkpoint, the record its solo run saves."""
        m = self.members[slot]
        return m.progress.state(
            model={n: t[slot].detach().clone() for n, t in self.params.items()},
            optimizer=fused.shell_state_dict(self.optimizer.member_state(slot), m.shell),
            rng=m.tensors.rng)
