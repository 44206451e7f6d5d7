"""Crash-safety harness: SIGKILL a replayed study at random moments, resume it each time.

    python tests/crash_harness.py [--kills 20] [--seed 0] [--task T --table PATH] ...

First the study runs uninterrupted (the reference). Then the same study starts again in
another folder and is killed with SIGKILL at `--kills` random moments, each restart being
`suite run --resume` (or the original command while no plan has been written yet); the
last restart runs to the end. Every run folder must then hold exactly the reference's
rows (wall times aside): nothing lost, nothing duplicated, the same incumbent. Exit 0 when
it does, 1 with what differs otherwise. The kill moments come from a seeded RNG: some
land during start-up, most while rows are being written.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from suite._resume import summarize
from suite.budget import Ledger, parse_budget
from suite.log import LOG_NAME, LogError, find_runs, read_log, read_rows
from suite.study import STUDY_NAME

POLL = 0.01  # seconds between checks of a running study


@dataclass(frozen=True)
class Kill:
    attempt: int
    after: float  # seconds after the (re)start
    rows_before: int
    rows_after: int
    killed: bool  # False: the study had already finished when the moment came


def study_command(args: argparse.Namespace, out: Path, resume: bool) -> list[str]:
    cli = [sys.executable, "-m", "suite.cli", "run"]
    if resume:
        return [*cli, "--resume", str(out)]
    return [*cli, "--task", args.task, "--table", args.table, "--optimizer", args.optimizers,
            "--seeds", args.seeds, "--budget", args.budget, "--workers", str(args.workers),
            "--out", str(out)]


def _start(command: list[str]) -> subprocess.Popen:
    # PYTHONHASHSEED fixed up front, as before SMAC stopped needing it (it is harmless).
    env = dict(os.environ, PYTHONHASHSEED="0")
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)


def log_bytes(out: Path) -> int:
    """What the polling loops watch: a stat per log, where counting rows reads them all."""
    return sum(path.stat().st_size for path in out.rglob(LOG_NAME)) if out.exists() else 0


def count_rows(out: Path) -> int:
    total = 0
    for path in out.rglob(LOG_NAME):
        with open(path, "rb") as f:
            total += f.read().count(b"\n")
    return total


def run_reference(args: argparse.Namespace, out: Path) -> tuple[float, float]:
    """Run uninterrupted; returns (wall seconds, seconds until the first row appeared)."""
    t0 = time.monotonic()
    proc = _start(study_command(args, out, resume=False))
    first_row = None
    while proc.poll() is None:
        if first_row is None and log_bytes(out):
            first_row = time.monotonic() - t0
        time.sleep(POLL)
    _check_exit(proc, "the uninterrupted study")
    wall = time.monotonic() - t0
    return wall, first_row if first_row is not None else wall


def kill_and_resume(args: argparse.Namespace, out: Path, startup: float,
                    share: float = float("inf")) -> list[Kill]:
    """Kill moments: every fourth falls anywhere in start-up (imports, plan, rebuilding the
    optimizers from the log), the rest at a random moment within `--window` seconds after
    the restart wrote its first new row (anywhere in the middle of writing), or once it
    has appended a random part of `share` bytes, whichever comes first: a replay writes
    tens of thousands of rows a second, and every kill must land before the study ends
    (`main` gives each kill half its share of the uninterrupted study's bytes)."""
    rng = random.Random(args.seed)
    kills = []
    for attempt in range(args.kills):
        before, size = (count_rows(out) if out.exists() else 0), log_bytes(out)
        t0 = time.monotonic()
        proc = _start(study_command(args, out, resume=(out / STUDY_NAME).exists()))
        in_startup = attempt % 4 == 1  # a quarter, whatever the seed draws
        delay = rng.uniform(0, startup if in_startup else args.window)
        enough = size + 1 + rng.uniform(0, share)  # bytes appended that end the wait
        deadline = t0 + delay if in_startup else None
        while proc.poll() is None and (deadline is None or time.monotonic() < deadline):
            grown = log_bytes(out)
            if not in_startup and grown >= enough:
                break
            if deadline is None and grown > size:  # this restart appended
                deadline = time.monotonic() + delay
            time.sleep(POLL)
        killed = proc.poll() is None
        if killed:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        else:
            _check_exit(proc, f"restart {attempt + 1}")
        kills.append(Kill(attempt + 1, time.monotonic() - t0, before,
                          count_rows(out) if out.exists() else 0, killed))
        if not killed:
            break
    if kills and kills[-1].killed:  # the last restart runs to the end
        proc = _start(study_command(args, out, resume=(out / STUDY_NAME).exists()))
        proc.wait()
        _check_exit(proc, "the final resume")
    return kills


def _check_exit(proc: subprocess.Popen, what: str) -> None:
    if proc.returncode != 0:
        raise SystemExit(f"{what} exited with {proc.returncode}: {proc.stderr.read().strip()}")


def comparable_rows(directory: Path) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "wall_time"} for row in read_rows(directory)]


