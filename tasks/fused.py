"""Pieces of fused training arrays: K same-shape configurations trained as one model.

Every parameter carries a leading member dimension K; per-member hyperparameters
(learning rate, weight decay, momentum, dropout) are float32 columns broadcast over it.
The ops are chosen so that, on the CPU in fp32, member k computes exactly what the same
configuration computes alone through its task's `train()` on the same CPU at the same
torch thread count (the promise is about running the same kernels on the same inputs: a
solo run itself changes in the last bits with the thread count, since a GEMM may split a
long sum over threads; measured for the small LM at `--scale tiny`, 1 against 2 threads
after 2 epochs: weights up to 3.1e-6 apart, validation loss 2.4e-7):

- `linear`: with `exact` each member runs the ATen calls `F.linear` and its autograd run
  for one matrix (`addmm`, and `mm` for each gradient in `F.linear`'s layouts), so it is
  bit for bit at any thread count. The batched `baddbmm`/`bmm` form (`exact=False`) is
  not: at 2 threads `mm` splits a weight gradient's sum over 1,024 rows or more across
  threads on some CPUs (AVX-512) and `bmm` does not, ~1e-5 apart.
- `Tensor.add(other, alpha=a)` rounds once (a fused multiply-add); `torch.addcmul(x, y,
  a_column)` is the batched op that rounds the same way. `addcdiv` computes
  `(value * t1) / t2`, never `value * (t1 / t2)`.
- A few batched forms are *not* bit-identical to their solo ops, because their reductions
  run in another order: `F.embedding_bag`'s backward (it sorts indices), the affine
  gradients of `F.layer_norm`, and the mean of `F.cross_entropy`. With `exact=True` (the
  default on the CPU) those three and `linear` run per member; on CUDA (`exact=False`) they
  run batched,
  where solo bf16 runs are not reproducible bit for bit anyway.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from torch.nn import functional as F

from suite.errors import SuiteError
from suite.types import EpochResult, Member
from tasks.training import EpochTimer, TrainingState, rng_state, save_state

__all__ = ["linear", "FusedTraining", "ArrayRun", "MemberTensors", "shell_optimizer",
           "state_aliases", "select_state", "column", "FusedAdamW", "FusedSGD",
           "member_dropout", "layer_norm", "cross_entropy", "clip_grad_norm",
           "shell_state_dict", "stack_states", "check_same_shape"]


class FusedTraining:
    """Iterates a fused run one array epoch at a time.

    Each step yields `(member index, EpochResult)` for every member still in the array.
    A member's device-seconds are its share of the epoch (the epoch's time / members
    trained), so the shares of one epoch add up to the time the device spent on it. With
    `test`, each member's metrics also hold its test metrics (`ArrayRun.test_metrics`),
    evaluated after the timed epoch. A
    member leaves after its target epoch, or at once by `drop(index)` (a cancelled or
    cut trial); the others continue undisturbed.
    """

    def __init__(self, run: ArrayRun, members: Sequence[Member], *, test: bool = False) -> None:
        self.run, self.members, self.test = run, list(members), test
        self._timer = EpochTimer(run.device)

    def __iter__(self) -> Iterator[list[tuple[int, EpochResult]]]:
        return self

    def __next__(self) -> list[tuple[int, EpochResult]]:
        run = self.run
        if not run.active:
            raise StopIteration
        with self._timer.measure() as elapsed:
            metrics = run.train_and_evaluate()
        share = elapsed[0] / len(run.active)
        if self.test:  # after the timed epoch: its device-seconds stay training + validation
            metrics = [{**m, **t} for m, t in zip(metrics, run.test_metrics(), strict=True)]
        out = []
        for slot, index in enumerate(run.active):
            save_to = self.members[index].save_to
            ckpt = save_state(save_to, run.state(slot)) if save_to else None
            out.append((index, EpochResult(run.epochs[slot], metrics[slot], share, ckpt)))
        self._keep(lambda slot, index: run.epochs[slot] < self.members[index].epochs)
        return out

    def drop(self, index: int) -> None:
        """Take a member out of the array before its next epoch."""
        self._keep(lambda slot, i: i != index)

    def _keep(self, predicate: Callable[[int, int], bool]) -> None:
        slots = [s for s, i in enumerate(self.run.active) if predicate(s, i)]
        if len(slots) < len(self.run.active):
            self.run.keep(slots)


class ArrayRun:
    """What every task's fused run shares: the members in array order, their parameters
    stacked by name under one fused optimizer, and members leaving.

    Each member has `progress` (its epoch), `groups` and `shell` (from `shell_optimizer`)
    and `tensors` (`MemberTensors`). A task's run subclasses it with its forward pass and
    vectorized step (`train_and_evaluate`), `state(slot)` and `make_optimizer`.
    """

    def __init__(self, members: Sequence[Any], names: Sequence[str],
                 device: torch.device) -> None:
        self.members, self.device = list(members), device
        self.active = list(range(len(self.members)))  # indices into the members given
        self.group_names = self.members[0].groups
        self.params = stack_states([m.tensors.model for m in self.members], names, device)
        groups = [[self.params[n] for n in g] for g in self.group_names]
        wds = [[m.shell.param_groups[i]["weight_decay"] for m in self.members]
               for i in range(len(groups))]
        self.optimizer = self.make_optimizer(groups, wds)
        for k, m in enumerate(self.members):
            if m.tensors.optimizer is not None:
                self.optimizer.load_member(k, m.tensors.optimizer)

    def make_optimizer(self, groups: list[list[torch.Tensor]],
                       weight_decay: list[list[float]]) -> _FusedOptimizer:
        """The task's fused optimizer over the stacked groups (per-member weight decay)."""
        raise NotImplementedError

    def train_and_evaluate(self) -> list[dict[str, float]]:
        """One epoch for every member in the array; each one's metrics, in array order."""
        raise NotImplementedError

    def test_metrics(self) -> list[dict[str, float]]:
        """Every member's test metrics now (what its solo run reports with `test=True`),
        in array order; draws from no random stream."""
        raise NotImplementedError

    def state(self, slot: int) -> TrainingState:
        """The checkpoint of the member at `slot`: the record its solo run would save."""
        raise NotImplementedError

    @property
    def epochs(self) -> list[int]:
        """Epochs trained, per member still in the array."""
        return [m.progress.epoch for m in self.members]

    def keep(self, slots: Sequence[int]) -> None:
        """Keep only the members at these positions of the array, in order."""
        self.members = [self.members[s] for s in slots]
        self.active = [self.active[s] for s in slots]
        if slots:
            self.params = select_state(self.params, slots)
            self.optimizer.keep([self.params[n] for g in self.group_names for n in g], slots)


