"""Record a task's table: every grid configuration × training seed trained to max epochs.

Progress is an append-only JSONL beside the table (`<table>.rows.jsonl`): one line per
finished (configuration, seed) with its whole learning curve, flushed as it ends. A crash
or the end of a GPU session loses only the curves in flight; the next call skips what is
recorded and trains the rest, so a table can be collected in chunks across sessions
(`--time-limit` stops submitting new work in time). Every epoch also records the task's
test metrics where it can (`Capabilities.test_epochs`); a table's chunks never mix curves
with and without them, nor two meanings of `device_seconds` (`_check_format`). Each call
rewrites the Parquet table
from everything recorded so far, marked complete or not in its metadata. One process
records a table at a time: it holds `.<table name>.lock` beside it (`suite.lock`).
"""

from __future__ import annotations

import itertools
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from suite.config import validate_config
from suite.env import environment
from suite.errors import SuiteError, cannot_write
from suite.executors import EpochDone, Job, training_executor
from suite.interrupt import Stopped, on_signals
from suite.lock import hold_lock
from suite.log import LogError, append_jsonl, close_jsonl, numbered_rows, open_jsonl
from suite.registry import accepts_scale, load_task
from suite.runner import STOP_POLL
from suite.tables import Table, grid_configs, read_table, space_to_dict, write_table
from suite.types import Trial

__all__ = ["TabulateSpec", "tabulate", "progress_path"]


@dataclass(frozen=True)
class TabulateSpec:
    task: str
    out: Path
    seeds: int = 2
    scale: str | None = None  # a built-in task's; None: its default (`full`)
    workers: int = 1
    devices: tuple[str, ...] = ("auto",)
    executor: str = "local"
    time_limit: float | None = None  # seconds after which no new curve is started
    # each epoch's test metrics too, where the task can (`Capabilities.test_epochs`);
    # False: without them (to go on with a table recorded without test columns)
    test: bool = True


# What `device_seconds` means in every table this module records: one table's chunks
# must all mean the same, which `_check_format` enforces.
DEVICE_SECONDS = ("per epoch, training + validation, measured with the workers sharing "
                  "the devices")


def progress_path(table: Path) -> Path:
    return Path(table).with_suffix(".rows.jsonl")


def tabulate(spec: TabulateSpec, *, on_curve: Callable[[int, int], None] | None = None,
             stop: threading.Event | None = None) -> dict:
    """Record what is missing from the table; return its metadata (with `complete`).

    SIGINT and SIGTERM (main thread), or setting `stop`, end the collection as `suite run`
    ends a study (`suite.interrupt`): the curves recorded stay in the progress file, those
    in flight are dropped, the Parquet table is left as it was, and `Stopped` is raised;
    the same call again goes on from the progress file.
    """
    task = load_task(spec.task, scale=spec.scale)
    if not task.capabilities.table:
        raise SuiteError(f"task {spec.task} has no table grid (Capabilities(table=True) and "
                         "table_grid) to record")
    if spec.scale is None and accepts_scale(spec.task):
        spec = replace(spec, scale="full")
    space, fixed = task.table_grid()
    grid = grid_configs(space)
    fill = {**task.default_config(), **fixed}
    configs = [validate_config(task.config_space(), c, fill_from=fill) for c in grid]
    if Path(spec.out).exists():  # refuse another experiment's table before locking it
        _check_existing(spec, read_table(spec.out).meta, space, fixed)
    out = Path(spec.out)  # one process records a table: a rival is refused in one line
    with hold_lock(out, "table", lock_file=out.with_name(f".{out.name}.lock")), \
            on_signals(threading.Event() if stop is None else stop) as caught:
        try:
            return _record(spec, task, grid, configs, space, fixed, on_curve, caught)
        except KeyboardInterrupt:  # a second signal: stopped at once; the progress holds
            raise Stopped(out, caught.signum) from None


