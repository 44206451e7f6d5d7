"""`build_report`: compose the analyses and figures into a report folder.

Layout: `OUT/report.md` (and `report.html`), `OUT/figures/<name>.png|pdf`, and
`OUT/data/<name>.csv`: the frame behind every figure and table, written deterministically
(fixed float format, no run paths, no times), so two builds from the same inputs give
byte-identical data files; `suite figures` records their SHA-256 in the manifest.

This module reads the inputs and calls the sections in order (`_task_report`), each a
function of what it reads (the `Report` it writes to, the task's `RunSet`, its
`TaskInputs`, frames returned by earlier sections) that returns what later ones need;
`_writer` holds the `Report` that writes, and each section lives in `_sec_anytime`
(inputs, anytime, ranks, statistics), `_sec_testset` (incumbents on the test set) or
`_sec_analysis` (importance, fidelity, learning curves).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path

from suite.errors import SuiteError
from suite.lock import LOCK_NAME, LockedError, hold_lock
from suite.report._objective import Objective
from suite.report._runs import RunSet, load_runs
from suite.report._sec_analysis import (
    curves_section,
    fidelity_section,
    grid_importance_section,
    trial_importance_section,
)
from suite.report._sec_anytime import (
    anytime_section,
    describe_inputs,
    final_section,
)
from suite.report._sec_failures import failures_section
from suite.report._sec_pairs import pairs_section
from suite.report._sec_testset import testset_section
from suite.report._table import require_complete
from suite.report._writer import (
    Report,
    ReportOptions,
    ReportResult,
    TaskInputs,
    write_report,
)
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
        LockedError: another process writes `out`, or the study or run folder it lies in.
    """
    roots = [Path(r) for r in roots]
    if not roots and options.table is None:
        raise SuiteError("nothing to report on: give run folders and/or --table PATH")
    report = Report(Path(out), options)
    if on_step is not None:
        on_step(0, 0, "reading run logs" if roots else "reading the table")
    tasks = _read_inputs(report, roots)  # every input read first: a rejected report writes
    with _writer_lock(report.out):       # nothing, not even its lock file
        try:
            report.out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SuiteError(f"cannot write the report folder {report.out}: {exc.strerror}"
                             ) from None
        step = _Progress(on_step, sum(_step_count(runs, options) for _, runs in tasks) + 1)
        shown = shown_names(tasks)
        for task, runs in tasks:
            _task_report(report, task, runs, step, shown[task])
        step("writing report.md")
        write_report(report)
        step.finish()
    return report.result


def _writer_lock(out: Path):
    """A report folder has one writer. Inside a folder that has a writer lock (a study's or
    a run's: `suite report DIR` writes `DIR/report`), that folder's own lock, so a report
    never writes into a study that `suite run` is writing, nor a resume starts while a
    report is being written there; elsewhere, a lock beside the report folder (two reports
    into one folder never interleave their files)."""
    if (out.parent / LOCK_NAME).exists():
        return _locked(out.parent, "study")
    return _locked(out, "report", lock_file=out.with_name(f".{out.name}.lock"))


@contextlib.contextmanager
def _locked(target: Path, what: str, **kwargs):
    with contextlib.ExitStack() as held:
        try:
            held.enter_context(hold_lock(target, what, **kwargs))
        except LockedError as exc:
            raise LockedError(f"{exc}, or write the report elsewhere (--out)") from None
        yield


class _Progress:
    """Counts the steps for `on_step`: called with a step's description before it runs."""

    def __init__(self, on_step: Callable[[int, int, str], None] | None, total: int) -> None:
        self.on_step, self.total, self.done = on_step, total, 0

    def __call__(self, description: str) -> None:
        if self.on_step is not None:
            self.on_step(self.done, self.total, description)
        self.done += 1

    def finish(self) -> None:
        if self.on_step is not None:
            self.on_step(self.total, self.total, "done")


def _step_count(runs: RunSet | None, options: ReportOptions) -> int:
    """The steps `_task_report` takes: reading, six on runs, two on the table (a test
    holds the two to each other)."""
    return 1 + (6 if runs is not None else 0) + (2 if options.table_figures else 0)


