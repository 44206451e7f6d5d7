"""A study: several optimizers × seeds on one task and budget, written into one folder.

Layout: `OUT/study.json` (the plan), and per run `OUT/<optimizer>/seed-<k>/` holding
`meta.json`, `log.jsonl` and `checkpoints/`. A run is complete when its log ends with a
`finish` row; `--resume OUT` skips complete runs, continues the interrupted one from its
log, and starts the ones not yet begun.
"""

from __future__ import annotations

import functools
import json
import re
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from suite.budget import Ledger, parse_budget
from suite.env import environment
from suite.errors import SuiteError
from suite.executors import InProcessExecutor, LocalExecutor
from suite.log import LogError, RunLog, read_rows
from suite.registry import get_task
from suite.resume import rebuild
from suite.runner import PROMOTION_POLICIES, Runner, RunState

__all__ = ["StudySpec", "RunOutcome", "parse_seeds", "run_study", "load_study", "STUDY_NAME"]

STUDY_NAME = "study.json"
EXECUTORS = ("local", "inprocess")


@dataclass(frozen=True)
class StudySpec:
    task: str
    optimizers: tuple[str, ...]
    seeds: tuple[int, ...]
    budget: str
    scale: str = "full"
    promotion: str = "resume"
    include_default: bool = False
    workers: int = 1
    devices: tuple[str, ...] = ("auto",)
    executor: str = "local"

    def __post_init__(self) -> None:
        parse_budget(self.budget)
        if self.promotion not in PROMOTION_POLICIES:
            raise SuiteError(f"unknown promotion policy {self.promotion!r}; choose "
                             f"{' or '.join(PROMOTION_POLICIES)}")
        if self.executor not in EXECUTORS:
            raise SuiteError(f"unknown executor {self.executor!r}; choose from "
                             f"{', '.join(EXECUTORS)}")
        if self.workers < 1:
            raise SuiteError(f"--workers must be at least 1, got {self.workers}")
        if not self.optimizers or not self.seeds:
            raise SuiteError("a study needs at least one optimizer and one seed")


@dataclass(frozen=True)
class RunOutcome:
    optimizer: str
    seed: int
    directory: Path
    reason: str
    state: RunState = field(repr=False)
    ledger: Ledger = field(repr=False)


_SEEDS = re.compile(r"^\d+(-\d+)?(,\d+(-\d+)?)*$")


def parse_seeds(text: str) -> tuple[int, ...]:
    """`3`, `0-4` or `0,2,5-7` → a tuple of seeds in the given order, without repeats."""
    text = text.replace(" ", "")
    if not _SEEDS.match(text):
        raise SuiteError(f"malformed seeds {text!r}: expected e.g. 0, 0-4 or 0,2,5-7")
    seeds: list[int] = []
    for part in text.split(","):
        low, _, high = part.partition("-")
        lo, hi = int(low), int(high or low)
        if hi < lo:
            raise SuiteError(f"malformed seed range {part!r}: the end is below the start")
        seeds += [s for s in range(lo, hi + 1) if s not in seeds]
    return tuple(seeds)


def load_study(out: Path) -> StudySpec:
    path = Path(out) / STUDY_NAME
    try:
        raw = json.loads(path.read_text())
        return StudySpec(**{k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()})
    except FileNotFoundError:
        raise SuiteError(f"{out} is not a study folder (no {STUDY_NAME})") from None
    except (ValueError, TypeError) as exc:
        raise SuiteError(f"{path} is unreadable or from another version ({exc})") from None


def run_study(spec: StudySpec, out: Path, *, resume: bool = False,
              on_run: Callable[[str, int, Runner], None] | None = None) -> list[RunOutcome]:
    """Run (or resume) every optimizer × seed of `spec` into `out`."""
    out = Path(out)
    if not resume:
        if (out / STUDY_NAME).exists():
            raise SuiteError(f"{out} already holds a study; use --resume {out} to continue it "
                             "or choose another --out")
        _write_plan(out, spec)
    return [_run_one(spec, name, seed, out / name / f"seed-{seed}", on_run)
            for name in spec.optimizers for seed in spec.seeds]


