"""`suite train`: the first thing a new user tries; one configuration, per-epoch metrics."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from suite.config import load_config_arg, validate_config
from suite.errors import SuiteError
from suite.registry import load_task
from suite.spec import check_seeds


def train(args: argparse.Namespace) -> int:
    task = load_task(args.task, scale=args.scale)
    config = validate_config(task.config_space(), load_config_arg(args.config, {}),
                             fill_from=task.default_config())
    check_seeds((args.seed,))
    save = Path(args.save) if args.save else None
    if save is not None:
        _check_writable(save)
    elif args.test:
        raise SuiteError("--test needs --save PATH (the model to evaluate)")
    if args.test and not task.capabilities.test:
        raise SuiteError(f"task {args.task} has no test evaluation (drop --test)")
    epochs = args.epochs if args.epochs is not None else task.info.fidelity.max_epochs
    console = Console(stderr=False)
    scale = f" ({args.scale})" if args.scale else ""
    console.print(f"[bold]{task.info.name}[/]{scale} seed {args.seed}: "
                  f"{json.dumps(config, sort_keys=True)}")
    resume = Path(args.resume_from) if args.resume_from else None
    results = task.train(config, epochs=epochs, seed=args.seed, resume_from=resume,
                         save_to=save, device=args.device)
    total_seconds = 0.0
    with Progress(TextColumn("epochs"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=True) as progress:
        bar = progress.add_task("train", total=epochs)
        for result in results:
            total_seconds += result.device_seconds
            progress.update(bar, completed=result.epoch)
            metrics = "  ".join(f"{k} {v:.4g}" for k, v in result.metrics.items())
            progress.console.print(f"epoch {result.epoch:3d}/{epochs}  {metrics}  "
                                   f"{result.device_seconds:.2f}s")
    console.print(f"trained in {total_seconds:.1f} device-seconds")
    if args.test:
        test = task.evaluate(save, device=args.device)
        console.print("test: " + "  ".join(f"{k} {v:.4g}" for k, v in test.items()))
    return 0


def _check_writable(path: Path) -> None:
    """Refuse a --save path that cannot be written before training, not after an epoch."""
    if path.is_dir() or not str(path).strip():
        raise SuiteError(f"--save {str(path)!r} must name a file, not a folder")
    existing = next(p for p in path.absolute().parents if p.exists())
    if not existing.is_dir():
        raise SuiteError(f"--save {path}: cannot write below {existing}, a file")
