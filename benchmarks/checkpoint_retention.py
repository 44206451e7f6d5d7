"""Checkpoint files and disk bytes a live run holds, with retention (`needed`) and without (`all`).

    python benchmarks/checkpoint_retention.py [--task text_classifier] [--scale tiny]
        [--optimizers tpe-median,hyperband] [--budget 3x] [--out DIR]

Runs each optimizer twice on the task (one in-process worker, seed 0), once with
`keep_checkpoints="needed"` and once with `"all"`, and prints a Markdown table: the most
checkpoint files and bytes the run's folder held at any logged row (hard links counted
once: a pin shares its bytes with the trial's live file), what is left when the run
ends, and whether both runs logged the same rows (measured seconds aside).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path


def _folder_size(folder: Path) -> tuple[int, int]:
    """(files, bytes) in `folder`, each inode's bytes once."""
    if not folder.is_dir():
        return 0, 0
    files, inodes = 0, {}
    for path in folder.iterdir():
        try:
            stat = path.stat()
        except FileNotFoundError:  # deleted while we looked
            continue
        files += 1
        inodes[stat.st_ino] = stat.st_size
    return files, sum(inodes.values())


def measure(task: str, scale: str, optimizer: str, budget: str, keep: str,
            out: Path) -> dict:
    from suite import api
    from suite.log import read_rows

    peak = {"files": 0, "bytes": 0}
    folder = out / optimizer / "seed-0" / "checkpoints"

    def on_run(name, seed, runner):
        def on_row(row, runner):
            files, size = _folder_size(folder)
            peak["files"], peak["bytes"] = max(peak["files"], files), max(peak["bytes"], size)
        runner.on_row = on_row

    plan = api.Plan(task=task, optimizers=(optimizer,), budget=budget, scale=scale)
    where = api.Placement(executor="inprocess", keep_checkpoints=keep)
    api.start(plan, where, out, on_run=on_run)
    rows = read_rows(out / optimizer / "seed-0")
    left = _folder_size(folder)
    return {"trials": sum(r["event"] == "start" for r in rows), **peak, "left_files": left[0],
            "left_bytes": left[1],
            "rows": [comparable(r) for r in rows]}


def comparable(row: dict) -> dict:
    """A row without what a live run measures (wall and device seconds): the rest (trials,
    epochs, metrics, decisions) must match between the two runs."""
    return {k: v for k, v in row.items()
            if k not in ("wall_time", "device_seconds", "ledger", "worker")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="text_classifier")
    parser.add_argument("--scale", default="tiny")
    parser.add_argument("--optimizers", default="tpe-median,hyperband")
    parser.add_argument("--budget", default="3x")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    root = Path(args.out or tempfile.mkdtemp(prefix="retention-"))
    print("| optimizer | keep | trials | most files | most MB | files left | MB left | "
          "same rows |\n|---|---|---:|---:|---:|---:|---:|---|")
    for optimizer in args.optimizers.split(","):
        runs = {keep: measure(args.task, args.scale, optimizer, args.budget, keep,
                              root / f"{optimizer}-{keep}") for keep in ("needed", "all")}
        same = runs["needed"]["rows"] == runs["all"]["rows"]
        for keep, r in runs.items():
            print(f"| {optimizer} | {keep} | {r['trials']} | {r['files']} | "
                  f"{r['bytes'] / 1e6:.1f} | {r['left_files']} | {r['left_bytes'] / 1e6:.1f} | "
                  f"{'yes' if same else 'NO'} |", flush=True)


if __name__ == "__main__":
    main()