def _write_plan(out: Path, spec: StudySpec) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / STUDY_NAME).write_text(json.dumps(asdict(spec), indent=1) + "\n")
    except OSError as exc:
        raise SuiteError(f"cannot write the study folder {out}: {exc.strerror}") from None


def _run_one(spec: StudySpec, name: str, seed: int, directory: Path, on_run) -> RunOutcome:
    from suite.optimizers import make_optimizer  # optimizers import their libraries: lazily

    task = get_task(spec.task, scale=spec.scale)
    budget = parse_budget(spec.budget)
    fidelity = task.info.fidelity
    optimizer = make_optimizer(
        name, space=task.config_space(seed=seed), fidelity=fidelity, seed=seed,
        default_config=task.default_config() if spec.include_default else None,
        max_full_trials=budget.full_trials(fidelity.max_epochs) or None)
    ledger = Ledger(budget, max_epochs=fidelity.max_epochs)
    checkpoints = directory / "checkpoints"
    rows = read_rows(directory)
    if rows and rows[-1]["event"] == "finish":  # complete: rebuild for the summary only
        state, _ = rebuild(rows, optimizer, ledger=ledger, checkpoints=checkpoints)
        return RunOutcome(name, seed, directory, rows[-1]["reason"], state, ledger)
    if (directory / "log.jsonl").exists():
        _check_meta(directory, spec, name, seed)
        state, resubmit = rebuild(rows, optimizer, ledger=ledger, checkpoints=checkpoints)
        log = RunLog.reopen(directory)
    else:
        state, resubmit = RunState(), []
        log = RunLog.create(directory, _meta(spec, name, seed, task))
    runner = Runner(optimizer=optimizer, executor=_executor(spec, task), ledger=ledger,
                    log=log, metric=task.info.metric, seed=seed, checkpoints=checkpoints,
                    promotion=spec.promotion, state=state)
    if on_run is not None:
        on_run(name, seed, runner)
    with log:
        reason = runner.run(resubmit)
    _prune_checkpoints(checkpoints, runner.state)
    return RunOutcome(name, seed, directory, reason, runner.state, ledger)


def _executor(spec: StudySpec, task):
    if spec.executor == "inprocess":
        return InProcessExecutor(task, workers=spec.workers, device=spec.devices[0])
    factory = functools.partial(get_task, spec.task, scale=spec.scale)
    return LocalExecutor(factory, workers=spec.workers, devices=spec.devices)


def _meta(spec: StudySpec, name: str, seed: int, task) -> dict[str, Any]:
    return {"task": spec.task, "optimizer": name, "seed": seed, "budget": spec.budget,
            "scale": spec.scale, "promotion": spec.promotion,
            "include_default": spec.include_default, "workers": spec.workers,
            "devices": list(spec.devices), "executor": spec.executor, "simulated": False,
            "metric": task.info.metric.name, "minimize": task.info.metric.minimize,
            "max_epochs": task.info.fidelity.max_epochs, "environment": environment()}


def _check_meta(directory: Path, spec: StudySpec, name: str, seed: int) -> None:
    from suite.log import read_meta

    meta = read_meta(directory)
    expected = {"task": spec.task, "optimizer": name, "seed": seed, "budget": spec.budget}
    wrong = {k: meta.get(k) for k, v in expected.items() if meta.get(k) != v}
    if wrong:
        raise LogError(f"{directory} belongs to another run ({wrong}); refusing to resume it")


def _prune_checkpoints(checkpoints: Path, state: RunState) -> None:
    """Keep only the incumbent's checkpoint (for test evaluation); the rest is disk."""
    if not checkpoints.is_dir():
        return
    keep = state.finals.get(state.incumbent.trial_id, (0, None))[1] if state.incumbent else None
    for path in checkpoints.iterdir():
        if keep is None or path.resolve() != Path(keep).resolve():
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