def shown_names(tasks: list[tuple[str, RunSet | None]]) -> dict[str, str]:
    """What a report calls each task (its reference): its `TaskInfo` name, as the runs
    recorded it; two tasks of one name are told apart by their references."""
    names = {task: (str(runs.runs["task_name"].iloc[0]) if runs is not None else task)
             for task, runs in tasks}
    taken = Counter(names.values())
    return {task: name if taken[name] == 1 else f"{name} ({task})"
            for task, name in names.items()}


def _task_report(report: Report, ref: str, runs: RunSet | None,
                 step: Callable[[str], None], task: str) -> None:
    """One task's sections in order, each handed what it reads and returning what the
    later ones need: the anytime section's trials and incumbent trace, the final
    section's incumbents. `ref` finds the task and its table; `task` names it."""
    step(f"{task}: reading")
    inputs = _task_inputs(report, runs, ref, task)
    describe_inputs(report, inputs, runs)
    if runs is not None:
        report.context, report.objective = runs_context(runs), Objective.of(runs)
        step(f"{task}: anytime performance")
        anytime = anytime_section(report, runs, inputs)
        step(f"{task}: ranks and statistics")
        finals = final_section(report, runs, task, anytime)
        step(f"{task}: pairs")
        pairs_section(report, runs, task, anytime.statistics, anytime.unit)
        step(f"{task}: test set")
        testset_section(report, runs, inputs, anytime.results, finals, anytime.recommended)
        step(f"{task}: importance from the trials")
        trial_importance_section(report, runs, task, anytime.results)
        step(f"{task}: learning curves and trials")
        curves_section(report, runs, task, anytime.results)
        failures_section(report, runs, task)  # only where a trial failed
    if report.options.table_figures:
        report.context = "recorded table"
        step(f"{task}: grid fANOVA")
        grid_importance_section(report, inputs)
        step(f"{task}: fidelity correlation")
        fidelity_section(report, inputs)


def runs_context(runs: RunSet) -> str:
    """What a task's run figures come from, for their titles: "replay, 20 seeds"."""
    meta = runs.runs
    kind = ("replay" if meta["simulated"].all() else
            "live" if not meta["simulated"].any() else "live and replay")
    seeds = sorted(set(meta.groupby("optimizer")["seed"].nunique()))
    count = "-".join(map(str, seeds[::max(len(seeds) - 1, 1)]))  # "20", or "5-20" if uneven
    return f"{kind}, {count} seed{'s' if seeds != [1] else ''}"


def _read_inputs(report: Report, roots: list[Path]) -> list[tuple[str, RunSet | None]]:
    """Read the runs and `--table` (nothing written yet); each task with its runs (None:
    the table's task, without runs), in task order."""
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
    _check_fidelities(report, runs)
    return [(task, runs.of_task(task) if runs is not None and task in tasks else None)
            for task in sorted(set(tasks) | ({table_task} if table_task else set()))]


def _check_fidelities(report: Report, runs: RunSet | None) -> None:
    """--fidelities within every task's epochs: refused before the folder is made."""
    wanted = report.options.fidelities
    table = report.tables.get(str(report.options.table))
    known = [table.max_epochs] if table is not None else []
    if runs is not None:
        known += [int(e) for e in runs.runs["max_epochs"] if e > 0]  # 0: an old meta
    if wanted and known and max(wanted) > min(known):
        raise SuiteError(f"--fidelities {max(wanted)} is beyond the {min(known)} epochs "
                         "these runs or this table have")


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


@functools.cache
def _revision(task: str) -> int | None:
    """The task's current revision, None where it cannot be loaded here (a report reads
    logs and tables without the task's code)."""
    from suite.registry import load_task

    try:
        return load_task(task).info.revision
    except SuiteError:
        return None


def _task_inputs(report: Report, runs: RunSet | None, ref: str, task: str) -> TaskInputs:
    """The task's heading, and its table when that can serve (complete)."""
    table, path = _task_table(report, runs, ref)
    report.text(f"## {task}")
    incomplete = require_complete(table, path, _revision(ref)) if table is not None else None
    if incomplete:
        report.note(incomplete)
        table = None
    return TaskInputs(task, table, path)
