"""`suite run`: a whole comparison (optimizers × seeds) into one folder, with progress."""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
from functools import partial
from pathlib import Path

from rich import box
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from suite.budget import UNIT_NAMES, parse_budget, parse_budget_spelling
from suite.errors import NoSpaceError, SuiteError
from suite.study import STUDY_NAME, Stopped, StudySpec, parse_seeds

# Flags that define a study; with --resume they come from the study's plan instead.
# --address is not one: it says where the study runs, and a cluster restarted after a
# crash (a new SLURM allocation) has a new address, so --resume DIR --address ADDR is fine.
PLAN_FLAGS = ("task", "optimizer", "budget", "seed", "seeds", "scale", "promotion", "workers",
              "devices", "executor", "table", "gpus_per_trial", "trial_timeout", "fuse",
              "fuse_max", "include_default", "keep_checkpoints")


def add_arguments(run: argparse.ArgumentParser) -> None:
    run.add_argument("--task", help="NAME (suite tasks lists them) or package.module:Object")
    run.add_argument("--optimizer", help="one or more, comma-separated (e.g. random,bohb)")
    run.add_argument("--budget", help="600s (device-seconds), 300e (epochs), 20x "
                                      "(full-fidelity equivalents) or 0.5carps (CARP-S "
                                      "budgets: ⌈20 + 40·√d⌉ x for d hyperparameters)")
    run.add_argument("--seed", type=int, help="one seed (default 0)")
    run.add_argument("--seeds", help="several seeds: 0-4 or 0,2,5-7")
    run.add_argument("--workers", type=int, help="parallel workers (simulated ones in a replay)")
    run.add_argument("--jobs", type=int, metavar="N",
                     help="a replay's runs (optimizer x seed) in N processes at once (default: "
                          "the cores; logs as serial but wall times); a live study runs its "
                          "runs one after another, its trials on --workers")
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
                          "ray: Ray actors on a cluster, or with --table each run a Ray task "
                          "(pip install 'hpo-suite[ray]')")
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
    run.add_argument("--keep-checkpoints", choices=["needed", "all"],
                     help="needed (default): a live run deletes each checkpoint once nothing "
                          "(a retry, a resume, a promotion, the incumbent) can need it, and "
                          "keeps the incumbent's at its end; all: delete none")
    run.add_argument("--mlflow", nargs="?", const="", metavar="URI",
                     help="also log the study to MLflow (a run per study, optimizer x seed "
                          "and trial) at URI (default MLFLOW_TRACKING_URI, else MLflow's "
                          "default); never stops the study (pip install 'hpo-suite[mlflow]')")
    run.add_argument("--resume", metavar="DIR", help="continue an interrupted study")


def run(args: argparse.Namespace) -> int:
    """A thin layer over the Python API (`suite.api.start` and `resume`): arguments in, a
    progress bar while it runs, a summary table and the next command out."""
    from suite import api

    if args.resume:
        # None: not given; False: a store_true flag not given (`0` is a value given)
        given = [f"--{f.replace('_', '-')}" for f in PLAN_FLAGS
                 if getattr(args, f, None) is not None and getattr(args, f) is not False]
        if given or args.out is not None:
            raise SuiteError(f"--resume takes its settings from the study; drop "
                             f"{', '.join(given + (['--out'] if args.out is not None else []))}")
        out = Path(args.resume)
        call = partial(api.resume, out, address=args.address, jobs=args.jobs,
                       mlflow=args.mlflow)
    else:
        if args.out is not None and not args.out.strip():
            raise SuiteError("--out is empty: name the study folder (or leave --out out)")
        plan, where = _plan_from_args(args)
        out = Path(args.out or api.default_out(plan.task))
        call = partial(api.start, plan, where, out, jobs=args.jobs, mlflow=args.mlflow)
    console = Console()
    try:
        study = _run_with_progress(call, console)
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
    _print_summary(console, study.spec, out, study.outcomes)  # the plan as resolved
    return 0


