"""Place live runs within the replayed distribution of the same optimizer and budget.

    python benchmarks/faithfulness.py LIVE_STUDY REPLAY_STUDY

For each optimizer: the final incumbent's validation loss of every replayed seed, and the
percentile of each live run's final incumbent within that distribution (0 = better than
every replay, 100 = worse than every replay). The live runs search the task's full space
while replays search its table grid, so a live run can land outside the replayed range.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from suite.log import read_runs  # noqa: E402


def final_incumbents(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per run: the incumbent at the end (most epochs first, then lowest loss)."""
    ok = frame[(frame["event"] == "epoch") & (frame["status"] == "ok")]
    top = ok[ok["epoch"] == ok.groupby("run")["epoch"].transform("max")]
    best = top.loc[top.groupby("run")["loss"].idxmin()]
    return best[["optimizer", "seed", "run", "epoch", "loss"]].reset_index(drop=True)


def main(live: str, replay: str) -> None:
    live_inc = final_incumbents(read_runs(live))
    replay_inc = final_incumbents(read_runs(replay))
    print("| optimizer | replay seeds | replay median [min, max] | live | live percentile |")
    print("| --- | --- | --- | --- | --- |")
    for name, group in replay_inc.groupby("optimizer"):
        losses = np.sort(group["loss"].to_numpy())
        for value in live_inc[live_inc["optimizer"] == name]["loss"]:
            below = np.searchsorted(losses, value, side="left")
            equal = np.searchsorted(losses, value, side="right") - below
            percentile = 100 * (below + 0.5 * equal) / len(losses)
            print(f"| {name} | {len(losses)} | {np.median(losses):.4f} [{losses[0]:.4f}, "
                  f"{losses[-1]:.4f}] | {value:.4f} | {percentile:.0f} |")


if __name__ == "__main__":
    main(*sys.argv[1:3])
