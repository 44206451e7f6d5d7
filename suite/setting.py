"""What every run of a study shares, read once: the task (live) or the table (replay).

For a replay the table is checked against the plan (task, completeness, scale) and
decides the scale, metric and maximum epochs; `--include-default` then means the grid's
configuration nearest to the task default.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from suite.budget import resolve_budget, space_dims
from suite.config import to_plain, validate_config
from suite.env import environment, training_provenance
from suite.errors import SuiteError
from suite.plan import settings_of
from suite.registry import accepts_scale, load_task
from suite.spec import StudySpec
from suite.tables import Table, TableError, read_table
from suite.types import Fidelity, Metric, Task

__all__ = ["Setting", "study_setting"]


@dataclass(frozen=True)
class Setting:
    """What every run of a study shares: the task, and for a replay the table it reads."""

    task: Task
    fidelity: Fidelity
    metric: Metric
    default: dict[str, Any] | None  # what --include-default puts first, or None
    meta: dict[str, Any]  # run metadata common to every run (computed once: git, torch)
    table: Table | None = None  # what a replay reads
    seconds_per_epoch: float | None = None  # known to a replay: the grid-size hint uses it
    grid: GridTraining | None = None  # a live run on a table's grid (`--space table`)

    @property
    def space_table(self) -> Table | None:
        """The table whose grid the optimizers search (a replay's, or a live run's with
        `--space table`), or None: the task's own space."""
        return self.table if self.table is not None else (
            self.grid.table if self.grid is not None else None)


@dataclass(frozen=True)
class GridTraining:
    """What a live trial on a table's grid trains: what the table recorded for it. Its
    configuration completed as tabulation completed it (the table's fixed values, then
    the task's defaults), and the training seed its replay reads, `seed % seeds`
    (`suite.executors.SimulatedExecutor`; tabulation trains seed index s with seed s)."""

    table: Table
    task_space: Any  # the task's ConfigurationSpace, for the completed configuration
    fill: dict[str, Any]

    def config(self, config: Mapping[str, Any]) -> dict[str, Any]:
        return validate_config(self.task_space, config, fill_from=self.fill)

    def seed(self, seed: int) -> int:
        return seed % self.table.seeds


def study_setting(spec: StudySpec) -> tuple[StudySpec, Setting]:
    if spec.table is not None:
        return _replay_setting(spec)
    if spec.space is not None:
        return _grid_setting(spec)
    task = load_task(spec.task, scale=spec.scale)
    spec = _resolved(spec, task)
    info = task.info
    meta = {**_common_meta(spec, task, info.metric, info.fidelity), "simulated": False}
    default = task.default_config() if spec.include_default else None
    return spec, Setting(task, info.fidelity, info.metric, default, meta)


def _resolved(spec: StudySpec, task: Task) -> StudySpec:
    """The plan with what the task decides: the default scale of a task that takes one,
    and the `retrain` promotion policy for a task without checkpoints (its promotions
    cannot resume: they train, and are charged, from the first epoch)."""
    if spec.scale is None and spec.table is None and accepts_scale(spec.task):
        spec = replace(spec, scale="full")
    if not task.capabilities.checkpoints and spec.promotion != "retrain":
        spec = replace(spec, promotion="retrain")
    return _resolved_budget(spec, space_dims(task.config_space()))


def _resolved_budget(spec: StudySpec, dims: int) -> StudySpec:
    """A budget in CARP-S budgets (`1carps`) as full-fidelity equivalents for the task's
    space of `dims` hyperparameters: the plan keeps both. d is counted on the task's
    space, for a replay too (not on the table's grid, which may fix or coarsen some of
    them), so a replay and a live run of one task get the same budget. A resumed plan
    (already resolved) is checked against today's space."""
    if spec.budget_spelling is not None:
        if resolve_budget(spec.budget_spelling, dims) != spec.budget:
            raise SuiteError(f"the plan's budget {spec.budget} was resolved from "
                             f"{spec.budget_spelling} for another search space: this task's "
                             f"has d = {dims} ({resolve_budget(spec.budget_spelling, dims)})")
        return spec
    resolved = resolve_budget(spec.budget, dims)
    if resolved == spec.budget:
        return spec
    return replace(spec, budget=resolved, budget_spelling=spec.budget.strip())


def _common_meta(spec: StudySpec, task: Task, metric: Metric,
                 fidelity: Fidelity) -> dict[str, Any]:
    return {**settings_of(spec), "task_name": task.info.name,
            "space_dims": space_dims(task.config_space()), "task_revision": task.info.revision,
            "metric": metric.name, "minimize": metric.minimize,
            "min_epochs": fidelity.min_epochs, "max_epochs": fidelity.max_epochs,
            "eta": fidelity.eta, "environment": environment()}


def _replay_setting(spec: StudySpec) -> tuple[StudySpec, Setting]:
    """Read and check the table once for the whole study; the task gives eta, min epochs
    and the default, the table everything it recorded (scale, metric, max epochs)."""
    spec, table, setting = _on_table(spec, spec.table, simulated=True)
    return spec, replace(setting, table=table)


