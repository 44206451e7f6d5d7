"""Live runs against their replays on several workers: distributions over seeds.

    python benchmarks/live_vs_replay_dist.py --table PATH [--workers 2]
        [--optimizers grid,random,tpe,hyperband,bohb] [--live-seeds 0-9]
        [--replay-seeds 0-49] [--budget 6x] [--work runs/live-vs-replay]
        [--out results/live_vs_replay/two-workers]

With more than one worker, a run's decisions depend on the order in which trials finish:
measured wall time live, the table's recorded seconds in a replay. So a live run is no
longer its replay's copy; the question is whether the replay predicts the distribution of
live results. Per optimizer: the live runs' final normalized regret (the observed
incumbent, runner's rule; `suite.report` `table_reference`) against the replay's over
`--replay-seeds`, by a two-sided Mann-Whitney U test, Holm's correction across
optimizers; the replay's 10-90% band and the live median at ten budget points; and the
charged device-seconds per run, live (measured) against replayed (the table's), same unit.
A verdict per optimizer: `consistent` when the Holm-adjusted p is at least 0.05 and the
live median final regret lies in the replay's 10-90% band, else `differs`.

The table must be recorded here with the live run's workers (`suite tabulate ... --workers
2`): the live study is refused otherwise. Studies go into `--work` and resume there.
Writes `OUT.json` and `OUT.png`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import mannwhitneyu
from statsmodels.stats.multitest import multipletests

from suite.env import environment, machine_line
from suite.plan import parse_seeds
from suite.report._runs import final_incumbents, incumbent_traces, load_runs, trial_results
from suite.report._table import table_reference
from suite.study import STUDY_NAME, StudySpec, run_study
from suite.tables import read_table

ROOT = Path(__file__).resolve().parents[1]
POINTS = np.linspace(0.1, 1.0, 10)  # fractions of the budget for the anytime comparison


def _study(spec: StudySpec, out: Path, jobs: int | None = None) -> float:
    t0 = time.perf_counter()
    run_study(spec, out, resume=(out / STUDY_NAME).exists(), jobs=jobs)
    return time.perf_counter() - t0


def per_run(out: Path, ref: dict[str, float], budget_x: float) -> pd.DataFrame:
    """One row per run: optimizer, seed, final regret, regret at each of POINTS, and the
    device-seconds it was charged."""
    rows = load_runs(out).rows
    trace = incumbent_traces(trial_results(rows), rows)
    trace["regret"] = (trace["loss"] - ref["best"]) / (ref["median"] - ref["best"])
    final = final_incumbents(trace).set_index("run")
    charged = rows[rows["event"] == "epoch"].groupby("run")["device_seconds"].sum()
    records = []
    for run, group in trace[~trace["end"]].groupby("run"):
        spent = group["ledger.full"].to_numpy()
        regret = group["regret"].to_numpy()
        at = [float(regret[spent <= p * budget_x][-1]) if (spent <= p * budget_x).any()
              else np.nan for p in POINTS]
        records.append({"run": run, "optimizer": final.loc[run, "optimizer"],
                        "seed": int(final.loc[run, "seed"]),
                        "final": float(final.loc[run, "regret"]), "at": at,
                        "device_seconds": float(charged.get(run, 0.0))})
    return pd.DataFrame(records)


def _num(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None  # JSON has no NaN


def compare(live: pd.DataFrame, replay: pd.DataFrame, names: list[str]) -> list[dict]:
    out = []
    for name in names:
        a, b = live[live["optimizer"] == name], replay[replay["optimizer"] == name]
        test = mannwhitneyu(a["final"], b["final"], alternative="two-sided")
        seconds = mannwhitneyu(a["device_seconds"], b["device_seconds"],
                               alternative="two-sided")
        at_a, at_b = np.vstack(a["at"].to_numpy()), np.vstack(b["at"].to_numpy())
        # a point before the first trial reached full fidelity has no incumbent: NaN,
        # compared only where both sides have one
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            band = np.nanpercentile(at_b, [10, 90], axis=0)
            live_median = np.nanmedian(at_a, axis=0)
        both = np.isfinite(live_median) & np.isfinite(band).all(axis=0)
        out.append({
            "optimizer": name, "live_runs": len(a), "replay_runs": len(b),
            "final_live_median": float(np.median(a["final"])),
            "final_replay_median": float(np.median(b["final"])),
            "final_replay_10_90": [float(x) for x in np.percentile(b["final"], [10, 90])],
            "mann_whitney_u": float(test.statistic), "p": float(test.pvalue),
            "anytime_points_x_fraction": [round(float(p), 2) for p in POINTS],
            "anytime_live_median": [_num(x) for x in live_median],
            "anytime_replay_10": [_num(x) for x in band[0]],
            "anytime_replay_90": [_num(x) for x in band[1]],
            "anytime_points_compared": int(both.sum()),
            "anytime_live_median_in_band": int(np.sum(both & (live_median >= band[0]) &
                                                      (live_median <= band[1]))),
            "device_seconds_live_median": float(np.median(a["device_seconds"])),
            "device_seconds_replay_median": float(np.median(b["device_seconds"])),
            "device_seconds_ratio": float(np.median(a["device_seconds"])
                                          / np.median(b["device_seconds"])),
            "device_seconds_p": float(seconds.pvalue)})
    adjusted = multipletests([r["p"] for r in out], method="holm")[1]
    for r, p in zip(out, adjusted, strict=True):
        low, high = r["final_replay_10_90"]
        r["p_holm"] = float(p)
        r["verdict"] = ("consistent" if p >= 0.05 and low <= r["final_live_median"] <= high
                        else "differs")
    return out


def figure(result: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(result), figsize=(1.6 * len(result) + 0.8, 2.4),
                             sharey=True, layout="constrained")
    for ax, r in zip(np.atleast_1d(axes), result, strict=True):
        x = r["anytime_points_x_fraction"]
        low, high, live = ([np.nan if v is None else v for v in r[key]] for key in (
            "anytime_replay_10", "anytime_replay_90", "anytime_live_median"))
        ax.fill_between(x, low, high, color="0.8", label="replay 10-90%")
        ax.plot(x, live, color="C3", marker="o", ms=3, label="live median")
        ax.set_title(f"{r['optimizer']}\n{r['verdict']}, p={r['p_holm']:.2f}", fontsize=8)
        ax.set_xlabel("budget fraction", fontsize=8)
        ax.tick_params(labelsize=7)
    np.atleast_1d(axes)[0].set_ylabel("normalized regret", fontsize=8)
    np.atleast_1d(axes)[0].legend(fontsize=7, frameon=False)
    fig.savefig(path, dpi=150)
    plt.close(fig)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", type=Path, required=True)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--optimizers", default="grid,random,tpe,hyperband,bohb")
    parser.add_argument("--live-seeds", default="0-9")
    parser.add_argument("--replay-seeds", default="0-49")
    parser.add_argument("--budget", default="6x")
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "live-vs-replay")
    parser.add_argument("--out", type=Path,
                        default=ROOT / "results" / "live_vs_replay" / "two-workers")
    args = parser.parse_args()
    names = args.optimizers.split(",")
    table = args.table.resolve()
    plan = {"task": "text_classifier", "optimizers": tuple(names), "budget": args.budget,
            "include_default": True, "workers": args.workers}
    live_out, replay_out = args.work / "live", args.work / "replay"
    live_wall = _study(StudySpec(**plan, seeds=parse_seeds(args.live_seeds), space=str(table),
                                 executor="local"), live_out)
    replay_wall = _study(StudySpec(**plan, seeds=parse_seeds(args.replay_seeds),
                                   table=str(table)), replay_out)
    ref = table_reference(read_table(table))
    budget_x = float(args.budget.rstrip("x"))
    result = compare(per_run(live_out, ref, budget_x), per_run(replay_out, ref, budget_x),
                     names)
    print(f"{'optimizer':<10} {'live med':>8} {'replay med':>10} {'replay 10-90':>14} "
          f"{'U':>6} {'p Holm':>7}  anytime in band  device-s live/replay  verdict")
    for r in result:
        lo, hi = r["final_replay_10_90"]
        print(f"{r['optimizer']:<10} {r['final_live_median']:>8.3f} "
              f"{r['final_replay_median']:>10.3f} {lo:>6.3f}-{hi:<7.3f} "
              f"{r['mann_whitney_u']:>6.0f} {r['p_holm']:>7.3f}  "
              f"{r['anytime_live_median_in_band']:>2}/{r['anytime_points_compared']:<2}"
              f"            "
              f"{r['device_seconds_live_median']:>6.2f} / {r['device_seconds_replay_median']:<6.2f}"
              f"   {r['verdict']}")
    print(f"live {live_wall:.0f} s, replays {replay_wall:.0f} s wall; {machine_line()}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    figure(result, args.out.with_suffix(".png"))
    args.out.with_suffix(".json").write_text(json.dumps({
        "command": "python benchmarks/live_vs_replay_dist.py " + " ".join(sys.argv[1:]),
        "table": str(table.relative_to(ROOT)) if table.is_relative_to(ROOT) else str(table),
        "budget": args.budget, "workers": args.workers, "test": "two-sided Mann-Whitney U "
        "of final normalized regret, live runs against replayed runs, Holm across optimizers",
        "reference": ref, "machine": machine_line(), "environment": environment(),
        # this call's: studies already complete in --work resume at once
        "wall_seconds_this_call": {"live": round(live_wall), "replay": round(replay_wall)},
        "optimizers": result}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
