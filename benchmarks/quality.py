"""Quality regression: each optimizer's final normalized regret over replay seeds, compared
with a committed baseline by a one-sided paired test.

    python benchmarks/quality.py [--tables results/tables] [--jobs 2]        # check
    python benchmarks/quality.py --update-baseline [--seeds 0-19] [--budgets 30,60] ...

Every complete table under `--tables` is replayed (`suite run --table`'s own study,
runner, simulated executor and log) for each optimizer and seed, once, to the largest
budget; the incumbent at each budget is read off the run's incumbent trace (the report's
`incumbent_traces`: what the run would have returned had it stopped there). An incomplete
table is skipped with a printed reason; a complete table without a baseline, or whose
SHA-256 differs from the baseline's, fails the check (regenerate the baseline).

Normalized regret, as the reports define it (`suite.report.table_reference`):
    regret = (L - best) / (median - best)
where L is the final incumbent's validation loss as the run observed it (the recorded
training seed it drew), `best` the lowest loss recorded anywhere in the table (any
configuration, seed, epoch) and `median` the median over configurations of the loss at
the last epoch averaged over the table's seeds. 0 is the best value a run can observe, 1 a
median configuration trained fully; a run without an incumbent counts as +inf.

The test. Replays are deterministic, so an unchanged optimizer reproduces its baseline
exactly and cannot fail. Seed k now and seed k in the baseline share the table, the
training seeds drawn and every decision before the first one a change alters, so the
samples are paired: a one-sided Wilcoxon signed-rank test on regret(now) − regret(baseline)
per seed (zero differences, the seeds a change did not touch, are dropped), H1: "now is
worse". A comparison fails when p < ALPHA. Each comparison is a separate test at ALPHA with
no family-wise correction: a change that alters trajectories without altering quality
fails a given comparison with probability ≤ ALPHA (the union bound over all of them is
stated in the README), and a real regression is caught at the budget where it shows.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from suite.env import environment, machine_line  # noqa: E402
from suite.errors import SuiteError  # noqa: E402
from suite.optimizers import OPTIMIZERS  # noqa: E402
from suite.report import (  # noqa: E402
    incumbent_traces,
    load_runs,
    on_grid,
    table_reference,
    trial_results,
)
from suite.study import StudySpec, parse_seeds, run_study  # noqa: E402
from suite.tables import read_table  # noqa: E402

__all__ = ["ALPHA", "QualitySpec", "Verdict", "complete_tables", "replay_regrets", "compare",
           "read_baseline", "write_baseline", "quality_table"]

ALPHA = 0.01
BASELINE = Path(__file__).with_name("quality_baseline.json")
UPDATE_COMMAND = "python benchmarks/quality.py --update-baseline"
# SMAC costs ~0.1 s per ask+tell: 20 seeds at 60x would take longer than the rest of CI.
# tpe-median and tpe-hyperband step one epoch at a time (1,620 ask+tells per 60x replay
# of a 27-epoch task): about 3 min for 20 seeds, opt-in (docs/regression-benchmarks.md).
# smac-hyperband has no model but builds a facade per seed: 20 seeds at 60x cost about 4x
# asha's CPU time (docs/regression-benchmarks.md), so it opts in too.
# gp refits its GP on every ask: opt-in too. hyperopt and dehb are cheap (more-optimizers).
DEFAULT_OPTIMIZERS = ("random", "grid", "tpe", "hyperband", "bohb", "asha", "ray-asha", "hyperopt",
                      "dehb")


@dataclass(frozen=True)
class QualitySpec:
    """What is replayed: optimizers × seeds, one replay each to the largest budget."""

    optimizers: tuple[str, ...] = DEFAULT_OPTIMIZERS
    seeds: tuple[int, ...] = tuple(range(20))
    budgets: tuple[float, ...] = (30.0, 60.0)  # full-fidelity equivalents
    workers: int = 4
    include_default: bool = True

    def __post_init__(self) -> None:
        if not self.budgets or min(self.budgets) <= 0:
            raise SuiteError(f"budgets must be positive full-fidelity equivalents, got "
                             f"{self.budgets}")
        unknown = sorted(set(self.optimizers) - set(OPTIMIZERS))
        if unknown or not self.optimizers:
            raise SuiteError(f"unknown optimizers {unknown}; choose from {', '.join(OPTIMIZERS)}")
        if len(self.seeds) < 7:  # the smallest one-sided p of n signed ranks is 2**-n
            raise SuiteError(f"{len(self.seeds)} seeds cannot reach alpha {ALPHA} with a "
                             "signed-rank test; give at least 7")


@dataclass(frozen=True)
class Verdict:
    """One comparison: an optimizer on a table at a budget."""

    task: str
    optimizer: str
    budget: float
    seeds: int
    median_baseline: float
    median_now: float
    changed: int  # seeds whose regret differs from the baseline
    p: float
    worse: bool


def complete_tables(folder: Path) -> tuple[list[Path], list[str]]:
    """(complete tables, one skip reason per incomplete one) among `folder/*.parquet`."""
    tables, skipped = [], []
    for path in sorted(Path(folder).glob("*.parquet")):
        table = read_table(path)
        if table.complete and table.meta.get("complete", True):
            tables.append(path)
            continue
        curves = int(np.isfinite(table.curve("device_seconds")).all(axis=2).sum())
        skipped.append(f"{path}: skipped, incomplete ({curves}/{len(table.configs) * table.seeds}"
                       f" curves); no quality baseline until `suite tabulate --task "
                       f"{table.meta.get('task')}` completes it")
    return tables, skipped


def _replay_chunk(args: tuple[str, str, str, tuple[int, ...], QualitySpec, str]) -> str:
    task, table, name, seeds, spec, out = args
    run_study(StudySpec(task=task, optimizers=(name,), seeds=seeds,
                        budget=f"{max(spec.budgets):g}x", workers=spec.workers,
                        include_default=spec.include_default, table=table), Path(out),
              jobs=1)  # this script's own processes share the work; in-process, a test's
    # monkeypatch (the sabotaged BOHB) reaches the optimizer
    return out


def replay_regrets(table_path: Path, spec: QualitySpec, out: Path, jobs: int = 1
                   ) -> pd.DataFrame:
    """Replay every optimizer × seed of `spec` on the table into `out`; return the final
    normalized regret per (optimizer, seed, budget). `jobs` processes share the work."""
    table = read_table(table_path)
    task = table.meta["task"]
    chunks = [(task, str(table_path), name, spec.seeds[i::jobs], spec,
               str(out / f"{name}-{i}")) for name in spec.optimizers
              for i in range(min(jobs, len(spec.seeds)))]
    if jobs > 1:
        with ProcessPoolExecutor(jobs) as pool:
            list(pool.map(_replay_chunk, chunks))
    else:
        for chunk in chunks:
            _replay_chunk(chunk)
    runs = load_runs(out)
    trace = incumbent_traces(trial_results(runs.rows), runs.rows)
    ref = table_reference(table)
    at = on_grid(trace, "full", np.array(spec.budgets, dtype=float), carry=True)
    at["regret"] = (at["loss"] - ref["best"]) / (ref["median"] - ref["best"])
    every = runs.runs[["optimizer", "seed"]].merge(
        pd.DataFrame({"budget": np.array(spec.budgets, dtype=float)}), how="cross")
    frame = every.merge(at[["optimizer", "seed", "budget", "regret"]],
                        on=["optimizer", "seed", "budget"], how="left")
    frame["regret"] = frame["regret"].fillna(np.inf)  # no incumbent by then: worst
    return frame.sort_values(["optimizer", "budget", "seed"]).reset_index(drop=True)


def paired_p(baseline: np.ndarray, now: np.ndarray) -> tuple[int, float]:
    """(seeds that changed, one-sided Wilcoxon signed-rank p of "now is worse")."""
    cap = 1e6  # a run without incumbent (+inf) is worse than any finite regret
    d = np.minimum(now, cap) - np.minimum(baseline, cap)
    changed = int(np.count_nonzero(d))
    if changed == 0:
        return 0, 1.0
    return changed, float(stats.wilcoxon(d, alternative="greater",
                                         zero_method="wilcox").pvalue)


def compare(task: str, baseline: pd.DataFrame, now: pd.DataFrame, alpha: float = ALPHA
            ) -> list[Verdict]:
    """One verdict per (optimizer, budget) of the baseline, paired by seed."""
    merged = baseline.merge(now, on=["optimizer", "seed", "budget"], how="left",
                            suffixes=("_baseline", "_now"))
    if merged["regret_now"].isna().any():
        missing = merged.loc[merged["regret_now"].isna(), ["optimizer", "budget"]]
        raise SuiteError(f"{task}: no current result for {missing.drop_duplicates().values}")
    verdicts = []
    for (name, budget), g in merged.groupby(["optimizer", "budget"], sort=True):
        base, cur = g["regret_baseline"].to_numpy(), g["regret_now"].to_numpy()
        changed, p = paired_p(base, cur)
        verdicts.append(Verdict(task, name, float(budget), len(g), float(np.median(base)),
                                float(np.median(cur)), changed, p, p < alpha))
    return verdicts


def read_baseline(path: Path = BASELINE) -> dict:
    if not path.is_file():
        raise SuiteError(f"no quality baseline at {path}; create it with `{UPDATE_COMMAND}`")
    return json.loads(path.read_text())


def baseline_frame(entry: dict) -> pd.DataFrame:
    rows = [{"optimizer": name, "budget": float(budget), "seed": seed, "regret": value}
            for name, by_budget in entry["regret"].items()
            for budget, values in by_budget.items()
            for seed, value in zip(entry["seeds"], values, strict=True)]
    return pd.DataFrame(rows)


def table_entry(path: Path, spec: QualitySpec, regrets: pd.DataFrame) -> dict:
    """What the baseline keeps of a table: its checksum and every seed's regret, unrounded
    (JSON floats round-trip exactly, so an unchanged replay compares equal)."""
    regret: dict[str, dict[str, list[float]]] = {}
    for (name, budget), g in regrets.groupby(["optimizer", "budget"], sort=True):
        values = g.set_index("seed").loc[list(spec.seeds), "regret"]
        regret.setdefault(name, {})[f"{budget:g}"] = [float(v) for v in values]
    shown = path.resolve().relative_to(ROOT) if path.resolve().is_relative_to(ROOT) else path
    return {"path": str(shown), "sha256": _sha256(path), "seeds": list(spec.seeds),
            "regret": regret}


def write_baseline(spec: QualitySpec, tables: dict[str, dict], path: Path = BASELINE) -> None:
    data = {"command": UPDATE_COMMAND, "alpha": ALPHA, "spec": asdict(spec), "tables": tables,
            "environment": environment()}  # library versions: what replays depend on
    path.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")


def spec_of(baseline: dict) -> QualitySpec:
    return QualitySpec(**{k: tuple(v) if isinstance(v, list) else v
                          for k, v in baseline["spec"].items()})


def _sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def quality_table(verdicts: list[Verdict]) -> list[str]:
    lines = ["| table | optimizer | budget | seeds | median regret baseline | now | seeds "
             "changed | p (one-sided) | verdict |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for v in verdicts:
        lines.append(f"| {v.task} | {v.optimizer} | {v.budget:g}x | {v.seeds} | "
                     f"{v.median_baseline:.4f} | {v.median_now:.4f} | {v.changed} | "
                     f"{v.p:.3g} | {'WORSE' if v.worse else 'ok'} |")
    return lines


def check(folder: Path, baseline: dict, out: Path, jobs: int) -> tuple[list[Verdict], list[str]]:
    """Replay every complete table against its baseline entry; (verdicts, problems)."""
    spec, known = spec_of(baseline), baseline["tables"]
    tables, skipped = complete_tables(folder)
    for line in skipped:
        print(line)
    verdicts, problems = [], []
    tasks = {read_table(p).meta["task"]: p for p in tables}
    for task in sorted(set(known) - set(tasks)):
        problems.append(f"{task}: in the baseline but no complete table under {folder}")
    for task, path in sorted(tasks.items()):
        entry = known.get(task)
        if entry is None:
            problems.append(f"{path}: complete but not in the baseline; run `{UPDATE_COMMAND}`")
            continue
        if entry["sha256"] != _sha256(path):
            problems.append(f"{path}: changed since the baseline was recorded (SHA-256); "
                            f"run `{UPDATE_COMMAND}`")
            continue
        now = replay_regrets(path, spec, out / task, jobs)
        verdicts += compare(task, baseline_frame(entry), now, baseline.get("alpha", ALPHA))
    return verdicts, problems


def _budgets(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(b.strip().rstrip("x")) for b in text.split(","))
    except ValueError:
        raise SuiteError(f"malformed --budgets {text!r}: expected e.g. 30,60") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tables", type=Path, default=ROOT / "results" / "tables")
    parser.add_argument("--baseline", type=Path, default=BASELINE)
    parser.add_argument("--jobs", type=int, default=2, help="replay processes")
    parser.add_argument("--update-baseline", action="store_true")
    parser.add_argument("--optimizers", help="with --update-baseline (default: "
                        f"{','.join(DEFAULT_OPTIMIZERS)})")
    parser.add_argument("--seeds", help="with --update-baseline (default 0-19)")
    parser.add_argument("--budgets", help="with --update-baseline, e.g. 30,60 (default)")
    args = parser.parse_args(argv)
    try:
        with tempfile.TemporaryDirectory(prefix="suite-quality-") as tmp:
            if args.update_baseline:
                return _update(args, Path(tmp))
            verdicts, problems = check(args.tables, read_baseline(args.baseline), Path(tmp),
                                       max(1, args.jobs))
    except SuiteError as exc:
        print(f"quality: error: {exc}", file=sys.stderr)
        return 2
    print(f"machine: {machine_line()}")
    print("\n".join(quality_table(verdicts)))
    for line in problems:
        print(f"FAIL {line}")
    worse = [v for v in verdicts if v.worse]
    for v in worse:
        print(f"FAIL {v.task} {v.optimizer} at {v.budget:g}x: median regret "
              f"{v.median_baseline:.4f} → {v.median_now:.4f}, p = {v.p:.3g} < {ALPHA}")
    return 1 if worse or problems or not verdicts else 0


def _update(args: argparse.Namespace, tmp: Path) -> int:
    defaults = QualitySpec()
    spec = QualitySpec(
        optimizers=tuple(args.optimizers.split(",")) if args.optimizers else
        defaults.optimizers,
        seeds=parse_seeds(args.seeds) if args.seeds else defaults.seeds,
        budgets=_budgets(args.budgets) if args.budgets else defaults.budgets)
    tables, skipped = complete_tables(args.tables)
    for line in skipped:
        print(line)
    entries = {}
    for path in tables:
        task = read_table(path).meta["task"]
        regrets = replay_regrets(path, spec, tmp / task, max(1, args.jobs))
        entries[task] = table_entry(path, spec, regrets)
    write_baseline(spec, entries, args.baseline)
    print(f"wrote {args.baseline} ({len(entries)} tables)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
