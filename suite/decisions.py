"""Two runs' decisions compared row by row: a live run on a table's grid (`suite run --space
table`) against its replay (`--table`), which must decide alike.

A run's log holds its decisions (which configuration each trial trains, to how many
epochs, resumed from which trial, the losses told, the promotions, the recommendation,
the finish) and what was measured while making them. Only the measured fields may differ:
`MEASURED` below, each with why. Anything else that differs is a bug: in the simulator,
in the table, or in the live training.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from suite.log import LOG_NAME

__all__ = ["MEASURED", "decision_differences"]

MEASURED = {
    "wall_time": "wall seconds: measured live, simulated in a replay",
    "sim_time": "the replay's simulated clock",
    "device_seconds": "measured live; a replay charges the table's",
    "worker": "which worker trained it: a live executor's free slot, the simulator's",
    "seed": "a start row's training seed: live, the table's seed index the replay reads",
    "resumed_checkpoint": "the file a promotion resumed: a replay keeps no model files (the "
                          "decision, which trial at which epoch, is resumed_from and "
                          "start_epoch)",
}


def _decisions(row: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in row.items() if k not in MEASURED}
    if isinstance(out.get("ledger"), dict):  # epochs and full spent: decisions; seconds: not
        out["ledger"] = {k: v for k, v in out["ledger"].items() if k not in MEASURED}
    return out


def decision_differences(live: Path, replay: Path, *, most: int = 5) -> list[str]:
    """Where the log of the run folder `live` decides otherwise than `replay`'s: one line
    per differing row (at most `most`, then a count), none where they decide alike."""
    rows = [[json.loads(line) for line in (Path(d) / LOG_NAME).read_text().splitlines()]
            for d in (live, replay)]
    out = []
    if len(rows[0]) != len(rows[1]):
        out.append(f"{len(rows[0])} rows live, {len(rows[1])} replayed")
    for number, (a, b) in enumerate(zip(*rows, strict=False), 1):
        a, b = _decisions(a), _decisions(b)
        if a != b:
            keys = sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))
            out.append(f"row {number} ({a.get('event')}): " + ", ".join(
                f"{k} {a.get(k)!r} live, {b.get(k)!r} replayed" for k in keys))
    if len(out) > most:
        out = [*out[:most], f"... and {len(out) - most} more"]
    return out
