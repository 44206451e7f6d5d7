"""A study: several optimizers × seeds on one task and budget, written into one folder.

Layout: `OUT/study.json` (the plan), `OUT/library.log` (what the optimizer libraries
print, warn or log while the study runs: `suite.library_log`), and per run
`OUT/<optimizer>/seed-<k>/` holding `meta.json`, `log.jsonl` and `checkpoints/`. A run
is complete when its log ends with a `finish` row; `--resume OUT` skips complete runs,
continues the interrupted one from its log, and starts the ones not yet begun.

One process writes a study: it holds `OUT/.lock` (`suite.lock`) from before study.json
is written until its last run ends, and a second `suite run` into the folder is refused.
Parallel replays of one study run under that one driver, never as rival processes.

A replay (`table` set) runs the same Runner, ledger and log against a recorded table on
the simulated executor: the optimizers search the table's grid, every epoch's metrics and
device-seconds come from the table, and meta.json says `"simulated": true` with the
table's path, checksum and provenance. Replays keep no checkpoints.

A run whose trials keep failing before their first epoch, whose task breaks the Task
API's contract, or (with `on_failure` stop) whose trial failed stops the study the same
way, without a `finish` row, raising the runner's `RunHalted` (`suite.runner`).

SIGINT and SIGTERM stop a study cleanly (`suite.interrupt`): the run in progress stops
without a `finish` row, later runs are not begun, and `Stopped` is raised; `resume`
continues exactly where it stopped.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from suite import _json
from suite._resume import rebuild, summarize
from suite.budget import Ledger, parse_budget
from suite.devices import check_devices_here
from suite.errors import SuiteError
from suite.executors import SimulatedExecutor, training_executor
from suite.interrupt import Stopped, on_signals
from suite.library_log import LIBRARY_LOG, to_library_log
from suite.lock import LOCK_NAME, LockedError, hold_lock
from suite.log import LOG_NAME, META_NAME, LogError, RunLog, read_log, read_run_meta, write_atomic
from suite.mlflow_export import following
from suite.plan import parse_seeds
from suite.records import EpochRow, FinishRow, Row
from suite.runner import STOP_POLL, STOPPED, RunHalted, Runner, RunState
from suite.setting import Setting, study_setting
from suite.spec import StudySpec

__all__ = ["StudySpec", "RunOutcome", "parse_seeds", "run_study", "load_study", "STUDY_NAME",
           "Stopped"]

STUDY_NAME = "study.json"
MAX_JOBS = 1024  # parallel runs of a replay: beyond any machine's cores
ORPHAN_WAIT = 10.0  # seconds a run waits for an orphan of a killed driver to stop


@dataclass(frozen=True)
class RunOutcome:
    optimizer: str
    seed: int
    directory: Path
    reason: str
    state: RunState = field(repr=False)
    ledger: Ledger = field(repr=False)


def load_study(out: Path) -> StudySpec:
    path = Path(out) / STUDY_NAME
    try:
        return StudySpec.from_json(_json.loads(path.read_text(encoding="utf-8")))
    except (FileNotFoundError, NotADirectoryError):  # NotADirectory: `out` is a file
        raise SuiteError(f"{out} is not a study folder (no {STUDY_NAME})") from None
    except OSError as exc:  # a study.json that is a folder, or unreadable
        raise SuiteError(f"{path} cannot be read ({exc.strerror or exc})") from None
    except (ValueError, TypeError, SuiteError) as exc:
        raise SuiteError(f"{path} is unreadable or from another version ({exc})") from None


def run_study(spec: StudySpec, out: Path, *, resume: bool = False,
              on_run: Callable[[str, int, Runner], None] | None = None,
              stop: threading.Event | None = None,
              jobs: int | None = None, mlflow: str | None = None) -> list[RunOutcome]:
    """Run (or resume) every optimizer × seed of `spec` into `out`.

    Stopping: called from the main thread, SIGINT and SIGTERM stop the study cleanly (the
    optimizer's library never sees them; a second signal stops at once). Python installs
    signal handlers only from the main thread: called from another thread, the study
    installs none, and the caller stops it by setting `stop` (from any thread). Either way
    the epochs already received are logged, the trials in flight are stopped, and
    `Stopped` is raised; `run_study(spec, out, resume=True)` then continues exactly where
    it stopped, as `suite run --resume` does.

    Parallel replays: a replay's runs run in `jobs` worker processes at once (None: one
    per core this process may use; 1: one after another, here), or as Ray tasks with
    `executor` ray (`suite._parallel`); every run's log is the serial one apart from its
    wall-clock fields, and the outcomes come in the plan's order. There `on_run` is called
    once a run has ended, with an object holding its `state` and `ledger`.

    Args:
        stop: set it to stop the study (checked between events, at least every 0.2 s).
        jobs: parallel runs of a replay (an execution choice, not part of the plan); a
            live study trains its trials on `workers` and runs one run at a time.
        mlflow: also log the study to MLflow at this tracking URI ("": MLflow's default),
            from a thread that follows the logs (`suite.mlflow_export`); MLflow failing
            is one line on stderr, never the study's failure.

    Raises:
        Stopped: by a signal (`signum`) or `stop` (`signum` None); `out` resumes.
        SuiteError: a device in `devices` is not on this machine (`suite.devices`); the
            folder already holds a study (without `resume`); Ray is missing
            or its cluster unreachable (`executor` ray); or for a replay: the table is
            missing, unreadable, incomplete, of another task or scale.
        RunHalted: a run's trials failed before their first epoch, too many in a row
            (`FailingTrials`, `suite.runner`'s circuit breaker), the task broke its
            contract (`ContractViolation`) or, with `on_failure` stop, a trial failed
            (`TrialFailed`); the study stopped, and `out` resumes.
        LockedError: another live process is writing the study (`suite.lock`).
    """
    out = Path(out)
    jobs = _check_jobs(spec, jobs)
    if spec.table is not None and not resume:
        # the plan names the table absolutely: `--resume` from any folder finds it
        spec = replace(spec, table=os.path.abspath(spec.table))
    if spec.space is not None and not resume:  # so does a live run on a table's grid
        spec = replace(spec, space=os.path.abspath(spec.space))
    _check_devices(spec, out, resume)
    spec, setting = study_setting(spec)
    if spec.executor == "ray":  # Ray installed, the cluster reachable: before writing
        from suite.executors._ray import connect

        connect(spec.address, workers=spec.workers, gpus_per_trial=spec.gpus_per_trial or 0.0)
    _check_new_or_resumable(spec, setting, out, resume)  # refuse before writing the lock
    stop = threading.Event() if stop is None else stop
    with hold_lock(out, "study"), following(out, spec, mlflow) as follower:
        if not resume:  # (hold_lock: one writer per study, until its last run ends)
            _check_new_or_resumable(spec, setting, out, resume)  # a rival may have started it
            _write_plan(out, spec)
        elif _task_changes(spec, setting, out):  # before any epoch: the corrected task's
            _adopt_task(spec, setting, out)
        # the follower's chatter goes to library.log; what it did not send, after the study
        with on_signals(stop) as caught, to_library_log(out / LIBRARY_LOG), (
                follower or contextlib.nullcontext()):
            try:
                runs = len(spec.optimizers) * len(spec.seeds)  # one: no pool to start
                if spec.table is not None and (
                        spec.executor == "ray" or (jobs > 1 and runs > 1)):
                    return _run_parallel(spec, setting, out, on_run, stop, caught, jobs)
                return _run_all(spec, setting, out, on_run, stop, caught)
            except KeyboardInterrupt:  # a second signal: stopped at once; the log holds
                raise Stopped(out, caught.signum) from None


def _check_jobs(spec: StudySpec, jobs: int | None) -> int | None:
    """`jobs` resolved: parallel runs are a replay's (a live run's trials share devices).
    None: a Ray replay without --jobs, as many runs at once as the cluster schedules
    (this machine's cores say nothing of a cluster's)."""
    from suite._parallel import default_jobs

    if jobs is None:
        if spec.table is None:
            return 1
        return None if spec.executor == "ray" else default_jobs()
    if type(jobs) is not int or not 1 <= jobs <= MAX_JOBS:
        raise SuiteError(f"--jobs must be in 1..{MAX_JOBS}, got {jobs}")
    if jobs > 1 and spec.table is None:
        raise SuiteError("--jobs runs a replay's runs in parallel (--table); a live study "
                         "trains its trials in parallel on --workers")
    return jobs


def _run_parallel(spec: StudySpec, setting: Setting, out: Path, on_run,
                  stop: threading.Event, caught, jobs: int | None) -> list[RunOutcome]:
    """A replay's runs in worker processes or Ray tasks (`suite._parallel`), outcomes in
    the plan's order; `Stopped` once all have stopped if `stop` was set."""
    from suite._parallel import run_pool, run_ray

    def outcome(name: str, seed: int, reason: str) -> RunOutcome:  # from the run's log
        directory = out / name / f"seed-{seed}"
        ledger = Ledger(parse_budget(spec.budget), max_epochs=setting.fidelity.max_epochs)
        state = summarize(read_log(directory), ledger=ledger)
        return RunOutcome(name, seed, directory, reason, state, ledger)

    runs = [(name, seed) for name in spec.optimizers for seed in spec.seeds]
    if spec.executor == "ray":
        outcomes = run_ray(spec, out, runs, jobs, on_run, stop, outcome, _run_one_locked)
    else:
        outcomes = run_pool(spec, out, runs, min(jobs or len(runs), len(runs)), on_run,
                            stop, outcome, _run_one_locked)
    if len(outcomes) < len(runs) or any(o.reason == STOPPED for o in outcomes.values()):
        raise Stopped(out, caught.signum)
    return [outcomes[run] for run in runs]


def _check_devices(spec: StudySpec, out: Path, resume: bool) -> None:
    """The plan's devices are on this machine (a study planned on a GPU machine may be
    resumed on one without): else no trial could train an epoch, and the run would fail
    trial after trial."""
    try:
        check_devices_here(spec.devices)
    except SuiteError as exc:
        if not resume:
            raise
        raise SuiteError(f"{out} was planned with --devices {','.join(spec.devices)}: "
                         f"{exc}") from None


def _check_new_or_resumable(spec: StudySpec, setting: Setting, out: Path, resume: bool) -> None:
    if not resume:
        _check_new_folder(out)
        return
    changes = _task_changes(spec, setting, out)
    for name in spec.optimizers:  # never mix in a run of another plan or table
        for seed in spec.seeds:
            if (out / name / f"seed-{seed}" / LOG_NAME).exists():
                _check_meta(out / name / f"seed-{seed}", setting, name, seed)
                # every log validated before the lock file is written: a study holding a
                # damaged log is refused with nothing written, not when its run comes up
                rows = read_log(out / name / f"seed-{seed}")
                if changes and any(type(r) is EpochRow for r in rows):
                    said = "; ".join(f"{k} {a!r} -> {b!r}" for k, (a, b) in changes.items())
                    raise LogError(f"task {spec.task} changed since {out} began ({said}) and "
                                   "the study has logged epochs of the old one; refusing to "
                                   "resume it (start a new study, or restore the task)")


# What a task's runs are compared by: changed, a study's logs would mix two objectives.
TASK_KEYS = ("task_name", "metric", "minimize", "min_epochs", "max_epochs", "eta")


def _task_changes(spec: StudySpec, setting: Setting, out: Path) -> dict[str, tuple]:
    """What differs between the task as the study's runs recorded it and as it loads now
    (a live study's: a replay's comes from its table); keys an older meta lacks are not
    compared."""
    if setting.table is not None:
        return {}
    changes: dict[str, tuple] = {}
    for directory in _run_folders(spec, out):
        meta = read_run_meta(directory)
        for key in TASK_KEYS:
            old, new = getattr(meta, key), setting.meta[key]
            if old is not None and (key, old) != ("max_epochs", 0) and old != new:
                changes.setdefault(key, (old, new))
    return changes


def _run_folders(spec: StudySpec, out: Path) -> list[Path]:
    return [out / name / f"seed-{seed}" for name in spec.optimizers for seed in spec.seeds
            if (out / name / f"seed-{seed}" / LOG_NAME).exists()]


def _adopt_task(spec: StudySpec, setting: Setting, out: Path) -> None:
    """A study that logged no epoch yet takes the corrected task (a misspelled metric): its
    plan and each run's meta.json rewritten, each atomically, under the study's lock."""
    _write_plan(out, spec)
    for directory in _run_folders(spec, out):
        meta = read_run_meta(directory)
        data = {**meta.to_json(), **{k: setting.meta[k] for k in (*TASK_KEYS, "task_revision",
                                                                  "space_dims")}}
        write_atomic(directory / META_NAME, json.dumps(data, indent=1, sort_keys=True))


def _check_new_folder(out: Path) -> None:
    """A new study goes into a new or empty folder, never among other files: a previous
    study's (resume it instead) or anything else (a study would mix into it)."""
    if (out / STUDY_NAME).exists():
        raise SuiteError(f"{out} already holds a study; use --resume {out} to continue it "
                         "or choose another --out")
    try:
        existing = next(p for p in (out, *out.absolute().parents) if p.exists())
        if not existing.is_dir():
            raise SuiteError(f"cannot write the study folder {out}: {existing} is a file")
        # the lock alone: a start killed before its plan was written, or a rival's
        if existing == out and any(p.name != LOCK_NAME for p in out.iterdir()):
            raise SuiteError(f"{out} exists and is not empty; choose another --out (a new or "
                             "empty folder)")
    except OSError as exc:
        raise SuiteError(f"cannot write the study folder {out}: {exc.strerror}") from None


def _run_all(spec: StudySpec, setting: Setting, out: Path, on_run, stop: threading.Event,
             caught) -> list[RunOutcome]:
    """Every run in the plan's order; `Stopped` once `stop` is set (no run begins after)."""
    outcomes = []
    for name in spec.optimizers:
        for seed in spec.seeds:
            if stop.is_set():
                raise Stopped(out, caught.signum)
            directory = out / name / f"seed-{seed}"
            try:
                with _run_lock(directory, stop):  # an orphan of a killed parallel study
                    outcome = _run_one(spec, setting, name, seed, directory, on_run, stop)
            except RunHalted as exc:  # later runs would fail alike: none is begun
                raise type(exc)(f"{exc} ({name} seed {seed} stopped; fix the cause, then "
                                f"suite run --resume {out})") from None
            if outcome.reason == STOPPED:
                raise Stopped(out, caught.signum)
            outcomes.append(outcome)
    return outcomes


@contextlib.contextmanager
def _run_lock(directory: Path, stop: threading.Event) -> Iterator[None]:
    """The run folder's own lock, held by the process writing its log (the serial study
    or a pool worker): a worker orphaned by a killed driver stops within STOP_POLL
    seconds, and a resumed study's run, serial or parallel, waits for it here instead of
    writing the same log beside it."""
    deadline = time.monotonic() + ORPHAN_WAIT
    while True:
        try:
            with hold_lock(directory, "run"):
                yield
            return
        except LockedError:
            if time.monotonic() > deadline or stop.is_set():
                raise
            time.sleep(STOP_POLL / 4)


def _run_one_locked(spec: StudySpec, setting: Setting, name: str, seed: int, directory: Path,
                    stop: threading.Event) -> RunOutcome:
    """One run of a parallel study, in a pool worker or a Ray task, under its run folder's
    lock (`_run_lock`)."""
    with _run_lock(directory, stop):
        return _run_one(spec, setting, name, seed, directory, None, stop)


def _write_plan(out: Path, spec: StudySpec) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        # atomic: a study killed while starting has either a whole plan or none
        write_atomic(out / STUDY_NAME, json.dumps(asdict(spec), indent=1))
    except OSError as exc:
        raise SuiteError(f"cannot write the study folder {out}: {exc.strerror}") from None


def _run_one(spec: StudySpec, setting: Setting, name: str, seed: int, directory: Path,
             on_run, stop: threading.Event | None = None) -> RunOutcome:
    budget = parse_budget(spec.budget)
    ledger = Ledger(budget, max_epochs=setting.fidelity.max_epochs)
    checkpoints = (directory / "checkpoints" if setting.table is None
                   and setting.task.capabilities.checkpoints else None)
    rows, started = read_log(directory), (directory / LOG_NAME).exists()
    if started:  # never mix in a run of another plan or table
        _check_meta(directory, setting, name, seed)
    if rows and type(rows[-1]) is FinishRow:  # complete: only its summary is needed
        state = summarize(rows, ledger=ledger)
        return RunOutcome(name, seed, directory, rows[-1].reason, state, ledger)
    optimizer = _optimizer(name, seed, setting, budget)
    if started:
        state, resubmit = rebuild(rows, optimizer, ledger=ledger, checkpoints=checkpoints)
        log = RunLog.reopen(directory)
    else:
        state, resubmit = RunState(), []
        log = RunLog.create(directory, {**setting.meta, "optimizer": name, "seed": seed})
    runner = Runner(optimizer=optimizer, executor=_executor(spec, setting, rows), ledger=ledger,
                    log=log, metric=setting.metric, seed=seed, checkpoints=checkpoints,
                    promotion=spec.promotion, trial_timeout=spec.trial_timeout, state=state,
                    stop=stop, keep_checkpoints=spec.keep_checkpoints,
                    on_failure=spec.on_failure, grid=setting.grid)
    if on_run is not None:
        on_run(name, seed, runner)
    with log:
        reason = runner.run(resubmit)
    if checkpoints is not None and reason != STOPPED and spec.keep_checkpoints != "all":
        # a stopped run resumes from them
        _prune_checkpoints(checkpoints, runner.state)
    return RunOutcome(name, seed, directory, reason, runner.state, ledger)


def _optimizer(name: str, seed: int, setting: Setting, budget):
    from suite.optimizers import make_optimizer  # optimizers import their libraries: lazily
    from suite.optimizers._spaces import seeded_copy

    # A replay searches the table's grid: every configuration asked is one it recorded;
    # so does a live run with --space table, asking what the replay asks.
    table = setting.space_table
    space = (seeded_copy(table.space, seed) if table is not None
             else setting.task.config_space(seed=seed))
    hint = budget.full_trials(setting.fidelity.max_epochs, setting.seconds_per_epoch)
    return make_optimizer(name, space=space, fidelity=setting.fidelity, seed=seed,
                          default_config=setting.default, max_full_trials=hint or None)


def _executor(spec: StudySpec, setting: Setting, rows: list[Row]):
    if setting.table is not None:  # a replay, in this process or as a Ray task
        executor = SimulatedExecutor(setting.table, workers=spec.workers)
        executor.restore(rows)  # a resumed replay continues its clock where the log stops
        return executor
    return training_executor(spec.executor, setting.task, ref=spec.task, scale=spec.scale,
                             workers=spec.workers, devices=spec.devices, address=spec.address,
                             gpus_per_trial=spec.gpus_per_trial or 0.0, fuse=spec.fuse,
                             fuse_max=spec.fuse_max)


def _check_meta(directory: Path, setting: Setting, name: str, seed: int) -> None:
    meta = read_run_meta(directory)
    keys = ("task", "budget", "table_sha256") if setting.space_table is not None else (
        "task", "budget")
    expected = {"optimizer": name, "seed": seed, **{k: setting.meta[k] for k in keys}}
    wrong = {k: getattr(meta, k) for k, v in expected.items() if getattr(meta, k) != v}
    if wrong:
        what = "another table" if "table_sha256" in wrong else "another run"
        raise LogError(f"{directory} belongs to {what} ({wrong}); refusing to resume it")
    revision = setting.meta["task_revision"]
    if setting.table is None and meta.task_revision != revision:  # a replay's: its table's
        raise LogError(f"{directory} was trained by revision {meta.task_revision} of task "
                       f"{meta.task!r}, which now trains as revision {revision}; refusing "
                       "to resume it (start a new study)")


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
