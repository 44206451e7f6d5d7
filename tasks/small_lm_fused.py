"""The small LM as a fused training array (see `tasks.fused`).

Members share `batch_size`, `width`, `depth` and `optimizer` (AdamW and SGD keep different
state) and may differ in learning rate, warm-up, schedule and its knobs, weight decay,
momentum, dropout, the training seed and the step already reached. Alone, the GPT draws
its dropout masks (embedding, attention, residual) from the global torch RNG; in the
array member k draws them, in the same order, from a generator holding the state the
global RNG would hold in its solo run. Attention with dropout therefore takes
`scaled_dot_product_attention`'s math path written out (its CPU kernel has no dropout, so
PyTorch takes that path too), and members without dropout take the fused kernel. On the
CPU in fp32 member k is bit for bit its solo run (tests/test_fused.py).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch.nn import functional as F

from suite.config import validate_config
from tasks import fused
from tasks.small_lm import GPT, _make_optimizer, load_corpus, lr_at
from tasks.training import (
    autocast,
    check_epochs,
    load_checkpoint,
    resolve_device,
    rng_state,
    seed_everything,
)

__all__ = ["train_fused", "SHAPE_KEYS"]

SHAPE_KEYS = ("batch_size", "width", "depth", "optimizer")


def train_fused(task, members: Sequence[fused.Member], *, device: str = "auto",
                exact: bool | None = None) -> fused.FusedTraining:
    """Train `members` as one array; see `tasks.fused.FusedTraining` for what it yields."""
    dev = resolve_device(device)
    run = _FusedRun(task, members, dev, dev.type == "cpu" if exact is None else exact)
    return fused.FusedTraining(run, members)


class _Member:
    """One member's host-side state: generators, step, schedule, checkpoint fields."""

    def __init__(self, task, member: fused.Member, vocab: int, device: torch.device) -> None:
        cfg = validate_config(task.config_space(), member.config)
        check_epochs(member.epochs, task.info.fidelity.max_epochs)
        self.cfg = cfg
        seed_everything(member.seed)
        self.model = GPT(vocab, task.context, cfg["width"], cfg["depth"], cfg["dropout"])
        self.model_state = self.model.state_dict()
        self.rng = rng_state()
        # The stream the global RNG would give this run's dropout from here on.
        self.dropout_gen = torch.Generator(device=device)
        if device.type == "cuda":
            self.dropout_gen.manual_seed(member.seed)
        else:
            self.dropout_gen.set_state(self.rng["torch"])
        self.shell, self.groups = fused.shell_optimizer(self.model, _make_optimizer, cfg, device)
        self.order = torch.Generator().manual_seed(member.seed)
        self.epoch, self.step, self.optimizer_state = 0, 0, None
        if member.resume_from is not None:
            self._restore(task, member, device)
        self.lr = self.shell.param_groups[0]["lr"]
        check_epochs(member.epochs, task.info.fidelity.max_epochs, done=self.epoch)

    def _restore(self, task, member: fused.Member, device: torch.device) -> None:
        state = load_checkpoint(member.resume_from, task=task.info.name, config=self.cfg,
                                scale=task.scale)
        self.model_state = state["model"]
        self.optimizer_state = state["optimizer"]["state"]
        self.shell.load_state_dict({"state": {},
                                    "param_groups": state["optimizer"]["param_groups"]})
        self.step, self.epoch = state["scheduler"]["step"], state["epoch"]
        self.order.set_state(state["data_rng"])
        self.rng = state["rng"]
        if device.type == "cuda" and "cuda" in self.rng:
            self.dropout_gen.set_state(self.rng["cuda"][device.index or 0])
        elif device.type == "cpu":
            self.dropout_gen.set_state(self.rng["torch"])

    def rng_now(self) -> dict[str, Any]:
        if self.dropout_gen.device.type == "cuda":
            return {**self.rng, "cuda": [self.dropout_gen.get_state()]}
        return {**self.rng, "torch": self.dropout_gen.get_state()}


