"""`suite tabulate`: record a task's table (resumable, in chunks across GPU sessions)."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from suite.errors import SuiteError
from suite.registry import check_reference
from suite.tabulate import TabulateSpec, progress_path, tabulate


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--task", required=True)
    parser.add_argument("--seeds", type=int, default=2, help="training seeds per configuration")
    parser.add_argument("--out", help="table path (default results/tables/<task>.parquet)")
    parser.add_argument("--scale", choices=["tiny", "full"])
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--devices", default="auto", help="comma-separated, round-robin")
    parser.add_argument("--executor", choices=["local", "inprocess"], default="local")
    parser.add_argument("--time-limit", type=float, metavar="SECONDS",
                        help="start no new curve after this long (for chunked collection)")


def run(args: argparse.Namespace) -> int:
    check_reference(args.task)
    if args.seeds < 1 or args.workers < 1:
        raise SuiteError("--seeds and --workers must be at least 1")
    out = Path(args.out or f"results/tables/{args.task.replace(':', '-')}.parquet")
    spec = TabulateSpec(task=args.task, out=out, seeds=args.seeds, scale=args.scale,
                        workers=args.workers, executor=args.executor,
                        devices=tuple(d for d in args.devices.split(",") if d),
                        time_limit=args.time_limit)
    console = Console()
    columns = (TextColumn(f"{args.task} curves"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        bar = progress.add_task("curves", total=None)
        meta = tabulate(spec, on_curve=lambda done, total: progress.update(
            bar, completed=done, total=total))
    state = "complete" if meta["complete"] else "incomplete: run the same command to go on"
    console.print(f"{out}: {meta['recorded']}/{meta['configs'] * meta['seeds']} curves "
                  f"({meta['configs']} configurations × {meta['seeds']} seeds, "
                  f"{meta['failed']} failed), {state}; progress in {progress_path(out)}")
    return 0
