"""Speed baselines as ratios to a reference workload measured in the same run.

CI machines differ and are noisy, so no benchmark is judged by its seconds. Right after
each benchmark, `reference_seconds()` times a fixed workload of the same kind of work the
suite does (Python dicts and loops, JSON, small numpy operations); the benchmark's
*ratio* is its fastest round divided by the reference's fastest run. A machine twice as
slow doubles both. The committed baseline (`speed_baseline.json`, with the hardware and
command that produced it) holds each benchmark's ratio; a run fails when a ratio exceeds
`baseline × TOLERANCE`. Fastest rounds, not means: noise only ever adds time.

    pytest benchmarks/test_speed.py -p no:cacheprovider                 # check
    pytest benchmarks/test_speed.py -p no:cacheprovider --update-speed-baseline   # regenerate

Regenerating merges: benchmarks not run keep their ratio (add `-m slow` for SMAC at 1,000).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from suite.env import environment

__all__ = ["TOLERANCE", "BASELINE", "Measurement", "reference_seconds", "read_baseline",
           "write_baseline", "verdict", "speed_table"]

# Generous on purpose: a shared 2-core CI machine can slow one benchmark relative to the
# reference by well over 1.5× (a neighbour's burst during one of them); 3× still catches
# an accidental quadratic loop or a model refit on every ask.
TOLERANCE = 3.0
BASELINE = Path(__file__).with_name("speed_baseline.json")
UPDATE_COMMAND = "pytest benchmarks/test_speed.py -p no:cacheprovider --update-speed-baseline"


@dataclass(frozen=True)
class Measurement:
    """One benchmark: its fastest round and the reference measured right after it."""

    name: str
    seconds: float
    reference: float
    unit: str  # what one round is (one ask+tell, one replay, ...)

    @property
    def ratio(self) -> float:
        return self.seconds / self.reference


def _reference_once(rng: np.random.Generator) -> float:
    rows, total = [], 0.0
    for i in range(2000):  # the runner's kind of work: build a row, serialize it
        row = {"trial_id": i, "epoch": i % 27 + 1, "loss": float(i % 97) / 97,
               "config": {"lr": 10 ** -(i % 5), "width": i % 64}}
        rows.append(json.dumps(row, sort_keys=True))
        total += row["loss"] * row["config"]["lr"]
    matrix = rng.standard_normal((64, 64))  # the reports' and models' kind: small arrays
    for _ in range(50):
        matrix = np.tanh(matrix @ matrix.T / 64)
        total += float(np.sort(matrix, axis=1)[:, 32].sum())
    return total + len(rows)


def reference_seconds(repeats: int = 5) -> float:
    """Fastest of `repeats` runs of the fixed reference workload (~10 ms on a laptop)."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        _reference_once(np.random.default_rng(0))
        best = min(best, time.perf_counter() - start)
    return best


def read_baseline(path: Path = BASELINE) -> dict:
    """The committed baseline: {"ratios": {name: ratio}, "hardware": ..., "command": ...}."""
    if not path.is_file():
        return {"ratios": {}}
    return json.loads(path.read_text())


def write_baseline(measurements: list[Measurement], path: Path = BASELINE) -> None:
    """Record the measured ratios; benchmarks not measured this time keep theirs."""
    old = read_baseline(path)
    ratios = {**old.get("ratios", {}), **{m.name: round(m.ratio, 6) for m in measurements}}
    seconds = {**old.get("seconds", {}), **{m.name: asdict(m) for m in measurements}}
    data = {"command": UPDATE_COMMAND,
            "hardware": {**environment(), "cpus": os.cpu_count()},
            "measured": time.strftime("%Y-%m-%d"),
            "tolerance": TOLERANCE,
            "ratios": ratios, "seconds": seconds}
    path.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")


def verdict(measurement: Measurement, baseline: dict) -> tuple[bool, str]:
    """(passed, one line saying why) against the baseline's ratio for this benchmark."""
    expected = baseline.get("ratios", {}).get(measurement.name)
    if expected is None:
        return False, (f"{measurement.name}: no baseline ratio; regenerate with "
                       f"`{UPDATE_COMMAND}`")
    limit = expected * TOLERANCE
    ok = measurement.ratio <= limit
    return ok, (f"{measurement.name}: {measurement.ratio:.3g} × reference "
                f"(baseline {expected:.3g}, limit {limit:.3g} = {TOLERANCE:g}×): "
                f"{'ok' if ok else 'REGRESSION'}")


def speed_table(measurements: list[Measurement], baseline: dict) -> list[str]:
    """Markdown rows: benchmark, time per unit, ratio now vs baseline, verdict."""
    lines = ["| benchmark | time | ratio now | ratio baseline | verdict |",
             "| --- | ---: | ---: | ---: | --- |"]
    for m in measurements:
        expected = baseline.get("ratios", {}).get(m.name)
        ok, _ = verdict(m, baseline)
        lines.append(f"| {m.name} | {_duration(m.seconds)} / {m.unit} | {m.ratio:.3g} | "
                     f"{'–' if expected is None else f'{expected:.3g}'} | "
                     f"{'ok' if ok else 'FAIL'} |")
    return lines


def _duration(seconds: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"
