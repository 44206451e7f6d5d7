"""The run log: append-only JSONL, one row per trained epoch, `meta.json` beside it.

Rows are flushed line by line, so a killed run loses at most the line being written.
A torn last line (no trailing newline) is tolerated by the reader; `--resume` repairs it
by appending a marker line after it, never by rewriting what is already on disk.
`read_runs` is the only reader the reports use.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from suite.errors import SuiteError

__all__ = ["RunLog", "LogError", "read_rows", "read_meta", "read_runs", "write_atomic",
           "LOG_NAME", "META_NAME"]

LOG_NAME = "log.jsonl"
META_NAME = "meta.json"
_REPAIR_MARKER = {"event": "repaired_torn_line_above"}


class LogError(SuiteError):
    """A run folder or log that cannot be read or written."""


class RunLog:
    """Appends rows to `DIR/log.jsonl`; create with `RunLog.create` or `RunLog.reopen`."""

    def __init__(self, directory: Path, handle) -> None:
        self.directory = Path(directory)
        self._handle = handle

    @classmethod
    def create(cls, directory: Path, meta: Mapping[str, Any]) -> RunLog:
        """Start a new run folder; refuses one that already holds a log."""
        directory = Path(directory)
        if (directory / LOG_NAME).exists():
            raise LogError(f"{directory} already holds a run; use --resume {directory} to "
                           "continue it or choose another --out")
        try:
            directory.mkdir(parents=True, exist_ok=True)
            write_atomic(directory / META_NAME, json.dumps(meta, indent=1, sort_keys=True))
            return cls(directory, open(directory / LOG_NAME, "x", encoding="utf-8"))
        except OSError as exc:
            raise LogError(f"cannot write the run folder {directory}: {exc.strerror}") from None

    @classmethod
    def reopen(cls, directory: Path) -> RunLog:
        """Open an existing log for appending, repairing a torn last line first."""
        path = Path(directory) / LOG_NAME
        try:
            handle = open(path, "a", encoding="utf-8")
            if path.stat().st_size and not _ends_with_newline(path):
                handle.write("\n" + json.dumps(_REPAIR_MARKER) + "\n")
                handle.flush()
        except OSError as exc:
            raise LogError(f"cannot append to {path}: {exc.strerror}") from None
        return cls(directory, handle)

    def append(self, row: Mapping[str, Any]) -> None:
        self._handle.write(json.dumps(row, sort_keys=True) + "\n")
        self._handle.flush()

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> RunLog:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as f:
        f.seek(-1, os.SEEK_END)
        return f.read(1) == b"\n"


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text + "\n", encoding="utf-8")
    os.replace(tmp, path)


def read_meta(directory: Path) -> dict[str, Any]:
    path = Path(directory) / META_NAME
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LogError(f"{directory} is not a run folder (no {META_NAME})") from None
    except (OSError, ValueError) as exc:
        raise LogError(f"{path} is unreadable ({type(exc).__name__})") from None


def read_rows(directory: Path) -> list[dict[str, Any]]:
    """Every row of a run's log. A torn line is skipped only where it is the last line or
    is followed by the repair marker; any other unreadable line is an error."""
    path = Path(directory) / LOG_NAME
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
            row = json.loads(line)
        except ValueError:
            if i == torn_ok or _is_marker(lines, i + 1):
                continue
            raise LogError(f"{path}:{i + 1}: corrupt line (not JSON); the log was edited or "
                           "damaged") from None
        if row != _REPAIR_MARKER:
            rows.append(row)
    return rows


def _is_marker(lines: list[str], i: int) -> bool:
    try:
        return i < len(lines) and json.loads(lines[i]) == _REPAIR_MARKER
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
        rows = read_rows(directory)
        if not rows:
            continue
        meta = read_meta(directory)
        frame = pd.json_normalize(rows, sep=".")
        for key in ("task", "optimizer", "seed", "budget", "simulated"):
            frame[key] = meta.get(key)
        frame["run"] = str(directory)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
