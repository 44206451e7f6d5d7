"""`suite train`: the first thing a new user tries; one configuration, per-epoch metrics."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from suite.config import load_config_arg, validate_config
from suite.registry import load_task


def train(args: argparse.Namespace) -> int:
    task = load_task(args.task, scale=args.scale)
    config = validate_config(task.config_space(), load_config_arg(args.config, {}),
                             fill_from=task.default_config())
    epochs = args.epochs if args.epochs is not None else task.info.fidelity.max_epochs
    console = Console(stderr=False)
    scale = f" ({args.scale})" if args.scale else ""
    console.print(f"[bold]{task.info.name}[/]{scale} seed {args.seed}: "
                  f"{json.dumps(config, sort_keys=True)}")
    resume = Path(args.resume_from) if args.resume_from else None
    save = Path(args.save) if args.save else None
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
        if not task.capabilities.test:
            console.print(f"[yellow]task {args.task} has no test evaluation[/]")
            return 2
        if save is None:
            console.print("[yellow]--test needs --save PATH (the model to evaluate)[/]")
            return 2
        test = task.evaluate(save, device=args.device)
        console.print("test: " + "  ".join(f"{k} {v:.4g}" for k, v in test.items()))
    return 0
