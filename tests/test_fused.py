"""Fused training arrays: member k of an array is its configuration trained alone.

On the CPU in fp32 at one thread count the equality is bit for bit (`exact`, the CPU
default, runs each member through `F.linear`'s own calls, whatever the thread count): per-epoch
metrics, final weights, optimizer state, schedule and random streams, including members
at different epochs, members leaving the array, and checkpoints moving between solo runs
and arrays. The batched path that CUDA uses (`exact=False`) is checked against a tolerance.
"""

import pytest
import torch
from torch.nn import functional as F

from suite.errors import SuiteError
from suite.types import Member
from tasks import fused
from tasks.small_lm import SmallLM
from tasks.text_classifier import TextClassifier

CLASSIFIER = [  # one shape (batch_size, width); every other knob differs
    {"lr": 0.01, "weight_decay": 0.1, "dropout_p": 0.5, "lr_factor": 0.5, "lr_patience": 1},
    {"lr": 0.003, "weight_decay": 0.01, "dropout_p": 0.8, "lr_factor": 0.2, "lr_patience": 2},
    {"lr": 0.05, "weight_decay": 0.5, "dropout_p": 0.3, "lr_factor": 0.9, "lr_patience": 1},
]
CLASSIFIER = [{**c, "batch_size": 16, "width": 64} for c in CLASSIFIER]


def _solo(task, config, epochs, seed, path, resume_from=None):
    results = list(task.train(config, epochs=epochs, seed=seed, resume_from=resume_from,
                              save_to=path, device="cpu"))
    return [r.metrics for r in results], torch.load(path, weights_only=True)


def _fused(task, members, **kwargs):
    curves = [[] for _ in members]
    for step in task.train_fused(members, device="cpu", **kwargs):
        assert len({r.device_seconds for _, r in step}) == 1  # equal shares of one epoch
        for index, result in step:
            assert result.epoch == len(curves[index]) + 1 + _start(members[index])
            curves[index].append(result.metrics)
    return curves


def _start(member):
    if member.resume_from is None:
        return 0
    return torch.load(member.resume_from, weights_only=True)["epoch"]


def _assert_same_checkpoint(a, b):
    assert a.keys() == b.keys() and list(a["model"]) == list(b["model"])
    for name in a["model"]:
        assert torch.equal(a["model"][name], b["model"][name]), name
    assert a["optimizer"]["param_groups"] == b["optimizer"]["param_groups"]
    for i, entry in a["optimizer"]["state"].items():
        for key, tensor in entry.items():
            assert torch.equal(tensor, b["optimizer"]["state"][i][key]), (i, key)
    assert a["scheduler"] == b["scheduler"] and a["epoch"] == b["epoch"]
    assert torch.equal(a["rng"]["torch"], b["rng"]["torch"])
    assert torch.equal(a["data_rng"], b["data_rng"])


def test_classifier_members_equal_solo_runs_bit_for_bit(tmp_path, two_threads):
    task = TextClassifier(scale="tiny")
    epochs, seeds = [4, 2, 3], [3, 4, 5]  # member 1 leaves after epoch 2, member 2 after 3
    members = [Member(c, e, s, save_to=tmp_path / f"f{i}.pt")
               for i, (c, e, s) in enumerate(zip(CLASSIFIER, epochs, seeds, strict=True))]
    curves = _fused(task, members)
    for i, member in enumerate(members):
        solo, state = _solo(task, member.config, member.epochs, member.seed,
                            tmp_path / f"s{i}.pt")
        assert curves[i] == solo, i
        _assert_same_checkpoint(torch.load(member.save_to, weights_only=True), state)
        assert torch.equal(state["dropout_rng"],
                           torch.load(member.save_to, weights_only=True)["dropout_rng"])
    assert len({tuple(c[0].values()) for c in curves}) == 3  # the members really differ


def test_checkpoints_move_between_arrays_and_solo_runs(tmp_path, two_threads):
    task = TextClassifier(scale="tiny")
    a, b = CLASSIFIER[0], CLASSIFIER[1]
    _solo(task, a, 2, 3, tmp_path / "a2.pt")  # a solo checkpoint joins an array at epoch 2
    curves = _fused(task, [Member(a, 4, 3, tmp_path / "a2.pt", tmp_path / "a4.pt"),
                           Member(b, 3, 4, None, tmp_path / "b3.pt")])
    straight, a_state = _solo(task, a, 4, 3, tmp_path / "a-straight.pt")
    assert curves[0] == straight[2:]
    _assert_same_checkpoint(torch.load(tmp_path / "a4.pt", weights_only=True), a_state)
    # ...and a member's checkpoint resumes alone as if it had never been fused
    rest, b_state = _solo(task, b, 5, 4, tmp_path / "b5.pt", resume_from=tmp_path / "b3.pt")
    straight, b_straight = _solo(task, b, 5, 4, tmp_path / "b-straight.pt")
    assert curves[1] + rest == straight
    _assert_same_checkpoint(b_state, b_straight)


