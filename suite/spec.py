"""The plan of a study: which optimizers and seeds on which task and budget, and how to
run them; checked when made, and written to `study.json` as it is.

Its own module, below both `suite.setting` (which reads what the plan's runs share) and
`suite.study` (which runs it), so that neither imports the other for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from suite.budget import CarpsBudget, Unit, parse_budget, parse_budget_spelling
from suite.devices import check_device_names
from suite.errors import SuiteError
from suite.executors import check_fuse
from suite.plan import (
    EXECUTORS,
    MAX_RUNS,
    MAX_SEED,
    MAX_TRIAL_TIMEOUT,
    MAX_WORKERS,
    Placement,
    Plan,
    Resolved,
    check_runs,
    check_seeds,
    check_values,
    decode,
)

__all__ = ["StudySpec", "EXECUTORS", "MAX_SEED", "MAX_RUNS", "MAX_WORKERS", "MAX_TRIAL_TIMEOUT",
           "check_seeds", "check_runs"]


@dataclass(frozen=True)
class StudySpec(Resolved, Placement, Plan):
    """The plan of a study, as written to `study.json`: its `Plan`, its `Placement` and what
    planning resolved (`suite.plan`, where each setting is defined), checked when made.

    `task` is the task's reference (`suite.registry`: a name or `package.module:Object`),
    from which every worker rebuilds it and `--resume` finds it again. `scale` (a built-in
    task's option) defaults to `full` for a task that takes one (None for one that does
    not) and to the table's scale for a replay; `promotion` is `retrain` for a task without
    checkpoints; `executor` defaults to `local`, and is `simulated` whenever `table` is
    given. A budget given in CARP-S budgets (`1carps`) is resolved against the task's
    space when the study is planned (`suite.setting`): `budget` becomes full-fidelity
    equivalents (`126x`) and `budget_spelling` keeps what was asked for.
    """

    @classmethod
    def from_json(cls, data: Any) -> StudySpec:
        """The plan a decoded `study.json` holds; SuiteError (one line) if it holds none: not
        an object, a key this version does not know, a value of the wrong type."""
        if type(data) is not dict:
            raise SuiteError(f"a JSON {type(data).__name__}, not an object")
        try:
            known, unknown = decode(cls, data)
        except ValueError as exc:
            raise SuiteError(str(exc)) from None
        if unknown:
            raise SuiteError(f"unknown key {next(iter(unknown))!r}")
        missing = [f for f in ("task", "optimizers", "budget") if f not in data]
        if missing:
            raise SuiteError(f"no {missing[0]!r}")
        return cls(**known)

    def __post_init__(self) -> None:
        self._check_budget()
        check_values(self)  # each setting alone: its choices and its own check
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
        if self.trial_timeout is not None and self.table is not None:
            raise SuiteError("--trial-timeout limits live training; a replay (--table) "
                             "has no wall clock per trial")
        if self.executor != "ray":
            if self.address is not None or self.gpus_per_trial is not None:
                flag = "--address" if self.address is not None else "--gpus-per-trial"
                raise SuiteError(f"{flag} is for --executor ray")
            return
        if tuple(self.devices) != ("auto",):
            raise SuiteError("--devices has no meaning with --executor ray: Ray places each "
                             "trial; give --gpus-per-trial")

    def _check_replay(self) -> None:
        if self.space is not None and (self.table is not None or self.executor == "simulated"):
            raise SuiteError("--space table trains live on a table's grid; a replay (--table) "
                             "already searches it: give one of them")
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

