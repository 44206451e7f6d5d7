"""Typed records of a run folder: the rows of `log.jsonl` and its `meta.json`.

Every record is a frozen dataclass with one writer (`to_json`: the JSON object written)
and one reader (`parse_row` for rows, `RunMeta.from_json` for meta) that checks at the
boundary what the rest of the suite relies on: the event kind is known, every field of
that kind is present, and each has a JSON type it may have (`check_row`, which the
DataFrame reader uses without building records). `LogInvariants` then checks, row by row,
what a whole log must keep (epochs in order and once, finite non-negative charges, ledgers
that add up); `suite.log`'s readers run both in one pass.

Versions: format 2 stamps `"v": 2` on every row and in meta.json. Rows and metas without
`v` are format 1, written before the records were typed, with the same fields: they read
alike (a meta's missing keys take the defaults below). Format 3 adds one row kind,
`recommend` (the optimizer's recommendation changed); logs of formats 1 and 2 have none
and read as before (a report then applies the stated rule to them). A log resumed by a
newer suite may hold several formats; a row or meta of a format newer than `FORMAT` is
refused, so an older suite says "upgrade" rather than "damaged" at a `recommend` row.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import Any, ClassVar

from suite.budget import Budget, Ledger, Totals
from suite.plan import RunSettings, decode
from suite.types import Status, Trial

__all__ = ["FORMAT", "Event", "RowError", "StartRow", "EpochRow", "EndRow", "RetryRow",
           "RecommendRow", "FinishRow", "Row", "check_row", "parse_row", "record_of",
           "LogInvariants", "RunMeta", "failure_of"]

FORMAT = 3


class Event(StrEnum):
    """The kind of a log row (its `event` field)."""

    START = "start"  # a trial was submitted
    EPOCH = "epoch"  # one trained epoch, charged to the ledger
    END = "end"  # a trial ended without an epoch row saying so
    RETRY = "retry"  # its worker died: the trial runs once more from its last epoch
    RECOMMEND = "recommend"  # after a tell, the optimizer's recommendation changed
    FINISH = "finish"  # the run stopped (the budget was spent, or the optimizer ran dry)
    # Not a row: the line `--resume` appends after a torn last line. Readers skip it.
    REPAIRED = "repaired_torn_line_above"


class RowError(ValueError):
    """A decoded JSON line that is not a row of a known kind, or a meta.json that is not a
    run's meta; the message says why, in one line."""


def _bad(what: str) -> RowError:
    return RowError(f"{what}; the log was edited or damaged")


# --- validation: per kind, (field, the exact Python types its JSON value may decode to) ---

_NONE = type(None)
_INT, _NUM, _STR, _DICT = (int,), (int, float), (str,), (dict,)  # bool is not an int here
_TRIAL = (("trial_id", _INT), ("config_id", _INT), ("config", _DICT),
          ("target_epochs", _INT), ("resumed_from", (int, _NONE)))
_FIELDS: dict[str, tuple[tuple[str, tuple[type, ...]], ...]] = {
    Event.START: _TRIAL + (("start_epoch", _INT), ("asked_after", _INT), ("seed", _INT),
                           ("resumed_checkpoint", (str, _NONE)), ("wall_time", _NUM)),
    Event.EPOCH: _TRIAL + (("epoch", _INT), ("metrics", _DICT), ("loss", _NUM),
                           ("device_seconds", _NUM), ("ledger", _DICT), ("status", _STR),
                           ("worker", _INT), ("wall_time", _NUM)),
    Event.END: _TRIAL + (("status", _STR), ("epoch", _INT), ("error", (str, _NONE)),
                         ("ledger", _DICT), ("wall_time", _NUM)),
    Event.RETRY: _TRIAL + (("epoch", _INT), ("error", (str, _NONE)),
                           ("resumed_checkpoint", (str, _NONE)), ("wall_time", _NUM)),
    Event.RECOMMEND: _TRIAL + (("loss", _NUM), ("ledger", _DICT), ("wall_time", _NUM)),
    Event.FINISH: (("reason", _STR), ("ledger", _DICT), ("wall_time", _NUM)),
}
_LEDGER = (("epochs", _INT), ("device_seconds", _NUM), ("full", _NUM))
_STATUSES = {
    Event.EPOCH: frozenset({Status.RUNNING, Status.OK, Status.FAILED, Status.CUT}),
    Event.END: frozenset({Status.FAILED, Status.CRASHED, Status.TIMEOUT, Status.CUT}),
}
_KINDS = {str(kind): kind for kind in _FIELDS}
_MISSING = object()


