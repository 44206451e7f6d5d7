"""`suite run`: a whole comparison (optimizers × seeds) into one folder, with progress."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import sys
import time
from dataclasses import replace
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

from suite.budget import UNIT_NAMES, parse_budget
from suite.errors import NoSpaceError, SuiteError
from suite.study import STUDY_NAME, Stopped, StudySpec, load_study, parse_seeds, run_study

# Flags that define a study; with --resume they come from the study's plan instead.
# --address is not one: it says where the study runs, and a cluster restarted after a
# crash (a new SLURM allocation) has a new address, so --resume DIR --address ADDR is fine.
PLAN_FLAGS = ("task", "optimizer", "budget", "seed", "seeds", "scale", "promotion", "workers",
              "devices", "executor", "table", "gpus_per_trial", "trial_timeout", "fuse",
              "fuse_max", "include_default")


def add_arguments(run: argparse.ArgumentParser) -> None:
    run.add_argument("--task", help="NAME (suite tasks lists them) or package.module:Object")
    run.add_argument("--optimizer", help="one or more, comma-separated (e.g. random,bohb)")
    run.add_argument("--budget", help="600s (device-seconds), 300e (epochs) or 20x "
                                      "(full-fidelity equivalents)")
    run.add_argument("--seed", type=int, help="one seed (default 0)")
    run.add_argument("--seeds", help="several seeds: 0-4 or 0,2,5-7")
    run.add_argument("--workers", type=int, help="parallel workers (simulated ones in a replay)")
    run.add_argument("--devices", help="comma-separated, round-robin over workers, "
                                       "e.g. cuda:0,cuda:0 (default auto)")
    run.add_argument("--out", help="study folder (default runs/<task>-<time>)")
    run.add_argument("--scale", choices=["tiny", "full"])
    run.add_argument("--promotion", choices=["resume", "retrain"])
    run.add_argument("--include-default", action="store_true",
                     help="make the task's default configuration one of the first trials (in a "
                          "replay: the table grid's configuration nearest to it)")
    run.add_argument("--executor", choices=["local", "inprocess", "ray"],
                     help="local: subprocess workers (default); inprocess: this process; "
                          "ray: Ray actors on a cluster (pip install 'hpo-suite[ray]')")
    run.add_argument("--address", help="with --executor ray: the cluster's address "
                                       "(default: start a local Ray instance)")
    run.add_argument("--gpus-per-trial", type=float, metavar="G",
                     help="with --executor ray: each trial's GPUs, e.g. 0.25 (default 0: CPU)")
    run.add_argument("--trial-timeout", type=float, metavar="SECONDS",
                     help="stop a trial attempt after this many wall seconds (logged timeout)")
    run.add_argument("--table", nargs="?", const="", metavar="PATH",
                     help="replay against a recorded table on the simulated executor "
                          "(default PATH results/tables/<task>.parquet)")
    run.add_argument("--fuse", choices=["auto", "off"],
                     help="auto: train queued trials that share a shape as one fused array "
                          "per worker (local executor; default off)")
    run.add_argument("--fuse-max", type=int, metavar="K",
                     help="members per fused array (default 8); up to workers × K trials "
                          "in flight")
    run.add_argument("--resume", metavar="DIR", help="continue an interrupted study")


def run(args: argparse.Namespace) -> int:
    if args.resume:
        # None: not given; False: a store_true flag not given (`0` is a value given)
        given = [f"--{f.replace('_', '-')}" for f in PLAN_FLAGS
                 if getattr(args, f, None) is not None and getattr(args, f) is not False]
        if given or args.out is not None:
            raise SuiteError(f"--resume takes its settings from the study; drop "
                             f"{', '.join(given + (['--out'] if args.out is not None else []))}")
        spec, out = load_study(Path(args.resume)), Path(args.resume)
        if args.address is not None:
            if spec.executor != "ray":
                raise SuiteError(f"--address is for --executor ray; {out} runs on "
                                 f"{spec.executor}")
            spec = replace(spec, address=args.address)
    else:
        if args.out is not None and not args.out.strip():
            raise SuiteError("--out is empty: name the study folder (or leave --out out)")
        spec = _spec_from_args(args)
        stem = spec.task.rpartition(":")[2] or spec.task
        out = Path(args.out or f"runs/{stem}-{time.strftime('%Y%m%d-%H%M%S')}")
    _fix_hash_seed_for_smac(spec)
    console = Console()
    try:
        outcomes = _run_with_progress(spec, out, bool(args.resume), console)
    except NoSpaceError as exc:  # what is logged stays; a torn last row is repaired on resume
        if not (out / STUDY_NAME).exists():
            raise
        raise SuiteError(f"{exc}; resume with suite run --resume {shlex.quote(str(out))} "
                         "after freeing space") from None
    except Stopped as exc:  # SIGINT or SIGTERM: the study stopped cleanly and resumes
        signame = signal.Signals(exc.signum or signal.SIGINT).name
        print(f"suite run: interrupted ({signame}): resume with suite run --resume "
              f"{shlex.quote(str(out))}",
              file=sys.stderr)
        return exc.exit_code
    _print_summary(console, load_study(out), out, outcomes)  # the plan as resolved
    return 0


def _spec_from_args(args: argparse.Namespace) -> StudySpec:
    from suite.registry import check_reference

    for flag in ("task", "optimizer", "budget"):
        if getattr(args, flag) is None:
            raise SuiteError(f"--{flag} is required (or --resume DIR)")
    check_reference(args.task)  # resolved (imported and checked) before anything is written
    if args.seed is not None and args.seeds is not None:
        raise SuiteError("give --seed or --seeds, not both")
    seeds = parse_seeds(args.seeds) if args.seeds else (args.seed or 0,)
    optimizers = tuple(o.strip() for o in args.optimizer.split(",") if o.strip())
    from suite.optimizers import OPTIMIZERS

    unknown = [o for o in optimizers if o not in OPTIMIZERS]
    if unknown:
        raise SuiteError(f"unknown optimizer(s) {', '.join(unknown)}; choose from "
                         f"{', '.join(sorted(OPTIMIZERS))}")
    parse_budget(args.budget)
    table = _table_arg(args)
    devices = tuple(d.strip() for d in (args.devices or "auto").split(",") if d.strip())
    if args.fuse_max is not None and args.fuse != "auto":
        raise SuiteError("--fuse-max sizes fused arrays: give it with --fuse auto")
    return StudySpec(task=args.task, optimizers=optimizers, seeds=seeds, budget=args.budget,
                     scale=args.scale, promotion=args.promotion or "resume",
                     include_default=args.include_default,
                     workers=1 if args.workers is None else args.workers,
                     devices=devices, executor=args.executor, table=table,
                     address=args.address, gpus_per_trial=args.gpus_per_trial,
                     trial_timeout=args.trial_timeout, fuse=args.fuse or "off",
                     fuse_max=8 if args.fuse_max is None else args.fuse_max)


def _table_arg(args: argparse.Namespace) -> str | None:
    """`--table` alone means the task's table in the conventional place."""
    if args.table is None:
        return None
    if args.devices is not None:
        raise SuiteError("--devices has no meaning in a replay (--table): its workers are "
                         "simulated; give --workers N")
    return args.table or f"results/tables/{args.task.replace(':', '-')}.parquet"