class _Named:
    """Duck-types a module's `parameters()` for a task's optimizer factory."""

    def __init__(self, tensors: dict[str, torch.Tensor]) -> None:
        self._tensors = tensors

    def named_parameters(self):
        return iter(self._tensors.items())

    def parameters(self):
        return iter(self._tensors.values())


def shell_optimizer(model: torch.nn.Module, make_optimizer: Callable, cfg: dict,
                    device: torch.device) -> tuple[torch.optim.Optimizer, list[list[str]]]:
    """The task's own optimizer for one member, built over empty placeholders.

    It holds the member's hyperparameters (and a scheduler can drive its learning rate),
    and says how the task groups parameters: the names in each group, in the order
    `torch.optim` numbers its state.
    """
    holders = {n: torch.empty((0,) * p.dim(), device=device)
               for n, p in model.named_parameters()}
    shell = make_optimizer(_Named(holders), cfg, device)
    names = {id(t): n for n, t in holders.items()}
    return shell, [[names[id(p)] for p in g["params"]] for g in shell.param_groups]


class MemberTensors:
    """A member's tensors before they join the array, fresh or from the state it resumes.

    Attributes:
        model: the model's state dict (the freshly initialized model's, or the checkpoint's).
        optimizer: per-parameter optimizer state as `torch.optim` indexes it; None if fresh.
        rng: the global RNGs as its solo run holds them at this point (`rng_state()`).
    """

    def __init__(self, model: torch.nn.Module, shell: torch.optim.Optimizer,
                 resumed: TrainingState | None) -> None:
        if resumed is None:  # right after the model's initialization, as a solo run
            self.model, self.optimizer, self.rng = model.state_dict(), None, rng_state()
            return
        self.model, self.rng = resumed.model, resumed.rng
        self.optimizer = resumed.optimizer["state"]
        # The shell takes on the checkpoint's hyperparameters (the plateau-reduced rate).
        shell.load_state_dict({"state": {}, "param_groups": resumed.optimizer["param_groups"]})


