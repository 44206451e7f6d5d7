"""Tables: learning curves recorded from real training over a task's table grid.

A table holds, for every configuration of the grid and every training seed, each
epoch's metrics and device-seconds, in long form (one row per configuration × seed ×
epoch) in Parquet, with its provenance in the file's metadata under the key `suite`
(task, scale, metric, the grid as ConfigSpace JSON, seeds, hardware, package versions,
git sha, how it was collected, whether it is complete).

Columns: `config_index` (position in the grid's canonical order), one column per
hyperparameter named `config.<name>` (None where inactive), `seed` (0..S-1), `epoch`
(1..max_epochs), the task's metrics under their own names, and `device_seconds`. A
table recorded from a task with `Capabilities.test_epochs` also holds, per epoch, the
task's test metrics of the model after that epoch (`test_...` columns, named in the
metadata's `test_metrics`); one recorded before them, or from a task without them, has
none (`test_metrics` empty or absent), and replays the same either way.

`Table.lookup(config_index, seed)` serves replay: dense arrays indexed by configuration,
seed and epoch, so one lookup is a few array reads.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from ConfigSpace import ConfigurationSpace
from ConfigSpace.util import generate_grid

from suite import _json
from suite.config import to_plain
from suite.errors import SuiteError, cannot_write

__all__ = ["Table", "TableError", "grid_configs", "config_key", "read_table", "write_table",
           "space_to_dict", "space_from_dict", "META_KEY"]

META_KEY = b"suite"


class TableError(SuiteError):
    """A table that is missing, unreadable, incomplete or does not fit its task."""


def space_to_dict(space: ConfigurationSpace) -> dict[str, Any]:
    buffer = io.StringIO()
    space.to_json(buffer)
    return json.loads(buffer.getvalue())


def space_from_dict(data: Mapping[str, Any]) -> ConfigurationSpace:
    return ConfigurationSpace.from_json(io.StringIO(json.dumps(data)))


def config_key(config: Mapping[str, Any]) -> str:
    """Canonical text of a configuration (sorted keys, plain values): the lookup key."""
    return json.dumps(to_plain(dict(config)), sort_keys=True)


def grid_configs(space: ConfigurationSpace) -> list[dict[str, Any]]:
    """Every configuration of a table grid (a space of ordinals and categoricals) in a
    canonical order: sorted by `config_key`, so the order never depends on ConfigSpace's."""
    configs = {config_key(c): to_plain(dict(c)) for c in generate_grid(space)}
    return [configs[k] for k in sorted(configs)]


@dataclass
class Table:
    """A recorded table, indexed for replay."""

    meta: dict[str, Any]
    frame: pd.DataFrame = field(repr=False)

    def __post_init__(self) -> None:
        _check_meta(self.meta)
        self.space = space_from_dict(self.meta["space"])
        self.configs = grid_configs(self.space)
        self.index = {config_key(c): i for i, c in enumerate(self.configs)}
        self.metrics = tuple(self.meta["metrics"])
        # the test columns (`Capabilities.test_epochs`); a table from before them has none
        self.test_metrics = tuple(self.meta.get(
            "test_metrics", [m for m in self.metrics if m.startswith("test_")]))
        self.seeds = int(self.meta["seeds"])
        self.max_epochs = int(self.meta["max_epochs"])
        # TaskInfo.revision of the task that recorded it; 1: recorded before revisions were kept
        self.task_revision = self.meta.get("task_revision", 1)
        self._check_frame()
        self._dense = self._densify()

    def _check_frame(self) -> None:
        """What replay relies on, checked once: TableError (one line) where it fails.

        Every row is one epoch of a grid configuration and seed, each once; a recorded
        curve has all `max_epochs` epochs (a failed one is padded with NaN metrics); every
        device-second is finite and non-negative. Metrics may be NaN or infinite: a
        diverged or failed curve is recorded as it was, and a replay fails that trial."""
        f, keys = self.frame, ("config_index", "seed", "epoch")
        for name in (*keys, "device_seconds", *self.metrics):
            if name not in f:
                raise TableError(f"no column {name!r}")
            dtype = f[name].dtype
            integral = name in keys
            if not (pd.api.types.is_integer_dtype(dtype) if integral else (
                    pd.api.types.is_numeric_dtype(dtype)
                    and not pd.api.types.is_bool_dtype(dtype))):
                raise TableError(f"column {name!r} holds {dtype}, not "
                                 f"{'integers' if integral else 'numbers'}")
        for name, high in zip(keys, (len(self.configs), self.seeds, self.max_epochs + 1),
                              strict=True):
            low = 1 if name == "epoch" else 0
            values = f[name].to_numpy()
            if len(values) and (values.min() < low or values.max() >= high):
                raise TableError(f"column {name!r} holds values outside {low}..{high - 1}")
        seconds = f["device_seconds"].to_numpy(dtype=float)
        bad = ~(np.isfinite(seconds) & (seconds >= 0))
        if bad.any():
            row = int(np.argmax(bad))
            raise TableError(f"row {row} has device_seconds {float(seconds[row])!r}, not a finite, "
                             "non-negative time")
        if f.duplicated(list(keys)).any():
            raise TableError("an epoch of a configuration and seed is recorded twice")
        curves = f.groupby(["config_index", "seed"]).size()
        if (curves != self.max_epochs).any():
            (index, seed), n = next((k, v) for k, v in curves.items() if v != self.max_epochs)
            raise TableError(f"the curve of configuration {index}, seed {seed} is incomplete: "
                             f"{n} of {self.max_epochs} epochs")
        recorded = self.meta.get("recorded")
        if recorded is not None and recorded != len(curves):
            raise TableError(f"its metadata says {recorded!r} curves were recorded, it holds "
                             f"{len(curves)}")

    def _densify(self) -> dict[str, np.ndarray]:
        shape = (len(self.configs), self.seeds, self.max_epochs)
        f = self.frame
        at = (f["config_index"].to_numpy(), f["seed"].to_numpy(), f["epoch"].to_numpy() - 1)
        dense = {}
        for column in (*self.metrics, "device_seconds"):
            values = np.full(shape, np.nan)
            values[at] = f[column].to_numpy(dtype=float)
            dense[column] = values
        return dense

    @property
    def complete(self) -> bool:
        return not np.isnan(self._dense["device_seconds"]).any()

    def config_index(self, config: Mapping[str, Any]) -> int:
        try:
            return self.index[config_key(config)]
        except KeyError:
            raise TableError(f"configuration {config_key(config)} is not in the table's grid "
                             "(replay runs optimizers on the table's space)") from None

    def epoch(self, config_index: int, seed: int, epoch: int) -> tuple[dict[str, float], float]:
        """(metrics, device_seconds) of one recorded epoch (1-based)."""
        metrics = {m: float(self._dense[m][config_index, seed, epoch - 1]) for m in self.metrics}
        return metrics, float(self._dense["device_seconds"][config_index, seed, epoch - 1])

    def curve(self, metric: str) -> np.ndarray:
        """[configs, seeds, epochs] array of one metric (NaN where not recorded)."""
        return self._dense[metric]