def _fix_hash_seed_for_smac(spec: StudySpec) -> None:
    """SMAC's random forest is reproducible only with PYTHONHASHSEED fixed at start-up."""
    if "smac" in spec.optimizers and os.environ.get("PYTHONHASHSEED") != "0":
        env = dict(os.environ, PYTHONHASHSEED="0")
        os.execve(sys.executable, [sys.executable, "-m", "suite.cli", *sys.argv[1:]], env)


def _run_with_progress(spec: StudySpec, out: Path, resume: bool, console: Console):
    columns = (TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
               TextColumn("{task.fields[info]}"), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        def on_run(name: str, seed: int, runner) -> None:
            bar = progress.add_task(f"{name} seed {seed}", total=1.0, info="")

            def on_row(row: dict, runner) -> None:
                best = runner.state.incumbent
                info = (f"{runner.state.trials} trials, incumbent "
                        f"{best.loss:.4g} @ {best.epochs} ep" if best else
                        f"{runner.state.trials} trials")
                progress.update(bar, completed=runner.ledger.fraction, info=info)
            runner.on_row = on_row
        return run_study(spec, out, resume=resume, on_run=on_run)


def _print_summary(console: Console, spec: StudySpec, out: Path, outcomes) -> None:
    unit = parse_budget(spec.budget).unit
    console.print(f"\n[bold]{spec.task}[/] budget {spec.budget} ({UNIT_NAMES[unit]}), "
                  f"promotion {spec.promotion}: {out}")
    if spec.table is not None:
        console.print(f"replayed from {spec.table} on {spec.workers} simulated worker(s)")
    for o in outcomes:
        t, best = o.ledger.totals, o.state.incumbent
        spent = (f"{t.epochs} epochs, {t.device_seconds:.1f} device-s, {t.full:.2f}x "
                 f"({o.state.trials} trials, stopped by {o.reason})")
        console.print(f"[bold]{o.optimizer}[/] seed {o.seed}: {spent}")
        if best is None:
            console.print("  no trial completed")
            continue
        metrics = "  ".join(f"{k} {v:.4g}" for k, v in best.metrics.items())
        console.print(f"  incumbent (trial {best.trial_id}, {best.epochs} epochs): {metrics}")
        console.print(f"  {json.dumps(dict(best.config), sort_keys=True)}")
