"""What a replay costs per evaluation, and what each optimizer's own ask/tell costs.

    PYTHONHASHSEED=0 python benchmarks/replay_overhead.py [--budget 2000x] [--workers 4]

Replays every optimizer on the toy task's recorded table (288 configurations × 2 seeds ×
27 epochs, `suite.testing.toy_table`) through the same Runner, SimulatedExecutor, Ledger
and RunLog (JSONL on disk, flushed per line) that `suite run --table` uses, with the
optimizer wrapped in a timer. An *evaluation* is one replayed epoch: one table lookup,
one ledger charge and one log row. The suite's overhead per evaluation is the runner's
wall time minus the optimizer's ask/tell time, divided by the epochs replayed; it is
reported for `random` at `--budget` (large, so per-run set-up is negligible) and, for
reference, for the others at `--optimizer-budget`. Each optimizer's own cost is its ask
and tell time per trial. Best of `--repeats` runs for the overhead; one run for the rest.
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from suite.budget import Ledger, parse_budget
from suite.executors import SimulatedExecutor
from suite.log import RunLog
from suite.optimizers import OPTIMIZERS, make_optimizer
from suite.optimizers._spaces import seeded_copy
from suite.runner import Runner
from suite.tables import read_table
from suite.testing import ToyTask, toy_table


class Timed:
    """An optimizer with a stopwatch around `ask` and `tell`."""

    def __init__(self, optimizer) -> None:
        self.optimizer, self.name = optimizer, optimizer.name
        self.ask_s = self.tell_s = 0.0
        self.asks = self.tells = 0

    @property
    def finished(self) -> bool:
        return self.optimizer.finished

    def ask(self):
        start = time.perf_counter()
        try:  # an ask that raises still took its time
            trial = self.optimizer.ask()
        finally:
            self.ask_s += time.perf_counter() - start
        self.asks += trial is not None
        return trial

    def tell(self, result) -> None:
        start = time.perf_counter()
        try:
            self.optimizer.tell(result)
        finally:
            self.tell_s += time.perf_counter() - start
        self.tells += 1


@dataclass
class Measured:
    name: str
    seconds: float  # Runner.run, everything included
    epochs: int
    optimizer: Timed
    stopped: str  # why the run ended: budget, optimizer, or the exception that ended it

    @property
    def overhead_ms(self) -> float:
        """Per evaluation (epoch): runner + simulated executor + ledger + log."""
        own = self.optimizer.ask_s + self.optimizer.tell_s
        return (self.seconds - own) / self.epochs * 1e3

    @property
    def ask_tell_ms(self) -> float:
        """The optimizer's own ask + tell time per trial."""
        return (self.optimizer.ask_s + self.optimizer.tell_s) / self.optimizer.asks * 1e3


def replay(table, name: str, budget: str, workers: int, directory: Path) -> Measured:
    task = ToyTask()
    fidelity = task.info.fidelity
    optimizer = Timed(make_optimizer(name, space=seeded_copy(table.space, 0), fidelity=fidelity,
                                     seed=0, max_full_trials=parse_budget(budget).full_trials(
                                         fidelity.max_epochs)))
    log = RunLog.create(directory, {"task": "toy", "simulated": True})
    runner = Runner(optimizer=optimizer, executor=SimulatedExecutor(table, workers=workers),
                    ledger=Ledger(parse_budget(budget), max_epochs=fidelity.max_epochs),
                    log=log, metric=task.info.metric, seed=0, checkpoints=None)
    start = time.perf_counter()
    with log:
        try:
            stopped = runner.run()
        except Exception as exc:  # an optimizer that gives up (SMAC on an exhausted grid)
            stopped = f"raised {type(exc).__name__}"
    return Measured(name, time.perf_counter() - start, runner.ledger.totals.epochs, optimizer,
                    stopped)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--budget", default="2000x", help="for the random overhead run")
    parser.add_argument("--optimizer-budget", default="50x", help="for each optimizer's run")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="suite-bench-") as tmp:
        root = Path(tmp)
        table = read_table(toy_table(root / "toy.parquet", seeds=2))
        runs = [replay(table, "random", args.budget, args.workers, root / f"overhead-{i}")
                for i in range(args.repeats)]
        best = min(runs, key=lambda m: m.overhead_ms)
        per_optimizer = [replay(table, name, args.optimizer_budget, args.workers, root / name)
                         for name in OPTIMIZERS]
    print(f"# {platform.machine()}, Python {platform.python_version()}, table: toy "
          f"({len(table.configs)} configurations × {table.seeds} seeds × {table.max_epochs} "
          f"epochs), {args.workers} simulated workers, log on disk")
    print(f"replay overhead (runner + simulated executor + ledger + log), random, budget "
          f"{args.budget}: {best.overhead_ms:.4f} ms per evaluation (epoch), "
          f"{best.overhead_ms * table.max_epochs:.3f} ms per full-fidelity trial "
          f"({best.epochs} epochs, best of {args.repeats}; all-in incl. random's ask/tell: "
          f"{best.seconds / best.epochs * 1e3:.4f} ms per evaluation)")
    print(f"\nper optimizer, budget {args.optimizer_budget}:")
    print("| optimizer | trials | epochs | ask+tell ms/trial | ask ms/trial | tell ms/trial "
          "| suite overhead ms/evaluation | total s | stopped by |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for m in per_optimizer:
        o = m.optimizer
        print(f"| {m.name} | {o.asks} | {m.epochs} | {m.ask_tell_ms:.3f} | "
              f"{o.ask_s / o.asks * 1e3:.3f} | {o.tell_s / max(o.tells, 1) * 1e3:.3f} | "
              f"{m.overhead_ms:.4f} | {m.seconds:.2f} | {m.stopped} |")


if __name__ == "__main__":
    main()