def _record(spec: TabulateSpec, task, grid, configs, space, fixed, on_curve, caught) -> dict:
    """Under the table's lock: read what is recorded (a rival may have added to it)."""
    existing = read_table(spec.out) if Path(spec.out).exists() else None
    if existing is not None:
        _check_existing(spec, existing.meta, space, fixed)
    done = _read_progress(progress_path(spec.out)) or _read_recorded(existing)
    todo = [(i, s) for i in range(len(grid)) for s in range(spec.seeds) if (i, s) not in done]
    if not todo and existing is not None:  # nothing new: never rewrite its provenance
        return existing.meta
    test = _asks_test(spec, task)
    if todo:  # before anything is written: a table never mixes formats or meanings
        _check_format(spec, existing, done, test)
    history = _history(existing.meta) if existing is not None else []
    if todo:
        try:
            Path(spec.out).parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise cannot_write(Path(spec.out).parent, exc) from None
        sink = open_jsonl(progress_path(spec.out))  # a torn last line gets its marker
        try:
            _collect(spec, task, configs, todo, sink, done, on_curve, caught, test)
        finally:
            close_jsonl(sink)
    meta = _meta(spec, task, space, fixed, len(grid), done)
    meta["history"] = history + [{"recorded": meta["recorded"],
                                  "environment": meta["environment"]}]
    write_table(spec.out, _rows(grid, done, task.info.fidelity.max_epochs), meta)
    return meta


def _check_existing(spec: TabulateSpec, meta: dict, space, fixed: dict) -> None:
    """Add to an existing table only when it was recorded for the same task, scale and grid:
    anything else would mix curves of different experiments in one file."""
    expected = {"task": spec.task, "scale": spec.scale, "space": space_to_dict(space),
                "fixed": fixed}
    wrong = [k for k, v in expected.items() if meta.get(k) != v]
    if wrong:
        what = ", ".join(f"{k} {meta.get(k)!r}" if k in ("task", "scale") else f"another {k}"
                         for k in wrong)
        raise SuiteError(f"{spec.out} was recorded with {what}, not for this task's table "
                         "grid; choose another --out")
    if spec.seeds < meta.get("seeds", 0):
        raise SuiteError(f"{spec.out} holds {meta['seeds']} seeds per configuration; "
                         f"--seeds {spec.seeds} would drop some")


def _asks_test(spec: TabulateSpec, task) -> bool:
    return spec.test and task.capabilities.test_epochs


def _check_format(spec: TabulateSpec, existing: Table | None, done: dict, test: bool) -> None:
    """Refuse, in one line, a chunk that would not match what the table already holds:
    test columns where it has none or none where it has them (recorded curves, in the
    progress file or the table, say which), or another meaning of `device_seconds`."""
    has = {any(k.startswith("test_") for k in line["epochs"][0])
           for line in done.values() if line["epochs"]}
    if existing is not None and existing.frame.size:
        has.add(bool(existing.test_metrics))
    if has and has != {test}:
        held = "with" if True in has else "without"
        hint = " (or --no-test to go on without them)" if held == "without" else ""
        raise SuiteError(f"{spec.out} was recorded {held} test metrics and this chunk "
                         f"would be {'with' if test else 'without'}: one table never mixes "
                         f"the two; record a new table with --out{hint}")
    meaning = (existing.meta.get("collection") or {}).get("device_seconds") \
        if existing is not None else None
    if meaning is not None and meaning != DEVICE_SECONDS:
        raise SuiteError(f"{spec.out} records device_seconds {meaning!r}, this chunk would "
                         f"record them {DEVICE_SECONDS!r}: one table never mixes two meanings; "
                         "record a new table with --out")


def _collect(spec, task, configs, todo, sink, done, on_curve, caught, test) -> None:
    # Raw measured seconds, not packed workers' shares: the table's earlier chunks were
    # recorded that way, and one table must not mix two meanings of device_seconds.
    executor = training_executor(spec.executor, task, ref=spec.task, scale=spec.scale,
                                 workers=spec.workers,
                                 devices=spec.devices, share_devices=False)
    start, queue, curves, ids = time.monotonic(), list(todo), {}, itertools.count()
    max_epochs = task.info.fidelity.max_epochs
    try:
        while queue or curves:
            if caught.stop.is_set():
                raise Stopped(spec.out, caught.signum)
            out_of_time = spec.time_limit is not None and \
                time.monotonic() - start > spec.time_limit
            while queue and executor.free_slots() > 0 and not out_of_time:
                index, seed = queue.pop(0)
                trial = Trial(next(ids), configs[index], max_epochs, index)
                curves[trial.trial_id] = (index, seed, [])
                executor.submit(Job(trial, seed, save_to=None, test=test))
            if not curves:
                return
            event = executor.next_event(timeout=STOP_POLL)
            if event is None:
                continue
            index, seed, epochs = curves[event.trial_id]
            if isinstance(event, EpochDone):
                epochs.append({**event.result.metrics,
                               "device_seconds": event.result.device_seconds})
                continue
            del curves[event.trial_id]
            line = {"config_index": index, "seed": seed, "epochs": epochs, "error": event.error}
            # keys as recorded: the metrics' order is the table's column order
            append_jsonl(sink, progress_path(spec.out), line, sort_keys=False)
            done[(index, seed)] = line
            if on_curve is not None:
                on_curve(len(done), len(done) + len(queue) + len(curves))
    finally:
        executor.close()


