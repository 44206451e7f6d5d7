"""`build_report`: compose the analyses and figures into a report folder.

Layout: `OUT/report.md` (and `report.html`), `OUT/figures/<name>.png|pdf`, and
`OUT/data/<name>.csv`: the frame behind every figure and table, written deterministically
(fixed float format, no run paths, no times), so two builds from the same inputs give
byte-identical data files; `suite figures` records their SHA-256 in the manifest.

This module reads the inputs and plans the steps; `_writer` holds the `Report` that
writes, and each section lives in `_sec_anytime` (inputs, anytime, ranks, statistics),
`_sec_testset` (incumbents on the test set) or `_sec_analysis` (importance, fidelity,
learning curves).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from pathlib import Path

from suite.errors import SuiteError
from suite.report._runs import RunSet, load_runs
from suite.report._sec_analysis import (
    curves_section,
    fidelity_section,
    grid_importance_section,
    trial_importance_section,
)
from suite.report._sec_anytime import anytime_section, describe_inputs, final_section
from suite.report._sec_testset import testset_section
from suite.report._table import require_complete
from suite.report._writer import Report, ReportOptions, ReportResult, Step, write_report
from suite.tables import TableError, read_table

__all__ = ["ReportOptions", "ReportResult", "build_report"]


def build_report(roots: Iterable[Path], out: Path,
                 options: ReportOptions = ReportOptions(),  # noqa: B008 (frozen, never mutated)
                 on_step: Callable[[int, int, str], None] | None = None) -> ReportResult:
    """Analyse the runs at or below `roots` (and/or `options.table`) into `out`.

    Args:
        roots: run folders or folders holding runs (may be empty with `options.table`).
        out: the report folder (created; files in it are overwritten).
        on_step: called as (done, total, description) before each step, for progress.

    Raises:
        SuiteError: nothing to report on, or runs that cannot be told apart.
    """
    roots = [Path(r) for r in roots]
    if not roots and options.table is None:
        raise SuiteError("nothing to report on: give run folders and/or --table PATH")
    report = Report(Path(out), options)
    if on_step is not None:
        on_step(0, 0, "reading run logs" if roots else "reading the table")
    steps = _plan(report, roots)
    for i, (description, step) in enumerate(steps):
        if on_step is not None:
            on_step(i, len(steps), description)
        step()
    if on_step is not None:
        on_step(len(steps), len(steps), "done")
    return report.result


def _plan(report: Report, roots: list[Path]) -> list[Step]:
    """The steps of a report: read the runs, then per task its sections, then write."""
    steps: list[Step] = []
    title = ", ".join(map(str, roots)) or str(report.options.table)
    report.text(f"# Report: {title}")
    if roots:
        runs = load_runs(roots)
        _check_unique(runs)
        report.result.inputs += roots
        tasks = runs.tasks
    else:
        runs, tasks = None, []
    table_task = _table_task(report)
    try:  # only once every input has been read: a rejected report writes nothing
        report.out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SuiteError(f"cannot write the report folder {report.out}: {exc.strerror}") \
            from None
    for task in sorted(set(tasks) | ({table_task} if table_task else set())):
        steps += _task_steps(report, runs.of_task(task) if runs is not None and task in tasks
                             else None, task)
    steps.append(("writing report.md", lambda: write_report(report)))
    return steps


def _table_task(report: Report) -> str | None:
    """The task of `--table`, read once (cached on the report)."""
    path = report.options.table
    if path is None:
        return None
    table = read_table(Path(path))  # asked for by name: unreadable is an error, not a note
    report.tables[str(path)] = table
    report.result.inputs.append(Path(path))
    return table.meta.get("task")


def _read_table(report: Report, path: Path):
    key = str(path)
    if key not in report.tables:
        try:
            report.tables[key] = read_table(Path(path))
            report.result.inputs.append(Path(path))
        except TableError as exc:
            report.note(str(exc))
            report.tables[key] = None
    return report.tables[key]


def _check_unique(runs: RunSet) -> None:
    dup = runs.runs[runs.runs.duplicated(["task", "optimizer", "seed"], keep=False)]
    if not dup.empty:
        first = dup.iloc[0]
        raise SuiteError(f"two runs of {first['optimizer']} seed {first['seed']} on "
                         f"{first['task']} ({', '.join(dup['run'].head(2))}); report them "
                         "separately")


def _task_table(report: Report, runs: RunSet | None, task: str):
    """The table for `task`: `--table` when it is this task's, else the runs' meta."""
    if report.options.table is not None:
        table = _read_table(report, report.options.table)
        if table is not None and table.meta.get("task") == task:
            return table, str(report.options.table)
    if runs is not None:
        paths = sorted({p for p in runs.runs["table"].dropna()})
        if len(paths) > 1:
            report.note(f"the runs of {task} replayed different tables ({', '.join(paths)}); "
                        f"regret and the table's figures use {paths[0]}")
        if paths:
            table = _read_table(report, Path(paths[0]))
            _check_digest(report, runs, paths[0])
            return table, paths[0]
    return None, None


def _check_digest(report: Report, runs: RunSet, path: str) -> None:
    """A replay records its table's SHA-256; say so when the file has changed since."""
    recorded = set(runs.runs.loc[runs.runs["table"] == path, "table_sha256"].dropna())
    if recorded and Path(path).is_file():
        digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
        if digest not in recorded:
            report.note(f"{path} has changed since these runs replayed it (SHA-256 differs "
                        "from their meta.json): regret is measured against today's file")


def _task_steps(report: Report, runs: RunSet | None, task: str) -> list[Step]:
    s: dict = {"task": task}  # what a section leaves for later ones: table, trace, finals…

    def header() -> None:
        table, path = _task_table(report, runs, task)
        s["table"], s["table_path"] = table, path
        report.text(f"## {task}")
        incomplete = require_complete(table, path) if table is not None else None
        if incomplete:
            report.note(incomplete)
            s["table"] = None
        describe_inputs(report, runs, s)

    steps: list[Step] = [(f"{task}: reading", header)]
    if runs is not None:
        steps += [(f"{task}: anytime performance", lambda: anytime_section(report, runs, s)),
                  (f"{task}: ranks and statistics", lambda: final_section(report, runs, s)),
                  (f"{task}: test set", lambda: testset_section(report, runs, s)),
                  (f"{task}: importance from the trials",
                   lambda: trial_importance_section(report, runs, s)),
                  (f"{task}: learning curves and trials", lambda: curves_section(report, runs, s))]
    if report.options.table_figures:
        steps += [(f"{task}: grid fANOVA", lambda: grid_importance_section(report, s)),
                  (f"{task}: fidelity correlation", lambda: fidelity_section(report, s))]
    return steps
