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

With `fuse="auto"` (a task with `Capabilities.fused`, the local executor) grid points that
share a shape (`Task.fuse_key`) train as fused arrays of up to `fuse_max` members: the
same metrics as trained alone (bit for bit on the CPU), a curve landing as its member
finishes. A fused array does not measure what `DEVICE_SECONDS` means (an array's epoch
is shared among its members, and arrays load the devices otherwise than solo workers),
so the meaning is kept by a solo timing (`SOLO_TIMING`): before a shape's first array,
`workers` solo runs of that shape (its first configurations in grid order) train
`TIMING_EPOCHS` epochs at once, one per worker on the chunk's devices, as the solo chunks'
workers shared them; the median of their measured epochs is the shape's seconds per epoch,
and every epoch of every curve a fused chunk records is charged it. Each shape is timed
once per table: its timing is a line of the progress file (a stopped collection keeps
it) and is stored in the metadata (`collection.solo_timing`, with the raw timed epochs
and which curves were charged from it), so later chunks, fused or solo, reuse it, and a
stopped and resumed fused collection records the table an uninterrupted one would.
"""

from __future__ import annotations

import itertools
import json
import math
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from suite.config import validate_config
from suite.env import environment, training_provenance
from suite.errors import SuiteError, cannot_write
from suite.executors import EpochDone, Job, check_fuse, training_executor
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
    # "auto": same-shape grid points train as fused arrays of up to `fuse_max` members,
    # each charged its shape's solo timing (`SOLO_TIMING`); the local executor only
    fuse: str = "off"
    fuse_max: int = 8


# What `device_seconds` means in every table this module records: one table's chunks
# must all mean the same, which `_check_format` enforces.
DEVICE_SECONDS = ("per epoch, training + validation, measured with the workers sharing "
                  "the devices")

# How a fused chunk keeps that meaning (recorded in `collection.solo_timing.method`).
TIMING_EPOCHS = 3
SOLO_TIMING = (f"each shape (Task.fuse_key) timed once per table: as many solo runs as the "
               f"chunk has workers, of the shape's first configurations in grid order, train "
               f"{TIMING_EPOCHS} epochs (at most max_epochs) at once, one per worker on the "
               f"chunk's devices, measured as DEVICE_SECONDS; every epoch of a curve "
               f"recorded in a fused chunk is charged the median of those epochs (one value "
               f"per shape: the solo curves' epoch-to-epoch variation is not reproduced)")


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
    check_fuse(spec.executor, task, spec.fuse, spec.fuse_max)
    if spec.scale is None and accepts_scale(spec.task):
        spec = replace(spec, scale="full")
    space, fixed = task.table_grid()
    grid = grid_configs(space)
    fill = {**task.default_config(), **fixed}
    configs = [validate_config(task.config_space(), c, fill_from=fill) for c in grid]
    if Path(spec.out).exists():  # refuse another experiment's table before locking it
        _check_existing(spec, read_table(spec.out), space, fixed, task.info.revision)
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
        _check_existing(spec, existing, space, fixed, task.info.revision)
    done, timings = _read_progress(progress_path(spec.out))
    # the table's curves and the progress file's: a complete table is committed without
    # its progress file, and a chunk added to it later (more seeds) writes a new one
    done = {**_read_recorded(existing), **done}
    timings = {**_stored_timings(existing), **timings}
    # every configuration's first seed before any second: a cut collection leaves a table
    # that covers the whole grid
    todo = [(i, s) for s in range(spec.seeds) for i in range(len(grid)) if (i, s) not in done]
    if not todo and existing is not None:  # nothing new: never rewrite its provenance
        return existing.meta
    test = _asks_test(spec, task)
    if todo:  # before anything is written: a table never mixes formats or meanings
        _check_format(spec, existing, done, test)
    history = _history(existing.meta) if existing is not None else []
    chunk: dict[str, Any] = {"fuse": spec.fuse}
    if todo:
        try:
            Path(spec.out).parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise cannot_write(Path(spec.out).parent, exc) from None
        sink = open_jsonl(progress_path(spec.out))  # a torn last line gets its marker
        collect = _collect_fused if spec.fuse == "auto" else _collect
        before, started = len(done), time.monotonic()
        try:
            chunk.update(collect(spec, task, configs, todo, sink, done, timings, on_curve,
                                 caught, test))
        finally:
            close_jsonl(sink)
        chunk.update(curves=len(done) - before, wall_seconds=time.monotonic() - started)
    meta = _meta(spec, task, space, fixed, len(grid), done, timings)
    meta["history"] = history + [{"recorded": meta["recorded"],
                                  "environment": meta["environment"], **chunk}]
    write_table(spec.out, _rows(grid, done, task.info.fidelity.max_epochs), meta)
    return meta


def _check_existing(spec: TabulateSpec, existing: Table, space, fixed: dict,
                    revision: int) -> None:
    """Add to an existing table only when it was recorded for the same task, revision,
    scale and grid: anything else would mix curves of different experiments in one file."""
    expected = {"task": spec.task, "scale": spec.scale, "space": space_to_dict(space),
                "fixed": fixed}
    meta = existing.meta
    wrong = [k for k, v in expected.items() if meta.get(k) != v]
    if not wrong and existing.task_revision != revision:
        raise SuiteError(f"{spec.out} was recorded by revision {existing.task_revision} of task "
                         f"{spec.task!r}, which now trains as revision {revision}; choose "
                         "another --out")
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


def _collect(spec, task, configs, todo, sink, done, timings, on_curve, caught, test) -> dict:
    # Raw measured seconds, not packed workers' shares: the table's earlier chunks were
    # recorded that way, and one table must not mix two meanings of device_seconds.
    executor = training_executor(spec.executor, task, ref=spec.task, scale=spec.scale,
                                 workers=spec.workers,
                                 devices=spec.devices, share_devices=False)
    try:
        _collect_curves(spec, task, executor, configs, todo, sink, done, on_curve, caught,
                        test, time.monotonic())
    finally:
        executor.close()
    return {}


def _collect_fused(spec, task, configs, todo, sink, done, timings, on_curve, caught,
                   test) -> dict:
    """Time the shapes not yet timed (`SOLO_TIMING`: solo jobs, `Job.alone`), then train
    the curves of the timed ones as fused arrays, shape by shape (so that arrays fill up),
    each epoch charged its shape's solo seconds. One set of workers does both; returns
    the members of each array (1: a curve trained alone) for the chunk's history."""
    start = time.monotonic()
    shapes = [_shape(task, config, i) for i, config in enumerate(configs)]
    wanted = list(dict.fromkeys(shapes[i] for i, _ in todo))
    executor = training_executor(spec.executor, task, ref=spec.task, scale=spec.scale,
                                 workers=spec.workers, devices=spec.devices, fuse="auto",
                                 fuse_max=spec.fuse_max, share_devices=False)
    try:
        ids = itertools.count()  # one executor: trial ids unique across both phases
        _time_shapes(spec, task, executor, configs, shapes,
                     [s for s in wanted if s not in timings], sink, timings, caught, start, ids)
        timed, order = len(executor.arrays), {shape: n for n, shape in enumerate(wanted)}
        # by shape within each seed: every configuration's first seed still comes first
        todo = sorted((key for key in todo if shapes[key[0]] in timings),
                      key=lambda key: (key[1], order[shapes[key[0]]]))
        _collect_curves(spec, task, executor, configs, todo, sink, done, on_curve, caught,
                        test, start, ids,
                        seconds=lambda index: timings[shapes[index]]["seconds_per_epoch"])
    finally:
        executor.close()
    return {"arrays": executor.arrays[timed:]}