def _read_progress(path: Path) -> dict[tuple[int, int], dict]:
    """The curves recorded, read as a run's log is: a torn last line (its curve is simply
    recorded again) or one followed by the repair marker is skipped."""
    done: dict[tuple[int, int], dict] = {}
    for number, row in numbered_rows(path):
        try:
            done[(row["config_index"], row["seed"])] = row
        except (KeyError, TypeError):
            raise LogError(f"{path}:{number}: corrupt line; the progress file was damaged") \
                from None
    return done


def _history(meta: dict) -> list[dict]:
    """Where earlier chunks of this table were recorded (hardware, versions, git sha)."""
    return meta.get("history", [{"recorded": meta.get("recorded"),
                                 "environment": meta.get("environment")}])


def _read_recorded(recorded: Table | None) -> dict[tuple[int, int], dict]:
    """Curves already in the Parquet table: a complete table is committed without its
    progress file, and must never be recorded again."""
    if recorded is None:
        return {}
    columns = [*recorded.metrics, "device_seconds"]
    done = {}
    for (index, seed), curve in recorded.frame.sort_values("epoch").groupby(
            ["config_index", "seed"]):
        epochs = [dict(zip(columns, values, strict=True))
                  for values in curve[columns].itertuples(index=False)]
        done[(int(index), int(seed))] = {"config_index": int(index), "seed": int(seed),
                                         "epochs": epochs, "error": None}
    return done


def _rows(grid: list[dict], done: dict, max_epochs: int) -> list[dict[str, Any]]:
    """Long-form rows; a curve cut short by an exception is padded with NaN epochs."""
    names = sorted({name for config in grid for name in config})
    rows = []
    for (index, seed), line in sorted(done.items()):
        base = {"config_index": index, "seed": seed,
                **{f"config.{n}": grid[index].get(n) for n in names}}
        epochs = line["epochs"]
        metric_names = sorted({k for e in epochs for k in e if k != "device_seconds"})
        for epoch in range(1, max_epochs + 1):
            if epoch <= len(epochs):
                rows.append({**base, "epoch": epoch, **epochs[epoch - 1]})
            else:
                rows.append({**base, "epoch": epoch, "device_seconds": 0.0,
                             **{m: math.nan for m in metric_names}})
    return rows


def _meta(spec, task, space, fixed, n_configs: int, done: dict) -> dict[str, Any]:
    info = task.info
    if not done:
        raise SuiteError("nothing recorded yet (--time-limit too short?)")
    metrics = sorted({k for line in done.values() for e in line["epochs"] for k in e
                      if k != "device_seconds"})
    return {"task": spec.task, "scale": spec.scale, "metric": info.metric.name,
            "minimize": info.metric.minimize, "metrics": metrics,
            "test_metrics": [m for m in metrics if m.startswith("test_")], "seeds": spec.seeds,
            "max_epochs": info.fidelity.max_epochs, "space": space_to_dict(space),
            "fixed": fixed, "configs": n_configs, "recorded": len(done),
            "complete": len(done) == n_configs * spec.seeds,
            "failed": sum(1 for line in done.values() if line["error"]),
            "collection": {"workers": spec.workers, "devices": list(spec.devices),
                           "executor": spec.executor, "precision": "bf16 autocast on CUDA",
                           "device_seconds": DEVICE_SECONDS,
                           "test_metrics": "per epoch, the test metrics of the model after "
                                           "it (Task.train(test=True)), evaluated outside "
                                           "device_seconds" if _asks_test(spec, task)
                                           else "none"},
            "environment": environment()}
