"""The plan of a study: which optimizers and seeds on which task and budget, and how to
run them; checked when made, and written to `study.json` as it is.

Its own module, below both `suite.setting` (which reads what the plan's runs share) and
`suite.study` (which runs it), so that neither imports the other for it.
"""

from __future__ import annotations

import math
from dataclasses import MISSING as dataclasses_MISSING
from dataclasses import dataclass, fields
from typing import Any

from suite.budget import CarpsBudget, Unit, parse_budget, parse_budget_spelling
from suite.devices import check_device_names
from suite.errors import SuiteError
from suite.executors import check_fuse
from suite.runner import KEEP_CHECKPOINTS, ON_FAILURE, PROMOTION_POLICIES

__all__ = ["StudySpec", "EXECUTORS", "MAX_SEED", "MAX_RUNS", "MAX_WORKERS", "MAX_TRIAL_TIMEOUT",
           "check_seeds", "check_runs"]

EXECUTORS = ("local", "inprocess", "simulated", "ray")

# Limits on a plan, checked before anything is written (docs/reliability.md, "Bad input"):
MAX_SEED = 2**32 - 1  # numpy's and the optimizers' libraries' seed range
MAX_RUNS = 10_000  # optimizers × seeds: beyond it a typo (--seeds 0-100000000), not a study
MAX_WORKERS = 1024  # processes (or simulated workers, each a slot) started up front
MAX_TRIAL_TIMEOUT = 7 * 24 * 3600.0  # a week of wall seconds per trial attempt


_NONE = type(None)
_PLAN_TYPES: dict[str, tuple[tuple[type, ...], type | None]] = {  # (types, list items' type)
    "task": ((str,), None), "optimizers": ((list,), str), "seeds": ((list,), int),
    "budget": ((str,), None), "scale": ((str, _NONE), None), "promotion": ((str,), None),
    "include_default": ((bool,), None), "workers": ((int,), None),
    "devices": ((list,), str), "executor": ((str, _NONE), None),
    "table": ((str, _NONE), None), "address": ((str, _NONE), None),
    "gpus_per_trial": ((int, float, _NONE), None), "trial_timeout": ((int, float, _NONE), None),
    "fuse": ((str,), None), "fuse_max": ((int,), None),
    "budget_spelling": ((str, _NONE), None), "keep_checkpoints": ((str,), None),
    "on_failure": ((str,), None),
}


