"""Must-show 3: how much of a live study's wall time the GPU had work, and where the
rest went.

    python benchmarks/gpu_busy.py --out busy.json                 # small_lm, BOHB, 4 workers
    python benchmarks/gpu_busy.py --task text_classifier --fuse auto --out busy.json
    python benchmarks/gpu_busy.py --quick                         # tiny classifier, CPU

It runs a live study (`suite run` in this process: the same runner, executor and log)
with `SUITE_TRACE_DIR` set, so every worker writes its phases: start-up (building the
task: data loading), jobs, timed epochs (the device work, from the task's own
synchronized timer) and hand-offs (from the end of a timed epoch to the worker holding
its results: checkpoint writes). The driver's optimizer ask and tell are timed around
the calls. On CUDA, `nvidia-smi` is sampled every 100 ms as a second witness (the share
of each sample period in which a kernel ran).

"GPU had work" is the union of all workers' timed epochs over the study's wall time.
Every other instant is charged to one cause, the first that applies: a checkpoint write,
a worker starting up, a worker inside a job outside its epochs (model build, data to the
device, checkpoint load, pins and queue), the optimizer's ask/tell, and otherwise
"other" (process spawn and imports before a worker's start-up, driver logging and
dispatch, queue latency, the study's own start and end).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from suite.env import environment  # noqa: E402
from suite.executors._occupancy import TRACE_ENV  # noqa: E402
from suite.study import StudySpec, run_study  # noqa: E402

CAUSES = ("checkpoint writes", "worker start-up (task, data)",
          "in a job, between epochs (setup, data to device, pins)",
          "optimizer ask/tell (driver)", "other (spawn, imports, logging, dispatch)")
_PHASE_CAUSE = {"handoff": 0, "startup": 1, "job": 2, "driver": 3}


class NvidiaSmi:
    """Samples GPU utilization (percent) every 100 ms in a background process."""

    def __init__(self, index: int = 0) -> None:
        self.samples: list[tuple[float, float]] = []
        self._proc = subprocess.Popen(
            ["nvidia-smi", f"--id={index}", "--query-gpu=utilization.gpu",
             "--format=csv,noheader,nounits", "-lms", "100"],
            stdout=subprocess.PIPE, text=True)
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        for line in self._proc.stdout:
            try:
                self.samples.append((time.monotonic(), float(line.strip())))
            except ValueError:
                continue

    def stop(self) -> None:
        self._proc.terminate()
        self._proc.wait(timeout=10)

    def mean(self, start: float, end: float) -> float | None:
        inside = [u for t, u in self.samples if start <= t <= end]
        return sum(inside) / len(inside) / 100 if inside else None


def _timed(intervals: list, fn):
    def wrapper(*args, **kwargs):
        start = time.monotonic()
        try:
            return fn(*args, **kwargs)
        finally:
            intervals.append(("driver", start, time.monotonic()))
    return wrapper


def breakdown(intervals: list[tuple[str, float, float]], start: float, end: float) -> dict:
    """Seconds with some epoch running (GPU work), and the rest charged to one cause."""
    points = []
    for phase, s, e in intervals:
        s, e = max(s, start), min(e, end)
        if e > s:
            points += [(s, 1, phase), (e, -1, phase)]
    points.sort(key=lambda p: p[0])
    active = dict.fromkeys(["epoch", *_PHASE_CAUSE], 0)
    out = {"gpu work": 0.0, **dict.fromkeys(CAUSES, 0.0)}
    last = start
    for t, delta, phase in points + [(end, 0, None)]:
        if t > last:
            if active["epoch"]:
                out["gpu work"] += t - last
            else:
                cause = next((i for p, i in sorted(_PHASE_CAUSE.items(), key=lambda x: x[1])
                              if active[p]), 4)
                out[CAUSES[cause]] += t - last
            last = t
        if phase is not None:
            active[phase] += delta
    return out


def read_trace(folder: Path) -> tuple[list[tuple[str, float, float]], list[int]]:
    """Every phase row (phase, start, end), and the members of every job."""
    rows = [json.loads(line) for f in sorted(folder.glob("*.jsonl"))
            for line in f.read_text().splitlines()]
    return [(r["phase"], r["start"], r["end"]) for r in rows], [
        r.get("members", 1) for r in rows if r["phase"] == "job"]


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="small_lm")
    parser.add_argument("--optimizer", default="bohb")
    parser.add_argument("--budget", default="200s", help="device-seconds by default")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--device", default="cuda:0", help="every worker on this device")
    parser.add_argument("--scale", default="full")
    parser.add_argument("--fuse", default="off", choices=["off", "auto"])
    parser.add_argument("--fuse-max", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true",
                        help="tiny classifier on the CPU, 2 workers, 1x (a smoke test)")
    parser.add_argument("--keep", help="keep the study folder here (default: a temp folder)")
    parser.add_argument("--out", help="write the JSON record here")
    args = parser.parse_args(argv)
    if args.quick:
        args.task, args.scale, args.device, args.workers, args.budget = (
            "text_classifier", "tiny", "cpu", 2, "1x")
    work = Path(tempfile.mkdtemp(prefix="gpu_busy-"))
    folder = Path(args.keep) if args.keep else work / "study"
    os.environ[TRACE_ENV] = str(work / "trace")  # the spawned workers inherit it
    spec = StudySpec(task=args.task, optimizers=(args.optimizer,), seeds=(args.seed,),
                     budget=args.budget, scale=args.scale, workers=args.workers,
                     devices=(args.device,) * args.workers, fuse=args.fuse,
                     fuse_max=args.fuse_max)
    driver: list = []

    def on_run(name, seed, runner) -> None:
        runner.optimizer.ask = _timed(driver, runner.optimizer.ask)
        runner.optimizer.tell = _timed(driver, runner.optimizer.tell)

    smi = NvidiaSmi() if args.device.startswith("cuda") and shutil.which("nvidia-smi") else None
    start = time.monotonic()
    (outcome,) = run_study(spec, folder, on_run=on_run)
    end = time.monotonic()
    if smi is not None:
        smi.stop()
    trace, arrays = read_trace(work / "trace")
    seconds = breakdown(trace + driver, start, end)
    wall = end - start
    record = {
        "environment": environment(), "spec": vars(args), "wall_seconds": wall,
        "gpu_had_work": seconds["gpu work"] / wall,
        "nvidia_smi_utilization": smi.mean(start, end) if smi else None,
        "seconds": seconds, "share": {k: v / wall for k, v in seconds.items()},
        "epochs": outcome.ledger.totals.epochs,
        "charged_device_seconds": outcome.ledger.totals.device_seconds,
        "trials": outcome.state.trials, "jobs": len(arrays),
        "mean_members_per_job": sum(arrays) / len(arrays) if arrays else 0.0,
    }
    print(f"{args.task} {args.optimizer} {args.budget}, {args.workers} workers on "
          f"{args.device}, fuse {args.fuse}: {wall:.1f} s wall, {record['epochs']} epochs, "
          f"{record['trials']} trials, {record['charged_device_seconds']:.1f} device-s "
          f"charged, {record['mean_members_per_job']:.2f} members per job")
    print(f"GPU had work (union of timed epochs): {record['gpu_had_work']:.1%} of wall time"
          + (f"; nvidia-smi utilization {record['nvidia_smi_utilization']:.1%}"
             if record["nvidia_smi_utilization"] is not None else ""))
    for cause, value in seconds.items():
        print(f"  {cause}: {value:.2f} s ({value / wall:.1%})")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(record, indent=1) + "\n")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return record


if __name__ == "__main__":
    main()