class _FusedRun:
    """The array: stacked GPT parameters under their solo names, one optimizer."""

    def __init__(self, task, members: Sequence[fused.Member], device: torch.device,
                 exact: bool) -> None:
        self.task, self.device, self.exact = task, device, exact
        corpus = load_corpus(task.scale)
        self.train, self.val = corpus.train.to(device), corpus.val.to(device)
        self.vocab = len(corpus.vocab)
        self.members = [_Member(task, m, self.vocab, device) for m in members]
        fused.check_same_shape([m.cfg for m in self.members], SHAPE_KEYS)
        template = self.members[0].model
        self.names = [n for n, _ in template.named_parameters()]  # the order clipping sums in
        self.aliases = fused.state_aliases(template)
        self.group_names = self.members[0].groups
        for m in self.members:
            del m.model  # only its state is needed from here on
        self.params = fused.stack_states([m.model_state for m in self.members], self.names,
                                         device)
        self.active = list(range(len(members)))
        self.steps_per_epoch = task.steps_per_epoch(self.members[0].cfg["batch_size"])
        self.heads = max(1, self.members[0].cfg["width"] // 64)
        self._build_optimizer()

    def _build_optimizer(self) -> None:
        groups = [[self.params[n] for n in g] for g in self.group_names]
        wds = [[m.shell.param_groups[i]["weight_decay"] for m in self.members]
               for i in range(len(groups))]
        if self.members[0].cfg["optimizer"] == "sgd":
            self.optimizer = fused.FusedSGD(groups, wds,
                                            momentum=[m.cfg["momentum"] for m in self.members])
        else:
            self.optimizer = fused.FusedAdamW(groups, wds, betas=(0.9, 0.99),
                                              steps=[0] * len(self.members))
        for k, m in enumerate(self.members):
            if m.optimizer_state is not None:
                self.optimizer.load_member(k, m.optimizer_state)

    @property
    def epochs(self) -> list[int]:
        return [m.epoch for m in self.members]

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
        return fused.linear(x, p["tok.weight"])

    def _block(self, x: torch.Tensor, pre: str, ps, gens) -> torch.Tensor:
        p, (k, b, t, c) = self.params, x.shape
        h = fused.layer_norm(x, p[pre + "ln1.weight"], p[pre + "ln1.bias"], exact=self.exact)
        q, key, v = fused.linear(h, p[pre + "qkv.weight"], p[pre + "qkv.bias"]).split(c, dim=3)
        q, key, v = (z.reshape(k * b, t, self.heads, c // self.heads).transpose(1, 2)
                     for z in (q, key, v))
        y = self._attention(q, key, v, ps, gens).transpose(1, 2).reshape(k, b, t, c)
        y = fused.linear(y, p[pre + "proj.weight"], p[pre + "proj.bias"])
        x = x + fused.member_dropout(y, ps, gens)
        h = fused.layer_norm(x, p[pre + "ln2.weight"], p[pre + "ln2.bias"], exact=self.exact)
        h = F.gelu(fused.linear(h, p[pre + "mlp.0.weight"], p[pre + "mlp.0.bias"]))
        h = fused.linear(h, p[pre + "mlp.2.weight"], p[pre + "mlp.2.bias"])
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
        starts = torch.stack([self._starts(m, ctx)[:steps * bs] for m in self.members])
        starts = starts.to(self.device)
        span = torch.arange(ctx + 1, device=self.device)
        max_epochs = self.task.info.fidelity.max_epochs
        params = [self.params[n] for n in self.names]
        total = torch.zeros(len(self.members), device=self.device)
        for i in range(steps):
            lrs = [lr_at(m.step, m.cfg, steps_per_epoch=steps, max_epochs=max_epochs)
                   for m in self.members]
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
                m.step, m.lr = m.step + 1, lr
        for m in self.members:
            m.epoch += 1
        return total / steps

    def _starts(self, m: _Member, ctx: int) -> torch.Tensor:
        """The member's window starts for one epoch, drawn exactly as its solo run draws."""
        offset = int(torch.randint(ctx, (1,), generator=m.order))
        n_windows = (len(self.train) - 1 - offset) // ctx
        return offset + ctx * torch.randperm(n_windows, generator=m.order)

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

    def state(self, slot: int) -> dict[str, Any]:
        """Member `slot`'s checkpoint, in `SmallLM`'s own format."""
        m = self.members[slot]
        for group in m.shell.param_groups:  # the rate of its last step, as alone
            group["lr"] = m.lr
        return {
            "task": self.task.info.name, "scale": self.task.scale, "config": m.cfg,
            "epoch": m.epoch,
            "model": {key: self.params[name][slot].detach().clone()
                      for key, name in self.aliases.items()},
            "optimizer": fused.shell_state_dict(self.optimizer.member_state(slot), m.shell),
            "scheduler": {"step": m.step}, "rng": m.rng_now(),
            "data_rng": m.order.get_state(),
        }

    def keep(self, slots: Sequence[int]) -> None:
        self.members = [self.members[s] for s in slots]
        self.active = [self.active[s] for s in slots]
        if slots:
            self.params = fused.select_state(self.params, slots)
            self.optimizer.keep([self.params[n] for g in self.group_names for n in g], slots)


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
    att = torch._safe_softmax(att + mask, -1)
    k = len(ps)
    att = fused.member_dropout(att.view(k, -1, *att.shape[1:]), ps, gens).flatten(0, 1)
    return torch.matmul(att, v)