def state_aliases(model: torch.nn.Module) -> dict[str, str]:
    """state_dict key → parameter name (tied weights appear under several keys)."""
    by_ptr = {p.data_ptr(): n for n, p in model.named_parameters()}
    return {key: by_ptr[t.data_ptr()] for key, t in model.state_dict().items()}


def select_state(tensors: dict[str, torch.Tensor], slots: Sequence[int]) -> dict:
    """Keep the given members of stacked leaf tensors (new leaves, requiring grad)."""
    index = torch.tensor(list(slots), device=next(iter(tensors.values())).device)
    return {n: t.detach().index_select(0, index).requires_grad_() for n, t in tensors.items()}



class _Linear(torch.autograd.Function):
    """x [K, N, in] @ w[K, out, in].T + b[K, out], with `F.linear`'s gradient layouts.

    `exact` runs every member through the very ATen calls `F.linear` and its autograd make
    for one matrix ([N, in] rows): `addmm`/`mm` forward, `g @ w` for the input, `g.T @ x`
    for the weight, `g.sum(0)` for the bias. The batched `bmm` forms give the same numbers
    only while the CPU's GEMM does not split the reduction over threads: at 2 threads and
    N of about 1,024 rows or more (the small LM's batch x context) the weight gradient's
    `bmm` sums the rows in another order than `mm` on some CPUs (AVX-512), off by ~1e-5.
    """

    @staticmethod
    @torch.amp.custom_fwd(device_type="cuda")
    def forward(ctx, x, w, b, exact):
        ctx.save_for_backward(x, w)
        ctx.has_bias, ctx.exact = b is not None, exact
        if exact:
            return torch.stack([torch.mm(xk, wk.t()) if b is None else
                                torch.addmm(b[k], xk, wk.t())
                                for k, (xk, wk) in enumerate(zip(x, w, strict=True))])
        if b is None:
            return torch.bmm(x, w.transpose(1, 2))
        return torch.baddbmm(b.unsqueeze(1), x, w.transpose(1, 2))

    @staticmethod
    @torch.amp.custom_bwd(device_type="cuda")
    def backward(ctx, g):
        x, w = ctx.saved_tensors
        if ctx.exact:  # the per-member calls of `mm`'s and `addmm`'s own backward
            gx = (torch.stack([torch.mm(gk, wk) for gk, wk in zip(g, w, strict=True)])
                  if ctx.needs_input_grad[0] else None)
            gw = torch.stack([torch.mm(gk.t(), xk) for gk, xk in zip(g, x, strict=True)])
            gb = torch.stack([gk.sum(0) for gk in g]) if ctx.has_bias else None
            return gx, gw, gb, None
        gx = torch.bmm(g, w.to(g.dtype)).to(x.dtype) if ctx.needs_input_grad[0] else None
        gw = torch.bmm(g.transpose(1, 2), x.to(g.dtype)).to(w.dtype)
        gb = g.sum(1).to(w.dtype) if ctx.has_bias else None
        return gx, gw, gb, None


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None, *,
           exact: bool = False) -> torch.Tensor:
    """`F.linear` per member: x [K, ..., in], weight [K, out, in], bias [K, out] or None.

    With `exact` (the CPU default of both tasks' fused runs) member k's output and
    gradients are bit for bit `F.linear`'s alone at any thread count (the same ATen calls
    on the same shapes); batched (`exact=False`, CUDA) they differ by rounding.
    """
    shape = x.shape
    out = _Linear.apply(x.reshape(shape[0], -1, shape[-1]), weight, bias, exact)
    return out.view(*shape[:-1], weight.shape[1])


