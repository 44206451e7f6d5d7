"""Operator launches per training step of a fused small-LM array, counted on the CPU.

    python benchmarks/fused_step_ops.py                  # K = 1, 4, 16 at the GPU benchmark's shape
    python benchmarks/fused_step_ops.py --ks 1,16 --out ops.json

A model this small is launch-bound on a GPU (benchmarks/fused_throughput.py's shape, width
256, depth 4, batch 64, measured on an H200 in results/gpu-h200/): the time of a step
follows the number of kernels it launches more than its arithmetic. This counts, with
torch's profiler on the CPU, the ATen operators that launch work in each training step
(leaf operators, less those that only make views or metadata; a `_foreach_` operator counts
once, as on CUDA it is one multi-tensor kernel per few dozen tensors while the CPU runs it
tensor by tensor), split into forward + backward, gradient clipping and the optimizer step,
for the fused array at K members and for the solo model (one configuration, with the
optimizer and clipping it uses on CUDA: `torch.optim.AdamW(fused=True)` and foreach
clipping). On CUDA each counted operator is about one kernel launch: the counts are a proxy
for launches, not a GPU time.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from torch.profiler import ProfilerActivity, profile, record_function  # noqa: E402

from suite.env import environment  # noqa: E402
from suite.registry import get_task  # noqa: E402
from suite.types import Member  # noqa: E402
from tasks import fused  # noqa: E402

PHASES = ("optimizer step", "gradient clipping")
# Operators that make views or read metadata: no kernel on any device.
NO_KERNEL = {f"aten::{name}" for name in (
    "view", "as_strided", "_unsafe_view", "_reshape_alias", "reshape", "flatten", "alias",
    "lift_fresh", "resolve_conj", "resolve_neg", "empty", "empty_strided", "detach",
    "expand", "t", "transpose", "permute", "unsqueeze", "squeeze", "select", "slice",
    "split", "narrow", "unflatten", "unbind", "to", "_to_copy_noop", "scalar_tensor")}
SHAPE = {"width": 256, "depth": 4, "batch_size": 64}


def _labelled(fn, label):
    def wrapper(*args, **kwargs):
        with record_function(label):
            return fn(*args, **kwargs)
    return wrapper


def count_leaf_ops(run_steps, steps: int) -> dict[str, float]:
    """Leaf ATen operators per step, by phase (the rest: forward, loss and backward)."""
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        run_steps()
    counts: Counter = Counter()
    for event in prof.events():
        foreach = event.name.startswith("aten::_foreach_")
        if not event.name.startswith("aten::") or event.name in NO_KERNEL or \
                (event.cpu_children and not foreach):
            continue
        phase, parent = "forward, loss, backward", event.cpu_parent
        while parent is not None:
            if parent.name.startswith("aten::_foreach_"):
                break  # counted once, as its foreach operator
            if parent.name in PHASES:
                phase = parent.name
            parent = parent.cpu_parent
        else:
            counts[phase] += 1
    out = {phase: counts[phase] / steps for phase in ("forward, loss, backward", *PHASES)}
    out["total"] = sum(out.values())
    return out


def fused_counts(task, k: int, steps: int) -> dict[str, float]:
    base = {**task.default_config(), **SHAPE}
    members = [Member({**base, "lr": base["lr"] * (1 + i / 10)}, 1, i) for i in range(k)]
    training = task.train_fused(members, device="cpu", exact=False)
    training.run.steps_per_epoch = steps
    training.run._train_epoch()  # warm-up: the first step also creates optimizer state
    return count_leaf_ops(training.run._train_epoch, steps)


def solo_counts(task, steps: int) -> dict[str, float]:
    from tasks.small_lm import training as small_lm

    config = {**task.default_config(), **SHAPE}
    progress = small_lm.LMProgress(task, config, 0)
    run = small_lm._Run(progress, small_lm.new_model(task, config, 0), torch.device("cpu"))
    progress.steps_per_epoch = steps
    for group in run.optimizer.param_groups:  # the fused kernel the task uses on CUDA
        group["fused"], group["foreach"] = True, False
    run.train_epoch()  # warm-up: the first step also creates optimizer state
    return count_leaf_ops(run.train_epoch, steps)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ks", default="1,4,16")
    parser.add_argument("--steps", type=int, default=2, help="training steps profiled")
    parser.add_argument("--out", help="write the JSON record here")
    args = parser.parse_args(argv)
    task = get_task("small_lm", scale="tiny")
    fused.FusedAdamW.step = _labelled(fused.FusedAdamW.step, "optimizer step")
    fused.FusedSGD.step = _labelled(fused.FusedSGD.step, "optimizer step")
    fused.clip_grad_norm = _labelled(fused.clip_grad_norm, "gradient clipping")
    torch.optim.AdamW.step = _labelled(torch.optim.AdamW.step, "optimizer step")
    torch.nn.utils.clip_grad_norm_ = _labelled(  # foreach, as it runs on CUDA
        functools.partial(torch.nn.utils.clip_grad_norm_, foreach=True), "gradient clipping")
    rows = {"solo": solo_counts(task, args.steps)}
    for k in (int(k) for k in args.ks.split(",")):
        rows[f"fused K={k}"] = fused_counts(task, k, args.steps)
    print(f"leaf ATen operators per training step, small LM {SHAPE}, CPU")
    print("| run | forward, loss, backward | gradient clipping | optimizer step | total |")
    print("| --- | --- | --- | --- | --- |")
    for name, c in rows.items():
        print(f"| {name} | {c['forward, loss, backward']:.0f} | {c['gradient clipping']:.0f} "
              f"| {c['optimizer step']:.0f} | {c['total']:.0f} |")
    record = {"environment": environment(), "shape": SHAPE, "steps": args.steps, "rows": rows}
    if args.out:
        Path(args.out).write_text(json.dumps(record, indent=1) + "\n")
    return record


if __name__ == "__main__":
    main()