def test_a_dropped_member_leaves_the_others_undisturbed(tmp_path):
    task = TextClassifier(scale="tiny")
    members = [Member(c, 3, 7 + i) for i, c in enumerate(CLASSIFIER)]
    training = task.train_fused(members, device="cpu")
    curves = [[] for _ in members]
    for n, step in enumerate(training):
        for index, result in step:
            curves[index].append(result.metrics)
        if n == 0:
            training.drop(1)  # cancelled after its first epoch
    assert [len(c) for c in curves] == [3, 1, 3]
    for i in (0, 2):
        assert curves[i] == _solo(task, CLASSIFIER[i], 3, 7 + i, tmp_path / f"{i}.pt")[0]


def test_batched_path_stays_within_float_rounding(tmp_path):
    """The batched path (CUDA's) reorders three reductions (see tasks/fused.py); measured
    drift after 3 epochs is about 1e-6, so 1e-4 is tight yet robust across CPUs."""
    task = TextClassifier(scale="tiny")
    members = [Member(c, 3, 3 + i) for i, c in enumerate(CLASSIFIER)]
    curves = _fused(task, members, exact=False)
    for i, member in enumerate(members):
        solo, _ = _solo(task, member.config, 3, member.seed, tmp_path / f"{i}.pt")
        for got, want in zip(curves[i], solo, strict=True):
            assert got == pytest.approx(want, abs=1e-4)


def test_members_of_different_shapes_are_refused():
    task = TextClassifier(scale="tiny")
    configs = [CLASSIFIER[0], {**CLASSIFIER[1], "width": 32}]
    with pytest.raises(SuiteError, match="one width for all members"):
        task.train_fused([Member(c, 1, 0) for c in configs], device="cpu")


def _lm_configs(task, optimizer):
    # batch 128 on the tiny corpus is one step per epoch: fast, and still two steps of
    # schedule, clipping, dropout and optimizer state for the member that trains 2 epochs
    batch = 128 if optimizer == "adamw" else 32
    base = {**task.default_config(), "width": 128, "depth": 2, "batch_size": batch}
    configs = [  # a dropout-free member takes the fused attention kernel, the others not
        {**base, "lr": 3e-3, "dropout": 0.1, "schedule": "cyclic", "clr_ratio": 4.0,
         "clr_half_cycle": 1},
        {**base, "lr": 1e-3, "dropout": 0.0, "weight_decay": 0.01, "warmup_frac": 0.1},
    ]
    if optimizer == "sgd":
        configs = [{**c, "optimizer": "sgd", "momentum": m, "lr": 10 * c["lr"]}
                   for c, m in zip(configs, (0.9, 0.6), strict=True)]
    return configs


@pytest.mark.parametrize("optimizer", ["adamw", pytest.param("sgd", marks=pytest.mark.slow)])
def test_small_lm_members_equal_solo_runs_bit_for_bit(tmp_path, optimizer, two_threads):
    task = SmallLM(scale="tiny")
    configs = _lm_configs(task, optimizer)
    members = [Member(c, e, s, save_to=tmp_path / f"f{i}.pt")
               for i, (c, e, s) in enumerate(zip(configs, (2, 1), (3, 4), strict=True))]
    curves = _fused(task, members)
    for i, member in enumerate(members):
        solo, state = _solo(task, member.config, member.epochs, member.seed,
                            tmp_path / f"s{i}.pt")
        assert curves[i] == solo, i
        _assert_same_checkpoint(torch.load(member.save_to, weights_only=True), state)


@pytest.mark.parametrize("n, width, out", [(16, 64, 4), (3, 64, 4), (256, 128, 384)])
def test_linear_matches_f_linear_per_member(n, width, out):
    gen = torch.Generator().manual_seed(0)
    x, w, b, g = (torch.randn(*s, generator=gen) for s in
                  ((3, n, width), (3, out, width), (3, out), (3, n, out)))
    leaves = [t.clone().requires_grad_() for t in (x, w, b)]
    fused.linear(*leaves, exact=True).backward(g)
    for k in range(3):
        alone = [t[k].clone().requires_grad_() for t in (x, w, b)]
        y = F.linear(*alone)
        y.backward(g[k])
        assert torch.equal(y, fused.linear(x, w, b, exact=True)[k])
        for mine, theirs in zip(leaves, alone, strict=True):
            assert torch.equal(mine.grad[k], theirs.grad)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("count", [1, 2])