def _shape(task, config: dict, index: int) -> str:
    """A configuration's shape as text (its `fuse_key`); one that cannot fuse (None) is a
    shape of its own."""
    key = task.fuse_key(config)
    return json.dumps({"configuration": index} if key is None else key, default=str)


def _time_shapes(spec, task, executor, configs, shapes, needed, sink, timings, caught,
                 start, ids) -> None:
    """`SOLO_TIMING` of each shape in `needed`: one progress line (and an entry of
    `timings`) per shape, as soon as its last run ends."""
    epochs = min(TIMING_EPOCHS, task.info.fidelity.max_epochs)
    queue, measured = [], {}
    for shape in needed:
        members = [i for i, s in enumerate(shapes) if s == shape]
        for run in range(spec.workers):  # one per worker: the devices packed as solo chunks'
            index = members[run % len(members)]
            trial = Trial(next(ids), configs[index], epochs, index)
            queue.append(((shape, run, index), Job(trial, seed=0, save_to=None, alone=True)))
            measured[shape, run, index] = []

    def on_epoch(key, result) -> None:
        measured[key].append(result.device_seconds)

    def on_end(key, error, left) -> None:
        shape = key[0]
        if error is not None or not measured[key]:
            raise SuiteError(f"the solo timing of shape {shape} failed ({error or 'no epoch'})"
                             f"; its curves cannot be charged: record them with --fuse off")
        runs = [k for k in measured if k[0] == shape]
        if any(len(measured[k]) < epochs for k in runs):
            return  # another run of this shape still trains
        timing = {"shape": shape, "configs": [k[2] for k in runs], "seed": 0,
                  "workers": spec.workers, "devices": list(spec.devices), "epochs": epochs,
                  "measured": [measured[k] for k in runs],
                  "seconds_per_epoch": statistics.median(
                      [x for k in runs for x in measured[k]])}
        append_jsonl(sink, progress_path(spec.out), {"shape_timing": timing}, sort_keys=False)
        timings[shape] = timing

    _drive(spec, executor, queue, caught, start, on_epoch, on_end)