def check_row(row: Any) -> Event:
    """The kind of `row` (a decoded JSON line); RowError unless it is a row of that kind."""
    if type(row) is not dict:
        raise _bad(f"bad row (a JSON {type(row).__name__}, not an object)")
    kind = row.get("event")
    spec = _FIELDS.get(kind) if type(kind) is str else None
    if spec is None:
        raise _bad(f"bad row (unknown event {kind!r})")
    for key, types in spec:
        if type(row.get(key, _MISSING)) not in types:
            raise _bad(_wrong(kind, key, row, types))
    ledger = row.get("ledger")
    if ledger is not None:
        for key, types in _LEDGER:
            if type(ledger.get(key, _MISSING)) not in types:
                raise _bad(_wrong(kind, f"ledger.{key}", ledger, types, key))
    statuses = _STATUSES.get(kind)
    if statuses is not None and row["status"] not in statuses:
        raise _bad(f"bad {kind} row (status {row['status']!r} is not one of "
                   f"{', '.join(sorted(statuses))})")
    if "sim_time" in row and type(row["sim_time"]) not in _NUM:
        raise _bad(_wrong(kind, "sim_time", row, _NUM))
    if "v" in row:
        _check_version(row["v"], "row")
    return _KINDS[kind]


def _wrong(kind: str, name: str, data: dict, types: tuple[type, ...],
           key: str | None = None) -> str:
    value = data.get(key or name, _MISSING)
    if value is _MISSING:
        return f"bad {kind} row (no {name!r})"
    expected = " or ".join("null" if t is _NONE else t.__name__ for t in types)
    return f"bad {kind} row ({name!r} is {type(value).__name__}, not {expected})"


def _check_version(v: Any, what: str) -> None:
    if type(v) is not int or v < 1:
        raise RowError(f"bad {what} (format {v!r} is not a version); it was edited or damaged")
    if v > FORMAT:
        raise RowError(f"{what} of format v{v}, written by a newer suite (this one reads "
                       f"v1 to v{FORMAT}): upgrade to read it")


# --- rows ----------------------------------------------------------------------------

def _trial_json(trial: Trial) -> dict[str, Any]:
    return {"trial_id": trial.trial_id, "config_id": trial.config_id,
            "config": dict(trial.config), "target_epochs": trial.epochs,
            "resumed_from": trial.resume_from}


def _trial(data: dict) -> Trial:
    return Trial(data["trial_id"], data["config"], data["target_epochs"], data["config_id"],
                 data["resumed_from"])


def _ledger_json(totals: Totals) -> dict[str, float]:
    return {"epochs": totals.epochs, "device_seconds": totals.device_seconds,
            "full": totals.full}


def _ledger(data: dict) -> Totals:
    ledger = data["ledger"]
    return Totals(ledger["epochs"], ledger["device_seconds"], ledger["full"])


def _stamped(row: dict[str, Any], record) -> dict[str, Any]:
    """Every row ends with the format, its wall time and, on a simulated clock, its time."""
    row["v"] = FORMAT
    row["wall_time"] = record.wall_time
    if record.sim_time is not None:
        row["sim_time"] = record.sim_time
    return row


@dataclass(frozen=True, slots=True)
class StartRow:
    """A trial was submitted: asked after `asked_after` tells, from `start_epoch` (a
    promotion resumed from `resumed_checkpoint`, a name in the run's checkpoint folder)."""

    event: ClassVar[Event] = Event.START
    trial: Trial
    start_epoch: int
    asked_after: int
    seed: int
    resumed_checkpoint: str | None
    wall_time: float
    sim_time: float | None = None

    def to_json(self) -> dict[str, Any]:
        return _stamped({"event": "start", **_trial_json(self.trial),
                         "start_epoch": self.start_epoch, "asked_after": self.asked_after,
                         "seed": self.seed, "resumed_checkpoint": self.resumed_checkpoint},
                        self)

    @classmethod
    def _from(cls, d: dict) -> StartRow:
        return cls(_trial(d), d["start_epoch"], d["asked_after"], d["seed"],
                   d["resumed_checkpoint"], d["wall_time"], d.get("sim_time"))


