"""`suite run`: a whole comparison (optimizers × seeds) into one folder, with progress."""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
from collections import Counter
from functools import partial
from pathlib import Path

from rich import box
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from suite.budget import UNIT_NAMES, parse_budget
from suite.commands.summary import failures_of, metric_words, optimizer_lines
from suite.errors import NoSpaceError, SuiteError
from suite.plan import add_flags, check_seeds, from_flags, given_flags
from suite.study import STUDY_NAME, Stopped, StudySpec


def add_arguments(run: argparse.ArgumentParser) -> None:
    add_flags(run)  # one per setting of a study (`suite.plan`)
    run.add_argument("--seed", type=int, help="one seed (default 0)")
    run.add_argument("--jobs", type=int, metavar="N",
                     help="a replay's runs (optimizer x seed) in N processes at once (default: "
                          "the cores; logs as serial but wall times); a live study runs its "
                          "runs one after another, its trials on --workers")
    run.add_argument("--out", help="study folder (default runs/<task>-<time>)")
    run.add_argument("--mlflow", nargs="?", const="", metavar="URI",
                     help="also log the study to MLflow (a run per study, optimizer x seed "
                          "and trial) at URI (default MLFLOW_TRACKING_URI, else MLflow's "
                          "default); never stops the study (pip install 'hpo-suite[mlflow]')")
    run.add_argument("--resume", metavar="DIR", help="continue an interrupted study")
    run.add_argument("--per-run", action="store_true",
                     help="close with one row per run too (shown anyway for up to "
                          f"{PER_RUN_ROWS} runs)")


def run(args: argparse.Namespace) -> int:
    """A thin layer over the Python API (`suite.api.start` and `resume`): arguments in, a
    progress bar while it runs, a summary table and the next command out."""
    from suite import api

    if args.resume:
        # --address is not in the plan: a cluster restarted after a crash (a new SLURM
        # allocation) has a new address, so --resume DIR --address ADDR is fine
        given = given_flags(args) + ["--seed"] * (args.seed is not None)
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
    _print_summary(console, study.spec, out, study.outcomes,  # the plan as resolved
                   per_run=args.per_run)
    return 0


def _plan_from_args(args: argparse.Namespace):
    from suite.api import check_optimizers, spec_of
    from suite.registry import check_reference

    if args.seed is not None:  # --seed N: --seeds N
        if args.seeds is not None:
            raise SuiteError("give --seed or --seeds, not both")
        check_seeds((args.seed,))
        args.seeds = str(args.seed)
    args.table = _table_arg(args)
    args.space = _space_arg(args)
    if args.fuse_max is not None and args.fuse != "auto":
        raise SuiteError("--fuse-max sizes fused arrays: give it with --fuse auto")
    plan, where = from_flags(args)
    check_reference(plan.task)  # resolved (imported and checked) before anything is written
    check_optimizers(plan.optimizers)
    spec_of(plan, where)  # the whole plan checked before anything runs
    return plan, where


def _table_arg(args: argparse.Namespace) -> str | None:
    """`--table` alone means the task's table in the conventional place."""
    if args.table is None or args.task is None:  # no --task: refused as such
        return args.table
    if args.devices is not None:
        raise SuiteError("--devices has no meaning in a replay (--table): its workers are "
                         "simulated; give --workers N")
    return args.table or _default_table(args.task)


def _space_arg(args: argparse.Namespace) -> str | None:
    """`--space table [PATH]`: the path of the table whose grid a live study searches."""
    if args.space is None:
        return None
    kind, *path = args.space
    if kind != "table" or len(path) > 1:
        raise SuiteError(f"--space takes table [PATH] (a recorded table's grid), not "
                         f"{' '.join(args.space)}")
    return path[0] if path else _default_table(args.task or "")


def _default_table(task: str) -> str:
    return f"results/tables/{task.replace(':', '-')}.parquet"