def test_exact_linear_equals_f_linear_over_4096_rows_at_any_thread_count(torch_threads, count,
                                                                          bias):
    """The small LM's weight gradient sums batch x context = 4,096 rows. With 2 threads
    `mm` (what `F.linear` runs) splits that sum on some CPUs (AVX-512) and rounds unlike a
    batched `bmm`; the exact path runs `mm` per member, so it equals `F.linear` wherever
    both run at one thread count. Where the batched form differs, it differs by no more
    than `F.linear` itself does between 1 and 2 threads (both measured here)."""
    gen = torch.Generator().manual_seed(0)
    x, w, b, g = (torch.randn(*s, generator=gen) for s in
                  ((3, 4096, 128), (3, 384, 128), (3, 384), (3, 4096, 384)))
    b = b if bias else None

    def alone():
        grads = []
        for k in range(3):
            leaves = [t[k].clone().requires_grad_() if t is not None else None for t in (x, w, b)]
            y = F.linear(*leaves)
            y.backward(g[k])
            grads.append((y, *(t.grad for t in leaves if t is not None)))
        return [torch.stack(parts) for parts in zip(*grads, strict=True)]

    def together(exact):
        leaves = [t.clone().requires_grad_() if t is not None else None for t in (x, w, b)]
        y = fused.linear(*leaves, exact=exact)
        y.backward(g)
        return [y, *(t.grad for t in leaves if t is not None)]

    torch_threads(1)
    single = alone()
    torch_threads(count)
    solo, exact, batched = alone(), together(True), together(False)
    for mine, theirs in zip(exact, solo, strict=True):
        assert torch.equal(mine, theirs)
    # the batched form is not promised bit for bit: it stays within twice the solo path's
    # own 1-vs-2-thread spread (1.3e-4 of gradients up to 292 where measured), or within
    # 1e-6 of the largest value where that spread is 0
    for mine, theirs, one in zip(batched, solo, single, strict=True):
        bound = max(2 * (theirs - one).abs().max().item(), 1e-6 * theirs.abs().max().item())
        assert (mine - theirs).abs().max().item() <= bound


def test_optimizers_match_torch_per_member_at_different_steps():
    gen = torch.Generator().manual_seed(1)
    start = torch.randn(3, 5, 7, generator=gen)
    grads = [torch.randn(3, 5, 7, generator=gen) for _ in range(4)]
    lrs, wds, moms = [1e-3, 2e-2, 5e-4], [0.1, 0.0, 0.5], [0.9, 0.5, 0.99]
    for kind in ("adamw", "sgd"):
        p = start.clone()
        if kind == "adamw":
            opt = fused.FusedAdamW([[p]], [wds], betas=(0.9, 0.99), steps=[0, 5, 0])
            opt.load_member(1, {0: {"exp_avg": grads[0][1] / 3, "exp_avg_sq": grads[0][1] ** 2,
                                    "step": torch.tensor(5.0)}})
        else:
            opt = fused.FusedSGD([[p]], [wds], momentum=moms)
        for g in grads:
            p.grad = g.clone()
            opt.step(lrs)
        for k in range(3):
            q = start[k].clone().requires_grad_()
            if kind == "adamw":
                ref = torch.optim.AdamW([q], lr=lrs[k], weight_decay=wds[k], betas=(0.9, 0.99))
                if k == 1:  # resumed at step 5, as loaded into the array above
                    ref.state[q] = {"step": torch.tensor(5.0), "exp_avg": grads[0][1] / 3,
                                    "exp_avg_sq": grads[0][1] ** 2}
            else:
                ref = torch.optim.SGD([q], lr=lrs[k], weight_decay=wds[k], momentum=moms[k])
            for g in grads:
                q.grad = g[k].clone()
                ref.step()
            assert torch.equal(p[k], q.detach()), (kind, k)


def _groups(gen, k):
    """Two parameter groups of mixed shapes, [K, ...] each."""
    shapes = [[(4, 3), (3,)], [(2, 5, 2), (6,), (1,)]]
    return [[torch.randn(k, *s, generator=gen) for s in group] for group in shapes]


