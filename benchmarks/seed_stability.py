"""How many seeds a study needs: how often a pair of optimizers' order flips at n seeds.

    python benchmarks/seed_stability.py STUDY_DIR [STUDY_DIR …] [--budgets 30x,60x]
        [--sizes 10,20,50,100] [--resamples 2000] --out results/seed-stability

Reads a replayed study with many seeds per optimizer (several folders are one study, e.g.
one per optimizer group), takes each run's recommended configuration's full-fidelity
validation loss at each budget point (the table's mean over its training seeds: what the
run would have returned had it stopped there, as the report's ranks, tests and pairs
compare),
and for every pair of optimizers and every seed-set size n draws n seed numbers with
replacement, `--resamples` times (`suite.report.order_flips`), counting how often the
pair's order by IQM, and by median, differs from its order on all seeds. Each pair is
also compared on all seeds (`suite.report.pair_differences`): it is *resolved* where the
IQM difference's 95% interval excludes 0 and P(A < B)'s excludes 0.5.

The recommendation: the smallest n (of `--sizes`, at most the seeds available) at which no
pair resolved on all seeds flips its IQM order in more than 5% of seed sets, at every
budget point. Pairs the full study cannot resolve flip often at any n and do not count:
more seeds would be needed to say anything about them, not to keep their order.

Writes OUT/seed-stability.csv (every flip rate), OUT/seed-stability-pairs.csv (the
all-seed comparison) and OUT/seed-stability.json (the recommendation, the inputs, the
command), and prints the table as Markdown.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from suite.budget import parse_budget
from suite.errors import SuiteError
from suite.records import Event
from suite.report import load_runs, recommended_anytime
from suite.report._sec_pairs import pair_points
from suite.report._seeds import order_flips
from suite.report._writer import md_table
from suite.tables import read_table

FLIP_LIMIT = 0.05  # a resolved pair may flip in at most this share of seed sets


def incumbents_at(roots: list[Path], budgets: tuple[str, ...] | None) -> pd.DataFrame:
    """One value per (optimizer, seed, budget point): the recommended configuration's
    full-fidelity loss; every run must be finished."""
    runs = load_runs(roots)
    if len(runs.tasks) != 1:
        raise SuiteError(f"one task per study, found {', '.join(runs.tasks)}")
    finished = set(runs.rows.loc[runs.rows["event"] == Event.FINISH, "run"])
    unfinished = sorted(set(runs.runs["run"]) - finished)
    if unfinished:
        raise SuiteError(f"{len(unfinished)} runs have no finish row yet (first: "
                         f"{unfinished[0]}): wait for the study to end")
    points = pair_points(runs, budgets)
    unit = runs.runs["unit_axis"].iloc[0]
    tables = sorted(set(runs.runs["table"].dropna()))
    if len(tables) != 1 or not runs.runs["simulated"].all():
        raise SuiteError("expected a replayed study of one table")
    # the recommended configuration's full-fidelity value (table mean over its training
    # seeds), what the report's ranks, tests and pairs compare
    values = recommended_anytime(runs, read_table(Path(tables[0])), axis=unit,
                                 grid=np.array([p.amount for p in points]), carry=True)
    values = values.rename(columns={"value": "loss"})
    values["point"] = values["budget"].map({p.amount: str(p) for p in points})
    return values


def recommend(flips: pd.DataFrame, resolved: pd.DataFrame, seeds: int) -> dict:
    """The smallest n at which no resolved pair flips its IQM order more than FLIP_LIMIT."""
    keep = resolved.loc[resolved["resolved"], ["budget", "a", "b"]]
    iqm = flips[flips["aggregate"] == "iqm"].merge(keep, on=["budget", "a", "b"])
    worst = iqm.groupby("n")["flip_rate"].max() if len(iqm) else pd.Series(dtype=float)
    ok = [int(n) for n, rate in worst.items() if rate <= FLIP_LIMIT and n <= seeds]
    return {"rule": f"smallest n (at most the {seeds} seeds available) at which no pair "
                    f"resolved on all seeds flips its IQM order in more than "
                    f"{FLIP_LIMIT:.0%} of seed sets",
            "resolved_pairs": int(len(keep)), "worst_resolved_flip_by_n":
                {int(n): float(r) for n, r in worst.items()},
            "seeds": min(ok) if ok else None}


def markdown(flips: pd.DataFrame, resolved: pd.DataFrame, points: dict) -> str:
    """Rows: budget point and pair; columns: flip rate by IQM (by median) at each n."""
    wide = flips.pivot_table(index=["budget", "a", "b"], columns=["n", "aggregate"],
                             values="flip_rate")
    # On a table the losses are discrete: two optimizers' medians can be the same value,
    # and a tie on all seeds has no order to keep.
    tied = flips[flips["full_a"] == flips["full_b"]].groupby(
        ["budget", "a", "b"])["aggregate"].agg(set)
    rows = []
    for (budget, a, b), row in wide.iterrows():
        at = resolved.set_index(["budget", "a", "b"]).loc[(budget, a, b)]
        ties = tied.get((budget, a, b), set())
        cells = {f"n={n}": " ".join([
            "tied" if "iqm" in ties else f"{row[(n, 'iqm')]:.1%}",
            "(tied)" if "median" in ties else f"({row[(n, 'median')]:.1%})"])
            for n in sorted(flips["n"].unique())}
        rows.append({"budget": points[budget], "pair": f"{a} vs {b}",
                     "IQM diff [95%], all seeds": f"{at['diff']:+.4f} [{at['diff_low']:+.4f}, "
                                                  f"{at['diff_high']:+.4f}]",
                     "resolved": "yes" if at["resolved"] else "no", **cells})
    return md_table(pd.DataFrame(rows))


def _ints(text: str, flag: str) -> tuple[int, ...]:
    try:
        values = tuple(int(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise SuiteError(f"malformed {flag} {text!r}: expected e.g. 10,20,50") from None
    if not values or min(values) < 1:
        raise SuiteError(f"{flag} must be positive integers, got {text!r}")
    return values


def run(args: argparse.Namespace) -> dict:
    from suite.report import pair_differences

    started = time.perf_counter()
    budgets = tuple(t.strip() for t in args.budgets.split(",")) if args.budgets else None
    for text in budgets or ():
        parse_budget(text)
    sizes = _ints(args.sizes, "--sizes")
    values = incumbents_at(args.dirs, budgets)
    seeds = int(values.groupby("optimizer")["seed"].nunique().min())
    flips = order_flips(values, sizes=sizes, resamples=args.resamples)
    resolved = pair_differences(values, resamples=args.resamples)
    points = dict(zip(values["budget"], values["point"], strict=False))
    flips.insert(0, "point", flips["budget"].map(points))
    resolved.insert(0, "point", resolved["budget"].map(points))
    args.out.mkdir(parents=True, exist_ok=True)
    flips.to_csv(args.out / "seed-stability.csv", index=False, float_format="%.6g")
    resolved.to_csv(args.out / "seed-stability-pairs.csv", index=False, float_format="%.6g")
    summary = {"command": "python benchmarks/seed_stability.py " + " ".join(sys.argv[1:]),
               "study": [str(d) for d in args.dirs], "seeds": seeds,
               "optimizers": sorted(values["optimizer"].unique()),
               "points": sorted(set(points.values()), key=lambda p: parse_budget(p).amount),
               "sizes": list(sizes), "resamples": args.resamples,
               "recommendation": recommend(flips, resolved, seeds),
               "seconds": round(time.perf_counter() - started, 1)}
    (args.out / "seed-stability.json").write_text(json.dumps(summary, indent=2) + "\n")
    summary["markdown"] = markdown(flips, resolved, points)
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("dirs", nargs="+", type=Path, metavar="STUDY_DIR")
    parser.add_argument("--budgets", help="budget points, e.g. 30x,60x (default: the "
                                          "study's budget and its half)")
    parser.add_argument("--sizes", default="10,20,50,100", help="seed-set sizes n")
    parser.add_argument("--resamples", type=int, default=2000, help="seed sets per size")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        if args.resamples < 100:
            raise SuiteError(f"--resamples must be at least 100, got {args.resamples}")
        summary = run(args)
    except SuiteError as exc:
        print(f"seed_stability: error: {exc}", file=sys.stderr)
        return 2
    rec = summary["recommendation"]
    print(f"Flip rate of each pair's order by IQM (by median) over {summary['resamples']} "
          f"seed sets of n seeds drawn with replacement from {summary['seeds']} (tied: "
          f"equal on all seeds, no order to keep):\n")
    print(summary["markdown"])
    print(f"\nRecommended seeds: {rec['seeds']} ({rec['rule']}; "
          f"{rec['resolved_pairs']} resolved pair-points). {summary['seconds']} s.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