def column(values: Sequence[float], like: torch.Tensor, dims: int = 1) -> torch.Tensor:
    """Per-member Python floats → a float32 tensor [K, 1, ...] that broadcasts over `dims`.

    Values are rounded to float32 once, exactly as a Python scalar is inside an ATen kernel.
    """
    out = torch.tensor(list(values), dtype=torch.float32)
    if like.device.type == "cuda":  # a pinned, non-blocking copy: no host synchronization
        out = out.pin_memory().to(like.device, non_blocking=True)
    return out.view(-1, *([1] * dims))


def check_same_shape(configs: Sequence[dict[str, Any]], keys: Sequence[str]) -> None:
    """Members of one array must agree on every shape hyperparameter."""
    for key in keys:
        values = {c.get(key) for c in configs}
        if len(values) > 1:
            raise SuiteError(f"a fused array needs one {key} for all members, got "
                             f"{sorted(values, key=str)}")


def stack_states(states: Sequence[dict[str, torch.Tensor]], names: Sequence[str],
                 device: torch.device) -> dict[str, torch.Tensor]:
    """Per-member state dicts → one stacked leaf tensor per name, requiring grad."""
    return {n: torch.stack([s[n] for s in states]).to(device).requires_grad_() for n in names}


def member_dropout(x: torch.Tensor, ps: Sequence[float],
                   generators: Sequence[torch.Generator]) -> torch.Tensor:
    """`F.dropout` per member with member k's masks drawn from `generators[k]`.

    On the CPU each mask is the one `F.dropout` would draw from that generator's state
    (`bernoulli_(1 - p)` then `div_(1 - p)`); a member with p = 0 draws nothing, as alone.
    """
    if not any(ps):
        return x
    noise = torch.ones_like(x)
    for k, (p, gen) in enumerate(zip(ps, generators, strict=True)):
        if p > 0:
            noise[k].bernoulli_(1 - p, generator=gen).div_(1 - p)
    return x * noise


def layer_norm(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, *,
               exact: bool) -> torch.Tensor:
    """LayerNorm over the last dimension with per-member affine parameters [K, W].

    The batched form (normalize, then `addcmul`) equals `F.layer_norm` in the forward pass
    but accumulates the weight and bias gradients in another order.
    """
    if exact:
        return torch.stack([F.layer_norm(xk, xk.shape[-1:], wk, bk)
                            for xk, wk, bk in zip(x, weight, bias, strict=True)])
    shape = (weight.shape[0],) + (1,) * (x.dim() - 2) + (weight.shape[1],)
    return torch.addcmul(bias.view(shape), F.layer_norm(x, x.shape[-1:]), weight.view(shape))


def cross_entropy(logits: torch.Tensor, labels: torch.Tensor, *, exact: bool) -> torch.Tensor:
    """Mean cross-entropy per member: logits [K, N, C], labels [K, N] → [K]."""
    if exact:
        return torch.stack([F.cross_entropy(lk, yk) for lk, yk in zip(logits, labels,
                                                                       strict=True)])
    k, n = labels.shape
    return F.cross_entropy(logits.flatten(0, 1), labels.flatten(), reduction="none").view(
        k, n).mean(1)


def clip_grad_norm(params: Sequence[torch.Tensor], max_norm: float) -> None:
    """`nn.utils.clip_grad_norm_` per member: each member's total 2-norm over its slices."""
    norms = torch.stack([torch.linalg.vector_norm(p.grad.flatten(1), 2, dim=1)
                         for p in params], 1)
    total = torch.linalg.vector_norm(norms, 2, dim=1)
    coef = torch.clamp(max_norm / (total + 1e-6), max=1.0)
    for p in params:
        p.grad.mul_(coef.view(-1, *([1] * (p.dim() - 1))))


