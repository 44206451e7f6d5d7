"""`suite tasks`: every task's search space, default configuration and fidelity."""

from __future__ import annotations

import argparse
import shlex
from dataclasses import fields

from rich.console import Console
from rich.table import Table

from suite.config import describe_space
from suite.registry import load_task, task_names


def list_tasks(args: argparse.Namespace) -> int:
    console = Console()
    names = [args.task] if args.task else sorted(task_names())
    for name in names:
        task = load_task(name)
        info, default = task.info, task.default_config()
        fid = info.fidelity
        table = Table(title=f"{info.name}: {info.description}", title_justify="left")
        for column in ("hyperparameter", "domain", "default", "active when"):
            table.add_column(column)
        for hp, domain, condition in describe_space(task.config_space()):
            active = condition.split("|", 1)[1].strip() if "|" in condition else "always"
            table.add_row(hp, domain, str(default.get(hp, "—")), active)
        console.print(table)
        direction = "minimize" if info.metric.minimize else "maximize"
        also = f"; also {', '.join(info.extra_metrics)}" if info.extra_metrics else ""
        caps = [f.name for f in fields(task.capabilities) if getattr(task.capabilities, f.name)]
        console.print(f"  run it: suite run --task {shlex.quote(name)} ...", soft_wrap=True,
                      markup=False, highlight=False)  # the name --task takes, not info.name
        console.print(f"  objective: {info.metric.name} ({direction}){also}\n  fidelity: "
                      f"epochs {fid.min_epochs}..{fid.max_epochs}, eta {fid.eta}\n  "
                      f"capabilities: {', '.join(caps) or 'none'}\n")
    return 0