def _run_with_progress(call, console: Console):
    columns = (TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
               TextColumn("{task.fields[info]}"), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        def on_run(name: str, seed: int, runner) -> None:
            bar = progress.add_task(f"{name} seed {seed}", total=1.0, info="")

            def on_row(row: dict, runner) -> None:
                best, metric = runner.state.incumbent, runner.metric
                info = f"{runner.state.trials} trials"
                if best is not None:  # in the task's words: its metric, not negated
                    value = best.loss if metric.minimize else -best.loss
                    info += f", {metric.name} {value:.4g} @ {best.epochs} ep"
                progress.update(bar, completed=runner.ledger.fraction, info=info)
            runner.on_row = on_row
        return call(on_run=on_run)


def _print_summary(console: Console, spec: StudySpec, out: Path, outcomes, *,
                   per_run: bool = False) -> None:
    """`suite.commands.summary`: per optimizer, the best configuration, per run where there
    are few runs, the failures; then the command that makes the report."""
    unit = parse_budget(spec.budget).unit
    asked = f", asked as {spec.budget_spelling}" if spec.budget_spelling else ""
    name = _task_name(outcomes, spec.task)
    console.print(f"\n[bold]{name}[/] budget {spec.budget} ({UNIT_NAMES[unit]}{asked}), "
                  f"promotion {spec.promotion}: {out}", soft_wrap=True)
    if spec.table is not None:
        console.print(f"replayed from {spec.table} on {spec.workers} simulated worker(s)",
                      soft_wrap=True)
    if not outcomes:
        return
    metric, minimize = metric_words(outcomes[0].directory)
    failures = {(o.optimizer, o.seed): failures_of(o.directory) for o in outcomes}

    def used(o) -> float:
        t = o.ledger.totals
        return {"x": t.full, "e": t.epochs, "s": t.device_seconds}[unit.value]

    def spent(value: float) -> str:
        return f"{value:.2f}x" if unit.value == "x" else (
            f"{value:g}e" if unit.value == "e" else f"{value:.1f}s")

    objective = f"{metric} ({'minimized' if minimize else 'maximized'})"
    table = _table(("optimizer", "runs", "median", "IQR", "trials", "failed", "used"))
    table.title = f"{objective}: the incumbent of each run"
    for line in optimizer_lines(outcomes, failures, minimize, used):
        iqr = "-" if line.q1 is None else f"{line.q1:.4g}–{line.q3:.4g}"
        table.add_row(line.optimizer, str(line.runs),
                      "-" if line.median is None else f"{line.median:.4g}", iqr,
                      str(line.trials), str(line.failed), spent(line.used))
    console.print(table)
    best = _best(outcomes)
    if best is not None:
        value = best.state.incumbent.loss * (1 if minimize else -1)
        config = ", ".join(f"{k}={_short(v)}"
                           for k, v in sorted(dict(best.state.incumbent.config).items()))
        console.print(f"best: {best.optimizer} seed {best.seed}, {metric} {value:.4g} after "
                      f"{best.state.incumbent.epochs} epochs: {config}")
    if per_run or len(outcomes) <= PER_RUN_ROWS:
        runs = _table(("optimizer", "seed", metric, "epochs", "used", "trials", "failed",
                       "end"))
        for o in outcomes:
            inc = o.state.incumbent
            runs.add_row(o.optimizer, str(o.seed),
                         "-" if inc is None else f"{inc.loss * (1 if minimize else -1):.4g}",
                         "-" if inc is None else str(inc.epochs), spent(used(o)),
                         str(o.state.trials), str(failures[(o.optimizer, o.seed)].trials),
                         o.reason)
        console.print(runs)
    _print_failures(console, outcomes, failures)
    console.print(f"IQR: the middle half of the runs' values; used: the budget spent, in "
                  f"{UNIT_NAMES[unit]}; failed: trials that raised, crashed, timed out, "
                  "stopped early or reported no finite objective")
    console.print(f"next: [bold]suite report {shlex.quote(str(out))}[/]", soft_wrap=True)


PER_RUN_ROWS = 8  # runs in a study small enough to list one by one


def _table(columns: tuple[str, ...]) -> Table:
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for i, column in enumerate(columns):
        table.add_column(column, justify="left" if i == 0 or column == "end" else "right",
                         no_wrap=True)
    return table


def _best(outcomes):
    """The run whose incumbent is best by the runner's own rule (most epochs, then loss)."""
    best = None
    for o in outcomes:
        if o.state.incumbent is not None and (
                best is None or o.state.incumbent.better_than(best.state.incumbent)):
            best = o
    return best


def _print_failures(console: Console, outcomes, failures: dict) -> None:
    failed = sum(f.trials for f in failures.values())
    if not failed:
        return
    trials = sum(o.state.trials for o in outcomes)
    errors = sum((f.errors for f in failures.values()), Counter())
    error, count = errors.most_common(1)[0]
    console.print(f"[bold]failed trials: {failed} of {trials}[/]; the most frequent error "
                  f"({count} trial{'s' if count > 1 else ''}): {error}")
    console.print("each failed trial's error is in its run's log.jsonl (event end), the "
                  "traceback of one that raised in its errors/trial-<id>.txt")


def _task_name(outcomes, ref: str) -> str:
    """The task as its runs recorded it (`TaskInfo.name`), and the reference where they
    differ: `flaky (my_tasks:Flaky)`."""
    from suite.log import read_run_meta

    name = read_run_meta(outcomes[0].directory).task_name if outcomes else None
    return ref if name in (None, ref) else f"{name} ({ref})"


def _short(value) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)
