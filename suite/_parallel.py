"""Parallel replays: the runs of a replayed study (optimizer × seed) at once.

A replay's runs are independent (each has its own optimizer, ledger, simulated clock and
run folder), so they run in `jobs` worker processes (`run_pool`) or as Ray tasks on a
cluster (`run_ray`, `--executor ray --table`). Each run is exactly the serial path's run
(`suite.study._run_one`) in another process, so its log is the serial log row for row,
apart from the wall-clock fields (`wall_time`).

The study's guarantees hold as in a serial study:
- One writer: the driver holds `OUT/.lock` for the whole study; a worker writes only the
  folder of the run it was given, holding that folder's own `.lock` (`study._run_lock`,
  which a serial study takes too). On Linux a worker dies with a SIGKILLed driver
  (`suite.interrupt.die_with_parent`), so nothing of a killed study writes once its
  resume starts; elsewhere it stops its run (it watches its parent) and exits
  ORPHAN_GRACE seconds later, and a resumed study's run waits on the run's lock until the
  orphan has stopped: never two writers of one log.
- Results: a worker hands back only (optimizer, seed, reason); the driver reads the run's
  state from its log, so no result is ever large enough to block a worker on its pipe.
- Stopping: SIGINT/SIGTERM reach the driver (and the workers of its process group; a
  worker holds them blocked until its handlers are in, so one still starting stops too); the
  driver sets one stop flag that every worker's runner checks, runs not yet begun are
  never begun, and the driver raises `Stopped` once every worker has stopped: the runs
  stopped mid-way resume exactly like a serial study's interrupted run.
- A worker's error (`RunHalted`, a bad log) stops the others the same way and is
  raised in the driver as the one line it was.
- Library chatter: each worker process sends its own stderr to `OUT/library.log`.
- Start-up: on Linux the workers are forks of a fork server that imported the suite once
  (`_pool_context`), not fresh interpreters that each import it (~1.5 s apiece). The
  server is started anew for each pool, so its workers see the environment and `sys.path`
  of that moment, as spawned ones would; it exits when the driver does (each worker closes
  its copy of the driver's end of the server's liveness pipe, which multiprocessing hands
  every forked worker); its workers die the moment the driver does (`die_with_parent`).
  Never a fork of the driver itself: it has threads.
- Outcomes come back in the plan's order, whatever order the runs finish in.

Ray: each run is one Ray task that builds its setting (reads the table) and writes its
run folder itself, so on a cluster of several nodes the study folder and the table must
lie on a file system every node mounts at the same path (as the live Ray executor's
checkpoints must). The driver keeps the lock, the plan and the order of outcomes.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

from suite.errors import SuiteError
from suite.interrupt import die_with_parent
from suite.runner import STOP_POLL, RunHalted

__all__ = ["default_jobs", "run_pool", "run_ray"]

Run = tuple[str, int]  # (optimizer, seed)
ORPHAN_GRACE = 3.0  # seconds an orphaned worker has to stop its run before it exits
_SIGNALS = {signal.SIGINT, signal.SIGTERM}


def default_jobs() -> int:
    """The cores this process may use (its CPU affinity, else the machine's cores)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class _Finished:
    """What `on_run` sees for a run that ran elsewhere: its state and ledger once it
    ended (a progress bar shows it complete at once; `on_row` is called with no row)."""

    def __init__(self, outcome) -> None:
        from suite.log import read_meta
        from suite.types import Metric

        self.state, self.ledger, self.on_row = outcome.state, outcome.ledger, None
        meta = read_meta(outcome.directory)  # the run's metric, as a runner has it
        self.metric = Metric(meta.get("metric", "val_loss"), bool(meta.get("minimize", True)))


def _report(outcome, on_run: Callable | None) -> None:
    if on_run is None:
        return
    done = _Finished(outcome)
    on_run(outcome.optimizer, outcome.seed, done)
    if done.on_row is not None:
        done.on_row({}, done)


# ---- worker processes -------------------------------------------------------------------

_WORKER: dict[str, Any] = {}  # in a worker process: its stop event and settings per spec


# what a replay worker imports: the fork server imports it once
_PRELOAD = ["suite.study", "suite._parallel", "suite.tables", "suite.optimizers", "pyarrow.parquet"]
_POOLS = {"active": 0}  # pools of this process now running; guarded by _POOLS_LOCK
_POOLS_LOCK = threading.Lock()


def _pool_context():
    """A fork server's context, the server (re)started for this pool unless another pool of
    this process is running on it; spawn where there is none (not Linux, or a Python
    without `ForkServer._stop`). Call with `_POOLS_LOCK` held."""
    from multiprocessing import forkserver

    server = getattr(forkserver, "_forkserver", None)
    if not sys.platform.startswith("linux") or not hasattr(server, "_stop") or \
            not hasattr(server, "_forkserver_alive_fd"):
        return multiprocessing.get_context("spawn")
    if _POOLS["active"] == 0:
        server._stop()  # started for an earlier pool: another environment, sys.path
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(_PRELOAD)
    return context


def _leave_fork_server() -> int:
    """In a fork server's worker: close this process's copy of the write end of the pipe
    whose end-of-file tells the server its driver is gone (multiprocessing gives every
    worker one, so that workers could start processes of their own; while any worker held
    it the server would outlive a SIGKILLed driver, and its workers with it). Returns the
    server's PID: the parent to watch."""
    from multiprocessing import forkserver

    server = forkserver._forkserver
    if server._forkserver_alive_fd is not None:
        os.close(server._forkserver_alive_fd)
        server._forkserver_alive_fd = None
    return os.getppid()


def _init_worker(flag, parent: int) -> None:
    """A worker's signals only stop its run (the driver stops the others); a watcher
    thread stops it too when the driver sets `flag` or dies (the worker is reparented).

    The driver started this process with SIGINT and SIGTERM blocked (`run_pool`): a
    Ctrl-C during its imports stays pending until the handlers below are installed,
    instead of a KeyboardInterrupt traceback from every worker."""
    if multiprocessing.get_start_method(allow_none=True) == "forkserver":
        parent = _leave_fork_server()  # the server exits with the driver: watch it
    die_with_parent()  # a SIGKILLed driver's workers write nothing more (Linux)
    stop = threading.Event()
    _WORKER["stop"] = stop
    for sig in _SIGNALS:
        signal.signal(sig, lambda *_: stop.set())
    threading.Thread(target=_watch, args=(flag.is_set, parent, stop, True),
                     daemon=True).start()
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _SIGNALS)


