"""`suite report DIR…`: a report folder (Markdown, HTML, figures, data) from run logs."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from suite.errors import SuiteError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dirs", nargs="*", metavar="DIR",
                        help="run folders or folders holding runs (live or replayed)")
    parser.add_argument("--out", help="report folder (default DIR/report for one DIR)")
    parser.add_argument("--table", metavar="PATH",
                        help="a recorded table: regret against its best value, its grid "
                             "fANOVA and fidelity correlation (replays name theirs in meta)")
    parser.add_argument("--aggregate", choices=["iqm", "median", "mean"], default="iqm",
                        help="across seeds (default iqm: the interquartile mean)")
    parser.add_argument("--bootstrap", type=int, default=1000, metavar="N",
                        help="bootstrap resamples of the seeds for the bands (default 1000)")
    parser.add_argument("--test", action="store_true",
                        help="evaluate live runs' incumbent checkpoints on the test set "
                             "(needs torch and <run>/checkpoints)")
    parser.add_argument("--device", default="auto", help="for --test: auto, cpu, cuda[:N]")
    parser.add_argument("--top", type=int, default=10,
                        help="configurations in the learning-curve figures (default 10)")
    parser.add_argument("--fidelities", metavar="E,E,…",
                        help="epochs for importance and fidelity correlation "
                             "(default 1, 3, 9, … up to the table's last epoch)")
    parser.add_argument("--pairs-at", metavar="B,B,…",
                        help="budget points of the pairwise comparison, in the runs' unit "
                             "(default: the study's budget and its half, e.g. 30x,60x)")
    parser.add_argument("--no-table-figures", dest="table_figures", action="store_false",
                        help="use the table for regret only; leave its importance, fidelity "
                             "and top-curve figures out")
    parser.add_argument("--no-pdf", dest="pdf", action="store_false",
                        help="PNG figures only, no PDF beside each (the PDFs, for papers, "
                             "take about half of a report's time)")


def options(args: argparse.Namespace, *, render: bool = True):
    """The `ReportOptions` the parsed arguments ask for."""
    from suite.report import ReportOptions

    if args.bootstrap < 100:
        raise SuiteError(f"--bootstrap must be at least 100, got {args.bootstrap}")
    if args.top < 1:
        raise SuiteError(f"--top must be at least 1, got {args.top}")
    return ReportOptions(table=Path(args.table) if args.table else None,
                         aggregate=args.aggregate, resamples=args.bootstrap, test=args.test,
                         device=args.device, top=args.top,
                         fidelities=_fidelities(args.fidelities),
                         table_figures=args.table_figures, render=render,
                         pairs_at=_pairs_at(args.pairs_at), pdf=args.pdf)


def _pairs_at(text: str | None) -> tuple[str, ...] | None:
    """`30x,60x` -> ("30x", "60x"), each checked now so a typo fails before any work."""
    if text is None:
        return None
    from suite.budget import parse_budget

    points = tuple(t.strip() for t in text.split(",") if t.strip())
    if not points:
        raise SuiteError(f"malformed --pairs-at {text!r}: expected e.g. 30x,60x")
    for point in points:
        parse_budget(point)
    return points


def _fidelities(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        epochs = tuple(int(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise SuiteError(f"malformed --fidelities {text!r}: expected e.g. 1,3,9,27") from None
    if not epochs or min(epochs) < 1 or list(epochs) != sorted(set(epochs)):
        raise SuiteError(f"--fidelities must be increasing epochs ≥ 1, got {text!r}")
    return epochs


def out_dir(args: argparse.Namespace) -> Path:
    if args.out:
        return Path(args.out)
    if len(args.dirs) == 1:
        return Path(args.dirs[0]) / "report"
    raise SuiteError("give --out: the report folder is DIR/report only for a single DIR")


def run(args: argparse.Namespace) -> int:
    from suite.report import build_report

    if not args.dirs and not args.table:
        raise SuiteError("nothing to report on: give run folders and/or --table PATH")
    for d in args.dirs:
        if not Path(d).exists():
            raise SuiteError(f"{d} does not exist")
    out, opts = out_dir(args), options(args)
    console = Console()
    columns = (TextColumn("{task.description:<44}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        bar = progress.add_task("report", total=None)
        result = build_report([Path(d) for d in args.dirs], out, opts,
                              on_step=lambda done, total, what: progress.update(
                                  bar, completed=done, total=total, description=what))
    console.print(f"{out / 'report.md'}: {len(result.figures)} figure files, "
                  f"{len(result.data)} data files", soft_wrap=True)  # a path never broken
    for note in result.notes:
        console.print(f"  note: {note}")
    return 0
