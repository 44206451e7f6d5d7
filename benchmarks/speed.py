"""Speed baselines as ratios to a reference workload measured in the same run.

CI machines differ and are noisy, so no benchmark is judged by its seconds. Right after
each benchmark, `reference_seconds()` times a fixed workload of the same kind of work the
suite does (Python dicts and loops, JSON, small numpy operations); the benchmark's
*ratio* is its fastest round divided by the reference's fastest run. A machine twice as
slow doubles both, but not every CPU shifts both alike (grid's ask+tell is 2× the
reference's share on an AVX2 AMD EPYC of what it is on an AVX-512 Xeon), so the committed
baseline (`speed_baseline.json`) holds each benchmark's ratio per machine, keyed by its CPU
line, with the command and software that produced it. A run on a recorded machine is
judged against that machine's ratio, elsewhere against the largest recorded one; it fails
when the ratio exceeds `baseline × TOLERANCE` twice: a first excess is measured again
(a neighbour's burst rarely lasts through both, a regression always does). Fastest rounds,
not means: noise only ever adds time.

    pytest benchmarks/test_speed.py -p no:cacheprovider                 # check
    pytest benchmarks/test_speed.py -p no:cacheprovider --update-speed-baseline   # regenerate

Regenerating merges: it rewrites this machine's entry, and within it benchmarks not run keep
their ratio (add `-m slow` for SMAC at 1,000); other machines' entries stay.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from suite.env import cpu_isa, cpu_model, environment

__all__ = ["TOLERANCE", "BASELINE", "Measurement", "reference_seconds", "machine_key",
           "read_baseline", "write_baseline", "expected_ratio", "verdict", "judge", "speed_table"]

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


def machine_key() -> str:
    """The CPU a ratio belongs to: model, cores and ISA extensions (what picks the kernels)."""
    return f"{cpu_model()}, {os.cpu_count()} cores, ISA {' '.join(cpu_isa()) or 'unknown'}"


def read_baseline(path: Path = BASELINE) -> dict:
    """The committed baseline: {"machines": {machine_key: {"ratios": {name: ratio},
    "hardware": ..., "measured": ...}}, "command": ..., "tolerance": ...}."""
    if not path.is_file():
        return {"machines": {}}
    return json.loads(path.read_text())


def write_baseline(measurements: list[Measurement], path: Path = BASELINE) -> None:
    """Record the measured ratios under this machine; benchmarks not measured this time keep
    theirs, and other machines' entries stay as they were."""
    old = read_baseline(path)
    key = machine_key()
    mine = old.get("machines", {}).get(key, {})
    ratios = {**mine.get("ratios", {}), **{m.name: round(m.ratio, 6) for m in measurements}}
    seconds = {**mine.get("seconds", {}), **{m.name: asdict(m) for m in measurements}}
    entry = {"hardware": {**environment(), "cpus": os.cpu_count()},
             "measured": time.strftime("%Y-%m-%d"), "ratios": ratios, "seconds": seconds}
    data = {"command": UPDATE_COMMAND, "tolerance": TOLERANCE,
            "machines": {**old.get("machines", {}), key: entry}}
    path.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")


def expected_ratio(name: str, baseline: dict, machine: str | None = None) -> float | None:
    """This machine's recorded ratio for `name`; on a machine not recorded, the largest
    any recorded machine shows (the loosest honest guess); None where none has it."""
    machines = baseline.get("machines", {})
    mine = machines.get(machine or machine_key(), {}).get("ratios", {})
    if name in mine:
        return mine[name]
    known = [m["ratios"][name] for m in machines.values() if name in m.get("ratios", {})]
    return max(known) if known else None


def verdict(measurement: Measurement, baseline: dict) -> tuple[bool, str]:
    """(passed, one line saying why) against the baseline's ratio for this benchmark."""
    expected = expected_ratio(measurement.name, baseline)
    if expected is None:
        return False, (f"{measurement.name}: no baseline ratio; regenerate with "
                       f"`{UPDATE_COMMAND}`")
    limit = expected * TOLERANCE
    ok = measurement.ratio <= limit
    return ok, (f"{measurement.name}: {measurement.ratio:.3g} × reference "
                f"(baseline {expected:.3g}, limit {limit:.3g} = {TOLERANCE:g}×): "
                f"{'ok' if ok else 'REGRESSION'}")


def judge(first: Measurement, again, baseline: dict) -> tuple[Measurement, bool, str]:
    """`first` judged, and where it exceeds the limit measured once more (`again()`: the
    benchmark's fastest seconds per unit, then the reference), keeping each one's fastest:
    a neighbour's burst rarely spans both measurements, a regression always does.
    Returns (the measurement kept, passed, one line saying why)."""
    ok, line = verdict(first, baseline)
    if ok:
        return first, ok, line
    seconds = again()
    kept = replace(first, seconds=min(first.seconds, seconds),
                   reference=min(first.reference, reference_seconds()))
    ok, line = verdict(kept, baseline)
    return kept, ok, f"{line} (measured twice)"


def speed_table(measurements: list[Measurement], baseline: dict) -> list[str]:
    """Markdown rows: benchmark, time per unit, ratio now vs baseline, verdict."""
    lines = ["| benchmark | time | ratio now | ratio baseline | verdict |",
             "| --- | ---: | ---: | ---: | --- |"]
    for m in measurements:
        expected = expected_ratio(m.name, baseline)
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