@pytest.mark.parametrize("kind", ["adamw", "sgd"])
def test_flat_group_steps_equal_torch_across_parameters_and_after_a_member_leaves(kind):
    gen = torch.Generator().manual_seed(2)
    groups = _groups(gen, 3)
    lrs, wds, moms = [1e-2, 3e-3, 2e-2], [[0.1, 0.0, 0.3], [0.0, 0.0, 0.0]], [0.9, 0.5, 0.8]
    start = [[p.clone() for p in g] for g in groups]
    make = (lambda gs, w: fused.FusedAdamW(gs, w, betas=(0.9, 0.99), steps=[0, 0, 0])) \
        if kind == "adamw" else (lambda gs, w: fused.FusedSGD(gs, w, momentum=moms))
    opt = make(groups, wds)
    grads = [[[torch.randn(p.shape, generator=gen) for p in g] for g in groups]
             for _ in range(4)]
    for n, step_grads in enumerate(grads):
        if n == 2:  # member 1 leaves: the array goes on with members 0 and 2
            groups = [[p[[0, 2]].clone() for p in g] for g in groups]
            opt.keep([p for g in groups for p in g], [0, 2])
        if n >= 2:
            step_grads = [[gr[[0, 2]] for gr in g] for g in step_grads]
        for g, gg in zip(groups, step_grads, strict=True):
            for p, gr in zip(g, gg, strict=True):
                p.grad = gr.clone()
        opt.step(lrs if n < 2 else [lrs[0], lrs[2]])
    for slot, k in enumerate([0, 2]):
        leaves = [[p[k].clone().requires_grad_() for p in g] for g in start]
        torch_groups = [{"params": leaves[i], "weight_decay": wds[i][k]} for i in range(2)]
        ref = torch.optim.AdamW(torch_groups, lr=lrs[k], betas=(0.9, 0.99)) \
            if kind == "adamw" else torch.optim.SGD(torch_groups, lr=lrs[k], momentum=moms[k])
        for step_grads in grads:
            for g, gg in zip(leaves, step_grads, strict=True):
                for q, gr in zip(g, gg, strict=True):
                    q.grad = gr[k].clone()
            ref.step()
        mine = [p[slot] for g in groups for p in g]
        assert all(torch.equal(a, b.detach()) for a, b in zip(mine, sum(leaves, []),
                                                              strict=True)), (kind, k)
        state = opt.member_state(slot)
        theirs = ref.state_dict()["state"]
        for i, entry in state.items():
            for key in opt.state_keys:
                assert torch.equal(entry[key], theirs[i][key]), (kind, k, i, key)


def test_optimizer_step_launches_do_not_grow_with_the_number_of_parameters():
    """One flat tensor per group: the step's operators are per group, not per parameter
    (on a GPU a small model's step is launch-bound; see benchmarks/fused_step_ops.py)."""
    from torch.profiler import ProfilerActivity, profile

    def ops(n_params):
        gen = torch.Generator().manual_seed(3)
        params = [torch.randn(2, 4, generator=gen) for _ in range(n_params)]
        opt = fused.FusedAdamW([params], [[0.1, 0.1]], betas=(0.9, 0.99), steps=[0, 0])
        for p in params:
            p.grad = torch.randn(p.shape, generator=gen)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            opt.step([1e-3, 1e-3])
        math = {"aten::mul_", "aten::lerp_", "aten::addcmul_", "aten::sqrt", "aten::div",
                "aten::div_", "aten::add_", "aten::mul", "aten::cat"}
        return sum(e.name in math for e in prof.events())

    assert ops(40) == ops(4)


def test_batched_layer_norm_is_exact_forward_and_close_backward():
    gen = torch.Generator().manual_seed(2)
    x, w, b, g = (torch.randn(*s, generator=gen) for s in
                  ((3, 4, 8, 64), (3, 64), (3, 64), (3, 4, 8, 64)))
    grads = {}
    for exact in (True, False):
        leaves = [t.clone().requires_grad_() for t in (x, w, b)]
        y = fused.layer_norm(*leaves, exact=exact)
        y.backward(g)
        grads[exact] = (y.detach(), *(t.grad for t in leaves))
    assert torch.equal(grads[True][0], grads[False][0])
    for exact_grad, batched in zip(grads[True][1:], grads[False][1:], strict=True):
        torch.testing.assert_close(batched, exact_grad, rtol=1e-5, atol=1e-5)
