"""The Python API: `suite.run(...)` benchmarks optimizers on a task and returns a `Study`.

What to run (`Plan`: task, optimizers, seeds, budget, baseline, promotion) and where to run
it (`Placement`: executor, workers, devices, table, Ray address, trial timeout, fusing) are
two small objects (`suite.plan`, where every setting is defined once); together they
make the `StudySpec` that `study.json` records, so a study
started here resumes from the CLI and the other way round. `suite run` is a thin layer
over `start` and `resume` below.

Every optimizer is reproducible from its seed whatever the process's hash seed (SMAC too:
`suite.optimizers._smac`), so a script needs no `PYTHONHASHSEED`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, fields, replace
from functools import cached_property
from pathlib import Path
from typing import Any

from suite._main_guard import check_main_guard
from suite.errors import SuiteError
from suite.plan import Placement, Plan

__all__ = ["Plan", "Placement", "Study", "run", "start", "resume", "open_study"]


def spec_of(plan: Plan, where: Placement):
    """The on-disk plan (`StudySpec`, checked when made) of `plan` run at `where`."""
    from suite.study import StudySpec

    return StudySpec(**asdict(plan), **asdict(where))


def split(spec) -> tuple[Plan, Placement]:
    """A `StudySpec` as its `Plan` and `Placement`."""
    data = asdict(spec)
    return (Plan(**{f.name: data[f.name] for f in fields(Plan)}),
            Placement(**{f.name: data[f.name] for f in fields(Placement)}))


def run(task: Any, optimizers: str | Iterable[str], budget: str,
        seeds: int | str | Iterable[int] = 0, out: str | Path | None = None, *,
        where: Placement | None = None, resume: bool = False,
        stop: threading.Event | None = None, jobs: int | None = None,
        mlflow: str | bool | None = None, **plan: Any) -> Study:
    """Benchmark `optimizers` on `task` under one budget ledger, into the folder `out`.

    Args:
        task: a `suite.Task` subclass, instance or factory defined at module level of an
            importable module (workers rebuild it from its `module:name`), or a reference.
        optimizers: names (`grid`, `random`, `tpe`, `hyperband`, `bohb`, `smac`, ...), a
            list or one comma-separated string.
        budget: per run: `600s`, `300e`, `20x` or `0.5carps` (CARP-S budgets, resolved
            against the task's space: `suite.budget.CarpsBudget`).
        seeds: one seed, several, or a string such as `0-4`; one run per optimizer × seed.
        out: the study folder (default `runs/<task>-<time>`).
        where: a `Placement` (default: one local worker).
        resume: if `out` already holds this study, continue it instead of refusing.
        stop: set it (from any thread) to stop the study; `suite.resume(out)` continues it.
        jobs: a replay's runs in this many processes at once (default: one per core; the
            logs are the serial ones apart from wall-clock fields); a live study takes 1.
        mlflow: also log the study to MLflow: a tracking URI, or True for
            `MLFLOW_TRACKING_URI`, else MLflow's default (`suite.mlflow_export`; needs
            the `mlflow` extra). It never stops the study: a failure is one line on stderr.
        plan: the `Plan`'s other settings (`suite.plan`): `include_default=True`,
            `promotion="retrain"`, `scale="tiny"`.

    Returns:
        The finished `Study`.

    Raises:
        SuiteError: a bad plan, before anything is written.
        Stopped: by SIGINT/SIGTERM (on the main thread) or `stop`; `out` resumes.
    """
    from suite.registry import reference_of

    check_main_guard("suite.run")
    names = optimizers.split(",") if isinstance(optimizers, str) else list(optimizers)
    unknown = sorted(set(plan) - {f.name for f in fields(Plan)})
    if unknown:
        raise SuiteError(f"suite.run got an unknown setting {unknown[0]!r}; a Plan's are "
                         f"{', '.join(f.name for f in fields(Plan))}")
    what = Plan(**{**plan, "task": reference_of(task), "budget": budget, "seeds": _seeds(seeds),
                   "optimizers": tuple(o.strip() for o in names if o.strip())})
    where = where or Placement()
    if resume and out is not None and _holds_study(Path(out)):
        _check_same_plan(Path(out), what)
        return _continue(Path(out), None, stop, None, jobs, mlflow)
    return start(what, where, out, stop=stop, jobs=jobs, mlflow=mlflow)


def start(plan: Plan, where: Placement, out: str | Path | None = None, *,
          stop: threading.Event | None = None,
          on_run: Callable | None = None, jobs: int | None = None,
          mlflow: str | bool | None = None) -> Study:
    """Run `plan` at `where` into a new folder `out`: what `run` and `suite run` call
    (`jobs`: a replay's parallel runs; `mlflow`: log to MLflow too; see `run`)."""
    from suite.registry import check_reference
    from suite.study import run_study

    check_main_guard("suite.start")
    check_reference(plan.task)  # imported and checked before anything is written
    check_optimizers(plan.optimizers)
    spec = spec_of(plan, where)
    if out is not None and not str(out).strip():
        raise SuiteError("out is empty: name the study folder (or leave it out)")
    out = Path(out or default_out(spec.task))
    outcomes = run_study(spec, out, on_run=on_run, stop=stop, jobs=jobs,
                         mlflow=_mlflow_uri(mlflow))
    return Study(out, outcomes)


def resume(out: str | Path, *, address: str | None = None,
           stop: threading.Event | None = None, on_run: Callable | None = None,
           jobs: int | None = None, mlflow: str | bool | None = None) -> Study:
    """Continue the interrupted study in `out` with its own plan (`address`: a restarted
    Ray cluster's new address; `jobs`: a replay's parallel runs, not part of the plan;
    `mlflow`: log to MLflow too, as in `run`). A complete study returns at once."""
    return _continue(Path(out), address, stop, on_run, jobs, mlflow)


def _mlflow_uri(mlflow: str | bool | None) -> str | None:
    """None: no MLflow; "": MLflow's default URI; else the URI given."""
    if mlflow is None or mlflow is False:
        return None
    if mlflow is True:
        return ""
    if not isinstance(mlflow, str):
        raise SuiteError(f"mlflow must be a tracking URI, True or None, not {mlflow!r}")
    return mlflow.strip()


def _continue(out: Path, address, stop, on_run, jobs=None, mlflow=None) -> Study:
    from suite.study import load_study, run_study

    check_main_guard("suite.resume")
    spec = load_study(out)
    if address is not None:
        if spec.executor != "ray":
            raise SuiteError(f"--address is for --executor ray; {out} runs on {spec.executor}")
        spec = replace(spec, address=address)
    outcomes = run_study(spec, out, resume=True, on_run=on_run, stop=stop, jobs=jobs,
                         mlflow=_mlflow_uri(mlflow))
    return Study(out, outcomes)


def default_out(task: str) -> str:
    """`runs/<task>-<time>`: the study folder when none is given."""
    stem = task.rpartition(":")[2] or task
    return f"runs/{stem}-{time.strftime('%Y%m%d-%H%M%S')}"


def open_study(out: str | Path) -> Study:
    """The study in `out` as it stands (finished or not), to read or report on."""
    return Study(out)


def check_optimizers(names: Iterable[str]) -> None:
    from suite.optimizers import OPTIMIZERS

    unknown = [o for o in names if o not in OPTIMIZERS]
    if unknown:
        raise SuiteError(f"unknown optimizer(s) {', '.join(unknown)}; choose from "
                         f"{', '.join(sorted(OPTIMIZERS))}")


def _seeds(seeds: int | str | Iterable[int]) -> tuple[int, ...]:
    from suite.study import parse_seeds

    if isinstance(seeds, str):
        return parse_seeds(seeds)
    if isinstance(seeds, int):
        return (seeds,)
    return tuple(dict.fromkeys(int(s) for s in seeds))


def _holds_study(out: Path) -> bool:
    from suite.study import STUDY_NAME

    return (out / STUDY_NAME).exists()


def _check_same_plan(out: Path, plan: Plan) -> None:
    from suite.study import load_study

    held, _ = split(load_study(out))
    keys = ("task", "optimizers", "budget", "seeds")
    wrong = [k for k in keys if getattr(held, k) != getattr(plan, k)]
    if wrong:
        raise SuiteError(f"{out} holds another study ({wrong[0]} {getattr(held, wrong[0])!r}, "
                         f"not {getattr(plan, wrong[0])!r}); choose another out")


class Study:
    """A study folder: its plan, its runs as DataFrames, its incumbents, and its report.

    Frames come from the run logs (`suite.report.load_runs`), read once when first asked.
    """

    def __init__(self, out: str | Path, outcomes: list | None = None) -> None:
        from suite.study import load_study

        self.out = Path(out)
        self.spec = load_study(self.out)
        self.plan, self.placement = split(self.spec)
        self.outcomes = outcomes  # `suite.study.RunOutcome`s of the call that ran it

    def __repr__(self) -> str:
        return (f"Study({str(self.out)!r}, task={self.plan.task!r}, "
                f"optimizers={list(self.plan.optimizers)}, budget={self.plan.budget!r})")

    @cached_property
    def _runset(self):
        from suite.report import load_runs

        return load_runs(self.out)

    @property
    def rows(self):
        """Every log row of every run (epochs, failures, finishes), with `optimizer`, `seed`
        and `run` columns: `suite.log.read_runs`."""
        return self._runset.rows

    def epochs(self):
        """One row per trained epoch: optimizer, seed, trial_id, config.*, epoch, loss,
        metrics.*, ledger.* (the budget spent once it was charged)."""
        from suite.records import Event

        rows = self.rows
        epochs = rows[rows["event"] == Event.EPOCH].dropna(axis="columns", how="all")
        return epochs.drop(columns=["event"]).reset_index(drop=True)

    def trials(self):
        """One row per completed trial (its last epoch): `suite.report.trial_results`."""
        from suite.report import trial_results

        return trial_results(self.rows)

    def incumbents(self):
        """One row per run: the configuration it returned (the runner's rule: most epochs,
        then lowest loss), its loss, epochs and config.*, and the run's whole spend."""
        from suite.report import final_incumbents, incumbent_traces

        results = self.trials()
        ends = incumbent_traces(results, self.rows)
        final = final_incumbents(ends).drop(columns=["end"])
        spent = ends[ends["end"]].set_index("run")
        for col in [c for c in final.columns if c.startswith("ledger.")]:
            final[col] = spent.loc[final["run"], col].to_numpy()
        configs = results[["run", "trial_id", "epoch", *[
            c for c in results.columns if c.startswith(("config.", "metrics."))]]]
        out = final.merge(configs, on=["run", "trial_id", "epoch"], how="left")
        return out.sort_values(["optimizer", "seed"]).reset_index(drop=True)

    def report(self, out_dir: str | Path | None = None, **options: Any):
        """Write the report `suite report` writes (Markdown, HTML, figures, data) into
        `out_dir` (default `<study>/report`); `options` are `suite.report.ReportOptions`
        fields (e.g. `resamples=200`). Returns the `ReportResult`."""
        from suite.report import ReportOptions, build_report

        out_dir = Path(out_dir) if out_dir is not None else self.out / "report"
        return build_report([self.out], out_dir, ReportOptions(**options))
