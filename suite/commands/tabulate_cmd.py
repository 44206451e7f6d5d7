"""`suite tabulate`: record a task's table (resumable, in chunks across GPU sessions)."""

from __future__ import annotations

import argparse
import math
import signal
import sys
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from suite.devices import check_device_names, check_devices_here
from suite.errors import NoSpaceError, SuiteError
from suite.interrupt import Stopped
from suite.registry import check_reference
from suite.spec import MAX_WORKERS
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
    parser.add_argument("--no-test", dest="test", action="store_false",
                        help="record no test metrics (to go on with a table recorded "
                             "without them; by default every epoch records them where the "
                             "task can)")
    parser.add_argument("--fuse", choices=["auto", "off"],
                        help="auto: grid points that share a shape train as fused arrays, "
                             "each epoch charged the shape's solo timing (local executor; "
                             "default off)")
    parser.add_argument("--fuse-max", type=int, metavar="K",
                        help="members per fused array (default 8)")


def run(args: argparse.Namespace) -> int:
    check_reference(args.task)
    if args.seeds < 1 or not 1 <= args.workers <= MAX_WORKERS:
        raise SuiteError(f"--seeds must be at least 1 and --workers in 1..{MAX_WORKERS}")
    # NaN would never stop collection, and an infinite limit is no limit: refuse both
    if args.time_limit is not None and not 0 < args.time_limit < math.inf:
        raise SuiteError(f"--time-limit must be positive, finite seconds, got "
                         f"{args.time_limit:g}")
    if args.fuse_max is not None and args.fuse != "auto":
        raise SuiteError("--fuse-max sizes fused arrays: give it with --fuse auto")
    out = Path(args.out or f"results/tables/{args.task.replace(':', '-')}.parquet")
    devices = tuple(d for d in args.devices.split(",") if d)
    check_device_names(devices)  # else every curve fails on a device that is not there
    check_devices_here(devices)
    spec = TabulateSpec(task=args.task, out=out, seeds=args.seeds, scale=args.scale,
                        workers=args.workers, executor=args.executor, devices=devices,
                        time_limit=args.time_limit, test=args.test, fuse=args.fuse or "off",
                        fuse_max=8 if args.fuse_max is None else args.fuse_max)
    console = Console()
    columns = (TextColumn(f"{args.task} curves"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    again = f"rerun the same command to go on from {progress_path(out)}"
    try:
        with Progress(*columns, console=console) as progress:
            bar = progress.add_task("curves", total=None)
            meta = tabulate(spec, on_curve=lambda done, total: progress.update(
                bar, completed=done, total=total))
    except NoSpaceError as exc:  # the curves recorded stay; a torn last one gets a marker
        raise SuiteError(f"{exc}; {again} after freeing space") from None
    except Stopped as exc:
        name = signal.Signals(exc.signum or signal.SIGINT).name
        print(f"suite tabulate: interrupted ({name}): {again}", file=sys.stderr)
        return exc.exit_code
    state = "complete" if meta["complete"] else "incomplete: run the same command to go on"
    console.print(f"{out}: {meta['recorded']}/{meta['configs'] * meta['seeds']} curves "
                  f"({meta['configs']} configurations × {meta['seeds']} seeds, "
                  f"{meta['failed']} failed), {state}; progress in {progress_path(out)}",
                  soft_wrap=True)  # paths never broken across lines
    return 0
