"""The small LM as a fused training array (see `tasks.fused`).

Members share `batch_size`, `width`, `depth` and `optimizer` (AdamW and SGD keep different
state) and may differ in learning rate, warm-up, schedule and its knobs, weight decay,
momentum, dropout, the training seed and the step already reached. Alone, the GPT draws
its dropout masks (embedding, attention, residual) from the global torch RNG; in the
array member k draws them, in the same order, from a generator holding the state the
global RNG would hold in its solo run. Attention with dropout therefore takes
`scaled_dot_product_attention`'s math path written out (its CPU kernel has no dropout, so
PyTorch takes that path too), and members without dropout take the fused kernel. On the
CPU in fp32 member k is bit for bit its solo run at the same thread count
(tests/test_fused.py; `tasks.fused` says what that promise covers). A member is set up,
scheduled, checkpointed and restored by `tasks.small_lm.training`'s own `set_up`, `LMProgress` and
`TrainingState`, so a member resumes alone and a solo checkpoint joins an array.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch.nn import functional as F

from suite.types import Member
from tasks import fused
from tasks.small_lm.space import SHAPE_KEYS
from tasks.small_lm.training import (
    LMProgress,
    holdout_metrics,
    load_corpus,
    make_optimizer,
    set_up,
)
from tasks.training import TrainingState, autocast, resolve_device

__all__ = ["train_fused"]


def train_fused(task, members: Sequence[Member], *, device: str = "auto",
                exact: bool | None = None, test: bool = False) -> fused.FusedTraining:
    """Train `members` as one array; see `tasks.fused.FusedTraining` for what it yields
    (with `test`, each member's test metrics too, as `SmallLM.train(test=True)`)."""
    dev = resolve_device(device)
    run = _FusedRun(task, members, dev, dev.type == "cpu" if exact is None else exact)
    if test:
        run.test = load_corpus(task.scale).test.to(dev)
    return fused.FusedTraining(run, members, test=test)


class _Member:
    """One member's host-side state: its progress, dropout stream and checkpoint fields."""

    def __init__(self, task, member: Member, device: torch.device) -> None:
        self.cfg, self.model, resumed = set_up(task, member.config, epochs=member.epochs,
                                               seed=member.seed, resume_from=member.resume_from)
        self.progress = LMProgress(task, self.cfg, member.seed)
        self.shell, self.groups = fused.shell_optimizer(self.model, make_optimizer, self.cfg,
                                                        device)
        self.tensors = fused.MemberTensors(self.model, self.shell, resumed)
        if resumed is not None:
            self.progress.restore(resumed)
        # The stream the global RNG would give this run's dropout from here on.
        rng = self.tensors.rng
        self.dropout_gen = torch.Generator(device=device)
        if device.type == "cpu":
            self.dropout_gen.set_state(rng["torch"])
        elif resumed is not None and "cuda" in rng:
            self.dropout_gen.set_state(rng["cuda"][device.index or 0])
        else:
            self.dropout_gen.manual_seed(member.seed)
        self.lr = self.shell.param_groups[0]["lr"]  # the rate of its last step, as alone

    def rng_now(self) -> dict[str, Any]:
        if self.dropout_gen.device.type == "cuda":
            return {**self.tensors.rng, "cuda": [self.dropout_gen.get_state()]}
        return {**self.tensors.rng, "torch": self.dropout_gen.get_state()}


class _FusedRun(fused.ArrayRun):
    """The array: stacked GPT parameters under their solo names, one optimizer."""

    def __init__(self, task, members: Sequence[Member], device: torch.device,
                 exact: bool) -> None:
        self.task, self.exact = task, exact
        corpus = load_corpus(task.scale)
        self.train, self.val = corpus.train.to(device), corpus.val.to(device)
        self.vocab = len(corpus.vocab)
        array = [_Member(task, m, device) for m in members]
        fused.check_same_shape([m.cfg for m in array], SHAPE_KEYS)
        template = array[0].model
        self.names = [n for n, _ in template.named_parameters()]  # the order clipping sums in
        self.aliases = fused.state_aliases(template)
        for m in array:
            del m.model  # only its state is needed from here on
        super().__init__(array, self.names, device)
        self.steps_per_epoch = array[0].progress.steps_per_epoch
        self.heads = max(1, array[0].cfg["width"] // 64)

    def make_optimizer(self, groups, weight_decay):
        if self.members[0].cfg["optimizer"] == "sgd":
            return fused.FusedSGD(groups, weight_decay,
                                  momentum=[m.cfg["momentum"] for m in self.members])
        return fused.FusedAdamW(groups, weight_decay, betas=(0.9, 0.99),
                                steps=[0] * len(self.members))

    # -- the model ------------------------------------------------------------------------

    def forward(self, idx: torch.Tensor, train: bool) -> torch.Tensor:
        """Logits [K, B, T, vocab] for member-major windows idx [K, B, T]."""
        p, k, t = self.params, idx.shape[0], idx.shape[2]
        ps = [m.cfg["dropout"] if train else 0.0 for m in self.members]
        gens = [m.dropout_gen for m in self.members]
        shift = torch.arange(k, device=idx.device).view(-1, 1, 1) * self.vocab
        x = F.embedding(idx + shift, p["tok.weight"].flatten(0, 1))
        x = fused.member_dropout(x + p["pos.weight"][:, :t].unsqueeze(1), ps, gens)
        for i in range(self.members[0].cfg["depth"]):
            x = self._block(x, f"blocks.{i}.", ps, gens)
        x = fused.layer_norm(x, p["ln.weight"], p["ln.bias"], exact=self.exact)
        return fused.linear(x, p["tok.weight"], exact=self.exact)

    def _block(self, x: torch.Tensor, pre: str, ps, gens) -> torch.Tensor:
        p, (k, b, t, c) = self.params, x.shape
        h = fused.layer_norm(x, p[pre + "ln1.weight"], p[pre + "ln1.bias"], exact=self.exact)
        q, key, v = fused.linear(h, p[pre + "qkv.weight"], p[pre + "qkv.bias"],
                                   exact=self.exact).split(c, dim=3)
        q, key, v = (z.reshape(k * b, t, self.heads, c // self.heads).transpose(1, 2)
                     for z in (q, key, v))
        y = self._attention(q, key, v, ps, gens).transpose(1, 2).reshape(k, b, t, c)
        y = fused.linear(y, p[pre + "proj.weight"], p[pre + "proj.bias"], exact=self.exact)
        x = x + fused.member_dropout(y, ps, gens)
        h = fused.layer_norm(x, p[pre + "ln2.weight"], p[pre + "ln2.bias"], exact=self.exact)
        h = F.gelu(fused.linear(h, p[pre + "mlp.0.weight"], p[pre + "mlp.0.bias"],
                                exact=self.exact))
        h = fused.linear(h, p[pre + "mlp.2.weight"], p[pre + "mlp.2.bias"], exact=self.exact)
        return x + fused.member_dropout(h, ps, gens)

    def _attention(self, q, key, v, ps, gens) -> torch.Tensor:
        """Causal attention over [K*B, heads, T, head width]; see the module docstring."""
        k = len(ps)
        math_members = [i for i, p in enumerate(ps) if p > 0]
        if not math_members:
            return F.scaled_dot_product_attention(q, key, v, is_causal=True)
        if len(math_members) == k:
            return _math_attention(q, key, v, ps, gens)
        flash_members = [i for i, p in enumerate(ps) if p == 0]
        b = q.shape[0] // k

        def pick(z, members):
            index = torch.tensor(members, device=z.device)
            return z.view(k, b, *z.shape[1:]).index_select(0, index).flatten(0, 1)

        parts = [
            F.scaled_dot_product_attention(*(pick(z, flash_members) for z in (q, key, v)),
                                           is_causal=True),
            _math_attention(*(pick(z, math_members) for z in (q, key, v)),
                            [ps[i] for i in math_members], [gens[i] for i in math_members]),
        ]
        order = torch.tensor(flash_members + math_members).argsort().to(q.device)
        y = torch.cat([z.view(-1, b, *z.shape[1:]) for z in parts])
        return y.index_select(0, order).flatten(0, 1)

    # -- training -------------------------------------------------------------------------

    def train_and_evaluate(self) -> list[dict[str, float]]:
        train_loss = self._train_epoch()
        val_loss = self._evaluate(self.val)
        rows = torch.stack([train_loss, val_loss], 1).tolist()  # the epoch's one sync
        return [{"val_loss": val, "val_bpc": val / math.log(2), "train_loss": train,
                 "lr": m.lr} for m, (train, val) in zip(self.members, rows, strict=True)]

    def _train_epoch(self) -> torch.Tensor:
        ctx, bs, steps = self.task.context, self.members[0].cfg["batch_size"], self.steps_per_epoch
        starts = torch.stack([m.progress.window_starts(len(self.train))
                              for m in self.members]).to(self.device)
        span = torch.arange(ctx + 1, device=self.device)
        params = [self.params[n] for n in self.names]
        total = torch.zeros(len(self.members), device=self.device)
        for i in range(steps):
            lrs = [m.progress.lr() for m in self.members]
            chunk = self.train[starts[:, i * bs:(i + 1) * bs, None] + span]
            with autocast(self.device):
                logits = self.forward(chunk[..., :-1], train=True)
                losses = fused.cross_entropy(logits.flatten(1, 2).float(),
                                             chunk[..., 1:].flatten(1), exact=self.exact)
            self.optimizer.zero_grad()
            losses.sum().backward()
            fused.clip_grad_norm(params, 1.0)
            self.optimizer.step(lrs)
            total += losses.detach()
            for m, lr in zip(self.members, lrs, strict=True):
                m.progress.step, m.lr = m.progress.step + 1, lr
        for m in self.members:
            m.progress.epoch += 1
        return total / steps

    def test_metrics(self) -> list[dict[str, float]]:
        return [holdout_metrics(loss) for loss in self._evaluate(self.test).tolist()]

    @torch.no_grad()
    def _evaluate(self, ids: torch.Tensor, batch: int = 256) -> torch.Tensor:
        """Each member's mean next-character loss over the split's windows."""
        ctx, k = self.task.context, len(self.members)
        starts = torch.arange(0, len(ids) - ctx - 1, ctx, device=self.device)
        span = torch.arange(ctx + 1, device=self.device)
        total = torch.zeros(k, device=self.device)
        for i in range(0, len(starts), batch):
            chunk = ids[starts[i:i + batch, None] + span].expand(k, -1, -1)
            with autocast(self.device):
                logits = self.forward(chunk[..., :-1], train=False)
            logits, target = logits.flatten(1, 2).float(), chunk[..., 1:].flatten(1)
            if self.exact:
                total += torch.stack([F.cross_entropy(lk, tk, reduction="sum")
                                      for lk, tk in zip(logits, target, strict=True)])
            else:
                total += F.cross_entropy(logits.flatten(0, 1), target.flatten(),
                                         reduction="none").view(k, -1).sum(1)
        return total / (len(starts) * ctx)

    # -- members --------------------------------------------------------------------------

    def state(self, slot: int) -> TrainingState:
        """Member `slot`'s checkpoint, the record its solo run saves."""
        m = self.members[slot]
        for group in m.shell.param_groups:  # the rate of its last step, as alone
            group["lr"] = m.lr
        return m.progress.state(
            model={key: self.params[name][slot].detach().clone()
                   for key, name in self.aliases.items()},
            optimizer=fused.shell_state_dict(self.optimizer.member_state(slot), m.shell),
            rng=m.rng_now())


def _math_attention(q, key, v, ps: Sequence[float], gens) -> torch.Tensor:
    """`scaled_dot_product_attention`'s math path (causal, dropout) with per-member masks.

    Op for op what PyTorch runs for a solo model on the CPU when dropout is on, so the
    results and gradients are the same bits.
    """
    t = q.shape[-2]
    scale = math.sqrt(1 / math.sqrt(q.shape[-1]))
    causal = torch.ones(t, t, dtype=torch.bool, device=q.device).tril()
    mask = torch.zeros(t, t, dtype=q.dtype, device=q.device).masked_fill(~causal, -math.inf)
    att = torch.matmul(q * scale, key.transpose(-2, -1) * scale)
    # The math path's `_safe_softmax` differs from softmax only on fully masked rows, and
    # a causal mask leaves every row its diagonal: the public op gives the same bits.
    att = torch.softmax(att + mask, -1)
    k = len(ps)
    att = fused.member_dropout(att.view(k, -1, *att.shape[1:]), ps, gens).flatten(0, 1)
    return torch.matmul(att, v)