@dataclass(frozen=True)
class StudySpec:
    """The plan of a study, as written to `study.json`.

    `task` is the task's reference (`suite.registry`: a name or `package.module:Object`),
    from which every worker rebuilds it and `--resume` finds it again. `scale` (a built-in
    task's option) defaults to `full` for a task that takes one (None for one that does
    not) and to the table's scale for a replay; `promotion` is `retrain` for a task without
    checkpoints;
    `executor` defaults to `local`, and is `simulated` whenever `table` is given.
    `address` (None: a local Ray instance) and `gpus_per_trial` are the Ray executor's;
    `trial_timeout` (wall seconds per attempt of a trial) applies to every live executor.
    `keep_checkpoints` is `needed` (a live run deletes the checkpoints nothing can need any
    more, and keeps only the incumbent's at its end) or `all` (it deletes none).
    `on_failure` is `continue` (a failed trial is a result; the run goes on) or `stop` (the
    first failed trial stops the study, resumable: `suite.runner`).
    A budget given in CARP-S budgets (`1carps`) is resolved against the task's space when
    the study is planned (`suite.setting`): `budget` becomes full-fidelity equivalents
    (`126x`) and `budget_spelling` keeps what was asked for.
    """

    task: str
    optimizers: tuple[str, ...]
    seeds: tuple[int, ...]
    budget: str
    scale: str | None = None
    promotion: str = "resume"
    include_default: bool = False
    workers: int = 1
    devices: tuple[str, ...] = ("auto",)
    executor: str | None = None
    table: str | None = None
    address: str | None = None
    gpus_per_trial: float | None = None
    trial_timeout: float | None = None
    fuse: str = "off"  # "auto": the local executor trains same-shape trials as arrays
    fuse_max: int = 8  # members per array; workers × fuse_max trials in flight
    budget_spelling: str | None = None  # the budget as asked (`1carps`) once resolved
    keep_checkpoints: str = "needed"  # "all": a live run deletes none (`suite._retention`)
    on_failure: str = "continue"  # "stop": the first failed trial stops the study

    @classmethod
    def from_json(cls, data: Any) -> StudySpec:
        """The plan a decoded `study.json` holds; SuiteError (one line) if it holds none: not
        an object, a key this version does not know, a value of the wrong type."""
        if type(data) is not dict:
            raise SuiteError(f"a JSON {type(data).__name__}, not an object")
        known = {f.name for f in fields(cls)}
        for key, value in data.items():
            if key not in known:
                raise SuiteError(f"unknown key {key!r}")
            types, items = _PLAN_TYPES[key]
            if type(value) not in types or (type(value) is list and not all(
                    type(v) is items for v in value)):
                expected = " or ".join("null" if t is _NONE else t.__name__ for t in types)
                if items is not None:
                    expected = f"a list of {items.__name__}"
                raise SuiteError(f"{key!r} is {type(value).__name__}, not {expected}")
            if type(value) is float and not math.isfinite(value):
                raise SuiteError(f"{key!r} is {value}, not a finite number")
        missing = [f.name for f in fields(cls) if f.name not in data
                   and f.default is dataclasses_MISSING]
        if missing:
            raise SuiteError(f"no {missing[0]!r}")
        return cls(**{k: tuple(v) if type(v) is list else v for k, v in data.items()})

    def __post_init__(self) -> None:
        self._check_budget()
        if self.promotion not in PROMOTION_POLICIES:
            raise SuiteError(f"unknown promotion policy {self.promotion!r}; choose "
                             f"{' or '.join(PROMOTION_POLICIES)}")
        if self.keep_checkpoints not in KEEP_CHECKPOINTS:
            raise SuiteError(f"unknown keep_checkpoints {self.keep_checkpoints!r}; choose "
                             f"{' or '.join(KEEP_CHECKPOINTS)}")
        if self.on_failure not in ON_FAILURE:
            raise SuiteError(f"unknown on_failure {self.on_failure!r}; choose "
                             f"{' or '.join(ON_FAILURE)}")
        if self.executor is not None and self.executor not in EXECUTORS:
            raise SuiteError(f"unknown executor {self.executor!r}; choose from "
                             f"{', '.join(EXECUTORS)}")
        if not 1 <= self.workers <= MAX_WORKERS:
            raise SuiteError(f"--workers must be in 1..{MAX_WORKERS}, got {self.workers}")
        if not self.optimizers or not self.seeds:
            raise SuiteError("a study needs at least one optimizer and one seed")
        check_seeds(self.seeds)
        check_runs(len(self.optimizers) * len(self.seeds))
        self._check_replay()
        self._check_faults_and_ray()
        check_device_names(self.devices)  # that they are on this machine: `run_study`
        # frozen: resolve the defaults that depend on whether this is a replay
        object.__setattr__(self, "executor",
                           self.executor or ("simulated" if self.table else "local"))
        check_fuse(self.executor, None, self.fuse, self.fuse_max)

    def _check_budget(self) -> None:
        parse_budget_spelling(self.budget)
        if self.budget_spelling is None:
            return
        if not isinstance(parse_budget_spelling(self.budget_spelling), CarpsBudget) or \
                parse_budget(self.budget).unit is not Unit.FULL:
            raise SuiteError(f"budget_spelling {self.budget_spelling!r} with budget "
                             f"{self.budget!r}: expected CARP-S budgets resolved to x")

    def _check_faults_and_ray(self) -> None:
        if self.trial_timeout is not None:
            if self.table is not None:
                raise SuiteError("--trial-timeout limits live training; a replay (--table) "
                                 "has no wall clock per trial")
            if not 0 < self.trial_timeout <= MAX_TRIAL_TIMEOUT:  # NaN and inf fail too
                raise SuiteError(f"--trial-timeout must be positive seconds, at most "
                                 f"{MAX_TRIAL_TIMEOUT:.0f} (a week), got {self.trial_timeout:g}")
        if self.executor != "ray":
            if self.address is not None or self.gpus_per_trial is not None:
                flag = "--address" if self.address is not None else "--gpus-per-trial"
                raise SuiteError(f"{flag} is for --executor ray")
            return
        if tuple(self.devices) != ("auto",):
            raise SuiteError("--devices has no meaning with --executor ray: Ray places each "
                             "trial; give --gpus-per-trial")
        gpus = self.gpus_per_trial or 0.0
        # Ray shares a GPU by fractions below 1 and gives whole GPUs above it
        if gpus < 0 or (gpus > 1 and gpus != int(gpus)):
            raise SuiteError(f"--gpus-per-trial must be a fraction in 0..1 or a whole number "
                             f"of GPUs, got {gpus:g}")

    def _check_replay(self) -> None:
        if self.table is None:
            if self.executor == "simulated":
                raise SuiteError("the simulated executor replays a recorded table: give --table")
            return
        if self.executor not in (None, "simulated", "ray"):  # ray: each run a Ray task
            raise SuiteError(f"--table replays on the simulated executor (or, with --executor "
                             f"ray, its runs as Ray tasks); drop --executor {self.executor}")
        if tuple(self.devices) != ("auto",):
            raise SuiteError("--devices has no meaning in a replay (--table): its workers are "
                             "simulated; give --workers N")


def check_seeds(seeds) -> None:
    """Every seed in 0..MAX_SEED: outside it numpy refuses it mid-run, after files exist."""
    bad = next((s for s in seeds if not 0 <= s <= MAX_SEED), None)
    if bad is not None:
        raise SuiteError(f"seed {bad} is outside 0..{MAX_SEED} (2**32-1)")


def check_runs(runs: int) -> None:
    if runs > MAX_RUNS:
        raise SuiteError(f"{runs} runs (optimizers × seeds) exceed the limit of {MAX_RUNS} "
                         "per study; split it into several studies")