@dataclass(frozen=True, slots=True)
class EpochRow:
    """One trained epoch: its metrics, the oriented `loss`, its charge and the ledger's
    totals after it. `status`: RUNNING, or how the trial ended at it (OK, FAILED, CUT)."""

    event: ClassVar[Event] = Event.EPOCH
    trial: Trial
    epoch: int
    metrics: Mapping[str, float]
    loss: float
    device_seconds: float
    ledger: Totals
    status: Status
    worker: int
    wall_time: float
    sim_time: float | None = None

    def to_json(self) -> dict[str, Any]:
        return _stamped({"event": "epoch", **_trial_json(self.trial), "epoch": self.epoch,
                         "metrics": dict(self.metrics), "loss": self.loss,
                         "device_seconds": self.device_seconds,
                         "ledger": _ledger_json(self.ledger), "status": self.status,
                         "worker": self.worker}, self)

    @classmethod
    def _from(cls, d: dict) -> EpochRow:
        return cls(_trial(d), d["epoch"], d["metrics"], d["loss"], d["device_seconds"],
                   _ledger(d), Status(d["status"]), d["worker"], d["wall_time"],
                   d.get("sim_time"))


@dataclass(frozen=True, slots=True)
class EndRow:
    """A trial ended without an epoch row saying so, after its epoch `epoch`: FAILED,
    CRASHED, TIMEOUT or CUT."""

    event: ClassVar[Event] = Event.END
    trial: Trial
    status: Status
    epoch: int
    error: str | None
    ledger: Totals
    wall_time: float
    sim_time: float | None = None

    def to_json(self) -> dict[str, Any]:
        return _stamped({"event": "end", **_trial_json(self.trial), "status": self.status,
                         "epoch": self.epoch, "error": self.error,
                         "ledger": _ledger_json(self.ledger)}, self)

    @classmethod
    def _from(cls, d: dict) -> EndRow:
        return cls(_trial(d), Status(d["status"]), d["epoch"], d["error"], _ledger(d),
                   d["wall_time"], d.get("sim_time"))


@dataclass(frozen=True, slots=True)
class RetryRow:
    """Its worker died after epoch `epoch`: the trial runs once more from there."""

    event: ClassVar[Event] = Event.RETRY
    trial: Trial
    epoch: int
    error: str | None
    resumed_checkpoint: str | None
    wall_time: float
    sim_time: float | None = None

    def to_json(self) -> dict[str, Any]:
        return _stamped({"event": "retry", **_trial_json(self.trial), "epoch": self.epoch,
                         "error": self.error,
                         "resumed_checkpoint": self.resumed_checkpoint}, self)

    @classmethod
    def _from(cls, d: dict) -> RetryRow:
        return cls(_trial(d), d["epoch"], d["error"], d["resumed_checkpoint"],
                   d["wall_time"], d.get("sim_time"))


@dataclass(frozen=True, slots=True)
class RecommendRow:
    """After a tell, the optimizer's recommendation (`Recommending.recommend`: what it
    would return if stopped now) changed to `trial`, a trial that ended OK with `loss` (as
    its `ok` epoch row says); `ledger` is the spend then. Written only on a change."""

    event: ClassVar[Event] = Event.RECOMMEND
    trial: Trial
    loss: float
    ledger: Totals
    wall_time: float
    sim_time: float | None = None

    def to_json(self) -> dict[str, Any]:
        return _stamped({"event": "recommend", **_trial_json(self.trial), "loss": self.loss,
                         "ledger": _ledger_json(self.ledger)}, self)

    @classmethod
    def _from(cls, d: dict) -> RecommendRow:
        return cls(_trial(d), d["loss"], _ledger(d), d["wall_time"], d.get("sim_time"))


@dataclass(frozen=True, slots=True)
class FinishRow:
    """The run stopped: `reason` is `budget` or `optimizer`; `ledger` what it spent."""

    event: ClassVar[Event] = Event.FINISH
    reason: str
    ledger: Totals
    wall_time: float
    sim_time: float | None = None

    def to_json(self) -> dict[str, Any]:
        return _stamped({"event": "finish", "reason": self.reason,
                         "ledger": _ledger_json(self.ledger)}, self)

    @classmethod
    def _from(cls, d: dict) -> FinishRow:
        return cls(d["reason"], _ledger(d), d["wall_time"], d.get("sim_time"))


Row = StartRow | EpochRow | EndRow | RetryRow | RecommendRow | FinishRow
_CLASSES = {cls.event: cls for cls in (StartRow, EpochRow, EndRow, RetryRow, RecommendRow,
                                       FinishRow)}


def parse_row(data: Any) -> Row:
    """The record a decoded JSON line holds, of either format; RowError if it holds none."""
    return _CLASSES[check_row(data)]._from(data)