_META_TYPES = {"space": (dict,), "metrics": (list,), "seeds": (int,), "max_epochs": (int,)}


def _check_meta(meta: Any) -> None:
    if type(meta) is not dict:
        raise TableError(f"its metadata is a JSON {type(meta).__name__}, not an object")
    for key, types in _META_TYPES.items():
        if type(meta.get(key)) not in types:
            raise TableError(f"its metadata's {key!r} is {type(meta.get(key)).__name__}, "
                             f"not {types[0].__name__}")
    if meta["seeds"] < 1 or meta["max_epochs"] < 1:
        raise TableError("its metadata's seeds and max_epochs must be positive")
    revision = meta.get("task_revision", 1)
    if type(revision) is not int or revision < 1:
        raise TableError(f"its metadata's task_revision is {revision!r}, not an integer from 1")
    if not all(type(m) is str for m in meta["metrics"]):
        raise TableError("its metadata's metrics are not names")
    tests = meta.get("test_metrics", [])
    if type(tests) is not list or not set(tests) <= set(meta["metrics"]):
        raise TableError("its metadata's test_metrics are not among its metrics")


def write_table(path: Path, rows: Sequence[Mapping[str, Any]], meta: Mapping[str, Any]) -> None:
    """Write rows (dicts with the columns described above) and metadata to Parquet."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    frame = pd.DataFrame(list(rows))
    names = [n for n in frame.columns if n.startswith("config.")]
    for name in names:  # mixed None/str columns must stay object, never float NaN
        frame[name] = frame[name].astype(object)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    table = table.replace_schema_metadata({**(table.schema.metadata or {}),
                                           META_KEY: json.dumps(dict(meta), sort_keys=True)})
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:  # atomic: a table is whole or as it was, never half written
        pq.write_table(table, tmp, compression="zstd")
        tmp.replace(path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise cannot_write(path, exc) from None


def read_table(path: Path) -> Table:
    """Read a table written by `write_table`; any problem is one clear `TableError`."""
    import pyarrow.parquet as pq

    path = Path(path)
    if not path.is_file():
        raise TableError(f"table {path} does not exist; record it with `suite tabulate`")
    try:
        parquet = pq.read_table(path)
        meta = _json.loads(parquet.schema.metadata[META_KEY])
        frame = parquet.to_pandas()
        return Table(meta, frame)
    except TableError as exc:  # what a table must hold, checked at the boundary
        raise TableError(f"table {path} is damaged or was edited: {exc}") from None
    except (OSError, KeyError, ValueError, TypeError, IndexError) as exc:
        raise TableError(f"table {path} is corrupt or not a suite table "
                         f"({type(exc).__name__})") from None