def _plan_from_args(args: argparse.Namespace):
    from suite.api import Placement, Plan, check_optimizers, spec_of
    from suite.registry import check_reference

    for flag in ("task", "optimizer", "budget"):
        if getattr(args, flag) is None:
            raise SuiteError(f"--{flag} is required (or --resume DIR)")
    check_reference(args.task)  # resolved (imported and checked) before anything is written
    if args.seed is not None and args.seeds is not None:
        raise SuiteError("give --seed or --seeds, not both")
    seeds = parse_seeds(args.seeds) if args.seeds else (args.seed or 0,)
    optimizers = tuple(o.strip() for o in args.optimizer.split(",") if o.strip())
    check_optimizers(optimizers)
    parse_budget_spelling(args.budget)
    table = _table_arg(args)
    devices = tuple(d.strip() for d in (args.devices or "auto").split(",") if d.strip())
    if args.fuse_max is not None and args.fuse != "auto":
        raise SuiteError("--fuse-max sizes fused arrays: give it with --fuse auto")
    plan = Plan(task=args.task, optimizers=optimizers, seeds=seeds, budget=args.budget,
                scale=args.scale, promotion=args.promotion or "resume",
                include_default=args.include_default)
    where = Placement(workers=1 if args.workers is None else args.workers,
                      devices=devices, executor=args.executor, table=table,
                      address=args.address, gpus_per_trial=args.gpus_per_trial,
                      trial_timeout=args.trial_timeout, fuse=args.fuse or "off",
                      fuse_max=8 if args.fuse_max is None else args.fuse_max,
                      keep_checkpoints=args.keep_checkpoints or "needed")
    spec_of(plan, where)  # the whole plan checked before anything runs
    return plan, where


def _table_arg(args: argparse.Namespace) -> str | None:
    """`--table` alone means the task's table in the conventional place."""
    if args.table is None:
        return None
    if args.devices is not None:
        raise SuiteError("--devices has no meaning in a replay (--table): its workers are "
                         "simulated; give --workers N")
    return args.table or f"results/tables/{args.task.replace(':', '-')}.parquet"


def _run_with_progress(call, console: Console):
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
        return call(on_run=on_run)


def _print_summary(console: Console, spec: StudySpec, out: Path, outcomes) -> None:
    """Per optimizer (and seed): the incumbent's loss, its configuration, the budget used;
    then the command that makes the report."""
    unit = parse_budget(spec.budget).unit
    asked = f", asked as {spec.budget_spelling}" if spec.budget_spelling else ""
    console.print(f"\n[bold]{spec.task}[/] budget {spec.budget} ({UNIT_NAMES[unit]}{asked}), "
                  f"promotion {spec.promotion}: {out}", soft_wrap=True)
    if spec.table is not None:
        console.print(f"replayed from {spec.table} on {spec.workers} simulated worker(s)",
                      soft_wrap=True)
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for column, justify in (("optimizer", "left"), ("seed", "right"), ("loss", "right"),
                            ("epochs", "right"), ("used", "right"), ("trials", "right"),
                            ("end", "left"), ("configuration", "left")):
        table.add_column(column, justify=justify, overflow="fold",
                         no_wrap=column != "configuration")
    for o in outcomes:
        t, best = o.ledger.totals, o.state.incumbent
        spent = {"x": f"{t.full:.2f}x", "e": f"{t.epochs}e",
                 "s": f"{t.device_seconds:.1f}s"}[unit.value]
        loss, epochs, config = "-", "-", "no trial completed"
        if best is not None:
            loss, epochs = f"{best.loss:.4g}", str(best.epochs)
            config = ", ".join(f"{k}={_short(v)}" for k, v in sorted(dict(best.config).items()))
        table.add_row(o.optimizer, str(o.seed), loss, epochs, spent, str(o.state.trials),
                      o.reason, config)
    console.print(table)
    console.print(f"loss: the incumbent's objective, minimized (a metric to maximize is "
                  f"negated); used: the budget spent, in {UNIT_NAMES[unit]}")
    console.print(f"next: [bold]suite report {shlex.quote(str(out))}[/]", soft_wrap=True)


def _short(value) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)