def record_of(data: dict, kind: Event) -> Row:
    """The record of a row `check_row` found to be of `kind` (without checking it again)."""
    return _CLASSES[kind]._from(data)


# --- the invariants of a whole log, checked row by row -----------------------------------

_TOLD_END = frozenset({Status.FAILED, Status.CRASHED, Status.TIMEOUT})
NO_FINITE_OBJECTIVE = "the objective was not a finite number"


def failure_of(row: dict) -> str | None:
    """The first line of the error of a row that marks its trial failed (an `end` row that
    failed, crashed or timed out; an epoch whose objective was not finite), else None.
    What the closing summary and the report's failures section both count."""
    if row.get("event") not in (Event.END.value, Event.EPOCH.value) or \
            row.get("status") not in _TOLD_END:
        return None
    error = row.get("error")
    if isinstance(error, str) and error:
        return error.split("\n")[0]
    return NO_FINITE_OBJECTIVE if row["event"] == Event.EPOCH.value else \
        f"{row['status']} (no error message)"
_TRIAL_KEYS = ("config_id", "target_epochs", "resumed_from", "config")


class _Open:
    """What the checker keeps per trial: its start row's trial fields, its last epoch."""

    __slots__ = ("fields", "epoch", "retried")

    def __init__(self, fields: tuple, epoch: int) -> None:
        self.fields, self.epoch, self.retried = fields, epoch, False


def _a(kind: str) -> str:
    return f"an {kind}" if kind[0] in "aeiou" else f"a {kind}"


def _finite(value: float) -> bool:
    return value - value == 0  # False for NaN and both infinities; cheaper than isfinite