def _grid_setting(spec: StudySpec) -> tuple[StudySpec, Setting]:
    """A live study on a table's grid (`--space table`): everything its replay would read
    (the grid, fidelity, metric, default, and the seconds per epoch the optimizers' grid
    size hint takes), so its optimizers ask what the replay's ask; the task trains them,
    on a machine, torch and threads per worker the table was recorded with."""
    spec, table, setting = _on_table(spec, spec.space, simulated=False)
    _check_provenance(spec, table)
    grid = GridTraining(table, setting.task.config_space(),
                        {**setting.task.default_config(), **table.meta.get("fixed", {})})
    return spec, replace(setting, grid=grid)


def _on_table(spec: StudySpec, path: str, simulated: bool
              ) -> tuple[StudySpec, Table, Setting]:
    """The plan, the table at `path` (read and checked once for the whole study) and what
    every run on it shares, but for how the table serves them: a replay reads it, a live
    run on its grid trains what it recorded."""
    table, task, digest = _load_table(spec, path)
    spec = replace(spec, scale=table.meta.get("scale", "full"))
    spec = _resolved(spec, task)  # a replay charges promotions as the live task would
    info = task.info
    fidelity = Fidelity(min(info.fidelity.min_epochs, table.max_epochs), table.max_epochs,
                        info.fidelity.eta)
    metric = Metric(table.meta.get("metric", info.metric.name),
                    bool(table.meta.get("minimize", info.metric.minimize)))
    if metric.name not in table.metrics:
        raise TableError(f"table {path} does not record the objective {metric.name!r}")
    default = _grid_default(table, task.default_config()) if spec.include_default else None
    meta = {**_common_meta(spec, task, metric, fidelity),
            "table_sha256": digest, "fixed": table.meta.get("fixed", {}),
            "default_config": default,
            "table_provenance": {k: v for k, v in table.meta.items() if k != "space"},
            "simulated": simulated}
    seconds = float(table.frame["device_seconds"].mean())  # the grid-size hint's
    return spec, table, Setting(task, fidelity, metric, default, meta,
                                seconds_per_epoch=seconds)


def _check_provenance(spec: StudySpec, table: Table) -> None:
    """A live run on a table's grid trains its curves again only where rounding is the
    same: the table's CPU, ISA, torch and threads per worker (`training_provenance`)."""
    recorded = (table.meta.get("collection") or {}).get("provenance")
    if not isinstance(recorded, dict):
        raise TableError(f"table {spec.space} records no training provenance (CPU, torch, "
                         "threads per worker): record one with suite tabulate where the "
                         "live runs will train")
    here = training_provenance(spec.executor, spec.workers)
    wrong = next((k for k in here if recorded.get(k) != here[k]), None)
    if wrong is not None:
        raise TableError(f"table {spec.space} was recorded with {wrong} {recorded.get(wrong)!r}"
                         f"; this study trains with {here[wrong]!r} (--workers "
                         f"{spec.workers}, --executor {spec.executor}): its curves would not "
                         "be this study's; record the table here with as many workers")


def _load_table(spec: StudySpec, path: str) -> tuple[Table, Task, str]:
    """The table, the task at the table's scale, and the SHA-256 of the table's file;
    refuses a table that cannot serve this study."""
    path = Path(path)
    table = read_table(path)
    recorded = table.meta.get("task")
    if recorded != spec.task:
        raise TableError(f"table {path} was recorded for task {recorded!r}, not {spec.task!r}")
    # before completeness: another revision's table can never be finished for this task
    task = load_task(spec.task, scale=table.meta.get("scale", "full"))
    if table.task_revision != task.info.revision:
        raise TableError(f"table {path} was recorded by revision {table.task_revision} of task "
                         f"{spec.task!r}, which now trains as revision {task.info.revision}: "
                         "its curves are not this task's; record a new table with suite tabulate")
    if not table.complete or not table.meta.get("complete", True):
        raise TableError(f"table {path} is incomplete; finish recording it with "
                         f"`suite tabulate --task {spec.task} --out {path}` (it resumes)")
    if spec.scale is not None and table.meta.get("scale", "full") != spec.scale:
        raise TableError(f"table {path} was recorded at scale {table.meta.get('scale')!r}, "
                         f"not {spec.scale!r}")
    return table, task, hashlib.sha256(path.read_bytes()).hexdigest()


def _grid_default(table: Table, default: Mapping[str, Any]) -> dict[str, Any]:
    """The table grid's configuration nearest to the task default (the default itself when
    the grid holds it): one hyperparameter at a time, the equal value, else the closest
    number (log scale for positive ones; ties to the smaller), else the grid's default."""
    from suite.optimizers._spaces import is_active

    space, values = table.space, {}
    for name in space.keys():  # ConfigSpace keeps parents before children
        if is_active(space, name, values):
            hp = space[name]
            values[name] = _nearest(_grid_values(hp), default.get(name),
                                    to_plain(hp.default_value))
    table.config_index(values)  # a grid with forbidden clauses may not hold it: one line
    return values


def _grid_values(hp) -> list[Any]:
    for attribute in ("sequence", "choices"):
        if hasattr(hp, attribute):
            return [to_plain(v) for v in getattr(hp, attribute)]
    return [to_plain(hp.value)]  # a constant


def _nearest(choices: list[Any], value: Any, fallback: Any) -> Any:
    if value in choices:
        return value

    def number(v: Any) -> bool:
        return isinstance(v, int | float) and not isinstance(v, bool)

    if not number(value) or not all(number(c) for c in choices):
        return fallback
    if value > 0 and all(c > 0 for c in choices):
        return min(choices, key=lambda c: (abs(math.log(c / value)), c))
    return min(choices, key=lambda c: (abs(c - value), c))