def _watch(is_set: Callable[[], bool], parent: int, stop: threading.Event,
           forever: bool = False) -> None:
    """Set `stop` once `is_set()` or the parent is gone; then (`forever`: a pool worker,
    which outlives its run) keep watching the parent. An orphan exits ORPHAN_GRACE
    seconds after its parent died: by then its run has stopped, and nothing is left to
    do but hand back a result no one reads (a SIGTERM only sets `stop`, so nothing else
    would end it)."""
    while forever or not stop.is_set():
        if os.getppid() != parent:
            stop.set()
            time.sleep(ORPHAN_GRACE)
            os._exit(1)
        if not stop.is_set() and is_set():
            stop.set()
        time.sleep(STOP_POLL / 2)


def _setting(spec):
    """The table is read once per worker process and study, not once per run."""
    from suite.setting import study_setting

    key = repr(spec)
    if _WORKER.get("key") != key:
        _WORKER["key"], _WORKER["setting"] = key, study_setting(spec)[1]
    return _WORKER["setting"]


def _run_here(spec, out: Path, name: str, seed: int, stop: threading.Event,
              run_one: Callable):
    """One run of the study in this process: (name, seed, reason), or None if the study
    stopped before it began. Only these few bytes go back, never the run's state (every
    trial's result): a large result blocks its worker on the result pipe once the pool
    no longer reads it (a broken pool, a dead driver); the driver reads the state from
    the run's log (`outcome` in `run_pool`).

    `run_one` is `suite.study`'s one-run function (under the run folder's lock), handed in
    (pickled by reference) rather than imported: `suite.study` imports this module, and
    the two must not import each other."""
    from suite.library_log import LIBRARY_LOG, to_library_log

    if stop.is_set():
        return None
    setting = _setting(spec)
    directory = out / name / f"seed-{seed}"
    with to_library_log(out / LIBRARY_LOG):
        return name, seed, run_one(spec, setting, name, seed, directory, stop).reason


def _run_in_worker(spec, out: Path, name: str, seed: int, run_one: Callable):
    return _run_here(spec, out, name, seed, _WORKER["stop"], run_one)


Outcome = Callable[[str, int, str], Any]  # (name, seed, reason) → the run's outcome


def run_pool(spec, out: Path, runs: list[Run], jobs: int, on_run: Callable | None,
             stop: threading.Event, outcome: Outcome, run_one: Callable) -> dict[Run, Any]:
    """Run `runs` in `jobs` worker processes; returns their outcomes by run (those stopped
    or not begun: `STOPPED` or absent), each `outcome(name, seed, reason)` built here
    from the run's log. Raises a worker's error once all have stopped."""
    # the workers inherit the blocked signals (from a fork server started here, too), and
    # unblock them once their handlers are in (`_init_worker`); the driver's own pending
    # signals arrive when the mask returns
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
    try:
        with _POOLS_LOCK:
            context = _pool_context()
            flag = context.Event()
            pool = ProcessPoolExecutor(jobs, mp_context=context, initializer=_init_worker,
                                       initargs=(flag, os.getpid()))
            _POOLS["active"] += 1
        futures = {pool.submit(_run_in_worker, spec, out, n, s, run_one): (n, s) for n, s in runs}
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    try:
        return _collect(futures, flag, stop, on_run, out, outcome)
    finally:
        flag.set()  # also on a second signal (KeyboardInterrupt): the workers stop too
        pool.shutdown(wait=True, cancel_futures=True)
        with _POOLS_LOCK:
            _POOLS["active"] -= 1