class LogInvariants:
    """The sequence rules every log the runner writes keeps (rows already `check_row`ed):

    - every number is finite and non-negative where the runner writes one so: ids,
      epochs, seeds, workers, charges, ledger totals, wall and simulated times; a loss is
      non-finite exactly when its epoch's status is `failed`;
    - a trial is started once (`start`), and its other rows come after that, with the same
      trial fields; its epochs follow its start epoch one by one, each once, up to its
      target (`ok` exactly at the target); a `retry` (at most one) or `end` is at its last
      epoch; nothing follows a trial's end (an `end`, or an epoch row not `running`);
    - the ledger of each row is the running total of the epochs logged before it (count and
      device-seconds), and never decreases; a start row was asked after as many results as
      were told before it; wall times never decrease;
    - a `recommend` row names a trial that ended `ok`, with the trial fields and loss of
      its `ok` epoch row, differs from the recommendation before it, and carries the
      ledger's running total;
    - a `finish` row comes after every trial has ended, and nothing comes after it; its
      reason is `budget` or `optimizer`.

    Given the run's `max_epochs` (meta.json), every ledger's `full` is its epochs over
    `max_epochs`, as `suite.budget.Ledger` charges it; given its `budget` too, a finish
    row says `budget` exactly when its ledger has spent the budget (the runner stops for
    the budget first, and for a dry optimizer only before).

    `add(row, kind)` takes the rows in order, keeping a few numbers per trial in flight,
    and raises RowError (one line) at the first row that breaks a rule.
    """

    def __init__(self, *, max_epochs: int | None = None, budget: Budget | None = None
                 ) -> None:
        self._max_epochs = max_epochs or None
        self._budget = budget if self._max_epochs else None
        self._open: dict[int, _Open] = {}
        self._started: set[int] = set()
        self._epochs = 0
        self._seconds = 0.0
        self._full = 0.0
        self._tells = 0
        self._wall = 0.0
        self._finished = False
        self._ok: dict[int, tuple[tuple, float]] = {}  # trial ended ok -> (fields, loss)
        self._recommended: int | None = None

    def add(self, row: dict, kind: Event) -> None:
        if self._finished:
            raise _bad(f"{_a(kind)} row after the finish row")
        wall = row["wall_time"]
        if not (_finite(wall) and wall >= self._wall):
            raise _bad(f"bad {kind} row (wall_time {wall!r} is not finite or is before the "
                       f"row above's {self._wall!r})")
        self._wall = wall
        sim = row.get("sim_time")
        if sim is not None and not (_finite(sim) and sim >= 0):
            raise _bad(f"bad {kind} row (sim_time {sim!r} is not a finite time)")
        if kind is Event.EPOCH:
            self._epoch(row)
        elif kind is Event.START:
            self._start(row)
        elif kind is Event.RECOMMEND:
            self._recommend(row)
        elif kind is Event.FINISH:
            self._ledger(row, kind)
            if self._open:
                raise _bad(f"a finish row while trial {min(self._open)} has not ended")
            self._finish_reason(row)
            self._finished = True
        else:
            self._end_or_retry(row, kind)

    def _start(self, row: dict) -> None:
        tid = row["trial_id"]
        if tid in self._started:
            raise _bad(f"trial {tid} started twice")
        for key in ("trial_id", "config_id", "start_epoch", "seed"):
            if row[key] < 0:
                raise _bad(f"bad start row ({key} {row[key]} is negative)")
        if row["target_epochs"] < 1 or (row["resumed_from"] or 0) < 0:
            raise _bad(f"bad start row (target_epochs {row['target_epochs']}, resumed_from "
                       f"{row['resumed_from']})")
        if row["asked_after"] != self._tells:
            raise _bad(f"trial {tid} asked after {row['asked_after']} results, but "
                       f"{self._tells} were told before it")
        self._started.add(tid)
        self._open[tid] = _Open(tuple(row[k] for k in _TRIAL_KEYS), row["start_epoch"])

    def _trial(self, row: dict, kind: Event) -> _Open:
        tid = row["trial_id"]
        trial = self._open.get(tid)
        if trial is None:
            what = "has ended" if tid in self._started else "was never started"
            raise _bad(f"{_a(kind)} row of trial {tid}, which {what}")
        if trial.fields != tuple(row[k] for k in _TRIAL_KEYS):
            raise _bad(f"{_a(kind)} row of trial {tid} whose configuration, target or parent "
                       "differs from its start row's")
        return trial

    def _epoch(self, row: dict) -> None:
        trial = self._trial(row, Event.EPOCH)
        epoch, target, status = row["epoch"], row["target_epochs"], row["status"]
        if epoch != trial.epoch + 1 or epoch > target:
            raise _bad(f"epoch {epoch} of trial {row['trial_id']} after its epoch "
                       f"{trial.epoch} (target {target}): epochs go one by one, each once")
        seconds, loss = row["device_seconds"], row["loss"]
        if not (_finite(seconds) and seconds >= 0):
            raise _bad(f"bad epoch row (device_seconds {seconds!r} is not a finite, "
                       "non-negative time)")
        if _finite(loss) == (status == Status.FAILED):
            raise _bad(f"bad epoch row (loss {loss!r} with status {status!r}: a loss is not "
                       "finite exactly when the epoch failed)")
        if (status == Status.OK) != (epoch == target) and status != Status.FAILED:
            raise _bad(f"bad epoch row (status {status!r} at epoch {epoch} of {target})")
        if row["worker"] < 0:
            raise _bad(f"bad epoch row (worker {row['worker']} is negative)")
        for value in row["metrics"].values():
            if type(value) not in _NUM:
                raise _bad(f"bad epoch row (a metric is {type(value).__name__}, not a number)")
        self._epochs += 1
        self._seconds += seconds
        self._ledger(row, Event.EPOCH)
        trial.epoch = epoch
        if status != Status.RUNNING:
            del self._open[row["trial_id"]]
            if status != Status.CUT:
                self._tells += 1
            if status == Status.OK:
                self._ok[row["trial_id"]] = (trial.fields, loss)

    def _recommend(self, row: dict) -> None:
        tid = row["trial_id"]
        ok = self._ok.get(tid)
        if ok is None:
            raise _bad(f"a recommend row of trial {tid}, which has not ended ok")
        if ok != (tuple(row[k] for k in _TRIAL_KEYS), row["loss"]):
            raise _bad(f"a recommend row of trial {tid} whose configuration, target, parent "
                       "or loss differs from its ok epoch row's")
        if tid == self._recommended:
            raise _bad(f"a recommend row of trial {tid}, recommended already by the row "
                       "before: it is written on a change only")
        self._recommended = tid
        self._ledger(row, Event.RECOMMEND)

    def _end_or_retry(self, row: dict, kind: Event) -> None:
        trial = self._trial(row, kind)
        if row["epoch"] != trial.epoch:
            raise _bad(f"{_a(kind)} row of trial {row['trial_id']} at epoch {row['epoch']}, "
                       f"but its last epoch is {trial.epoch}")
        if kind is Event.RETRY:
            if trial.retried:
                raise _bad(f"trial {row['trial_id']} retried twice")
            trial.retried = True
            return
        self._ledger(row, kind)
        del self._open[row["trial_id"]]
        if row["status"] in _TOLD_END:
            self._tells += 1

    def _ledger(self, row: dict, kind: Event) -> None:
        ledger = row["ledger"]
        epochs, seconds, full = ledger["epochs"], ledger["device_seconds"], ledger["full"]
        if epochs != self._epochs or not (
                abs(seconds - self._seconds) <= 1e-9 * (1.0 + self._seconds)):
            raise _bad(f"bad {kind} row (its ledger, {epochs} epochs and {seconds!r} "
                       f"device-seconds, is not the total of the {self._epochs} epochs logged "
                       f"above it, {self._seconds!r})")
        if not (_finite(full) and full >= self._full):
            raise _bad(f"bad {kind} row (ledger.full {full!r} is not finite or decreases)")
        if self._max_epochs and abs(full - epochs / self._max_epochs) > 1e-12 * (1 + full):
            raise _bad(f"bad {kind} row (ledger.full {full!r} is not its {epochs} epochs over "
                       f"max_epochs {self._max_epochs})")
        self._full = full

    def _finish_reason(self, row: dict) -> None:
        reason = row["reason"]
        if reason not in ("budget", "optimizer"):
            raise _bad(f"bad finish row (reason {reason!r}: a run finishes for its budget or "
                       "because its optimizer had nothing left to ask)")
        if self._budget is None:
            return
        ledger = row["ledger"]
        spent = Ledger(self._budget, max_epochs=self._max_epochs, totals=Totals(
            ledger["epochs"], ledger["device_seconds"], ledger["full"])).exhausted
        if spent != (reason == "budget"):
            raise _bad(f"bad finish row (reason {reason!r}, but its ledger has "
                       f"{'' if spent else 'not '}spent the budget {self._budget})")


