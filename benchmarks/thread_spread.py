"""How far a CPU run moves with torch's thread count, and whether fused equals solo.

    python benchmarks/thread_spread.py [--epochs 2]

Prints the machine (`suite.env.machine_line`), then, at 1 and at 2 threads:
- one linear layer over 4,096 rows (the small LM's batch x context at `--scale tiny`):
  whether the fused `linear` (exact, and batched) gives `F.linear`'s weight gradient;
- the small LM at `--scale tiny` trained alone for `--epochs` epochs: how far its weights
  and validation loss end between the two thread counts (the solo path's own spread, the
  yardstick for any tolerance between CPU runs). docs/fused.md quotes it.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from suite.env import machine_line  # noqa: E402
from tasks import fused  # noqa: E402
from tasks.small_lm import SmallLM  # noqa: E402


def linear_gradients() -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    x, w, b, g = (torch.randn(*s, generator=gen) for s in
                  ((3, 4096, 128), (3, 384, 128), (3, 384), (3, 4096, 384)))
    solo = []
    for k in range(3):
        leaves = [t[k].clone().requires_grad_() for t in (x, w, b)]
        F.linear(*leaves).backward(g[k])
        solo.append(leaves[1].grad)
    out = {"solo": torch.stack(solo)}
    for name, exact in (("exact", True), ("batched", False)):
        leaves = [t.clone().requires_grad_() for t in (x, w, b)]
        fused.linear(*leaves, exact=exact).backward(g)
        out[name] = leaves[1].grad
    return out


def small_lm(epochs: int, folder: Path, threads: int):
    task = SmallLM(scale="tiny")
    path = folder / f"{threads}.pt"
    results = list(task.train(task.default_config(), epochs=epochs, seed=0, resume_from=None,
                              save_to=path, device="cpu"))
    losses = [r.metrics["val_loss"] for r in results]
    return losses, torch.load(path, weights_only=True)["model"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args(argv)
    print(f"machine: {machine_line()}")
    grads, runs = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            grads[threads] = g = linear_gradients()
            for name in ("exact", "batched"):
                gap = (g[name] - g["solo"]).abs().max().item()
                print(f"{threads} thread(s): fused linear ({name}) weight gradient vs F.linear: "
                      f"{'equal' if gap == 0 else f'max |diff| {gap:.3g}'}")
            runs[threads] = small_lm(args.epochs, Path(tmp), threads)
    spread = (grads[1]["solo"] - grads[2]["solo"]).abs().max().item()
    print(f"F.linear weight gradient, 1 vs 2 threads: max |diff| {spread:.3g} "
          f"(largest |value| {grads[1]['solo'].abs().max().item():.3g})")
    (loss1, w1), (loss2, w2) = runs[1], runs[2]
    gap = max((w1[k] - w2[k]).abs().max().item() for k in w1)
    loss_gap = max(abs(a - b) for a, b in zip(loss1, loss2, strict=True))
    print(f"small LM tiny, {args.epochs} epochs alone, 1 vs 2 threads: final weights max "
          f"|diff| {gap:.3g}; val_loss per epoch max |diff| {loss_gap:.3g} "
          f"(1 thread: {', '.join(f'{v:.9g}' for v in loss1)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
