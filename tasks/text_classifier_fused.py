"""The text classifier as a fused training array (see `tasks.fused`).

Members share `batch_size` and `width` and may differ in everything else: learning rate,
weight decay, dropout, the plateau schedule's factor and patience, the training seed and
the epoch already reached. Each member draws its data order and dropout masks from its
own generators, seeded exactly as `TextClassifier.train` seeds them, so member k is the
same computation as training its configuration alone (bit for bit on the CPU in fp32;
tests/test_fused.py). Checkpoints are the task's ordinary ones, so a member resumes alone
and a solo checkpoint can join an array.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from suite.config import validate_config
from suite.errors import CheckpointError
from tasks import fused
from tasks.text_classifier import (
    NAME,
    BagOfNgrams,
    _check_vocabulary,
    _DeviceSplit,
    _logit_scores,
    _make_optimizer,
    config_space,
)
from tasks.text_features import TAGS, load_corpus
from tasks.training import (
    autocast,
    check_epochs,
    load_checkpoint,
    resolve_device,
    rng_state,
    seed_everything,
)

__all__ = ["train_fused", "SHAPE_KEYS"]

SHAPE_KEYS = ("batch_size", "width")


def train_fused(task, members: Sequence[fused.Member], *, device: str = "auto",
                exact: bool | None = None) -> fused.FusedTraining:
    """Train `members` as one array; see `tasks.fused.FusedTraining` for what it yields.

    `exact` (default: on the CPU) runs the three ops whose batched form reorders a
    reduction once per member (see `tasks.fused`).

    Raises:
        ConfigError, CheckpointError, SuiteError: as `TextClassifier.train` would for any
            member, and SuiteError when members differ in a shape hyperparameter.
    """
    dev = resolve_device(device)
    run = _FusedRun(task, members, dev, dev.type == "cpu" if exact is None else exact)
    return fused.FusedTraining(run, members)


class _Member:
    """One member's host-side state: its generators, schedule and checkpoint fields."""

    def __init__(self, task, member: fused.Member, corpus, device: torch.device) -> None:
        cfg = validate_config(config_space(), member.config)
        check_epochs(member.epochs, task.info.fidelity.max_epochs)
        self.cfg = cfg
        seed_everything(member.seed)  # initialization draws from the global RNG, as alone
        model = BagOfNgrams(corpus.num_features, cfg["width"], len(TAGS), cfg["dropout_p"])
        self.rng = rng_state()
        self.model_state = model.state_dict()
        self.shell, self.groups = fused.shell_optimizer(model, _make_optimizer, cfg, device)
        self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            self.shell, mode="min", factor=cfg["lr_factor"], patience=cfg["lr_patience"])
        order_seed, dropout_seed = np.random.SeedSequence(member.seed % 2**63).generate_state(2)
        self.order = torch.Generator().manual_seed(int(order_seed))
        self.dropout = torch.Generator(device=device).manual_seed(int(dropout_seed))
        self.epoch, self.optimizer_state = 0, None
        if member.resume_from is not None:
            self._restore(task, member, corpus, device)
        check_epochs(member.epochs, task.info.fidelity.max_epochs, done=self.epoch)

    def _restore(self, task, member, corpus, device) -> None:
        path = member.resume_from
        state = load_checkpoint(path, task=NAME, config=self.cfg, scale=task.scale)
        _check_vocabulary(state, corpus, path)
        if state.get("device_type") != device.type:
            raise CheckpointError(f"checkpoint {path} was trained on {state.get('device_type')}; "
                                  "resume it there (its dropout RNG belongs to that device)")
        self.model_state = state["model"]
        self.optimizer_state = state["optimizer"]["state"]
        self.shell.load_state_dict({"state": {}, "param_groups":
                                    state["optimizer"]["param_groups"]})
        self.scheduler.load_state_dict(state["scheduler"])
        self.order.set_state(state["data_rng"])
        self.dropout.set_state(state["dropout_rng"])
        self.rng, self.epoch = state["rng"], state["epoch"]

    @property
    def lr(self) -> float:
        return self.shell.param_groups[0]["lr"]