def _collect_curves(spec, task, executor, configs, todo, sink, done, on_curve, caught, test,
                    start, ids=None, seconds: Callable[[int], float] | None = None) -> None:
    """Train every (configuration, seed) of `todo` to max epochs; each curve a progress line
    as it ends. `seconds(config_index)`: what each epoch is charged instead of what it
    measured (a fused chunk's solo timing)."""
    max_epochs, ids = task.info.fidelity.max_epochs, ids or itertools.count()
    queue = [((index, seed), Job(Trial(next(ids), configs[index], max_epochs, index), seed,
                                 save_to=None, test=test)) for index, seed in todo]
    epochs: dict[tuple[int, int], list[dict]] = {}

    def on_epoch(key, result) -> None:
        charged = result.device_seconds if seconds is None else seconds(key[0])
        epochs.setdefault(key, []).append({**result.metrics, "device_seconds": charged})

    def on_end(key, error, left) -> None:
        line = {"config_index": key[0], "seed": key[1], "epochs": epochs.pop(key, []),
                "error": error}
        if seconds is not None:
            line["device_seconds_from"] = "solo_timing"
        # keys as recorded: the metrics' order is the table's column order
        append_jsonl(sink, progress_path(spec.out), line, sort_keys=False)
        done[key] = line
        if on_curve is not None:
            on_curve(len(done), len(done) + left)

    _drive(spec, executor, queue, caught, start, on_epoch, on_end)


def _drive(spec, executor, queue: list, caught, start: float, on_epoch, on_end) -> None:
    """Submit `queue`'s (key, job) pairs as slots free up, none after the time limit; pass
    each job's epochs and end on by its key."""
    in_flight: dict[int, Any] = {}
    while queue or in_flight:
        if caught.stop.is_set():
            raise Stopped(spec.out, caught.signum)
        out_of_time = spec.time_limit is not None and \
            time.monotonic() - start > spec.time_limit
        while queue and executor.free_slots() > 0 and not out_of_time:
            key, job = queue.pop(0)
            in_flight[job.trial.trial_id] = key
            executor.submit(job)
        if not in_flight:
            return
        event = executor.next_event(timeout=STOP_POLL)
        if event is None:
            continue
        key = in_flight[event.trial_id]
        if isinstance(event, EpochDone):
            on_epoch(key, event.result)
            continue
        del in_flight[event.trial_id]
        on_end(key, event.error, len(queue) + len(in_flight))


def _read_progress(path: Path) -> tuple[dict[tuple[int, int], dict], dict[str, dict]]:
    """The curves recorded and the shapes timed (a fused chunk's `shape_timing` lines),
    read as a run's log is: a torn last line (its curve is simply recorded again) or one
    followed by the repair marker is skipped."""
    done: dict[tuple[int, int], dict] = {}
    timings: dict[str, dict] = {}
    for number, row in numbered_rows(path):
        try:
            if isinstance(row, dict) and "shape_timing" in row:
                timings[row["shape_timing"]["shape"]] = row["shape_timing"]
            else:
                done[(row["config_index"], row["seed"])] = row
        except (KeyError, TypeError):
            raise LogError(f"{path}:{number}: corrupt line; the progress file was damaged") \
                from None
    return done, timings


def _stored_timings(recorded: Table | None) -> dict[str, dict]:
    """The shapes' solo timings a table's metadata holds (from its fused chunks)."""
    if recorded is None:
        return {}
    return {entry["shape"]: entry for entry in _recorded_timing(recorded).get("shapes", [])}


def _recorded_timing(recorded: Table) -> dict:
    """A table's `collection.solo_timing` (its fused chunks'), empty when it has none."""
    return (recorded.meta.get("collection") or {}).get("solo_timing") or {}


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
    # the curves whose seconds are a shape's solo timing
    for index, seed in _recorded_timing(recorded).get("curves", []):
        if (index, seed) in done:
            done[index, seed]["device_seconds_from"] = "solo_timing"
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


def _meta(spec, task, space, fixed, n_configs: int, done: dict,
          timings: dict[str, dict]) -> dict[str, Any]:
    info = task.info
    if not done:
        raise SuiteError("nothing recorded yet (--time-limit too short?)")
    metrics = sorted({k for line in done.values() for e in line["epochs"] for k in e
                      if k != "device_seconds"})
    return {"task": spec.task, "task_revision": info.revision, "scale": spec.scale,
            "metric": info.metric.name,
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
                                           else "none",
                           "fuse": spec.fuse,
                           "provenance": training_provenance(spec.executor, spec.workers),
                           **({"fuse_max": spec.fuse_max} if spec.fuse == "auto" else {}),
                           **_solo_timing(done, timings)},
            "environment": environment()}


def _solo_timing(done: dict, timings: dict[str, dict]) -> dict[str, Any]:
    """`collection.solo_timing`: how fused chunks were charged (`SOLO_TIMING`), each
    shape's timing, and the curves charged from it; nothing for a table without them."""
    curves = sorted(key for key, line in done.items()
                    if line.get("device_seconds_from") == "solo_timing")
    if not curves and not timings:
        return {}
    return {"solo_timing": {"method": SOLO_TIMING,
                            "shapes": [timings[s] for s in sorted(timings)],
                            "curves": [list(key) for key in curves]}}