def incumbent(directory: Path) -> tuple | None:
    """The run's incumbent as the suite defines it (trial, epochs, loss)."""
    ledger = Ledger(parse_budget("1e"), max_epochs=1)  # unused: only the incumbent matters
    best = summarize(read_log(directory), ledger=ledger).incumbent
    return (best.trial_id, best.epochs, best.loss) if best else None


def problems_of(reference: Path, crashed: Path) -> list[str]:
    """What differs between the crashed-and-resumed study and the uninterrupted one."""
    found = []
    for ref_run in find_runs([reference]):
        run = crashed / ref_run.relative_to(reference)
        expected, got = comparable_rows(ref_run), comparable_rows(run)
        epochs = [(r["trial_id"], r["epoch"]) for r in got if r["event"] == "epoch"]
        if len(epochs) != len(set(epochs)):
            found.append(f"{run}: duplicated epochs")
        missing = {(r["trial_id"], r["epoch"]) for r in expected if r["event"] == "epoch"}
        if missing - set(epochs):
            found.append(f"{run}: {len(missing - set(epochs))} epochs lost")
        if [r["event"] for r in got].count("finish") != 1 or got[-1]["event"] != "finish":
            found.append(f"{run}: not finished exactly once")
        try:  # the suite's own reader refuses a log that breaks its invariants
            if incumbent(run) != incumbent(ref_run):
                found.append(f"{run}: incumbent {incumbent(run)} != {incumbent(ref_run)}")
        except LogError as exc:
            found.append(f"{run}: the suite refuses its log: {exc}")
        if got != expected and not found:
            first = next(i for i, (a, b) in enumerate(zip(got, expected, strict=False))
                         if a != b) if len(got) == len(expected) else min(len(got),
                                                                         len(expected))
            found.append(f"{run}: rows differ from the uninterrupted run from row {first}")
    return found


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--kills", type=int, default=20)
    p.add_argument("--seed", type=int, default=0, help="seeds the kill moments")
    p.add_argument("--task", default="text_classifier")
    p.add_argument("--table", default="results/tables/text_classifier.parquet")
    p.add_argument("--optimizers", default="random,grid,tpe,hyperband,bohb,asha")
    p.add_argument("--seeds", default="0-4")
    p.add_argument("--budget", default="30x")
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--window", type=float, default=1.0,
                   help="most kills come within this many seconds of a restart's first row")
    p.add_argument("--work", default=None, help="folder for the two studies (default: a "
                   "fresh temporary folder)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    import tempfile

    args = parse_args(argv)
    work = Path(args.work or tempfile.mkdtemp(prefix="crash-harness-"))
    reference, crashed = work / "reference", work / "crashed"
    wall, startup = run_reference(args, reference)
    print(f"uninterrupted: {wall:.1f} s, first row after {startup:.1f} s, "
          f"{count_rows(reference)} rows")
    t0 = time.monotonic()
    kills = kill_and_resume(args, crashed, startup, log_bytes(reference) / (2 * args.kills))
    landed = sum(k.killed for k in kills)
    mid_run = sum(k.killed and k.rows_after > k.rows_before for k in kills)
    print(f"{landed} SIGKILLs ({mid_run} after rows had been written in that attempt), "
          f"{time.monotonic() - t0:.1f} s in all")
    for k in kills:
        print(f"  kill {k.attempt:2d} at {k.after:5.2f} s: rows {k.rows_before} -> "
              f"{k.rows_after}{'' if k.killed else ' (had finished)'}")
    found = problems_of(reference, crashed)
    if landed < args.kills:
        found.append(f"only {landed} of {args.kills} kills landed before the study finished; "
                     "use a larger study or a smaller --window")
    for line in found:
        print(f"FAIL {line}")
    if not found:
        runs = len(find_runs([reference]))
        print(f"OK: {runs} runs, every row equal to the uninterrupted run's (wall time aside)")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