class _FusedRun:
    """The array: stacked parameters, one optimizer, per-member host state."""

    def __init__(self, task, members: Sequence[fused.Member], device: torch.device,
                 exact: bool) -> None:
        self.task, self.device, self.exact = task, device, exact
        self.corpus = corpus = load_corpus(task.scale)
        self.train, self.val = _DeviceSplit(corpus.train, device), _DeviceSplit(corpus.val, device)
        self.members = [_Member(task, m, corpus, device) for m in members]
        fused.check_same_shape([m.cfg for m in self.members], SHAPE_KEYS)
        self.active = list(range(len(members)))
        self.params = fused.stack_states([m.model_state for m in self.members],
                                         list(self.members[0].model_state), device)
        self.group_names = self.members[0].groups
        self._build_optimizer()

    def _build_optimizer(self) -> None:
        names = self.group_names
        groups = [[self.params[n] for n in g] for g in names]
        wds = [[m.shell.param_groups[i]["weight_decay"] for m in self.members]
               for i in range(len(names))]
        self.optimizer = fused.FusedAdamW(groups, wds, betas=(0.9, 0.999),
                                          steps=[0] * len(self.members))
        for k, m in enumerate(self.members):
            if m.optimizer_state is not None:
                self.optimizer.load_member(k, m.optimizer_state)

    @property
    def epochs(self) -> list[int]:
        return [m.epoch for m in self.members]

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
        return fused.linear(hidden, head_w, head_b)

    def _dropout(self, hidden: torch.Tensor) -> torch.Tensor:
        ps = [m.cfg["dropout_p"] for m in self.members]
        keep = torch.stack([
            torch.rand(h.shape, generator=m.dropout, device=h.device) if p > 0
            else torch.ones_like(h) for h, m, p in zip(hidden, self.members, ps, strict=True)])
        kept = keep >= fused.column(ps, hidden, 2)
        return hidden * kept / fused.column([1 - p for p in ps], hidden, 2)

    def train_and_evaluate(self) -> list[dict[str, float]]:
        lrs = [m.lr for m in self.members]  # the rates this epoch trains with
        train_loss = self._train_epoch(lrs)
        with torch.no_grad(), autocast(self.device):
            logits = self.forward(self.val.ids.expand(len(self.members), -1, -1),
                                  self.val.weights.expand(len(self.members), -1, -1), False)
        scores = torch.stack([_logit_scores(lk.float(), self.val.labels) for lk in logits])
        # The epoch's one host synchronization: every member's metrics in one transfer.
        rows = torch.cat([train_loss[:, None], scores], 1).tolist()
        out = []
        for m, lr, (train, val_loss, accuracy, f1) in zip(self.members, lrs, rows, strict=True):
            m.scheduler.step(val_loss)
            out.append({"val_loss": val_loss, "val_accuracy": accuracy, "val_macro_f1": f1,
                        "train_loss": train, "lr": lr})
        return out

    def _train_epoch(self, lrs: list[float]) -> torch.Tensor:
        n, bs = len(self.train), self.members[0].cfg["batch_size"]
        perms = torch.stack([torch.randperm(n, generator=m.order) for m in self.members])
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
            m.epoch += 1
        return total / n

    def state(self, slot: int) -> dict[str, Any]:
        """Member `slot`'s checkpoint, in `TextClassifier`'s own format."""
        m = self.members[slot]
        return {
            "task": NAME, "scale": self.task.scale, "config": m.cfg, "epoch": m.epoch,
            "features": self.corpus.fingerprint, "device_type": self.device.type,
            "model": {n: t[slot].detach().clone() for n, t in self.params.items()},
            "optimizer": fused.shell_state_dict(self.optimizer.member_state(slot), m.shell),
            "scheduler": m.scheduler.state_dict(), "rng": m.rng,
            "data_rng": m.order.get_state(), "dropout_rng": m.dropout.get_state(),
        }

    def keep(self, slots: Sequence[int]) -> None:
        self.members = [self.members[s] for s in slots]
        self.active = [self.active[s] for s in slots]
        if slots:
            self.params = fused.select_state(self.params, slots)
            self.optimizer.keep([self.params[n] for g in self.group_names for n in g], slots)
