"""The run log: append-only JSONL, one row per trained epoch, `meta.json` beside it.

Rows and meta are the typed records of `suite.records` (one writer, one reader each).
Rows are flushed line by line, so a killed run loses at most the line being written.
A torn last line (no trailing newline) is tolerated by the reader; `--resume` repairs it
by appending a marker line after it, never by rewriting what is already on disk.

Readers: `read_log` (the rows as records; resume and replay use it), `read_runs` (every
run below a folder as one DataFrame; the reports use it) and `read_run_meta` check every
row and the meta at the boundary, each row's fields and the invariants of the whole log
(`suite.records.LogInvariants`: epochs in order and once, finite non-negative charges,
ledgers that add up), and refuse a bad one with one line naming the file and line.
Nothing is ever rewritten. `read_rows` and `read_meta` give the JSON objects: the rows as
written, unchecked (for tools that look at a log line by line), and the meta's records as
JSON.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from suite import _json
from suite.budget import parse_budget
from suite.errors import SuiteError, cannot_write
from suite.records import Event, LogInvariants, Row, RowError, RunMeta, check_row, record_of

__all__ = ["RunLog", "LogError", "read_log", "read_rows", "read_run_meta", "read_meta",
           "read_runs", "write_atomic", "open_jsonl", "append_jsonl", "close_jsonl",
           "numbered_rows", "LOG_NAME", "META_NAME"]

LOG_NAME = "log.jsonl"
META_NAME = "meta.json"
_REPAIR_MARKER = {"event": str(Event.REPAIRED)}


class LogError(SuiteError):
    """A run folder or log that cannot be read or written."""


class RunLog:
    """Appends rows to `DIR/log.jsonl`; create with `RunLog.create` or `RunLog.reopen`."""

    def __init__(self, directory: Path, handle) -> None:
        self.directory = Path(directory)
        self._handle = handle

    @classmethod
    def create(cls, directory: Path, meta: RunMeta | Mapping[str, Any]) -> RunLog:
        """Start a new run folder; refuses one that already holds a log. `meta` may be
        given as its JSON object (checked as the reader would)."""
        directory = Path(directory)
        if (directory / LOG_NAME).exists():
            raise LogError(f"{directory} already holds a run; use --resume {directory} to "
                           "continue it or choose another --out")
        if not isinstance(meta, RunMeta):
            try:
                meta = RunMeta.from_json(dict(meta))
            except RowError as exc:
                raise LogError(f"cannot write {directory / META_NAME}: {exc}") from None
        try:
            directory.mkdir(parents=True, exist_ok=True)
            write_atomic(directory / META_NAME,
                         json.dumps(meta.to_json(), indent=1, sort_keys=True))
            return cls(directory, open(directory / LOG_NAME, "x", encoding="utf-8"))
        except OSError as exc:
            raise LogError(f"cannot write the run folder {directory}: {exc.strerror}") from None

    @classmethod
    def reopen(cls, directory: Path) -> RunLog:
        """Open an existing log for appending, repairing a torn last line first."""
        return cls(directory, open_jsonl(Path(directory) / LOG_NAME))

    def append(self, row: Row | Mapping[str, Any]) -> Mapping[str, Any]:
        """Write one row and flush it; returns the JSON object written. The runner appends
        records; a JSON object is written as it is (tests and tools write odd rows)."""
        to_json = getattr(row, "to_json", None)
        data = to_json() if to_json is not None else row
        append_jsonl(self._handle, self.directory / LOG_NAME, data)
        return data

    def close(self) -> None:
        close_jsonl(self._handle)

    def __enter__(self) -> RunLog:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_jsonl(path: Path):
    """Open an append-only JSONL file (a run's log, a table's progress) for appending. A
    torn last line (an append cut by a kill or a full disk) is repaired by appending a
    marker line after it, never by rewriting; `numbered_rows` then skips both."""
    path = Path(path)
    try:
        handle = open(path, "a", encoding="utf-8")
        if path.stat().st_size and not _ends_with_newline(path):
            handle.write("\n")  # ends the torn line: the marker gets a line of its own
            append_jsonl(handle, path, _REPAIR_MARKER)
    except OSError as exc:
        raise cannot_write(path, exc) from None
    return handle


def append_jsonl(handle, path: Path, data: Any, *, sort_keys: bool = True) -> None:
    """Append one JSON line to `handle` (opened by `open_jsonl` on `path`) and flush it; a
    failed write is one line naming the file (`NoSpaceError` when the disk is full)."""
    try:
        handle.write(json.dumps(data, sort_keys=sort_keys) + "\n")
        handle.flush()
    except OSError as exc:
        raise cannot_write(path, exc) from None


def close_jsonl(handle) -> None:
    try:
        handle.close()
    except OSError:  # what is left in its buffer is a line whose append already failed
        pass


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as f:
        f.seek(-1, os.SEEK_END)
        return f.read(1) == b"\n"


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text + "\n", encoding="utf-8")
    os.replace(tmp, path)


def read_run_meta(directory: Path) -> RunMeta:
    """A run's meta.json as a record; defaults fill what an older file lacks."""
    path = Path(directory) / META_NAME
    try:
        return RunMeta.from_json(_json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise LogError(f"{directory} is not a run folder (no {META_NAME})") from None
    except RowError as exc:
        raise LogError(f"{path}: {exc}") from None
    except (OSError, ValueError) as exc:
        raise LogError(f"{path} is unreadable ({type(exc).__name__})") from None


def read_meta(directory: Path) -> dict[str, Any]:
    """`read_run_meta` as its JSON object (as this version writes it: all its keys)."""
    return read_run_meta(directory).to_json()


def read_log(directory: Path) -> list[Row]:
    """Every row of a run's log as a record, of either format; a row that is not one of a
    known kind, with its fields and their types, or that breaks the log's invariants
    (`suite.records.LogInvariants`) is an error naming file and line."""
    path = Path(directory) / LOG_NAME
    return _checked(path, numbered_rows(path), records=True, meta=_meta_if_any(directory))


def read_rows(directory: Path) -> list[dict[str, Any]]:
    """Every row of a run's log as the JSON object written, unchecked."""
    return [row for _, row in numbered_rows(Path(directory) / LOG_NAME)]


def numbered_rows(path: Path) -> list[tuple[int, Any]]:
    """(line number, decoded row) of each row. A torn line is skipped only where it is the
    last line or is followed by the repair marker; any other unreadable line is an error."""
    try:
        lines = path.read_text(encoding="utf-8").split("\n")
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as exc:
        raise LogError(f"{path} is unreadable ({type(exc).__name__})") from None
    torn_ok = len(lines) - 1 if lines[-1] else None  # no trailing newline: last line torn
    rows = []
    for i, line in enumerate(lines):
        if not line:
            continue
        try:
            row = _json.loads(line)
        except ValueError:
            if i == torn_ok or _is_marker(lines, i + 1):
                continue
            raise LogError(f"{path}:{i + 1}: corrupt line (not JSON); the log was edited or "
                           "damaged") from None
        if row != _REPAIR_MARKER:
            rows.append((i + 1, row))
    return rows


def _meta_if_any(directory: Path) -> RunMeta | None:
    """The run's meta.json where there is one (a log alone is checked without it)."""
    return read_run_meta(directory) if (Path(directory) / META_NAME).exists() else None


def _invariants(meta: RunMeta | None) -> LogInvariants:
    """The log's rules, with what meta.json says of its ledger: `max_epochs` and budget."""
    if meta is None:
        return LogInvariants()
    try:
        budget = parse_budget(meta.budget) if meta.budget else None
    except SuiteError:
        budget = None  # an older spelling: its ledger is still checked against max_epochs
    return LogInvariants(max_epochs=meta.max_epochs, budget=budget)


def _checked(path: Path, numbered: list[tuple[int, Any]], *, records: bool,
             meta: RunMeta | None = None) -> list[Row]:
    """Check every row, its kind and fields (`check_row`) and the log's invariants
    (`LogInvariants`, with the run's `meta`), in one pass: the first row refused is one
    error naming file and line. Returns the records when `records`, else nothing."""
    rules, out = _invariants(meta), []
    for number, row in numbered:
        try:
            kind = check_row(row)
            rules.add(row, kind)
        except RowError as exc:
            raise LogError(f"{path}:{number}: {exc}") from None
        if records:
            out.append(record_of(row, kind))
    return out


def _is_marker(lines: list[str], i: int) -> bool:
    try:
        return i < len(lines) and _json.loads(lines[i]) == _REPAIR_MARKER
    except ValueError:
        return False


def find_runs(roots: Iterable[Path]) -> list[Path]:
    """Run folders (those holding meta.json) at or below each root, sorted."""
    found: set[Path] = set()
    for root in map(Path, roots):
        if not root.exists():
            raise LogError(f"{root} does not exist")
        found.update(p.parent for p in root.rglob(META_NAME))
    return sorted(found)


def read_runs(roots: Path | Iterable[Path]) -> pd.DataFrame:
    """All rows of all runs at or below `roots`, one DataFrame, with the run's metadata.

    Columns: the row fields, `config.<name>` and `metrics.<name>` flattened, and from
    meta.json `task`, `optimizer`, `seed`, `budget`, `simulated` and `run` (the folder).
    """
    roots = [roots] if isinstance(roots, str | Path) else list(roots)
    frames = []
    for directory in find_runs(roots):
        path = directory / LOG_NAME
        numbered = numbered_rows(path)
        if not numbered:
            continue
        meta = read_run_meta(directory)
        _checked(path, numbered, records=False, meta=meta)  # as `read_log`, no records
        frame = pd.json_normalize([row for _, row in numbered], sep=".")
        if "v" in frame:  # the format of a row, not its data: the same columns in either
            frame = frame.drop(columns="v")
        for key in ("task", "optimizer", "seed", "budget", "simulated"):
            frame[key] = getattr(meta, key)
        frame["run"] = str(directory)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