class _FusedOptimizer:
    """Parameter groups of stacked tensors; per-member hyperparameters set per step.

    A step works on each group as one flat [K, N] tensor (its parameters, gradients and
    state concatenated member by member): a dozen kernels per group instead of a dozen per
    parameter, and one host-to-device copy per per-member column per group. On a GPU a
    small model's optimizer step is launch-bound, so the per-parameter loop cost more than
    the step's arithmetic. Elementwise, the flat step is the same operations in the same
    order as `torch.optim`'s single-tensor path, so on the CPU it stays bit for bit.
    The state lives in flat buffers; `self.state[id(p)]` holds views of them, in the
    per-parameter layout checkpoints use.
    """

    state_keys: tuple[str, ...] = ()

    def __init__(self, groups: Sequence[Sequence[torch.Tensor]],
                 weight_decay: Sequence[Sequence[float]]) -> None:
        self.groups = [list(g) for g in groups]
        self.weight_decay = [list(w) for w in weight_decay]  # [group][member]
        self._flatten_state({id(p): {key: torch.zeros_like(p) for key in self.state_keys}
                             for g in self.groups for p in g})

    def _flatten_state(self, state: dict[int, dict[str, torch.Tensor]]) -> None:
        """One [K, N] buffer per group and state key; per-parameter views into it."""
        self.flat_state: list[dict[str, torch.Tensor]] = []
        self.state = {}
        for params in self.groups:
            buffers = {key: _flat([state[id(p)][key] for p in params])
                       for key in self.state_keys}
            self.flat_state.append(buffers)
            for p, views in zip(params, _unflatten_views(buffers, params), strict=True):
                self.state[id(p)] = views

    @property
    def params(self) -> list[torch.Tensor]:
        return [p for g in self.groups for p in g]

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def keep(self, params: Sequence[torch.Tensor], slots: Sequence[int]) -> None:
        """Re-point at the selected members' tensors (`params` in the same order)."""
        index = torch.tensor(list(slots), device=params[0].device)
        pairs = zip(self.params, params, strict=True)
        kept = {id(new): {key: self.state[id(p)][key].index_select(0, index)
                          for key in self.state_keys} for p, new in pairs}
        it = iter(params)
        self.groups = [[next(it) for _ in g] for g in self.groups]
        self.weight_decay = [[w[s] for s in slots] for w in self.weight_decay]
        self._flatten_state(kept)
        self._keep_members(slots)

    def _keep_members(self, slots: Sequence[int]) -> None:
        pass

    def member_state(self, k: int) -> dict[int, dict[str, torch.Tensor]]:
        """Member k's per-parameter state, indexed as `torch.optim` indexes it."""
        return {i: {key: self.state[id(p)][key][k].detach().clone()
                    for key in self.state_keys} for i, p in enumerate(self.params)}

    def load_member(self, k: int, state: dict[int, dict[str, torch.Tensor]]) -> None:
        for i, p in enumerate(self.params):
            for key in self.state_keys:
                self.state[id(p)][key][k].copy_(state[i][key])