# --- meta.json -------------------------------------------------------------------------

_REPLAY_KEYS = ("table", "table_sha256", "fixed", "default_config", "table_provenance")


@dataclass(frozen=True)
class RunMeta(RunSettings):
    """A run's `meta.json`: what ran (task, optimizer, seed, budget), how (its study's
    settings, `suite.plan.RunSettings`, and the environment) and, for a replay, which
    table. A key missing from an older file takes the default, the setting that runs had
    before the key existed. Keys this version does not know are kept in `extra` and
    written back as they were; the format (`v`) is checked when read and stamped when
    written; `format` is the one the file was written in (1: no `v`), i.e. the suite that
    began the run."""

    task_name: str | None = None  # TaskInfo.name (None: written before it was kept)
    optimizer: str | None = None
    seed: int = 0
    space_dims: int | None = None  # d of the task's space (None: written before it was kept)
    task_revision: int = 1  # TaskInfo.revision (1: written before revisions were kept)
    metric: str = "val_loss"
    minimize: bool = True
    max_epochs: int = 0
    min_epochs: int | None = None  # the fidelity's (None: written before they were kept)
    eta: int | None = None
    environment: Mapping[str, Any] = field(default_factory=dict)
    simulated: bool = False
    # a replay's, with the setting `table` (written only when `simulated`), and but for
    # `table` a live run's on a table's grid (`space`)
    table_sha256: str | None = None
    fixed: Mapping[str, Any] = field(default_factory=dict)
    default_config: Mapping[str, Any] | None = None
    table_provenance: Mapping[str, Any] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)
    format: int = FORMAT  # as read (`v`), never written: a file is stamped with FORMAT

    def to_json(self) -> dict[str, Any]:
        out = {**self.extra, "v": FORMAT}
        for f in fields(self):
            if f.name not in ("extra", "format") and (f.name not in _REPLAY_KEYS or self.simulated
                                                      or (self.space and f.name != "table")):
                value = getattr(self, f.name)
                out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    @classmethod
    def from_json(cls, data: Any) -> RunMeta:
        """The meta a decoded meta.json holds; RowError (saying why) if it holds none."""
        if type(data) is not dict:
            raise RowError(f"bad meta (a JSON {type(data).__name__}, not an object); it was "
                           "edited or damaged")
        try:
            known, extra = decode(cls, data, skip=("extra", "format"))
        except ValueError as exc:
            raise RowError(f"bad meta ({exc}); it was edited or damaged") from None
        version = extra.pop("v", 1)
        if type(version) is not int:
            raise RowError(f"bad meta ('v' is {type(version).__name__}, not int); it was "
                           "edited or damaged")
        _check_version(version, "meta")
        return cls(**known, extra=extra, format=version)
