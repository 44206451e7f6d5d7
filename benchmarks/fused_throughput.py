"""Throughput of fused training arrays against one-at-a-time and multi-process packing.

Run from the repository root on the device the numbers are for, e.g. on an H100:

    python benchmarks/fused_throughput.py --device cuda --out fused.json
    python benchmarks/fused_throughput.py --quick          # tiny, CPU: a smoke test

For each task and each K it trains K same-shape configurations (the default with the
learning rate spread over a decade, one training seed each) as one fused array, and
reports aggregate training throughput (tokens/s for the small LM, samples/s for the
classifier) over timed epochs after a warm-up epoch; an epoch includes its validation
pass, as a trial's epoch does. Baselines, measured in the same run: one configuration
at a time (the solo `train`), and P solo processes sharing the device (P in --procs,
started together after a warm-up epoch each; aggregate = P × work / wall time). The table
gives fused / one-at-a-time and fused / best packing.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from suite.env import environment  # noqa: E402
from suite.registry import get_task  # noqa: E402
from suite.types import Member  # noqa: E402


def work_per_epoch(task, config) -> int:
    """Tokens (LM) or samples (classifier) one training epoch consumes."""
    if task.info.name == "small_lm":
        return task.steps_per_epoch(config["batch_size"]) * config["batch_size"] * task.context
    from tasks.text_classifier.features import load_corpus

    return len(load_corpus(task.scale).train.labels)


def configs(task, k: int, shape: dict) -> list[dict]:
    base = {**task.default_config(), **shape}
    return [{**base, "lr": base["lr"] * 10 ** (i / max(1, k - 1) - 0.5)} for i in range(k)]


def fused_rate(task, k: int, shape: dict, epochs: int, device: str) -> float:
    members = [Member(c, epochs, seed) for seed, c in enumerate(configs(task, k, shape))]
    timed = 0.0
    for n, step in enumerate(task.train_fused(members, device=device)):
        if n > 0:  # the first epoch warms up (CUDA context, kernel selection, allocator)
            timed += sum(r.device_seconds for _, r in step)
    return k * (epochs - 1) * work_per_epoch(task, members[0].config) / timed


def _packed_worker(name, scale, config, epochs, device, barrier, out) -> None:
    task = get_task(name, scale=scale)
    results = task.train(config, epochs=epochs, seed=0, device=device)
    next(results)  # warm-up epoch
    barrier.wait()
    start = time.perf_counter()
    for _ in results:
        pass
    out.put((start, time.perf_counter()))


def packed_rate(task, procs: int, shape: dict, epochs: int, device: str) -> float:
    ctx = mp.get_context("spawn")
    barrier, out = ctx.Barrier(procs), ctx.Queue()
    config = configs(task, 1, shape)[0]
    workers = [ctx.Process(target=_packed_worker, args=(
        task.info.name, task.scale, config, epochs, device, barrier, out)) for _ in range(procs)]
    for w in workers:
        w.start()
    spans = [out.get() for _ in workers]
    for w in workers:
        w.join()
    wall = max(e for _, e in spans) - min(s for s, _ in spans)
    return procs * (epochs - 1) * work_per_epoch(task, config) / wall


def release_device_memory() -> None:
    """Hand this process's cached CUDA blocks back to the device. Without it the caching
    allocator kept what the small LM's K = 64 array had used, and the classifier's packed
    processes, started next, ran out of device memory on an H200 (results/gpu-h200/)."""
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def measure(name: str, args) -> dict:
    task = get_task(name, scale=args.scale)
    shape = json.loads(args.lm_shape if name == "small_lm" else args.classifier_shape)
    solo = packed_rate(task, 1, shape, args.epochs, args.device)
    packing = {p: solo if p == 1 else packed_rate(task, p, shape, args.epochs, args.device)
               for p in args.procs}
    best = max(packing.values())
    rows = []
    for k in args.ks:
        try:
            rate = fused_rate(task, k, shape, args.epochs, args.device)
        except RuntimeError as exc:  # out of device memory at large K: record, go on
            rows.append({"k": k, "error": str(exc).splitlines()[0]})
            continue
        finally:
            release_device_memory()
        rows.append({"k": k, "fused": rate, "vs_one_at_a_time": rate / solo,
                     "vs_best_packing": rate / best})
    unit = "tokens/s" if name == "small_lm" else "samples/s"
    return {"task": name, "unit": unit, "shape": shape, "one_at_a_time": solo,
            "packing": packing, "best_packing": best, "fused": rows}


def print_table(record: dict) -> None:
    print(f"\n{record['task']} ({record['unit']}), shape {record['shape']}")
    print(f"one at a time: {record['one_at_a_time']:.4g}; packing: " + ", ".join(
        f"{p} procs {r:.4g}" for p, r in record["packing"].items()))
    print("| K | fused | × one-at-a-time | × best packing |\n| --- | --- | --- | --- |")
    for row in record["fused"]:
        if "error" in row:
            print(f"| {row['k']} | {row['error']} | | |")
        else:
            print(f"| {row['k']} | {row['fused']:.4g} | {row['vs_one_at_a_time']:.2f} | "
                  f"{row['vs_best_packing']:.2f} |")


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=["small_lm", "text_classifier", "both"],
                        default="both")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--scale", default="full")
    parser.add_argument("--ks", default="1,4,16,64")
    parser.add_argument("--procs", default="1,2,4,8")
    parser.add_argument("--epochs", type=int, default=3, help="per measurement, 1 warm-up")
    parser.add_argument("--lm-shape", default='{"width": 256, "depth": 4, "batch_size": 64}')
    parser.add_argument("--classifier-shape", default='{"width": 64, "batch_size": 32}')
    parser.add_argument("--quick", action="store_true",
                        help="tiny scale on the CPU, K 1,2, 1-2 processes (a smoke test)")
    parser.add_argument("--out", help="write the JSON record here")
    args = parser.parse_args(argv)
    if args.quick:
        args.device, args.scale, args.ks, args.procs, args.epochs = "cpu", "tiny", "1,2", "1,2", 2
        args.lm_shape = '{"width": 128, "depth": 2, "batch_size": 128}'
    args.ks = [int(k) for k in args.ks.split(",")]
    args.procs = [int(p) for p in args.procs.split(",")]
    names = ["small_lm", "text_classifier"] if args.task == "both" else [args.task]
    record = {"environment": environment(), "device": args.device, "scale": args.scale,
              "epochs": args.epochs, "tasks": {}}
    for name in names:
        record["tasks"][name] = measure(name, args)
        print_table(record["tasks"][name])
        if args.out:
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            Path(args.out).write_text(json.dumps(record, indent=1) + "\n")
    return record


if __name__ == "__main__":
    main()