def _flat(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    """[K, ...] tensors → one contiguous [K, sum of sizes] tensor (a copy)."""
    return torch.cat([t.reshape(t.shape[0], -1) for t in tensors], 1)


def _views(flat: torch.Tensor, like: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """The slices of `flat` shaped as `like`'s tensors (views, not copies)."""
    sizes = [t[0].numel() for t in like]
    return [part.view(t.shape) for part, t in zip(flat.split(sizes, 1), like, strict=True)]


def _unflatten_views(buffers: dict[str, torch.Tensor], params) -> list[dict[str, torch.Tensor]]:
    per_key = {key: _views(flat, params) for key, flat in buffers.items()}
    return [{key: per_key[key][i] for key in buffers} for i in range(len(params))]


def _write_back(params: Sequence[torch.Tensor], flat: torch.Tensor) -> None:
    """Copy a group's updated flat parameters into its parameter tensors."""
    torch._foreach_copy_(list(params), _views(flat, params))


class FusedAdamW(_FusedOptimizer):
    """`torch.optim.AdamW` (single-tensor path) for every member at once.

    Each member keeps its own step count, so a member resumed from a checkpoint can share
    an array with members trained from scratch.
    """

    state_keys = ("exp_avg", "exp_avg_sq")

    def __init__(self, groups, weight_decay, *, betas: tuple[float, float],
                 eps: float = 1e-8, steps: Sequence[int]) -> None:
        super().__init__(groups, weight_decay)
        self.betas, self.eps, self.steps = betas, eps, list(steps)

    @torch.no_grad()
    def step(self, lrs: Sequence[float]) -> None:
        beta1, beta2 = self.betas
        self.steps = [s + 1 for s in self.steps]
        for params, wds, st in zip(self.groups, self.weight_decay, self.flat_state,
                                   strict=True):
            p, grad = _flat(params), _flat([q.grad for q in params])
            decay = column([1 - lr * wd for lr, wd in zip(lrs, wds, strict=True)], p)
            step_size = column([-lr / (1 - beta1 ** s) for lr, s in
                                zip(lrs, self.steps, strict=True)], p)
            bc2_sqrt = column([(1 - beta2 ** s) ** 0.5 for s in self.steps], p)
            p.mul_(decay)
            st["exp_avg"].lerp_(grad, 1 - beta1)
            st["exp_avg_sq"].mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
            denom = (st["exp_avg_sq"].sqrt() / bc2_sqrt).add_(self.eps)
            p.add_(st["exp_avg"].mul(step_size).div_(denom))
            _write_back(params, p)

    def _keep_members(self, slots: Sequence[int]) -> None:
        self.steps = [self.steps[s] for s in slots]

    def member_state(self, k: int) -> dict[int, dict[str, torch.Tensor]]:
        state = super().member_state(k)
        for entry in state.values():
            entry["step"] = torch.tensor(float(self.steps[k]))
        return state

    def load_member(self, k: int, state) -> None:
        super().load_member(k, state)
        steps = {int(entry["step"]) for entry in state.values()}
        self.steps[k] = steps.pop() if steps else 0


class FusedSGD(_FusedOptimizer):
    """`torch.optim.SGD` with momentum (single-tensor path) for every member at once.

    A zero momentum buffer updated once equals torch's first-step `clone(grad)` exactly,
    so members at different steps share one update.
    """

    state_keys = ("momentum_buffer",)

    def __init__(self, groups, weight_decay, *, momentum: Sequence[float]) -> None:
        super().__init__(groups, weight_decay)
        self.momentum = list(momentum)

    def _keep_members(self, slots: Sequence[int]) -> None:
        self.momentum = [self.momentum[s] for s in slots]

    @torch.no_grad()
    def step(self, lrs: Sequence[float]) -> None:
        for params, wds, st in zip(self.groups, self.weight_decay, self.flat_state,
                                   strict=True):
            p, grad = _flat(params), _flat([q.grad for q in params])
            if any(wds):
                grad = torch.addcmul(grad, p, column(wds, p))
            buf = st["momentum_buffer"]
            buf.mul_(column(self.momentum, p)).add_(grad)
            _write_back(params, torch.addcmul(p, buf, column([-lr for lr in lrs], p)))


def shell_state_dict(optimizer_state: dict[int, dict[str, torch.Tensor]],
                     shell: torch.optim.Optimizer) -> dict[str, Any]:
    """A member's optimizer state in `torch.optim`'s own format, hyperparameters included.

    `shell` is a real optimizer over empty placeholder tensors with the member's groups and
    hyperparameters: it supplies the exact `param_groups` layout of this torch version (and
    carries the member's current learning rate, which a plateau scheduler updates).
    """
    return {"state": optimizer_state, "param_groups": shell.state_dict()["param_groups"]}