def _collect(futures: dict, flag, stop: threading.Event, on_run, out: Path,
             outcome_of: Outcome) -> dict[Run, Any]:
    outcomes: dict[Run, Any] = {}
    error: BaseException | None = None
    pending = set(futures)
    while pending:
        done, pending = wait(pending, timeout=STOP_POLL, return_when=FIRST_COMPLETED)
        for future in done:
            if future.cancelled():
                continue
            try:
                result = future.result()
            except BrokenProcessPool:
                if stop.is_set():  # a signal reached a worker before its handlers: stopped
                    continue
                name, seed = futures[future]
                error = error or SuiteError(
                    f"a replay worker process died ({name} seed {seed}); its run resumes "
                    f"with suite run --resume {out}")
                continue
            except Exception as exc:  # noqa: BLE001 - re-raised in the driver below
                error = error or _located(exc, *futures[future], out)
                continue
            if result is not None:
                outcome = outcomes[futures[future]] = outcome_of(*result)
                _report(outcome, on_run)
        if error is not None or stop.is_set():
            flag.set()
            for future in pending:
                future.cancel()
    if error is not None:
        raise error
    return outcomes


def _located(exc: BaseException, name: str, seed: int, out: Path) -> BaseException:
    if isinstance(exc, RunHalted):  # as the serial study says it
        return type(exc)(f"{exc} ({name} seed {seed} stopped; fix the cause, then "
                         f"suite run --resume {out})")
    return exc


# ---- Ray tasks ----------------------------------------------------------------------------

class _StopFlag:
    """A Ray actor the driver sets to stop every task (a task cannot see the driver's
    event); tasks poll it every STOP_POLL seconds."""

    def __init__(self) -> None:
        self.value = False

    def set(self) -> None:
        self.value = True

    def is_set(self) -> bool:
        return self.value


def _run_as_task(spec, out: str, name: str, seed: int, flag, run_one: Callable):
    import ray

    def is_set() -> bool:
        try:
            return ray.get(flag.is_set.remote())
        except ray.exceptions.RayError:  # the flag is gone with its driver: stopped
            return True

    stop = threading.Event()
    threading.Thread(target=_watch, daemon=True, args=(is_set, os.getppid(), stop)).start()
    try:
        return _run_here(spec, Path(out), name, seed, stop, run_one)
    finally:
        stop.set()


def run_ray(spec, out: Path, runs: list[Run], jobs: int | None, on_run: Callable | None,
            stop: threading.Event, outcome: Outcome, run_one: Callable) -> dict[Run, Any]:
    """Run `runs` as Ray tasks (one CPU each) on the cluster `suite.executors._ray.connect`
    reached, at most `jobs` in flight (None: as many as the cluster schedules)."""
    from suite.executors._ray import connect

    ray = connect(spec.address, workers=spec.workers)
    flag = ray.remote(num_cpus=0)(_StopFlag).remote()
    task = ray.remote(num_cpus=1, max_retries=0)(_run_as_task)
    queue, refs = list(runs), {}
    outcomes: dict[Run, Any] = {}
    error: BaseException | None = None
    try:
        while queue or refs:
            while queue and error is None and not stop.is_set() and (
                    jobs is None or len(refs) < jobs):
                name, seed = queue.pop(0)
                refs[task.remote(spec, str(out), name, seed, flag, run_one)] = (name, seed)
            ready, _ = ray.wait(list(refs), num_returns=1, timeout=STOP_POLL)
            for ref in ready:
                run = refs.pop(ref)
                try:
                    result = ray.get(ref)
                except ray.exceptions.RayTaskError as exc:
                    error = error or _located(exc.cause or exc, *run, out)
                    continue
                except ray.exceptions.RayError as exc:  # its worker died, the node left
                    error = error or SuiteError(f"the Ray task of {run[0]} seed {run[1]} "
                                                f"died ({type(exc).__name__}); it resumes "
                                                f"with suite run --resume {out}")
                    continue
                if result is not None:
                    done = outcomes[run] = outcome(*result)
                    _report(done, on_run)
            if error is not None or stop.is_set():
                flag.set.remote()
                queue.clear()
    finally:
        if refs:  # a second signal: ask them to stop, and wait, so none is left writing
            flag.set.remote()
            ray.wait(list(refs), num_returns=len(refs), timeout=30)
        ray.kill(flag)  # a named-less actor outlives the study on a long-lived cluster
    if error is not None:
        raise error
    return outcomes
